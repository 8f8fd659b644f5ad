package matvec

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkCached measures the kernels on a matrix that stays in the L2
// caches (256×3072): their arithmetic alone, in weights per second.
func BenchmarkCached(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	rows, cols := 256, 3072
	codes := make([]byte, rows*cols)
	for i := range codes {
		codes[i] = byte(r.Uint32())
	}
	signs := make([]byte, rows*SignStride(cols))
	tables := make([]float32, 256*rows)
	for i := range tables {
		tables[i] = float32(r.NormFloat64())
	}
	bf := make([]byte, 2*rows*cols)
	for i := 0; i < len(bf); i += 2 {
		bf[i+1] = 0x3c
	}
	mc, _ := NewCoded(rows, cols, codes, signs, tables)
	mb, _ := NewFloat(BF16, rows, cols, bf)
	x := make([]float32, cols)
	dst := make([]float32, rows)
	for _, m := range []struct {
		name string
		m    *Matrix
	}{{"packed-rows", mc}, {"BF16", mb}} {
		for _, kn := range testKernels {
			b.Run(fmt.Sprintf("%s/%s", m.name, kn.name), func(b *testing.B) {
				for b.Loop() {
					m.m.mulVec(&kn, dst, x)
				}
				b.ReportMetric(float64(rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gweights/s")
			})
		}
	}
}
