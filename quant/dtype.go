package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/nlpodyssey/safetensors"
)

// IsFloat reports whether dt is one of the floating-point dtypes the codec
// reads: F16, BF16, F32 or F64.
func IsFloat(dt safetensors.DType) bool {
	switch dt {
	case safetensors.F16, safetensors.BF16, safetensors.F32, safetensors.F64:
		return true
	}
	return false
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
// dt to float64: exactly for the float dtypes and for integers up to 2^53.
func Reader(dt safetensors.DType) (func(b []byte, dst []float64), error) {
	le := binary.LittleEndian
	switch dt {
	case safetensors.F16:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(F16ToFloat32(le.Uint16(b[2*i:])))
			}
		}, nil
	case safetensors.BF16:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(BF16ToFloat32(le.Uint16(b[2*i:])))
			}
		}, nil
	case safetensors.F32:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(math.Float32frombits(le.Uint32(b[4*i:])))
			}
		}, nil
	case safetensors.F64:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = math.Float64frombits(le.Uint64(b[8*i:]))
			}
		}, nil
	case safetensors.BOOL, safetensors.U8:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(b[i])
			}
		}, nil
	case safetensors.I8:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(int8(b[i]))
			}
		}, nil
	case safetensors.U16:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(le.Uint16(b[2*i:]))
			}
		}, nil
	case safetensors.I16:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(int16(le.Uint16(b[2*i:])))
			}
		}, nil
	case safetensors.U32:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(le.Uint32(b[4*i:]))
			}
		}, nil
	case safetensors.I32:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(int32(le.Uint32(b[4*i:])))
			}
		}, nil
	case safetensors.U64:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(le.Uint64(b[8*i:]))
			}
		}, nil
	case safetensors.I64:
		return func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = float64(int64(le.Uint64(b[8*i:])))
			}
		}, nil
	}
	return nil, fmt.Errorf("unknown dtype %v", dt)
}

// Putter returns a function that stores v as element i of b in dtype dt,
// rounding to nearest even once. It returns an error for a dtype other than
// F16, BF16, F32 or F64.
func Putter(dt safetensors.DType) (func(b []byte, i int, v float64), error) {
	switch dt {
	case safetensors.F16:
		return func(b []byte, i int, v float64) {
			binary.LittleEndian.PutUint16(b[2*i:], Float64ToF16(v))
		}, nil
	case safetensors.BF16:
		return func(b []byte, i int, v float64) {
			binary.LittleEndian.PutUint16(b[2*i:], Float64ToBF16(v))
		}, nil
	case safetensors.F32:
		return func(b []byte, i int, v float64) {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(v)))
		}, nil
	case safetensors.F64:
		return func(b []byte, i int, v float64) {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}, nil
	}
	return nil, fmt.Errorf("dtype %v is not a floating-point dtype", dt)
}

// MaxFinite returns the largest finite value of float dtype dt, and +Inf
// for any other dtype.
func MaxFinite(dt safetensors.DType) float64 {
	switch dt {
	case safetensors.F16:
		return 65504
	case safetensors.BF16:
		return float64(math.Float32frombits(0x7f7f0000))
	case safetensors.F32:
		return math.MaxFloat32
	case safetensors.F64:
		return math.MaxFloat64
	}
	return math.Inf(1)
}
