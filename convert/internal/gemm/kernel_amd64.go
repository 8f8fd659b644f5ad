//go:build !purego

package gemm

import "golang.org/x/sys/cpu"

//go:noescape
func tile32x14(kc int, ap, b *float32, ldb int, t *float32, acc int)

//go:noescape
func dot4(k int, a, b *float32, ldb int, c *float32)

var avx512Kernel = kernel{name: "avx512", tile: tile32x14, dot4: dot4}

// kernels lists the kernels this CPU can run, fastest first.
func kernels() []kernel {
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ {
		return []kernel{avx512Kernel, goKernel}
	}
	return []kernel{goKernel}
}
