// Package matvec multiplies vectors by weight matrices kept in memory in
// their stored form, for greedy generation: one token reads every weight
// once, so the product runs at the speed memory delivers the stored bytes.
//
// A Matrix holds BF16, F16 or F32 values as stored, or QINS codes (one byte
// per weight) with their sign bits and a table of 256 float32 values per
// tensor or per row, indexed by the code. MulVec decodes inside the
// product: a table lookup (a gather) or a shift, then a fused multiply-add;
// nothing is decoded to memory. Kernels are AVX-512 and AVX2 assembly
// where the CPU runs them, and Go elsewhere, chosen once at start like
// package gemm's; rows are split among GOMAXPROCS goroutines.
package matvec

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/qins-dev/qins/format/dtype"
)

// Kind is how a Matrix stores its values.
type Kind uint8

// The kinds of Matrix.
const (
	F32   Kind = iota // float32, little-endian
	BF16              // bfloat16: the high half of a float32
	F16               // IEEE half precision
	Coded             // one byte code per weight, decoded by a table
)

func (k Kind) String() string {
	return [...]string{"F32", "BF16", "F16", "coded"}[k]
}

// Matrix is a rows×cols weight in memory, row-major, in its stored form.
// It is safe for concurrent use.
type Matrix struct {
	rows, cols int
	kind       Kind
	data       []byte // the values, or the codes
	signs      []byte // coded with signs: bit j of a row's bytes is 1 when weight j is negative
	signStride int    // bytes of sign bits per row: (cols+7)/8
	// planes are the coded matrix's tables, one or one per row, each as
	// 1024 bytes: byte k of entry c's float32 bits at 256k+c, so that
	// byte shuffles look four planes up (see kernel_amd64.s).
	planes []byte
	kn     *kernel
}

// NewFloat returns the matrix of rows×cols values of kind k (F32, BF16 or
// F16) stored little-endian in data, which it keeps.
func NewFloat(k Kind, rows, cols int, data []byte) (*Matrix, error) {
	size := map[Kind]int{F32: 4, BF16: 2, F16: 2}[k]
	if size == 0 {
		return nil, fmt.Errorf("matvec: kind %v is not a float kind", k)
	}
	if rows < 0 || cols < 0 || len(data) != rows*cols*size {
		return nil, fmt.Errorf("matvec: %d bytes for %d×%d %v values", len(data), rows, cols, k)
	}
	return &Matrix{rows: rows, cols: cols, kind: k, data: data, kn: best}, nil
}

// NewCoded returns the matrix of rows×cols codes, which it keeps. Weight
// (r, j) is tables[t*256+codes[r*cols+j]], t being 0 when tables holds one
// table and r when it holds one per row, negated when signs is not nil
// and bit j%8 (least significant first) of signs[r*SignStride(cols)+j/8]
// is 1. The tables' entries must be finite. It keeps tables' memory and
// rearranges it: tables must not be used after.
func NewCoded(rows, cols int, codes, signs []byte, tables []float32) (*Matrix, error) {
	switch {
	case rows < 0 || cols < 0 || len(codes) != rows*cols:
		return nil, fmt.Errorf("matvec: %d codes for %d×%d weights", len(codes), rows, cols)
	case signs != nil && len(signs) != rows*SignStride(cols):
		return nil, fmt.Errorf("matvec: %d sign bytes for %d rows of %d", len(signs), rows, cols)
	case len(tables) != 256 && len(tables) != 256*rows:
		return nil, fmt.Errorf("matvec: %d table entries for %d rows: want 256 or 256 per row", len(tables), rows)
	}
	planes := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(tables))), 4*len(tables))
	var tmp [1024]byte
	for t := 0; t < len(tables); t += 256 {
		for c, v := range tables[t : t+256] {
			b := math.Float32bits(v)
			tmp[c], tmp[256+c], tmp[512+c], tmp[768+c] = byte(b), byte(b>>8), byte(b>>16), byte(b>>24)
		}
		copy(planes[4*t:], tmp[:])
	}
	return &Matrix{rows: rows, cols: cols, kind: Coded, data: codes, signs: signs, signStride: SignStride(cols), planes: planes, kn: best}, nil
}

