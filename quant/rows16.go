package quant

import (
	"encoding/binary"
	"math"
	"slices"
	"sync"

	"github.com/qins-dev/qins/format/dtype"
)

// The 16-bit rows. A row's range comes from the kernel that scans a
// tensor's; the code of every magnitude pattern between the row's
// smallest and largest is then computed with the formula (the logarithm
// from a table shared by all coders; on AVX-512 sixteen patterns at a
// time, in float32 where a bound on its error shows the formula's code:
// a row of 3072 Normal-like BF16 weights spans about 1700 patterns), and
// the elements look their code up with the per-tensor encode kernel. The
// mse range works on the row's histogram of patterns: the model's sums
// per bucket, then the exact errors of the two candidate ranges, each
// summed over the patterns with their counts. A row whose patterns spread
// over more than twice its length, as F16's do (eight times BF16's
// patterns per octave), is coded element by element instead
// (encodeSpread16).

// tables16 are the read-only tables of a 16-bit dtype, shared by all its
// RowCoders.
type tables16 struct {
	logs   [1 << 15]float64 // ln of each magnitude pattern; +Inf for NaN and infinity
	logs32 [1 << 15]float32 // the same rounded to float32, for the code kernel
	mags   [1 << 15]float32 // each magnitude pattern's value
	// For the model's buckets (see rowHist): the value of each pattern is
	// sig * 2^x, x set by its bucket, and next[b] is the first pattern
	// past bucket b.
	sig   [1 << 15]uint16
	next  [1 << 11]uint16
	tinyH uint16 // the largest pattern <= Tiny
}

// The tables of BF16 and F16, computed on first use.
var (
	bf16Tables = sync.OnceValue(func() *tables16 { return newTables16(dtype.BF16) })
	f16Tables  = sync.OnceValue(func() *tables16 { return newTables16(dtype.F16) })
)

// shared16 returns the tables of 16-bit dtype dt.
func shared16(dt dtype.DType) *tables16 {
	if dt == dtype.BF16 {
		return bf16Tables()
	}
	return f16Tables()
}

func newTables16(dt dtype.DType) *tables16 {
	toF32, expAll := toF32(dt)
	t := &tables16{tinyH: tiny16(toF32)}
	for m := range t.logs {
		a := toF32(uint16(m))
		t.mags[m] = a
		u := math.Float32bits(a)
		t.sig[m] = uint16((u&0x7fffff | min(u>>23, 1)<<23) >> 13)
		t.next[u>>20] = uint16(m + 1)
		if uint16(m)&expAll == expAll {
			t.logs[m], t.logs32[m] = math.Inf(1), float32(math.Inf(1))
			continue
		}
		t.logs[m] = math.Log(float64(a))
		t.logs32[m] = float32(t.logs[m])
	}
	return t
}

// code16 is Params.Code for the magnitude pattern m, with the logarithm
// from the table: the same operations in the same order, so the same code.
func (rc *RowCoder) code16(m uint16, p Params) uint8 {
	switch d := p.LogMax - p.LogMin; {
	case m <= rc.tinyH:
		return 255
	case d == 0:
		return 1
	default:
		return uint8(min(max(math.RoundToEven(255-254*(rc.tab.logs[m]-p.LogMin)/d), 1), 255))
	}
}

// encode16 is Encode for F16 and BF16 rows.
func (rc *RowCoder) encode16(row []byte, first int64, mse bool, codes []uint8, signs []int8) (Params, error) {
	n := len(codes)
	if mse && n <= ExactRowMax {
		return rc.encodeDistinct16(row, first, codes, signs)
	}
	mx, mn := minMax16Fast(row, rc.tinyH, 0, 0xffff)
	if mx >= rc.expAll {
		le := binary.LittleEndian
		for i := range codes {
			if h := le.Uint16(row[2*i:]); h&rc.expAll == rc.expAll {
				return Params{}, &NonFiniteError{Index: first + int64(i), Value: float64(rc.toF32(h))}
			}
		}
	}
	p, err := rc.range16(mx, mn)
	if err != nil {
		return Params{}, err
	}
	if mn == 0xffff { // nothing above Tiny: every code is 255
		mn = mx + 1
	}
	if mse && p.LogMin != p.LogMax {
		if int(mx)-int(mn) > 2*n {
			return rc.encodeSpread16(row, p, Levels8, codes, signs), nil
		}
		var t *codeTable
		t, p = rc.mse16(row, p, mn, mx, Levels8)
		rc.lookup16(t, p, row, codes, signs)
		return p, nil
	}
	if int(mx)-int(mn) > 8*n {
		// A short row spread wide: the formula per element is cheaper
		// than per pattern.
		le := binary.LittleEndian
		for i := range codes {
			h := le.Uint16(row[2*i:])
			codes[i] = rc.code16(h&0x7fff, p)
			nz := int8(min(h&0x7fff, 1))
			signs[i] = nz - 2*nz*int8(h>>15)
		}
		return p, nil
	}
	rc.lookup16(rc.table16(0, p, mn, mx, Levels8), p, row, codes, signs)
	return p, nil
}

