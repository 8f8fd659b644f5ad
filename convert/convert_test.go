package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/qins-dev/qins/convert/diff"
	"github.com/qins-dev/qins/convert/internal/testfile"
	"github.com/qins-dev/qins/convert/internal/work"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

const tinyDir = "../testdata/phi-3.5-mini-tiny"

// realFixtures returns the real safetensors files of ../shared, or skips.
func realFixtures(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("../../shared/fixtures/real/*.safetensors")
	if len(files) == 0 {
		t.Skip("../shared/fixtures/real is not here")
	}
	return files
}

// values reads a floating-point tensor as float64.
func values(t *testing.T, ts format.Tensor) []float64 {
	t.Helper()
	raw := readAll(t, ts)
	read, err := dtype.Reader(ts.DType)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float64, ts.Elements())
	read(raw, v)
	return v
}

func readAll(t *testing.T, ts format.Tensor) []byte {
	t.Helper()
	b, err := io.ReadAll(ts.Section())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t *testing.T, path string) *format.Checkpoint {
	t.Helper()
	c, err := format.OpenCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func byName(c *format.Checkpoint) map[string]format.Tensor {
	m := make(map[string]format.Tensor)
	for _, t := range c.Tensors {
		m[t.Name] = t
	}
	return m
}

// checkRoundTrip converts src, restores it, and checks the QINS file and the
// restored file against the source.
func checkRoundTrip(t *testing.T, src string) {
	dir := t.TempDir()
	qf := filepath.Join(dir, "model.qins.safetensors")
	rf := filepath.Join(dir, "restored.safetensors")
	s, err := Convert(context.Background(), src, qf, Options{WriteOptions: WriteOptions{ChunkBytes: 1000}}) // small chunks: many per tensor
	if err != nil {
		t.Fatal(err)
	}
	srcC := open(t, src)
	if s.Encoded+s.Copied != len(srcC.Tensors) {
		t.Errorf("summary: %d encoded + %d copied, source has %d", s.Encoded, s.Copied, len(srcC.Tensors))
	}

	// The QINS file is a plain safetensors file to the library.
	whole, err := os.ReadFile(qf)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := safetensors.Deserialize(whole)
	if err != nil {
		t.Fatalf("nlpodyssey/safetensors cannot read the QINS file: %v", err)
	}
	q := open(t, qf)
	if q.Metadata["qins"] != "1" {
		t.Errorf(`metadata "qins" = %q`, q.Metadata["qins"])
	}
	for k, v := range srcC.Metadata {
		if q.Metadata[k] != v {
			t.Errorf("source metadata %q=%q lost", k, v)
		}
	}
	qt := byName(q)
	var encodedElems, dataBytes uint64
	for _, st := range srcC.Tensors {
		encode := st.DType.IsFloat() && len(st.Shape) >= 2
		if !encode {
			ct, ok := qt[st.Name]
			if !ok {
				t.Fatalf("copied tensor %s missing", st.Name)
			}
			if ct.DType != st.DType || string(readAll(t, ct)) != string(readAll(t, st)) {
				t.Errorf("copied tensor %s is not byte-identical", st.Name)
			}
			dataBytes += ct.Bytes()
			continue
		}
		codes, cok := lib.Tensor(st.Name + ".qins")
		signs, sok := lib.Tensor(st.Name + ".sign")
		if !cok || !sok {
			t.Fatalf("%s: codes or signs missing", st.Name)
		}
		if codes.DType().String() != "U8" || signs.DType().String() != "I8" ||
			!slices.Equal(codes.Shape(), st.Shape) || !slices.Equal(signs.Shape(), st.Shape) {
			t.Fatalf("%s: codes %v%v, signs %v%v; want U8 and I8 of shape %v", st.Name, codes.DType(), codes.Shape(), signs.DType(), signs.Shape(), st.Shape)
		}
		n := st.Elements()
		if codes.DataLen() != n || signs.DataLen() != n {
			t.Fatalf("%s: %d+%d bytes for %d elements", st.Name, codes.DataLen(), signs.DataLen(), n)
		}
		encodedElems += n
		dataBytes += 2 * n
		var m qins.EncodedMeta
		if err := json.Unmarshal([]byte(q.Metadata["qins:"+st.Name]), &m); err != nil {
			t.Fatalf("%s: metadata: %v", st.Name, err)
		}
		if m.DType != st.DType.String() {
			t.Errorf("%s: metadata dtype %q", st.Name, m.DType)
		}
		p := quant.Params{LogMin: m.LogMin, LogMax: m.LogMax}
		w := values(t, st)
		// log_min and log_max are those of the formula, to the last bit.
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range w {
			if a := math.Abs(x); a > quant.Tiny {
				lo, hi = math.Min(lo, math.Log(a)), math.Max(hi, math.Log(a))
			}
		}
		if !math.IsInf(lo, 1) && (lo != p.LogMin || hi != p.LogMax) {
			t.Errorf("%s: log range [%v, %v], formula gives [%v, %v]", st.Name, p.LogMin, p.LogMax, lo, hi)
		}
		cb, sb := codes.Data(), signs.Data()
		for i, x := range w {
			if c := p.Code(math.Abs(x)); cb[i] != c || int8(sb[i]) != quant.Sign(x) {
				t.Fatalf("%s[%d] = %v: stored code %d sign %d, formula %d %d", st.Name, i, x, cb[i], int8(sb[i]), c, quant.Sign(x))
			}
		}
	}
	if encodedElems == 0 && strings.Contains(src, "tiny") {
		t.Error("nothing encoded")
	}
	if q.Size() < int64(dataBytes) || q.Size() > int64(dataBytes)+1<<20 {
		t.Errorf("file is %d bytes for %d bytes of tensors", q.Size(), dataBytes)
	}

	// Restore: names, shapes and metadata back; values within the bound.
	if _, err := Restore(context.Background(), qf, rf, RestoreOptions{WriteOptions: WriteOptions{ChunkBytes: 999}}); err != nil {
		t.Fatal(err)
	}
	r := open(t, rf)
	if r.Metadata["qins"] != "" || len(r.Metadata) != len(srcC.Metadata) {
		t.Errorf("restored metadata %v, source %v", r.Metadata, srcC.Metadata)
	}
	rt := byName(r)
	if len(rt) != len(srcC.Tensors) {
		t.Errorf("restored %d tensors, source %d", len(rt), len(srcC.Tensors))
	}
	for _, st := range srcC.Tensors {
		got, ok := rt[st.Name]
		if !ok || !slices.Equal(got.Shape, st.Shape) {
			t.Fatalf("%s: missing or reshaped in the restore", st.Name)
		}
		if !st.DType.IsFloat() {
			if got.DType != st.DType || string(readAll(t, got)) != string(readAll(t, st)) {
				t.Errorf("%s: non-float tensor changed", st.Name)
			}
			continue
		}
		if got.DType != dtype.F32 {
			t.Fatalf("%s: restored as %v, want F32", st.Name, got.DType)
		}
		w, d := values(t, st), values(t, got)
		var m qins.EncodedMeta
		json.Unmarshal([]byte(q.Metadata["qins:"+st.Name]), &m)
		bound := (m.LogMax-m.LogMin)/508 + 1e-6
		for i := range w {
			switch {
			case w[i] == 0:
				if d[i] != 0 {
					t.Fatalf("%s[%d]: zero restored as %v", st.Name, i, d[i])
				}
			case math.Abs(w[i]) <= quant.Tiny:
				if quant.Sign(d[i]) != quant.Sign(w[i]) {
					t.Fatalf("%s[%d]: sign of %v lost: %v", st.Name, i, w[i], d[i])
				}
			case quant.Sign(d[i]) != quant.Sign(w[i]) || math.Abs(math.Log(math.Abs(d[i]))-math.Log(math.Abs(w[i]))) > bound:
				t.Fatalf("%s[%d]: %v restored as %v, beyond the bound %g", st.Name, i, w[i], d[i], bound)
			}
		}
	}
}

func TestRoundTripTiny(t *testing.T) { checkRoundTrip(t, tinyDir) }

func TestRoundTripRealFixtures(t *testing.T) {
	for _, f := range realFixtures(t) {
		t.Run(filepath.Base(f), func(t *testing.T) { checkRoundTrip(t, f) })
	}
}

func TestIncludeExclude(t *testing.T) {
	cases := []struct {
		name             string
		include, exclude string
		encoded          int
	}{
		{"default", "", "", 130},
		{"exclude embeddings", "", `embed_tokens|lm_head`, 128},
		{"include norms too", `weight$`, "", 195},
		{"include one layer", `^model\.layers\.3\.`, "", 6},
		{"include and exclude", `^model\.layers\.3\.`, `norm`, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := Options{}
			if c.include != "" {
				opts.Include = regexp.MustCompile(c.include)
			}
			if c.exclude != "" {
				opts.Exclude = regexp.MustCompile(c.exclude)
			}
			s, err := Convert(context.Background(), tinyDir, filepath.Join(t.TempDir(), "o.safetensors"), opts)
			if err != nil {
				t.Fatal(err)
			}
			if s.Encoded != c.encoded || s.Encoded+s.Copied != 195 {
				t.Errorf("%d encoded, %d copied; want %d encoded", s.Encoded, s.Copied, c.encoded)
			}
		})
	}
	_, err := Convert(context.Background(), tinyDir, filepath.Join(t.TempDir(), "o.safetensors"), Options{Include: regexp.MustCompile("nothing-matches")})
	if !errors.Is(err, ErrNoneSelected) || !strings.Contains(err.Error(), `the include pattern "nothing-matches" matches no floating-point tensor`) {
		t.Errorf("include matching nothing: %v", err)
	}
}

