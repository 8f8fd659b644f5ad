package quant

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
)

// TestF32CoderMatchesFormula checks the thresholds against Params.Code
// where a mistake would show: on both sides of every threshold, at every
// bucket start, and on random magnitudes of every exponent, for ranges from
// narrow to the widest a float32 tensor can have.
func TestF32CoderMatchesFormula(t *testing.T) {
	params := []Params{
		{LogMin: math.Log(1e-4), LogMax: math.Log(0.1)},
		{LogMin: math.Log(1e-8), LogMax: math.Log(math.MaxFloat32)},
		{LogMin: -0.001, LogMax: 0.001},
		{LogMin: math.Log(3), LogMax: math.Log(3)},
		{LogMin: math.Log(0.5), LogMax: math.Log(0.75)},
		{LogMin: -17.3, LogMax: -1.2},
		// log_max above ln(MaxFloat32): the smallest codes are unreachable.
		{LogMin: 0, LogMax: 200},
		{LogMin: -5, LogMax: 89},
	}
	r := rand.New(rand.NewPCG(11, 12))
	for _, p := range params {
		f := newF32Coder(p)
		var sample []uint32 // magnitudes checked, for the kernels below
		check := func(u uint32) {
			if u > maxFinite32 {
				return
			}
			sample = append(sample, u)
			if got, want := f.code(u), p.code32(u); got != want {
				t.Fatalf("%+v: magnitude %v (bits %#x): threshold code %d, formula %d", p, math.Float32frombits(u), u, got, want)
			}
			if got, ok := f.fast(u); ok && got != p.code32(u) {
				t.Fatalf("%+v: magnitude %v (bits %#x): bucket code %d, formula %d", p, math.Float32frombits(u), u, got, p.code32(u))
			}
		}
		for c := 1; c <= 254; c++ {
			for d := -3; d <= 3; d++ {
				check(uint32(int64(f.thr[c]) + int64(d)))
			}
		}
		for b := range f.start {
			check(uint32(b) << 16)
			check(uint32(b)<<16 | 0xffff)
		}
		for i := 0; i < 200000; i++ {
			check(r.Uint32() & 0x7fffffff)
		}
		check(maxFinite32)
		checkEncode32(t, f, sample, r)
		// codes32 reads signed values, and codes the non-finite ones too.
		raw := binary.LittleEndian.AppendUint32(nil, math.Float32bits(-0.01))
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(math.Inf(-1))))
		codes := make([]uint8, 2)
		f.codes32(raw, codes)
		if codes[0] != p.code32(math.Float32bits(0.01)) || codes[1] != p.Code(math.Inf(1)) {
			t.Errorf("%+v: codes32 gives %v", p, codes)
		}
	}
}

// TestF32TensorUsesThresholds encodes an F32 tensor large enough for the
// thresholds through the range pass, as convert does, against the formula.
func TestF32TensorUsesThresholds(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	n := 3 * minF32Coder
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = 0.02 * r.NormFloat64() * math.Exp(3*r.NormFloat64())
	}
	vals[5], vals[6], vals[7] = 0, math.Copysign(0, -1), 3e-9
	for _, rng := range []string{"minmax", "mse"} {
		raw, stored := toRaw(t, dtype.F32, vals)
		s, _ := NewScanner(dtype.F32)
		s.Scan(raw, 0)
		params := s.Params
		if rng == "mse" {
			params = s.MSEParams
		}
		p, err := params()
		if err != nil {
			t.Fatal(err)
		}
		e := s.EncoderFor(p)
		if e.f32 == nil {
			t.Fatal("no thresholds for a large F32 tensor")
		}
		if bad := s.EncoderFor(Params{LogMin: 1, LogMax: -1}); bad.f32 != nil {
			t.Error("thresholds built for invalid parameters, whose codes are not monotonic")
		}
		codes, signs := make([]uint8, n), make([]int8, n)
		e.Encode(raw, codes, signs)
		for i, v := range stored {
			if c := p.Code(math.Abs(v)); codes[i] != c || signs[i] != Sign(v) {
				t.Fatalf("%s: element %d (%v): %d/%d, formula %d/%d", rng, i, v, codes[i], signs[i], c, Sign(v))
			}
		}
	}
}

// checkEncode32 encodes magnitudes with random signs, a few non-finite
// values among them, through the kernels (AVX-512 where they run, and Go)
// and the whole encode pass, against the formula.
func checkEncode32(t *testing.T, f *f32Coder, mags []uint32, r *rand.Rand) {
	t.Helper()
	r.Shuffle(len(mags), func(i, j int) { mags[i], mags[j] = mags[j], mags[i] })
	n := min(len(mags), 5000)
	raw := make([]byte, 4*n)
	for i, u := range mags[:n] {
		if r.IntN(500) == 0 {
			u = 0x7f800000 | uint32(r.IntN(3)) // infinity or NaN
		}
		binary.LittleEndian.PutUint32(raw[4*i:], u|uint32(r.IntN(2))<<31)
	}
	want := func(i int) (uint8, int8) {
		v := float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
		s := make([]int8, 1) // as Signs gives it, also for a NaN
		Signs(dtype.F32, raw[4*i:4*i+4], s)
		return f.p.Code(math.Abs(v)), s[0]
	}
	for _, k := range []func(*[1 << 15]uint32, []byte, []uint8, []int8) int{encode32, encode32Fast} {
		codes, signs := make([]uint8, n), make([]int8, n)
		done := k(&f.bucket, raw, codes, signs)
		for i := range done {
			if c, s := want(i); codes[i] != c || signs[i] != s {
				t.Fatalf("%+v: kernel, element %d: %d/%d, formula %d/%d", f.p, i, codes[i], signs[i], c, s)
			}
		}
		if done < n&^15 && f.bucket[binary.LittleEndian.Uint32(raw[4*done:])>>16&0x7fff]&slowBucket == 0 {
			// It stopped at a block: one of its values must need f.code.
			slow := false
			for i := done; i < min(done+16, n); i++ {
				slow = slow || f.bucket[binary.LittleEndian.Uint32(raw[4*i:])>>16&0x7fff]&slowBucket != 0
			}
			if !slow {
				t.Fatalf("%+v: kernel stopped at %d of %d without a slow bucket", f.p, done, n)
			}
		}
	}
	codes, signs := make([]uint8, n), make([]int8, n)
	f.encode32(raw, codes, signs)
	for i := range n {
		if c, s := want(i); codes[i] != c || signs[i] != s {
			t.Fatalf("%+v: encode32, element %d: %d/%d, formula %d/%d", f.p, i, codes[i], signs[i], c, s)
		}
	}
}
