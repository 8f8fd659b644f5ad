package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkMulT measures the shapes of issue 11 (128 tokens by Phi-3.5's
// 3072×3072 and 8192×3072 weights) and a one-token step, for each kernel
// this CPU runs, fastest first (the first is what MulT uses). GFLOPS counts
// a multiply-add as two.
func BenchmarkMulT(b *testing.B) {
	for _, s := range [][3]int{{128, 3072, 3072}, {128, 8192, 3072}, {1, 8192, 3072}} {
		m, n, k := s[0], s[1], s[2]
		r := rand.New(rand.NewPCG(1, 2))
		x, w := randSlice(r, m*k), randSlice(r, n*k)
		c := make([]float32, m*n)
		for _, kn := range testKernels {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", m, n, k, kn.name), func(b *testing.B) {
				b.SetBytes(int64(4 * n * k))
				for b.Loop() {
					mulT(kn, c, x, w, m, n, k)
				}
				b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
			})
		}
	}
}
