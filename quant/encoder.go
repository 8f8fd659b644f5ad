package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/nlpodyssey/safetensors"
)

// Scanner is the range pass over one tensor held as little-endian bytes of
// its dtype. A tensor can be scanned in chunks by several goroutines, each
// with its own Scanner, merged at the end; Encoder then gives the encoder.
//
// For 16-bit dtypes the range pass only marks which bit patterns occur; the
// encoder's codes come from a table filled with Params.Code, so they are
// exactly the formula's without a logarithm per element.
type Scanner struct {
	dt     safetensors.DType
	size   int
	r      *Range
	seen   []bool // 16-bit: which of the 65536 patterns occur
	bad    int64  // 16-bit: first element that is NaN or infinite, or -1
	badVal float64
	toF32  func(uint16) float32
	expAll uint16 // 16-bit: exponent mask; all ones means NaN or infinity
	vals   []float64
	read   func([]byte, []float64)
}

// NewScanner returns a Scanner for a tensor of dtype dt, which must be F16,
// BF16, F32 or F64.
func NewScanner(dt safetensors.DType) (*Scanner, error) {
	if !IsFloat(dt) {
		return nil, fmt.Errorf("dtype %v cannot be encoded: it is not F16, BF16, F32 or F64", dt)
	}
	read, err := Reader(dt)
	if err != nil {
		return nil, err
	}
	s := &Scanner{dt: dt, size: int(dt.Size()), r: NewRange(), read: read, bad: -1}
	s.toF32, s.expAll = toF32(dt)
	if s.toF32 != nil {
		s.seen = make([]bool, 1<<16)
	}
	return s, nil
}

// toF32 returns the conversion and the exponent mask of a 16-bit dtype.
func toF32(dt safetensors.DType) (func(uint16) float32, uint16) {
	switch dt {
	case safetensors.F16:
		return F16ToFloat32, 0x7c00
	case safetensors.BF16:
		return BF16ToFloat32, 0x7f80
	}
	return nil, 0
}

// Scan takes a chunk of the tensor whose first element has flat index
// first.
func (s *Scanner) Scan(b []byte, first int64) {
	n := len(b) / s.size
	if s.seen == nil {
		if cap(s.vals) < n {
			s.vals = make([]float64, n)
		}
		v := s.vals[:n]
		s.read(b, v)
		s.r.Add(v, first)
		return
	}
	seen := s.seen
	b = b[:2*n]
	for i := 0; i+1 < len(b); i += 2 {
		seen[binary.LittleEndian.Uint16(b[i:])] = true
	}
	s.r.n += int64(n)
	if s.sawNonFinite() && (s.bad < 0 || first < s.bad) {
		for i := 0; i < n; i++ {
			if h := binary.LittleEndian.Uint16(b[2*i:]); h&s.expAll == s.expAll {
				if s.bad < 0 || first+int64(i) < s.bad {
					s.bad, s.badVal = first+int64(i), float64(s.toF32(h))
				}
				break
			}
		}
	}
}

// sawNonFinite reports whether any NaN or infinity pattern has been seen.
func (s *Scanner) sawNonFinite() bool {
	lowExp := s.expAll & -s.expAll // lowest exponent bit
	for m := uint16(0); m < lowExp; m++ {
		if s.seen[s.expAll|m] || s.seen[0x8000|s.expAll|m] {
			return true
		}
	}
	return false
}

// Merge adds what o scanned to s; both scan the same tensor.
func (s *Scanner) Merge(o *Scanner) {
	if s.seen != nil {
		for i, v := range o.seen {
			if v {
				s.seen[i] = true
			}
		}
		if o.bad >= 0 && (s.bad < 0 || o.bad < s.bad) {
			s.bad, s.badVal = o.bad, o.badVal
		}
	}
	s.r.Merge(o.r)
}

// Elements returns how many elements have been scanned.
func (s *Scanner) Elements() int64 { return s.r.n }

// Params returns the tensor's parameters, or a *NonFiniteError naming the
// first NaN or infinity.
func (s *Scanner) Params() (Params, error) {
	if s.seen == nil {
		return s.r.Params()
	}
	if s.bad >= 0 {
		return Params{}, &NonFiniteError{Index: s.bad, Value: s.badVal}
	}
	r := NewRange()
	for h := 0; h < 1<<15; h++ {
		if s.seen[h] || s.seen[h|0x8000] {
			r.addMagnitude(float64(s.toF32(uint16(h))))
		}
	}
	return r.Params()
}

// Encoder returns the encoder of the scanned tensor.
func (s *Scanner) Encoder() (*Encoder, error) {
	p, err := s.Params()
	if err != nil {
		return nil, err
	}
	e := &Encoder{dt: s.dt, p: p, size: s.size}
	if s.seen != nil {
		e.toF32 = s.toF32
		e.table = make([]uint8, 1<<15)
		for h := range e.table {
			if uint16(h)&s.expAll != s.expAll && (s.seen[h] || s.seen[h|0x8000]) {
				e.table[h] = p.Code(float64(s.toF32(uint16(h))))
			}
		}
	}
	return e, nil
}

// Encoder encodes the chunks of one scanned tensor. It is safe for
// concurrent use.
type Encoder struct {
	dt    safetensors.DType
	size  int
	p     Params
	table []uint8 // 16-bit: code per magnitude pattern seen; 0 for others
	toF32 func(uint16) float32
}

// NewEncoder returns the encoder of a tensor of dtype dt with parameters p,
// without a range pass: every element is coded with the formula.
func NewEncoder(dt safetensors.DType, p Params) (*Encoder, error) {
	if !IsFloat(dt) {
		return nil, fmt.Errorf("dtype %v cannot be encoded: it is not F16, BF16, F32 or F64", dt)
	}
	e := &Encoder{dt: dt, size: int(dt.Size()), p: p}
	if f, _ := toF32(dt); f != nil {
		e.toF32, e.table = f, make([]uint8, 1<<15)
	}
	return e, nil
}

// Params returns the tensor's parameters.
func (e *Encoder) Params() Params { return e.p }

// Encode writes the codes and signs of a chunk; codes and signs must hold
// one entry per element of b.
func (e *Encoder) Encode(b []byte, codes []uint8, signs []int8) {
	n := len(b) / e.size
	codes, signs = codes[:n], signs[:n]
	le := binary.LittleEndian
	p := e.p
	switch e.dt {
	case safetensors.F16, safetensors.BF16:
		table := e.table
		b = b[:2*n]
		for i := range codes {
			h := le.Uint16(b[2*i:])
			m := h & 0x7fff
			c := table[m]
			if c == 0 { // a pattern the range pass did not see
				c = p.Code(float64(e.toF32(m)))
			}
			codes[i] = c
			nz := int8(min(m, 1))
			signs[i] = nz - 2*nz*int8(h>>15)
		}
	case safetensors.F32:
		for i := range codes {
			x := float64(math.Float32frombits(le.Uint32(b[4*i:])))
			codes[i], signs[i] = p.Code(math.Abs(x)), Sign(x)
		}
	case safetensors.F64:
		for i := range codes {
			x := math.Float64frombits(le.Uint64(b[8*i:]))
			codes[i], signs[i] = p.Code(math.Abs(x)), Sign(x)
		}
	}
}
