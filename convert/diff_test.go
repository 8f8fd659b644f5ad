package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/quant"
)

type tensorSpec struct {
	name  string
	dt    safetensors.DType
	shape []uint64
	vals  []float64
}

// writeFile writes tensors, in the given order, to a safetensors file.
func writeFile(t *testing.T, path string, specs ...tensorSpec) string {
	t.Helper()
	var ts []format.TensorInfo
	for _, s := range specs {
		ts = append(ts, format.TensorInfo{Name: s.name, DType: s.dt, Shape: s.shape})
	}
	w, err := format.Create(path, map[string]string{"format": "pt"}, ts, format.CreateOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range specs {
		b := make([]byte, len(s.vals)*int(s.dt.Size()))
		for j, v := range s.vals {
			switch s.dt {
			case safetensors.I64:
				for k := 0; k < 8; k++ {
					b[8*j+k] = byte(uint64(int64(v)) >> (8 * k))
				}
			default:
				put, err := quant.Putter(s.dt)
				if err != nil {
					t.Fatal(err)
				}
				put(b, j, v)
			}
		}
		w.TensorWriter(i).Write(b)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

func diff(t *testing.T, a, b string, opts DiffOptions) *DiffReport {
	t.Helper()
	opts.ChunkElems = 3 // many chunks, merged across workers
	r, err := Diff(context.Background(), a, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDiffSelfIsExact(t *testing.T) {
	q := filepath.Join(t.TempDir(), "q.safetensors")
	if _, err := Convert(context.Background(), tinyDir, q, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tinyDir, q} {
		r := diff(t, p, p, DiffOptions{})
		if !r.OK() || r.Total.Tensors != 195 || !r.Total.Exact || r.Total.Identical != r.Total.Elements {
			t.Errorf("%s against itself: %+v", p, r.Total)
		}
		for _, td := range r.Tensors {
			if !td.Exact || td.RMSE != 0 || td.Cosine != 1 || td.MaxAbsErr != 0 {
				t.Errorf("%s: %+v", td.Name, td.DiffStats)
			}
		}
	}
}

func TestDiffKnownDifferences(t *testing.T) {
	dir := t.TempDir()
	a := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	b := []float64{1, 2, 3.5, 4, 5, 6, 7, 6} // two differences: +0.5 at 2, -2 at 7
	fa := writeFile(t, filepath.Join(dir, "a.safetensors"),
		tensorSpec{"w", safetensors.F32, []uint64{2, 4}, a},
		tensorSpec{"steps", safetensors.I64, []uint64{1}, []float64{7}})
	fb := writeFile(t, filepath.Join(dir, "b.safetensors"),
		tensorSpec{"steps", safetensors.I64, []uint64{1}, []float64{7}},
		tensorSpec{"w", safetensors.BF16, []uint64{2, 4}, b}) // another dtype, same values
	r := diff(t, fa, fb, DiffOptions{})
	var w TensorDiff
	for _, td := range r.Tensors {
		if td.Name == "w" {
			w = td
		}
	}
	var sa2, sab, sb2 float64
	for i := range a {
		sa2 += a[i] * a[i]
		sb2 += b[i] * b[i]
		sab += a[i] * b[i]
	}
	sse := 0.25 + 4.0
	want := DiffStats{
		Elements: 8, MaxAbsErr: 2, MaxAbsErrIndex: 7, MeanAbsErr: 2.5 / 8,
		RMSE: Num(math.Sqrt(sse / 8)), RelRMSE: Num(math.Sqrt(sse / sa2)),
		Cosine: Num(sab / math.Sqrt(sa2*sb2)), SNRdB: Num(10 * math.Log10(sa2/sse)),
		Identical: 6,
	}
	if !reflect.DeepEqual(w.DiffStats, want) {
		t.Errorf("got  %+v\nwant %+v", w.DiffStats, want)
	}
	if w.DTypeA != "F32" || w.DTypeB != "BF16" {
		t.Errorf("dtypes %s %s", w.DTypeA, w.DTypeB)
	}
	if r.Total.MaxAbsErrTensor != "w" || r.Total.Elements != 9 || r.Total.Identical != 7 {
		t.Errorf("total %+v", r.Total)
	}
	if !r.OK() {
		t.Error("no thresholds given, nothing missing: want OK")
	}
	lo, hi := 15.0, 20.0 // the SNR is 10*log10(204/4.25) = 16.8 dB
	if r := diff(t, fa, fb, DiffOptions{MinSNRdB: &lo}); !r.OK() {
		t.Errorf("min-snr-db 15 failed: %v", r.Tensors)
	}
	if r := diff(t, fa, fb, DiffOptions{MinSNRdB: &hi}); r.OK() || r.Total.Failing != 1 {
		t.Errorf("min-snr-db 20 passed")
	}
	rel := 0.1
	if r := diff(t, fa, fb, DiffOptions{MaxRelRMSE: &rel}); r.OK() {
		t.Errorf("max-rel-rmse 0.1 passed with rel_rmse %v", want.RelRMSE)
	}
	cosT := 0.999
	if r := diff(t, fa, fb, DiffOptions{MinCosine: &cosT}); r.OK() {
		t.Errorf("min-cosine 0.999 passed with cosine %v", want.Cosine)
	}
}

func TestDiffMissingAndMismatched(t *testing.T) {
	dir := t.TempDir()
	fa := writeFile(t, filepath.Join(dir, "a.safetensors"),
		tensorSpec{"only_a", safetensors.F32, []uint64{1}, []float64{1}},
		tensorSpec{"shape", safetensors.F32, []uint64{2}, []float64{1, 2}},
		tensorSpec{"kind", safetensors.I64, []uint64{1}, []float64{1}},
		tensorSpec{"ints", safetensors.I64, []uint64{2}, []float64{1, 2}},
		tensorSpec{"same", safetensors.F16, []uint64{1}, []float64{0.5}})
	fb := writeFile(t, filepath.Join(dir, "b.safetensors"),
		tensorSpec{"only_b", safetensors.F32, []uint64{1}, []float64{1}},
		tensorSpec{"shape", safetensors.F32, []uint64{1, 2}, []float64{1, 2}},
		tensorSpec{"kind", safetensors.F32, []uint64{1}, []float64{1}},
		tensorSpec{"ints", safetensors.I64, []uint64{2}, []float64{1, 3}},
		tensorSpec{"same", safetensors.F32, []uint64{1}, []float64{0.5}})
	r := diff(t, fa, fb, DiffOptions{})
	if r.OK() {
		t.Fatal("OK despite differences")
	}
	if !reflect.DeepEqual(r.MissingInB, []string{"only_a"}) || !reflect.DeepEqual(r.MissingInA, []string{"only_b"}) {
		t.Errorf("missing: in a %v, in b %v", r.MissingInA, r.MissingInB)
	}
	if len(r.ShapeMismatch) != 2 || r.ShapeMismatch[0].Name != "shape" || r.ShapeMismatch[1].Name != "kind" {
		t.Errorf("mismatches %+v", r.ShapeMismatch)
	}
	if r.Total.Tensors != 2 || r.Total.Failing != 1 {
		t.Errorf("compared %d, failing %d; want 2 and 1 (the integers differ)", r.Total.Tensors, r.Total.Failing)
	}
}

// A QINS file decoded on the fly compares exactly as its F32 restore does.
func TestDiffQINSOnTheFlyEqualsRestored(t *testing.T) {
	dir := t.TempDir()
	q, rf := filepath.Join(dir, "q.safetensors"), filepath.Join(dir, "r.safetensors")
	if _, err := Convert(context.Background(), tinyDir, q, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(context.Background(), q, rf, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	onTheFly, restored := diff(t, tinyDir, q, DiffOptions{}), diff(t, tinyDir, rf, DiffOptions{})
	if onTheFly.Total.Exact || onTheFly.Total.RelRMSE == 0 {
		t.Fatal("the QINS file compares exact: nothing decoded?")
	}
	for i := range onTheFly.Tensors {
		x, y := onTheFly.Tensors[i], restored.Tensors[i]
		y.DTypeB = x.DTypeB // the restore holds F32, the QINS file the source dtype
		if !reflect.DeepEqual(x, y) {
			t.Errorf("%s:\non the fly %+v\nrestored   %+v", x.Name, x, y)
		}
	}
	if !reflect.DeepEqual(onTheFly.Total, restored.Total) {
		t.Errorf("totals differ:\n%+v\n%+v", onTheFly.Total, restored.Total)
	}
}

func TestDiffJSONFields(t *testing.T) {
	q := filepath.Join(t.TempDir(), "q.safetensors")
	if _, err := Convert(context.Background(), tinyDir, q, Options{}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := diff(t, tinyDir, q, DiffOptions{}).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(buf.Bytes(), &obj); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "tensors", "missing_in_a", "missing_in_b", "shape_mismatch", "total"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("no %q", k)
		}
	}
	numeric := []string{"elements", "max_abs_err", "max_abs_err_index", "mean_abs_err", "rmse", "rel_rmse", "cosine", "snr_db", "identical"}
	encodedSeen := false
	for _, x := range obj["tensors"].([]any) {
		td := x.(map[string]any)
		if _, ok := td["name"].(string); !ok {
			t.Fatalf("tensor without a name: %v", td)
		}
		if _, ok := td["shape"].([]any); !ok {
			t.Errorf("%v: shape is not an array", td["name"])
		}
		for _, k := range numeric {
			v, present := td[k]
			if !present {
				t.Errorf("%v: no %q", td["name"], k)
				continue
			}
			_, isNum := v.(float64)
			// An exact match has no finite SNR: null, with "exact": true.
			if !isNum && !(k == "snr_db" && v == nil && td["exact"] == true) {
				t.Errorf("%v: %q = %v is not a number", td["name"], k, v)
			}
		}
		if td["exact"] == false {
			encodedSeen = true
		}
	}
	if !encodedSeen {
		t.Error("no inexact tensor in a QINS diff")
	}
	tot := obj["total"].(map[string]any)
	for _, k := range numeric {
		if _, ok := tot[k].(float64); !ok {
			t.Errorf("total %q = %v is not a number", k, tot[k])
		}
	}
}
