package quant

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
)

// The tables and kernels of the i8 and rational encoders, against the
// formulas: Params.CodeI8 and RationalCode, element by element.

// testAlphas are rational parameters from the least valid for F32 to the
// largest float32, with the mse alphas of typical weights between.
var testAlphas = []float32{1.5e-36, 1e-6, 0.004, 0.5, 1, 2, 60, 127.3, 4096, 1e6, 3e30, math.MaxFloat32}

// TestLookup16 runs the table lookup, in Go and with the kernel where it
// runs, on every length up to a few blocks and at every alignment, and on
// every bit pattern, against a plain lookup.
func TestLookup16(t *testing.T) {
	t.Logf("AVX-512 kernels: %v", avx512)
	r := rand.New(rand.NewPCG(41, 42))
	tab := new(byteTable)
	for i := range tab {
		tab[i] = uint8(r.Uint32())
	}
	all := make([]byte, 2<<16)
	for h := range 1 << 16 {
		binary.LittleEndian.PutUint16(all[2*h:], uint16(h))
	}
	inputs := [][]byte{all}
	for n := range 200 {
		for off := range 3 {
			inputs = append(inputs, randomPatterns(r, n+off, true)[2*off:])
		}
	}
	inputs = append(inputs, randomPatterns(r, 50001, true), all[1:]) // an odd byte left over
	for _, b := range inputs {
		n := len(b) / 2
		for _, f := range []func(*byteTable, []byte, []byte) int{lookup16, lookup16Fast} {
			out := make([]byte, n+1)
			out[n] = 0xa5
			if got := f(tab, b, out[:n]); got != n {
				t.Fatalf("%d values: wrote %d", n, got)
			}
			for i := range n {
				if want := tab[binary.LittleEndian.Uint16(b[2*i:])]; out[i] != want {
					t.Fatalf("%d values, value %d (%#04x): %d, want %d", n, i, binary.LittleEndian.Uint16(b[2*i:]), out[i], want)
				}
			}
			if out[n] != 0xa5 {
				t.Fatalf("%d values: wrote past the end", n)
			}
		}
	}
}