func TestRestoreDTypes(t *testing.T) {
	dir := t.TempDir()
	qf := filepath.Join(dir, "q.safetensors")
	if _, err := Convert(context.Background(), tinyDir, qf, Options{}); err != nil {
		t.Fatal(err)
	}
	f32 := filepath.Join(dir, "f32.safetensors")
	if _, err := Restore(context.Background(), qf, f32, RestoreOptions{DType: dtype.F32}); err != nil {
		t.Fatal(err)
	}
	ref := byName(open(t, f32))
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F16, dtype.F64} {
		out := filepath.Join(dir, dt.String()+".safetensors")
		if _, err := Restore(context.Background(), qf, out, RestoreOptions{DType: dt}); err != nil {
			t.Fatal(err)
		}
		for _, got := range open(t, out).Tensors {
			if got.DType != dt {
				t.Fatalf("%v: %s is %v", dt, got.Name, got.DType)
			}
			a, b := values(t, ref[got.Name]), values(t, got)
			for i := range a {
				if math.Abs(a[i]-b[i]) > math.Abs(a[i])*1e-2+0x1p-24 { // F16 subnormals are 2^-24 apart
					t.Fatalf("%v: %s[%d] = %v, F32 restore has %v", dt, got.Name, i, b[i], a[i])
				}
			}
		}
	}
}

