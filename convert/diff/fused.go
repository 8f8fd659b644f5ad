package diff

import (
	"math"
	"runtime/debug"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// The fused path of a diff: a BF16 tensor against an encoded one whose
// values a table per range gives (the log codec's u8+i8 and packed
// layouts, per tensor or per row), compared straight from the stored
// bytes, codes and signs, without writing either side's float64 values
// first. Its sums are kept in lanes, added last: with AVX-512 eight
// lanes, the products fused into the additions, so that the figures
// differ from Accumulator.Add's in the last digits (a few 1e-16
// relative; TestDiffFusedIsFloatPath); elsewhere two lanes, each
// position of a chunk going to lane position%2 in the order of the
// elements, which is Add's order to the bit. The largest error is the
// first one, as Add finds it. A chunk holding a NaN, an infinity, or an
// invalid code or sign goes through the float path instead, which
// reports or counts them as before.

// lanes are a chunk's running sums, by lane (two of them but with
// AVX-512), and its largest errors by lane (eight with AVX-512, by
// position modulo 4 with AVX2, modulo 2 in the Go code): each the first
// of its largest, so that the first of the largest of them all is Add's.
type lanes struct {
	sumAbs, sse, sa2, sb2, sab [8]float64
	maxErr                     [8]float64
	maxIdx                     [8]int64 // position in the chunk; -1 for none
	identical                  uint64
	signMax                    [8]uint32 // AVX-512: each lane's largest sign+1
}

// newLanes returns lanes with no largest error yet.
func newLanes() lanes {
	return lanes{maxIdx: [8]int64{-1, -1, -1, -1, -1, -1, -1, -1}}
}

// sum adds the lanes of s, lanes 0 and 1 first, which is the order of
// Accumulator.Add when the others are zero.
func sum(s *[8]float64) float64 {
	return (s[0] + s[1]) + ((s[2] + s[3]) + (s[4] + s[5]) + (s[6] + s[7]))
}

// largest returns the largest error of l and its first position, -1 for
// none.
func (l *lanes) largest() (float64, int64) {
	e, i := 0.0, int64(-1)
	for k := range l.maxErr {
		if j := l.maxIdx[k]; j >= 0 && (l.maxErr[k] > e || l.maxErr[k] == e && j < i) {
			e, i = l.maxErr[k], j
		}
	}
	return e, i
}

// fusable reports whether a against b takes the fused path: a BF16 tensor
// against a tabled one, either way round.
func fusable(sa, sb *qins.Source, a, b *qins.Logical) bool {
	return sa.Tabled() && !b.Encoded() && b.DType == dtype.BF16 ||
		sb.Tabled() && !a.Encoded() && a.DType == dtype.BF16
}

// fusedChunk compares elements [off, off+m) of a BF16 tensor (plain) and
// a tabled one (enc) into p, which is empty; swap says that the encoded
// tensor is side A. It returns false, with p untouched, when the chunk
// needs the float path.
func fusedChunk(plain, enc *qins.Source, swap bool, off, m int64, buf *diffBufs, p *Accumulator) (done bool, err error) {
	// The files' mappings are read in place: a file cut short meanwhile
	// faults, which becomes an error here rather than a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			done, err = false, format.ErrMappingFault
		}
	}()
	raw, err := plain.Raw(off, m, &buf.rawA)
	if err != nil {
		return false, err
	}
	l := newLanes()
	ok := true
	if buf.tab == nil {
		buf.tab = newTable()
	}
	mag := &buf.mag
	packed := false
	if avx512dq {
		// The packed layout's codes and bits straight from the mapping;
		// code 0 is an exact zero.
		mag[0] = 0
		packed, err = enc.EachPackedRange(off, m, func(p quant.Params, codes []uint8, bits []byte, bitOff int, a int64) {
			if ok {
				p.MagnitudesF32(mag)
				ok = fuseRunPacked(&l, raw[2*a:2*(a+int64(len(codes)))], codes, bits, bitOff, mag, a)
			}
		})
		if err != nil {
			return false, err
		}
	}
	switch {
	case packed:
	case avx512:
		// Magnitudes only, the kernel applying the signs: a quarter of
		// the table to build for each row.
		mag[0] = float32(math.NaN())
		err = enc.EachRange(off, m, &buf.rawB, func(p quant.Params, codes []uint8, signs []int8, a int64) {
			if ok {
				p.MagnitudesF32(mag)
				ok = fuseRunMag(&l, raw[2*a:2*(a+int64(len(codes)))], codes, signs, mag, a)
			}
		})
	default:
		rows := (*[3][256]float64)(buf.tab[:3]) // the rows' tables go to buf.tab
		err = enc.EachRun(off, m, &buf.rawB, rows, func(tab *[3][256]float64, codes []uint8, signs []int8, a int64) {
			if tab != rows { // the tensor's: copied, for the NaN row after it
				*rows = *tab
			}
			if ok {
				ok = fuseRun(&l, raw[2*a:2*(a+int64(len(codes)))], codes, signs, buf.tab, a)
			}
		})
	}
	if err != nil || !ok {
		return false, err
	}
	s := []float64{sum(&l.sumAbs), sum(&l.sse), sum(&l.sa2), sum(&l.sb2), sum(&l.sab)}
	for _, v := range s {
		if !finite(v) {
			return false, nil
		}
	}
	p.sumAbs, p.sse, p.sa2, p.sb2, p.sab = s[0], s[1], s[2], s[3], s[4]
	if swap {
		p.sa2, p.sb2 = p.sb2, p.sa2
	}
	p.n, p.identical = uint64(m), l.identical
	p.maxErr, p.maxIdx = l.largest()
	if p.maxIdx >= 0 {
		p.maxIdx += off
	}
	return true, nil
}