// rationalEdges returns float32 magnitude bits where RationalCode with
// alpha changes, each with its neighbours, found by binary search on the
// bits (the code never increases with the magnitude of a positive weight):
// where a kernel's rounding would show.
func rationalEdges(alpha float32) []uint32 {
	code := func(u uint32) uint8 { return RationalCode(float64(math.Float32frombits(u)), alpha) }
	var us []uint32
	for c := 128; c < 255; c++ {
		// The smallest bits whose code is at most c.
		lo, hi := uint32(0), uint32(maxFinite32+1)
		for lo < hi {
			mid := lo + (hi-lo)/2
			if code(mid) <= uint8(c) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		for d := uint32(0); d < 5; d++ {
			us = append(us, lo+d-2)
		}
	}
	return us
}

// testFloat32s returns float32 bits to code: zeros, subnormals, every
// exponent, the largest finite, infinities, and where the codes of each
// alpha change, each with both signs.
func testFloat32s(r *rand.Rand) []uint32 {
	us := []uint32{0, 1, 2, 0x7fffff, 0x800000, 0x3f800000, maxFinite32, 0x7f800000}
	for e := range 255 {
		for range 40 {
			us = append(us, uint32(e)<<23|r.Uint32()&0x7fffff)
		}
	}
	for _, a := range testAlphas {
		us = append(us, rationalEdges(a)...)
	}
	n := len(us)
	for i := range n {
		us = append(us, us[i]|1<<31)
	}
	r.Shuffle(len(us), func(i, j int) { us[i], us[j] = us[j], us[i] })
	return us
}

// TestRational32 runs the rational code of float32 values in Go and with
// the kernel where it runs, on every length up to a few blocks and at
// every alignment, against RationalCode.
func TestRational32(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	us := testFloat32s(r)
	raw := make([]byte, 4*len(us))
	for i, u := range us {
		binary.LittleEndian.PutUint32(raw[4*i:], u)
	}
	for _, a := range testAlphas {
		want := make([]uint8, len(us))
		for i, u := range us {
			want[i] = RationalCode(float64(math.Float32frombits(u)), a)
		}
		for _, f := range []func([]byte, float32, []uint8) int{rational32, rational32Fast} {
			codes := make([]uint8, len(us))
			if n := f(raw, a, codes); n != len(us) {
				t.Fatalf("alpha %v: wrote %d of %d", a, n, len(us))
			}
			for i := range us {
				if codes[i] != want[i] {
					t.Fatalf("alpha %v: %v (bits %#x): %d, RationalCode %d", a, math.Float32frombits(us[i]), us[i], codes[i], want[i])
				}
			}
			for n := range 70 {
				for off := range 3 {
					codes := make([]uint8, n+1)
					codes[n] = 0xa5
					f(raw[4*off:4*(off+n)], a, codes[:n])
					if string(codes[:n]) != string(want[off:off+n]) || codes[n] != 0xa5 {
						t.Fatalf("alpha %v, %d values at %d: %v, want %v", a, n, off, codes[:n], want[off:off+n])
					}
				}
			}
		}
	}
}

// testI8Params are i8 ranges from narrow to the widest, equal, and
// invalid ones, whose codes are still the formula's.
var testI8Params = []Params{
	{LogMin: math.Log(1e-4), LogMax: math.Log(0.1)},
	{LogMin: math.Log(1e-8), LogMax: math.Log(math.MaxFloat32)},
	{LogMin: -0.001, LogMax: 0.001},
	{LogMin: math.Log(3), LogMax: math.Log(3)},
	{LogMin: -17.3, LogMax: -1.2},
	{LogMin: -30, LogMax: 12},
	{LogMin: 0, LogMax: 200},
	{LogMin: -5, LogMax: 89},
	{LogMin: 1, LogMax: -1},
	{LogMin: math.NaN(), LogMax: 0},
}

// TestI8TableMatchesFormula checks every entry of the 16-bit i8 tables
// against Params.CodeI8, and 0 for NaN and infinities.
func TestI8TableMatchesFormula(t *testing.T) {
	for _, dt := range []dtype.DType{dtype.F16, dtype.BF16} {
		to, expAll := toF32(dt)
		for _, p := range testI8Params {
			tab := i8Table(dt, p)
			for h := range 1 << 16 {
				want := int8(0)
				if uint16(h)&expAll != expAll {
					want = p.CodeI8(float64(to(uint16(h))))
				}
				if int8(tab[h]) != want {
					t.Fatalf("%v %+v: pattern %#04x (%v): table %d, CodeI8 %d", dt, p, h, to(uint16(h)), int8(tab[h]), want)
				}
			}
		}
		if i8Table(dtype.F32, Params{}) != nil {
			t.Errorf("an F32 table")
		}
	}
}

// TestRationalTableMatchesFormula checks every entry of the 16-bit
// rational tables against RationalCode, and 0 for NaN and infinities.
func TestRationalTableMatchesFormula(t *testing.T) {
	for _, dt := range []dtype.DType{dtype.F16, dtype.BF16} {
		to, expAll := toF32(dt)
		for _, a := range testAlphas {
			tab := rationalTable(dt, a)
			for h := range 1 << 16 {
				want := uint8(0)
				if uint16(h)&expAll != expAll {
					want = RationalCode(float64(to(uint16(h))), a)
				}
				if tab[h] != want {
					t.Fatalf("%v alpha %v: pattern %#04x (%v): table %d, RationalCode %d", dt, a, h, to(uint16(h)), tab[h], want)
				}
			}
		}
	}
}

// TestF32CoderLevels7 checks the thresholds of the 7-bit code against
// Params.Code7 around every threshold and bucket start and at random.
func TestF32CoderLevels7(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	for _, p := range testI8Params {
		if p.Validate() != nil {
			continue
		}
		f := newF32CoderLevels(p, Levels7)
		check := func(u uint32) {
			if u > maxFinite32 {
				return
			}
			want := uint8(p.Code7(float64(math.Float32frombits(u))))
			if got := f.code(u); got != want {
				t.Fatalf("%+v: magnitude %v (bits %#x): threshold code %d, Code7 %d", p, math.Float32frombits(u), u, got, want)
			}
			if got, ok := f.fast(u); ok && got != want {
				t.Fatalf("%+v: magnitude %v (bits %#x): bucket code %d, Code7 %d", p, math.Float32frombits(u), u, got, want)
			}
		}
		for c := 1; c < Levels7; c++ {
			for d := -3; d <= 3; d++ {
				check(uint32(int64(f.thr[c]) + int64(d)))
			}
		}
		for b := range f.start {
			check(uint32(b) << 16)
			check(uint32(b)<<16 | 0xffff)
		}
		for range 100000 {
			check(r.Uint32() & 0x7fffffff)
		}
	}
}

// TestSignCodes checks the eight-at-a-time product of signs and codes, and
// the kernel's.
func TestSignCodes(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 63, 64, 1000} {
		mags, signs, out := make([]uint8, n), make([]int8, n), make([]int8, n+1)
		for i := range n {
			mags[i], signs[i] = uint8(r.Uint32()), int8(r.IntN(3)-1)
			if i%5 == 0 {
				mags[i] = []uint8{0, 1, 127, 128, 255}[i/5%5]
			}
		}
		for _, f := range []func([]uint8, []int8, []int8){signCodes, signCodesFast} {
			out[n] = 99
			f(mags, signs, out[:n])
			for i := range n {
				if want := signs[i] * int8(mags[i]); out[i] != want {
					t.Fatalf("n %d, %d: %d * %d = %d, want %d", n, i, signs[i], mags[i], out[i], want)
				}
			}
			if out[n] != 99 {
				t.Fatalf("n %d: wrote past the end", n)
			}
		}
	}
}

