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

// A path is one way of computing c = a·bᵀ, named for failures.
type path struct {
	name string
	mul  func(c, a, b []float32, m, n, k int)
}

// paths are all the ways to compute a product: each kernel through mulT
// (which picks dot products or packing by shape), and each kernel's packed
// and dot product code forced, on one goroutine and on three.
func paths() []path {
	ps := []path{{"MulT", MulT}}
	for _, kn := range testKernels {
		ps = append(ps, path{kn.name, func(c, a, b []float32, m, n, k int) { mulT(kn, c, a, b, m, n, k) }})
		for _, w := range []int{1, 3} {
			ps = append(ps,
				path{kn.name + "/packed/" + string(rune('0'+w)), func(c, a, b []float32, m, n, k int) {
					mulPacked(kn, c, a, b, m, n, k, w)
				}},
				path{kn.name + "/small/" + string(rune('0'+w)), func(c, a, b []float32, m, n, k int) {
					mulSmall(kn, c, a, b, m, n, k, w)
				}})
		}
	}
	return ps
}

// check compares every path against the float64 reference. Any order of k
// float32 multiply-adds has error at most about k·ε·Σ|a||b| (ε = 2⁻²⁴);
// FMA only lowers it. The bound is loose on purpose: wrong indexing gives
// errors of the size of the values, not of rounding.
func check(t *testing.T, ps []path, m, n, k int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, uint64(m*1000000+n*1000+k)))
	a, b := randSlice(r, m*k), randSlice(r, n*k)
	want, mag := ref(a, b, m, n, k)
	c := make([]float32, m*n)
	for _, p := range ps {
		for i := range c {
			c[i] = float32(math.NaN()) // every element must be written
		}
		p.mul(c, a, b, m, n, k)
		for i := range c {
			tol := float64(k+2)*0x1p-24*mag[i] + 1e-30
			if d := math.Abs(float64(c[i]) - want[i]); !(d <= tol) {
				t.Fatalf("%s: %dx%d·(%dx%d)ᵀ: c[%d,%d] = %v, want %v (diff %g > tol %g)", p.name, m, k, n, k, i/n, i%n, c[i], want[i], d, tol)
			}
		}
	}
}

func TestMulTShapes(t *testing.T) {
	sizes := []int{1, 2, 3, 4, 5, 6, 7, 13, 14, 15, 16, 17, 31, 32, 33, 65, 97}
	ps := paths()
	for _, m := range sizes {
		for _, n := range sizes {
			for _, k := range []int{0, 1, 3, 15, 16, 17, 33, 129} {
				check(t, ps, m, n, k, 1)
			}
		}
	}
}

// TestMulTLarge covers several k blocks, m blocks and parallel chunks.
func TestMulTLarge(t *testing.T) {
	for _, s := range [][3]int{{128, 300, 600}, {257, 129, 513}, {300, 450, 1100}, {1, 1000, 1500}, {3, 517, 1030}, {15, 97, 2100}, {600, 7, 1025}} {
		check(t, paths(), s[0], s[1], s[2], 2)
	}
}

// TestMulTRandom checks random shapes on every path.
func TestMulTRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		check(t, paths(), 1+r.IntN(200), 1+r.IntN(200), r.IntN(700), r.Uint64())
	}
}

// TestMulTBounds checks MulT writes only c[:m*n] and accepts a and b with
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
	// 2x3·(3x3)ᵀ needs len(c, a, b) = 6, 6, 9.
	for _, s := range [][3]int{{5, 6, 9}, {6, 5, 9}, {6, 6, 8}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic for len(c, a, b) = %v with 2x3·(3x3)ᵀ", s)
				}
			}()
			MulT(make([]float32, s[0]), make([]float32, s[1]), make([]float32, s[2]), 2, 3, 3)
		}()
	}
}

func FuzzMulT(f *testing.F) {
	f.Add(uint16(5), uint16(17), uint16(33), uint64(1))
	f.Add(uint16(40), uint16(15), uint16(520), uint64(2))
	f.Fuzz(func(t *testing.T, m, n, k uint16, seed uint64) {
		check(t, paths(), int(m%150), int(n%150), int(k%1100), seed)
	})
}
