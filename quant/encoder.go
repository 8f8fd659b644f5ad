package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/nlpodyssey/safetensors"
)

// Encoder encodes one tensor held as little-endian bytes of its dtype, in
// two passes over the same bytes: Scan every chunk to find the range, call
// Params, then Encode every chunk. Chunks hold whole elements.
//
// For 16-bit dtypes the range pass only marks which bit patterns occur, and
// the codes come from a table built once per tensor with Params.Code, so the
// codes are exactly those of the formula without a logarithm per element.
type Encoder struct {
	dt     safetensors.DType
	size   int
	n      int64 // elements scanned
	r      *Range
	p      Params
	ready  bool
	seen   []bool  // 16-bit: which of the 65536 patterns occur
	table  []uint8 // 16-bit: code per magnitude pattern (sign bit clear)
	toF32  func(uint16) float32
	expAll uint16 // 16-bit: exponent mask; all ones means NaN or infinity
	vals   []float64
	read   func([]byte, []float64)
}

// NewEncoder returns an Encoder for a tensor of dtype dt, which must be F16,
// BF16, F32 or F64.
func NewEncoder(dt safetensors.DType) (*Encoder, error) {
	if !IsFloat(dt) {
		return nil, fmt.Errorf("dtype %v cannot be encoded: it is not F16, BF16, F32 or F64", dt)
	}
	read, err := Reader(dt)
	if err != nil {
		return nil, err
	}
	e := &Encoder{dt: dt, size: int(dt.Size()), r: NewRange(), read: read}
	switch dt {
	case safetensors.F16:
		e.toF32, e.expAll = F16ToFloat32, 0x7c00
	case safetensors.BF16:
		e.toF32, e.expAll = BF16ToFloat32, 0x7f80
	}
	if e.toF32 != nil {
		e.seen = make([]bool, 1<<16)
	}
	return e, nil
}

// Scan takes the next chunk of the tensor for the range pass.
func (e *Encoder) Scan(b []byte) {
	if e.seen == nil {
		n := len(b) / e.size
		if cap(e.vals) < n {
			e.vals = make([]float64, n)
		}
		v := e.vals[:n]
		e.read(b, v)
		e.r.Add(v)
		e.n += int64(n)
		return
	}
	seen := e.seen
	n := len(b) / 2
	for i := 0; i < n; i++ {
		seen[binary.LittleEndian.Uint16(b[2*i:])] = true
	}
	if e.r.bad == nil && e.sawNonFinite() {
		for i := 0; i < n; i++ {
			h := binary.LittleEndian.Uint16(b[2*i:])
			if h&e.expAll == e.expAll {
				e.r.bad = &NonFiniteError{Index: e.n + int64(i), Value: float64(e.toF32(h))}
				break
			}
		}
	}
	e.n += int64(n)
}

// sawNonFinite reports whether any NaN or infinity pattern has been seen.
func (e *Encoder) sawNonFinite() bool {
	// The patterns with every exponent bit set, in both signs.
	lowMant := e.expAll & -e.expAll // lowest exponent bit
	for m := uint16(0); m < lowMant; m++ {
		if e.seen[e.expAll|m] || e.seen[0x8000|e.expAll|m] {
			return true
		}
	}
	return false
}

// Elements returns how many elements Scan has taken.
func (e *Encoder) Elements() int64 { return e.n }

// Params ends the range pass and returns the tensor's parameters, or a
// *NonFiniteError naming the first NaN or infinity.
func (e *Encoder) Params() (Params, error) {
	if e.ready {
		return e.p, nil
	}
	if e.seen != nil && e.r.bad == nil {
		for h := 0; h < 1<<15; h++ {
			if e.seen[h] || e.seen[h|0x8000] {
				e.r.addMagnitude(float64(e.toF32(uint16(h))))
			}
		}
	}
	p, err := e.r.Params()
	if err != nil {
		return Params{}, err
	}
	e.p, e.ready = p, true
	if e.seen != nil {
		// Codes of the magnitudes seen now; others are filled in by Encode
		// if they turn up, so the table is right whatever the second pass
		// reads, without a logarithm per unused pattern.
		e.table = make([]uint8, 1<<15)
		for h := range e.table {
			if uint16(h)&e.expAll == e.expAll {
				e.table[h] = 255 // never encoded: the range pass refuses them
			} else if e.seen[h] || e.seen[h|0x8000] {
				e.table[h] = p.Code(float64(e.toF32(uint16(h))))
			}
		}
	}
	return p, nil
}

// Encode writes the codes and signs of the next chunk of the tensor; codes
// and signs must hold one entry per element of b. Params must have been
// called.
func (e *Encoder) Encode(b []byte, codes []uint8, signs []int8) {
	if !e.ready {
		panic("quant: Encode called before Params")
	}
	n := len(b) / e.size
	codes, signs = codes[:n], signs[:n]
	if e.table != nil {
		table := e.table
		for i := range codes {
			h := binary.LittleEndian.Uint16(b[2*i:])
			m := h & 0x7fff
			c := table[m]
			if c == 0 { // a pattern the range pass did not see
				c = e.p.Code(float64(e.toF32(m)))
				table[m] = c
			}
			codes[i] = c
			nz := int8(min(m, 1))
			signs[i] = nz - 2*nz*int8(h>>15)
		}
		return
	}
	if cap(e.vals) < n {
		e.vals = make([]float64, n)
	}
	v := e.vals[:n]
	e.read(b, v)
	p := e.p
	for i, x := range v {
		codes[i] = p.Code(math.Abs(x))
		signs[i] = Sign(x)
	}
}
