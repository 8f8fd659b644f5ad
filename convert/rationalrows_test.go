package convert

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/qins-dev/qins/convert/diff"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// TestRationalRowRoundTrip converts with the rational codec and one alpha
// per row, restores to F32 and F64, and checks: version 4; each row's
// alpha is the one quant.RationalRowCoder chooses for that row alone
// (whatever the steps, chunks and goroutines), and the tensor's alpha the
// least of its rows'; each code is RationalCode of the source weight with
// its row's alpha; each restored value is RationalValue of its code with
// the row's alpha, rounded once to the restored dtype; and the weights
// are closer to the source than with one alpha per tensor.
func TestRationalRowRoundTrip(t *testing.T) {
	for _, src := range []string{tinyDir, "../testdata/stories260K", smallSrc} {
		var include *regexp.Regexp
		if src == smallSrc {
			include = regexp.MustCompile(".") // the rank-1 norm too, 1-element rows, rows of zeros
		}
		t.Run(filepath.Base(src), func(t *testing.T) {
			sc := open(t, src)
			srcT := byName(sc)
			dir := t.TempDir()
			q := filepath.Join(dir, "q.safetensors")
			r32, r64 := filepath.Join(dir, "r32.safetensors"), filepath.Join(dir, "r64.safetensors")
			opts := Options{Codec: qins.CodecRational, Granularity: qins.GranularityRow, Include: include,
				WriteOptions: WriteOptions{ChunkBytes: 1000, Workers: 3}}
			s, err := Convert(context.Background(), src, q, opts)
			if err != nil {
				t.Fatal(err)
			}
			if s.Encoded == 0 || !s.AlphaRows || !s.AlphaMSE || s.AlphaMin > s.AlphaMax {
				t.Fatalf("summary %+v", s)
			}
			// The same bytes with the default chunks and goroutines.
			q2 := filepath.Join(dir, "q2.safetensors")
			opts.WriteOptions = WriteOptions{}
			if _, err := Convert(context.Background(), src, q2, opts); err != nil {
				t.Fatal(err)
			}
			if a, b := readFile(t, q), readFile(t, q2); !bytes.Equal(a, b) {
				t.Fatal("the output depends on the chunks and goroutines")
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
			qc := open(t, q)
			if v := qc.Metadata[qins.VersionKey]; v != qins.VersionRationalRows {
				t.Fatalf("version %q", v)
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
				if l.Codec != qins.CodecRational || l.Ranges == nil || l.Signs != nil {
					t.Fatalf("%s: codec %v, alphas %v, signs %v", l.Name, l.Codec, l.Ranges, l.Signs)
				}
				st := srcT[l.Name]
				x, raw := values(t, st), readAll(t, st)
				n := qins.RowLen(l.Shape)
				rows := qins.Rows(l.Shape)
				alphas := make([]float64, rows)
				var scratch []byte
				if err := l.RowAlphas(0, alphas, &scratch); err != nil {
					t.Fatal(err)
				}
				codes, signs := make([]uint8, len(x)), make([]int8, len(x))
				if err := l.ReadCodes(0, int64(len(x)), codes, signs, &scratch); err != nil {
					t.Fatal(err)
				}
				rc, err := quant.NewRationalRowCoder(st.DType)
				if err != nil {
					t.Fatal(err)
				}
				least := math.Inf(1)
				size := int64(st.DType.Size())
				got32, got64 := values(t, b32[l.Name]), values(t, b64[l.Name])
				for r, a := range alphas {
					least = min(least, a)
					want, err := rc.Encode(raw[int64(r)*n*size:int64(r+1)*n*size], 0, make([]uint8, n))
					if err != nil || float64(want) != a {
						t.Fatalf("%s row %d: alpha %v, the row coder's %v (%v)", l.Name, r, a, want, err)
					}
					for k := range n {
						i := int64(r)*n + k
						if c := quant.RationalCode(x[i], float32(a)); codes[i] != c {
							t.Fatalf("%s[%d] = %v: code %d, RationalCode %d with the row's alpha %v", l.Name, i, x[i], codes[i], c, a)
						}
						v := quant.RationalValue(codes[i], a)
						if got64[i] != v || math.Signbit(got64[i]) != math.Signbit(v) {
							t.Fatalf("%s[%d]: F64 %v, want %v", l.Name, i, got64[i], v)
						}
						if w := float64(float32(v)); got32[i] != w || math.Signbit(got32[i]) != math.Signbit(w) {
							t.Fatalf("%s[%d]: F32 %v, want %v", l.Name, i, got32[i], w)
						}
					}
				}
				if rows == 0 {
					least = 1
				}
				if l.Alpha != least {
					t.Errorf("%s: tensor alpha %v, the least of its rows' %v", l.Name, l.Alpha, least)
				}
			}
			if encoded == 0 {
				t.Fatal("nothing encoded")
			}
			if src == smallSrc {
				return
			}
			// Closer than one alpha per tensor.
			qt := filepath.Join(dir, "qt.safetensors")
			if _, err := Convert(context.Background(), src, qt, Options{Codec: qins.CodecRational}); err != nil {
				t.Fatal(err)
			}
			row, tensor := diffOf(t, src, q, diff.Options{}), diffOf(t, src, qt, diff.Options{})
			t.Logf("rel_rmse: an alpha per row %.5f, per tensor %.5f", row.Total.RelRMSE, tensor.Total.RelRMSE)
			if row.Total.RelRMSE >= tensor.Total.RelRMSE {
				t.Errorf("rel_rmse %v with an alpha per row, %v with one per tensor", row.Total.RelRMSE, tensor.Total.RelRMSE)
			}
		})
	}
}

// TestRationalRowEmpty: tensors of no elements get alpha 1 for each of
// their rows (rows of no elements) or no alphas (no rows), beside a
// tensor with data and in chunks of many sizes, and read back.
func TestRationalRowEmpty(t *testing.T) {
	put, _ := dtype.Putter(dtype.BF16)
	data := make([]byte, 2*24)
	for i := range 24 {
		put(data, i, float64(i%7)-3.25)
	}
	specs := []rawSpec{{"w", dtype.BF16, []uint64{4, 6}, data}}
	for i, sh := range [][]uint64{{5, 0}, {0, 5}, {3, 0, 5}, {0, 0}, {2, 3, 0}, {0}} {
		specs = append(specs, rawSpec{"e" + string(rune('0'+i)), dtype.F32, sh, nil})
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.safetensors")
	writeRaw(t, src, specs...)
	for _, chunk := range []int{0, 8, 1000} {
		q, r := filepath.Join(dir, "q.safetensors"), filepath.Join(dir, "r.safetensors")
		opts := Options{WriteOptions: WriteOptions{ChunkBytes: chunk, Workers: 2, Force: true}, Codec: qins.CodecRational, Granularity: qins.GranularityRow, Include: regexp.MustCompile(".")}
		if _, err := Convert(context.Background(), src, q, opts); err != nil {
			t.Fatal(err)
		}
		ls, err := qins.Logicals(context.Background(), open(t, q))
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != len(specs) {
			t.Fatalf("%d tensors, want %d", len(ls), len(specs))
		}
		for i := range ls {
			l := &ls[i]
			if !l.Encoded() || l.Ranges == nil {
				t.Fatalf("%s: not encoded with an alpha per row", l.Name)
			}
			alphas := make([]float64, qins.Rows(l.Shape))
			var raw []byte
			if err := l.RowAlphas(0, alphas, &raw); err != nil {
				t.Fatal(err)
			}
			if l.Name == "w" {
				continue
			}
			for k, a := range alphas {
				if a != 1 {
					t.Errorf("%s row %d: alpha %v, want 1", l.Name, k, a)
				}
			}
			if l.Alpha != 1 {
				t.Errorf("%s: alpha %v, want 1", l.Name, l.Alpha)
			}
		}
		if _, err := Restore(context.Background(), q, r, RestoreOptions{WriteOptions: WriteOptions{Force: true}}); err != nil {
			t.Fatal(err)
		}
		if _, err := Inspect(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
