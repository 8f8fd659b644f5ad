package convert

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkAccumulatorAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x, y := make([]float64, 1<<16), make([]float64, 1<<16)
	for i := range x {
		x[i] = r.NormFloat64() * 0.02
		y[i] = x[i] * (1 + 0.01*r.NormFloat64())
	}
	b.SetBytes(int64(len(x)) * 16)
	b.ResetTimer()
	for b.Loop() {
		a := NewAccumulator()
		a.Add(x, y, 0)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(x)), "ns/elem")
}
