package quant

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
)

// rowCases are rows that exercise the range rules: Normal-like weights with
// outliers and zeros, one magnitude, only tiny elements, only zeros.
func rowCases(r *rand.Rand) map[string][]float64 {
	normal := make([]float64, 3072)
	for i := range normal {
		normal[i] = 0.02 * r.NormFloat64()
		if i%97 == 0 {
			normal[i] *= 40 // outliers
		}
		if i%501 == 0 {
			normal[i] = 0
		}
	}
	normal[5] = 3e-9 // tiny: code 255
	// Magnitudes within two octaves: an F16 row that takes the histogram
	// of patterns (the others span more patterns than they have elements).
	narrow := make([]float64, 3072)
	rn := rand.New(rand.NewPCG(13, 14)) // r draws as before
	for i := range narrow {
		narrow[i] = (0.01 + 0.03*rn.Float64()) * float64(1-2*(i%3%2))
		if i%211 == 0 {
			narrow[i] = 0
		}
	}
	short := []float64{0.5, -0.25, 0.125, 0, -1e-9, 0.75, -0.01}
	return map[string][]float64{
		"normal":    normal,
		"narrow":    narrow,
		"short":     short,
		"equal":     {0.5, -0.5, 0, 0.5, -0.5, 1e-9},
		"all tiny":  {1e-9, -5e-9, 0, 2e-10},
		"all zero":  {0, math.Copysign(0, -1), 0},
		"one":       {-0.3},
		"wide":      {1e-7, 1, -1e3, 2e-7, 5},
		"lognormal": logNormal(r, 777),
	}
}

func logNormal(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.Exp(3*r.NormFloat64()) * float64(1-2*(i%2))
	}
	return v
}

// sqErr is the squared error of the row's values coded with p.
func sqErr(vals []float64, p Params) float64 {
	var e float64
	for _, x := range vals {
		if x == 0 {
			continue
		}
		d := math.Abs(x) - p.Magnitude(p.Code(math.Abs(x)))
		e += d * d
	}
	return e
}

func TestRowCoderFormula(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for name, vals := range rowCases(r) {
		for _, dt := range floatTypes {
			for _, mse := range []bool{false, true} {
				raw, stored := toRaw(t, dt, vals)
				rc, err := NewRowCoder(dt)
				if err != nil {
					t.Fatal(err)
				}
				codes, signs := make([]uint8, len(vals)), make([]int8, len(vals))
				p, err := rc.Encode(raw, 100, mse, codes, signs)
				if err != nil {
					t.Fatalf("%s %v: %v", name, dt, err)
				}
				// The range is the tensor rule's on this row, as stored.
				rg := NewMagnitudes()
				rg.Add(stored, 0)
				want, _ := rg.Params()
				want = StoredRange(want)
				if !mse && p != want {
					t.Errorf("%s %v: range %+v, want %+v", name, dt, p, want)
				}
				if p != StoredRange(p) || p.Validate() != nil {
					t.Errorf("%s %v mse=%v: range %+v is not a valid float32 range", name, dt, mse, p)
				}
				if p.LogMax != want.LogMax || p.LogMin < want.LogMin {
					t.Errorf("%s %v mse=%v: range %+v outside the min/max %+v", name, dt, mse, p, want)
				}
				for i, x := range stored {
					if c := p.Code(math.Abs(x)); codes[i] != c {
						t.Fatalf("%s %v mse=%v: element %d (%v) code %d, formula %d", name, dt, mse, i, x, codes[i], c)
					}
					if signs[i] != Sign(x) {
						t.Fatalf("%s %v: element %d sign %d, want %d", name, dt, i, signs[i], Sign(x))
					}
				}
				// Never worse than the row's min/max range, which is a
				// candidate.
				if e, e0 := sqErr(stored, p), sqErr(stored, want); e > e0 {
					t.Errorf("%s %v mse=%v: squared error %g above the min/max range's %g", name, dt, mse, e, e0)
				}
				// Nothing decodes above the row's largest magnitude.
				var maxA float64
				for _, x := range stored {
					maxA = max(maxA, math.Abs(x))
				}
				if m := p.Magnitude(1); maxA > Tiny && m > maxA {
					t.Errorf("%s %v: code 1 decodes to %v above the largest magnitude %v", name, dt, m, maxA)
				}
			}
		}
	}
}

