package quant

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
)

// TestCodeTableMatchesFormula checks the 16-bit code tables against
// Params.Code on every magnitude, for ranges from narrow to wide.
func TestCodeTableMatchesFormula(t *testing.T) {
	params := []Params{
		{LogMin: math.Log(1e-4), LogMax: math.Log(0.1)},
		{LogMin: math.Log(1e-8), LogMax: math.Log(math.MaxFloat32)},
		{LogMin: -0.001, LogMax: 0.001},
		{LogMin: math.Log(3), LogMax: math.Log(3)},
		{LogMin: math.Log(0.5), LogMax: math.Log(0.75)},
		{LogMin: -17.3, LogMax: -1.2},
		{LogMin: -16.1, LogMax: -2.9},
		{LogMin: -30, LogMax: 12},
		{LogMin: 0, LogMax: 200},
		{LogMin: -5, LogMax: 89},
	}
	for _, dt := range []dtype.DType{dtype.F16, dtype.BF16} {
		s, _ := NewRangeScanner(dt)
		for _, p := range params {
			tab := s.EncoderFor(p).table
			for m := range 1 << 15 {
				want := uint8(0) // non-finite: coded on the spot
				if uint16(m)&s.expAll != s.expAll {
					want = p.Code(float64(s.toF32(uint16(m))))
				}
				if tab[m] != want {
					t.Fatalf("%v %+v: magnitude %#04x (%v): table %d, formula %d", dt, p, m, s.toF32(uint16(m)), tab[m], want)
				}
			}
		}
		if s.EncoderFor(Params{LogMin: 1, LogMax: -1}).table != nil {
			t.Errorf("%v: a table for invalid parameters", dt)
		}
	}
}

// randomPatterns returns n 16-bit values: mostly Normal-like weights,
// with zeros of both signs, tiny values and, when bad, NaNs and
// infinities.
func randomPatterns(r *rand.Rand, n int, bad bool) []byte {
	b := make([]byte, 2*n)
	for i := range n {
		h := uint16(math.Float32bits(float32(0.02*r.NormFloat64())) >> 16)
		switch r.IntN(40) {
		case 0:
			h = 0
		case 1:
			h = 0x8000
		case 2:
			h = uint16(r.IntN(0x40)) | uint16(r.IntN(2))<<15
		case 3:
			if bad {
				h = 0x7f80 | uint16(r.IntN(0x80)) | uint16(r.IntN(2))<<15
			}
		case 4:
			h = uint16(r.Uint32())
			if !bad && h&0x7f80 == 0x7f80 {
				h &^= 0x4000
			}
		}
		binary.LittleEndian.PutUint16(b[2*i:], h)
	}
	return b
}