// encoderInputs returns the values of an encoder test, n of them for
// every dtype: weights of a wide range, zeros of both signs, tiny values,
// and for F32 also where each alpha's codes change.
func encoderInputs(r *rand.Rand, n int) []float64 {
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = 0.02 * r.NormFloat64() * math.Exp(2*r.NormFloat64())
		switch r.IntN(40) {
		case 0:
			vals[i] = 0
		case 1:
			vals[i] = math.Copysign(0, -1)
		case 2:
			vals[i] = 3e-9 * r.Float64()
		}
	}
	return vals
}

// TestEncodersMatchFormula encodes tensors of every dtype, through the
// encoders as convert runs them (several goroutines on chunks of one
// encoder), against CodeI8 and RationalCode.
func TestEncodersMatchFormula(t *testing.T) {
	r := rand.New(rand.NewPCG(49, 50))
	for _, n := range []int{5, 1000, 3 * minF32Coder} {
		vals := encoderInputs(r, n)
		if n > 1000 {
			// F32: the codes' edges of alpha 60, and of the tensor's i8
			// thresholds below.
			for i, u := range rationalEdges(60) {
				vals[i*7] = float64(math.Float32frombits(u)) * float64(1-2*(i%2))
			}
		}
		for _, dt := range floatTypes {
			raw, stored := toRaw(t, dt, vals)
			size := int(dt.Size())
			s, _ := NewScanner(dt)
			s.Scan(raw, 0)
			p, err := s.Params()
			if err != nil {
				t.Fatal(err)
			}
			ie, err := NewI8Encoder(dt, p)
			if err != nil {
				t.Fatal(err)
			}
			re, err := NewRationalEncoder(dt, 60)
			if err != nil {
				t.Fatal(err)
			}
			i8s, rats := make([]int8, n), make([]uint8, n)
			// Four goroutines, each on its quarter: the F64 encoders once
			// shared a buffer.
			var wg sync.WaitGroup
			for q := range 4 {
				lo, hi := q*n/4, (q+1)*n/4
				wg.Go(func() {
					for range 3 {
						ie.Encode(raw[lo*size:hi*size], i8s[lo:hi])
						re.Encode(raw[lo*size:hi*size], rats[lo:hi])
					}
				})
			}
			wg.Wait()
			for i, w := range stored {
				if want := p.CodeI8(w); i8s[i] != want {
					t.Fatalf("%v, %d elements: i8 element %d (%v): %d, CodeI8 %d", dt, n, i, w, i8s[i], want)
				}
				if want := RationalCode(w, 60); rats[i] != want {
					t.Fatalf("%v, %d elements: rational element %d (%v): %d, RationalCode %d", dt, n, i, w, rats[i], want)
				}
			}
		}
	}
	for _, a := range []float32{0, -1, float32(math.Inf(1)), float32(math.NaN())} {
		if _, err := NewRationalEncoder(dtype.F32, a); err == nil {
			t.Errorf("alpha %v accepted", a)
		}
	}
}

