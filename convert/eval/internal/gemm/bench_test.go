package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/qins-dev/qins/scripts/cputime"
)

// benchShapes are issue 11's shapes (128 tokens by Phi-3.5's 3072×3072 and
// 8192×3072 weights) and a one-token step (generation with a KV cache).
var benchShapes = [][3]int{{128, 3072, 3072}, {128, 8192, 3072}, {1, 8192, 3072}}

// BenchmarkMulT measures MulT; the name ends with the kernel it uses.
// GFLOPS counts a multiply-add as two, per second of wall time; cpu-GFLOPS
// per second of CPU time of the process (all threads), which other
// processes on a shared machine disturb less.
func BenchmarkMulT(b *testing.B) {
	for _, s := range benchShapes {
		benchKernel(b, best, s[0], s[1], s[2])
	}
}

// BenchmarkKernels measures every kernel this CPU runs (the portable one
// takes several seconds per product on the large shapes).
func BenchmarkKernels(b *testing.B) {
	for _, s := range benchShapes {
		for _, kn := range testKernels {
			benchKernel(b, kn, s[0], s[1], s[2])
		}
	}
}

func benchKernel(b *testing.B, kn kernel, m, n, k int) {
	r := rand.New(rand.NewPCG(1, 2))
	x, w := randSlice(r, m*k), randSlice(r, n*k)
	c := make([]float32, m*n)
	b.Run(fmt.Sprintf("%dx%dx%d/%s", m, n, k, kn.name), func(b *testing.B) {
		b.SetBytes(int64(4 * n * k)) // b, read once per product
		mulT(kn, c, x, w, m, n, k)   // untimed, as scripts/bench-gemm does for numpy: pages touched
		cpu0, cpuOK := cputime.Process()
		for b.Loop() {
			mulT(kn, c, x, w, m, n, k)
		}
		flops := 2 * float64(m) * float64(n) * float64(k) * float64(b.N)
		b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
		if cpu1, _ := cputime.Process(); cpuOK {
			b.ReportMetric(flops/(cpu1-cpu0).Seconds()/1e9, "cpu-GFLOPS")
		}
	})
}
