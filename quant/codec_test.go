package quant

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
)

// encodeAll runs both passes of an Encoder over one buffer.
func encodeAll(t *testing.T, dt dtype.DType, raw []byte) (Params, []uint8, []int8, error) {
	t.Helper()
	// Two scanners take alternate uneven chunks, as goroutines would, and
	// are merged.
	s1, err := NewScanner(dt)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := NewScanner(dt)
	size := int(dt.Size())
	n := len(raw) / size
	for i := 0; i < n; i += 7 {
		s := s1
		if (i/7)%2 == 1 {
			s = s2
		}
		s.Scan(raw[i*size:min(i+7, n)*size], int64(i))
	}
	s1.Merge(s2)
	if s1.Elements() != int64(n) {
		t.Fatalf("scanned %d elements of %d", s1.Elements(), n)
	}
	// Range scanners, on chunks of another size, find the same range.
	r1, _ := NewRangeScanner(dt)
	r2, _ := NewRangeScanner(dt)
	for i := 0; i < n; i += 45 {
		r := r1
		if (i/45)%2 == 1 {
			r = r2
		}
		r.Scan(raw[i*size:min(i+45, n)*size], int64(i))
	}
	r1.Merge(r2)
	pc, errc := s1.Params()
	pr, errr := r1.Params()
	if pc != pr || fmt.Sprint(errc) != fmt.Sprint(errr) || r1.Elements() != int64(n) {
		t.Fatalf("%v: counting scanner gives %+v, %v; range scanner %+v, %v", dt, pc, errc, pr, errr)
	}
	e, err := s1.Encoder()
	if err != nil {
		return Params{}, nil, nil, err
	}
	p := e.Params()
	codes, signs := make([]uint8, n), make([]int8, n)
	// Chunks of odd lengths, long enough for the kernels' wide steps.
	for i, k := 0, 0; i < n; k++ {
		j := min(i+[]int{5, 61, 1}[k%3], n)
		e.Encode(raw[i*size:j*size], codes[i:j], signs[i:j])
		i = j
	}
	return p, codes, signs, nil
}

// toRaw stores values in dtype dt, and returns the values as stored.
func toRaw(t *testing.T, dt dtype.DType, vals []float64) ([]byte, []float64) {
	t.Helper()
	put, err := dtype.Putter(dt)
	if err != nil {
		t.Fatal(err)
	}
	read, _ := dtype.Reader(dt)
	raw := make([]byte, len(vals)*int(dt.Size()))
	for i, v := range vals {
		put(raw, i, v)
	}
	stored := make([]float64, len(vals))
	read(raw, stored)
	return raw, stored
}

var floatTypes = []dtype.DType{dtype.F16, dtype.BF16, dtype.F32, dtype.F64}