// TestI8EncoderF32Thresholds encodes F32 values on both sides of every
// threshold of the tensor's 7-bit code.
func TestI8EncoderF32Thresholds(t *testing.T) {
	p := Params{LogMin: -17.3, LogMax: -1.2}
	f := newF32CoderLevels(p, Levels7)
	var raw []byte
	for c := 1; c < Levels7; c++ {
		for d := -3; d <= 3; d++ {
			for _, sign := range []uint32{0, 1 << 31} {
				raw = binary.LittleEndian.AppendUint32(raw, uint32(int64(f.thr[c])+int64(d))|sign)
			}
		}
	}
	for len(raw) < 4*minF32Coder {
		raw = append(raw, raw...)
	}
	e, err := NewI8Encoder(dtype.F32, p)
	if err != nil {
		t.Fatal(err)
	}
	codes := make([]int8, len(raw)/4)
	e.Encode(raw, codes)
	if e.f32 == nil {
		t.Fatal("no thresholds")
	}
	for i := range codes {
		w := float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
		if want := p.CodeI8(w); codes[i] != want {
			t.Fatalf("element %d (%v): %d, CodeI8 %d", i, w, codes[i], want)
		}
	}
}

// TestAlphaErrors checks the squared error of the alpha search, coded by
// the kernels, bit for bit against RationalCode and RationalValue per
// magnitude in the same order, for alphas across the search's range.
func TestAlphaErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	for _, dt := range floatTypes {
		raw, _ := toRaw(t, dt, encoderInputs(r, 20000))
		s, _ := NewScanner(dt)
		s.Scan(raw, 0)
		mags, ns := s.magnitudes()
		var e alphaErrors
		e.reset(mags, ns)
		for k := range 200 {
			a := float32(math.Exp(-10 + float64(k)*0.1))
			var want float64
			for i, m := range mags {
				d1 := m - RationalValue(RationalCode(m, a), float64(a))
				d2 := -m - RationalValue(RationalCode(-m, a), float64(a))
				want += ns[i] * (d1*d1 + d2*d2) / 2
			}
			if got := e.sqErr(a); got != want {
				t.Fatalf("%v, alpha %v: %v, want %v", dt, a, got, want)
			}
		}
	}
}

// TestCount16 runs the counting of the mse range pass, in Go and in
// assembly where it runs, on every length up to a few groups and at every
// alignment: the same counts.
func TestCount16(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	for n := range 100 {
		for off := range 3 {
			b := randomPatterns(r, n+off, true)[2*off:]
			var want, got [1 << 16]uint32
			count16(b, &want)
			count16Fast(b, &got)
			if got != want {
				t.Fatalf("%d values at %d: the counts differ", n, off)
			}
			var total uint32
			for m := range 1 << 15 {
				total += got[m] + got[m|0x8000]
			}
			if total != uint32(n) {
				t.Fatalf("%d values: %d counted", n, total)
			}
		}
	}
}

