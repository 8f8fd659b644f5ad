// Package gemm multiplies float32 matrices for the forward pass of a
// decoder model: activations [T, in] by Linear weights [out, in] transposed.
//
// Large products follow the Goto/BLIS scheme: a is packed once into
// panels of mr rows, b is read in place nr rows at a time, and a
// register-blocked micro-kernel (assembly where the CPU allows) computes
// mr×nr tiles of c over blocks of kBlock columns, so that the rows of b in
// use stay in L1 and the block of packed a in L2.
package gemm

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

const (
	kBlock      = 512     // columns of a and b per micro-kernel call
	mRows       = 256     // rows of a per pass over a tile of b
	chunkTiles  = 16      // tiles of b per unit of parallel work
	smallM      = 16      // below this many rows of a, dot products beat packing
	kSmall      = 1024    // columns per dot product call of mulSmall
	parallelMin = 1 << 22 // flops below which one goroutine is faster
)

// best is the fastest kernel this CPU runs, chosen once.
var best = kernels()[0]

// MulT sets c = a·bᵀ: a is m×k, b is n×k (a Linear weight [out, in]), c is m×n; all row-major float32.
// It uses up to runtime.GOMAXPROCS(0) goroutines for large products, and
// panics when a, b or c is shorter than the shapes need.
func MulT(c, a, b []float32, m, n, k int) {
	if m < 0 || n < 0 || k < 0 || len(a) < m*k || len(b) < n*k || len(c) < m*n {
		panic(fmt.Sprintf("gemm: MulT %dx%d·(%dx%d)ᵀ with len(a)=%d len(b)=%d len(c)=%d", m, k, n, k, len(a), len(b), len(c)))
	}
	mulT(best, c, a, b, m, n, k)
}

func mulT(kn kernel, c, a, b []float32, m, n, k int) {
	switch {
	case m == 0 || n == 0:
		return
	case k == 0:
		clear(c[:m*n])
		return
	}
	workers := runtime.GOMAXPROCS(0)
	if 2*m*n*k < parallelMin {
		workers = 1
	}
	if m < smallM {
		mulSmall(kn, c, a, b, m, n, k, workers)
		return
	}
	mulPacked(kn, c, a, b, m, n, k, workers)
}

// parallel runs f(w, chunk) for chunk in [0, chunks) on up to workers
// goroutines; w numbers the goroutine, for per-goroutine buffers.
func parallel(workers, chunks int, f func(w, chunk int)) {
	workers = min(workers, chunks)
	if workers <= 1 {
		for i := 0; i < chunks; i++ {
			f(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= chunks {
					return
				}
				f(w, i)
			}
		}()
	}
	wg.Wait()
}

// mulSmall computes c with dot products, kn.dotRows rows of b at a time:
// for a few rows of a (generation with a KV cache) the work is reading b
// once. Blocks of kSmall columns keep those rows in L1 across the rows of a.
func mulSmall(kn kernel, c, a, b []float32, m, n, k, workers int) {
	rows := kn.dotRows
	k16 := k &^ 15
	groups := (n + rows - 1) / rows
	chunk := max(64/rows, (groups+4*workers-1)/(4*workers))
	parallel(workers, (groups+chunk-1)/chunk, func(_, ch int) {
		j0, j1 := ch*chunk*rows, min(n, (ch+1)*chunk*rows)
		var s [maxDotRows]float32
		for j := j0; j < j1; j += rows {
			nr := min(rows, j1-j)
			p1 := k16 // columns done by kn.dot
			if nr < rows {
				p1 = 0
			}
			for i := 0; i < m; i++ {
				clear(c[i*n+j : i*n+j+nr])
			}
			for p0 := 0; p0 < p1; p0 += kSmall {
				kb := min(kSmall, p1-p0)
				for i := 0; i < m; i++ {
					kn.dot(kb, &a[i*k+p0], &b[j*k+p0], k, &s[0])
					for r, v := range c[i*n+j : i*n+j+rows] {
						c[i*n+j+r] = v + s[r]
					}
				}
			}
			if p1 < k {
				dotTail(c[j:], a, b[j*k:], m, n, k, nr, p1)
			}
		}
	})
}