// TestPackedLayout converts with both layouts: the packed file takes 1.125
// bytes per encoded element and restores bit-identically, and diff reads
// it the same way.
func TestPackedLayout(t *testing.T) {
	srcs := []string{tinyDir, smallSrc}
	if files, _ := filepath.Glob("../../shared/fixtures/real/*.safetensors"); len(files) > 0 {
		srcs = append(srcs, files...)
	}
	for _, src := range srcs {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{}
			var encodedElems uint64
			for _, layout := range []qins.Layout{qins.LayoutU8I8, qins.LayoutPacked} {
				q := filepath.Join(dir, layout.String()+".qins")
				r := filepath.Join(dir, layout.String()+".restored")
				if _, err := Convert(context.Background(), src, q, Options{WriteOptions: WriteOptions{ChunkBytes: 1000}, Layout: layout}); err != nil {
					t.Fatal(err)
				}
				if _, err := Restore(context.Background(), q, r, RestoreOptions{WriteOptions: WriteOptions{ChunkBytes: 999}}); err != nil {
					t.Fatal(err)
				}
				files[layout.String()], files[layout.String()+"r"] = q, r
				if layout == qins.LayoutPacked {
					c := open(t, q)
					var data uint64
					for _, ts := range c.Tensors {
						data += ts.Bytes()
						if strings.HasSuffix(ts.Name, qins.CodesSuffix) {
							encodedElems += ts.Elements()
						}
					}
					ls, err := qins.Logicals(context.Background(), c)
					if err != nil {
						t.Fatal(err)
					}
					var copied, packed uint64
					for _, l := range ls {
						if l.Encoded() {
							if l.Layout != qins.LayoutPacked {
								t.Fatalf("%s: layout %v", l.Name, l.Layout)
							}
							packed += l.Codes.Bytes() + l.Signs.Bytes()
							if want := l.Elements() + qins.SignBytes(l.Elements()); l.Codes.Bytes()+l.Signs.Bytes() != want {
								t.Errorf("%s: %d bytes, want %d", l.Name, l.Codes.Bytes()+l.Signs.Bytes(), want)
							}
						} else {
							copied += l.Plain.Bytes()
						}
					}
					if packed+copied != data {
						t.Errorf("data %d != packed %d + copied %d", data, packed, copied)
					}
				}
			}
			a, _ := os.ReadFile(files[qins.LayoutU8I8.String()+"r"])
			b, _ := os.ReadFile(files[qins.LayoutPacked.String()+"r"])
			if !bytes.Equal(a, b) {
				t.Error("the two layouts restore differently")
			}
			d1 := diffOf(t, src, files[qins.LayoutU8I8.String()], diff.Options{})
			d2 := diffOf(t, src, files[qins.LayoutPacked.String()], diff.Options{})
			if !reflect.DeepEqual(d1.Total.Stats, d2.Total.Stats) {
				t.Errorf("diff totals differ:\n%+v\n%+v", d1.Total, d2.Total)
			}
		})
	}
}