// TestRowMSEGain checks that the chosen log_min is worth it: on Normal-like
// rows with outliers it beats min/max by a third over the rows, and stays
// within 3x of the best of a fine exact search on each row. (The exact
// error of such rows jumps with log_min, as a few outliers dominate it and
// happen to land near a code or not; the model follows its mean.)
func TestRowMSEGain(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F16, dtype.F32} {
		var sum, sum0 float64
		for k := 0; k < 20; k++ {
			vals := rowCases(r)["normal"]
			raw, stored := toRaw(t, dt, vals)
			rc, _ := NewRowCoder(dt)
			codes, signs := make([]uint8, len(vals)), make([]int8, len(vals))
			p0, _ := rc.Encode(raw, 0, false, codes, signs)
			p, _ := rc.Encode(raw, 0, true, codes, signs)
			e0, e := sqErr(stored, p0), sqErr(stored, p)
			best := e0
			for i := 1; i < 400; i++ {
				lmin := p0.LogMin + float64(i)/400*(p0.LogMax-p0.LogMin)
				best = min(best, sqErr(stored, StoredRange(Params{LogMin: lmin, LogMax: p0.LogMax})))
			}
			sum, sum0 = sum+e, sum0+e0
			if e > 3*best {
				t.Errorf("%v row %d: mse error %g more than 3x the exact search's %g", dt, k, e, best)
			}
		}
		if sum > sum0*2/3 {
			t.Errorf("%v: mse error %g over the rows, min/max %g", dt, sum, sum0)
		}
	}
}

func TestRowCoderNonFinite(t *testing.T) {
	for _, dt := range floatTypes {
		for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			vals := []float64{0.1, -0.2, bad, 0.3, bad}
			raw, _ := toRaw(t, dt, vals)
			rc, _ := NewRowCoder(dt)
			_, err := rc.Encode(raw, 40, true, make([]uint8, 5), make([]int8, 5))
			var nf *NonFiniteError
			if !errors.As(err, &nf) || nf.Index != 42 {
				t.Errorf("%v %v: error %v, want a NonFiniteError at 42", dt, bad, err)
			}
		}
	}
}

func TestStoredRange(t *testing.T) {
	for _, p := range []Params{{-9.123456789, -2.3456789012}, {-1, -1}, {0.1, 0.1}, {-20, 3.3}} {
		s := StoredRange(p)
		if s.LogMax > p.LogMax || float64(float32(s.LogMax)) != s.LogMax || float64(float32(s.LogMin)) != s.LogMin {
			t.Errorf("%+v: stored %+v", p, s)
		}
		if s.LogMin > s.LogMax || (p.LogMin == p.LogMax) != (s.LogMin == s.LogMax) {
			t.Errorf("%+v: stored %+v", p, s)
		}
	}
}

// TestRowCodes16 checks the per-row code kernels against the formula on
// logarithms at and a few ulps around the half-way points between codes,
// where a product by 1/d or float32 alone would round the other way, and
// far outside the range.
func TestRowCodes16(t *testing.T) {
	for _, top := range []float64{Levels8, Levels7} {
		r := rand.New(rand.NewPCG(7, 8))
		ties := 0
		for _, tc := range []struct{ lmin, d float64 }{{-17.3, 15.1}, {-9, 1e-9}, {0.5, 200}, {-3, 0.25}, {-11.09, 8.6}} {
			logs := make([]float64, 1003) // not a multiple of the kernel's blocks
			for i := range logs {
				switch i % 3 {
				case 0:
					k := float64(r.IntN(int(top)+45) - 20)
					l := tc.lmin + (k+0.5)*tc.d/(top-1)
					for range r.IntN(4) {
						l = math.Nextafter(l, math.Inf(2*r.IntN(2)-1))
					}
					logs[i] = l
				case 1:
					logs[i] = tc.lmin + (1.5*r.Float64()-0.25)*tc.d
				default:
					logs[i] = tc.lmin + (2*r.Float64()-1)*1e3*tc.d
				}
			}
			slices.Sort(logs) // as a row's patterns give them
			logs32 := make([]float32, len(logs))
			for i, l := range logs {
				logs32[i] = float32(l)
			}
			got := make([]uint8, len(logs))
			if n := rowCodes16Fast(logs, logs32, got, tc.lmin, tc.d, top); n != len(logs) {
				t.Fatalf("%v levels %+v: %d codes of %d", top, tc, n, len(logs))
			}
			inv, approx := 1/tc.d, 0
			for i, l := range logs {
				want := uint8(min(max(math.RoundToEven(top-(top-1)*(l-tc.lmin)/tc.d), 1), top))
				if top == Levels7 {
					// Params.Code7's own expression.
					want = uint8(min(max(math.RoundToEven(127-126*(l-tc.lmin)/tc.d), 1), 127))
				}
				if got[i] != want {
					t.Fatalf("%v levels %+v: log %v: code %d, formula %d", top, tc, l, got[i], want)
				}
				if uint8(min(max(math.RoundToEven(top-(top-1)*(l-tc.lmin)*inv), 1), top)) != want {
					approx++
				}
			}
			ties += approx
		}
		if ties == 0 {
			t.Errorf("%v levels: no logarithm where a product by 1/d rounds otherwise: the test misses the kernel's division", top)
		}
	}
}

