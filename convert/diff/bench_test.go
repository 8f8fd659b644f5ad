package diff

import (
	"math/rand/v2"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/quant"
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

// BenchmarkPairHist measures the fast path of qins diff per element pair:
// a BF16 source against its codes and signs.
func BenchmarkPairHist(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 1 << 16
	raw := make([]byte, 2*n)
	put, _ := dtype.Putter(dtype.BF16)
	for i := 0; i < n; i++ {
		put(raw, i, 0.02*r.NormFloat64())
	}
	s, _ := quant.NewScanner(dtype.BF16)
	s.Scan(raw, 0)
	e, err := s.Encoder()
	if err != nil {
		b.Fatal(err)
	}
	codes, signs := make([]uint8, n), make([]int8, n)
	e.Encode(raw, codes, signs)
	ka := make([]uint16, n)
	for i := range ka {
		ka[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
	}
	h := new(pairHist)
	b.SetBytes(3 * n) // a BF16 value, a code and a sign
	for b.Loop() {
		// The counts grow from one loop to the next, as over the chunks
		// of a tensor.
		if err := h.addCodes(ka, codes, quant.Int8Bytes(signs), 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
}