// TestKernels runs the kernels where they run (AVX-512 on amd64) and the
// Go ones on the same inputs, of every length up to a few blocks and at
// every alignment, against the formula element by element.
func TestKernels(t *testing.T) {
	t.Logf("AVX-512 kernels: %v", avx512)
	r := rand.New(rand.NewPCG(21, 22))
	p := Params{LogMin: -16.1, LogMax: -2.9}
	s, _ := NewRangeScanner(dtype.BF16)
	tab := s.EncoderFor(p).table
	tiny := uint16(s.tinyU)
	// Every length up to a few blocks, and long ones, which the Go range
	// scan takes another way.
	var lengths []int
	for n := range 201 {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 1<<13, 1<<13+3, 50001)
	for _, bad := range []bool{false, true} {
		for _, n := range lengths {
			for off := range 3 {
				raw := randomPatterns(r, n+off, bad && r.IntN(3) == 0)[2*off:]
				// The range: naively, then by both kernels.
				mx, mn := uint16(0), uint16(0xffff)
				mx32, mn32 := uint32(0), uint32(math.MaxUint32)
				raw32 := make([]byte, 4*n)
				for i := range n {
					h := binary.LittleEndian.Uint16(raw[2*i:])
					u := uint32(h&0x7fff) << 16
					binary.LittleEndian.PutUint32(raw32[4*i:], uint32(h)<<16|uint32(r.IntN(1<<16)))
					m := h & 0x7fff
					mx = max(mx, m)
					mx32 = max(mx32, u|uint32(binary.LittleEndian.Uint16(raw32[4*i:])))
					if m > tiny {
						mn = min(mn, m)
					}
				}
				for i := range n {
					if u := binary.LittleEndian.Uint32(raw32[4*i:]) & 0x7fffffff; u > s.tinyU<<16 {
						mn32 = min(mn32, u)
					}
				}
				for _, f := range []func([]byte, uint16, uint16, uint16) (uint16, uint16){minMax16, minMax16Fast} {
					if a, b := f(raw, tiny, 0, 0xffff); a != mx || b != mn {
						t.Fatalf("n %d: minMax16 %#x %#x, want %#x %#x", n, a, b, mx, mn)
					}
				}
				for _, f := range []func([]byte, uint32, uint32, uint32) (uint32, uint32){minMax32, minMax32Fast} {
					if a, b := f(raw32, s.tinyU<<16, 0, math.MaxUint32); a != mx32 || b != mn32 {
						t.Fatalf("n %d: minMax32 %#x %#x, want %#x %#x", n, a, b, mx32, mn32)
					}
				}
				// The encode: a prefix, up to the group holding the
				// first magnitude without a code.
				first := n
				for i := range n {
					if tab[binary.LittleEndian.Uint16(raw[2*i:])&0x7fff] == 0 {
						first = i
						break
					}
				}
				for _, k := range []struct {
					f     func(*codeTable, []byte, []uint8, []int8) int
					group int
				}{{encode16, 8}, {encode16Fast, 32}} {
					codes, signs := make([]uint8, n), make([]int8, n)
					done := k.f(tab, raw, codes, signs)
					lo, hi := first&^(k.group-1), first
					if first == n {
						lo, hi = n&^7, n&^7
					}
					if done < lo || done > hi || done%8 != 0 {
						t.Fatalf("n %d, first without a code %d: wrote %d", n, first, done)
					}
					for i := range done {
						h := binary.LittleEndian.Uint16(raw[2*i:])
						v := float64(dtype.BF16ToFloat32(h))
						if codes[i] != p.Code(math.Abs(v)) || signs[i] != Sign(v) {
							t.Fatalf("n %d, element %d (%#04x): %d/%d, formula %d/%d", n, i, h, codes[i], signs[i], p.Code(math.Abs(v)), Sign(v))
						}
					}
				}
				for _, k := range []struct {
					f     func(*codeTable, []byte, []uint8, []byte) int
					group int
				}{{encode16Packed, 8}, {encode16PackedFast, 32}} {
					codes, bits := make([]uint8, n), make([]byte, (n+7)/8)
					done := k.f(tab, raw, codes, bits)
					lo, hi := first&^(k.group-1), first
					if first == n {
						lo, hi = n&^7, n&^7
					}
					if done < lo || done > hi || done%8 != 0 {
						t.Fatalf("packed, n %d, first without a code %d: wrote %d", n, first, done)
					}
					for i := range done {
						h := binary.LittleEndian.Uint16(raw[2*i:])
						v := float64(dtype.BF16ToFloat32(h))
						c := p.Code(math.Abs(v))
						if v == 0 {
							c = 0
						}
						if codes[i] != c || bits[i/8]>>(i%8)&1 != byte(Sign(v)>>7&1) {
							t.Fatalf("packed, n %d, element %d (%#04x): code %d bit %d, want %d for sign %d", n, i, h, codes[i], bits[i/8]>>(i%8)&1, c, Sign(v))
						}
					}
				}
			}
		}
	}
}

// TestEncodePacked checks EncodePacked against Encode, ZeroCodes and
// PackSigns, for every dtype, chunk lengths that are not whole bytes of
// bits, tables with and without gaps and a NaN among the values.
func TestEncodePacked(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, dt := range floatTypes {
		for _, n := range []int{0, 1, 7, 8, 31, 32, 33, 100, 257, 1000, 40000} {
			vals := make([]float64, n)
			for i := range vals {
				vals[i] = 0.02 * r.NormFloat64()
				switch r.IntN(30) {
				case 0:
					vals[i] = 0
				case 1:
					vals[i] = math.Copysign(0, -1)
				case 2:
					vals[i] = 3e-9
				}
			}
			if n == 1000 {
				vals[517] = math.NaN()
			}
			raw, _ := toRaw(t, dt, vals)
			p := Params{LogMin: -16.1, LogMax: -2.9}
			s, _ := NewRangeScanner(dt)
			s.Scan(raw, 0)
			for _, e := range []*Encoder{s.EncoderFor(p), {dt: dt, size: int(dt.Size()), p: p, toF32: s.toF32}} {
				codes, signs, bits := make([]uint8, n), make([]int8, n), make([]byte, (n+7)/8)
				e.Encode(raw, codes, signs)
				ZeroCodes(dt, raw, codes)
				PackSigns(signs, bits)
				pc, pb := make([]uint8, n), make([]byte, (n+7)/8)
				for i := range pb {
					pb[i] = 0xa5 // the padding bits must be cleared
				}
				e.EncodePacked(raw, pc, pb)
				if string(pc) != string(codes) || string(pb) != string(bits) {
					t.Fatalf("%v, %d elements, table %v: EncodePacked differs from Encode, ZeroCodes and PackSigns", dt, n, e.table != nil)
				}
			}
		}
	}
}
