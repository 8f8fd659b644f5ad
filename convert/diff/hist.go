package diff

import (
	"context"
	"errors"
	"math"
	"sort"
	"sync/atomic"

	"github.com/qins-dev/qins/format/qins"
)

// The fast path of a diff. When each side's element is one of at most
// 65536 keys (a 16-bit float's bit pattern, or an encoded element's code
// and sign), the comparison only needs how many elements hold each pair of
// keys: the sums are then taken once per pair, in float64, from the
// values the float path would read. A QINS file encoded from a BF16
// checkpoint pairs each pattern with one code and sign, so the pairs are
// few; when they are not (two unrelated checkpoints), the tensor goes
// through the float path instead.

// maxExtraPairs bounds the pairs kept beyond one per key of A.
const maxExtraPairs = 1 << 16

// minHistElems is the smallest tensor that takes the fast path: its
// tables (1.3 MB per goroutine) only pay off on many elements.
const minHistElems = 1 << 14

// histBudget bounds the elements that the goroutines of the fast path
// read at a time, all together, by default.
const histBudget = 1 << 21

// errTooManyPairs stops the fast path of a tensor.
var errTooManyPairs = errors.New("too many pairs of keys")

// keyed reports whether the elements of l can be told apart by 16 bits.
func keyed(l *qins.Logical) bool {
	if l.Encoded() {
		return l.Ranges == nil // a code means one value per tensor
	}
	return l.DType.IsFloat() && l.DType.Size() == 2
}

// pairGroup counts the elements holding one pair of keys.
type pairGroup struct {
	n     uint64
	first int64 // flat index of the first of them
}

// pairHist counts the pairs of keys of the chunks one goroutine compares,
// in increasing order of their offsets.
type pairHist struct {
	pair  [1 << 16]uint32 // per key of A: 1<<16 | key of B, the first seen
	count [1 << 16]uint64 // elements with that pair
	first [1 << 16]int64
	extra map[uint32]*pairGroup // other pairs, by key of A << 16 | key of B
	keys  []uint16              // the keys of A with a pair
	used  bool
}

// reset empties h for another tensor, touching only what was used.
func (h *pairHist) reset() {
	for _, a := range h.keys {
		h.pair[a], h.count[a] = 0, 0
	}
	h.keys = h.keys[:0]
	clear(h.extra)
	h.used = false
}

// add counts the pairs (ka[i], kb[i]); element i has flat index off+i.
func (h *pairHist) add(ka, kb []uint16, off int64) error {
	h.used = true
	kb = kb[:len(ka)]
	for i, a := range ka {
		v := uint32(kb[i]) | 1<<16
		if h.pair[a] == v {
			h.count[a]++
		} else if err := h.miss(a, v, off+int64(i)); err != nil {
			return err
		}
	}
	return nil
}

// addCodes is add with the keys of B given as codes and signs.
func (h *pairHist) addCodes(ka []uint16, codes, signs []byte, off int64) error {
	h.used = true
	codes, signs = codes[:len(ka)], signs[:len(ka)]
	for i, a := range ka {
		v := uint32(codes[i]) | uint32(signs[i])<<8 | 1<<16
		if h.pair[a] == v {
			h.count[a]++
		} else if err := h.miss(a, v, off+int64(i)); err != nil {
			return err
		}
	}
	return nil
}

// miss counts element idx, whose pair (a, v) is not the one recorded for
// a: it becomes a's pair if a has none yet, or goes with the other pairs.
func (h *pairHist) miss(a uint16, v uint32, idx int64) error {
	if h.pair[a] == 0 {
		h.pair[a], h.count[a], h.first[a] = v, 1, idx
		h.keys = append(h.keys, a)
		return nil
	}
	return h.addExtra(uint32(a)<<16|v&0xffff, 1, idx)
}

func (h *pairHist) addExtra(key uint32, n uint64, first int64) error {
	if h.extra == nil {
		h.extra = make(map[uint32]*pairGroup)
	}
	g := h.extra[key]
	if g == nil {
		if len(h.extra) >= maxExtraPairs {
			return errTooManyPairs
		}
		g = &pairGroup{first: first}
		h.extra[key] = g
	}
	g.n += n
	g.first = min(g.first, first)
	return nil
}