// TestMSERange checks --range mse: recorded in the metadata, decodable by
// the same decoder, log_max kept, and on every tensor of the real fixtures
// and the tiny checkpoint no worse than the min/max range.
func TestMSERange(t *testing.T) {
	srcs := []string{tinyDir}
	if files, _ := filepath.Glob("../../shared/fixtures/real/*.safetensors"); len(files) > 0 {
		srcs = append(srcs, files...)
	}
	for _, src := range srcs {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir := t.TempDir()
			mm, ms := filepath.Join(dir, "minmax"), filepath.Join(dir, "mse")
			if _, err := Convert(context.Background(), src, mm, Options{}); err != nil {
				t.Fatal(err)
			}
			if _, err := Convert(context.Background(), src, ms, Options{WriteOptions: WriteOptions{ChunkBytes: 1000}, Range: qins.RangeMSE}); err != nil {
				t.Fatal(err)
			}
			q := open(t, ms)
			ls, err := qins.Logicals(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range ls {
				if l.Encoded() && !strings.Contains(q.Metadata["qins:"+l.Name], `"range":"mse"`) {
					t.Fatalf("%s: metadata %s", l.Name, q.Metadata["qins:"+l.Name])
				}
			}
			d0, d1 := diffOf(t, src, mm, diff.Options{}), diffOf(t, src, ms, diff.Options{})
			better := 0
			for i := range d0.Tensors {
				a, b := d0.Tensors[i], d1.Tensors[i]
				if b.RelRMSE > a.RelRMSE*(1+1e-9) {
					t.Errorf("%s: rel_rmse %.5f with mse, %.5f with min/max", a.Name, b.RelRMSE, a.RelRMSE)
				}
				if b.RelRMSE < a.RelRMSE {
					better++
				}
			}
			if better == 0 {
				t.Error("the mse range improved no tensor")
			}
			t.Logf("total rel_rmse %.4f -> %.4f", d0.Total.RelRMSE, d1.Total.RelRMSE)
		})
	}
}

