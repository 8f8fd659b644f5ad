package convert

import (
	"bytes"
	"context"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/qins-dev/qins/convert/internal/testfile"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/fuzz")

const (
	smallSrc      = "../testdata/fuzz/small.safetensors"
	smallQINS     = "../testdata/fuzz/small.qins.safetensors"
	smallRestored = "../testdata/fuzz/small.restored.safetensors"
	// smallRows is the small checkpoint with every float tensor encoded
	// per row (packed, range mse): QINS version 2.
	smallRows = "../testdata/fuzz/small.rows.qins.safetensors"
	// smallRational is the small checkpoint with every float tensor
	// encoded with the rational codec, each with its mse alpha: QINS
	// version 3.
	smallRational = "../testdata/fuzz/small.rational.qins.safetensors"
	// smallI8 is the small checkpoint with every float tensor encoded in
	// the i8 layout, range mse: QINS version 3.
	smallI8 = "../testdata/fuzz/small.i8.qins.safetensors"
	// smallRationalRows is the small checkpoint with every float tensor
	// encoded with the rational codec, one alpha per row: QINS version 4.
	smallRationalRows = "../testdata/fuzz/small.rationalrows.qins.safetensors"
)

// writeSmall writes the small source checkpoint: every float dtype, the
// special tensors of the codec, and tensors that are copied.
func writeSmall(t *testing.T, path string) {
	r := rand.New(rand.NewPCG(7, 7))
	normal := func(n int, sd float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = sd * r.NormFloat64()
		}
		return v
	}
	w := normal(32, 0.02)
	w[3], w[9], w[17] = 0, math.Copysign(0, -1), 5e-9
	testfile.Write(t, path,
		testfile.T("model.w", dtype.BF16, []uint64{4, 8}, w),
		testfile.T("model.f16", dtype.F16, []uint64{2, 3}, normal(6, 0.5)),
		testfile.T("model.f64", dtype.F64, []uint64{2, 2}, normal(4, 1)),
		testfile.T("model.const", dtype.F32, []uint64{3, 1}, []float64{0.25, -0.25, 0.25}),
		testfile.T("model.zero", dtype.F32, []uint64{2, 2}, []float64{0, 0, 0, 0}),
		testfile.T("model.norm", dtype.F32, []uint64{4}, []float64{1, 1.01, 0.99, 1}),
		testfile.T("model.steps", dtype.I64, []uint64{1}, []float64{12345}),
	)
}

// TestGolden converts and restores the small checkpoint and compares the
// bytes with the committed files; run with -update to rewrite them.
func TestGolden(t *testing.T) {
	if *update {
		writeSmall(t, smallSrc)
	}
	dir := t.TempDir()
	q, r := filepath.Join(dir, "q"), filepath.Join(dir, "r")
	if _, err := Convert(context.Background(), smallSrc, q, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(context.Background(), q, r, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	rows := filepath.Join(dir, "rows")
	if _, err := Convert(context.Background(), smallSrc, rows, Options{Granularity: qins.GranularityRow, Layout: qins.LayoutPacked, Range: qins.RangeMSE, Include: regexp.MustCompile(".")}); err != nil {
		t.Fatal(err)
	}
	rational := filepath.Join(dir, "rational")
	if _, err := Convert(context.Background(), smallSrc, rational, Options{Codec: qins.CodecRational, Include: regexp.MustCompile(".")}); err != nil {
		t.Fatal(err)
	}
	i8 := filepath.Join(dir, "i8")
	if _, err := Convert(context.Background(), smallSrc, i8, Options{Layout: qins.LayoutI8, Range: qins.RangeMSE, Include: regexp.MustCompile(".")}); err != nil {
		t.Fatal(err)
	}
	rationalRows := filepath.Join(dir, "rationalrows")
	if _, err := Convert(context.Background(), smallSrc, rationalRows, Options{Codec: qins.CodecRational, Granularity: qins.GranularityRow, Include: regexp.MustCompile(".")}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct{ got, golden string }{{q, smallQINS}, {r, smallRestored}, {rows, smallRows}, {rational, smallRational}, {i8, smallI8}, {rationalRows, smallRationalRows}} {
		got, _ := os.ReadFile(g.got)
		if *update {
			if err := os.WriteFile(g.golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(g.golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh run (%d bytes, golden %d); if the change is meant, run go test ./convert -run TestGolden -update", g.golden, len(got), len(want))
		}
	}
}