// range16 returns the stored range of a row whose largest magnitude
// pattern is mx and smallest above Tiny mn (0xffff for none).
func (rc *RowCoder) range16(mx, mn uint16) (Params, error) {
	p, err := rc.rawRange16(mx, mn)
	return StoredRange(p), err
}

// rawRange16 is range16 before StoredRange.
func (rc *RowCoder) rawRange16(mx, mn uint16) (Params, error) {
	r := NewMagnitudes()
	r.addMagnitude(float64(rc.toF32(mx)))
	if mn != 0xffff {
		r.addMagnitude(float64(rc.toF32(mn)))
	}
	return r.Params()
}

// table16 returns code table k of rc for a code of the given levels
// (Levels8, or Levels7 for the i8 form) with the codes under p of the
// patterns [mn, mx], all above Tiny, and the last code for those at or
// below Tiny; its other entries are left from earlier rows.
func (rc *RowCoder) table16(k int, p Params, mn, mx uint16, levels int) *codeTable {
	tables := &rc.tables
	if levels == Levels7 {
		tables = &rc.tables7
	}
	t := tables[k]
	if t == nil {
		t = new(codeTable)
		for m := range int(rc.tinyH) + 1 {
			t[m] = uint8(levels)
		}
		tables[k] = t
	}
	if mn > mx {
		return t
	}
	d := p.LogMax - p.LogMin
	if d == 0 {
		for m := int(mn); m <= int(mx); m++ {
			t[m] = 1
		}
		return t
	}
	// Patterns at or below exp(log_min) clamp to the last code (the
	// logarithms grow with the patterns): an mse range leaves many.
	logs := rc.tab.logs[mn : int(mx)+1]
	c, _ := slices.BinarySearch(logs, math.Nextafter(p.LogMin, math.Inf(1)))
	if low := t[int(mn) : int(mn)+c]; c > 0 {
		// By doubling copies: often hundreds of patterns.
		low[0] = uint8(levels)
		for k := 1; k < c; k *= 2 {
			copy(low[k:], low[:k])
		}
	}
	rowCodes16Fast(logs[c:], rc.tab.logs32[int(mn)+c:int(mx)+1], t[int(mn)+c:int(mx)+1], p.LogMin, d, float64(levels))
	return t
}

// lookup16 writes the codes and signs of a row from t, which holds the
// code under p of each of its magnitudes.
func (rc *RowCoder) lookup16(t *codeTable, p Params, row []byte, codes []uint8, signs []int8) {
	n := len(codes)
	for i := 0; i < n; {
		i += encode16Fast(t, row[2*i:2*n], codes[i:], signs[i:])
		// The kernels stop before the last few, and at a group holding a
		// magnitude without an entry, which t should not have.
		for end := min(i+32, n); i < end; i++ {
			h := uint16(row[2*i]) | uint16(row[2*i+1])<<8
			c := t[h&0x7fff]
			if c == 0 {
				c = rc.code16(h&0x7fff, p)
			}
			codes[i] = c
			nz := int8(min(h&0x7fff, 1))
			signs[i] = nz - 2*nz*int8(h>>15)
		}
	}
}