// TestRationalRoundTrip converts with the rational codec (--alpha 1 and
// the mse alpha), restores, and compares: the restored F32 values are what
// diff reads from the QINS file, zeros stay zeros of the same sign, no
// weight changes sign, and the mse alpha is no worse than alpha 1.
func TestRationalRoundTrip(t *testing.T) {
	for _, src := range []string{tinyDir, "../testdata/stories260K"} {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir := t.TempDir()
			var total [2]float64
			for k, opts := range []Options{{Codec: qins.CodecRational, Alpha: 1}, {Codec: qins.CodecRational, WriteOptions: WriteOptions{ChunkBytes: 1000}}} {
				q, r := filepath.Join(dir, fmt.Sprint(k, ".qins.safetensors")), filepath.Join(dir, fmt.Sprint(k, ".f32.safetensors"))
				s, err := Convert(context.Background(), src, q, opts)
				if err != nil {
					t.Fatal(err)
				}
				if s.Codec != qins.CodecRational || s.AlphaMSE != (opts.Alpha == 0) || s.AlphaMin <= 0 || s.EncodedBytes != s.EncodedElems {
					t.Fatalf("summary %+v", s)
				}
				c := open(t, q)
				if c.Metadata["qins"] != "3" {
					t.Fatalf("version %q", c.Metadata["qins"])
				}
				c.Close()
				if _, err := Restore(context.Background(), q, r, RestoreOptions{}); err != nil {
					t.Fatal(err)
				}
				if d := diffOf(t, q, r, diff.Options{}); !d.Total.Exact {
					t.Errorf("restored F32 differs from the QINS file's values: %+v", d.Total)
				}
				d := diffOf(t, src, q, diff.Options{})
				total[k] = float64(d.Total.RelRMSE)
				if dr := diffOf(t, src, r, diff.Options{}); float64(dr.Total.RelRMSE) != total[k] {
					t.Errorf("rel_rmse against the QINS file %v, against its restore %v", d.Total.RelRMSE, dr.Total.RelRMSE)
				}
				orig, back := open(t, src), open(t, r)
				want := byName(orig)
				for _, tb := range back.Tensors {
					ta, ok := want[tb.Name]
					if !ok || !ta.DType.IsFloat() {
						continue
					}
					a, b := values(t, ta), values(t, tb)
					for i := range a {
						switch {
						case a[i] == 0 && (b[i] != 0 || math.Signbit(a[i]) != math.Signbit(b[i])):
							t.Fatalf("%s[%d]: zero %v comes back as %v", tb.Name, i, a[i], b[i])
						case a[i] > 0 && b[i] < 0, a[i] < 0 && b[i] > 0:
							t.Fatalf("%s[%d]: %v comes back as %v", tb.Name, i, a[i], b[i])
						}
					}
				}
				orig.Close()
				back.Close()
			}
			if total[1] > total[0] {
				t.Errorf("rel_rmse %v with the mse alpha, %v with alpha 1", total[1], total[0])
			}
			t.Logf("rel_rmse: alpha 1 %.5f, mse alpha %.5f", total[0], total[1])
		})
	}
}

// TestI8RoundTrip converts in the i8 layout (min/max and mse ranges),
// restores, and compares: each restored F32 value is the formula's value
// of the source weight's i8 code (sign * code7, 0 for an exact zero), it
// is what diff reads from the QINS file, and the mse range is no worse.
func TestI8RoundTrip(t *testing.T) {
	for _, src := range []string{tinyDir, "../testdata/stories260K"} {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir := t.TempDir()
			var total [2]float64
			for k, opts := range []Options{{Layout: qins.LayoutI8}, {Layout: qins.LayoutI8, Range: qins.RangeMSE, WriteOptions: WriteOptions{ChunkBytes: 1000}}} {
				q, r := filepath.Join(dir, fmt.Sprint(k, ".qins.safetensors")), filepath.Join(dir, fmt.Sprint(k, ".f32.safetensors"))
				s, err := Convert(context.Background(), src, q, opts)
				if err != nil {
					t.Fatal(err)
				}
				if s.Encoded == 0 || s.EncodedBytes != s.EncodedElems {
					t.Fatalf("summary %+v: want one byte per encoded weight", s)
				}
				c := open(t, q)
				if c.Metadata["qins"] != "3" {
					t.Fatalf("version %q", c.Metadata["qins"])
				}
				params := map[string]quant.Params{}
				for k, v := range c.Metadata {
					if name, ok := strings.CutPrefix(k, qins.ParamsPrefix); ok {
						m, err := qins.ParseEncodedMeta(v)
						if err != nil || m.Layout != qins.LayoutI8 || m.Range != opts.Range {
							t.Fatalf("%s: %+v %v", k, m, err)
						}
						params[name] = quant.Params{LogMin: m.LogMin, LogMax: m.LogMax}
					}
				}
				for _, tn := range c.Tensors {
					if strings.HasSuffix(tn.Name, qins.SignsSuffix) || strings.HasSuffix(tn.Name, qins.SignBitsSuffix) {
						t.Fatalf("sign tensor %s in the i8 layout", tn.Name)
					}
				}
				c.Close()
				if _, err := Restore(context.Background(), q, r, RestoreOptions{}); err != nil {
					t.Fatal(err)
				}
				if d := diffOf(t, q, r, diff.Options{}); !d.Total.Exact {
					t.Errorf("restored F32 differs from the QINS file's values: %+v", d.Total)
				}
				d := diffOf(t, src, q, diff.Options{})
				total[k] = float64(d.Total.RelRMSE)
				orig, back := open(t, src), open(t, r)
				want := byName(orig)
				for _, tb := range back.Tensors {
					ta, ok := want[tb.Name]
					p, enc := params[tb.Name]
					if !ok || !enc {
						continue
					}
					a, b := values(t, ta), values(t, tb)
					for i := range a {
						if w := float64(float32(p.ValueI8(p.CodeI8(a[i])))); b[i] != w || math.Signbit(b[i]) != math.Signbit(w) {
							t.Fatalf("%s[%d]: %v comes back as %v, want %v", tb.Name, i, a[i], b[i], w)
						}
					}
				}
				orig.Close()
				back.Close()
			}
			if total[1] > total[0] {
				t.Errorf("rel_rmse %v with the mse range, %v with min/max", total[1], total[0])
			}
			t.Logf("rel_rmse: min/max %.5f, mse %.5f", total[0], total[1])
		})
	}
}

