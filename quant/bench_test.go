package quant

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/qins-dev/qins/scripts/cputime"

	"github.com/qins-dev/qins/format/dtype"
)

const benchElems = 1 << 20

// weights returns benchElems Normal(0, 0.02) values stored in dtype dt.
func weights(b *testing.B, dt dtype.DType) []byte {
	r := rand.New(rand.NewPCG(3, 4))
	put, err := dtype.Putter(dt)
	if err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, benchElems*int(dt.Size()))
	for i := 0; i < benchElems; i++ {
		put(raw, i, 0.02*r.NormFloat64())
	}
	return raw
}

// report adds ns/elem, and cpu-ns/elem where the thread's CPU time can be
// read: on a shared machine the wall time counts the time the benchmark
// waited for a core, the CPU time does not. The loop must run between
// start and report, on a thread locked by start.
func report(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchElems, "ns/elem")
	if cpu1, ok := cputime.Thread(); ok {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N)/benchElems, "cpu-ns/elem")
	}
}

// start locks the benchmark to its thread and returns the thread's CPU
// time so far.
func start(b *testing.B) time.Duration {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	t, _ := cputime.Thread()
	return t
}

// BenchmarkEncode measures both passes over one tensor on one goroutine,
// as the min/max range runs them: the range scan, the encoder's tables and
// the encode; MB/s is of the source bytes.
func BenchmarkEncode(b *testing.B) {
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F16, dtype.F32} {
		b.Run(dt.String(), func(b *testing.B) {
			raw := weights(b, dt)
			codes, signs := make([]uint8, benchElems), make([]int8, benchElems)
			b.SetBytes(int64(len(raw)))
			cpu0 := start(b)
			for b.Loop() {
				s, _ := NewRangeScanner(dt)
				s.Scan(raw, 0)
				e, err := s.Encoder()
				if err != nil {
					b.Fatal(err)
				}
				e.Encode(raw, codes, signs)
			}
			report(b, cpu0)
		})
	}
}

// BenchmarkScan measures the range pass alone, as the min/max range runs
// it (NewRangeScanner).
func BenchmarkScan(b *testing.B) {
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F16, dtype.F32} {
		b.Run(dt.String(), func(b *testing.B) {
			raw := weights(b, dt)
			b.SetBytes(int64(len(raw)))
			cpu0 := start(b)
			for b.Loop() {
				s, _ := NewRangeScanner(dt)
				s.Scan(raw, 0)
			}
			report(b, cpu0)
		})
	}
}

// BenchmarkScanCounts measures the range pass as the mse range runs it:
// counting values (NewScanner).
func BenchmarkScanCounts(b *testing.B) {
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F16, dtype.F32} {
		b.Run(dt.String(), func(b *testing.B) {
			raw := weights(b, dt)
			b.SetBytes(int64(len(raw)))
			cpu0 := start(b)
			for b.Loop() {
				s, _ := NewScanner(dt)
				s.Scan(raw, 0)
			}
			report(b, cpu0)
		})
	}
}

// BenchmarkGo measures the Go kernels of the 16-bit passes, which run
// where the assembly ones cannot: the range scan and the encode of whole
// groups of eight.
func BenchmarkGo(b *testing.B) {
	raw := weights(b, dtype.BF16)
	s, _ := NewRangeScanner(dtype.BF16)
	e := s.EncoderFor(Params{LogMin: -18, LogMax: -1})
	codes, signs := make([]uint8, benchElems), make([]int8, benchElems)
	b.Run("Scan/BF16", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		cpu0 := start(b)
		for b.Loop() {
			minMax16(raw, 0x3000, 0, 0xffff)
		}
		report(b, cpu0)
	})
	b.Run("EncodePass/BF16", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		cpu0 := start(b)
		for b.Loop() {
			if encode16(e.table, raw, codes, signs) != benchElems {
				b.Fatal("a magnitude without a code")
			}
		}
		report(b, cpu0)
	})
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
			cpu0 := start(b)
			for b.Loop() {
				if err := d.DecodeTo(dt, codes, signs, out, 0); err != nil {
					b.Fatal(err)
				}
			}
			report(b, cpu0)
		})
	}
	b.Run("float64", func(b *testing.B) {
		out := make([]float64, benchElems)
		b.SetBytes(2 * benchElems)
		cpu0 := start(b)
		for b.Loop() {
			if err := d.Decode(codes, signs, out, 0); err != nil {
				b.Fatal(err)
			}
		}
		report(b, cpu0)
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
			cpu0 := start(b)
			for b.Loop() {
				e.Encode(raw, codes, signs)
			}
			report(b, cpu0)
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
	cpu0 := start(b)
	for b.Loop() {
		copy(work, codes)
		UnpackSigns(work, bits, 0, signs)
	}
	report(b, cpu0)
}

// BenchmarkEncodePacked measures the encode pass of the packed layout:
// codes with 0 for the exact zeros, and sign bits.
func BenchmarkEncodePacked(b *testing.B) {
	raw := weights(b, dtype.BF16)
	s, _ := NewRangeScanner(dtype.BF16)
	s.Scan(raw, 0)
	e, err := s.Encoder()
	if err != nil {
		b.Fatal(err)
	}
	codes, bits := make([]uint8, benchElems), make([]byte, benchElems/8)
	b.SetBytes(int64(len(raw)))
	cpu0 := start(b)
	for b.Loop() {
		e.EncodePacked(raw, codes, bits)
	}
	report(b, cpu0)
}

// BenchmarkRowEncode measures per-row ranges on rows of 3072 (Phi-3.5's
// hidden size), min/max and mse: range and codes of every row, signs
// included; MB/s is of the source bytes.
func BenchmarkRowEncode(b *testing.B) {
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F16, dtype.F32} {
		for _, mse := range []bool{false, true} {
			name := dt.String() + "/minmax"
			if mse {
				name = dt.String() + "/mse"
			}
			b.Run(name, func(b *testing.B) {
				raw := weights(b, dt)
				rc, err := NewRowCoder(dt)
				if err != nil {
					b.Fatal(err)
				}
				const n = 3072
				size := int(dt.Size())
				codes, signs := make([]uint8, n), make([]int8, n)
				b.SetBytes(int64(len(raw)))
				cpu0 := start(b)
				for b.Loop() {
					for r := 0; r+n <= benchElems; r += n {
						if _, err := rc.Encode(raw[r*size:(r+n)*size], int64(r), mse, codes, signs); err != nil {
							b.Fatal(err)
						}
					}
				}
				report(b, cpu0)
			})
		}
	}
}