// mse16 chooses the range of a long row, for a code of the given levels,
// whose stored min/max range is p0 and whose patterns above Tiny are in
// [mn, mx], as Encode and EncodeI8 do: by the model on the row's
// histogram, keeping p0 unless the choice's exact error is smaller. It
// returns the range and the table holding its codes.
func (rc *RowCoder) mse16(row []byte, p0 Params, mn, mx uint16, levels int) (*codeTable, Params) {
	if rc.counts == nil {
		rc.counts = new([1 << 15]uint32)
	}
	counts := rc.counts
	// The smallest non-zero pattern, which may be at or below Tiny.
	lo := mn
	if _, nz := minMax16Fast(row, 0, 0, 0xffff); nz < lo {
		lo = nz
	}
	histogram16(row, counts)
	counts[0] = 0
	defer clear(counts[lo : int(mx)+1])
	p := rc.model16(p0, lo, mx, levels, len(row)/2)
	t0 := rc.table16(0, p0, mn, mx, levels)
	if p == p0 {
		return t0, p0
	}
	t := rc.table16(1, p, mn, mx, levels)
	var dec0, dec [256]float64
	if levels == Levels8 {
		fastDecTable(p0, &dec0)
		fastDecTable(p, &dec)
	} else {
		decTablesL(p0, p, levels, &dec0, &dec)
	}
	if e0, e := rc.errors16(lo, mx, t0, t, &dec0, &dec); e0 <= e {
		return t0, p0
	}
	return t, p
}

// errors16 returns the squared errors of the row whose histogram is
// rc.counts, its non-zero patterns in [lo, mx], decoded through the code
// tables t0 and t with the decoded magnitudes dec0 and dec: both in one
// pass over the patterns (an absent pattern has weight 0, and its stale
// codes decode to a finite value), summed in eight lanes as errorLanes
// sums them.
func (rc *RowCoder) errors16(lo, mx uint16, t0, t *codeTable, dec0, dec *[256]float64) (e0, e float64) {
	end := int(mx) + 1
	var acc [16]float64
	errorLanesFast(rc.counts[lo:end], rc.tab.mags[lo:end], t0[lo:end], t[lo:end], dec0, dec, &acc)
	for k := range 8 {
		e0, e = e0+acc[k], e+acc[8+k]
	}
	return e0, e
}

// errorLanes adds to acc[k] and acc[8+k] the squared errors under the
// codes t0 and t, decoded by dec0 and dec, of the patterns i = k mod 8 of
// a histogram: counts[i] elements of magnitude mags[i]. The kernel does
// the same operations in the same order: both paths choose alike.
func errorLanes(counts []uint32, mags []float32, t0, t []uint8, dec0, dec *[256]float64, acc *[16]float64) {
	mags, t0, t = mags[:len(counts)], t0[:len(counts)], t[:len(counts)]
	for i, c := range counts {
		w, a := float64(c), float64(mags[i])
		x0, x := a-dec0[t0[i]], a-dec[t[i]]
		k := i & 7
		// The conversions keep each product rounded, as the kernel's.
		acc[k] += float64(float64(w*x0) * x0)
		acc[8+k] += float64(float64(w*x) * x)
	}
}

// model16 is MSERange, for a code of the given levels, on the row of
// elems elements whose histogram is rc.counts, its non-zero patterns being
// in [lo, mx].
func (rc *RowCoder) model16(p0 Params, lo, mx uint16, levels, elems int) Params {
	// A bucket's magnitudes are k * 2^x for integers k < 2^11 and one x,
	// so its sums are integers times powers of two: summed as integers
	// they are exact, as the old float sums were (below 2^53, for rows of
	// up to 2^31 elements), and equal to them.
	h, tab, counts := &rc.hist, rc.tab, rc.counts
	blo := int(math.Float32bits(tab.mags[lo]) >> 20)
	b := blo
	for m := int(lo); m <= int(mx); {
		if rc.dt == dtype.BF16 && m&15 == 0 && elems < 1<<24 {
			// Whole groups of 16 BF16 buckets by the kernel: bucket m>>4
			// holds patterns m to m+15, and k = K + 8j for the j-th.
			if rc.sums == nil {
				rc.sums = new([48 * 128]uint32)
			}
			g := bucketSumsFast(counts[m:int(mx)+1], rc.sums[:])
			for i := range 16 * g {
				o := rc.sums[48*(i/16)+i%16:]
				b = m>>4 + i
				n, sj, sj2 := uint64(o[0]), uint64(o[16]), uint64(o[32])
				K := bucketK(b)
				h.setBucket(b, n, K*n+8*sj, K*K*n+16*K*sj+64*sj2)
			}
			if m += 256 * g; m > int(mx) {
				break
			}
		}
		b = int(math.Float32bits(tab.mags[m]) >> 20)
		end := min(int(tab.next[b]), int(mx)+1)
		var n, s1, s2 uint64
		if rc.dt == dtype.BF16 && m&15 == 0 && end == m+16 {
			// A whole BF16 bucket: k = K + 8j for j = m&15.
			n, s1, s2 = bucketBF16((*[16]uint32)(counts[m:end]), bucketK(b))
			m = end
		}
		for ; m < end; m++ {
			w, k := uint64(counts[m]), uint64(tab.sig[m])
			n += w
			s1 += w * k
			s2 += w * k * k
		}
		h.setBucket(b, n, s1, s2)
	}
	return h.pick(p0, blo, b, levels)
}