func TestHandComputedVectors(t *testing.T) {
	// log_max = 0 (|w| = 1), log_min = -2 (|w| = e^-2): code = 255 - 127*(ln|w| + 2).
	w := []float64{1, -math.Exp(-2), math.Exp(-1), 0, math.Copysign(0, -1), 1e-9, -1e-9, -math.Exp(-1.5)}
	wantCodes := []uint8{1, 255, 128, 255, 255, 255, 255, 192} // 255-127*0.5 = 191.5 -> even 192
	wantSigns := []int8{1, -1, 1, 0, 0, 1, -1, -1}
	raw, _ := toRaw(t, dtype.F64, w)
	p, codes, signs, err := encodeAll(t, dtype.F64, raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.LogMax != 0 || math.Abs(p.LogMin+2) > 1e-15 {
		t.Fatalf("params %+v, want log_min -2, log_max 0", p)
	}
	for i := range w {
		if codes[i] != wantCodes[i] || signs[i] != wantSigns[i] {
			t.Errorf("w[%d]=%v: code %d sign %d, want %d %d", i, w[i], codes[i], signs[i], wantCodes[i], wantSigns[i])
		}
	}
	out := make([]float64, len(w))
	if err := NewDecoder(p).Decode(codes, signs, out, 0); err != nil {
		t.Fatal(err)
	}
	want := []float64{1, -math.Exp(-2), math.Exp(-1), 0, 0, math.Exp(-2), -math.Exp(-2), -math.Exp(-2 + 63.0/254*2)}
	for i := range want {
		if math.Abs(out[i]-want[i]) > 1e-12 || math.Signbit(out[i]) != math.Signbit(want[i]) {
			t.Errorf("decode w[%d]: got %v, want %v", i, out[i], want[i])
		}
	}
}

func TestBoundOnRandomTensors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 20000)
	for i := range vals {
		switch {
		case i%97 == 0:
			vals[i] = 0
		case i%101 == 0:
			vals[i] = rng.NormFloat64() * 0.5 // outliers
		case i%211 == 0:
			vals[i] = 3e-9
		default:
			vals[i] = rng.NormFloat64() * 0.02
		}
	}
	for _, dt := range floatTypes {
		t.Run(dt.String(), func(t *testing.T) {
			raw, stored := toRaw(t, dt, vals)
			p, codes, signs, err := encodeAll(t, dt, raw)
			if err != nil {
				t.Fatal(err)
			}
			dec := make([]float64, len(vals))
			if err := NewDecoder(p).Decode(codes, signs, dec, 0); err != nil {
				t.Fatal(err)
			}
			bound := (p.LogMax-p.LogMin)/508 + 1e-6
			for i, w := range stored {
				if codes[i] < 1 {
					t.Fatalf("code %d at %d", codes[i], i)
				}
				if want := Sign(w); signs[i] != want {
					t.Fatalf("element %d (%v): sign %d, want %d", i, w, signs[i], want)
				}
				if w == 0 {
					if dec[i] != 0 || math.Signbit(dec[i]) {
						t.Fatalf("zero at %d decoded to %v", i, dec[i])
					}
					continue
				}
				if math.Abs(w) <= Tiny {
					continue
				}
				if d := math.Abs(math.Log(math.Abs(dec[i])) - math.Log(math.Abs(w))); d > bound {
					t.Fatalf("element %d: %v decoded to %v, log error %g > %g", i, w, dec[i], d, bound)
				}
				// The code is the formula's, element by element.
				if c := p.Code(math.Abs(w)); c != codes[i] {
					t.Fatalf("element %d: encoder code %d, formula %d", i, codes[i], c)
				}
			}
		})
	}
}

// TestTableMatchesFormulaEveryPattern checks the 16-bit lookup path against
// the formula for every finite pattern, on a tensor that holds them all.
func TestTableMatchesFormulaEveryPattern(t *testing.T) {
	for _, dt := range []dtype.DType{dtype.F16, dtype.BF16} {
		s, _ := NewScanner(dt)
		var raw []byte
		for h := 0; h < 1<<16; h++ {
			if uint16(h)&s.expAll == s.expAll {
				continue
			}
			raw = binary.LittleEndian.AppendUint16(raw, uint16(h))
		}
		p, codes, signs, err := encodeAll(t, dt, raw)
		if err != nil {
			t.Fatal(err)
		}
		vals := make([]float64, len(codes))
		s.read(raw, vals)
		// An encoder without a range pass computes every code on the spot.
		direct, _ := NewEncoder(dt, p)
		dc, ds := make([]uint8, len(codes)), make([]int8, len(codes))
		direct.Encode(raw, dc, ds)
		for i, v := range vals {
			if c := p.Code(math.Abs(v)); c != codes[i] || Sign(v) != signs[i] || dc[i] != c || ds[i] != signs[i] {
				t.Fatalf("%v %v: table gives %d/%d, formula %d/%d, direct %d/%d", dt, v, codes[i], signs[i], c, Sign(v), dc[i], ds[i])
			}
		}
	}
}

// TestEncodeUnseenPatterns encodes with the table of a range pass that saw
// only part of the tensor: the patterns it missed are coded on the spot.
func TestEncodeUnseenPatterns(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	vals := make([]float64, 1000)
	for i := range vals {
		vals[i] = 0.02 * r.NormFloat64()
	}
	vals[500], vals[700] = 0, math.Copysign(0, -1)
	for _, dt := range []dtype.DType{dtype.F16, dtype.BF16} {
		raw, stored := toRaw(t, dt, vals)
		s, _ := NewScanner(dt)
		s.Scan(raw[:2*100], 0)
		p := Params{LogMin: math.Log(1e-4), LogMax: math.Log(0.1)}
		e := s.EncoderFor(p)
		codes, signs := make([]uint8, len(vals)), make([]int8, len(vals))
		e.Encode(raw, codes, signs)
		for i, v := range stored {
			if c := p.Code(math.Abs(v)); codes[i] != c || signs[i] != Sign(v) {
				t.Fatalf("%v element %d (%v): got %d/%d, want %d/%d", dt, i, v, codes[i], signs[i], c, Sign(v))
			}
		}
	}
}

