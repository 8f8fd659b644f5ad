package quant

import (
	"encoding/binary"
	"fmt"
	"math"

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
// code.
type I8Encoder struct {
	dt   dtype.DType
	p    Params
	tab  []int8 // 16-bit dtypes: the code of each bit pattern
	read func([]byte, []float64)
	vals []float64
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
	return &I8Encoder{dt: dt, p: p, read: read, tab: patternTable(dt, p.CodeI8)}, nil
}

// Params returns the encoder's parameters.
func (e *I8Encoder) Params() Params { return e.p }

// Encode writes the i8 codes of the elements in b (whole elements of the
// encoder's dtype) to codes.
func (e *I8Encoder) Encode(b []byte, codes []int8) {
	size := int(e.dt.Size())
	n := len(b) / size
	codes = codes[:n]
	if e.tab != nil {
		for i := range codes {
			codes[i] = e.tab[binary.LittleEndian.Uint16(b[2*i:])]
		}
		return
	}
	if e.dt == dtype.F32 {
		for i := range codes {
			codes[i] = e.p.CodeI8(float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))))
		}
		return
	}
	if cap(e.vals) < n {
		e.vals = make([]float64, n)
	}
	v := e.vals[:n]
	e.read(b, v)
	for i, x := range v {
		codes[i] = e.p.CodeI8(x)
	}
}

// patternTable returns, for a 16-bit dtype, the code of each bit pattern,
// so that encoding is one lookup per element; nil for other dtypes. NaN
// and infinities get 0: the range pass refuses them first.
func patternTable[T any](dt dtype.DType, code func(float64) T) []T {
	to, expAll := toF32(dt)
	if to == nil {
		return nil
	}
	tab := make([]T, 1<<16)
	for h := range 1 << 16 {
		if uint16(h)&expAll != expAll {
			tab[h] = code(float64(to(uint16(h))))
		}
	}
	return tab
}