// SignStride returns the bytes of sign bits of a row of cols weights.
func SignStride(cols int) int { return (cols + 7) / 8 }

// Rows returns the number of rows.
func (m *Matrix) Rows() int { return m.rows }

// Cols returns the number of columns.
func (m *Matrix) Cols() int { return m.cols }

// Kind returns how the values are stored.
func (m *Matrix) Kind() Kind { return m.kind }

// Bytes returns the memory the matrix holds: values or codes, sign bits
// and tables.
func (m *Matrix) Bytes() int64 {
	return int64(len(m.data)) + int64(len(m.signs)) + int64(len(m.planes))
}

// table returns the decoding table of row r, as planes.
func (m *Matrix) table(r int) *[1024]byte {
	if len(m.planes) == 1024 {
		return (*[1024]byte)(m.planes)
	}
	return (*[1024]byte)(m.planes[1024*r:])
}

// entry returns entry c of a table stored as planes.
func entry(t *[1024]byte, c byte) float32 {
	return math.Float32frombits(uint32(t[c]) | uint32(t[256+int(c)])<<8 | uint32(t[512+int(c)])<<16 | uint32(t[768+int(c)])<<24)
}

// parallelMin is the number of weights below which one goroutine is
// faster than several.
const parallelMin = 1 << 16

// MulVec sets dst[r] = Σ_j W[r,j]·x[j] for every row r. It panics when dst
// or x is shorter than the shape needs.
func (m *Matrix) MulVec(dst, x []float32) {
	m.mulVec(m.kn, dst, x)
}

