package matvec

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
)

// shapes have columns around every vector step (8, 16, 64) and rows that
// split unevenly among goroutines; the large ones take the parallel path.
var shapes = [][2]int{{1, 1}, {3, 7}, {5, 8}, {2, 15}, {4, 16}, {7, 33}, {3, 64}, {9, 100}, {2, 1000}, {65, 257}, {300, 300}, {129, 3072}}

// stored is a random matrix in one stored form, with the float64 values
// it stands for.
type stored struct {
	name string
	m    *Matrix
	w    []float64 // rows×cols
}

func randStored(t *testing.T, r *rand.Rand, rows, cols int) []stored {
	t.Helper()
	n := rows * cols
	var out []stored
	add := func(name string, m *Matrix, err error, w []float64) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, stored{name, m, w})
	}
	// F32, BF16 and F16, with a few exact zeros and negative zeros.
	f32, b16, h16 := make([]byte, 4*n), make([]byte, 2*n), make([]byte, 2*n)
	w32, w16, wh := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		v := r.NormFloat64()
		switch r.IntN(20) {
		case 0:
			v = 0
		case 1:
			v = math.Copysign(0, -1)
		}
		binary.LittleEndian.PutUint32(f32[4*i:], math.Float32bits(float32(v)))
		w32[i] = float64(float32(v))
		bb := dtype.Float64ToBF16(v)
		binary.LittleEndian.PutUint16(b16[2*i:], bb)
		w16[i] = float64(math.Float32frombits(uint32(bb) << 16))
		hb := dtype.Float64ToF16(v)
		binary.LittleEndian.PutUint16(h16[2*i:], hb)
		wh[i] = float64(dtype.F16ToFloat32(hb))
	}
	m, err := NewFloat(F32, rows, cols, f32)
	add("F32", m, err, w32)
	m, err = NewFloat(BF16, rows, cols, b16)
	add("BF16", m, err, w16)
	m, err = NewFloat(F16, rows, cols, h16)
	add("F16", m, err, wh)
	// Codes with one table and with a table per row, with and without
	// sign bits; codes 0 and 255 often, tables with negative entries (as
	// the rational codec's and the i8 layout's hold) and an entry 0.
	for _, perRow := range []bool{false, true} {
		for _, withSigns := range []bool{false, true} {
			nt := 1
			if perRow {
				nt = rows
			}
			tables := make([]float32, 256*nt)
			for i := range tables {
				tables[i] = float32(r.NormFloat64() * math.Exp(r.Float64()*4-2))
			}
			for k := 0; k < nt; k++ {
				tables[256*k] = 0
			}
			codes := make([]byte, n)
			for i := range codes {
				switch r.IntN(8) {
				case 0:
					codes[i] = 0
				case 1:
					codes[i] = 255
				default:
					codes[i] = byte(r.IntN(256))
				}
			}
			var signs []byte
			if withSigns {
				signs = make([]byte, rows*SignStride(cols))
				for rr := range rows {
					for j := range cols {
						if r.IntN(2) == 1 {
							signs[rr*SignStride(cols)+j/8] |= 1 << (j % 8)
						}
					}
				}
			}
			w := make([]float64, n)
			for rr := range rows {
				for j := range cols {
					tb := 0
					if perRow {
						tb = rr
					}
					v := float64(tables[256*tb+int(codes[rr*cols+j])])
					if signs != nil && signs[rr*SignStride(cols)+j/8]>>(j%8)&1 == 1 {
						v = -v
					}
					w[rr*cols+j] = v
				}
			}
			m, err := NewCoded(rows, cols, codes, signs, tables)
			add(fmt.Sprintf("coded/rows=%v/signs=%v", perRow, withSigns), m, err, w)
		}
	}
	return out
}

// TestMulVec checks every kernel on every stored form against the product
// in float64 of the values the form stands for, within the rounding error
// of float32 sums in any order, and that the kernels agree with the Go
// one to the same bound.
func TestMulVec(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sh := range shapes {
		rows, cols := sh[0], sh[1]
		x := make([]float32, cols)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		for _, s := range randStored(t, r, rows, cols) {
			want, mag := make([]float64, rows), make([]float64, rows)
			for rr := range rows {
				for j := range cols {
					p := s.w[rr*cols+j] * float64(x[j])
					want[rr] += p
					mag[rr] += math.Abs(p)
				}
			}
			goGot := make([]float32, rows)
			s.m.mulVec(&goKernel, goGot, x)
			for _, kn := range testKernels {
				t.Run(fmt.Sprintf("%dx%d/%s/%s", rows, cols, s.name, kn.name), func(t *testing.T) {
					got := make([]float32, rows+1)
					got[rows] = 42 // past the rows: untouched
					s.m.mulVec(&kn, got, x)
					// n roundings of relative size 2⁻²⁴ each, on sums bounded by mag.
					for rr := range rows {
						tol := float64(cols+2) * 0x1p-24 * mag[rr]
						if d := math.Abs(float64(got[rr]) - want[rr]); d > tol {
							t.Fatalf("row %d: got %v, want %v (|diff| %g > %g)", rr, got[rr], want[rr], d, tol)
						}
						if d := math.Abs(float64(got[rr]) - float64(goGot[rr])); d > 2*tol {
							t.Fatalf("row %d: %s gives %v, go %v", rr, kn.name, got[rr], goGot[rr])
						}
					}
					if got[rows] != 42 {
						t.Fatalf("wrote past the rows")
					}
				})
			}
		}
	}
}

// TestDecodeRows checks that DecodeRows gives the values exactly.
func TestDecodeRows(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, sh := range shapes[:9] {
		rows, cols := sh[0], sh[1]
		for _, s := range randStored(t, r, rows, cols) {
			for r0 := 0; r0 < rows; r0++ {
				r1 := min(rows, r0+2)
				got := make([]float32, (r1-r0)*cols)
				s.m.DecodeRows(r0, r1, got)
				for i, v := range got {
					if w := s.w[r0*cols+i]; float64(v) != w || math.Signbit(float64(v)) != math.Signbit(w) && v != 0 {
						t.Fatalf("%s %dx%d: row %d col %d: got %v, want %v", s.name, rows, cols, r0+i/cols, i%cols, v, w)
					}
				}
			}
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func() error
	}{
		{"short data", func() error { _, err := NewFloat(BF16, 2, 3, make([]byte, 11)); return err }},
		{"coded kind", func() error { _, err := NewFloat(Coded, 1, 1, make([]byte, 1)); return err }},
		{"short codes", func() error { _, err := NewCoded(2, 3, make([]byte, 5), nil, make([]float32, 256)); return err }},
		{"short signs", func() error {
			_, err := NewCoded(2, 9, make([]byte, 18), make([]byte, 3), make([]float32, 256))
			return err
		}},
		{"tables", func() error { _, err := NewCoded(2, 3, make([]byte, 6), nil, make([]float32, 300)); return err }},
	} {
		if tc.err() == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestSumBytes(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 255, 256, 1000, 1 << 20, 1<<20 + 13} {
		b := make([]byte, n)
		var want uint64
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		for i := 0; i+8 <= n; i += 8 {
			want += binary.LittleEndian.Uint64(b[i:])
		}
		for _, c := range b[n&^7:] {
			want += uint64(c)
		}
		if got := sumWords(b); got != want {
			t.Errorf("n=%d: sumWords %d, want %d", n, got, want)
		}
	}
}