// TestRowModelExact checks that the model on a long 16-bit row's
// histogram (integer sums) picks the range the model picks from the
// row's elements one by one (float sums).
func TestRowModelExact(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F16} {
		for k := 0; k < 30; k++ {
			vals := rowCases(r)["normal"]
			if k%3 == 1 {
				vals = logNormal(r, 4096+300*k) // several chunks of bucketSums
			}
			if k%3 == 2 { // subnormal and tiny magnitudes
				for i := range vals {
					vals[i] *= math.Exp(-8 * r.Float64() * float64(i%5))
				}
			}
			raw, _ := toRaw(t, dt, vals)
			rc, _ := NewRowCoder(dt)
			mx, mn := minMax16Fast(raw, rc.tinyH, 0, 0xffff)
			p0, _ := rc.range16(mx, mn)
			_, lo := minMax16Fast(raw, 0, 0, 0xffff)
			rc.counts = new([1 << 15]uint32)
			histogram16(raw, rc.counts)
			rc.counts[0] = 0
			got := rc.model16(p0, lo, mx, Levels8, len(vals))
			want := rc.MSERange(raw, p0)
			if got != want {
				t.Errorf("%v row %d: model on the histogram %+v, on the elements %+v", dt, k, got, want)
			}
		}
	}
}

// TestRowCoderReuse checks that a coder encoding row after row, of either
// range, gives each row what a new coder gives it.
func TestRowCoderReuse(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, dt := range floatTypes {
		rc, _ := NewRowCoder(dt)
		for k := 0; k < 40; k++ {
			var vals []float64
			for _, v := range rowCases(r) {
				vals = v
				if r.IntN(3) == 0 {
					break
				}
			}
			mse := k%2 == 0
			raw, _ := toRaw(t, dt, vals)
			codes, signs := make([]uint8, len(vals)), make([]int8, len(vals))
			p, err := rc.Encode(raw, 0, mse, codes, signs)
			fresh, _ := NewRowCoder(dt)
			codes1, signs1 := make([]uint8, len(vals)), make([]int8, len(vals))
			p1, err1 := fresh.Encode(raw, 0, mse, codes1, signs1)
			if err != nil || err1 != nil {
				if fmt.Sprint(err) != fmt.Sprint(err1) {
					t.Fatalf("%v row %d (mse %v): reused coder: %v, new coder: %v", dt, k, mse, err, err1)
				}
				continue
			}
			if p != p1 || !slices.Equal(codes, codes1) || !slices.Equal(signs, signs1) {
				t.Fatalf("%v row %d (mse %v): reused coder %+v %v, new coder %+v %v", dt, k, mse, p, err, p1, err1)
			}
		}
	}
}

