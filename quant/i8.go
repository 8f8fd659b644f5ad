package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/qins-dev/qins/format/dtype"
)

// The i8 form of the log code: one int8 per weight, the sign times a 7-bit
// magnitude code (see the package documentation).

// Levels8 and Levels7 are the magnitude codes of the 8-bit log code
// (1..255) and of the i8 form's 7-bit one (1..127).
const (
	Levels8 = 255
	Levels7 = 127
)

// Code7 returns the 7-bit magnitude code, 1..127, of a magnitude a = |w|
// >= 0: Code's formula with 127 levels, evaluated in this exact order.
// Magnitudes at or below Tiny get 127, as they get 255 in the 8-bit code.
func (p Params) Code7(a float64) int8 {
	if a <= Tiny {
		return 127
	}
	if p.LogMax == p.LogMin {
		return 1
	}
	v := math.RoundToEven(127 - 126*(math.Log(a)-p.LogMin)/(p.LogMax-p.LogMin))
	switch {
	case v < 1:
		return 1
	case v > 127:
		return 127
	}
	return int8(v)
}

// Magnitude7 returns the decoded magnitude of the 7-bit code c (1..127).
func (p Params) Magnitude7(c int) float64 {
	return p.magnitudeL(c, Levels7)
}

// magnitudeL is the decoded magnitude of code c of a code of levels
// levels; for 255, exactly Magnitude.
func (p Params) magnitudeL(c, levels int) float64 {
	return math.Exp(p.LogMin + float64(levels-c)/float64(levels-1)*(p.LogMax-p.LogMin))
}

// CodeI8 returns the i8 code of w (not NaN): 0 for an exact zero (either
// sign), else the sign of w times Code7(|w|).
func (p Params) CodeI8(w float64) int8 {
	s := Sign(w)
	if s == 0 {
		return 0
	}
	return s * p.Code7(math.Abs(w))
}

// ValueI8 returns the value of the i8 code c: 0 for 0, sign(c) *
// Magnitude7(|c|) otherwise, and NaN for -128, which no encoder writes.
func (p Params) ValueI8(c int8) float64 {
	switch {
	case c == 0:
		return 0
	case c == -128:
		return math.NaN()
	case c < 0:
		return -p.Magnitude7(-int(c))
	}
	return p.Magnitude7(int(c))
}

// NewI8Decoder returns a Decoder of i8 codes, read as their bytes, with
// parameters p, which must be valid (see Params.Validate and
// Params.CheckFinite): codes -127..127 are valid, -128 is not, and the
// sign must be +1 (the sign is inside the code).
func NewI8Decoder(p Params) *Decoder {
	d := new(Decoder)
	d.ResetI8(p)
	return d
}

// ResetI8 makes d the Decoder of i8 codes with parameters p, which must
// be valid, keeping its memory: a per-row tensor in the i8 layout decodes
// each row with its own parameters.
func (d *Decoder) ResetI8(p Params) {
	d.bad32, d.zeroOK, d.i8 = 0x7fc0dead, true, true
	nan := math.NaN()
	var mag [128]float64 // Magnitude7 of each code; ValueI8(-c) is -ValueI8(c)
	for c := 1; c < 128; c++ {
		mag[c] = p.Magnitude7(c)
	}
	for b := range 256 {
		var v float64
		switch c := int8(uint8(b)); {
		case c == -128:
			v = nan
		case c < 0:
			v = -mag[-c]
		default:
			v = mag[c]
		}
		d.f64[0][b], d.f64[1][b], d.f64[2][b] = nan, nan, v
		d.f64r[0][b], d.f64r[1][b], d.f64r[2][b] = nan, nan, float64(float32(v))
		d.f32[0][b], d.f32[1][b], d.f32[2][b] = d.bad32, d.bad32, math.Float32bits(float32(v))
		if v != v {
			d.f32[2][b] = d.bad32
		}
	}
}

// I8Encoder encodes the elements of a tensor in the i8 form of the log
// code. It is safe for concurrent use.
type I8Encoder struct {
	dt  dtype.DType
	p   Params
	tab *byteTable // 16-bit dtypes: the code of each bit pattern
	// F32: the thresholds of the 7-bit code, made for the first chunk of
	// minF32Coder elements or more; nil for invalid parameters, whose
	// codes are computed element by element.
	once sync.Once
	f32  *f32Coder
	read func([]byte, []float64)
}