// table is a table of quant.Decoder.TableF32 and a fourth row of NaNs,
// which the AVX2 kernel reads for an invalid sign.
type table = [4][256]float64

func newTable() *table {
	t := new(table)
	for c := range t[3] {
		t[3][c] = math.NaN()
	}
	return t
}

// fuseRun adds the elements of one run, the first at position first of
// the chunk: raw holds the BF16 side, codes and signs the other, which
// tab decodes. It returns false at an invalid sign (the float path
// reports it); an invalid code decodes to NaN, which the caller sees in
// the sums.
func fuseRun(l *lanes, raw []byte, codes []uint8, signs []int8, tab *table, first int64) bool {
	i := 0
	if first%2 == 1 && len(codes) > 0 {
		if !fuseOne(l, 1, raw, codes, signs, tab, 0, first) {
			return false
		}
		i = 1
	}
	n := i + (len(codes)-i)&^1
	if n > i {
		if !fusePairs(l, raw[2*i:2*n], codes[i:n], signs[i:n], tab, first+int64(i)) {
			return false
		}
	}
	if n < len(codes) {
		return fuseOne(l, 0, raw, codes, signs, tab, n, first)
	}
	return true
}

// fuseRunMag is fuseRun for the AVX-512 kernel, whose values are the
// magnitudes mag (float32, NaN for code 0) times the signs.
func fuseRunMag(l *lanes, raw []byte, codes []uint8, signs []int8, mag *[256]float32, first int64) bool {
	n := fuseBlocks(l, raw, codes, signs, mag, first)
	for _, s := range l.signMax {
		if s > 2 {
			return false
		}
	}
	for i := n; i < len(codes); i++ {
		s := signs[i]
		if uint8(s)+1 > 2 {
			return false
		}
		a := float64(math.Float32frombits(uint32(raw[2*i])<<16 | uint32(raw[2*i+1])<<24))
		b := float64(mag[codes[i]] * float32(s))
		addOne(l, 0, a, b, first+int64(i))
	}
	return true
}

// fuseRunPacked is fuseRunMag on the packed layout's codes and sign bits
// (see qins.Source.EachPackedRange); mag[0] is 0. It returns false at an
// exact zero whose bit is set.
func fuseRunPacked(l *lanes, raw []byte, codes []uint8, bits []byte, bitOff int, mag *[256]float32, first int64) bool {
	// The elements before the kernel's first, then its, then those after:
	// in order, so that each lane keeps the first of its largest errors.
	i0 := min((8-bitOff%8)%8, len(codes))
	if !packedOnes(l, raw, codes, bits, bitOff, mag, first, 0, i0) {
		return false
	}
	_, i1 := fusePackedBlocks(l, raw, codes, bits, bitOff, mag, first)
	if l.signMax[0] > 2 {
		return false
	}
	return packedOnes(l, raw, codes, bits, bitOff, mag, first, max(i0, i1), len(codes))
}

