package convert

import (
	"context"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qins-dev/qins/convert/diff"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// TestI8RowRoundTrip converts in the i8 layout with one range per row
// (min/max and mse), restores to F32 and F64, and checks: each row's
// stored range is the min/max rule's (StoredRange of the row's range) or,
// for mse, StoredRange of MSEParamsLevels(127) on the row alone; each
// code is CodeI8 of the source weight with its row's range (0 for an
// exact zero); each restored value is the formula's, sign * exp(log_min
// + (127 - |c|)/126 * (log_max - log_min)) with the row's stored range,
// rounded once to the restored dtype; and diff reads those values.
func TestI8RowRoundTrip(t *testing.T) {
	for _, src := range []string{tinyDir, "../testdata/stories260K", smallSrc} {
		var include *regexp.Regexp
		if src == smallSrc {
			include = regexp.MustCompile(".") // the rank-1 norm too, and 1-element rows
		}
		t.Run(filepath.Base(src), func(t *testing.T) {
			sc := open(t, src)
			srcT := byName(sc)
			var total [2]float64
			for k, rng := range []qins.Range{qins.RangeMinMax, qins.RangeMSE} {
				dir := t.TempDir()
				q := filepath.Join(dir, "q.safetensors")
				r32, r64 := filepath.Join(dir, "r32.safetensors"), filepath.Join(dir, "r64.safetensors")
				opts := Options{Layout: qins.LayoutI8, Range: rng, Granularity: qins.GranularityRow, Include: include,
					WriteOptions: WriteOptions{ChunkBytes: 1000, Workers: 3}}
				s, err := Convert(context.Background(), src, q, opts)
				if err != nil {
					t.Fatal(err)
				}
				if s.Encoded == 0 || s.EncodedBytes <= s.EncodedElems {
					t.Fatalf("summary %+v: want a byte per weight and the ranges", s)
				}
				if _, err := Restore(context.Background(), q, r32, RestoreOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := Restore(context.Background(), q, r64, RestoreOptions{DType: dtype.F64}); err != nil {
					t.Fatal(err)
				}
				if d := diffOf(t, q, r32, diff.Options{}); !d.Total.Exact {
					t.Errorf("restored F32 differs from the QINS file's values: %+v", d.Total)
				}
				d, err := diff.Diff(context.Background(), src, q, diff.Options{})
				if err != nil {
					t.Fatal(err)
				}
				total[k] = float64(d.Total.RelRMSE)
				qc := open(t, q)
				if v := qc.Metadata[qins.VersionKey]; v != qins.VersionRational {
					t.Fatalf("version %q", v)
				}
				for _, tn := range qc.Tensors {
					if strings.HasSuffix(tn.Name, qins.SignsSuffix) || strings.HasSuffix(tn.Name, qins.SignBitsSuffix) {
						t.Fatalf("sign tensor %s in the i8 layout", tn.Name)
					}
				}
				ls, err := qins.Logicals(context.Background(), qc)
				if err != nil {
					t.Fatal(err)
				}
				b32, b64 := byName(open(t, r32)), byName(open(t, r64))
				encoded := 0
				for i := range ls {
					l := &ls[i]
					if !l.Encoded() {
						continue
					}
					encoded++
					if l.Layout != qins.LayoutI8 || l.Ranges == nil || l.Signs != nil {
						t.Fatalf("%s: layout %v, ranges %v, signs %v", l.Name, l.Layout, l.Ranges, l.Signs)
					}
					st := srcT[l.Name]
					x := values(t, st)
					raw := readAll(t, st)
					ps := rowRanges(t, l)
					checkI8Rows(t, l, st.DType, x, raw, ps, rng == qins.RangeMSE)
					codes, signs := make([]uint8, len(x)), make([]int8, len(x))
					var scratch []byte
					if err := l.ReadCodes(0, int64(len(x)), codes, signs, &scratch); err != nil {
						t.Fatal(err)
					}
					got32, got64 := values(t, b32[l.Name]), values(t, b64[l.Name])
					n := qins.RowLen(l.Shape)
					for j := range x {
						p, c := ps[int64(j)/n], int8(codes[j])
						want := 0.0
						if c != 0 {
							a := int(c)
							if a < 0 {
								a = -a
							}
							want = math.Exp(p.LogMin + float64(127-a)/126*(p.LogMax-p.LogMin))
							if c < 0 {
								want = -want
							}
						}
						if got64[j] != want || math.Signbit(got64[j]) != math.Signbit(want) {
							t.Fatalf("%s[%d]: code %d, row range %+v: F64 %v, want %v", l.Name, j, c, p, got64[j], want)
						}
						if w := float64(float32(want)); got32[j] != w || math.Signbit(got32[j]) != math.Signbit(w) {
							t.Fatalf("%s[%d]: code %d, row range %+v: F32 %v, want %v", l.Name, j, c, p, got32[j], w)
						}
					}
				}
				if encoded == 0 {
					t.Fatal("nothing encoded")
				}
			}
			if src != smallSrc && total[1] > total[0] {
				t.Errorf("rel_rmse %v with the mse range, %v with min/max", total[1], total[0])
			}
			t.Logf("rel_rmse: min/max %.5f, mse %.5f", total[0], total[1])
		})
	}
}

// checkI8Rows checks each row's stored range of the i8 per-row tensor l
// (source values x, stored bytes raw of dtype dt) and each code against
// CodeI8 with it.
func checkI8Rows(t *testing.T, l *qins.Logical, dt dtype.DType, x []float64, raw []byte, ps []quant.Params, mse bool) {
	t.Helper()
	n := qins.RowLen(l.Shape)
	size := int64(dt.Size())
	codes, signs := make([]uint8, len(x)), make([]int8, len(x))
	var scratch []byte
	if err := l.ReadCodes(0, int64(len(x)), codes, signs, &scratch); err != nil {
		t.Fatal(err)
	}
	var s *quant.Scanner // the row's counts, for mse
	if mse {
		var err error
		if s, err = quant.NewScanner(dt); err != nil {
			t.Fatal(err)
		}
	}
	for r, p := range ps {
		row := x[int64(r)*n : int64(r+1)*n]
		rg := quant.NewMagnitudes()
		rg.Add(row, 0)
		want, _ := rg.Params()
		want = quant.StoredRange(want)
		if mse && want.LogMin != want.LogMax {
			// Within the min/max range, and no worse than it.
			if p.LogMax != want.LogMax || p.LogMin < want.LogMin {
				t.Fatalf("%s row %d: mse range %+v outside the min/max %+v", l.Name, r, p, want)
			}
			if e, e0 := sqErr7(row, p), sqErr7(row, want); e > e0 {
				t.Fatalf("%s row %d: mse squared error %g above the min/max range's %g", l.Name, r, e, e0)
			}
			if dt != dtype.F16 && dt != dtype.BF16 || n > quant.ExactRowMax {
				want = p // the search on exact magnitudes, or the model: quant's tests
			} else {
				// A short 16-bit row: the scanner's search on the row.
				s.Reset()
				s.Scan(raw[int64(r)*n*size:int64(r+1)*n*size], 0)
				m, err := s.MSEParamsLevels(quant.Levels7)
				if err != nil {
					t.Fatal(err)
				}
				want = quant.StoredRange(m)
			}
		}
		if p != want {
			t.Fatalf("%s row %d: range %+v, want %+v", l.Name, r, p, want)
		}
		for k, v := range row {
			i := int64(r)*n + int64(k)
			if c := p.CodeI8(v); int8(codes[i]) != c || signs[i] != 1 {
				t.Fatalf("%s[%d] = %v: code %d (sign %d), formula %d with %+v", l.Name, i, v, int8(codes[i]), signs[i], c, p)
			}
		}
	}
}

// sqErr7 is the squared error of the values coded in the i8 form with p.
func sqErr7(vals []float64, p quant.Params) float64 {
	var e float64
	for _, x := range vals {
		if x != 0 {
			d := math.Abs(x) - math.Abs(p.ValueI8(p.CodeI8(x)))
			e += d * d
		}
	}
	return e
}