// TestRationalOptions: the rational codec refuses what it does not take.
func TestRationalOptions(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "q.safetensors")
	for _, opts := range []Options{
		{Codec: qins.CodecRational, Granularity: qins.GranularityRow, Alpha: 2},
		{Codec: qins.CodecRational, Layout: qins.LayoutPacked},
		{Codec: qins.CodecRational, Layout: qins.LayoutI8},
		{Codec: qins.CodecRational, Alpha: -1},
		{Codec: qins.CodecRational, Alpha: math.NaN()},
		{Codec: qins.CodecRational, Alpha: 1e300},
		{Alpha: 1},
	} {
		if _, err := Convert(context.Background(), tinyDir, dst, opts); err == nil {
			t.Errorf("%+v: no error", opts)
		}
	}
}

// TestConvertAnyChunkSize converts with chunks smaller than the 8 elements
// a step holds, and with odd sizes, to the same bytes as the default.
func TestConvertAnyChunkSize(t *testing.T) {
	dir := t.TempDir()
	want := filepath.Join(dir, "want.safetensors")
	if _, err := Convert(context.Background(), smallSrc, want, Options{}); err != nil {
		t.Fatal(err)
	}
	wb, _ := os.ReadFile(want)
	for _, chunk := range []int{1, 16, 33, 1000} {
		got := filepath.Join(dir, fmt.Sprintf("got-%d.safetensors", chunk))
		if _, err := Convert(context.Background(), smallSrc, got, Options{WriteOptions: WriteOptions{ChunkBytes: chunk, Workers: 3}}); err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if gb, _ := os.ReadFile(got); !bytes.Equal(gb, wb) {
			t.Errorf("chunk %d: output differs from the default chunk's", chunk)
		}
	}
}

// TestChunkSizeBoundsMemory checks that the default chunk shrinks as the
// workers grow, so that their buffers together stay bounded, and that an
// asked size and the largest tensor still rule.
func TestChunkSizeBoundsMemory(t *testing.T) {
	one := func(n uint64) *format.Checkpoint {
		return &format.Checkpoint{Tensors: []format.Tensor{{TensorInfo: format.TensorInfo{DType: dtype.BF16, Shape: []uint64{n}, End: 2 * n}}}}
	}
	big, small := one(1<<30), one(100)
	for _, tc := range []struct {
		asked, workers int
		c              *format.Checkpoint
		want           int
	}{
		{0, 1, big, work.DefaultChunkBytes},
		{0, 8, big, work.DefaultChunkBytes},
		{0, 16, big, 2 << 20},
		{0, 64, big, 512 << 10},
		{0, 1000, big, work.MinChunkBytes},
		{1000, 64, big, 1000},
		{64 << 20, 64, big, 64 << 20},
		{0, 4, small, 200},
		{3, 4, small, 8},
	} {
		if got := work.Workers(tc.workers).ChunkSize(tc.asked, tc.c); got != tc.want {
			t.Errorf("chunkSize(%d, %d workers, largest %d) = %d, want %d", tc.asked, tc.workers, tc.c.Tensors[0].Bytes(), got, tc.want)
		}
	}
}

