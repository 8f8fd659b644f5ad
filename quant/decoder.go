package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/nlpodyssey/safetensors"
)

// InvalidError reports a stored code or sign that no encoder writes.
type InvalidError struct {
	Index int64  // flat element index
	What  string // what is wrong with it
}

func (e *InvalidError) Error() string { return fmt.Sprintf("element %d: %s", e.Index, e.What) }

// Decoder decodes the codes and signs of one tensor, chunk by chunk. It
// checks every code and sign it reads. Its methods take the flat index of
// the chunk's first element, for errors, and are safe for concurrent use.
type Decoder struct {
	p   Params
	mag [256]float64
}

// NewDecoder returns a Decoder for a tensor with parameters p, which must be
// valid (see Params.Validate).
func NewDecoder(p Params) *Decoder {
	d := &Decoder{p: p}
	for c := range d.mag {
		d.mag[c] = p.Magnitude(uint8(c))
	}
	return d
}

// check validates one chunk before it is decoded.
func (d *Decoder) check(codes []uint8, signs []int8, first int64) error {
	if len(codes) != len(signs) {
		return fmt.Errorf("quant: %d codes but %d signs", len(codes), len(signs))
	}
	for i, c := range codes {
		s := signs[i]
		if c == 0 || s < -1 || s > 1 {
			if c == 0 {
				return &InvalidError{Index: first + int64(i), What: "code 0 is not a valid code"}
			}
			return &InvalidError{Index: first + int64(i), What: fmt.Sprintf("sign %d is not -1, 0 or 1", s)}
		}
	}
	return nil
}

// Magnitudes returns the decoded magnitude of each code.
func (d *Decoder) Magnitudes() *[256]float64 { return &d.mag }

// Decode writes the values of a chunk whose first element has flat index
// first to dst, as float64.
func (d *Decoder) Decode(codes []uint8, signs []int8, dst []float64, first int64) error {
	if err := d.check(codes, signs, first); err != nil {
		return err
	}
	for i, c := range codes {
		dst[i] = float64(signs[i]) * d.mag[c]
		if signs[i] == 0 {
			dst[i] = 0 // not -0
		}
	}
	return nil
}

// DecodeTo writes the values of a chunk whose first element has flat index
// first to dst as little-endian elements of dtype dt (F16, BF16, F32 or
// F64), each rounded once from the float64 value.
func (d *Decoder) DecodeTo(dt safetensors.DType, codes []uint8, signs []int8, dst []byte, first int64) error {
	if err := d.check(codes, signs, first); err != nil {
		return err
	}
	var bits [256]uint64
	var signBit uint64
	switch dt {
	case safetensors.F16:
		signBit = 1 << 15
		for c, m := range d.mag {
			bits[c] = uint64(Float64ToF16(m))
		}
	case safetensors.BF16:
		signBit = 1 << 15
		for c, m := range d.mag {
			bits[c] = uint64(Float64ToBF16(m))
		}
	case safetensors.F32:
		// The common case gets its own loop.
		var t [256]uint32
		for c, m := range d.mag {
			t[c] = math.Float32bits(float32(m))
		}
		for i, c := range codes {
			s := signs[i]
			v := t[c] | uint32(s>>7)&0x80000000 // sign bit when s < 0
			if s == 0 {
				v = 0
			}
			binary.LittleEndian.PutUint32(dst[4*i:], v)
		}
		return nil
	case safetensors.F64:
		signBit = 1 << 63
		for c, m := range d.mag {
			bits[c] = math.Float64bits(m)
		}
	default:
		return fmt.Errorf("quant: cannot decode to dtype %v", dt)
	}
	size := int(dt.Size())
	for i, c := range codes {
		var v uint64
		switch s := signs[i]; {
		case s > 0:
			v = bits[c]
		case s < 0:
			v = bits[c] | signBit
		}
		if size == 2 {
			binary.LittleEndian.PutUint16(dst[2*i:], uint16(v))
		} else {
			binary.LittleEndian.PutUint64(dst[8*i:], v)
		}
	}
	return nil
}
