package gemm

import "unsafe"

// kernel is a set of inner loops. The driver in gemm.go is the same for all.
type kernel struct {
	name   string
	mr, nr int // tile: mr rows of a (packed) by nr rows of b (read in place)
	// tile computes t[j*mr+i] (+)= Σ_p ap[p*mr+i]·b[j*ldb+p] for i < mr,
	// j < nr, p < kc; it adds to t when acc != 0.
	tile func(kc int, ap, b *float32, ldb int, t *float32, acc int)
	// dot sets c[r] = Σ_p a[p]·b[r*ldb+p] for r < dotRows, p < k; k is a
	// multiple of 16.
	dot     func(k int, a, b *float32, ldb int, c *float32)
	dotRows int // at most maxDotRows
}

// Tile of the portable kernel: sixteen scalar accumulators (about 4.5
// GFLOPS per core measured on amd64, against about 80 for the AVX2 kernel).
const (
	goMR = 4
	goNR = 4
)

// goKernel is the portable kernel, used where no assembly one applies.
var goKernel = kernel{name: "go", mr: goMR, nr: goNR, tile: tileGo, dot: dot4Go, dotRows: 4}

const maxDotRows = 8

func tileGo(kc int, ap, b *float32, ldb int, t *float32, acc int) {
	as := unsafe.Slice(ap, kc*goMR)
	bs := unsafe.Slice(b, (goNR-1)*ldb+kc)
	b0, b1, b2, b3 := bs[:kc], bs[ldb:ldb+kc], bs[2*ldb:2*ldb+kc], bs[3*ldb:3*ldb+kc]
	// Sixteen named accumulators: the compiler keeps them in registers,
	// which it does not do for an array.
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	for p := range b0 {
		x := (*[goMR]float32)(as[p*goMR:])
		a0, a1, a2, a3 := x[0], x[1], x[2], x[3]
		y0, y1, y2, y3 := b0[p], b1[p], b2[p], b3[p]
		c00, c01, c02, c03 = c00+a0*y0, c01+a1*y0, c02+a2*y0, c03+a3*y0
		c10, c11, c12, c13 = c10+a0*y1, c11+a1*y1, c12+a2*y1, c13+a3*y1
		c20, c21, c22, c23 = c20+a0*y2, c21+a1*y2, c22+a2*y2, c23+a3*y2
		c30, c31, c32, c33 = c30+a0*y3, c31+a1*y3, c32+a2*y3, c33+a3*y3
	}
	ts := (*[goNR * goMR]float32)(unsafe.Slice(t, goMR*goNR))
	c := [goNR * goMR]float32{c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33}
	for i, v := range c {
		if acc != 0 {
			v += ts[i]
		}
		ts[i] = v
	}
}

func dot4Go(k int, a, b *float32, ldb int, c *float32) {
	as := unsafe.Slice(a, k)
	bs := unsafe.Slice(b, 3*ldb+k)
	cs := unsafe.Slice(c, 4)
	for r := range cs {
		br := bs[r*ldb : r*ldb+k]
		var s float32
		for p, v := range as {
			s += v * br[p]
		}
		cs[r] = s
	}
}
