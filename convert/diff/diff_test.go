package diff

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/convert/internal/testfile"

	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
)

const tinyDir = "../../testdata/phi-3.5-mini-tiny"

func diff(t *testing.T, a, b string, opts Options) *Report {
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
	if _, err := convert.Convert(context.Background(), tinyDir, q, convert.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tinyDir, q} {
		r := diff(t, p, p, Options{})
		if !r.OK() || r.Total.Tensors != 195 || !r.Total.Exact || r.Total.Identical != r.Total.Elements {
			t.Errorf("%s against itself: %+v", p, r.Total)
		}
		for _, td := range r.Tensors {
			if !td.Exact || td.RMSE != 0 || td.Cosine != 1 || td.MaxAbsErr != 0 {
				t.Errorf("%s: %+v", td.Name, td.Stats)
			}
		}
	}
}

func TestDiffKnownDifferences(t *testing.T) {
	dir := t.TempDir()
	a := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	b := []float64{1, 2, 3.5, 4, 5, 6, 7, 6} // two differences: +0.5 at 2, -2 at 7
	fa := testfile.Write(t, filepath.Join(dir, "a.safetensors"),
		testfile.T("w", dtype.F32, []uint64{2, 4}, a),
		testfile.T("steps", dtype.I64, []uint64{1}, []float64{7}))
	fb := testfile.Write(t, filepath.Join(dir, "b.safetensors"),
		testfile.T("steps", dtype.I64, []uint64{1}, []float64{7}),
		testfile.T("w", dtype.BF16, []uint64{2, 4}, b)) // another dtype, same values
	r := diff(t, fa, fb, Options{})
	var w Tensor
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
	want := Stats{
		Elements: 8, MaxAbsErr: 2, MaxAbsErrIndex: 7, MeanAbsErr: 2.5 / 8,
		RMSE: Num(math.Sqrt(sse / 8)), RelRMSE: Num(math.Sqrt(sse / sa2)),
		Cosine: Num(sab / math.Sqrt(sa2*sb2)), SNRdB: Num(10 * math.Log10(sa2/sse)),
		Identical: 6,
	}
	if !reflect.DeepEqual(w.Stats, want) {
		t.Errorf("got  %+v\nwant %+v", w.Stats, want)
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
	if r := diff(t, fa, fb, Options{MinSNRdB: &lo}); !r.OK() {
		t.Errorf("min-snr-db 15 failed: %v", r.Tensors)
	}
	if r := diff(t, fa, fb, Options{MinSNRdB: &hi}); r.OK() || r.Total.Failing != 1 {
		t.Errorf("min-snr-db 20 passed")
	}
	rel := 0.1
	if r := diff(t, fa, fb, Options{MaxRelRMSE: &rel}); r.OK() {
		t.Errorf("max-rel-rmse 0.1 passed with rel_rmse %v", want.RelRMSE)
	}
	cosT := 0.999
	if r := diff(t, fa, fb, Options{MinCosine: &cosT}); r.OK() {
		t.Errorf("min-cosine 0.999 passed with cosine %v", want.Cosine)
	}
}

func TestDiffMissingAndMismatched(t *testing.T) {
	dir := t.TempDir()
	fa := testfile.Write(t, filepath.Join(dir, "a.safetensors"),
		testfile.T("only_a", dtype.F32, []uint64{1}, []float64{1}),
		testfile.T("shape", dtype.F32, []uint64{2}, []float64{1, 2}),
		testfile.T("kind", dtype.I64, []uint64{1}, []float64{1}),
		testfile.T("ints", dtype.I64, []uint64{2}, []float64{1, 2}),
		testfile.T("same", dtype.F16, []uint64{1}, []float64{0.5}))
	fb := testfile.Write(t, filepath.Join(dir, "b.safetensors"),
		testfile.T("only_b", dtype.F32, []uint64{1}, []float64{1}),
		testfile.T("shape", dtype.F32, []uint64{1, 2}, []float64{1, 2}),
		testfile.T("kind", dtype.F32, []uint64{1}, []float64{1}),
		testfile.T("ints", dtype.I64, []uint64{2}, []float64{1, 3}),
		testfile.T("same", dtype.F32, []uint64{1}, []float64{0.5}))
	r := diff(t, fa, fb, Options{})
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
	if _, err := convert.Convert(context.Background(), tinyDir, q, convert.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := convert.Restore(context.Background(), q, rf, convert.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	onTheFly, restored := diff(t, tinyDir, q, Options{}), diff(t, tinyDir, rf, Options{})
	if onTheFly.Total.Exact || onTheFly.Total.RelRMSE == 0 {
		t.Fatal("the QINS file compares exact: nothing decoded?")
	}
	// The QINS side takes the fast path, the F32 one the float path: the
	// sums are taken in another order.
	sameReports(t, onTheFly, restored, true)
}

// sameReports checks that two reports hold the same tensors and figures:
// counts, indices and largest errors exactly, sums to 1e-12 relative.
// With dtypeB false, the dtypes of B may differ.
func sameReports(t *testing.T, x, y *Report, ignoreDTypeB bool) {
	t.Helper()
	if len(x.Tensors) != len(y.Tensors) {
		t.Fatalf("%d tensors against %d", len(x.Tensors), len(y.Tensors))
	}
	near := func(a, b Num) bool {
		fa, fb := float64(a), float64(b)
		return fa == fb || (math.IsNaN(fa) && math.IsNaN(fb)) || math.Abs(fa-fb) <= 1e-12*math.Max(math.Abs(fa), math.Abs(fb))
	}
	same := func(name string, a, b Stats) {
		exact := a.Elements == b.Elements && a.MaxAbsErr == b.MaxAbsErr && a.MaxAbsErrIndex == b.MaxAbsErrIndex &&
			a.Exact == b.Exact && a.Identical == b.Identical && a.NonFinite == b.NonFinite
		if !exact || !near(a.MeanAbsErr, b.MeanAbsErr) || !near(a.RMSE, b.RMSE) || !near(a.RelRMSE, b.RelRMSE) ||
			!near(a.Cosine, b.Cosine) || !near(a.SNRdB, b.SNRdB) {
			t.Errorf("%s:\n%+v\n%+v", name, a, b)
		}
	}
	for i := range x.Tensors {
		a, b := x.Tensors[i], y.Tensors[i]
		if ignoreDTypeB {
			b.DTypeB = a.DTypeB
		}
		if a.Name != b.Name || !reflect.DeepEqual(a.Shape, b.Shape) || a.DTypeA != b.DTypeA || a.DTypeB != b.DTypeB || !reflect.DeepEqual(a.Fails, b.Fails) {
			t.Errorf("%+v\n%+v", a, b)
		}
		same(a.Name, a.Stats, b.Stats)
	}
	same("total", x.Total.Stats, y.Total.Stats)
	if x.Total.MaxAbsErrTensor != y.Total.MaxAbsErrTensor || x.Total.Failing != y.Total.Failing || x.Total.Tensors != y.Total.Tensors {
		t.Errorf("totals:\n%+v\n%+v", x.Total, y.Total)
	}
}

// TestDiffFastPathMatchesFloatPath compares every pair the fast path
// takes with the float path's figures for it.
func TestDiffFastPathMatchesFloatPath(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q.safetensors")
	if _, err := convert.Convert(context.Background(), tinyDir, q, convert.Options{}); err != nil {
		t.Fatal(err)
	}
	packed := filepath.Join(dir, "p.safetensors")
	if _, err := convert.Convert(context.Background(), tinyDir, packed, convert.Options{Layout: qins.LayoutPacked, Range: qins.RangeMSE}); err != nil {
		t.Fatal(err)
	}
	rational := filepath.Join(dir, "r.safetensors")
	if _, err := convert.Convert(context.Background(), tinyDir, rational, convert.Options{Codec: qins.CodecRational}); err != nil {
		t.Fatal(err)
	}
	rational1 := filepath.Join(dir, "r1.safetensors")
	if _, err := convert.Convert(context.Background(), tinyDir, rational1, convert.Options{Codec: qins.CodecRational, Alpha: 1}); err != nil {
		t.Fatal(err)
	}
	i8 := filepath.Join(dir, "i8.safetensors")
	if _, err := convert.Convert(context.Background(), tinyDir, i8, convert.Options{Layout: qins.LayoutI8, Range: qins.RangeMSE}); err != nil {
		t.Fatal(err)
	}
	// Two 16-bit files whose patterns pair in many ways, with zeros of
	// both signs, NaNs and infinities on either side or both.
	r := rand.New(rand.NewPCG(7, 8))
	n := 5000
	va, vb := make([]float64, n), make([]float64, n)
	for i := range va {
		va[i] = 0.02 * r.NormFloat64()
		vb[i] = va[i] * (1 + 0.05*r.NormFloat64())
	}
	va[10], vb[10] = math.NaN(), math.NaN()
	va[11], vb[12] = math.Inf(1), math.Inf(-1)
	va[13], vb[13] = 0, math.Copysign(0, -1)
	va[14] = math.NaN()
	a16 := testfile.Write(t, filepath.Join(dir, "a16.safetensors"), testfile.T("w", dtype.BF16, []uint64{50, 100}, va))
	b16 := testfile.Write(t, filepath.Join(dir, "b16.safetensors"), testfile.T("w", dtype.F16, []uint64{50, 100}, vb))
	// So many distinct pairs that the fast path gives up.
	big := 1 << 18
	wa, wb := make([]float64, big), make([]float64, big)
	for i := range wa {
		wa[i], wb[i] = r.NormFloat64(), r.NormFloat64()
	}
	manyA := testfile.Write(t, filepath.Join(dir, "ma.safetensors"), testfile.T("w", dtype.BF16, []uint64{uint64(big)}, wa))
	manyB := testfile.Write(t, filepath.Join(dir, "mb.safetensors"), testfile.T("w", dtype.BF16, []uint64{uint64(big)}, wb))

	cases := []struct{ name, a, b string }{
		{"source vs QINS", tinyDir, q},
		{"QINS vs source", q, tinyDir},
		{"source vs packed mse", tinyDir, packed},
		{"QINS vs QINS", q, packed},
		{"source vs rational", tinyDir, rational},
		{"rational vs source", rational1, tinyDir},
		{"rational vs log", rational, q},
		{"source vs i8", tinyDir, i8},
		{"i8 vs source", i8, tinyDir},
		{"i8 vs log", i8, q},
		{"BF16 vs F16", a16, b16},
		{"too many pairs", manyA, manyB},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, chunk := range []int{3, 1000, 0} {
				var pr sumProgress
				fast, err := diffWith(context.Background(), c.a, c.b, Options{ChunkElems: chunk, Progress: &pr}, testHooks{histMin: 1})
				if err != nil {
					t.Fatal(err)
				}
				if pr.sum.Load() != pr.total {
					t.Errorf("progress adds up to %d of %d", pr.sum.Load(), pr.total)
				}
				var sp sumProgress
				slow, err := diffWith(context.Background(), c.a, c.b, Options{ChunkElems: chunk, Progress: &sp}, testHooks{floatOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				if sp.sum.Load() != sp.total {
					t.Errorf("float path: progress adds up to %d of %d", sp.sum.Load(), sp.total)
				}
				if fast.Total.Exact {
					t.Fatal("compares exact: nothing to compare")
				}
				sameReports(t, fast, slow, false)
			}
		})
	}
}

func TestDiffJSONFields(t *testing.T) {
	q := filepath.Join(t.TempDir(), "q.safetensors")
	if _, err := convert.Convert(context.Background(), tinyDir, q, convert.Options{}); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(diff(t, tinyDir, q, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(js, &obj); err != nil {
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

// sumProgress adds up what a pipeline reports.
type sumProgress struct {
	total int64
	sum   atomic.Int64
}

func (p *sumProgress) Start(total int64) { p.total = total }
func (p *sumProgress) Add(n int64)       { p.sum.Add(n) }
