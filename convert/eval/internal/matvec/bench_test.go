package matvec

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/qins-dev/qins/format/dtype"
)

// benchRows×benchCols is Phi-3.5's gate_up_proj (16384×3072): far larger
// than the caches, so every kernel reads its bytes from memory.
const benchRows, benchCols = 16384, 3072

// benchBytes is the stored bytes each form is measured on: several
// matrices, as a model's layers are, together far beyond the caches (300
// MiB of L3 on the machine these were first measured on).
const benchBytes = 1 << 30

// BenchmarkMulVec measures MulVec over 1 GiB of matrices of each stored
// form with each kernel, in MB/s of stored bytes (SetBytes), beside
// "floor": a sum of the same bytes, once, in the same run. A kernel's
// ns/op over the floor's is its cost over one read of the weights.
func BenchmarkMulVec(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	rows, cols := benchRows, benchCols
	n := rows * cols
	buf := make([]byte, benchBytes)
	vals := make([]float64, 4093) // a prime period: rows do not repeat
	for i := range vals {
		vals[i] = r.NormFloat64() * 0.02
	}
	fill := func(size int, put func(b []byte, v float64)) {
		for i := 0; i+size <= len(buf); i += size {
			put(buf[i:], vals[(i/size)%len(vals)])
		}
	}
	tables := make([]float32, 256*rows)
	for i := range tables {
		tables[i] = float32(r.NormFloat64() * 0.02)
	}
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	dst := make([]float32, rows)
	forms := []struct {
		name string
		fill func()
		size int                           // stored bytes of one matrix
		make func(b []byte) (*Matrix, int) // a matrix at the start of b, and its bytes
	}{
		{"F32", func() {
			fill(4, func(b []byte, v float64) { binary.LittleEndian.PutUint32(b, math.Float32bits(float32(v))) })
		}, 4 * n, func(b []byte) (*Matrix, int) { m, _ := NewFloat(F32, rows, cols, b[:4*n]); return m, 4 * n }},
		{"BF16", func() {
			fill(2, func(b []byte, v float64) { binary.LittleEndian.PutUint16(b, dtype.Float64ToBF16(v)) })
		}, 2 * n, func(b []byte) (*Matrix, int) { m, _ := NewFloat(BF16, rows, cols, b[:2*n]); return m, 2 * n }},
		{"F16", func() {
			fill(2, func(b []byte, v float64) { binary.LittleEndian.PutUint16(b, dtype.Float64ToF16(v)) })
		}, 2 * n, func(b []byte) (*Matrix, int) { m, _ := NewFloat(F16, rows, cols, b[:2*n]); return m, 2 * n }},
		// QINS packed codes with a table per row (the default conversion),
		// and one-byte codes with one signed table (rational, i8).
		{"packed-rows", func() { fill(1, func(b []byte, v float64) { b[0] = byte(int(v*1e4) & 0xff) }) },
			n + rows*SignStride(cols) + 1024*rows, func(b []byte) (*Matrix, int) {
				// Each matrix has tables of its own, as a model's do.
				s := rows * SignStride(cols)
				t := unsafe.Slice((*float32)(unsafe.Pointer(&b[n+s])), 256*rows)
				copy(t, tables)
				m, _ := NewCoded(rows, cols, b[:n], b[n:n+s], t)
				return m, n + s + 1024*rows
			}},
		{"codes-tensor", func() { fill(1, func(b []byte, v float64) { b[0] = byte(int(v*1e4) & 0xff) }) },
			n, func(b []byte) (*Matrix, int) {
				m, _ := NewCoded(rows, cols, b[:n], nil, slices.Clone(tables[:256])) // NewCoded rearranges its tables
				return m, n
			}},
	}
	for _, f := range forms {
		f.fill()
		var ms []*Matrix
		var total int64
		for off := 0; off+f.size <= len(buf); {
			m, size := f.make(buf[off:])
			ms = append(ms, m)
			total += m.Bytes()
			off += size
		}
		b.Run(fmt.Sprintf("%s/floor", f.name), func(b *testing.B) {
			b.SetBytes(total)
			var s uint64
			for b.Loop() {
				s += sumWords(buf[:total&^7])
			}
			if s == 1 {
				b.Log(s)
			}
		})
		for _, kn := range testKernels {
			b.Run(fmt.Sprintf("%s/%s", f.name, kn.name), func(b *testing.B) {
				b.SetBytes(total)
				for b.Loop() {
					for _, m := range ms {
						m.mulVec(&kn, dst, x)
					}
				}
			})
		}
	}
}
