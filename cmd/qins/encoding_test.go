package main

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/qins"
)

// encodings returns the encodings of the tensors of the QINS file path,
// read from its qins:NAME metadata, each once.
func encodings(t *testing.T, path string) []qins.Encoding {
	t.Helper()
	c, err := format.OpenCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []qins.Encoding
	seen := map[qins.Encoding]bool{}
	for k, v := range c.Metadata {
		if !strings.HasPrefix(k, qins.ParamsPrefix) {
			continue
		}
		m, err := qins.ParseEncodedMeta(v)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if !seen[m.Encoding] {
			seen[m.Encoding] = true
			out = append(out, m.Encoding)
		}
	}
	return out
}

// TestConvertDefaults: what convert writes with no encoding flag, with
// --reference, and with each flag overriding its part (issue 21, part 4),
// read back from the file's metadata, and what the summary says of it.
func TestConvertDefaults(t *testing.T) {
	// One small matrix, rows of 64: the encoding, not the weights, is
	// under test (and per-row mse ranges take time on many tensors).
	src := filepath.Join(t.TempDir(), "w.safetensors")
	vals := make([]float32, 8*64)
	for i := range vals {
		vals[i] = float32(math.Sin(float64(i))) * 0.02 * float32(1+i%7)
	}
	writeF32(t, src, "w", []uint64{8, 64}, vals)
	packed, u8i8, i8 := qins.LayoutPacked, qins.LayoutU8I8, qins.LayoutI8
	row, tensor := qins.GranularityRow, qins.GranularityTensor
	mse, minmax := qins.RangeMSE, qins.RangeMinMax
	log := func(l qins.Layout, g qins.Granularity, r qins.Range) qins.Encoding {
		return qins.Encoding{Layout: l, Granularity: g, Range: r}
	}
	for _, c := range []struct {
		flags   []string
		want    qins.Encoding
		version string
		says    string // in the summary's encoding line
	}{
		{nil, log(packed, row, mse), "2", "log codec, packed layout, an mse range per row (the default): "},
		{[]string{"--codec", "log"}, log(packed, row, mse), "2", "(--codec log, the rest by default)"},
		{[]string{"--reference"}, log(u8i8, tensor, minmax), "1", "log codec, u8+i8 layout, a minmax range per tensor (--reference): 16.000 bits"},
		{[]string{"--reference", "--layout", "u8+i8", "--range", "minmax"}, log(u8i8, tensor, minmax), "1", "(--reference --layout u8+i8 --range minmax)"},
		{[]string{"--reference", "--codec", "log", "--granularity", "tensor"}, log(u8i8, tensor, minmax), "1", "(--reference --codec log --granularity tensor)"},
		{[]string{"--layout", "u8+i8"}, log(u8i8, row, mse), "2", "u8+i8 layout, an mse range per row (--layout u8+i8, the rest by default)"},
		{[]string{"--granularity", "tensor"}, log(packed, tensor, mse), "1", "packed layout, an mse range per tensor (--granularity tensor, the rest by default): 9.000 bits"},
		{[]string{"--range", "minmax"}, log(packed, row, minmax), "2", "a minmax range per row (--range minmax, the rest by default)"},
		{[]string{"--layout", "u8+i8", "--granularity", "tensor", "--range", "minmax"}, log(u8i8, tensor, minmax), "1", "(--layout u8+i8 --granularity tensor --range minmax): 16.000 bits"},
		{[]string{"--layout", "i8"}, log(i8, row, mse), "3", "i8 layout, an mse range per row (--layout i8, the rest by default)"},
		{[]string{"--layout", "i8", "--granularity", "tensor", "--range", "minmax"}, log(i8, tensor, minmax), "3", "(--layout i8 --granularity tensor --range minmax): 8.000 bits"},
		{[]string{"--codec", "rational"}, qins.Encoding{Codec: qins.CodecRational, Granularity: row}, "4", "rational codec, one alpha per row (--codec rational, the rest by default): 8.500 bits"},
		{[]string{"--codec", "rational", "--alpha", "2"}, qins.Encoding{Codec: qins.CodecRational}, "3", "(--codec rational --alpha 2): 8.000 bits"},
		{[]string{"--codec", "rational", "--granularity", "tensor", "--range", "mse"}, qins.Encoding{Codec: qins.CodecRational}, "3", "(--codec rational --granularity tensor --range mse): 8.000 bits"},
	} {
		name := strings.Join(c.flags, " ")
		q := filepath.Join(t.TempDir(), "q.safetensors")
		code, out, errs := runQINS(t, append([]string{"convert", src, "-o", q}, c.flags...)...)
		if code != 0 {
			t.Errorf("%s: exit %d: %s", name, code, errs)
			continue
		}
		if !strings.Contains(out, "  encoding: ") || !strings.Contains(out, c.says) {
			t.Errorf("%s: the summary lacks %q:\n%s", name, c.says, out)
		}
		if got := encodings(t, q); len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: wrote %+v, want %+v", name, got, c.want)
		}
		if _, out, _ := runQINS(t, "inspect", q); !strings.Contains(out, "QINS version "+c.version+",") {
			t.Errorf("%s: inspect: want version %s:\n%.200s", name, c.version, out)
		}
	}
}

// TestReferenceConflicts: a flag that contradicts --reference is one
// usage error naming both, and nothing is written.
func TestReferenceConflicts(t *testing.T) {
	src := filepath.Join(tiny, "model-00002-of-00002.safetensors")
	dir := t.TempDir()
	q := filepath.Join(dir, "q.safetensors")
	for _, flags := range [][]string{
		{"--layout", "packed"},
		{"--layout", "i8"},
		{"--granularity", "row"},
		{"--range", "mse"},
		{"--codec", "rational"},
		{"--alpha", "1"},
	} {
		code, out, errs := runQINS(t, append([]string{"convert", src, "-o", q, "--reference"}, flags...)...)
		want := "qins: usage error: --reference is --codec log --layout u8+i8 --granularity tensor --range minmax: it cannot be combined with " + strings.Join(flags, " ") + "\n"
		if code != 2 || out != "" || !strings.HasPrefix(errs, want) || strings.Count(errs, "\n") != 2 {
			t.Errorf("--reference %v: exit %d, %q%q: want 2 and %q", flags, code, out, errs, want)
		}
		if got := files(t, dir); len(got) != 0 {
			t.Errorf("--reference %v: wrote %v", flags, got)
		}
	}
}