// TestRowCodes16Edges: inputs no row gives (a subnormal width, whose
// reciprocal overflows; logarithms beyond float32; infinite ones) still get
// the formula's codes from the kernels, which once turned the NaN lanes
// they made into code 1.
func TestRowCodes16Edges(t *testing.T) {
	fill := func(n int, v float64) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = v
		}
		return s
	}
	d := 254 / 2.6e-34
	for _, tc := range []struct {
		name    string
		logs    []float64
		lmin, d float64
	}{
		{"subnormal width, 8", fill(8, 0), 0, 1e-310},
		{"subnormal width, 16", fill(16, 0), 0, 1e-310},
		{"logarithms beyond float32", fill(16, 1e39), 1e39 - d/2, d},
		{"+Inf logarithms", fill(16, math.Inf(1)), -3, 5},
		{"-Inf logarithms", fill(24, math.Inf(-1)), -3, 5},
	} {
		logs32 := make([]float32, len(tc.logs))
		for i, l := range tc.logs {
			logs32[i] = float32(l)
		}
		for _, top := range []float64{Levels8, Levels7} {
			got := make([]uint8, len(tc.logs))
			if n := rowCodes16Fast(tc.logs, logs32, got, tc.lmin, tc.d, top); n != len(got) {
				t.Fatalf("%s: %d codes of %d", tc.name, n, len(got))
			}
			for i, l := range tc.logs {
				if want := uint8(min(max(math.RoundToEven(top-(top-1)*(l-tc.lmin)/tc.d), 1), top)); got[i] != want {
					t.Errorf("%s, %v levels: element %d: code %d, want %d", tc.name, top, i, got[i], want)
					break
				}
			}
		}
	}
}

// sqErr7 is the squared error of the row's values coded in the i8 form
// with p.
func sqErr7(vals []float64, p Params) float64 {
	var e float64
	for _, x := range vals {
		if x == 0 {
			continue
		}
		d := math.Abs(x) - p.Magnitude7(int(p.Code7(math.Abs(x))))
		e += d * d
	}
	return e
}

// TestEncodeI8Rows checks the i8 form's rows: every code is the formula's
// with the returned stored range; the mse range keeps log_max, is never
// worse than the min/max range, and on short 16-bit rows equals the
// search of MSEParamsLevels on the row; a coder reused row after row gives
// what a new coder gives.
func TestEncodeI8Rows(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	cases := rowCases(r)
	cases["lognormal long"] = logNormal(r, 5000)
	cases["normal outliers long"] = cases["normal"]
	for _, dt := range floatTypes {
		reused, _ := NewRowCoder(dt)
		for name, vals := range cases {
			for _, mse := range []bool{false, true} {
				raw, stored := toRaw(t, dt, vals)
				rc, _ := NewRowCoder(dt)
				codes := make([]int8, len(vals))
				p, err := rc.EncodeI8(raw, 0, mse, codes)
				if err != nil {
					t.Fatalf("%s %v: %v", name, dt, err)
				}
				for i, x := range stored {
					if c := p.CodeI8(x); codes[i] != c {
						t.Fatalf("%s %v mse=%v: element %d (%v) code %d, formula %d", name, dt, mse, i, x, codes[i], c)
					}
				}
				again := make([]int8, len(vals))
				if p1, _ := reused.EncodeI8(raw, 0, mse, again); p1 != p || !slices.Equal(again, codes) {
					t.Fatalf("%s %v mse=%v: reused coder %+v, new coder %+v", name, dt, mse, p1, p)
				}
				rg := NewMagnitudes()
				rg.Add(stored, 0)
				raw0, _ := rg.Params()
				want := StoredRange(raw0)
				if !mse {
					if p != want {
						t.Errorf("%s %v: range %+v, want %+v", name, dt, p, want)
					}
					continue
				}
				if p.LogMax != want.LogMax || p.LogMin < want.LogMin || p != StoredRange(p) {
					t.Errorf("%s %v: mse range %+v outside the min/max %+v", name, dt, p, want)
				}
				if e, e0 := sqErr7(stored, p), sqErr7(stored, want); e > e0 {
					t.Errorf("%s %v: mse squared error %g above the min/max range's %g", name, dt, e, e0)
				}
				if len(vals) <= ExactRowMax && (dt == dtype.F16 || dt == dtype.BF16) {
					s, _ := NewScanner(dt)
					s.Scan(raw, 0)
					q, err := s.MSEParamsLevels(Levels7)
					if err != nil {
						t.Fatal(err)
					}
					if q = StoredRange(q); p != q {
						t.Errorf("%s %v: mse range %+v, the scanner's search %+v", name, dt, p, q)
					}
				}
			}
		}
	}
}

