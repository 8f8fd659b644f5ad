// Package dtype names the element types of safetensors tensors and their
// sizes, including the packed sub-byte ones, says which are floating
// point, and converts the float ones to and from float32 and float64
// (FP8 E4M3 and E5M2 read too). It reads no file.
package dtype

import (
	"fmt"
	"math/bits"
)

// DType is the element type of a tensor, as a safetensors header spells
// it. The zero value is Invalid: no file holds it, and options read it as
// "the default".
type DType uint8

// The dtypes of the safetensors specification, in its order (increasing
// alignment).
const (
	Invalid DType = iota
	BOOL
	F4      // FP4 E2M1 (OCP MX), packed two per byte
	F6_E2M3 // FP6 E2M3 (OCP MX), packed four per three bytes
	F6_E3M2 // FP6 E3M2 (OCP MX), packed four per three bytes
	U8
	I8
	F8_E5M2     // FP8 E5M2 (OCP): infinities and NaNs as in IEEE 754
	F8_E4M3     // FP8 E4M3 (OCP, "fn"): no infinities, S.1111.111 is NaN
	F8_E8M0     // 8-bit exponent (OCP MX block scale)
	F8_E4M3FNUZ // FP8 E4M3 with one NaN (0x80) and no negative zero
	F8_E5M2FNUZ // FP8 E5M2 with one NaN (0x80) and no negative zero
	I16
	U16
	F16
	BF16
	I32
	U32
	F32
	C64 // complex: two F32, real then imaginary
	F64
	I64
	U64
	count // the number of values, Invalid included
)

// names and widths are indexed by DType.
var (
	names = [count]string{
		BOOL: "BOOL", F4: "F4", F6_E2M3: "F6_E2M3", F6_E3M2: "F6_E3M2",
		U8: "U8", I8: "I8", F8_E5M2: "F8_E5M2", F8_E4M3: "F8_E4M3",
		F8_E8M0: "F8_E8M0", F8_E4M3FNUZ: "F8_E4M3FNUZ", F8_E5M2FNUZ: "F8_E5M2FNUZ",
		I16: "I16", U16: "U16", F16: "F16", BF16: "BF16", I32: "I32",
		U32: "U32", F32: "F32", C64: "C64", F64: "F64", I64: "I64", U64: "U64",
	}
	widths = [count]uint8{ // in bits
		BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8,
		F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8,
		I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32,
		C64: 64, F64: 64, I64: 64, U64: 64,
	}
)

// All returns every valid dtype, in the order of the specification.
func All() []DType {
	out := make([]DType, 0, count-1)
	for d := Invalid + 1; d < count; d++ {
		out = append(out, d)
	}
	return out
}

// Parse returns the dtype a header spells s, exactly (case matters).
func Parse(s string) (DType, error) {
	// A switch, which the compiler turns into a binary search: a header
	// holds one dtype per tensor, and a scan of the names took 2.8% of
	// BenchmarkParseHeader's instructions (callgrind), this 0.3%.
	var d DType
	switch s {
	case "BOOL":
		d = BOOL
	case "F4":
		d = F4
	case "F6_E2M3":
		d = F6_E2M3
	case "F6_E3M2":
		d = F6_E3M2
	case "U8":
		d = U8
	case "I8":
		d = I8
	case "F8_E5M2":
		d = F8_E5M2
	case "F8_E4M3":
		d = F8_E4M3
	case "F8_E8M0":
		d = F8_E8M0
	case "F8_E4M3FNUZ":
		d = F8_E4M3FNUZ
	case "F8_E5M2FNUZ":
		d = F8_E5M2FNUZ
	case "I16":
		d = I16
	case "U16":
		d = U16
	case "F16":
		d = F16
	case "BF16":
		d = BF16
	case "I32":
		d = I32
	case "U32":
		d = U32
	case "F32":
		d = F32
	case "C64":
		d = C64
	case "F64":
		d = F64
	case "I64":
		d = I64
	case "U64":
		d = U64
	default:
		return Invalid, fmt.Errorf("unknown dtype %q", s)
	}
	return d, nil
}

// Valid reports whether d is one of the dtypes of the specification.
func (d DType) Valid() bool { return d > Invalid && d < count }

// String returns the name a header spells d with.
func (d DType) String() string {
	if !d.Valid() {
		return fmt.Sprintf("DType(%d)", uint8(d))
	}
	return names[d]
}

// LowPrecision reports whether d is an FP8 (E8M0 included), FP6 or FP4
// format: the dtypes of quantised checkpoints, whose tensors other tensors
// scale.
func (d DType) LowPrecision() bool {
	switch d {
	case F4, F6_E2M3, F6_E3M2, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ:
		return true
	}
	return false
}

// Bits returns the bits one element of d takes, or 0 when d is not valid.
func (d DType) Bits() uint64 {
	if !d.Valid() {
		return 0
	}
	return uint64(widths[d])
}

// Size returns the bytes one element of d takes: 0 for the packed
// sub-byte dtypes (F4, F6_*), whose sizes Bytes gives, and when d is not
// valid.
func (d DType) Size() uint64 {
	if b := d.Bits(); b%8 == 0 {
		return b / 8
	}
	return 0
}

// Bytes returns the bytes n elements of d take, as the specification
// computes them: n times the element's bits, which must be a whole number
// of bytes. ok is false when it is not, or when the size overflows.
func (d DType) Bytes(n uint64) (size uint64, ok bool) {
	hi, nbits := bits.Mul64(n, d.Bits())
	if hi != 0 || nbits%8 != 0 || !d.Valid() {
		return 0, false
	}
	return nbits / 8, true
}
