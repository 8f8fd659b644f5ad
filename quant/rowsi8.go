package quant

import (
	"encoding/binary"
	"math"
	"slices"
)

// The per-row granularity of the i8 form: each row's range is found as
// the 8-bit code's (RowCoder.Range, stored in float32 by StoredRange). With
// mse, rows of at most ExactRowMax elements, and F32 and F64 rows, take
// the search of MSEParamsLevels(Levels7) on the row's distinct magnitudes
// (exact, where a Scanner counts F32 and F64 in buckets); longer 16-bit
// rows take the model of MSERange with the 7-bit code's step, kept only
// when its exact error beats the min/max range's, as the 8-bit rows do:
// on the row's histogram of patterns, or element by element when they
// spread over more than twice the row's length (encodeSpread16).
// The codes are the formula's with the stored range: for 16-bit rows
// through a table of the row's patterns, for F32 and F64 per element.

// EncodeI8 writes the i8 codes of one row, whose first element has flat
// index first, and returns the stored range it used: the row's min/max
// range, or with mse the range chosen as above, rounded as StoredRange
// rounds it. codes must hold one entry per element of the row.
func (rc *RowCoder) EncodeI8(row []byte, first int64, mse bool, codes []int8) (Params, error) {
	n := len(row) / rc.size
	codes = codes[:n]
	row = row[:n*rc.size]
	if rc.tab == nil {
		return rc.encodeI8Values(row, first, mse, codes)
	}
	mx, mn := minMax16Fast(row, rc.tinyH, 0, 0xffff)
	if mx >= rc.expAll {
		if _, err := rc.Range(row, first); err != nil {
			return Params{}, err // names the first NaN or infinity
		}
	}
	raw, err := rc.rawRange16(mx, mn)
	if err != nil {
		return Params{}, err
	}
	p := StoredRange(raw)
	var t *codeTable  // the codes of p, when mse16 has them
	if mn == 0xffff { // nothing above Tiny: every code is ±127
		mn = mx + 1
	}
	if cap(rc.mcodes) < n {
		rc.mcodes, rc.msigns = make([]uint8, n), make([]int8, n)
	}
	mc, ms := rc.mcodes[:n], rc.msigns[:n]
	if mse && p.LogMin != p.LogMax && raw.LogMin != raw.LogMax {
		switch {
		case n <= ExactRowMax:
			p = StoredRange(mseSearch(raw, rc.distinctMagnitudes(row), rc.distinctCounts(), Levels7))
		case int(mx)-int(mn) > 2*n:
			p = rc.encodeSpread16(row, p, Levels7, mc, ms)
			signCodesFast(mc, ms, codes)
			return p, nil
		default:
			t, p = rc.mse16(row, p, mn, mx, Levels7)
		}
	}
	if t == nil {
		t = rc.table16(0, p, mn, mx, Levels7)
	}
	// The 8-bit kernel gives the magnitudes' codes and the signs; then
	// the codes take their signs, eight at a time.
	i := encode16Fast(t, row, mc, ms)
	le := binary.LittleEndian
	for ; i < n; i++ {
		h := le.Uint16(row[2*i:])
		mc[i] = t[h&0x7fff]
		nz := int8(min(h&0x7fff, 1))
		ms[i] = nz - 2*nz*int8(h>>15)
	}
	signCodesFast(mc, ms, codes)
	return p, nil
}

// encodeI8Values is EncodeI8 for F32 and F64 rows: the formula per
// element.
func (rc *RowCoder) encodeI8Values(row []byte, first int64, mse bool, codes []int8) (Params, error) {
	v := rc.values(row)
	r := NewMagnitudes()
	r.Add(v, first)
	raw, err := r.Params()
	if err != nil {
		return Params{}, err
	}
	p := StoredRange(raw)
	if mse && p.LogMin != p.LogMax && raw.LogMin != raw.LogMax {
		p = StoredRange(mseSearch(raw, rc.distinctMagnitudes(row), rc.distinctCounts(), Levels7))
	}
	for i, x := range rc.values(row) {
		codes[i] = p.CodeI8(x)
	}
	return p, nil
}

// distinctMagnitudes returns the distinct non-zero magnitudes of a row,
// in increasing order; distinctCounts then gives how many elements had
// each.
func (rc *RowCoder) distinctMagnitudes(row []byte) []float64 {
	rc.mags, rc.ns = rc.mags[:0], rc.ns[:0]
	if rc.tab == nil {
		// F32 and F64: the values themselves, sorted.
		for _, x := range rc.values(row) {
			if x != 0 {
				rc.mags = append(rc.mags, math.Abs(x))
			}
		}
		slices.Sort(rc.mags)
		k := 0
		for i, a := range rc.mags {
			if i > 0 && a == rc.mags[k-1] {
				rc.ns[k-1]++
				continue
			}
			rc.mags[k] = a
			rc.ns = append(rc.ns, 1)
			k++
		}
		rc.mags = rc.mags[:k]
		return rc.mags
	}
	if rc.dist == nil {
		rc.dist = new(distinct16)
	}
	n := len(row) / 2
	if cap(rc.keys) < n {
		rc.keys = make([]uint16, n)
	}
	keys := rc.keys[:n]
	le := binary.LittleEndian
	for i := range keys {
		keys[i] = le.Uint16(row[2*i:]) & 0x7fff
	}
	d := rc.dist
	d.scanKeys(keys)
	slices.Sort(d.list)
	for _, k := range d.list {
		if k != 0 {
			rc.mags = append(rc.mags, float64(rc.toF32(k)))
			rc.ns = append(rc.ns, float64(d.count[k]))
		}
	}
	return rc.mags
}

// distinctCounts returns the counts of the magnitudes distinctMagnitudes
// returned last.
func (rc *RowCoder) distinctCounts() []float64 { return rc.ns }

// decTablesL fills dec0[1..levels] and dec1[1..levels] with the decoded
// magnitude of each code of a code of the given levels under p0 and p1,
// by products from both ends (a ranking of two ranges needs no more), and
// dec0[0] and dec1[0] with 0. The four chains of products run side by
// side: each product waits for the one before it.
func decTablesL(p0, p1 Params, levels int, dec0, dec1 *[256]float64) {
	r0 := math.Exp((p0.LogMax - p0.LogMin) / float64(levels-1))
	r1 := math.Exp((p1.LogMax - p1.LogMin) / float64(levels-1))
	dec0[0], dec0[levels], dec0[1] = 0, p0.magnitudeL(levels, levels), p0.magnitudeL(1, levels)
	dec1[0], dec1[levels], dec1[1] = 0, p1.magnitudeL(levels, levels), p1.magnitudeL(1, levels)
	mid := (levels + 1) / 2
	// Codes levels-1 down to mid+1 from the top, 2 up to mid from the
	// bottom: levels-1-mid and mid-1 steps, the latter as many or one
	// more.
	up, down := levels-1-mid, mid-1
	for i := range max(up, down) {
		if i < up {
			c := levels - 1 - i
			dec0[c] = dec0[c+1] * r0
			dec1[c] = dec1[c+1] * r1
		}
		if i < down {
			c := 2 + i
			dec0[c] = dec0[c-1] / r0
			dec1[c] = dec1[c-1] / r1
		}
	}
}
