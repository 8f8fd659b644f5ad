package convert

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qins-dev/qins/convert/diff"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// rowRanges reads every row's range of a per-row tensor.
func rowRanges(t *testing.T, l *qins.Logical) []quant.Params {
	t.Helper()
	ps := make([]quant.Params, qins.Rows(l.Shape))
	var raw []byte
	if err := l.RowRanges(0, ps, &raw); err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestRowGranularity converts with one range per row, every layout and
// range, and checks each code against the formula with its row's stored
// range, the rows' ranges against the min/max rule, mse against min/max
// row by row, and that restore, diff's reader (which eval uses) and the
// decode formula agree.
func TestRowGranularity(t *testing.T) {
	for _, src := range []string{tinyDir, "../testdata/stories260K", smallSrc} {
		var include *regexp.Regexp
		if src == smallSrc {
			include = regexp.MustCompile(".") // the rank-1 norm too, and 1-element rows
		}
		sc := open(t, src)
		srcT := byName(sc)
		for _, layout := range []qins.Layout{qins.LayoutU8I8, qins.LayoutPacked} {
			rowErr := map[qins.Range][]float64{} // per range, per tensor's rows: squared error
			for _, rng := range []qins.Range{qins.RangeMinMax, qins.RangeMSE} {
				t.Run(filepath.Base(src)+"/"+layout.String()+"/"+rng.String(), func(t *testing.T) {
					dir := t.TempDir()
					q, r := filepath.Join(dir, "q.safetensors"), filepath.Join(dir, "r.safetensors")
					s, err := Convert(context.Background(), src, q, Options{WriteOptions: WriteOptions{ChunkBytes: 1000, Workers: 3}, Layout: layout, Range: rng, Granularity: qins.GranularityRow, Include: include})
					if err != nil {
						t.Fatal(err)
					}
					if s.EncodedElems == 0 || s.EncodedBytes <= s.EncodedElems {
						t.Errorf("summary: %d bytes for %d weights", s.EncodedBytes, s.EncodedElems)
					}
					if _, err := Restore(context.Background(), q, r, RestoreOptions{}); err != nil {
						t.Fatal(err)
					}
					qc := open(t, q)
					if qc.Metadata[qins.VersionKey] != qins.VersionRows {
						t.Fatalf("version %q", qc.Metadata[qins.VersionKey])
					}
					ls, err := qins.Logicals(context.Background(), qc)
					if err != nil {
						t.Fatal(err)
					}
					restored := byName(open(t, r))
					ts, err := qins.Open(context.Background(), q)
					if err != nil {
						t.Fatal(err)
					}
					defer ts.Close()
					for i := range ls {
						l := &ls[i]
						if !l.Encoded() {
							continue
						}
						if l.Ranges == nil {
							t.Fatalf("%s: no per-row ranges", l.Name)
						}
						errs := checkRows(t, l, values(t, srcT[l.Name]), rowRanges(t, l), rng == qins.RangeMSE)
						rowErr[rng] = append(rowErr[rng], errs...)
						got := values(t, restored[l.Name])
						viaDiff := make([]float32, len(got))
						if err := ts.ReadFloat32(context.Background(), l.Name, 0, viaDiff); err != nil {
							t.Fatal(err)
						}
						for k := range got {
							if float32(got[k]) != viaDiff[k] {
								t.Fatalf("%s[%d]: restore %v, diff's reader %v", l.Name, k, got[k], viaDiff[k])
							}
						}
						checkDecoded(t, l, values(t, srcT[l.Name]), rowRanges(t, l), got)
					}
				})
			}
			mm, ms := rowErr[qins.RangeMinMax], rowErr[qins.RangeMSE]
			var better int
			for k := range ms {
				if ms[k] > mm[k]*(1+1e-12) {
					t.Errorf("%s %s: row %d: mse error %g above min/max %g", src, layout, k, ms[k], mm[k])
				}
				if ms[k] < mm[k] {
					better++
				}
			}
			if src != smallSrc && better == 0 {
				t.Errorf("%s %s: mse improved no row", src, layout)
			}
		}
	}
}

// checkRows checks the codes of l's elements against the formula with
// each row's stored range, and the ranges against the min/max rule; it
// returns each row's squared error.
func checkRows(t *testing.T, l *qins.Logical, src []float64, ps []quant.Params, mse bool) []float64 {
	t.Helper()
	n := qins.RowLen(l.Shape)
	codes, signs := make([]uint8, len(src)), make([]int8, len(src))
	var scratch []byte
	if err := l.ReadCodes(0, int64(len(src)), codes, signs, &scratch); err != nil {
		t.Fatal(err)
	}
	errs := make([]float64, len(ps))
	for r, p := range ps {
		row := src[int64(r)*n : int64(r+1)*n]
		rg := quant.NewMagnitudes()
		rg.Add(row, 0)
		want, _ := rg.Params()
		want = quant.StoredRange(want)
		if p.LogMax != want.LogMax || (!mse && p != want) || p.LogMin < want.LogMin || p.LogMin > p.LogMax {
			t.Fatalf("%s row %d: range %+v, min/max %+v", l.Name, r, p, want)
		}
		for k, x := range row {
			i := int64(r)*n + int64(k)
			if c := p.Code(math.Abs(x)); codes[i] != c || signs[i] != quant.Sign(x) {
				t.Fatalf("%s[%d]: code %d sign %d, formula %d %d", l.Name, i, codes[i], signs[i], c, quant.Sign(x))
			}
			if x != 0 {
				d := math.Abs(x) - p.Magnitude(codes[i])
				errs[r] += d * d
			}
		}
	}
	return errs
}

// checkDecoded checks restored F32 values against the decode formula with
// each row's range.
func checkDecoded(t *testing.T, l *qins.Logical, src []float64, ps []quant.Params, got []float64) {
	t.Helper()
	n := qins.RowLen(l.Shape)
	for i, x := range src {
		p := ps[int64(i)/n]
		want := 0.0
		if x != 0 {
			want = float64(float32(float64(quant.Sign(x)) * p.Magnitude(p.Code(math.Abs(x)))))
		}
		if got[i] != want {
			t.Fatalf("%s[%d]: restored %v, want %v", l.Name, i, got[i], want)
		}
	}
}

// TestRowRangesHostile rewrites one row's range of a per-row file into
// values no converter writes: restore, inspect and diff must each fail
// with one error naming the file and the tensor, and restore leave nothing.
func TestRowRangesHostile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	if _, err := Convert(context.Background(), smallSrc, good, Options{Granularity: qins.GranularityRow, Include: regexp.MustCompile("^model.f16$")}); err != nil {
		t.Fatal(err)
	}
	c := open(t, good)
	raw, _ := os.ReadFile(good)
	off := fileOffset(t, c, "model.f16"+qins.RangesSuffix)
	f32 := func(v float64) []byte { return binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(v))) }
	cases := []struct {
		name     string
		row      int // which row
		lo, hi   []byte
		wantText string
	}{
		{"NaN log_min", 1, f32(math.NaN()), nil, "finite"},
		{"infinite log_max", 0, nil, f32(math.Inf(1)), "finite"},
		{"log_min above log_max", 1, f32(5), f32(-5), "greater than"},
		{"beyond F16", 0, f32(-1), f32(12), "beyond the largest F16"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), raw...)
			if tc.lo != nil {
				copy(b[off+int64(8*tc.row):], tc.lo)
			}
			if tc.hi != nil {
				copy(b[off+int64(8*tc.row)+4:], tc.hi)
			}
			d := t.TempDir()
			in := filepath.Join(d, "bad.safetensors")
			if err := os.WriteFile(in, b, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(d, "out.safetensors")
			_, rerr := Restore(context.Background(), in, out, RestoreOptions{})
			_, ierr := Inspect(context.Background(), in)
			_, derr := diff.Diff(context.Background(), smallSrc, in, diff.Options{})
			for what, err := range map[string]error{"restore": rerr, "inspect": ierr, "diff": derr} {
				if err == nil {
					t.Fatalf("%s accepted it", what)
				}
				if msg := err.Error(); !strings.Contains(msg, in) || !strings.Contains(msg, "model.f16") || !strings.Contains(msg, tc.wantText) || strings.Count(msg, "\n") > 0 {
					t.Errorf("%s: %q, want the file, the tensor and %q", what, msg, tc.wantText)
				}
			}
			if ents, _ := os.ReadDir(d); len(ents) != 1 {
				t.Errorf("restore left %d files", len(ents))
			}
		})
	}
}