// TestCode7s checks the 7-bit codes of the row kernels against
// Params.Code7's expression on logarithms at and around every rounding
// tie, beyond the clamps, and for a width whose reciprocal overflows.
func TestCode7s(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for k := 0; k < 200; k++ {
		lmin := -20 + 20*r.Float64()
		d := math.Exp(-6 + 10*r.Float64())
		if k == 0 {
			d = 5e-324 // 126/d overflows
		}
		var logs []float64
		for c := -60; c <= 320; c++ {
			// Where the formula's value is c + 0.5, and around it.
			l := lmin + (127-(float64(c)+0.5))*d/126
			logs = append(logs, l, math.Nextafter(l, math.Inf(1)), math.Nextafter(l, math.Inf(-1)), l+1e-12, l-1e-12)
		}
		logs = append(logs, lmin-1e6, lmin+1e6, lmin-1e300, lmin+1e300)
		slices.Sort(logs) // as the tables' logarithms ascend
		logs32 := make([]float32, len(logs))
		for i, l := range logs {
			logs32[i] = float32(l)
		}
		tab := make([]uint8, len(logs))
		rowCodes16Fast(logs, logs32, tab, lmin, d, Levels7)
		for i, l := range logs {
			// Params.Code7 after its logarithm.
			want := uint8(min(max(math.RoundToEven(127-126*(l-lmin)/d), 1), 127))
			if tab[i] != want {
				t.Fatalf("lmin %v d %g log %v: table %d, formula %d", lmin, d, l, tab[i], want)
			}
		}
	}
}

// Long random rows of five kinds (Normal, log-normal over many octaves,
// many zeros, tiny elements among small ones, large values) in every
// dtype: the 8-bit and i8 codes are the formula's with the returned range,
// and the mse range is never worse than min/max. F16's and the log-normal
// BF16 rows take the element-by-element path (encodeSpread16).
func TestRowCoderRandomRows(t *testing.T) {
	r := rand.New(rand.NewPCG(77, 78))
	for it := range 150 {
		n := 513 + r.IntN(5000)
		vals := make([]float64, n)
		kind := it % 5
		for i := range vals {
			switch kind {
			case 0:
				vals[i] = r.NormFloat64() * 0.02
			case 1:
				vals[i] = math.Exp(6*r.NormFloat64()) * float64(1-2*(i%2))
			case 2:
				if r.IntN(3) > 0 {
					vals[i] = r.NormFloat64() * 1e-6
				}
			case 3:
				vals[i] = (r.Float64() - 0.5) * 1e-4
				if i%7 == 0 {
					vals[i] = 1e-9
				}
			case 4:
				vals[i] = r.NormFloat64() * 100
			}
		}
		for _, dt := range floatTypes {
			v := vals
			if dt == dtype.F16 { // within F16's range
				v = make([]float64, n)
				for i, x := range vals {
					v[i] = max(min(x, 6e4), -6e4)
				}
			}
			raw, stored := toRaw(t, dt, v)
			rc, _ := NewRowCoder(dt)
			rg := NewMagnitudes()
			rg.Add(stored, 0)
			p0, _ := rg.Params()
			p0 = StoredRange(p0)
			for _, mse := range []bool{false, true} {
				codes, signs := make([]uint8, n), make([]int8, n)
				p, err := rc.Encode(raw, 0, mse, codes, signs)
				if err != nil {
					t.Fatal(err)
				}
				for i, x := range stored {
					if c := p.Code(math.Abs(x)); codes[i] != c {
						t.Fatalf("row %d (kind %d) %v mse=%v: element %d (%v) code %d, formula %d", it, kind, dt, mse, i, x, codes[i], c)
					}
				}
				if e, e0 := sqErr(stored, p), sqErr(stored, p0); e > e0 {
					t.Fatalf("row %d (kind %d) %v: mse error %g above min/max %g", it, kind, dt, e, e0)
				}
				i8 := make([]int8, n)
				q, err := rc.EncodeI8(raw, 0, mse, i8)
				if err != nil {
					t.Fatal(err)
				}
				for i, x := range stored {
					if c := q.CodeI8(x); i8[i] != c {
						t.Fatalf("row %d (kind %d) %v i8 mse=%v: element %d (%v) code %d, formula %d", it, kind, dt, mse, i, x, i8[i], c)
					}
				}
			}
		}
	}
}
