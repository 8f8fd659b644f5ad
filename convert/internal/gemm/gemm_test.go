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
func check(t *testing.T, kn kernel, m, n, k int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, uint64(m*1000000+n*1000+k)))
	a, b := randSlice(r, m*k), randSlice(r, n*k)
	c := make([]float32, m*n)
	for i := range c {
		c[i] = float32(math.NaN()) // every element must be written
	}
	mulT(kn, c, a, b, m, n, k)
	want, mag := ref(a, b, m, n, k)
	for i := range c {
		tol := float64(k+2)*0x1p-24*mag[i] + 1e-30
		if d := math.Abs(float64(c[i]) - want[i]); !(d <= tol) {
			t.Fatalf("%s: %dx%d·(%dx%d)ᵀ: c[%d,%d] = %v, want %v (diff %g > tol %g)", kn.name, m, k, n, k, i/n, i%n, c[i], want[i], d, tol)
		}
	}
}

func TestMulTShapes(t *testing.T) {
	sizes := []int{1, 2, 3, 4, 5, 7, 13, 14, 15, 16, 17, 31, 32, 33, 64, 65, 97, 130}
	for _, kn := range testKernels {
		for _, m := range sizes {
			for _, n := range sizes {
				for _, k := range []int{0, 1, 3, 15, 16, 17, 64, 129, 300} {
					check(t, kn, m, n, k, 1)
				}
			}
		}
	}
}

// TestMulTLarge covers several k blocks, m blocks and parallel chunks.
func TestMulTLarge(t *testing.T) {
	for _, kn := range testKernels {
		for _, s := range [][3]int{{128, 300, 600}, {257, 129, 513}, {300, 450, 1100}, {1, 1000, 700}, {3, 517, 1030}, {5, 9, 2000}, {600, 7, 1025}} {
			check(t, kn, s[0], s[1], s[2], 2)
		}
	}
}

// TestMulTRandom checks random shapes, and MulT itself on them.
func TestMulTRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		m, n, k := 1+r.IntN(300), 1+r.IntN(300), r.IntN(700)
		for _, kn := range testKernels {
			check(t, kn, m, n, k, r.Uint64())
		}
	}
}

// TestMulTInPlace checks MulT writes only c[:m*n] and reads a, b with
// extra trailing elements (slices of a larger buffer).
func TestMulTBounds(t *testing.T) {
	const m, n, k = 37, 29, 41
	r := rand.New(rand.NewPCG(5, 6))
	a, b := randSlice(r, m*k+3), randSlice(r, n*k+5)
	c := make([]float32, m*n+7)
	for i := range c {
		c[i] = 42
	}
	MulT(c, a, b, m, n, k)
	for i := m * n; i < len(c); i++ {
		if c[i] != 42 {
			t.Fatalf("c[%d] = %v past m*n was written", i, c[i])
		}
	}
	want, _ := ref(a, b, m, n, k)
	if d := math.Abs(float64(c[m*n-1]) - want[m*n-1]); d > 1e-3 {
		t.Fatalf("last element off by %g", d)
	}
}

func TestMulTShortSlicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a too short c")
		}
	}()
	MulT(make([]float32, 5), make([]float32, 6), make([]float32, 6), 2, 3, 3)
}

func FuzzMulT(f *testing.F) {
	f.Add(uint16(5), uint16(17), uint16(33), uint64(1))
	f.Add(uint16(40), uint16(15), uint16(520), uint64(2))
	f.Fuzz(func(t *testing.T, m, n, k uint16, seed uint64) {
		for _, kn := range testKernels {
			check(t, kn, int(m%200), int(n%200), int(k%1100), seed)
		}
	})
}