func TestSpecialTensors(t *testing.T) {
	for _, dt := range floatTypes {
		cases := []struct {
			name string
			w    []float64
		}{
			{"constant", []float64{0.5, -0.5, 0.5, 0, 0.5}},
			{"all zero", []float64{0, 0, math.Copysign(0, -1), 0}},
			{"tiny only", []float64{1e-9, -5e-9, 0, 2e-9}},
			{"single", []float64{-0.25}},
			{"empty", nil},
		}
		for _, c := range cases {
			t.Run(dt.String()+"/"+c.name, func(t *testing.T) {
				raw, stored := toRaw(t, dt, c.w)
				p, codes, signs, err := encodeAll(t, dt, raw)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Validate(); err != nil {
					t.Fatal(err)
				}
				dec := make([]float64, len(stored))
				if err := NewDecoder(p).Decode(codes, signs, dec, 0); err != nil {
					t.Fatal(err)
				}
				maxAbs := 0.0
				for _, w := range stored {
					maxAbs = math.Max(maxAbs, math.Abs(w))
				}
				for i, w := range stored {
					if w == 0 && dec[i] != 0 {
						t.Errorf("zero at %d decoded to %v", i, dec[i])
					}
					if w != 0 && Sign(dec[i]) != Sign(w) {
						t.Errorf("element %d: %v decoded to %v", i, w, dec[i])
					}
					if math.Abs(dec[i]) > maxAbs*(1+1e-12) {
						t.Errorf("element %d: %v decoded to %v, above the largest magnitude %v", i, w, dec[i], maxAbs)
					}
					if c.name == "constant" && w != 0 && math.Abs(dec[i]-w) > 1e-12 {
						t.Errorf("constant element %d: %v decoded to %v", i, w, dec[i])
					}
				}
			})
		}
	}
}

func TestNonFiniteNamesTheElement(t *testing.T) {
	for _, dt := range floatTypes {
		for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			w := make([]float64, 40)
			for i := range w {
				w[i] = float64(i) * 0.01
			}
			w[23] = bad
			w[31] = math.NaN()
			raw, _ := toRaw(t, dt, w)
			_, _, _, err := encodeAll(t, dt, raw)
			var nf *NonFiniteError
			if !errors.As(err, &nf) || nf.Index != 23 {
				t.Errorf("%v with %v at 23: got %v", dt, bad, err)
			}
		}
	}
}

func TestDecoderRejectsInvalid(t *testing.T) {
	d := NewDecoder(Params{LogMin: -3, LogMax: 0})
	out := make([]float64, 3)
	if err := d.Decode([]uint8{1, 2, 3}, []int8{1, 0, -1}, out, 0); err != nil {
		t.Fatal(err)
	}
	var ie *InvalidError
	if err := d.Decode([]uint8{4, 0, 5}, []int8{1, 1, 1}, out, 3); !errors.As(err, &ie) || ie.Index != 4 {
		t.Errorf("code 0: got %v, want element 4", err)
	}
	if err := d.Decode([]uint8{4, 4, 5}, []int8{1, 1, 2}, out, 3); !errors.As(err, &ie) || ie.Index != 5 {
		t.Errorf("sign 2: got %v, want element 5", err)
	}
	if err := (Params{LogMin: 1, LogMax: 0}).Validate(); err == nil {
		t.Error("log_min > log_max accepted")
	}
	if err := (Params{LogMin: math.Inf(-1), LogMax: 0}).Validate(); err == nil {
		t.Error("infinite log_min accepted")
	}
}

func TestDecodeToMatchesDecode(t *testing.T) {
	p := Params{LogMin: -9.5, LogMax: -1.25}
	codes := make([]uint8, 255*3)
	signs := make([]int8, len(codes))
	for i := range codes {
		codes[i] = uint8(1 + i%255)
		signs[i] = int8(i%3) - 1
	}
	want := make([]float64, len(codes))
	if err := NewDecoder(p).Decode(codes, signs, want, 0); err != nil {
		t.Fatal(err)
	}
	for _, dt := range floatTypes {
		buf := make([]byte, len(codes)*int(dt.Size()))
		if err := NewDecoder(p).DecodeTo(dt, codes, signs, buf, 0); err != nil {
			t.Fatal(err)
		}
		put, _ := dtype.Putter(dt)
		exp := make([]byte, len(buf))
		for i, v := range want {
			put(exp, i, v)
		}
		if string(buf) != string(exp) {
			t.Errorf("%v: DecodeTo differs from Decode rounded once", dt)
		}
	}
}