func (m *Matrix) mulVec(kn *kernel, dst, x []float32) {
	if len(dst) < m.rows || len(x) < m.cols {
		panic(fmt.Sprintf("matvec: MulVec of %d×%d with len(dst)=%d len(x)=%d", m.rows, m.cols, len(dst), len(x)))
	}
	var xperm []float32
	if m.kind == Coded && kn.prepare != nil {
		xperm = kn.prepare(x[:m.cols])
	}
	workers := runtime.GOMAXPROCS(0)
	if m.rows*m.cols < parallelMin || workers < 2 {
		m.rowsDot(kn, 0, m.rows, dst, x, xperm)
		return
	}
	// Many small chunks taken in turn from a counter: a worker the
	// machine slows down (it is shared) takes fewer, and the others do
	// not wait for it. The caller is one of the workers.
	size := max(16, m.rows/(64*workers))
	chunks := (m.rows + size - 1) / size
	var next atomic.Int64
	work := func() {
		for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
			m.rowsDot(kn, c*size, min((c+1)*size, m.rows), dst, x, xperm)
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// rowsDot computes rows [r0, r1) of the product.
func (m *Matrix) rowsDot(kn *kernel, r0, r1 int, dst, x, xperm []float32) {
	n := m.cols
	if n == 0 {
		clear(dst[r0:r1])
		return
	}
	x = x[:n]
	xp := unsafe.SliceData(x)
	switch m.kind {
	case F32:
		for r := r0; r < r1; r++ {
			w := unsafe.Slice((*float32)(unsafe.Pointer(&m.data[4*r*n])), n)
			dst[r] = kn.f32(w, x, xp)
		}
	case BF16, F16:
		f := kn.bf16
		if m.kind == F16 {
			f = kn.f16
		}
		for r := r0; r < r1; r++ {
			w := unsafe.Slice((*uint16)(unsafe.Pointer(&m.data[2*r*n])), n)
			dst[r] = f(w, x, xp)
		}
	case Coded:
		perRow := len(m.planes) > 1024
		for r := r0; r < r1; r++ {
			codes := m.data[r*n : (r+1)*n]
			t := m.table(r)
			if perRow && r+1 < r1 {
				// The next row's table is not in the stream the
				// hardware prefetches: a row's product takes long enough to
				// hide its fetch.
				prefetchTable(&m.planes[1024*(r+1)])
			}
			if m.signs == nil {
				dst[r] = kn.coded(codes, nil, t, x, xperm)
			} else {
				dst[r] = kn.coded(codes, m.signs[r*m.signStride:(r+1)*m.signStride], t, x, xperm)
			}
		}
	}
}

// DecodeRows sets dst (len (r1-r0)·cols) to rows [r0, r1) as float32: the
// values MulVec multiplies by.
func (m *Matrix) DecodeRows(r0, r1 int, dst []float32) {
	n := m.cols
	if r0 < 0 || r1 < r0 || r1 > m.rows || len(dst) < (r1-r0)*n {
		panic(fmt.Sprintf("matvec: DecodeRows [%d, %d) of %d rows into %d values", r0, r1, m.rows, len(dst)))
	}
	var t [256]float32
	for r := r0; r < r1; r++ {
		out := dst[(r-r0)*n : (r-r0+1)*n]
		switch m.kind {
		case F32:
			for j := range out {
				out[j] = math.Float32frombits(le32(m.data[4*(r*n+j):]))
			}
		case BF16:
			in := m.data[2*r*n : 2*(r+1)*n]
			for j := range out {
				out[j] = math.Float32frombits(uint32(in[2*j])<<16 | uint32(in[2*j+1])<<24)
			}
		case F16:
			for j := range out {
				out[j] = dtype.F16ToFloat32(le16(m.data[2*(r*n+j):]))
			}
		case Coded:
			// The row's table unpacked once, then one lookup a weight.
			if r == r0 || len(m.planes) > 1024 {
				p := m.table(r)
				for c := range t {
					t[c] = entry(p, byte(c))
				}
			}
			codes := m.data[r*n : (r+1)*n]
			for j, c := range codes {
				out[j] = t[c]
			}
			if m.signs == nil {
				continue
			}
			signs := m.signs[r*m.signStride : (r+1)*m.signStride]
			for k, b := range signs {
				for ; b != 0; b &= b - 1 {
					j := 8*k + bits.TrailingZeros8(b)
					out[j] = -out[j]
				}
			}
		}
	}
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// SumBytes reads every byte the matrix holds once, with the goroutines
// MulVec uses, and returns their sum as words: the memory traffic of one
// product without its arithmetic, a floor for benchmarks.
func (m *Matrix) SumBytes() uint64 {
	var s uint64
	for _, b := range [][]byte{m.data, m.signs, m.planes} {
		s += sumWords(b)
	}
	return s
}

// sumWords returns the sum of b as little-endian words (and its last
// bytes), read by GOMAXPROCS goroutines.
func sumWords(b []byte) uint64 {
	words := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/8)
	var tail uint64
	for _, c := range b[len(words)*8:] {
		tail += uint64(c)
	}
	workers := runtime.GOMAXPROCS(0)
	if len(words) < parallelMin {
		workers = 1
	}
	sums := make([]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			part := words[w*len(words)/workers : (w+1)*len(words)/workers]
			bs, n := sumBlocks(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(part))), 8*len(part)))
			var s0, s1, s2, s3 uint64
			s0 = bs
			i := n / 8
			for ; i+4 <= len(part); i += 4 {
				s0 += part[i]
				s1 += part[i+1]
				s2 += part[i+2]
				s3 += part[i+3]
			}
			for ; i < len(part); i++ {
				s0 += part[i]
			}
			sums[w] = s0 + s1 + s2 + s3
		})
	}
	wg.Wait()
	for _, v := range sums {
		tail += v
	}
	return tail
}
