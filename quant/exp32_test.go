package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// exp32 rounds as float32(math.Exp) does: over the log magnitudes a
// decoder meets and past float32's range, at random points and at the
// logs of midpoints between float32 values, where the rounding is
// closest.
func TestExp32(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	check := func(x float64) {
		t.Helper()
		if got, want := exp32(x), float32(math.Exp(x)); math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("exp32(%v) = %v, want %v", x, got, want)
		}
	}
	for range 2_000_000 {
		check(-110 + 125*r.Float64())
	}
	for range 300_000 {
		f := math.Float32frombits(uint32(r.Uint64N(0x7f000000-0x00800000)) + 0x00800000)
		mid := (float64(f) + float64(math.Nextafter32(f, math.MaxFloat32))) / 2
		x := math.Log(mid)
		check(x)
		check(math.Nextafter(x, 0))
		check(math.Nextafter(x, math.Inf(1)))
	}
	for _, x := range []float64{0, math.Copysign(0, -1), 86.99, 87, 87.9, 88, 88.7, 89, -86.99, -87, -87.5, -103, -104, -109.9, -110, -110.1, -200, -746, -1e300, 710, math.Inf(1), math.Inf(-1), math.NaN()} {
		check(x)
	}
}

func BenchmarkExp32(b *testing.B) {
	xs := make([]float64, 1024)
	for i := range xs {
		xs[i] = -20 + 20*float64(i)/1024
	}
	var s float32
	b.Run("exp32", func(b *testing.B) {
		for b.Loop() {
			for _, x := range xs {
				s += exp32(x)
			}
		}
	})
	b.Run("math.Exp", func(b *testing.B) {
		for b.Loop() {
			for _, x := range xs {
				s += float32(math.Exp(x))
			}
		}
	})
	_ = s
}
