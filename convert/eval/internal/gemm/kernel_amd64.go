//go:build !purego

package gemm

import "golang.org/x/sys/cpu"

// AVX-512: 28 zmm accumulators (2 per row of b), 2 for a, 2 for
// broadcasts. dot8 reads eight rows of b at once: more memory streams in
// flight, which measured about 10% faster than four for one row of a.
//
//go:noescape
func tile32x14(kc int, ap, b *float32, ldb int, t *float32, acc int)

//go:noescape
func dot8(k int, a, b *float32, ldb int, c *float32)

// AVX2 with FMA: 12 ymm accumulators, 2 for a, 2 for broadcasts.
//
//go:noescape
func tile16x6(kc int, ap, b *float32, ldb int, t *float32, acc int)

//go:noescape
func dot4avx2(k int, a, b *float32, ldb int, c *float32)

var (
	avx512Kernel = kernel{name: "avx512", mr: 32, nr: 14, tile: tile32x14, dot: dot8, dotRows: 8}
	avx2Kernel   = kernel{name: "avx2", mr: 16, nr: 6, tile: tile16x6, dot: dot4avx2, dotRows: 4}
)

// kernels lists the kernels this CPU can run, fastest first.
func kernels() []kernel {
	var ks []kernel
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ {
		ks = append(ks, avx512Kernel)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	return append(ks, goKernel)
}