// setBucket sets bucket b's count and sums of magnitudes and their squares
// from its integer sums of k and k², its magnitudes being k * 2^x.
func (h *rowHist) setBucket(b int, n, s1, s2 uint64) {
	e := max(b>>3, 1) // the float32 biased exponent, 1 for subnormals
	scale := math.Float64frombits(uint64(e-137+1023) << 52)
	// Through int64, whose conversion is one instruction: the sums are
	// below 2^53 (see model16).
	h.n[b] = float64(int64(n))
	h.s1[b] = float64(int64(s1)) * scale
	h.s2[b] = float64(int64(s2)) * scale * scale
}

// bucketBF16 returns the count and the sums of k and k² of a BF16 bucket
// whose patterns' counts are c, k being K + 8j for the j-th.
func bucketBF16(c *[16]uint32, K uint64) (n, s1, s2 uint64) {
	// Unrolled, in four independent chains, with j and j² as constants.
	var sj, sj2 uint64
	for j := uint64(0); j < 16; j += 4 {
		w0, w1, w2, w3 := uint64(c[j]), uint64(c[j+1]), uint64(c[j+2]), uint64(c[j+3])
		n += w0 + w1 + w2 + w3
		sj += j*(w0+w1+w2+w3) + w1 + 2*w2 + 3*w3
		sj2 += j*j*w0 + (j+1)*(j+1)*w1 + (j+2)*(j+2)*w2 + (j+3)*(j+3)*w3
	}
	return n, K*n + 8*sj, K*K*n + 16*K*sj + 64*sj2
}

// bucketK is the significand, in units of 2^-10, of the smallest
// magnitude of float32 bucket b (its top 11 bits): the implicit bit is 0
// in the subnormal buckets.
func bucketK(b int) uint64 {
	return uint64(min(b>>3, 1))<<10 | uint64(b&7)<<7
}

// histogram16 adds to counts the magnitude patterns of the 16-bit values
// of row.
func histogram16(row []byte, counts *[1 << 15]uint32) {
	le := binary.LittleEndian
	for ; len(row) >= 8; row = row[8:] {
		x := le.Uint64(row)
		counts[x&0x7fff]++
		counts[x>>16&0x7fff]++
		counts[x>>32&0x7fff]++
		counts[x>>48&0x7fff]++
	}
	for ; len(row) >= 2; row = row[2:] {
		counts[le.Uint16(row)&0x7fff]++
	}
}

// fastDecTable is decTable with eight chains of products from each end
// instead of one (and a product by 1/r instead of a division by r), for
// mse16's ranking of two ranges: as close, a few ulps, and faster.
func fastDecTable(p Params, dec *[256]float64) {
	r := math.Exp((p.LogMax - p.LogMin) / 254)
	dec[255], dec[1] = p.Magnitude(255), p.Magnitude(1)
	up, down := r, 1/r
	for c := 254; c >= 247; c-- {
		dec[c], up = dec[255]*up, up*r
	}
	for c := 2; c <= 9; c++ {
		dec[c], down = dec[1]*down, down/r
	}
	r2 := r * r
	r8 := r2 * r2 * (r2 * r2)
	d8 := 1 / r8
	for c := 246; c > 128; c-- {
		dec[c] = dec[c+8] * r8
	}
	for c := 10; c <= 128; c++ {
		dec[c] = dec[c-8] * d8
	}
}

// decTable fills dec with the decoded magnitude of each code under p, by
// a product from both ends (exact there, within a few ulps between): a
// ranking of two ranges needs no more, and 256 exponentials per range
// would cost more than the row.
func decTable(p Params, dec *[256]float64) {
	r := math.Exp((p.LogMax - p.LogMin) / 254)
	dec[255], dec[1] = p.Magnitude(255), p.Magnitude(1)
	for c := 254; c > 128; c-- {
		dec[c] = dec[c+1] * r
	}
	for c := 2; c <= 128; c++ {
		dec[c] = dec[c-1] / r
	}
}

