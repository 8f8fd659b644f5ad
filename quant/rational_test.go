package quant

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
)

// reference is the reference's encoder on one float32 weight, in float32,
// with its exact zeros (code 128) and no sign clamp.
func reference(w float32, alpha float32) uint8 {
	var s float32
	switch {
	case w > 0:
		s = 1
	case w < 0:
		s = -1
	}
	z := s / float32(1+float32(alpha*float32(math.Abs(float64(w)))))
	q := math.RoundToEven(float64(float32(float32(z+1) * 127.5)))
	return uint8(min(max(q, 0), 255))
}

func TestRationalCode(t *testing.T) {
	big := float32(2e38)
	tests := []struct {
		name  string
		w     float64
		alpha float32
		want  uint8
	}{
		{"+0 is 255", 0, 1, 255},
		{"-0 is 0", math.Copysign(0, -1), 1, 0},
		{"tiny positive rounds to 255", 1e-30, 1, 255},
		{"tiny negative rounds to 0", -1e-30, 1, 0},
		{"one", 1, 1, 191},       // z = 0.5, 1.5*127.5 = 191.25
		{"minus one", -1, 1, 64}, // z = -0.5, 0.5*127.5 = 63.75
		// The largest weight on 128 and 127: alpha*|w| = 254 gives z = 1/255.
		{"largest positive on 128", 254, 1, 128},
		{"largest negative on 127", -254, 1, 127},
		{"alpha 0.5, largest on 128", 508, 0.5, 128},
		{"alpha 0.5, largest on 127", -508, 0.5, 127},
		// A tiny |z| rounds to 127.5, then to 128: the reference gives a
		// negative weight a positive code; qins clamps it to 127.
		{"huge negative stays negative", -float64(big), 1, 127},
		{"huge positive", float64(big), 1, 128},
		{"code 254", 0.008, 1, 254},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := RationalCode(tc.w, tc.alpha)
			if got != tc.want {
				t.Fatalf("RationalCode(%v, %v) = %d, want %d", tc.w, tc.alpha, got, tc.want)
			}
			v := RationalValue(got, float64(tc.alpha))
			switch {
			case tc.w == 0 && (v != 0 || math.Signbit(v) != math.Signbit(tc.w)):
				t.Errorf("zero %v decodes to %v", tc.w, v)
			case tc.w > 0 && v < 0, tc.w < 0 && v > 0:
				t.Errorf("%v decodes to %v: the sign changed", tc.w, v)
			}
		})
	}
	if r := reference(-big, 1); r != 128 {
		t.Errorf("the reference gives %d to -2e38; the test expects its sign flip, 128", r)
	}
}

// TestRationalCodeReference checks RationalCode against the reference on
// every BF16 pattern and a sweep of F32 values, for several alphas: equal
// but for exact zeros.
func TestRationalCodeReference(t *testing.T) {
	for _, alpha := range []float32{1, 0.37, 3, 25.5, 1e-3} {
		check := func(w float32) {
			got, ref := RationalCode(float64(w), alpha), reference(w, alpha)
			if w == 0 {
				if ref != 128 {
					t.Fatalf("reference zero: %d", ref)
				}
				return
			}
			if w < 0 && ref >= 128 && float64(alpha)*math.Abs(float64(w)) > 1<<23 {
				// The reference's sign flip (|z| so small that z+1
				// rounds to 1): qins gives 127.
				if got != 127 {
					t.Fatalf("alpha %v, w %v: %d, want 127 for the reference's sign flip", alpha, w, got)
				}
				return
			}
			if got != ref {
				t.Fatalf("alpha %v, w %v: %d, reference %d", alpha, w, got, ref)
			}
		}
		for h := range 1 << 16 {
			if w := dtype.BF16ToFloat32(uint16(h)); !math.IsNaN(float64(w)) && !math.IsInf(float64(w), 0) && math.Abs(float64(w)) < 1e30 {
				check(w)
			}
		}
		for u := uint32(0); u < 0x7f000000; u += 0x1003 {
			check(math.Float32frombits(u))
			check(-math.Float32frombits(u))
		}
	}
}

func TestRationalValue(t *testing.T) {
	tests := []struct {
		code  uint8
		alpha float64
		want  float64
	}{
		{255, 1, 0},
		{0, 1, math.Copysign(0, -1)},
		{128, 1, 254},
		{127, 1, -254},
		{128, 2, 127},
		{191, 1, 1.0 / 0.4980392156862745 * (1 - 0.4980392156862745)},
	}
	for _, tc := range tests {
		got := RationalValue(tc.code, tc.alpha)
		if math.Abs(got-tc.want) > 1e-9*math.Abs(tc.want) || math.Signbit(got) != math.Signbit(tc.want) {
			t.Errorf("RationalValue(%d, %v) = %v, want %v", tc.code, tc.alpha, got, tc.want)
		}
	}
}

