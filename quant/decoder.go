package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/qins-dev/qins/format/dtype"
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
//
// Its tables are indexed by uint8(sign)+1, which is 0, 1 or 2 for the
// signs -1, 0 and +1, and by the code; entries for code 0 hold a NaN that
// no valid element decodes to, so one lookup both decodes and checks.
type Decoder struct {
	f64   [3][256]float64 // values
	f64r  [3][256]float64 // values rounded to float32
	f32   [3][256]uint32  // F32 bits
	bad32 uint32          // the F32 entry of code 0
	// zeroOK: code 0 is valid (the rational codec's, the i8 form's).
	zeroOK bool
	// i8: the codes are the i8 form's, read as bytes.
	i8 bool
}

// NewDecoder returns a Decoder for a tensor with parameters p, which must be
// valid (see Params.Validate).
func NewDecoder(p Params) *Decoder {
	d := new(Decoder)
	d.Reset(p)
	return d
}

// Reset makes d the Decoder of parameters p, which must be valid, keeping
// its memory: a per-row tensor decodes each row with its own parameters.
func (d *Decoder) Reset(p Params) {
	d.bad32, d.zeroOK, d.i8 = 0x7fc0dead, false, false
	for c := range 256 {
		m := p.Magnitude(uint8(c))
		if c == 0 {
			m = math.NaN()
		}
		d.f64[0][c], d.f64[2][c] = -m, m
		d.f64r[0][c], d.f64r[2][c] = float64(-float32(m)), float64(float32(m))
		d.f32[0][c] = math.Float32bits(-float32(m))
		d.f32[2][c] = math.Float32bits(float32(m))
		d.f64[1][c], d.f64r[1][c], d.f32[1][c] = 0, 0, 0
	}
	// Sign 0 decodes to +0 whatever the code, but code 0 stays invalid.
	d.f64[1][0], d.f64r[1][0] = math.NaN(), math.NaN()
	d.f32[0][0], d.f32[1][0], d.f32[2][0] = d.bad32, d.bad32, d.bad32
}

// invalid finds the first invalid element of a chunk and describes it: a
// sign out of range, code 0, or a code that decodes to NaN (which valid
// parameters never give; see Params.CheckFinite).
func (d *Decoder) invalid(codes []uint8, signs []int8, first int64) error {
	for i, c := range codes {
		if s := signs[i]; s < -1 || s > 1 || d.zeroOK && s != 1 {
			return &InvalidError{Index: first + int64(i), What: fmt.Sprintf("sign %d is not -1, 0 or 1", s)}
		}
		if d.i8 && c == 0x80 {
			return &InvalidError{Index: first + int64(i), What: "i8 code -128 is not a valid code (codes are -127..127)"}
		}
		if c == 0 && !d.zeroOK {
			return &InvalidError{Index: first + int64(i), What: "code 0 is not a valid code"}
		}
		if v := d.f64[uint8(signs[i])+1][c]; v != v {
			return &InvalidError{Index: first + int64(i), What: fmt.Sprintf("code %d does not decode to a number with this log_min and log_max", c)}
		}
	}
	return &InvalidError{Index: first, What: "a code or sign of this chunk is invalid"}
}

// Decode writes the values of a chunk whose first element has flat index
// first to dst, as float64.
func (d *Decoder) Decode(codes []uint8, signs []int8, dst []float64, first int64) error {
	return d.decode64(&d.f64, codes, signs, dst, first)
}

// DecodeF32 is Decode with each value rounded to float32, as an F32 restore
// stores it.
func (d *Decoder) DecodeF32(codes []uint8, signs []int8, dst []float64, first int64) error {
	return d.decode64(&d.f64r, codes, signs, dst, first)
}

func (d *Decoder) decode64(tab *[3][256]float64, codes []uint8, signs []int8, dst []float64, first int64) error {
	if len(codes) != len(signs) {
		return fmt.Errorf("quant: %d codes but %d signs", len(codes), len(signs))
	}
	signs, dst = signs[:len(codes)], dst[:len(codes)]
	ok := true
	for i, c := range codes {
		k := uint8(signs[i]) + 1
		if k > 2 {
			ok = false
			break
		}
		v := tab[k][c]
		if v != v {
			ok = false
			break
		}
		dst[i] = v
	}
	if !ok {
		return d.invalid(codes, signs, first)
	}
	return nil
}

// DecodeTo writes the values of a chunk whose first element has flat index
// first to dst as little-endian elements of dtype dt (F16, BF16, F32 or
// F64), each rounded once from the float64 value.
func (d *Decoder) DecodeTo(dt dtype.DType, codes []uint8, signs []int8, dst []byte, first int64) error {
	if len(codes) != len(signs) {
		return fmt.Errorf("quant: %d codes but %d signs", len(codes), len(signs))
	}
	signs = signs[:len(codes)]
	if dt == dtype.F32 {
		dst = dst[:4*len(codes)]
		for i, c := range codes {
			k := uint8(signs[i]) + 1
			if k > 2 {
				return d.invalid(codes, signs, first)
			}
			v := d.f32[k][c]
			if v == d.bad32 {
				return d.invalid(codes, signs, first)
			}
			binary.LittleEndian.PutUint32(dst[4*i:], v)
		}
		return nil
	}
	var conv func(float64) uint64
	switch dt {
	case dtype.F16:
		conv = func(v float64) uint64 { return uint64(dtype.Float64ToF16(v)) }
	case dtype.BF16:
		conv = func(v float64) uint64 { return uint64(dtype.Float64ToBF16(v)) }
	case dtype.F64:
		conv = math.Float64bits
	default:
		return fmt.Errorf("quant: cannot decode to dtype %v", dt)
	}
	var tab [3][256]uint64
	for k := range tab {
		for c := 0; c < 256; c++ {
			tab[k][c] = conv(d.f64[k][c])
		}
	}
	size := int(dt.Size())
	for i, c := range codes {
		k := uint8(signs[i]) + 1
		if k > 2 || c == 0 && !d.zeroOK || d.zeroOK && k != 2 || d.f64[k][c] != d.f64[k][c] {
			return d.invalid(codes, signs, first)
		}
		if size == 2 {
			binary.LittleEndian.PutUint16(dst[2*i:], uint16(tab[k][c]))
		} else {
			binary.LittleEndian.PutUint64(dst[8*i:], tab[k][c])
		}
	}
	return nil
}

// TableF32 fills tab with the table a Decoder of p reads in DecodeF32
// (see Decoder.TableF32), computing nothing else: for fused kernels that
// decode as they go, a table per row.
func (p Params) TableF32(tab *[3][256]float64) {
	var m [256]float32
	p.MagnitudesF32(&m)
	for c := 1; c < 256; c++ {
		tab[0][c], tab[1][c], tab[2][c] = float64(-m[c]), 0, float64(m[c])
	}
	nan := math.NaN()
	tab[0][0], tab[1][0], tab[2][0] = nan, nan, nan
}

// TableF32 returns the table DecodeF32 reads: the value of code c with
// sign s is TableF32()[uint8(s)+1][c], NaN for a code no encoder writes
// with that sign. It is for fused kernels that decode as they go, and
// must not be written to.
func (d *Decoder) TableF32() *[3][256]float64 { return &d.f64r }