// exactSearch returns the stored range keeping p0's log_max whose log_min,
// in [p0.LogMin, p0.LogMax], gives the least sqErr, by a coarse-to-fine
// search (64 candidates, then three rounds of 32 around the best); p0 is
// a candidate.
func exactSearch(p0 Params, sqErr func(Params) float64) Params {
	best, bestErr := p0, sqErr(p0)
	lo, hi := p0.LogMin, p0.LogMax
	for _, steps := range []int{64, 32, 32, 32} {
		width := (hi - lo) / float64(steps)
		for k := 0; k < steps; k++ {
			p := StoredRange(Params{LogMin: lo + float64(k)*width, LogMax: p0.LogMax})
			if e := sqErr(p); e < bestErr {
				best, bestErr = p, e
			}
		}
		lo, hi = max(p0.LogMin, best.LogMin-width), min(p0.LogMax, best.LogMin+width)
	}
	return best
}

// distinct16 is a row's distinct magnitude patterns and their counts.
type distinct16 struct {
	stamp [1 << 15]uint32 // == cur when the pattern is in the current row
	count [1 << 15]uint32
	code  [1 << 15]uint8 // the pattern's code in the current row
	cur   uint32
	list  []uint16 // the row's distinct patterns, in first-seen order
}

// scanKeys finds the distinct keys of a row, with their counts.
func (d *distinct16) scanKeys(keys []uint16) {
	d.cur++
	if d.cur == 0 {
		clear(d.stamp[:])
		d.cur = 1
	}
	d.list = d.list[:0]
	cur := d.cur
	for _, m := range keys {
		if d.stamp[m] != cur {
			d.stamp[m], d.count[m] = cur, 0
			d.list = append(d.list, m)
		}
		d.count[m]++
	}
}

// scan finds the distinct magnitudes of a row and writes its signs.
func (d *distinct16) scan(row []byte, signs []int8) {
	d.cur++
	if d.cur == 0 { // wrapped: no stamp may match a new row by chance
		clear(d.stamp[:])
		d.cur = 1
	}
	if cap(d.list) < len(signs) {
		d.list = make([]uint16, len(signs))
	}
	list := d.list[:len(signs)]
	cur := d.cur
	le := binary.LittleEndian
	k := 0
	// Without branches: whether a pattern is new is unpredictable.
	for i := range signs {
		h := le.Uint16(row[2*i:])
		m := h & 0x7fff
		nz := int8(min(m, 1))
		signs[i] = nz - 2*nz*int8(h>>15)
		fresh := d.stamp[m] ^ cur
		isNew := int((fresh | -fresh) >> 31) // 1 when m is new in this row
		d.stamp[m] = cur
		d.count[m] = d.count[m]&uint32(isNew-1) + 1
		list[k] = m
		k += isNew
	}
	d.list = list[:k]
}

// spread16 is encodeSpread16's scratch: for each element of a row, the
// logarithm of its magnitude (also rounded to float32), its magnitude, 1
// (0 for a zero) as its count, and its code under a second range.
type spread16 struct {
	logs   []float64
	logs32 []float32
	mags   []float32
	counts []uint32
	t      []uint8
}