// TestRestoreCastOverflow: a copied tensor whose values the restore dtype
// cannot hold is an error naming the tensor and the element, and leaves
// no output, instead of infinities.
func TestRestoreCastOverflow(t *testing.T) {
	dir := t.TempDir()
	src := testfile.Write(t, filepath.Join(dir, "src.safetensors"),
		testfile.T("norm", dtype.F32, []uint64{3}, []float64{1, -70000, 2}),
		testfile.T("w", dtype.F32, []uint64{2, 2}, []float64{1, -2, 3, 4}))
	q := filepath.Join(dir, "q.safetensors")
	if _, err := Convert(context.Background(), src, q, Options{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "r.safetensors")
	_, err := Restore(context.Background(), q, out, RestoreOptions{DType: dtype.F16})
	var ce *CastError
	var fe *format.Error
	if !errors.As(err, &ce) || ce.Index != 1 || ce.Value != -70000 || !errors.As(err, &fe) || fe.Tensor != "norm" {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output left behind: %v", err)
	}
	// BF16 holds it.
	if _, err := Restore(context.Background(), q, out, RestoreOptions{DType: dtype.BF16}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dt   dtype.DType
		v    float64
		over bool
	}{
		{dtype.F16, 65504, false}, {dtype.F16, 65519.99, false}, {dtype.F16, 65520, true}, {dtype.F16, math.Inf(1), false}, {dtype.F16, math.NaN(), false},
		{dtype.BF16, 3.38e38, false}, {dtype.BF16, -3.4e38, true},
		{dtype.F32, math.MaxFloat32, false}, {dtype.F32, 3.5e38, true}, {dtype.F64, math.MaxFloat64, false},
	} {
		if got := castOverflows(tc.dt)(tc.v); got != tc.over {
			t.Errorf("%v %g: overflows %v, want %v", tc.dt, tc.v, got, tc.over)
		}
	}
}

// TestCheckOrder: the output's problems are reported before the input's
// name clashes, as before the pipeline had one path.
func TestCheckOrder(t *testing.T) {
	dir := t.TempDir()
	src := testfile.Write(t, filepath.Join(dir, "clash.safetensors"),
		testfile.T("a", dtype.F32, []uint64{2, 2}, []float64{1, 2, 3, 4}),
		testfile.T("a.qins", dtype.F32, []uint64{2, 2}, []float64{1, 2, 3, 4}))
	for _, tc := range []struct {
		dst  string
		opts Options
		want string
	}{
		{src, Options{}, "is an input of this command"},
		{filepath.Join(dir, "x.safetensors"), Options{WriteOptions: WriteOptions{MaxShardBytes: 1000}}, "a shard size only applies to a folder output"},
		{filepath.Join(dir, "x.safetensors"), Options{}, "would be stored as \"a.qins\""},
	} {
		_, err := Convert(context.Background(), src, tc.dst, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.dst, err, tc.want)
		}
	}
}

