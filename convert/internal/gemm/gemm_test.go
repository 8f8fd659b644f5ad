package gemm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ref computes a·bᵀ in float64, and the sum of |a||b| per element, which
// bounds the float32 rounding error of any summation order.
func ref(a, b []float32, m, n, k int) (c, mag []float64) {
	c = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, t float64
			for p := 0; p < k; p++ {
				x, y := float64(a[i*k+p]), float64(b[j*k+p])
				s += x * y
				t += math.Abs(x * y)
			}
			c[i*n+j], mag[i*n+j] = s, t
		}
	}
	return c, mag
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// check compares MulT against the float64 reference. Any order of k float32
// multiply-adds has error at most about k·ε·Σ|a||b| (ε = 2⁻²⁴); FMA only
// lowers it. The bound is loose on purpose: it flags wrong indexing, which
// gives errors of the size of the values, not rounding.
func check(t *testing.T, m, n, k int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, uint64(m*1000000+n*1000+k)))
	a, b := randSlice(r, m*k), randSlice(r, n*k)
	c := make([]float32, m*n)
	for i := range c {
		c[i] = float32(math.NaN()) // every element must be written
	}
	MulT(c, a, b, m, n, k)
	want, mag := ref(a, b, m, n, k)
	for i := range c {
		tol := float64(k+2)*0x1p-24*mag[i] + 1e-30
		if d := math.Abs(float64(c[i]) - want[i]); !(d <= tol) {
			t.Fatalf("%dx%d·(%dx%d)ᵀ: c[%d,%d] = %v, want %v (diff %g > tol %g)", m, k, n, k, i/n, i%n, c[i], want[i], d, tol)
		}
	}
}

func TestMulTShapes(t *testing.T) {
	sizes := []int{1, 2, 3, 5, 7, 8, 13, 16, 17, 31, 33, 64, 65, 97, 130}
	for _, m := range sizes {
		for _, n := range sizes {
			for _, k := range []int{0, 1, 3, 17, 64, 129, 300} {
				check(t, m, n, k, 1)
			}
		}
	}
}

func TestMulTLarge(t *testing.T) {
	for _, s := range [][3]int{{128, 300, 600}, {257, 129, 513}, {1, 1000, 700}, {3, 517, 1030}, {300, 7, 2000}} {
		check(t, s[0], s[1], s[2], 2)
	}
}
