package quant

import (
	"errors"
	"fmt"
	"math"
)

// MSEParams returns parameters that keep the min/max log_max and choose the
// log_min that minimises the tensor's total squared reconstruction error,
// found by a coarse-to-fine search over [log_min of Params, log_max]. The
// min/max log_min is one of the candidates, so the result is never worse
// than Params on the scanned values. For 16-bit dtypes the error is exact
// (the counts hold every value); for F32 and F64 it is measured on the
// counts' buckets of magnitudes.
func (s *Scanner) MSEParams() (Params, error) { return s.MSEParamsLevels(Levels8) }

// MSEParamsLevels is MSEParams for a code of the given levels: Levels8
// for the 8-bit code (MSEParams), Levels7 for the i8 form's 7-bit code,
// whose codes are round(levels - (levels-1) * (ln|w| - log_min) /
// (log_max - log_min)) in 1..levels.
func (s *Scanner) MSEParamsLevels(levels int) (Params, error) {
	if levels < 2 || levels > Levels8 {
		return Params{}, fmt.Errorf("quant: %d levels: want 2..%d", levels, Levels8)
	}
	if s.counts == nil {
		return Params{}, errors.New("the mse range needs a scanner that counts values (NewScanner)")
	}
	p0, err := s.Params()
	if err != nil || p0.LogMax == p0.LogMin {
		return p0, err
	}
	mags, ns := s.magnitudes()
	return mseSearch(p0, mags, ns, levels), nil
}

// mseSearch is MSEParamsLevels's search over the distinct non-zero
// magnitudes mags, in increasing order, with their counts ns, from the
// min/max range p0 (log_min < log_max).
func mseSearch(p0 Params, mags, ns []float64, levels int) Params {
	logs := make([]float64, len(mags))
	for i, m := range mags {
		logs[i] = math.Log(m)
	}
	var dec [256]float64
	top := float64(levels)
	sqErr := func(lmin float64) float64 {
		p := Params{LogMin: lmin, LogMax: p0.LogMax}
		for c := range levels + 1 {
			dec[c] = p.magnitudeL(c, levels)
		}
		scale := float64(levels-1) / (p.LogMax - p.LogMin)
		var e float64
		for i, m := range mags {
			c := top
			if m > Tiny {
				// As Params.Code, with the logarithm computed once (the
				// order of operations differs: ties may round otherwise).
				c = min(max(math.RoundToEven(top-(logs[i]-lmin)*scale), 1), top)
			}
			d := m - dec[int(c)]
			e += ns[i] * d * d
		}
		return e
	}
	best, bestErr := p0.LogMin, sqErr(p0.LogMin)
	lo, hi := p0.LogMin, p0.LogMax
	for _, steps := range []int{32, 16, 16, 16} {
		width := (hi - lo) / float64(steps)
		center := best
		for k := 0; k < steps; k++ {
			x := lo + float64(k)*width
			if e := sqErr(x); e < bestErr {
				best, bestErr = x, e
			}
		}
		lo, hi = max(p0.LogMin, best-width), min(p0.LogMax, best+width)
		if best == center && width < 1e-6 {
			break
		}
	}
	return Params{LogMin: best, LogMax: p0.LogMax}
}

// magnitudes returns the distinct non-zero magnitudes the scanner counted,
// in increasing order, and how many elements had each: for a 16-bit
// dtype its values, for F32 and F64 the middle of each bucket of the
// counts. NaN and infinities are left out (the range pass refuses them).
func (s *Scanner) magnitudes() (mags, ns []float64) {
	for h := 1; h < 1<<15; h++ {
		n := s.counts[h] + s.counts[h|0x8000]
		if n == 0 {
			continue
		}
		var m float64
		if s.toF32 != nil {
			if uint16(h)&s.expAll == s.expAll {
				continue
			}
			m = float64(s.toF32(uint16(h)))
		} else {
			m = float64(math.Float32frombits(uint32(h)<<16 | 0x8000)) // the bucket's middle
		}
		mags, ns = append(mags, m), append(ns, float64(n))
	}
	return mags, ns
}
