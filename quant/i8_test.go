package quant

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
)

// TestCodeI8 checks the i8 codes of hand-picked weights: exact zeros 0,
// the ends of the range ±1 and ±127, weights at or below Tiny ±127, and
// magnitudes outside the range clamped.
func TestCodeI8(t *testing.T) {
	p := Params{LogMin: math.Log(0.001), LogMax: math.Log(2)}
	mid := math.Exp((p.LogMin + p.LogMax) / 2)
	for _, c := range []struct {
		w    float64
		want int8
	}{
		{0, 0}, {math.Copysign(0, -1), 0},
		{2, 1}, {-2, -1}, {5, 1}, {-5, -1},
		{0.001, 127}, {-0.001, -127}, {0.0001, 127}, {-0.0001, -127},
		{1e-9, 127}, {-1e-9, -127}, {Tiny, 127},
		{mid, 64}, {-mid, -64},
	} {
		if got := p.CodeI8(c.w); got != c.want {
			t.Errorf("CodeI8(%v) = %d, want %d", c.w, got, c.want)
		}
	}
	// The formula, by hand: round(127 - 126 * (ln|w| - log_min) / span).
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		w := math.Exp(p.LogMin + r.Float64()*(p.LogMax-p.LogMin))
		want := math.RoundToEven(127 - 126*(math.Log(w)-p.LogMin)/(p.LogMax-p.LogMin))
		if got := p.CodeI8(-w); float64(got) != -want {
			t.Fatalf("CodeI8(%v) = %d, want %v", -w, got, -want)
		}
	}
	if got := (Params{LogMin: 0.5, LogMax: 0.5}).CodeI8(-1.6); got != -1 {
		t.Errorf("one magnitude: %d, want -1", got)
	}
}

// TestValueI8 checks the decoded values of codes 0, ±1, ±127, a middle
// code, and -128, which is invalid.
func TestValueI8(t *testing.T) {
	p := Params{LogMin: -4, LogMax: 0.5}
	for _, c := range []struct {
		c    int8
		want float64
	}{
		{0, 0}, {1, math.Exp(0.5)}, {-1, -math.Exp(0.5)},
		{127, math.Exp(-4)}, {-127, -math.Exp(-4)},
		{64, math.Exp(-4 + 63.0/126*4.5)}, {-64, -math.Exp(-4 + 63.0/126*4.5)},
	} {
		got := p.ValueI8(c.c)
		if math.Abs(got-c.want) > 1e-14*math.Abs(c.want) || c.want == 0 && (got != 0 || math.Signbit(got)) {
			t.Errorf("ValueI8(%d) = %v, want %v", c.c, got, c.want)
		}
	}
	if v := p.ValueI8(-128); !math.IsNaN(v) {
		t.Errorf("ValueI8(-128) = %v, want NaN", v)
	}
}

// TestI8Decoder decodes codes 0, ±1, ±127 in every dtype, and refuses
// -128 and signs other than +1.
func TestI8Decoder(t *testing.T) {
	p := Params{LogMin: -4, LogMax: 0.5}
	d := NewI8Decoder(p)
	codes := []uint8{0, 1, 0xff, 127, 0x81, 64}
	signs := []int8{1, 1, 1, 1, 1, 1}
	dst := make([]float64, len(codes))
	if err := d.Decode(codes, signs, dst, 0); err != nil {
		t.Fatal(err)
	}
	for i, c := range codes {
		if want := p.ValueI8(int8(c)); dst[i] != want {
			t.Errorf("code %d: %v, want %v", int8(c), dst[i], want)
		}
	}
	for _, dt := range floatTypes {
		out := make([]byte, len(codes)*int(dt.Size()))
		if err := d.DecodeTo(dt, codes, signs, out, 0); err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
		if dt == dtype.F64 && math.Float64frombits(binary.LittleEndian.Uint64(out[8*4:])) != -math.Exp(-4) {
			t.Errorf("F64 code -127")
		}
		bad := append([]uint8{}, codes...)
		bad[3] = 0x80
		err := d.DecodeTo(dt, bad, signs, out, 10)
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Index != 13 || !strings.Contains(err.Error(), "-128") {
			t.Errorf("%v: code -128: %v", dt, err)
		}
	}
	var ie *InvalidError
	if err := d.Decode([]uint8{1, 0x80}, []int8{1, 1}, dst, 5); !errors.As(err, &ie) || ie.Index != 6 {
		t.Errorf("code -128: %v", err)
	}
	if err := d.Decode(codes, []int8{1, 1, 0, 1, 1, 1}, dst, 0); err == nil {
		t.Error("sign 0 accepted by the i8 decoder")
	}
}

// TestI8Encoder checks the encoder against the formula for every dtype.
func TestI8Encoder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vals := make([]float64, 5000)
	for i := range vals {
		vals[i] = 0.05 * r.NormFloat64()
	}
	vals[0], vals[1], vals[2], vals[3] = 0, math.Copysign(0, -1), 1e-9, -1e-9
	for _, dt := range floatTypes {
		raw, stored := toRaw(t, dt, vals)
		s, _ := NewScanner(dt)
		s.Scan(raw, 0)
		p, err := s.Params()
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewI8Encoder(dt, p)
		if err != nil {
			t.Fatal(err)
		}
		codes := make([]int8, len(vals))
		e.Encode(raw, codes)
		for i, w := range stored {
			if want := p.CodeI8(w); codes[i] != want {
				t.Fatalf("%v element %d (%v): %d, want %d", dt, i, w, codes[i], want)
			}
		}
		if codes[0] != 0 || codes[1] != 0 {
			t.Errorf("%v zeros: %d %d", dt, codes[0], codes[1])
		}
	}
	if _, err := NewI8Encoder(dtype.I8, Params{}); err == nil {
		t.Error("an I8 source accepted")
	}
}

// TestMSEParamsLevels: 255 levels are MSEParams exactly; 127 levels give
// an error no worse than the min/max range's.
func TestMSEParamsLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	vals := make([]float64, 50000)
	for i := range vals {
		vals[i] = 0.02 * r.NormFloat64()
		if i%1000 == 1 {
			vals[i] *= 20
		}
	}
	sq := func(stored []float64, p Params) float64 {
		var e float64
		for _, w := range stored {
			d := w - p.ValueI8(p.CodeI8(w))
			e += d * d
		}
		return e
	}
	for _, dt := range floatTypes {
		raw, stored := toRaw(t, dt, vals)
		s, _ := NewScanner(dt)
		s.Scan(raw, 0)
		p8, _ := s.MSEParams()
		q8, err := s.MSEParamsLevels(Levels8)
		if err != nil || p8 != q8 {
			t.Fatalf("%v: MSEParamsLevels(255) %+v, MSEParams %+v (%v)", dt, q8, p8, err)
		}
		p0, _ := s.Params()
		p7, err := s.MSEParamsLevels(Levels7)
		if err != nil {
			t.Fatal(err)
		}
		if p7.LogMax != p0.LogMax || p7.LogMin < p0.LogMin {
			t.Fatalf("%v: %+v from %+v", dt, p7, p0)
		}
		e0, e7 := sq(stored, p0), sq(stored, p7)
		t.Logf("%v: squared error min/max %.4g, mse %.4g", dt, e0, e7)
		if e7 > e0*1.0001 {
			t.Errorf("%v: the mse range's error %g is above the min/max range's %g", dt, e7, e0)
		}
	}
	s, _ := NewScanner(dtype.F32)
	if _, err := s.MSEParamsLevels(1); err == nil {
		t.Error("1 level accepted")
	}
}