// checkUnpack unpacks the packed codes and sign bits of codes and signs
// from each bit offset below offs, against the u8+i8 layout.
func checkUnpack(t *testing.T, label string, codes []uint8, signs []int8, bits []byte, offs int) {
	t.Helper()
	for off := 0; off < offs; off++ {
		c := append([]uint8(nil), codes[off:]...)
		got := make([]int8, len(c))
		UnpackSigns(c, bits, off, got)
		for i := range c {
			want, wc := signs[off+i], codes[off+i]
			if wc == 0 {
				wc = 255
			}
			if got[i] != want || c[i] != wc {
				t.Fatalf("%s, offset %d, element %d: sign %d code %d, want %d %d", label, off, i, got[i], c[i], want, wc)
			}
		}
	}
}

func TestPackedSigns(t *testing.T) {
	signs := []int8{1, -1, 0, -1, 1, 1, -1, -1, -1, 0, 1}
	codes := []uint8{3, 4, 0, 9, 200, 1, 255, 7, 8, 0, 2}
	bits := make([]byte, 2)
	PackSigns(signs, bits)
	if bits[0] != 0b11001010 || bits[1] != 0b001 {
		t.Fatalf("bits %08b %08b", bits[0], bits[1])
	}
	// Unpack from every bit offset, as chunks that start mid-byte do.
	checkUnpack(t, "short run", codes, signs, bits, len(codes))
	// Long runs, where eight elements are unpacked at a time.
	r := rand.New(rand.NewPCG(9, 10))
	n := 1000
	signs, codes = make([]int8, n), make([]uint8, n)
	for i := range signs {
		codes[i], signs[i] = uint8(1+r.IntN(255)), int8(1-2*r.IntN(2))
		if r.IntN(50) == 0 {
			codes[i], signs[i] = 0, 0
		}
	}
	bits = make([]byte, (n+7)/8)
	PackSigns(signs, bits)
	checkUnpack(t, "long run", codes, signs, bits, 10)
	raw, _ := toRaw(t, dtype.BF16, []float64{0.5, 0, math.Copysign(0, -1), -2})
	zc := []uint8{9, 9, 9, 9}
	ZeroCodes(dtype.BF16, raw, zc)
	if zc[0] != 9 || zc[1] != 0 || zc[2] != 0 || zc[3] != 9 {
		t.Errorf("ZeroCodes: %v", zc)
	}
	// Long runs, four elements at a time: zeros of both signs among the
	// smallest subnormals, which are not zero.
	pats := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		h := []uint16{0x0000, 0x8000, 0x0001, 0x8001, 0x3f80, 0x0080}[r.IntN(6)]
		if r.IntN(3) > 0 {
			h = uint16(r.Uint32()) | 1
		}
		pats[2*i], pats[2*i+1] = byte(h), byte(h>>8)
	}
	zc = make([]uint8, n)
	for i := range zc {
		zc[i] = 7
	}
	ZeroCodes(dtype.BF16, pats, zc)
	for i := range zc {
		zero := pats[2*i] == 0 && pats[2*i+1]&0x7f == 0
		if (zc[i] == 0) != zero || (!zero && zc[i] != 7) {
			t.Fatalf("ZeroCodes: element %d (%#04x) code %d", i, uint16(pats[2*i])|uint16(pats[2*i+1])<<8, zc[i])
		}
	}
}

// relRMSE encodes raw with p and returns rmse / rms of the stored values.
func relRMSE(t *testing.T, dt dtype.DType, raw []byte, s *Scanner, p Params) float64 {
	t.Helper()
	n := len(raw) / int(dt.Size())
	codes, signs, dec, vals := make([]uint8, n), make([]int8, n), make([]float64, n), make([]float64, n)
	s.EncoderFor(p).Encode(raw, codes, signs)
	if err := NewDecoder(p).Decode(codes, signs, dec, 0); err != nil {
		t.Fatal(err)
	}
	s.read(raw, vals)
	var se, sa float64
	for i, v := range vals {
		se += (v - dec[i]) * (v - dec[i])
		sa += v * v
	}
	return math.Sqrt(se / sa)
}

