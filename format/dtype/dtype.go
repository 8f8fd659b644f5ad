// Package dtype names the element types of safetensors tensors.
package dtype

import "fmt"

// DType is the element type of a tensor, as a safetensors header spells
// it. The zero value is Invalid: no file holds it, and options read it as
// "the default".
type DType uint8

// The dtypes, in the order of the safetensors specification.
const (
	Invalid DType = iota
	BOOL
	U8
	I8
	I16
	U16
	F16
	BF16
	I32
	U32
	F32
	F64
	I64
	U64
	count // the number of values, Invalid included
)

// names and sizes are indexed by DType.
var (
	names = [count]string{
		BOOL: "BOOL", U8: "U8", I8: "I8", I16: "I16", U16: "U16",
		F16: "F16", BF16: "BF16", I32: "I32", U32: "U32", F32: "F32",
		F64: "F64", I64: "I64", U64: "U64",
	}
	sizes = [count]uint8{
		BOOL: 1, U8: 1, I8: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
		I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
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
	for d := Invalid + 1; d < count; d++ {
		if names[d] == s {
			return d, nil
		}
	}
	return Invalid, fmt.Errorf("unknown dtype %q", s)
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

// Size returns the bytes one element of d takes, or 0 when d is not valid.
func (d DType) Size() uint64 {
	if !d.Valid() {
		return 0
	}
	return uint64(sizes[d])
}
