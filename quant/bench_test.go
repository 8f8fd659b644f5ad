package quant

import (
	"math/rand/v2"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
)

const benchElems = 1 << 20

// weights returns benchElems Normal(0, 0.02) values stored in dtype dt.
func weights(b *testing.B, dt dtype.DType) []byte {
	r := rand.New(rand.NewPCG(3, 4))
	put, err := Putter(dt)
	if err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, benchElems*int(dt.Size()))
	for i := 0; i < benchElems; i++ {
		put(raw, i, 0.02*r.NormFloat64())
	}
	return raw
}

func report(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchElems, "ns/elem")
}

// BenchmarkEncode measures both passes over one tensor on one goroutine:
// the range scan and the encode; MB/s is of the source bytes.
func BenchmarkEncode(b *testing.B) {
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F16, dtype.F32} {
		b.Run(dt.String(), func(b *testing.B) {
			raw := weights(b, dt)
			codes, signs := make([]uint8, benchElems), make([]int8, benchElems)
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				s, _ := NewScanner(dt)
				s.Scan(raw, 0)
				e, err := s.Encoder()
				if err != nil {
					b.Fatal(err)
				}
				e.Encode(raw, codes, signs)
			}
			report(b)
		})
	}
}

// BenchmarkScan measures the range pass alone.
func BenchmarkScan(b *testing.B) {
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F32} {
		b.Run(dt.String(), func(b *testing.B) {
			raw := weights(b, dt)
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				s, _ := NewScanner(dt)
				s.Scan(raw, 0)
			}
			report(b)
		})
	}
}

// BenchmarkDecode measures decoding to each output dtype; MB/s is of the
// codes and signs read.
func BenchmarkDecode(b *testing.B) {
	raw := weights(b, dtype.BF16)
	s, _ := NewScanner(dtype.BF16)
	s.Scan(raw, 0)
	e, _ := s.Encoder()
	codes, signs := make([]uint8, benchElems), make([]int8, benchElems)
	e.Encode(raw, codes, signs)
	d := NewDecoder(e.Params())
	for _, dt := range []dtype.DType{dtype.F32, dtype.BF16} {
		b.Run(dt.String(), func(b *testing.B) {
			out := make([]byte, benchElems*int(dt.Size()))
			b.SetBytes(2 * benchElems)
			for b.Loop() {
				if err := d.DecodeTo(dt, codes, signs, out, 0); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
	}
	b.Run("float64", func(b *testing.B) {
		out := make([]float64, benchElems)
		b.SetBytes(2 * benchElems)
		for b.Loop() {
			if err := d.Decode(codes, signs, out, 0); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}

// BenchmarkMSEParams measures the search for the mse log_min on one
// scanned tensor (it does not depend on the tensor's size, only on how
// many distinct values it holds).
func BenchmarkMSEParams(b *testing.B) {
	raw := weights(b, dtype.BF16)
	s, _ := NewScanner(dtype.BF16)
	s.Scan(raw, 0)
	for b.Loop() {
		if _, err := s.MSEParams(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodePass measures the encode pass alone, after the range
// pass: the lookup of codes and signs.
func BenchmarkEncodePass(b *testing.B) {
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F16, dtype.F32} {
		b.Run(dt.String(), func(b *testing.B) {
			raw := weights(b, dt)
			s, _ := NewScanner(dt)
			s.Scan(raw, 0)
			e, err := s.Encoder()
			if err != nil {
				b.Fatal(err)
			}
			codes, signs := make([]uint8, benchElems), make([]int8, benchElems)
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				e.Encode(raw, codes, signs)
			}
			report(b)
		})
	}
}

// BenchmarkUnpackSigns measures reading the packed layout's codes and sign
// bits back into codes and signs, with 0.1% exact zeros as in a real
// checkpoint; MB/s is of the codes and bits read.
func BenchmarkUnpackSigns(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	codes, bits := make([]uint8, benchElems), make([]byte, benchElems/8)
	for i := range codes {
		codes[i] = uint8(1 + r.IntN(255))
		if r.IntN(1000) == 0 {
			codes[i] = 0
		} else if r.IntN(2) == 0 {
			bits[i/8] |= 1 << (i % 8)
		}
	}
	work, signs := make([]uint8, benchElems), make([]int8, benchElems)
	b.SetBytes(benchElems + benchElems/8)
	for b.Loop() {
		copy(work, codes)
		UnpackSigns(work, bits, 0, signs)
	}
	report(b)
}