func TestMSERange(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	vals := make([]float64, 200000)
	for i := range vals {
		vals[i] = 0.02 * r.NormFloat64()
		if i%500 == 0 {
			vals[i] = 0
		}
		if i%1000 == 1 {
			vals[i] *= 20 // outliers
		}
	}
	for _, dt := range floatTypes {
		raw, _ := toRaw(t, dt, vals)
		s, _ := NewScanner(dt)
		s.Scan(raw, 0)
		p0, _ := s.Params()
		p1, err := s.MSEParams()
		if err != nil {
			t.Fatal(err)
		}
		if p1.LogMax != p0.LogMax || p1.LogMin < p0.LogMin || p1.LogMin >= p1.LogMax {
			t.Fatalf("%v: mse params %+v from min/max %+v", dt, p1, p0)
		}
		e0, e1 := relRMSE(t, dt, raw, s, p0), relRMSE(t, dt, raw, s, p1)
		t.Logf("%v: rel_rmse min/max %.4f, mse %.4f (log span %.2f -> %.2f)", dt, e0, e1, p0.LogMax-p0.LogMin, p1.LogMax-p1.LogMin)
		if e1 > e0 || e1 > 0.01 {
			t.Errorf("%v: rel_rmse with the mse range %.4f, min/max %.4f", dt, e1, e0)
		}
	}
}

func TestCheckFinite(t *testing.T) {
	cases := []struct {
		dt     dtype.DType
		top    float64 // the largest magnitude, exp(log_max)
		finite bool
	}{
		{dtype.F16, 65519, true}, {dtype.F16, 65521, false},
		{dtype.BF16, 3.39e38, true}, {dtype.BF16, 3.397e38, false},
		{dtype.F32, 3.4028234e38, true}, {dtype.F32, 3.40283e38, false},
		{dtype.F64, 1e308, true}, {dtype.F32, 1e-40, true},
	}
	for _, c := range cases {
		p := Params{LogMin: math.Log(c.top) - 20, LogMax: math.Log(c.top)}
		if err := p.CheckFinite(c.dt); (err == nil) != c.finite {
			t.Errorf("%v, largest %g: %v", c.dt, c.top, err)
		}
	}
	for _, p := range []Params{{LogMin: -1e308, LogMax: 1e308}, {LogMin: 0, LogMax: 710}, {LogMin: -10, LogMax: 1000}} {
		if err := p.CheckFinite(dtype.F64); err == nil {
			t.Errorf("%+v: accepted", p)
		}
	}
}

// PackCodes gives the packed layout's codes (0 for an exact zero, as
// ZeroCodes gives them from the source) and sign bits (as PackSigns), for
// every length around the kernel's blocks of 64 and the words of 8, and
// UnpackSigns gives the u8+i8 layout back.
func TestPackCodes(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	vals := []float64{0.5, 0, -0.25, math.Copysign(0, -1), 1e-9, -3, 0, 0, 7, -1e-30, 0.1}
	for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 65, 127, 128, 129, 200, 1000, 4099} {
		raw := make([]byte, 2*n)
		for i := range n {
			v := vals[r.IntN(len(vals))]
			binary.LittleEndian.PutUint16(raw[2*i:], dtype.Float64ToBF16(v))
		}
		codes, signs := make([]uint8, n), make([]int8, n)
		for i := range codes {
			codes[i] = uint8(1 + r.IntN(255))
		}
		Signs(dtype.BF16, raw, signs)
		orig := append([]uint8(nil), codes...)
		want := append([]uint8(nil), codes...)
		ZeroCodes(dtype.BF16, raw, want)
		wantBits := make([]byte, (n+7)/8)
		PackSigns(signs, wantBits)
		bits := make([]byte, (n+7)/8)
		PackCodes(codes, signs, bits)
		if string(codes) != string(want) {
			t.Fatalf("length %d: codes %v, want %v", n, codes, want)
		}
		if string(bits) != string(wantBits) {
			t.Fatalf("length %d: bits %08b, want %08b", n, bits, wantBits)
		}
		for i, c := range orig {
			if signs[i] == 0 {
				orig[i] = 255 // UnpackSigns's code of an exact zero
			} else {
				orig[i] = c
			}
		}
		got := make([]int8, n)
		if UnpackSigns(codes, bits, 0, got) >= 0 || string(codes) != string(orig) || string(Int8Bytes(got)) != string(Int8Bytes(signs)) {
			t.Fatalf("length %d: UnpackSigns does not give the u8+i8 layout back", n)
		}
	}
}