// Params.TableF32 is the table a Decoder of the same parameters decodes
// with, bit for bit (NaNs included).
func TestParamsTableF32(t *testing.T) {
	ps := []Params{{LogMin: -12, LogMax: -2}, {LogMin: math.Log(1e-30), LogMax: math.Log(3e4)}, {LogMin: -5, LogMax: -5}, {LogMin: -100, LogMax: 87.5}}
	r := rand.New(rand.NewPCG(9, 10))
	for range 2000 {
		lo := -30 + 25*r.Float64()
		ps = append(ps, Params{LogMin: lo, LogMax: lo + 12*r.Float64()})
	}
	for _, p := range ps {
		var got [3][256]float64
		p.TableF32(&got)
		want := NewDecoder(p).TableF32()
		for k := range got {
			for c := range got[k] {
				if math.Float64bits(got[k][c]) != math.Float64bits(want[k][c]) && !(got[k][c] != got[k][c] && want[k][c] != want[k][c]) {
					t.Fatalf("%+v: [%d][%d] = %v, the decoder's %v", p, k, c, got[k][c], want[k][c])
				}
			}
		}
	}
}

// MagnitudesF32 is float32(Magnitude) to the bit on random ranges, narrow
// and wide, and on edge ones: empty, beyond float32, near ±700 where it
// switches method, and beyond; it leaves code 0 as it is.
func TestMagnitudesF32(t *testing.T) {
	ps := []Params{{LogMin: -5, LogMax: -5}, {LogMin: 0, LogMax: 0}, {LogMin: -700, LogMax: 700}, {LogMin: -700.0001, LogMax: 1},
		{LogMin: -1, LogMax: 700.0001}, {LogMin: -745, LogMax: -600}, {LogMin: -110, LogMax: 100}, {LogMin: -104, LogMax: -87},
		{LogMin: 80, LogMax: 95}, {LogMin: math.Log(1e-30), LogMax: math.Log(3e4)}, {LogMin: -100, LogMax: 87.5},
		{LogMin: math.Log(0x1p-149), LogMax: math.Log(0x1p-126)}, {LogMin: math.Log(math.MaxFloat32) - 1, LogMax: math.Log(math.MaxFloat32) + 1}}
	r := rand.New(rand.NewPCG(11, 12))
	for range 20000 {
		lo := -40 + 40*r.Float64()
		ps = append(ps, Params{LogMin: lo, LogMax: lo + 30*r.Float64()*r.Float64()})
	}
	for range 2000 {
		lo := -700 + 1400*r.Float64()
		ps = append(ps, Params{LogMin: lo, LogMax: lo + (700-lo)*r.Float64()})
	}
	// Ranges whose code c decodes within a few float64 ulps of a midpoint
	// between two float32 values, where the products alone would round
	// the wrong way about half the time.
	for range 2000 {
		lo, c := -20+10*r.Float64(), 1+r.IntN(254)
		f := float32(math.Exp(lo + 2 + 8*r.Float64()))
		mid := (float64(f) + float64(math.Nextafter32(f, 2*f))) / 2
		ps = append(ps, Params{LogMin: lo, LogMax: lo + (math.Log(mid)-lo)*254/float64(255-c)})
	}
	for _, p := range ps {
		var got [256]float32
		got[0] = 42 // left as it is
		p.MagnitudesF32(&got)
		if got[0] != 42 {
			t.Fatalf("%+v: code 0 set to %v", p, got[0])
		}
		for c := 1; c < 256; c++ {
			if want := float32(p.Magnitude(uint8(c))); math.Float32bits(got[c]) != math.Float32bits(want) {
				t.Fatalf("%+v: code %d = %v, float32(Magnitude) %v", p, c, got[c], want)
			}
		}
	}
}

func BenchmarkMagnitudesF32(b *testing.B) {
	p := Params{LogMin: -12, LogMax: -2}
	var tab [256]float32
	for b.Loop() {
		p.MagnitudesF32(&tab)
	}
}

func BenchmarkMagnitudesExp32(b *testing.B) {
	p := Params{LogMin: -12, LogMax: -2}
	var tab [256]float32
	for b.Loop() {
		for c := 1; c < 256; c++ {
			tab[c] = exp32(p.LogMin + float64(255-c)/254*(p.LogMax-p.LogMin))
		}
	}
}