// BenchmarkI8Encode measures the i8 form's encode pass alone, after the
// range pass and the encoder's table.
func BenchmarkI8Encode(b *testing.B) {
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F16, dtype.F32} {
		b.Run(dt.String(), func(b *testing.B) {
			raw := weights(b, dt)
			s, _ := NewRangeScanner(dt)
			s.Scan(raw, 0)
			p, err := s.Params()
			if err != nil {
				b.Fatal(err)
			}
			e, err := NewI8Encoder(dt, p)
			if err != nil {
				b.Fatal(err)
			}
			codes := make([]int8, benchElems)
			b.SetBytes(int64(len(raw)))
			cpu0 := start(b)
			for b.Loop() {
				e.Encode(raw, codes)
			}
			report(b, cpu0)
		})
	}
}

// BenchmarkRationalEncode measures the rational codec's encode pass
// alone, with a given alpha.
func BenchmarkRationalEncode(b *testing.B) {
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F16, dtype.F32} {
		b.Run(dt.String(), func(b *testing.B) {
			raw := weights(b, dt)
			e, err := NewRationalEncoder(dt, 60)
			if err != nil {
				b.Fatal(err)
			}
			codes := make([]uint8, benchElems)
			b.SetBytes(int64(len(raw)))
			cpu0 := start(b)
			for b.Loop() {
				e.Encode(raw, codes)
			}
			report(b, cpu0)
		})
	}
}

// BenchmarkEncoders measures making the i8 and rational encoders of a
// 16-bit tensor: their tables of every bit pattern (once per tensor).
func BenchmarkEncoders(b *testing.B) {
	b.Run("I8/BF16", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewI8Encoder(dtype.BF16, Params{LogMin: -18, LogMax: -1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Rational/BF16", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewRationalEncoder(dtype.BF16, 60); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRationalAlpha measures the search for the rational codec's
// alpha on one scanned tensor (it depends on how many distinct magnitudes
// the tensor holds, not on its size).
func BenchmarkRationalAlpha(b *testing.B) {
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F32} {
		b.Run(dt.String(), func(b *testing.B) {
			raw := weights(b, dt)
			s, _ := NewScanner(dt)
			s.Scan(raw, 0)
			for b.Loop() {
				if _, err := s.RationalAlpha(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRowEncodeI8 is BenchmarkRowEncode for the i8 form's rows.
func BenchmarkRowEncodeI8(b *testing.B) {
	for _, mse := range []bool{false, true} {
		name := "BF16/minmax"
		if mse {
			name = "BF16/mse"
		}
		b.Run(name, func(b *testing.B) {
			raw := weights(b, dtype.BF16)
			rc, err := NewRowCoder(dtype.BF16)
			if err != nil {
				b.Fatal(err)
			}
			const n = 3072
			codes := make([]int8, n)
			b.SetBytes(int64(len(raw)))
			cpu0 := start(b)
			for b.Loop() {
				for r := 0; r+n <= benchElems; r += n {
					if _, err := rc.EncodeI8(raw[2*r:2*(r+n)], int64(r), mse, codes); err != nil {
						b.Fatal(err)
					}
				}
			}
			report(b, cpu0)
		})
	}
}

// BenchmarkRationalRows measures the rational codec with one alpha per
// row on rows of 3072 (Phi-3.5's hidden size): each row's alpha and
// codes; MB/s is of the source bytes. "outliers" has a weight of 40
// standard deviations in every 500, which the search scores exactly.
func BenchmarkRationalRows(b *testing.B) {
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F32} {
		for _, outliers := range []bool{false, true} {
			name := dt.String() + "/normal"
			if outliers {
				name = dt.String() + "/outliers"
			}
			b.Run(name, func(b *testing.B) {
				raw := weights(b, dt)
				if outliers {
					put, _ := dtype.Putter(dt)
					r := rand.New(rand.NewPCG(5, 6))
					for i := 0; i < benchElems; i += 500 {
						put(raw, min(i+r.IntN(500), benchElems-1), 0.8*r.NormFloat64())
					}
				}
				rc, err := NewRationalRowCoder(dt)
				if err != nil {
					b.Fatal(err)
				}
				const n = 3072
				size := int(dt.Size())
				codes := make([]uint8, n)
				b.SetBytes(int64(len(raw)))
				cpu0 := start(b)
				for b.Loop() {
					for r := 0; r+n <= benchElems; r += n {
						if _, err := rc.Encode(raw[r*size:(r+n)*size], int64(r), codes); err != nil {
							b.Fatal(err)
						}
					}
				}
				report(b, cpu0)
			})
		}
	}
}
