package quant

import (
	"math"
	"math/bits"
)

// MagnitudesF32 fills tab[c], for each code c from 1 to 255, with
// float32(p.Magnitude(c)), to the bit; tab[0] is left as it is. It is the
// table builder of fused kernels, which need one table per row: about
// 30 times faster than 255 calls of math.Exp.
func (p Params) MagnitudesF32(tab *[256]float32) {
	// The magnitudes are a geometric sequence, built by products from the
	// smallest in four interleaved chains (independent products, which
	// pipeline; eight with AVX-512, in one register). Each product
	// differs from Magnitude's float64 by under 2⁻⁴⁰ relative for ranges
	// within ±700 (the rounding of Magnitude's argument, at most
	// 5·700·2⁻⁵³, the step's, raised to the 254th power, and at most 262
	// roundings of products, 8 chains or 4), so where the float32
	// rounding holds over ±2⁻³⁶ relative it is Magnitude's; elsewhere (one
	// code in about 4096, and outside float32's normal range) the
	// magnitude is computed as Magnitude does.
	lo, hi := p.LogMin, p.LogMax
	if !(lo >= -700 && hi <= 700 && lo <= hi) { // and NaN
		for c := 1; c < 256; c++ {
			tab[c] = magnitude32(p, c)
		}
		return
	}
	step := math.Exp((hi - lo) / 254)
	if magnitudesFast(p, tab, math.Exp(lo), step) {
		return
	}
	step2 := step * step
	step4 := step2 * step2
	v0 := math.Exp(lo)
	v1 := v0 * step
	v2 := v0 * step2
	v3 := v1 * step2
	var bad uint64 // codes whose float32 v may not give, by bit c%64 of word c/64
	for k := 0; ; k += 4 {
		tab[255-k], bad = float32(v0), bad|near32(v0)<<(k&63)
		if k == 252 {
			break
		}
		tab[254-k], bad = float32(v1), bad|near32(v1)<<(k&63+1)
		tab[253-k], bad = float32(v2), bad|near32(v2)<<(k&63+2)
		tab[252-k], bad = float32(v3), bad|near32(v3)<<(k&63+3)
		v0, v1, v2, v3 = v0*step4, v1*step4, v2*step4, v3*step4
		if k&63 == 60 {
			fix32(p, tab, 255-k+60, bad)
			bad = 0
		}
	}
	// 255-252 = 3: codes 2 and 1 remain.
	tab[2], tab[1] = float32(v1), float32(v2)
	fix32(p, tab, 255-192, bad|near32(v1)<<61|near32(v2)<<62)
}

// near32 returns 1 when float32(Magnitude) might not be float32(v), v
// being within 2⁻⁴⁰ relative of Magnitude's float64, else 0.
func near32(v float64) uint64 {
	// A float32 rounding changes at a midpoint between two float32
	// values: the low 29 bits of v's mantissa are then 1<<28. Within
	// 1<<17 of it (at least 2⁻³⁶ relative), or outside float32's normal
	// range, the float32 of Magnitude might differ from v's.
	low := math.Float64bits(v) & (1<<29 - 1)
	if low-(1<<28-1<<17) < 1<<18 || !(v >= 0x1p-126 && v < 0x1p128) {
		return 1
	}
	return 0
}

// fix32 computes as Magnitude does the codes top-i for each bit i of bad.
func fix32(p Params, tab *[256]float32, top int, bad uint64) {
	for ; bad != 0; bad &= bad - 1 {
		c := top - bits.TrailingZeros64(bad)
		tab[c] = magnitude32(p, c)
	}
}

// magnitude32 is float32(p.Magnitude(c)).
func magnitude32(p Params, c int) float32 {
	return exp32(p.LogMin + float64(255-c)/254*(p.LogMax-p.LogMin))
}
