package dtype

import (
	"math"
	"testing"
)

// Values worked out by hand from the OCP FP8 definitions.
func TestFP8SpecialValues(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name string
		dec  func(uint8) float32
		bits uint8
		want float64
	}{
		{"E4M3 zero", F8E4M3ToFloat32, 0x00, 0},
		{"E4M3 negative zero", F8E4M3ToFloat32, 0x80, math.Copysign(0, -1)},
		{"E4M3 least subnormal 2^-9", F8E4M3ToFloat32, 0x01, 1.0 / 512},
		{"E4M3 largest subnormal 7*2^-9", F8E4M3ToFloat32, 0x07, 7.0 / 512},
		{"E4M3 negative subnormal", F8E4M3ToFloat32, 0x83, -3.0 / 512},
		{"E4M3 least normal 2^-6", F8E4M3ToFloat32, 0x08, 1.0 / 64},
		{"E4M3 one", F8E4M3ToFloat32, 0x38, 1},
		{"E4M3 1.125", F8E4M3ToFloat32, 0x39, 1.125},
		{"E4M3 -2", F8E4M3ToFloat32, 0xc0, -2},
		{"E4M3 256 (exponent 15 is not infinity)", F8E4M3ToFloat32, 0x78, 256},
		{"E4M3 max 448", F8E4M3ToFloat32, 0x7e, 448},
		{"E4M3 min -448", F8E4M3ToFloat32, 0xfe, -448},
		{"E4M3 NaN", F8E4M3ToFloat32, 0x7f, nan},
		{"E4M3 negative NaN", F8E4M3ToFloat32, 0xff, nan},
		{"E5M2 zero", F8E5M2ToFloat32, 0x00, 0},
		{"E5M2 negative zero", F8E5M2ToFloat32, 0x80, math.Copysign(0, -1)},
		{"E5M2 least subnormal 2^-16", F8E5M2ToFloat32, 0x01, 1.0 / 65536},
		{"E5M2 largest subnormal 3*2^-16", F8E5M2ToFloat32, 0x03, 3.0 / 65536},
		{"E5M2 least normal 2^-14", F8E5M2ToFloat32, 0x04, 1.0 / 16384},
		{"E5M2 one", F8E5M2ToFloat32, 0x3c, 1},
		{"E5M2 -1.5", F8E5M2ToFloat32, 0xbe, -1.5},
		{"E5M2 max 57344", F8E5M2ToFloat32, 0x7b, 57344},
		{"E5M2 min -57344", F8E5M2ToFloat32, 0xfb, -57344},
		{"E5M2 infinity", F8E5M2ToFloat32, 0x7c, math.Inf(1)},
		{"E5M2 negative infinity", F8E5M2ToFloat32, 0xfc, math.Inf(-1)},
		{"E5M2 NaN", F8E5M2ToFloat32, 0x7d, nan},
		{"E5M2 NaN all ones", F8E5M2ToFloat32, 0x7f, nan},
		{"E5M2 negative NaN", F8E5M2ToFloat32, 0xfe, nan},
	} {
		got := float64(c.dec(c.bits))
		switch {
		case math.IsNaN(c.want):
			if !math.IsNaN(got) {
				t.Errorf("%s: %#02x = %v, want NaN", c.name, c.bits, got)
			}
		case got != c.want || math.Signbit(got) != math.Signbit(c.want):
			t.Errorf("%s: %#02x = %v, want %v", c.name, c.bits, got, c.want)
		}
	}
}

// E5M2 is the top byte of an IEEE half: every pattern must agree with the
// F16 decoder, an independent reference.
func TestFP8E5M2IsTopOfF16(t *testing.T) {
	for b := 0; b < 256; b++ {
		got, want := F8E5M2ToFloat32(uint8(b)), F16ToFloat32(uint16(b)<<8)
		if got != want && !(got != got && want != want) {
			t.Errorf("%#02x: %v, F16 %#04x is %v", b, got, b<<8, want)
		}
	}
}

// The positive E4M3 patterns below NaN increase strictly, every one is
// exact in BF16 (so a BF16 copy of an FP8 tensor holds the same values),
// and the negative ones mirror them.
func TestFP8E4M3Ordered(t *testing.T) {
	prev := float32(-1)
	for b := 0; b < 0x7f; b++ {
		v := F8E4M3ToFloat32(uint8(b))
		if !(v > prev) {
			t.Errorf("%#02x = %v, not above %v", b, v, prev)
		}
		if BF16ToFloat32(Float32ToBF16(v)) != v {
			t.Errorf("%#02x = %v is not exact in BF16", b, v)
		}
		if n := F8E4M3ToFloat32(uint8(b | 0x80)); n != -v || !math.Signbit(float64(n)) {
			t.Errorf("%#02x = %v, want %v", b|0x80, n, -v)
		}
		prev = v
	}
}

func TestReaderFP8(t *testing.T) {
	for _, c := range []struct {
		dt   DType
		in   []byte
		want []float64
	}{
		{F8_E4M3, []byte{0x38, 0x7e, 0x01, 0xc0}, []float64{1, 448, 1.0 / 512, -2}},
		{F8_E5M2, []byte{0x3c, 0x7b, 0x01, 0xfc}, []float64{1, 57344, 1.0 / 65536, math.Inf(-1)}},
	} {
		read, err := Reader(c.dt)
		if err != nil || !c.dt.ReadsFloat() {
			t.Fatalf("%v: %v, ReadsFloat %v", c.dt, err, c.dt.ReadsFloat())
		}
		got := make([]float64, len(c.in))
		read(c.in, got)
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%v element %d: %v, want %v", c.dt, i, got[i], c.want[i])
			}
		}
	}
	for _, dt := range []DType{F4, F6_E2M3, F6_E3M2, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, C64} {
		if _, err := Reader(dt); err == nil || dt.ReadsFloat() || dt.IsFloat() {
			t.Errorf("%v: Reader error %v, ReadsFloat %v, IsFloat %v; want values not read", dt, err, dt.ReadsFloat(), dt.IsFloat())
		}
	}
}
