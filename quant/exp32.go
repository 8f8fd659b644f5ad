package quant

import "math"

// exp32 returns float32(math.Exp(x)), the rounding to float32 of a
// decoded magnitude, faster: exp(x) = 2^k · 2^(j/256) · p(r) within a few
// float64 ulps, rounded to float32 unless it lies within 64 ulps of a
// midpoint between two float32 values (a rounding that math.Exp, within
// an ulp of exp(x), could take the other way), where math.Exp decides.
// Outside float32's normal range it is math.Exp's.
func exp32(x float64) float32 {
	const (
		inv   = 256 / math.Ln2
		shift = 0x1.8p52
		// ln2/256 = c1 + c2, c1 with 21 trailing zero bits: n·c1 is exact
		// for |n| < 2^21, and so is x - n·c1 (Sterbenz).
		c1 = 0x1.62e42fee00000p-9
		c2 = 0x1.a39ef35793c76p-41
	)
	if x <= -110 {
		return 0 // exp(-110) is far below half the least float32, 2^-150
	}
	if !(x > -87 && x < 88) {
		return float32(math.Exp(x))
	}
	n := (x*inv + shift) - shift
	r := (x - n*c1) - n*c2
	ni := int64(n)
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120)))))
	b := math.Float64bits(exp2Table[ni&255]*p) + uint64(ni>>8)<<52
	if low := b & (1<<29 - 1); low > 1<<28-64 && low < 1<<28+64 {
		return float32(math.Exp(x))
	}
	return float32(math.Float64frombits(b))
}

// exp2Table holds 2^(j/256), each within an ulp: math.Exp2's.
var exp2Table = func() (t [256]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 256)
	}
	return t
}()
