package qins

import (
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/quant"
)

// rationalRowsFile writes a version-v file holding the rational tensor w,
// U8 codes [2, 3] (0, 127, 128, 191, 254, 255 in each row), with metadata
// m and its rows' alphas stored as alphaInfo (w.alpha, F32 [2] by
// default) with the given values.
func rationalRowsFile(t *testing.T, v, m string, alphaInfo *format.TensorInfo, alphas ...float32) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "q.safetensors")
	infos := []format.TensorInfo{{Name: "w.qins", DType: dtype.U8, Shape: []uint64{2, 3}}}
	if alphaInfo != nil {
		infos = append(infos, *alphaInfo)
	}
	w, err := format.Create(p, map[string]string{"qins": v, "qins:w": m}, infos, format.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, ti := range w.Tensors() {
		b := make([]byte, ti.Bytes())
		if ti.Name == "w.qins" {
			copy(b, []byte{0, 127, 128, 191, 254, 255})
		} else {
			for j := 0; j+4 <= len(b) && j/4 < len(alphas); j += 4 {
				binary.LittleEndian.PutUint32(b[j:], math.Float32bits(alphas[j/4]))
			}
		}
		w.TensorWriter(i).Write(b)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLogicalsRationalRows: a version-4 file's rational tensor with one
// alpha per row decodes each row with its alpha through every reader;
// the version, the parts and each row's alpha are checked, each refusal
// one line naming the file and the tensor.
func TestLogicalsRationalRows(t *testing.T) {
	alphas := &format.TensorInfo{Name: "w.alpha", DType: dtype.F32, Shape: []uint64{2}}
	meta := `{"codec":"rational","alpha":2,"dtype":"BF16","granularity":"row"}`
	logical := func(p string) (*Logical, error) {
		c, err := format.OpenCheckpoint(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		ls, err := Logicals(context.Background(), c)
		if err != nil {
			return nil, err
		}
		return &ls[0], nil
	}
	l, err := logical(rationalRowsFile(t, "4", meta, alphas, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if l.Codec != CodecRational || l.Alpha != 2 || l.Ranges == nil || l.Ranges.Name != "w.alpha" || l.StoredBytes() != 6+8 {
		t.Fatalf("logical %+v", l)
	}
	codes, signs := make([]uint8, 6), make([]int8, 6)
	var raw []byte
	if err := l.ReadCodes(0, 6, codes, signs, &raw); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 8*6)
	if err := NewDecoder(l).DecodeTo(dtype.F64, 0, codes, signs, out); err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(l)
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]float64, 6)
	if _, err := src.Values(0, 6, vals, &raw); err != nil {
		t.Fatal(err)
	}
	for i, c := range codes {
		a := []float64{2, 3}[i/3]
		want := quant.RationalValue(c, a)
		if got := math.Float64frombits(binary.LittleEndian.Uint64(out[8*i:])); got != want || math.Signbit(got) != math.Signbit(want) {
			t.Errorf("element %d, code %d, row alpha %v: F64 %v, want %v", i, c, a, got, want)
		}
		if vals[i] != float64(float32(want)) {
			t.Errorf("element %d: value %v, want %v", i, vals[i], float32(want))
		}
	}
	// A run of elements across the rows, from the middle of the first.
	part := make([]float64, 3)
	if _, err := src.Values(2, 3, part, &raw); err != nil || part[0] != vals[2] || part[1] != vals[3] || part[2] != vals[4] {
		t.Errorf("elements 2..4: %v, %v; want %v", part, err, vals[2:5])
	}

	for _, tc := range []struct {
		name    string
		version string
		meta    string
		alphas  *format.TensorInfo
		values  []float32
		want    string
	}{
		{"version 3", "3", meta, alphas, []float32{2, 3}, "has one alpha per row, which needs QINS version 4, not 3"},
		{"no alphas", "4", meta, nil, nil, "has per-row alphas but no w.alpha"},
		{"alphas of another shape", "4", meta, &format.TensorInfo{Name: "w.alpha", DType: dtype.F32, Shape: []uint64{2, 1}}, []float32{2, 3}, "w.alpha is F32 [2 1]; want F32 [2]"},
		{"alphas of another dtype", "4", meta, &format.TensorInfo{Name: "w.alpha", DType: dtype.F64, Shape: []uint64{2}}, nil, "w.alpha is F64 [2]; want F32 [2]"},
		{"tensor alpha 0", "4", `{"codec":"rational","alpha":0,"dtype":"BF16","granularity":"row"}`, alphas, []float32{2, 3}, "alpha 0 must be finite and above 0"},
		{"a layout", "4", `{"codec":"rational","alpha":2,"dtype":"BF16","granularity":"row","layout":"i8"}`, alphas, []float32{2, 3}, `has key "layout", which the rational codec does not have`},
		{"granularity block", "4", `{"codec":"rational","alpha":2,"dtype":"BF16","granularity":"block"}`, alphas, []float32{2, 3}, `granularity "block" is not "tensor" or "row"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := rationalRowsFile(t, tc.version, tc.meta, tc.alphas, tc.values...)
			_, err := logical(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line naming %s and %q", err, p, tc.want)
			}
		})
	}
	// A row's alpha is checked when it is read: by the decoder, the
	// source and inspect's summary (RowAlphas).
	for _, tc := range []struct {
		name   string
		dt     string
		values []float32
		want   string
	}{
		{"NaN", "BF16", []float32{2, float32(math.NaN())}, "row 1 of w.alpha: alpha NaN must be finite and above 0"},
		{"infinity", "BF16", []float32{float32(math.Inf(1)), 3}, "row 0 of w.alpha: alpha +Inf must be finite and above 0"},
		{"zero", "BF16", []float32{2, 0}, "row 1 of w.alpha: alpha 0 must be finite and above 0"},
		{"negative", "BF16", []float32{-2, 3}, "row 0 of w.alpha: alpha -2 must be finite and above 0"},
		{"beyond the dtype", "F16", []float32{0.002, 3}, "row 0 of w.alpha: alpha 0.0020000000949949026 decodes to"},
		{"below the tensor's", "BF16", []float32{2, 1.5}, "row 1 of w.alpha: alpha 1.5 is below the tensor's alpha 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := strings.Replace(meta, "BF16", tc.dt, 1)
			if tc.dt == "F16" {
				m = strings.Replace(m, `"alpha":2`, `"alpha":0.004`, 1)
			}
			p := rationalRowsFile(t, "4", m, alphas, tc.values...)
			l, err := logical(p)
			if err != nil {
				t.Fatal(err)
			}
			var raw []byte
			codes, signs := make([]uint8, 6), make([]int8, 6)
			if err := l.ReadCodes(0, 6, codes, signs, &raw); err != nil {
				t.Fatal(err)
			}
			errs := []error{l.RowAlphas(0, make([]float64, 2), &raw),
				NewDecoder(l).DecodeF32(0, codes, signs, make([]float64, 6))}
			for _, err := range errs {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "w") || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v, want one line naming %s and %q", err, p, tc.want)
				}
			}
		})
	}
}