func TestCheckRationalAlpha(t *testing.T) {
	tests := []struct {
		alpha float64
		dt    dtype.DType
		ok    bool
	}{
		{1, dtype.F16, true},
		{0, dtype.F32, false},
		{-1, dtype.F32, false},
		{math.NaN(), dtype.F32, false},
		{math.Inf(1), dtype.F32, false},
		{0.001, dtype.F16, false}, // 254000 > 65504
		{0.004, dtype.F16, true},
		{1e-37, dtype.F32, false},
		{1e-37, dtype.F64, true},
	}
	for _, tc := range tests {
		if err := CheckRationalAlpha(tc.alpha, tc.dt); (err == nil) != tc.ok {
			t.Errorf("CheckRationalAlpha(%v, %v) = %v, want ok %v", tc.alpha, tc.dt, err, tc.ok)
		}
	}
}

func TestRationalDecoder(t *testing.T) {
	d := NewRationalDecoder(0.5)
	codes := []uint8{0, 127, 128, 255, 191}
	signs := []int8{1, 1, 1, 1, 1}
	dst := make([]float64, len(codes))
	if err := d.Decode(codes, signs, dst, 0); err != nil {
		t.Fatal(err)
	}
	for i, c := range codes {
		if dst[i] != RationalValue(c, 0.5) || math.Signbit(dst[i]) != math.Signbit(RationalValue(c, 0.5)) {
			t.Errorf("code %d: %v", c, dst[i])
		}
	}
	for _, dt := range []dtype.DType{dtype.F16, dtype.BF16, dtype.F32, dtype.F64} {
		out := make([]byte, len(codes)*int(dt.Size()))
		if err := d.DecodeTo(dt, codes, signs, out, 0); err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
		if dt == dtype.F64 && math.Float64frombits(binary.LittleEndian.Uint64(out[16:])) != RationalValue(128, 0.5) {
			t.Errorf("F64 code 128")
		}
	}
	if err := d.Decode(codes, []int8{1, 1, 0, 1, 1}, dst, 10); err == nil {
		t.Error("sign 0 accepted by the rational decoder")
	}
}

func TestRationalEncoder(t *testing.T) {
	ws := []float64{0, math.Copysign(0, -1), 0.5, -0.5, 3, -3, 1e-6}
	for _, dt := range []dtype.DType{dtype.F16, dtype.BF16, dtype.F32, dtype.F64} {
		b := make([]byte, len(ws)*int(dt.Size()))
		for i, w := range ws {
			switch dt {
			case dtype.F16:
				binary.LittleEndian.PutUint16(b[2*i:], dtype.Float64ToF16(w))
			case dtype.BF16:
				binary.LittleEndian.PutUint16(b[2*i:], dtype.Float64ToBF16(w))
			case dtype.F32:
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(w)))
			case dtype.F64:
				binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(w))
			}
		}
		e, err := NewRationalEncoder(dt, 2)
		if err != nil {
			t.Fatal(err)
		}
		codes := make([]uint8, len(ws))
		e.Encode(b, codes)
		read, _ := dtype.Reader(dt)
		vals := make([]float64, len(ws))
		read(b, vals)
		for i := range ws {
			if want := RationalCode(vals[i], 2); codes[i] != want {
				t.Errorf("%v element %d: %d, want %d", dt, i, codes[i], want)
			}
		}
		if codes[0] != 255 || codes[1] != 0 {
			t.Errorf("%v zeros: %d %d", dt, codes[0], codes[1])
		}
	}
}

func TestRationalAlpha(t *testing.T) {
	// A spread of BF16 weights: the mse alpha is no worse than alpha 1
	// and a few others, on the exact squared error.
	var b []byte
	var ws []float64
	for i := range 4000 {
		w := 0.05 * math.Sin(float64(i)*1.7) * math.Exp(math.Cos(float64(i)*0.3))
		h := dtype.Float64ToBF16(w)
		b = binary.LittleEndian.AppendUint16(b, h)
		ws = append(ws, float64(dtype.BF16ToFloat32(h)))
	}
	s, err := NewScanner(dtype.BF16)
	if err != nil {
		t.Fatal(err)
	}
	s.Scan(b, 0)
	a, err := s.RationalAlpha()
	if err != nil {
		t.Fatal(err)
	}
	sq := func(a float32) float64 {
		var e float64
		for _, w := range ws {
			d := w - RationalValue(RationalCode(w, a), float64(a))
			e += d * d
		}
		return e
	}
	best := sq(a)
	for _, o := range []float32{1, 10, 50, 100, 500} {
		if e := sq(o); e < best*0.999 {
			t.Errorf("alpha %v: error %g, below the mse alpha %v's %g", o, e, a, best)
		}
	}
	// All zeros: alpha 1.
	z, _ := NewScanner(dtype.F32)
	z.Scan(make([]byte, 64), 0)
	if a, err := z.RationalAlpha(); err != nil || a != 1 {
		t.Errorf("zeros: %v, %v", a, err)
	}
}
