package qins

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/qins-dev/qins/format"

	"github.com/qins-dev/qins/format/dtype"
)

// TestEncodingParts: the parts of an encoded tensor, their names, dtypes,
// shapes and bytes, as the README's format section gives them.
func TestEncodingParts(t *testing.T) {
	shape := []uint64{3, 5, 7}
	for _, tc := range []struct {
		e     Encoding
		parts []format.TensorInfo
	}{
		{Encoding{}, []format.TensorInfo{
			{Name: "w.qins", DType: dtype.U8, Shape: shape},
			{Name: "w.sign", DType: dtype.I8, Shape: shape}}},
		{Encoding{Layout: LayoutPacked, Range: RangeMSE}, []format.TensorInfo{
			{Name: "w.qins", DType: dtype.U8, Shape: shape},
			{Name: "w.signbits", DType: dtype.U8, Shape: []uint64{14}}}},
		{Encoding{Granularity: GranularityRow}, []format.TensorInfo{
			{Name: "w.qins", DType: dtype.U8, Shape: shape},
			{Name: "w.sign", DType: dtype.I8, Shape: shape},
			{Name: "w.logrange", DType: dtype.F32, Shape: []uint64{15, 2}}}},
		{Encoding{Codec: CodecRational}, []format.TensorInfo{
			{Name: "w.qins", DType: dtype.U8, Shape: shape}}},
		{Encoding{Codec: CodecRational, Granularity: GranularityRow}, []format.TensorInfo{
			{Name: "w.qins", DType: dtype.U8, Shape: shape},
			{Name: "w.alpha", DType: dtype.F32, Shape: []uint64{15}}}},
		{Encoding{Layout: LayoutI8, Range: RangeMSE}, []format.TensorInfo{
			{Name: "w.qins", DType: dtype.I8, Shape: shape}}},
		{Encoding{Layout: LayoutI8, Range: RangeMSE, Granularity: GranularityRow}, []format.TensorInfo{
			{Name: "w.qins", DType: dtype.I8, Shape: shape},
			{Name: "w.logrange", DType: dtype.F32, Shape: []uint64{15, 2}}}},
	} {
		var bytes uint64
		parts := tc.e.Parts()
		if len(parts) != len(tc.parts) {
			t.Fatalf("%v: %d parts, want %d", tc.e, len(parts), len(tc.parts))
		}
		for i, p := range parts {
			got, want := tc.e.Stored(p, "w", shape), tc.parts[i]
			if got.Name != want.Name || got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) {
				t.Errorf("%v %v: %v %v %v, want %v %v %v", tc.e, p, got.Name, got.DType, got.Shape, want.Name, want.DType, want.Shape)
			}
			n, _ := want.DType.Bytes(want.Elements())
			bytes += n
		}
		if got := tc.e.EncodedBytes(shape); got != bytes {
			t.Errorf("%v: EncodedBytes %d, want %d", tc.e, got, bytes)
		}
	}
	if v := (Encoding{Granularity: GranularityRow}).Version(); v != VersionRows {
		t.Errorf("per-row version %q", v)
	}
	if v := (Encoding{Codec: CodecRational}).Version(); v != VersionRational {
		t.Errorf("rational version %q", v)
	}
	if err := (Encoding{Codec: CodecRational, Granularity: GranularityRow}).Check(); err != nil {
		t.Errorf("rational per row: %v", err)
	}
	if v := (Encoding{Codec: CodecRational, Granularity: GranularityRow}).Version(); v != VersionRationalRows {
		t.Errorf("rational per-row version %q", v)
	}
	if err := (Encoding{Codec: CodecRational, Range: RangeMSE}).Check(); err == nil {
		t.Error("rational with a range: no error")
	}
	if v := (Encoding{Layout: LayoutI8}).Version(); v != VersionRational {
		t.Errorf("i8 version %q", v)
	}
	if err := (Encoding{Layout: LayoutI8, Codec: CodecRational}).Check(); err == nil {
		t.Error("rational i8: no error")
	}
	if err := (Encoding{Layout: LayoutI8, Granularity: GranularityRow}).Check(); err != nil {
		t.Errorf("i8 per row: %v", err)
	}
	if v := (Encoding{Layout: LayoutI8, Granularity: GranularityRow}).Version(); v != VersionRational {
		t.Errorf("i8 per-row version %q", v)
	}
	if v := (Encoding{Layout: LayoutPacked}).Version(); v != Version {
		t.Errorf("per-tensor version %q", v)
	}
}

// TestEnumNames: each value's name parses back to it and marshals as a
// JSON string; unknown names and values are errors; the zero values are
// the defaults.
func TestEnumNames(t *testing.T) {
	for _, name := range []string{"u8+i8", "packed", "i8"} {
		l, err := ParseLayout(name)
		js, _ := json.Marshal(l)
		if err != nil || l.String() != name || string(js) != `"`+name+`"` {
			t.Errorf("layout %q: %v %v %s", name, l, err, js)
		}
	}
	for _, name := range []string{"minmax", "mse"} {
		r, err := ParseRange(name)
		if err != nil || r.String() != name {
			t.Errorf("range %q: %v %v", name, r, err)
		}
	}
	for _, name := range []string{"tensor", "row"} {
		g, err := ParseGranularity(name)
		if err != nil || g.String() != name {
			t.Errorf("granularity %q: %v %v", name, g, err)
		}
	}
	if _, err := ParseLayout("Packed"); err == nil || err.Error() != `layout "Packed": choose u8+i8, packed or i8` {
		t.Errorf("ParseLayout(Packed): %v", err)
	}
	if _, err := ParseGranularity("block"); err == nil {
		t.Error("granularity block accepted")
	}
	if err := (Encoding{Range: 2}).Check(); err == nil {
		t.Error("range 2 passes Check")
	}
	if _, err := json.Marshal(Layout(9)); err == nil {
		t.Error("layout 9 marshals")
	}
	m, err := ParseEncodedMeta(`{"log_min":-3,"log_max":0,"dtype":"BF16","layout":"","range":"","granularity":""}`)
	if err != nil || m.Encoding != (Encoding{}) {
		t.Errorf("empty names: %+v, %v; want the defaults", m, err)
	}
	if _, err := ParseEncodedMeta(`{"log_min":-3,"log_max":0,"dtype":"BF16","layout":"Packed"}`); err == nil || err.Error() != `layout "Packed" is not "u8+i8", "packed" or "i8"` {
		t.Errorf("layout Packed: %v", err)
	}
	var zero Encoding
	if zero.Layout != LayoutU8I8 || zero.Range != RangeMinMax || zero.Granularity != GranularityTensor || zero.Check() != nil {
		t.Errorf("zero Encoding %v", zero)
	}
}
