package gemm

import "unsafe"

// Tile sizes of the micro-kernel: a tile of c is tileM rows of a (packed)
// by tileN rows of b (read in place).
const (
	tileM = 32
	tileN = 14
)

// kernel is a set of inner loops. The driver in gemm.go is the same for all.
type kernel struct {
	name string
	// tile computes t[j*tileM+i] (+)= Σ_p ap[p*tileM+i]·b[j*ldb+p] for
	// i < tileM, j < tileN, p < kc; it adds to t when acc != 0.
	tile func(kc int, ap, b *float32, ldb int, t *float32, acc int)
	// dot4 sets c[r] = Σ_p a[p]·b[r*ldb+p] for r < 4, p < k; k is a multiple of 16.
	dot4 func(k int, a, b *float32, ldb int, c *float32)
}

// goKernel is the portable kernel, used where no assembly one applies.
var goKernel = kernel{name: "go", tile: tileGo, dot4: dot4Go}

func tileGo(kc int, ap, b *float32, ldb int, t *float32, acc int) {
	as := unsafe.Slice(ap, kc*tileM)
	bs := unsafe.Slice(b, (tileN-1)*ldb+kc)
	ts := unsafe.Slice(t, tileM*tileN)
	if acc == 0 {
		clear(ts)
	}
	for j := 0; j < tileN; j++ {
		tj := (*[tileM]float32)(ts[j*tileM:])
		bj := bs[j*ldb : j*ldb+kc]
		for p, bv := range bj {
			ai := (*[tileM]float32)(as[p*tileM:])
			for i := range tj {
				tj[i] += ai[i] * bv
			}
		}
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
