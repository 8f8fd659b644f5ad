package dtype

import (
	"math"
	"math/big"
	"testing"
)

func TestF16RoundTripEveryPattern(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToFloat32(uint16(h))
		got := Float32ToF16(f)
		if f != f { // NaN stays NaN
			if got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, got)
			}
			continue
		}
		if got != uint16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, got)
		}
	}
}

func TestBF16RoundTripEveryPattern(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := BF16ToFloat32(uint16(h))
		got := Float32ToBF16(f)
		if f != f {
			if got&0x7f80 != 0x7f80 || got&0x7f == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, got)
			}
			continue
		}
		if got != uint16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, got)
		}
	}
}

// nearest returns the pattern among lo and hi (consecutive, same sign,
// finite) nearest to x with ties to the even pattern, computed exactly.
func nearest(x float64, lo, hi uint16, toF32 func(uint16) float32) uint16 {
	a, b, v := new(big.Float).SetFloat64(float64(toF32(lo))), new(big.Float).SetFloat64(float64(toF32(hi))), new(big.Float).SetFloat64(x)
	da := new(big.Float).Sub(v, a)
	db := new(big.Float).Sub(b, v)
	da.Abs(da)
	db.Abs(db)
	switch da.Cmp(db) {
	case -1:
		return lo
	case 1:
		return hi
	}
	if lo&1 == 0 {
		return lo
	}
	return hi
}

// TestRoundingAgainstExact checks float32 and float64 rounding to both
// 16-bit formats at midpoints and near them, against exact arithmetic.
func TestRoundingAgainstExact(t *testing.T) {
	type format struct {
		name  string
		toF32 func(uint16) float32
		from  func(float64) uint16
		from3 func(float32) uint16
		max   uint16 // largest finite positive pattern
	}
	for _, f := range []format{
		{"F16", F16ToFloat32, Float64ToF16, Float32ToF16, 0x7bff},
		{"BF16", BF16ToFloat32, Float64ToBF16, Float32ToBF16, 0x7f7f},
	} {
		for lo := uint16(0); lo < f.max; lo++ {
			hi := lo + 1
			a, b := float64(f.toF32(lo)), float64(f.toF32(hi))
			mid := (a + b) / 2 // exact in float64
			for _, x := range []float64{mid, math.Nextafter(mid, a), math.Nextafter(mid, b), a, b} {
				for _, sign := range []float64{1, -1} {
					want := nearest(x, lo, hi, f.toF32)
					if sign < 0 {
						want |= 0x8000
					}
					if got := f.from(sign * x); got != want {
						t.Fatalf("%s from float64 %v: got %#04x, want %#04x", f.name, sign*x, got, want)
					}
					if x32 := float32(x); float64(x32) == x {
						if got := f.from3(float32(sign * x)); got != want {
							t.Fatalf("%s from float32 %v: got %#04x, want %#04x", f.name, sign*x, got, want)
						}
					}
				}
			}
		}
	}
}

func TestOverflowAndNaN(t *testing.T) {
	cases := []struct {
		name string
		got  uint16
		want uint16
	}{
		{"F16 of 1e6", Float64ToF16(1e6), 0x7c00},
		{"F16 of -1e6", Float64ToF16(-1e6), 0xfc00},
		{"F16 of 65519", Float64ToF16(65519), 0x7bff},
		{"F16 of 65520", Float64ToF16(65520), 0x7c00},
		{"F16 of 1e-9", Float64ToF16(1e-9), 0},
		{"BF16 of 1e39", Float64ToBF16(1e39), 0x7f80},
		{"BF16 of +Inf", Float32ToBF16(float32(math.Inf(1))), 0x7f80},
		{"F16 of -Inf", Float32ToF16(float32(math.Inf(-1))), 0xfc00},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %#04x, want %#04x", c.name, c.got, c.want)
		}
	}
	if h := Float64ToF16(math.NaN()); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("F16 of NaN: %#04x is not a NaN", h)
	}
	if h := Float64ToBF16(math.NaN()); h&0x7f80 != 0x7f80 || h&0x7f == 0 {
		t.Errorf("BF16 of NaN: %#04x is not a NaN", h)
	}
}