// fileOffset returns where tensor name's data starts in c's only file.
func fileOffset(t *testing.T, c *format.Checkpoint, name string) int64 {
	t.Helper()
	raw, err := os.ReadFile(c.Path)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(binary.LittleEndian.Uint64(raw))
	for _, ts := range c.Tensors {
		if ts.Name == name {
			return 8 + n + int64(ts.Begin)
		}
	}
	t.Fatalf("no tensor %s", name)
	return 0
}

// TestRowGranularityEmptyTensors converts tensors of no elements, of rows
// (a last dimension of 0) or of none, with one range per row, in every
// layout and range, beside a tensor with data and in chunks of many
// sizes: each row of no elements has the range (0, 0), as an empty tensor
// has, and restore, diff and inspect read the file.
func TestRowGranularityEmptyTensors(t *testing.T) {
	put, _ := dtype.Putter(dtype.BF16)
	data := make([]byte, 2*24)
	for i := range 24 {
		put(data, i, float64(i%7)-3.25)
	}
	shapes := [][]uint64{{5, 0}, {0, 5}, {3, 0, 5}, {0, 0}, {2, 3, 0}, {0}}
	specs := []rawSpec{{"w", dtype.BF16, []uint64{4, 6}, data}}
	for i, sh := range shapes {
		specs = append(specs, rawSpec{"e" + string(rune('0'+i)), dtype.F32, sh, nil})
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.safetensors")
	writeRaw(t, src, specs...)
	for _, layout := range []qins.Layout{qins.LayoutU8I8, qins.LayoutPacked} {
		for _, rng := range []qins.Range{qins.RangeMinMax, qins.RangeMSE} {
			for _, chunk := range []int{0, 8, 1000} {
				name := layout.String() + "/" + rng.String() + "/" + strconv.Itoa(chunk)
				t.Run(name, func(t *testing.T) {
					d := t.TempDir()
					q, r := filepath.Join(d, "q.safetensors"), filepath.Join(d, "r.safetensors")
					opts := Options{WriteOptions: WriteOptions{ChunkBytes: chunk, Workers: 2}, Layout: layout, Range: rng, Granularity: qins.GranularityRow, Include: regexp.MustCompile(".")}
					s, err := Convert(context.Background(), src, q, opts)
					if err != nil {
						t.Fatal(err)
					}
					if s.Encoded != len(specs) {
						t.Errorf("%d encoded, want %d", s.Encoded, len(specs))
					}
					qc := open(t, q)
					if v := qc.Metadata[qins.VersionKey]; v != qins.VersionRows {
						t.Errorf("version %q", v)
					}
					ls, err := qins.Logicals(context.Background(), qc)
					if err != nil {
						t.Fatal(err)
					}
					for i := range ls {
						l := &ls[i]
						if l.Ranges == nil {
							t.Fatalf("%s: no per-row ranges", l.Name)
						}
						if l.Name == "w" {
							continue
						}
						if l.Params != (quant.Params{}) {
							t.Errorf("%s: envelope %+v, want (0, 0)", l.Name, l.Params)
						}
						for k, p := range rowRanges(t, l) {
							if p != (quant.Params{}) {
								t.Errorf("%s: row %d range %+v, want (0, 0)", l.Name, k, p)
							}
						}
					}
					if _, err := Restore(context.Background(), q, r, RestoreOptions{}); err != nil {
						t.Fatal(err)
					}
					rc := byName(open(t, r))
					for _, sp := range specs[1:] {
						if got := rc[sp.name]; !slices.Equal(got.Shape, sp.shape) || got.DType != dtype.F32 || got.Bytes() != 0 {
							t.Errorf("%s restored as %v %v", sp.name, got.DType, got.Shape)
						}
					}
					if rep := diffOf(t, q, r, diff.Options{}); !rep.OK() || !rep.Total.Exact || rep.Total.Elements != 24 || len(rep.Tensors) != len(specs) {
						t.Errorf("diff: %d elements in %d tensors", rep.Total.Elements, len(rep.Tensors))
					}
					ir, err := Inspect(context.Background(), q)
					if err != nil {
						t.Fatal(err)
					}
					if ir.Total.Encoded != len(specs) {
						t.Errorf("inspect: %d encoded", ir.Total.Encoded)
					}
				})
			}
		}
	}
}

// TestRowVersion checks that the format version is the least that
// describes the output: 2 only when a tensor has per-row ranges, 1 when
// --granularity row encodes nothing, and in a folder of shards, the
// version of the whole checkpoint in every shard, even one without a
// per-row tensor (issue 23).
func TestRowVersion(t *testing.T) {
	put, _ := dtype.Putter(dtype.F32)
	f32 := make([]byte, 4*24)
	for i := range 24 {
		put(f32, i, float64(i)-11.5)
	}
	ints := make([]byte, 8*64)
	for i := range 64 {
		binary.LittleEndian.PutUint64(ints[8*i:], uint64(i))
	}
	dir := t.TempDir()
	mixed, onlyInts := filepath.Join(dir, "mixed.safetensors"), filepath.Join(dir, "ints.safetensors")
	writeRaw(t, mixed, rawSpec{"ids", dtype.I64, []uint64{64}, ints}, rawSpec{"mask", dtype.U8, []uint64{4}, []byte{1, 0, 1, 1}}, rawSpec{"w", dtype.F32, []uint64{4, 6}, f32})
	writeRaw(t, onlyInts, rawSpec{"ids", dtype.I64, []uint64{64}, ints}, rawSpec{"mask", dtype.U8, []uint64{4}, []byte{1, 0, 1, 1}})
	none := regexp.MustCompile(".")
	for _, tc := range []struct {
		name, src   string
		opts        Options
		version     string
		encoded     int
		folderShard int64 // for a folder output: its shard size
	}{
		{"row", mixed, Options{Granularity: qins.GranularityRow}, qins.VersionRows, 1, 0},
		{"row packed mse", mixed, Options{Granularity: qins.GranularityRow, Layout: qins.LayoutPacked, Range: qins.RangeMSE}, qins.VersionRows, 1, 0},
		{"tensor", mixed, Options{}, qins.Version, 1, 0},
		{"row, integers only", onlyInts, Options{Granularity: qins.GranularityRow}, qins.Version, 0, 0},
		{"row, integers only, packed mse", onlyInts, Options{Granularity: qins.GranularityRow, Layout: qins.LayoutPacked, Range: qins.RangeMSE}, qins.Version, 0, 0},
		{"row, all excluded", mixed, Options{Granularity: qins.GranularityRow, Exclude: none}, qins.Version, 0, 0},
		{"row, folder, a shard per tensor", mixed, Options{Granularity: qins.GranularityRow}, qins.VersionRows, 1, 1},
		{"row, folder of integers", onlyInts, Options{Granularity: qins.GranularityRow}, qins.Version, 0, 1},
		{"rational row", mixed, Options{Codec: qins.CodecRational, Granularity: qins.GranularityRow}, qins.VersionRationalRows, 1, 0},
		{"rational tensor", mixed, Options{Codec: qins.CodecRational}, qins.VersionRational, 1, 0},
		{"rational row, integers only", onlyInts, Options{Codec: qins.CodecRational, Granularity: qins.GranularityRow}, qins.Version, 0, 0},
		{"rational row, folder, a shard per tensor", mixed, Options{Codec: qins.CodecRational, Granularity: qins.GranularityRow}, qins.VersionRationalRows, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			out := filepath.Join(d, "q.safetensors")
			if tc.folderShard > 0 {
				out = filepath.Join(d, "q.qins")
				tc.opts.MaxShardBytes = tc.folderShard
			}
			s, err := convertTo(context.Background(), tc.src, out, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if s.Encoded != tc.encoded {
				t.Errorf("%d encoded, want %d", s.Encoded, tc.encoded)
			}
			c := open(t, out)
			if tc.folderShard > 0 && len(c.Files) != len(byName(open(t, tc.src))) {
				t.Fatalf("%d shards", len(c.Files))
			}
			for _, f := range c.Files {
				if v := f.Metadata[qins.VersionKey]; v != tc.version {
					t.Errorf("%s: version %q, want %q", f.Path, v, tc.version)
				}
			}
			if _, err := qins.Logicals(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			rep, err := Inspect(context.Background(), out)
			if err != nil || rep.Total.Encoded != tc.encoded {
				t.Fatalf("inspect: %v", err)
			}
		})
	}
}

// TestRowRangeBudget checks the automatic granularity: per-row ranges are
// kept where they cost at most the budget in bits per encoded weight over
// the checkpoint (stories260K's rows of 64 and 172: 0.87 bits), and
// replaced by one range per tensor above it (the tiny checkpoint's rows of
// 16 and 32: 3.619 bits), with Summary.ShortRows saying what they would
// have cost; without a budget the rows are kept.
func TestRowRangeBudget(t *testing.T) {
	for _, c := range []struct {
		src      string
		budget   float64
		rows     bool
		wantBits float64
	}{
		{"../testdata/stories260K", 1, true, 0},
		{tinyDir, 1, false, 3.619},
		{tinyDir, 4, true, 0},
		{tinyDir, 0, true, 0},
	} {
		q := filepath.Join(t.TempDir(), "q.safetensors")
		s, err := Convert(context.Background(), c.src, q, Options{Layout: qins.LayoutPacked, Range: qins.RangeMSE, Granularity: qins.GranularityRow, RowRangeBudget: c.budget})
		if err != nil {
			t.Fatal(err)
		}
		version := open(t, q).Metadata[qins.VersionKey]
		gotRows := s.Encoding.Granularity == qins.GranularityRow
		if gotRows != c.rows || (version == qins.VersionRows) != c.rows || math.Abs(s.ShortRows-c.wantBits) > 0.001 {
			t.Errorf("%s, budget %v: granularity %v, version %s, short rows %.4f bits; want rows %v, %.3f bits",
				c.src, c.budget, s.Encoding.Granularity, version, s.ShortRows, c.rows, c.wantBits)
		}
		if c.rows != (s.RangeBytes > 0) {
			t.Errorf("%s, budget %v: %d bytes of ranges", c.src, c.budget, s.RangeBytes)
		}
	}
}