// dotTail adds columns [p1, k) of the dot products of the m rows of a with
// nr rows of b to c (row stride n), in plain Go.
func dotTail(c, a, b []float32, m, n, k, nr, p1 int) {
	for i := 0; i < m; i++ {
		ai := a[i*k+p1 : i*k+k]
		for r := 0; r < nr; r++ {
			br := b[r*k+p1 : r*k+k]
			var v float32
			for p, x := range ai {
				v += x * br[p]
			}
			c[i*n+r] += v
		}
	}
}

// mulPacked computes c tile by tile with the micro-kernel; goroutines take
// chunks of chunkTiles tiles of b and sum each over all of k in their own
// buffer (laid out as the kernel stores it), then copy it into c.
func mulPacked(kn kernel, c, a, b []float32, m, n, k, workers int) {
	if m == 0 || n == 0 {
		return
	}
	ap := pack(a, m, k, kn.mr, workers)
	tiles := (n + kn.nr - 1) / kn.nr
	chunks := (tiles + chunkTiles - 1) / chunkTiles
	chunks = (chunks + workers - 1) / workers * workers
	per := (tiles + chunks - 1) / chunks
	chunks = (tiles + per - 1) / per
	tileSize := kn.mr * kn.nr
	mBlock := max(1, mRows/kn.mr) // panels
	acc := make([][]float32, workers)
	edge := make([][]float32, workers)
	parallel(workers, chunks, func(w, ch int) {
		if acc[w] == nil {
			acc[w] = make([]float32, per*ap.panels*tileSize)
			edge[w] = make([]float32, kn.nr*min(k, kBlock))
		}
		t0, t1 := ch*per, min(tiles, (ch+1)*per)
		for p0 := 0; p0 < k; p0 += kBlock {
			kb := min(kBlock, k-p0)
			for i0 := 0; i0 < ap.panels; i0 += mBlock {
				for jt := t0; jt < t1; jt++ {
					bt, ldb := tileRows(b, edge[w], n, k, jt*kn.nr, kn.nr, p0, kb)
					for ir := i0; ir < min(i0+mBlock, ap.panels); ir++ {
						t := acc[w][((jt-t0)*ap.panels+ir)*tileSize:]
						kn.tile(kb, &ap.panel(p0, kb, ir)[0], bt, ldb, &t[0], p0)
					}
				}
			}
		}
		for jt := t0; jt < t1; jt++ {
			j0 := jt * kn.nr
			for ir := 0; ir < ap.panels; ir++ {
				t := acc[w][((jt-t0)*ap.panels+ir)*tileSize:][:tileSize]
				scatter(c, t, n, kn.mr, ir*kn.mr, min(m, (ir+1)*kn.mr), j0, min(n, j0+kn.nr))
			}
		}
	})
}

// tileRows returns where the kernel reads rows [j0, j0+nr) of b from
// column p0, and their stride: b itself, or for the last partial tile a
// copy in edge padded with zero rows.
func tileRows(b, edge []float32, n, k, j0, nr, p0, kb int) (*float32, int) {
	if j0+nr <= n {
		return &b[j0*k+p0], k
	}
	for j := j0; j < n; j++ {
		copy(edge[(j-j0)*kb:(j-j0+1)*kb], b[j*k+p0:])
	}
	clear(edge[(n-j0)*kb : nr*kb])
	return &edge[0], kb
}

// scatter copies rows [i0, i1) and columns [j0, j1) of c from a tile t
// stored column by column (t[j*mr+i]).
func scatter(c, t []float32, n, mr, i0, i1, j0, j1 int) {
	for i := i0; i < i1; i++ {
		ci := c[i*n+j0 : i*n+j1]
		for j := range ci {
			ci[j] = t[j*mr+i-i0]
		}
	}
}
