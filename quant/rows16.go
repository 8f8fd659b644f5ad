package quant

import (
	"encoding/binary"
	"math"
)

// The 16-bit rows: a row of 3072 BF16 weights holds about a thousand
// distinct magnitudes, so the range, the mse choice and the codes are
// computed once per distinct magnitude, each with the formula, and the
// elements only look their code up.

// distinct16 is a row's distinct magnitude patterns and their counts.
type distinct16 struct {
	stamp [1 << 15]uint32 // == cur when the pattern is in the current row
	count [1 << 15]uint32
	code  [1 << 15]uint8 // the pattern's code in the current row
	cur   uint32
	list  []uint16 // the row's distinct patterns, in first-seen order
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

// code16 is Params.Code for the magnitude pattern m, with the logarithm
// from the table: the same operations in the same order, so the same code.
func (rc *RowCoder) code16(m uint16, p Params) uint8 {
	switch d := p.LogMax - p.LogMin; {
	case m <= rc.tinyH:
		return 255
	case d == 0:
		return 1
	default:
		return uint8(min(max(math.RoundToEven(255-254*(rc.logs[m]-p.LogMin)/d), 1), 255))
	}
}

// encode16 is Encode for F16 and BF16 rows.
func (rc *RowCoder) encode16(row []byte, first int64, mse bool, codes []uint8, signs []int8) (Params, error) {
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
	r := NewRange()
	r.addMagnitude(float64(rc.toF32(maxM)))
	if minM != 0xffff {
		r.addMagnitude(float64(rc.toF32(minM)))
	}
	p0, err := r.Params()
	if err != nil {
		return Params{}, err
	}
	p, coded := StoredRange(p0), false
	if mse && p.LogMin != p.LogMax {
		p, coded = rc.mse16(p, len(codes))
	}
	if !coded {
		for _, m := range d.list {
			d.code[m] = rc.code16(m, p)
		}
	}
	le := binary.LittleEndian
	for i := range codes {
		codes[i] = d.code[le.Uint16(row[2*i:])&0x7fff]
	}
	return p, nil
}

// mse16 chooses the range of a row of n elements whose distinct
// magnitudes are in rc.dist, as Encode does: by the exact search on short
// rows, else by the model, keeping p0 unless the choice's error is
// smaller; coded reports that rc.dist.code already holds its codes.
func (rc *RowCoder) mse16(p0 Params, n int) (p Params, coded bool) {
	d := rc.dist
	sqErr := func(p Params) float64 {
		var dec [256]float64
		decTable(p, &dec)
		var e float64
		for _, m := range d.list {
			c := rc.code16(m, p)
			d.code[m] = c
			if m != 0 {
				x := float64(rc.toF32(m)) - dec[c]
				e += float64(d.count[m]) * x * x
			}
		}
		return e
	}
	if n <= ExactRowMax {
		return exactSearch(p0, sqErr), false
	}
	p = rc.modelRange(p0, func(add func(m, w float64)) {
		for _, m := range d.list {
			if m != 0 {
				add(float64(rc.toF32(m)), float64(d.count[m]))
			}
		}
	})
	if p == p0 {
		return p0, false
	}
	// Both errors in one pass over the magnitudes; p's codes stay in
	// d.code.
	var dec0, dec [256]float64
	decTable(p0, &dec0)
	decTable(p, &dec)
	var e0, e float64
	for _, m := range d.list {
		c0, c := rc.code16(m, p0), rc.code16(m, p)
		d.code[m] = c
		if m != 0 {
			a, w := float64(rc.toF32(m)), float64(d.count[m])
			x0, x := a-dec0[c0], a-dec[c]
			e0 += w * x0 * x0
			e += w * x * x
		}
	}
	if e0 <= e {
		return p0, false
	}
	return p, true
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