// TestSideNames: a source tensor named like a part that the encoding of
// its neighbour does not have is kept and read back unchanged; one named
// like a part it has is refused before anything is written, whatever the
// part (NAME.alpha, the rational rows' part, included).
func TestSideNames(t *testing.T) {
	dir := t.TempDir()
	vals := make([]float64, 4*64)
	for i := range vals {
		vals[i] = float64(i%17-8) / 16
	}
	for _, tc := range []struct {
		name  string
		side  string
		side1 []uint64
		opts  Options
		clash bool
	}{
		{"i8 beside w.sign", "w.sign", []uint64{4, 64}, Options{Layout: qins.LayoutI8}, false},
		{"i8 beside w.signbits", "w.signbits", []uint64{4, 64}, Options{Layout: qins.LayoutI8}, false},
		{"rational beside w.sign", "w.sign", []uint64{4, 64}, Options{Codec: qins.CodecRational}, false},
		{"rational tensor beside w.alpha", "w.alpha", []uint64{4}, Options{Codec: qins.CodecRational}, false},
		{"rational rows beside w.alpha", "w.alpha", []uint64{4}, Options{Codec: qins.CodecRational, Granularity: qins.GranularityRow}, true},
		{"log rows beside w.logrange", "w.logrange", []uint64{4, 2}, Options{Layout: qins.LayoutPacked, Granularity: qins.GranularityRow}, true},
		{"packed beside w.sign", "w.sign", []uint64{4, 64}, Options{Layout: qins.LayoutPacked}, false},
		{"u8+i8 beside w.sign", "w.sign", []uint64{4, 64}, Options{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, _ := format.Elements(tc.side1)
			src := testfile.Write(t, filepath.Join(dir, tc.name+".safetensors"),
				testfile.T("w", dtype.F32, []uint64{4, 64}, vals),
				testfile.T(tc.side, dtype.F32, tc.side1, vals[:n]))
			dst := filepath.Join(dir, tc.name+".qins.safetensors")
			opts := tc.opts
			opts.Exclude = regexp.MustCompile(`^` + regexp.QuoteMeta(tc.side) + `$`)
			_, err := Convert(context.Background(), src, dst, opts)
			if tc.clash {
				var clash *NameClashError
				if !errors.As(err, &clash) || clash.Stored != tc.side {
					t.Fatalf("got %v, want a clash on %s", err, tc.side)
				}
				if _, err := os.Stat(dst); !os.IsNotExist(err) {
					t.Fatalf("%s written (%v)", dst, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, tc.name+".f32.safetensors")
			if _, err := Restore(context.Background(), dst, out, RestoreOptions{}); err != nil {
				t.Fatalf("restoring its own output: %v", err)
			}
			c, err := format.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, ok := c.Tensor(tc.side)
			if !ok || !slices.Equal(got.Shape, tc.side1) {
				t.Fatalf("restored %s: %v", tc.side, got)
			}
		})
	}
}

// TestNonFiniteRefused checks that a NaN or an infinity deep in a tensor of
// many steps is refused by every encoding, naming the tensor and the
// element, with no output left: the rational codec with a given alpha
// takes no range pass and checks each step as it encodes it.
func TestNonFiniteRefused(t *testing.T) {
	const n = 8 * 1024
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F16, dtype.F32, dtype.F64} {
		for _, bad := range []float64{math.NaN(), math.Inf(-1)} {
			for _, opts := range []Options{
				{},
				{Layout: qins.LayoutPacked, Range: qins.RangeMSE},
				{Layout: qins.LayoutI8},
				{Layout: qins.LayoutPacked, Granularity: qins.GranularityRow, Range: qins.RangeMSE},
				{Codec: qins.CodecRational, Alpha: 1},
				{Codec: qins.CodecRational},
				{Codec: qins.CodecRational, Granularity: qins.GranularityRow},
			} {
				dir := t.TempDir()
				vals := make([]float64, n)
				for i := range vals {
					vals[i] = float64(i%97-48) / 64
				}
				at := n - 1000
				withBad := slices.Clone(vals)
				withBad[at] = bad
				src := testfile.Write(t, filepath.Join(dir, "src.safetensors"),
					testfile.T("ok", dt, []uint64{64, 128}, vals),
					testfile.T("bad", dt, []uint64{64, 128}, withBad))
				dst := filepath.Join(dir, "out.safetensors")
				opts.ChunkBytes, opts.Workers = 1024, 3
				_, err := convertTo(context.Background(), src, dst, opts)
				name := fmt.Sprintf("%v %v %+v", dt, bad, opts)
				if err == nil || !strings.Contains(err.Error(), `"bad"`) {
					t.Errorf("%s: error %v, want one naming tensor \"bad\"", name, err)
				} else if want := fmt.Sprintf("element %d is %v", at, bad); !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %v, want %q", name, err, want)
				}
				if _, err := os.Stat(dst); !os.IsNotExist(err) {
					t.Errorf("%s: output left behind (%v)", name, err)
				}
			}
		}
	}
}
