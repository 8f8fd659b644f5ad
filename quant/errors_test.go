package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestErrorLanes checks that the kernel and the Go loop give the same
// sums, bit for bit (the choice of a row's range must not depend on the
// machine), at every length around the blocks, with absent patterns and
// stale codes among them.
func TestErrorLanes(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	var dec0, dec [256]float64
	fastDecTable(Params{LogMin: -9, LogMax: -2}, &dec0)
	fastDecTable(Params{LogMin: -7.3, LogMax: -2}, &dec)
	for n := 0; n < 70; n++ {
		counts, mags := make([]uint32, n), make([]float32, n)
		t0, t1 := make([]uint8, n), make([]uint8, n)
		for i := range n {
			if r.IntN(3) > 0 {
				counts[i] = uint32(r.IntN(40))
			}
			mags[i] = float32(math.Exp(-9 + 7*r.Float64()))
			t0[i], t1[i] = uint8(r.IntN(256)), uint8(r.IntN(256))
		}
		var fast, slow [16]float64
		fast[3], slow[3] = 1.5, 1.5 // the sums continue from acc
		errorLanesFast(counts, mags, t0, t1, &dec0, &dec, &fast)
		errorLanes(counts, mags, t0, t1, &dec0, &dec, &slow)
		if fast != slow {
			t.Fatalf("n=%d: kernel %v, Go %v", n, fast, slow)
		}
		var want0, want float64
		for i := range n {
			x0, x := float64(mags[i])-dec0[t0[i]], float64(mags[i])-dec[t1[i]]
			want0 += float64(counts[i]) * x0 * x0
			want += float64(counts[i]) * x * x
		}
		var fresh [16]float64
		errorLanes(counts, mags, t0, t1, &dec0, &dec, &fresh)
		var got0, got float64
		for k := range 8 {
			got0, got = got0+fresh[k], got+fresh[8+k]
		}
		if math.Abs(got0-want0) > 1e-12*math.Max(want0, 1e-300) || math.Abs(got-want) > 1e-12*math.Max(want, 1e-300) {
			t.Fatalf("n=%d: sums %v %v, want %v %v", n, got0, got, want0, want)
		}
	}
}