// NewI8Encoder returns the encoder of a tensor of dtype dt (F16, BF16, F32
// or F64) with parameters p.
func NewI8Encoder(dt dtype.DType, p Params) (*I8Encoder, error) {
	if !dt.IsFloat() {
		return nil, fmt.Errorf("dtype %v cannot be encoded: it is not F16, BF16, F32 or F64", dt)
	}
	read, err := dtype.Reader(dt)
	if err != nil {
		return nil, err
	}
	return &I8Encoder{dt: dt, p: p, read: read, tab: i8Table(dt, p)}, nil
}

// Params returns the encoder's parameters.
func (e *I8Encoder) Params() Params { return e.p }

// Encode writes the i8 codes of the elements in b (whole elements of the
// encoder's dtype) to codes: Params.CodeI8 of each.
func (e *I8Encoder) Encode(b []byte, codes []int8) {
	size := int(e.dt.Size())
	n := len(b) / size
	codes, b = codes[:n], b[:n*size]
	switch {
	case e.tab != nil:
		lookup16Fast(e.tab, b, Int8Bytes(codes))
	case e.dt == dtype.F32:
		e.encode32(b, codes)
	default:
		var vals [512]float64
		for len(codes) > 0 {
			k := min(len(codes), len(vals))
			e.read(b[:k*size], vals[:k])
			for i, x := range vals[:k] {
				codes[i] = e.p.CodeI8(x)
			}
			b, codes = b[k*size:], codes[k:]
		}
	}
}

// encode32 is Encode for F32: the 8-bit code's thresholds with 127 levels
// give the magnitude codes and the signs, which signCodes joins.
func (e *I8Encoder) encode32(b []byte, codes []int8) {
	if len(codes) >= minF32Coder {
		e.once.Do(func() {
			if e.p.Validate() == nil {
				e.f32 = newF32CoderLevels(e.p, Levels7)
			}
		})
	}
	if len(codes) < minF32Coder || e.f32 == nil {
		for i := range codes {
			codes[i] = e.p.CodeI8(float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))))
		}
		return
	}
	var mags [2048]uint8
	var signs [2048]int8
	for len(codes) > 0 {
		k := min(len(codes), len(mags))
		e.f32.encode32(b[:4*k], mags[:k], signs[:k])
		signCodesFast(mags[:k], signs[:k], codes[:k])
		b, codes = b[4*k:], codes[k:]
	}
}

// signCodes writes out[i] = signs[i] * int8(mags[i]), for signs -1, 0
// and +1, eight at a time.
func signCodes(mags []uint8, signs []int8, out []int8) {
	const lanes, highs = 0x0101010101010101, 0x8080808080808080
	n := min(len(mags), len(signs), len(out))
	sb, ob := Int8Bytes(signs[:n]), Int8Bytes(out[:n])
	le := binary.LittleEndian
	i := 0
	for ; i+8 <= n; i += 8 {
		c, s := le.Uint64(mags[i:]), le.Uint64(sb[i:])
		neg := s >> 7 & lanes * 0xff // 0xff where the sign is -1
		nz := s & lanes * 0xff       // 0xff where it is not 0
		// -c as ^c + 1, the increment kept within each byte.
		x := c ^ neg
		x = (x&^highs + neg&lanes) ^ x&highs
		le.PutUint64(ob[i:], x&nz)
	}
	for ; i < n; i++ {
		out[i] = signs[i] * int8(mags[i])
	}
}

// i8Table returns, for a 16-bit dtype, the i8 code of each bit pattern (as
// its byte), so that encoding is one lookup per element; nil for other
// dtypes. NaN and infinities get 0: the range pass refuses them first.
// For valid parameters the codes of the positive values are filled run by
// run (0 for +0, then Code7, which never increases with the magnitude
// bits), and those of the negative values are their negations, as
// CodeI8(-w) = -CodeI8(w).
func i8Table(dt dtype.DType, p Params) *byteTable {
	to, expAll := toF32(dt)
	if to == nil {
		return nil
	}
	t := new(byteTable)
	end := int(expAll) // the first non-finite magnitude
	code := func(m int) uint8 { return uint8(p.CodeI8(float64(to(uint16(m))))) }
	if p.Validate() == nil {
		fillRuns(t[:], 0, end, code)
	} else {
		for m := range end {
			t[m] = code(m)
		}
	}
	for m := range end {
		t[0x8000|m] = uint8(-int8(t[m]))
	}
	return t
}