// encodeSpread16 is Encode with mse, for a code of the given levels
// (Levels8, or Levels7 for EncodeI8's magnitudes), for a finite F16 or
// BF16 row longer than ExactRowMax whose min/max range is p0 (log_min
// below log_max) and whose patterns spread over more than twice its
// length, as F16's do (eight times BF16's patterns per octave): element by
// element, with the kernels, rather than over every pattern between the
// smallest and the largest. It chooses as mse16 does: the model's range,
// kept only when its exact error is smaller than p0's.
func (rc *RowCoder) encodeSpread16(row []byte, p0 Params, levels int, codes []uint8, signs []int8) Params {
	n := len(codes)
	if rc.spread == nil {
		rc.spread = new(spread16)
	}
	s := rc.spread
	if len(s.logs) < n {
		s.logs, s.logs32, s.mags = make([]float64, n), make([]float32, n), make([]float32, n)
		s.counts, s.t = make([]uint32, n), make([]uint8, n)
	}
	logs, logs32, mags, counts := s.logs[:n], s.logs32[:n], s.mags[:n], s.counts[:n]
	tab := rc.tab
	// A zero takes the smallest non-zero magnitude's logarithm, which codes
	// to the last code under either range, as code16 codes a zero; its
	// count of 0 keeps it out of the errors. The logarithms then lie in
	// [zl, logs[mx]], the kernels' bound.
	mx, nz := minMax16Fast(row, 0, 0, 0xffff)
	zl, zl32 := tab.logs[nz], tab.logs32[nz]
	h := &rc.hist
	lo, hi := len(h.n), -1
	zeros := 0
	le := binary.LittleEndian
	for i := range codes {
		v := le.Uint16(row[2*i:])
		m := v & 0x7fff
		a := tab.mags[m]
		mags[i] = a
		if m == 0 {
			signs[i], counts[i] = 0, 0
			logs[i], logs32[i] = zl, zl32
			zeros++
			continue
		}
		signs[i], counts[i] = 1-2*int8(v>>15), 1
		logs[i], logs32[i] = tab.logs[m], tab.logs32[m]
		// The model's sums, exact in float64 in any order: a bucket's
		// magnitudes share an exponent and have at most 11 significant
		// bits, so its sums stay integers times a power of two, well
		// within float64's 53 bits.
		b := int(math.Float32bits(a) >> 20)
		f := float64(a)
		h.n[b]++
		h.s1[b] += f
		h.s2[b] += f * f
		lo, hi = min(lo, b), max(hi, b)
	}
	p := h.pick(p0, lo, hi, levels)
	top := float64(levels)
	rowCodes16Within(logs, logs32, codes, p0.LogMin, p0.LogMax-p0.LogMin, top, zl, tab.logs[mx])
	chosen := p0
	if p != p0 && p.LogMin != p.LogMax {
		t := s.t[:n]
		rowCodes16Within(logs, logs32, t, p.LogMin, p.LogMax-p.LogMin, top, zl, tab.logs[mx])
		var dec0, dec [256]float64
		decTablesL(p0, p, levels, &dec0, &dec)
		var acc [16]float64
		errorLanesFast(counts, mags, codes, t, &dec0, &dec, &acc)
		var e0, e float64
		for k := range 8 {
			e0, e = e0+acc[k], e+acc[8+k]
		}
		if e < e0 {
			copy(codes, t)
			chosen = p
		}
	}
	// Zeros take the last code exactly, whatever the rounding of log_min
	// did to the smallest magnitude's code.
	for i := 0; zeros > 0 && i < n; i++ {
		if counts[i] == 0 {
			codes[i] = uint8(levels)
			zeros--
		}
	}
	return chosen
}

// encodeDistinct16 is Encode with mse for F16 and BF16 rows of at most
// ExactRowMax elements: it works on the row's distinct magnitudes, with
// their counts, rather than on all the patterns between its smallest and
// largest.
func (rc *RowCoder) encodeDistinct16(row []byte, first int64, codes []uint8, signs []int8) (Params, error) {
	if rc.dist == nil {
		rc.dist = new(distinct16)
	}
	d := rc.dist
	d.scan(row, signs)
	var maxM uint16
	minM := uint16(0xffff)
	for _, m := range d.list {
		maxM = max(maxM, m)
		if m > rc.tinyH {
			minM = min(minM, m)
		}
	}
	if maxM >= rc.expAll {
		le := binary.LittleEndian
		for i := range codes {
			if h := le.Uint16(row[2*i:]); h&rc.expAll == rc.expAll {
				return Params{}, &NonFiniteError{Index: first + int64(i), Value: float64(rc.toF32(h))}
			}
		}
	}
	p, err := rc.range16(maxM, minM)
	if err != nil {
		return Params{}, err
	}
	if p.LogMin != p.LogMax {
		p = rc.mseDistinct16(p)
	}
	for _, m := range d.list {
		d.code[m] = rc.code16(m, p)
	}
	le := binary.LittleEndian
	for i := range codes {
		codes[i] = d.code[le.Uint16(row[2*i:])&0x7fff]
	}
	return p, nil
}

// mseDistinct16 chooses the range of a row of at most ExactRowMax
// elements whose min/max range is p0 and whose distinct magnitudes are in
// rc.dist, by the exact search.
func (rc *RowCoder) mseDistinct16(p0 Params) Params {
	d := rc.dist
	return exactSearch(p0, func(p Params) float64 {
		var dec [256]float64
		decTable(p, &dec)
		var e float64
		for _, m := range d.list {
			if m != 0 {
				x := float64(rc.toF32(m)) - dec[rc.code16(m, p)]
				e += float64(d.count[m]) * x * x
			}
		}
		return e
	})
}
