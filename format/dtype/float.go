package dtype

import (
	"encoding/binary"
	"fmt"
	"math"
)

// IsFloat reports whether dt is one of the floating-point dtypes the codec
// reads: F16, BF16, F32 or F64.
func (dt DType) IsFloat() bool {
	switch dt {
	case F16, BF16, F32, F64:
		return true
	}
	return false
}

// ReadsFloat reports whether Reader reads dt as floating-point values: the
// codec's dtypes (IsFloat) and the OCP FP8 formats F8_E4M3 and F8_E5M2,
// which the codec does not encode.
func (dt DType) ReadsFloat() bool {
	return dt.IsFloat() || dt == F8_E4M3 || dt == F8_E5M2
}

// F8E4M3ToFloat32 converts OCP FP8 E4M3 bits to float32 exactly: exponent
// bias 7, subnormals below 2^-6, no infinities, S.1111.111 NaN; the
// largest magnitude is 448.
func F8E4M3ToFloat32(b uint8) float32 {
	exp, mant := int(b>>3)&0xf, int(b&7)
	var v float64
	switch {
	case exp == 0xf && mant == 7:
		v = math.NaN()
	case exp == 0: // subnormal: mant * 2^-9
		v = math.Ldexp(float64(mant), -9)
	default:
		v = math.Ldexp(float64(8+mant), exp-7-3)
	}
	if b&0x80 != 0 {
		v = -v
	}
	return float32(v)
}

// F8E5M2ToFloat32 converts OCP FP8 E5M2 bits to float32 exactly: exponent
// bias 15, subnormals below 2^-14, infinities and NaNs as in IEEE 754; the
// largest finite magnitude is 57344.
func F8E5M2ToFloat32(b uint8) float32 {
	exp, mant := int(b>>2)&0x1f, int(b&3)
	var v float64
	switch {
	case exp == 0x1f && mant == 0:
		v = math.Inf(1)
	case exp == 0x1f:
		v = math.NaN()
	case exp == 0: // subnormal: mant * 2^-16
		v = math.Ldexp(float64(mant), -16)
	default:
		v = math.Ldexp(float64(4+mant), exp-15-2)
	}
	if b&0x80 != 0 {
		v = -v
	}
	return float32(v)
}

// F16ToFloat32 converts IEEE 754 half-precision bits to float32 exactly.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN: keep the payload's top bits.
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	default: // subnormal: value = mant * 2^-24, exact in float32
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
}

// Float32ToF16 rounds f to the nearest IEEE 754 half-precision value, ties to
// even; values beyond the half range become infinities and NaN stays NaN.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 // quiet NaN
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // rebiased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half (or zero): shift the full significand, with its
		// implicit bit, right and round to nearest even.
		if e < -10 {
			return sign // rounds to zero, even exactly at half of the smallest subnormal
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		rest := m & (half<<1 - 1)
		q := m >> shift
		if rest > half || (rest == half && q&1 == 1) {
			q++
		}
		return sign | uint16(q)
	}
	q := uint32(e)<<10 | mant>>13
	rest := mant & 0x1fff
	if rest > 0x1000 || (rest == 0x1000 && q&1 == 1) {
		q++ // may carry into the exponent, and up to Inf: both correct
	}
	return sign | uint16(q)
}

// BF16ToFloat32 converts bfloat16 bits to float32 exactly.
func BF16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float32ToBF16 rounds f to the nearest bfloat16 value, ties to even; NaN
// stays NaN.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// roundToOddFloat32 rounds x to float32 toward zero and sets the lowest
// significand bit when the result is inexact. Rounding that value once more,
// to a format with at least two fewer significand bits, gives the same result
// as rounding x directly, which avoids double rounding from float64.
func roundToOddFloat32(x float64) float32 {
	f := float32(x)
	if math.IsNaN(x) || math.IsInf(x, 0) || float64(f) == x {
		return f
	}
	if math.Abs(float64(f)) > math.Abs(x) {
		f = math.Float32frombits(math.Float32bits(f) - 1) // toward zero
	}
	return math.Float32frombits(math.Float32bits(f) | 1)
}

// Float64ToF16 rounds x to the nearest half-precision value, ties to even.
func Float64ToF16(x float64) uint16 { return Float32ToF16(roundToOddFloat32(x)) }

// Float64ToBF16 rounds x to the nearest bfloat16 value, ties to even.
func Float64ToBF16(x float64) uint16 { return Float32ToBF16(roundToOddFloat32(x)) }

// Reader returns a function that converts little-endian elements of dtype
// dt to float64: exactly for the float dtypes (FP8 included) and for
// integers up to 2^53. It returns an error for the dtypes whose values it
// does not read: F4, F6_*, F8_E8M0, the FNUZ formats and C64.
func Reader(dt DType) (func(b []byte, dst []float64), error) {
	if read := floatReader(dt); read != nil {
		return read, nil
	}
	if read := intReader(dt); read != nil {
		return read, nil
	}
	return nil, fmt.Errorf("cannot read the values of dtype %v", dt)
}

// floatReader is Reader for the dtypes of ReadsFloat, nil for the others.
func floatReader(dt DType) func(b []byte, dst []float64) {
	le := binary.LittleEndian
	switch dt {
	case F16:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(F16ToFloat32(le.Uint16(b[2*i:])))
			}
		}
	case BF16:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(BF16ToFloat32(le.Uint16(b[2*i:])))
			}
		}
	case F32:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(math.Float32frombits(le.Uint32(b[4*i:])))
			}
		}
	case F64:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = math.Float64frombits(le.Uint64(b[8*i:]))
			}
		}
	case F8_E4M3:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(F8E4M3ToFloat32(b[i]))
			}
		}
	case F8_E5M2:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(F8E5M2ToFloat32(b[i]))
			}
		}
	}
	return nil
}

// intReader is Reader for BOOL and the integer dtypes, nil for the others.
func intReader(dt DType) func(b []byte, dst []float64) {
	le := binary.LittleEndian
	switch dt {
	case BOOL, U8:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(b[i])
			}
		}
	case I8:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(int8(b[i]))
			}
		}
	case U16:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(le.Uint16(b[2*i:]))
			}
		}
	case I16:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(int16(le.Uint16(b[2*i:])))
			}
		}
	case U32:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(le.Uint32(b[4*i:]))
			}
		}
	case I32:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(int32(le.Uint32(b[4*i:])))
			}
		}
	case U64:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(le.Uint64(b[8*i:]))
			}
		}
	case I64:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(int64(le.Uint64(b[8*i:])))
			}
		}
	}
	return nil
}

// Putter returns a function that stores v as element i of b in dtype dt,
// rounding to nearest even once. It returns an error for a dtype other than
// F16, BF16, F32 or F64.
func Putter(dt DType) (func(b []byte, i int, v float64), error) {
	switch dt {
	case F16:
		return func(b []byte, i int, v float64) {
			binary.LittleEndian.PutUint16(b[2*i:], Float64ToF16(v))
		}, nil
	case BF16:
		return func(b []byte, i int, v float64) {
			binary.LittleEndian.PutUint16(b[2*i:], Float64ToBF16(v))
		}, nil
	case F32:
		return func(b []byte, i int, v float64) {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(v)))
		}, nil
	case F64:
		return func(b []byte, i int, v float64) {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}, nil
	}
	return nil, fmt.Errorf("dtype %v is not a floating-point dtype", dt)
}