// packedOnes adds elements [i, j) of a run of the packed layout to lane 0.
func packedOnes(l *lanes, raw []byte, codes []uint8, bits []byte, bitOff int, mag *[256]float32, first int64, i, j int) bool {
	for ; i < j; i++ {
		c, p := codes[i], bitOff+i
		neg := bits[p>>3]>>(p&7)&1 != 0
		if c == 0 && neg {
			return false
		}
		b := float64(mag[c])
		if neg {
			b = -b
		}
		a := float64(math.Float32frombits(uint32(raw[2*i])<<16 | uint32(raw[2*i+1])<<24))
		addOne(l, 0, a, b, first+int64(i))
	}
	return true
}

// addOne adds a against b, at position i of the chunk, to lane k.
func addOne(l *lanes, k int, a, b float64, i int64) {
	d := a - b
	ad := math.Abs(d)
	if ad > l.maxErr[k] {
		l.maxErr[k], l.maxIdx[k] = ad, i
	}
	if d == 0 {
		l.identical++
	}
	l.sumAbs[k] += ad
	l.sse[k] += d * d
	l.sa2[k] += a * a
	l.sb2[k] += b * b
	l.sab[k] += a * b
}

// fuseOne adds element i of a run to lane k.
func fuseOne(l *lanes, k int, raw []byte, codes []uint8, signs []int8, tab *table, i int, first int64) bool {
	s := uint8(signs[i]) + 1
	if s > 2 {
		return false
	}
	a := float64(math.Float32frombits(uint32(raw[2*i])<<16 | uint32(raw[2*i+1])<<24))
	addOne(l, k, a, tab[s][codes[i]], first+int64(i))
	return true
}

// fusePairsGo is fusePairs in Go: len(codes) is even, and the first
// element, at position first (even) of the chunk, goes to lane 0. The
// sums are locals, kept in registers.
func fusePairsGo(l *lanes, raw []byte, codes []uint8, signs []int8, tab *table, first int64) bool {
	sumAbs0, sumAbs1, sse0, sse1 := l.sumAbs[0], l.sumAbs[1], l.sse[0], l.sse[1]
	sa20, sa21, sb20, sb21, sab0, sab1 := l.sa2[0], l.sa2[1], l.sb2[0], l.sb2[1], l.sab[0], l.sab[1]
	max0, max1, idx0, idx1 := l.maxErr[0], l.maxErr[1], l.maxIdx[0], l.maxIdx[1]
	id := l.identical
	raw, signs = raw[:2*len(codes)], signs[:len(codes)]
	ok := true
	for i := 0; i+1 < len(codes); i += 2 {
		s0, s1 := uint8(signs[i])+1, uint8(signs[i+1])+1
		if s0 > 2 || s1 > 2 {
			ok = false
			break
		}
		a0 := float64(math.Float32frombits(uint32(raw[2*i])<<16 | uint32(raw[2*i+1])<<24))
		a1 := float64(math.Float32frombits(uint32(raw[2*i+2])<<16 | uint32(raw[2*i+3])<<24))
		b0, b1 := tab[s0][codes[i]], tab[s1][codes[i+1]]
		d0, d1 := a0-b0, a1-b1
		ad0, ad1 := math.Abs(d0), math.Abs(d1)
		if ad0 > max0 {
			max0, idx0 = ad0, first+int64(i)
		}
		if ad1 > max1 {
			max1, idx1 = ad1, first+int64(i+1)
		}
		if d0 == 0 {
			id++
		}
		if d1 == 0 {
			id++
		}
		sumAbs0 += ad0
		sumAbs1 += ad1
		sse0 += d0 * d0
		sse1 += d1 * d1
		sa20 += a0 * a0
		sa21 += a1 * a1
		sb20 += b0 * b0
		sb21 += b1 * b1
		sab0 += a0 * b0
		sab1 += a1 * b1
	}
	l.sumAbs[0], l.sumAbs[1], l.sse[0], l.sse[1] = sumAbs0, sumAbs1, sse0, sse1
	l.sa2[0], l.sa2[1], l.sb2[0], l.sb2[1], l.sab[0], l.sab[1] = sa20, sa21, sb20, sb21, sab0, sab1
	l.maxErr[0], l.maxErr[1], l.maxIdx[0], l.maxIdx[1], l.identical = max0, max1, idx0, idx1, id
	return ok
}
