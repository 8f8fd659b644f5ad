// Package gemm multiplies float32 matrices for the forward pass of a
// decoder model: activations [T, in] by Linear weights [out, in] transposed.
package gemm

import (
	"fmt"
	"runtime"
	"sync"
)

// MulT sets c = a·bᵀ: a is m×k, b is n×k (a Linear weight [out, in]), c is m×n; all row-major float32.
// It uses up to runtime.GOMAXPROCS(0) goroutines for large products.
func MulT(c, a, b []float32, m, n, k int) {
	if m < 0 || n < 0 || k < 0 || len(a) < m*k || len(b) < n*k || len(c) < m*n {
		panic(fmt.Sprintf("gemm: MulT %dx%d·(%dx%d)ᵀ with len(a)=%d len(b)=%d len(c)=%d", m, k, n, k, len(a), len(b), len(c)))
	}
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 || m*n*k < 1<<20 {
		mulTRows(c, a, b, m, n, k, 0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + workers - 1) / workers
	for j0 := 0; j0 < n; j0 += step {
		j1 := min(j0+step, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			mulTRows(c, a, b, m, n, k, j0, j1)
		}()
	}
	wg.Wait()
}

// mulTRows computes columns [j0, j1) of c with plain dot products.
func mulTRows(c, a, b []float32, m, n, k, j0, j1 int) {
	for i := 0; i < m; i++ {
		ai := a[i*k : i*k+k]
		ci := c[i*n : i*n+n]
		for j := j0; j < j1; j++ {
			bj := b[j*k : j*k+k]
			var s float32
			for p, v := range ai {
				s += v * bj[p]
			}
			ci[j] = s
		}
	}
}
