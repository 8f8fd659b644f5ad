package dtype

import (
	"math"
	"testing"
)

// The bits per element of the safetensors specification (Dtype::bitsize).
var specBits = map[string]uint64{
	"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
	"F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
	"I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
	"C64": 64, "F64": 64, "I64": 64, "U64": 64,
}

func TestEveryDTypeOfTheSpec(t *testing.T) {
	if len(All()) != len(specBits) {
		t.Errorf("%d dtypes, the specification has %d", len(All()), len(specBits))
	}
	for name, bits := range specBits {
		d, err := Parse(name)
		if err != nil {
			t.Errorf("Parse(%q): %v", name, err)
			continue
		}
		if d.String() != name || d.Bits() != bits || !d.Valid() {
			t.Errorf("%q: parsed as %v, %d bits, valid %v; want %d bits", name, d, d.Bits(), d.Valid(), bits)
		}
		if want := bits / 8; bits%8 == 0 && d.Size() != want || bits%8 != 0 && d.Size() != 0 {
			t.Errorf("%v.Size() = %d", d, d.Size())
		}
	}
	for _, s := range []string{"", "f32", "F8", "F4_E2M1", "DType(0)", "bool", "C128"} {
		if d, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", s, d)
		}
	}
}

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		d    DType
		n    uint64
		want uint64
		ok   bool
	}{
		{F32, 3, 12, true},
		{C64, 2, 16, true},
		{F8_E4M3, 5, 5, true},
		{F4, 2, 1, true},
		{F4, 3, 0, false}, // 12 bits
		{F4, 0, 0, true},
		{F6_E2M3, 4, 3, true},
		{F6_E3M2, 8, 6, true},
		{F6_E3M2, 2, 0, false}, // 12 bits
		{F6_E2M3, 6, 0, false}, // 36 bits
		{U64, math.MaxUint64 / 4, 0, false},
		{Invalid, 1, 0, false},
	} {
		got, ok := c.d.Bytes(c.n)
		if got != c.want || ok != c.ok {
			t.Errorf("%v.Bytes(%d) = %d, %v; want %d, %v", c.d, c.n, got, ok, c.want, c.ok)
		}
	}
}

func TestZeroIsInvalid(t *testing.T) {
	var d DType
	if d != Invalid || d.Valid() || d.Size() != 0 || d.Bits() != 0 {
		t.Errorf("zero DType: valid %v, size %d, bits %d", d.Valid(), d.Size(), d.Bits())
	}
	if s := d.String(); s != "DType(0)" {
		t.Errorf("zero DType prints %q", s)
	}
}