// histTensor is differ.tensor's fast path. It returns nil, with no error,
// when a and b pair their keys in too many ways.
func (d *differ) histTensor(ctx context.Context, sa, sb *qins.Source, n int64) (*Accumulator, error) {
	for w := range d.bufs {
		if h := d.bufs[w].hist; h != nil {
			h.reset()
		}
	}
	step := min(int64(d.histChunk), n)
	// Progress is reported once the tensor is done: if the fast path gives
	// up, the float path reports the whole tensor.
	var done atomic.Int64
	err := d.workers.Each(ctx, n, step, func(_ context.Context, w int, off, m int64) error {
		buf := &d.bufs[w]
		if buf.hist == nil {
			buf.hist = new(pairHist)
		}
		if int64(len(buf.ka)) < m {
			buf.ka = make([]uint16, step)
		}
		if !sb.Encoded() && int64(len(buf.kb)) < m {
			buf.kb = make([]uint16, step)
		}
		if err := sa.Keys(off, m, buf.ka, &buf.rawA); err != nil {
			return err
		}
		if sb.Encoded() {
			// The common case, a QINS file against its source: no keys
			// to make for B.
			codes, signs, err := sb.Codes(off, m, &buf.rawB)
			if err != nil {
				return err
			}
			if err := buf.hist.addCodes(buf.ka[:m], codes, signs, off); err != nil {
				return err
			}
		} else {
			if err := sb.Keys(off, m, buf.kb, &buf.rawB); err != nil {
				return err
			}
			if err := buf.hist.add(buf.ka[:m], buf.kb[:m], off); err != nil {
				return err
			}
		}
		done.Add(sa.BytesOf(off, m) + sb.BytesOf(off, m))
		return nil
	})
	if errors.Is(err, errTooManyPairs) {
		return nil, nil // the float path reports the progress
	}
	if err != nil {
		return nil, err
	}
	d.progress(done.Load())
	return d.sumPairs(sa, sb)
}

// sumPairs adds up the pairs of keys the goroutines' histograms counted:
// every pair with its count, whichever goroutine saw it, in the order of
// the keys, so that the sums do not depend on scheduling.
func (d *differ) sumPairs(sa, sb *qins.Source) (*Accumulator, error) {
	all := make(map[uint32]*pairGroup)
	add := func(key uint32, n uint64, first int64) {
		if g := all[key]; g != nil {
			g.n += n
			g.first = min(g.first, first)
		} else {
			all[key] = &pairGroup{n: n, first: first}
		}
	}
	for w := range d.bufs {
		h := d.bufs[w].hist
		if h == nil || !h.used {
			continue
		}
		for _, a := range h.keys {
			if v := h.pair[a]; v != 0 {
				add(uint32(a)<<16|v&0xffff, h.count[a], h.first[a])
			}
		}
		for key, e := range h.extra {
			add(key, e.n, e.first)
		}
	}
	keys := make([]uint32, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })

	s := NewAccumulator()
	for _, key := range keys {
		g := all[key]
		a, err := sa.KeyValue(uint16(key>>16), g.first)
		if err != nil {
			return nil, err
		}
		b, err := sb.KeyValue(uint16(key), g.first)
		if err != nil {
			return nil, err
		}
		s.addPair(a, b, g.n, g.first)
	}
	return s, nil
}

// addPair adds cnt elements holding a and b, the first at flat index
// first, with the rules of Add.
func (s *Accumulator) addPair(a, b float64, cnt uint64, first int64) {
	s.n += cnt
	d := a - b
	ad := math.Abs(d)
	if !(ad <= math.MaxFloat64) { // NaN or infinity somewhere
		if a == b || (a != a && b != b) {
			s.identical += cnt
		} else {
			s.nonFinite += cnt
		}
		return
	}
	if d == 0 {
		s.identical += cnt
	}
	// The first element of the largest error, as Add finds it.
	if ad > s.maxErr || (ad == s.maxErr && ad > 0 && first < s.maxIdx) {
		s.maxErr, s.maxIdx = ad, first
	}
	n := float64(cnt)
	s.sumAbs += n * ad
	s.sse += n * d * d
	s.sa2 += n * a * a
	s.sb2 += n * b * b
	s.sab += n * a * b
}
