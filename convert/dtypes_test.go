package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/qins-dev/qins/convert/diff"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
)

// newDTypesDir is a model folder with one tensor of each dtype the codec
// does not encode (FP8, FP6, FP4, E8M0, FNUZ, C64, BOOL), beside two it
// does, written by writeNewDTypes (go test ./convert -run TestNewDTypesFixture
// -update rewrites it).
const newDTypesDir = "../testdata/newdtypes"

// rawSpec is a tensor given by its stored bytes.
type rawSpec struct {
	name  string
	dt    dtype.DType
	shape []uint64
	data  []byte
}

// writeRaw writes tensors, in the given order, to a safetensors file.
func writeRaw(t *testing.T, path string, specs ...rawSpec) {
	t.Helper()
	ts := make([]format.TensorInfo, len(specs))
	for i, s := range specs {
		ts[i] = format.TensorInfo{Name: s.name, DType: s.dt, Shape: s.shape}
	}
	w, err := format.Create(path, map[string]string{"format": "pt"}, ts, format.CreateOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range specs {
		if _, err := w.TensorWriter(i).Write(s.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// newDTypeSpecs returns the tensors of the fixture: every FP8 pattern
// (NaN, infinities, subnormals, extremes) and packed sub-byte tensors.
func newDTypeSpecs() []rawSpec {
	r := rand.New(rand.NewPCG(12, 12))
	seq := func(n int, first, step byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = first + byte(i)*step
		}
		return b
	}
	floats := func(dt dtype.DType, n int) []byte {
		put, _ := dtype.Putter(dt)
		b := make([]byte, n*int(dt.Size()))
		for i := 0; i < n; i++ {
			put(b, i, 0.05*r.NormFloat64())
		}
		return b
	}
	c64 := make([]byte, 0, 32)
	for _, v := range []float32{1, -2, 0.5, 3, -1, 0, 2.5, -0.25} {
		c64 = binary.LittleEndian.AppendUint32(c64, math.Float32bits(v))
	}
	return []rawSpec{
		{"model.layers.0.mlp.up_proj.weight", dtype.F32, []uint64{32, 32}, floats(dtype.F32, 1024)},
		{"model.layers.0.mlp.down_proj.weight", dtype.BF16, []uint64{32, 16}, floats(dtype.BF16, 512)},
		{"model.layers.0.self_attn.q_proj.weight", dtype.F8_E4M3, []uint64{16, 16}, seq(256, 0, 1)},
		{"model.layers.0.self_attn.q_proj.weight_scale_inv", dtype.F32, []uint64{1, 1}, floats(dtype.F32, 1)},
		{"model.layers.0.self_attn.k_proj.weight", dtype.F8_E5M2, []uint64{16, 16}, seq(256, 255, 255)},
		{"model.layers.0.mlp.scales", dtype.F8_E8M0, []uint64{2, 4}, seq(8, 120, 3)},
		{"model.layers.0.mlp.gate_proj.blocks", dtype.F4, []uint64{4, 8}, seq(16, 0x10, 0x11)},
		{"model.layers.1.fp6_e2m3", dtype.F6_E2M3, []uint64{4, 4}, seq(12, 7, 29)},
		{"model.layers.1.fp6_e3m2", dtype.F6_E3M2, []uint64{2, 4}, seq(6, 200, 13)},
		{"model.layers.1.fnuz_e4m3", dtype.F8_E4M3FNUZ, []uint64{2, 3}, seq(6, 0x7e, 1)},
		{"model.layers.1.fnuz_e5m2", dtype.F8_E5M2FNUZ, []uint64{5}, seq(5, 0x80, 1)},
		{"model.rotary.freqs_cis", dtype.C64, []uint64{2, 2}, c64},
		{"model.mask", dtype.BOOL, []uint64{3}, []byte{1, 0, 1}},
	}
}

// writeNewDTypes writes the fixture folder into dir.
func writeNewDTypes(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := "{\n  \"architectures\": [\"TestForCausalLM\"],\n  \"torch_dtype\": \"bfloat16\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	writeRaw(t, filepath.Join(dir, "model.safetensors"), newDTypeSpecs()...)
}

// TestNewDTypesFixture checks that the committed fixture is what
// writeNewDTypes writes; run with -update to rewrite it.
func TestNewDTypesFixture(t *testing.T) {
	if *update {
		writeNewDTypes(t, newDTypesDir)
	}
	dir := t.TempDir()
	writeNewDTypes(t, dir)
	for _, n := range []string{"config.json", "model.safetensors"} {
		got, _ := os.ReadFile(filepath.Join(dir, n))
		want, err := os.ReadFile(filepath.Join(newDTypesDir, n))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s/%s differs from a fresh write (%v); run go test ./convert -run TestNewDTypesFixture -update", newDTypesDir, n, err)
		}
	}
}

// keptSpecs are the tensors of the fixture the codec does not encode.
func keptSpecs() map[string]rawSpec {
	m := map[string]rawSpec{}
	for _, s := range newDTypeSpecs() {
		if !s.dt.IsFloat() {
			m[s.name] = s
		}
	}
	return m
}

// checkKept checks that every tensor of a dtype the codec does not read is
// in the checkpoint at path with its dtype, shape and bytes unchanged.
func checkKept(t *testing.T, path string) {
	t.Helper()
	c := open(t, path)
	got := byName(c)
	for name, s := range keptSpecs() {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: %s missing", path, name)
			continue
		}
		if g.DType != s.dt || !slices.Equal(g.Shape, s.shape) || !bytes.Equal(readAll(t, g), s.data) {
			t.Errorf("%s: %s is %v %v, want %v %v unchanged", path, name, g.DType, g.Shape, s.dt, s.shape)
		}
	}
}

// Every command takes a checkpoint with every dtype of the specification:
// convert and restore copy the tensors of dtypes the codec does not read,
// inspect lists them, diff compares them.
func TestNewDTypesEveryCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeNewDTypes(t, src)
	kept := keptSpecs()

	qFile, qDir, qShards := filepath.Join(dir, "m.qins.safetensors"), filepath.Join(dir, "m.qins"), filepath.Join(dir, "sharded.qins")
	for _, out := range []string{qFile, qDir, qShards} {
		var shard int64
		if out == qShards {
			shard = 1 // a shard per tensor: a scale apart from its weight
		}
		s, err := convertTo(ctx, src, out, Options{WriteOptions: WriteOptions{ChunkBytes: 64, MaxShardBytes: shard}})
		if err != nil {
			t.Fatal(err)
		}
		// The F32 scale of the FP8 weight is copied too, not for its dtype.
		if s.Encoded != 2 || s.Copied != len(kept)+1 || s.KeptDType != len(kept) || len(s.KeptDTypes) != len(kept) {
			t.Errorf("%s: %d encoded, %d copied, %d kept for their dtype (%v); want 2, %d, %d", out, s.Encoded, s.Copied, s.KeptDType, s.KeptDTypes, len(kept)+1, len(kept))
		}
		if got, want := strings.Join(s.KeptDTypes, ", "), "BOOL, C64, F4, F6_E2M3, F6_E3M2, F8_E4M3, F8_E4M3FNUZ, F8_E5M2, F8_E5M2FNUZ, F8_E8M0"; got != want {
			t.Errorf("kept for their dtype: %s, want %s", got, want)
		}
		checkKept(t, out)
		scale := "model.layers.0.self_attn.q_proj.weight_scale_inv"
		if q := byName(open(t, out)); q[scale].DType != dtype.F32 {
			t.Errorf("%s: the scale of an FP8 weight is not kept: %+v", out, q[scale])
		}
	}
	// --include still encodes a scale it names.
	s, err := convertTo(ctx, src, filepath.Join(dir, "scale.qins.safetensors"), Options{Include: regexp.MustCompile(`_scale_inv$`)})
	if err != nil || s.Encoded != 1 {
		t.Errorf("--include the scale: %v, %d encoded", err, s.Encoded)
	}

	rep, err := Inspect(ctx, qDir)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, tr := range rep.Tensors {
		listed[tr.Name] = tr.DType
	}
	for name, s := range kept {
		if listed[name] != s.dt.String() {
			t.Errorf("inspect lists %s as %q, want %v", name, listed[name], s.dt)
		}
	}

	for _, c := range []struct {
		in, out string
		dt      dtype.DType
		shard   int64
	}{
		{qFile, filepath.Join(dir, "r.safetensors"), dtype.F32, 0},
		{qDir, filepath.Join(dir, "r.restored"), dtype.BF16, 0},
		{qShards, filepath.Join(dir, "sharded.restored"), dtype.F16, 1},
	} {
		s, err := restoreTo(ctx, c.in, c.out, RestoreOptions{WriteOptions: WriteOptions{ChunkBytes: 64, MaxShardBytes: c.shard}, DType: c.dt})
		if err != nil {
			t.Fatal(err)
		}
		if s.Encoded != 2 || s.KeptDType != len(kept) {
			t.Errorf("restore %s: %d decoded, %d kept for their dtype", c.out, s.Encoded, s.KeptDType)
		}
		checkKept(t, c.out)
		// The scale of the FP8 weight keeps its dtype and bytes, whatever
		// the restored dtype.
		scale := "model.layers.0.self_attn.q_proj.weight_scale_inv"
		got, want := byName(open(t, c.out))[scale], byName(open(t, src))[scale]
		if got.DType != dtype.F32 || !bytes.Equal(readAll(t, got), readAll(t, want)) {
			t.Errorf("restore %s: %s is %v, not the source's F32 bytes", c.out, scale, got.DType)
		}
		// Diff against the source: the kept tensors exact, the others
		// within the README's thresholds.
		for _, b := range []string{c.in, c.out} {
			d := diffOf(t, src, b, diff.Options{MinSNRdB: ptr(30.0), MinCosine: ptr(0.999), MaxRelRMSE: ptr(0.05)})
			if !d.OK() || d.Total.Tensors != len(kept)+3 {
				t.Errorf("diff %s: OK %v, %d tensors, %+v", b, d.OK(), d.Total.Tensors, d.ShapeMismatch)
			}
			for _, td := range d.Tensors {
				if _, ok := kept[td.Name]; ok && (!td.Exact || td.Identical != td.Elements) {
					t.Errorf("diff %s: %s not exact: %+v", b, td.Name, td.Stats)
				}
			}
		}
	}
	if _, err := diff.Diff(ctx, src, qDir, diff.Options{}); err != nil {
		t.Fatal(err)
	}
}

func ptr(f float64) *float64 { return &f }

// FP8 tensors are compared by value: against a BF16 or F32 copy of
// themselves they are exact, NaN matching NaN and infinity infinity, and
// a changed pattern shows its error as the OCP definitions give it.
func TestDiffFP8ByValue(t *testing.T) {
	dir := t.TempDir()
	e4 := make([]byte, 256)
	e5 := make([]byte, 256)
	for i := range e4 {
		e4[i], e5[i] = byte(i), byte(255-i)
	}
	fp8 := filepath.Join(dir, "fp8.safetensors")
	writeRaw(t, fp8,
		rawSpec{"e4", dtype.F8_E4M3, []uint64{16, 16}, e4},
		rawSpec{"e5", dtype.F8_E5M2, []uint64{256}, e5})
	widen := func(dt dtype.DType, b []byte, dec func(uint8) float32) []byte {
		put, _ := dtype.Putter(dt)
		out := make([]byte, len(b)*int(dt.Size()))
		for i, v := range b {
			put(out, i, float64(dec(v)))
		}
		return out
	}
	for _, dt := range []dtype.DType{dtype.BF16, dtype.F32} {
		wide := filepath.Join(dir, dt.String()+".safetensors")
		writeRaw(t, wide,
			rawSpec{"e4", dt, []uint64{16, 16}, widen(dt, e4, dtype.F8E4M3ToFloat32)},
			rawSpec{"e5", dt, []uint64{256}, widen(dt, e5, dtype.F8E5M2ToFloat32)})
		for _, pair := range [][2]string{{fp8, wide}, {wide, fp8}} {
			d := diffOf(t, pair[0], pair[1], diff.Options{})
			if !d.OK() || len(d.Tensors) != 2 {
				t.Fatalf("%v: %+v", dt, d)
			}
			for _, td := range d.Tensors {
				if !td.Exact || td.Identical != 256 || td.NonFinite != 0 {
					t.Errorf("%v %s: %+v", dt, td.Name, td.Stats)
				}
			}
		}
	}

	// One pattern changed in each: 1 (0x38) becomes 1.125 (0x39) in E4M3,
	// and the largest subnormal 3*2^-16 (0x03) becomes 2^-14 (0x04) in
	// E5M2, an error of 2^-16. The max error is that of E4M3.
	e4b, e5b := bytes.Clone(e4), bytes.Clone(e5)
	e4b[0x38] = 0x39
	e5b[255-3] = 0x04
	changed := filepath.Join(dir, "changed.safetensors")
	writeRaw(t, changed,
		rawSpec{"e4", dtype.F8_E4M3, []uint64{16, 16}, e4b},
		rawSpec{"e5", dtype.F8_E5M2, []uint64{256}, e5b})
	d := diffOf(t, fp8, changed, diff.Options{})
	want := map[string]struct {
		err float64
		at  int64
	}{"e4": {0.125, 0x38}, "e5": {1.0 / 65536, 255 - 3}}
	for _, td := range d.Tensors {
		w := want[td.Name]
		if td.Exact || td.Identical != 255 || float64(td.MaxAbsErr) != w.err || td.MaxAbsErrIndex != w.at {
			t.Errorf("%s: max_abs_err %v at %d, identical %d; want %v at %d, 255", td.Name, td.MaxAbsErr, td.MaxAbsErrIndex, td.Identical, w.err, w.at)
		}
	}
	if float64(d.Total.MaxAbsErr) != 0.125 || d.Total.MaxAbsErrTensor != "e4" {
		t.Errorf("total: %v in %s", d.Total.MaxAbsErr, d.Total.MaxAbsErrTensor)
	}

	// E4M3's NaN (0x7f) against a number, and E5M2's infinity (0x7c, at
	// 255-0x7c) against the largest finite value: both unmatched.
	put, _ := dtype.Putter(dtype.F32)
	e4f, e5f := widen(dtype.F32, e4, dtype.F8E4M3ToFloat32), widen(dtype.F32, e5, dtype.F8E5M2ToFloat32)
	put(e4f, 0x7f, 0)
	put(e5f, 255-0x7c, 57344)
	numbers := filepath.Join(dir, "numbers.safetensors")
	writeRaw(t, numbers, rawSpec{"e4", dtype.F32, []uint64{16, 16}, e4f}, rawSpec{"e5", dtype.F32, []uint64{256}, e5f})
	d = diffOf(t, fp8, numbers, diff.Options{})
	for _, td := range d.Tensors {
		if td.NonFinite != 1 || td.Identical != 255 || len(td.Fails) != 1 {
			t.Errorf("%s: %d unmatched non-finite, %d identical, fails %v; want 1, 255, one", td.Name, td.NonFinite, td.Identical, td.Fails)
		}
	}

	// FP8 and an integer tensor are not comparable; E4M3 against E5M2 is,
	// by value.
	u8 := filepath.Join(dir, "u8.safetensors")
	writeRaw(t, u8, rawSpec{"e4", dtype.U8, []uint64{16, 16}, e4}, rawSpec{"e5", dtype.F8_E4M3, []uint64{256}, e5})
	d = diffOf(t, fp8, u8, diff.Options{})
	if len(d.ShapeMismatch) != 1 || d.ShapeMismatch[0].Name != "e4" || len(d.Tensors) != 1 || d.Tensors[0].Exact {
		t.Errorf("FP8 against U8 and E4M3: %+v, %+v", d.ShapeMismatch, d.Tensors)
	}
}

// The dtypes diff does not read by value are compared element by element
// by their bits: F4 elements by nibble, F6 by six bits, C64 by eight bytes.
func TestDiffByBits(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.safetensors")
	specs := []rawSpec{
		{"f4", dtype.F4, []uint64{4, 8}, bytes.Repeat([]byte{0x21}, 16)},
		{"f6", dtype.F6_E3M2, []uint64{8, 4}, bytes.Repeat([]byte{0xaa}, 24)},
		{"c64", dtype.C64, []uint64{3}, bytes.Repeat([]byte{1}, 24)},
		{"e8m0", dtype.F8_E8M0, []uint64{5}, []byte{127, 128, 129, 130, 255}},
	}
	writeRaw(t, a, specs...)
	changed := make([]rawSpec, len(specs))
	for i, s := range specs {
		changed[i] = s
		changed[i].data = bytes.Clone(s.data)
	}
	changed[0].data[3] = 0x22  // element 6 (low nibble of byte 3) changes, 7 not
	changed[1].data[0] ^= 0x80 // bit 7: element 1 (bits 6 to 11)
	changed[1].data[23] = 0x00 // bits 184-191: elements 30 and 31
	changed[2].data[9] = 2     // the second complex
	b := filepath.Join(dir, "b.safetensors")
	writeRaw(t, b, changed...)
	d := diffOf(t, a, b, diff.Options{})
	want := map[string][2]uint64{"f4": {32, 31}, "f6": {32, 29}, "c64": {3, 2}, "e8m0": {5, 5}}
	if len(d.Tensors) != len(want) {
		t.Fatalf("%d tensors compared", len(d.Tensors))
	}
	for _, td := range d.Tensors {
		w := want[td.Name]
		if td.Elements != w[0] || td.Identical != w[1] || td.Exact != (w[0] == w[1]) {
			t.Errorf("%s: %d elements, %d identical, exact %v; want %d, %d", td.Name, td.Elements, td.Identical, td.Exact, w[0], w[1])
		}
		if exact := w[0] == w[1]; exact != (len(td.Fails) == 0) || !math.IsNaN(float64(td.RelRMSE)) {
			t.Errorf("%s: fails %v, rel_rmse %v; want values unknown (NaN)", td.Name, td.Fails, td.RelRMSE)
		}
	}
	if d.OK() || d.Total.Failing != 3 {
		t.Errorf("OK %v with %d failing", d.OK(), d.Total.Failing)
	}
	if js, err := json.Marshal(d); err != nil || !strings.Contains(string(js), `"rel_rmse":null`) {
		t.Errorf("JSON: %v\n%s", err, js)
	}
	// A dtype compared by bits is not comparable to another dtype.
	other := filepath.Join(dir, "other.safetensors")
	writeRaw(t, other, rawSpec{"f4", dtype.U8, []uint64{4, 4}, make([]byte, 16)})
	if d := diffOf(t, a, other, diff.Options{}); len(d.ShapeMismatch) != 1 {
		t.Errorf("F4 against U8: %+v", d.ShapeMismatch)
	}
}

// A packed tensor whose byte size does not match its shape stops every
// command with one line naming the file and the tensor, and no output.
func TestNewDTypesMalformed(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, header string
		data         int
		want         string
	}{
		{"F4 odd elements", `{"w":{"dtype":"F4","shape":[1,3],"data_offsets":[0,2]}}`, 2, "not a whole number of bytes"},
		{"F6 rounded per row", `{"w":{"dtype":"F6_E2M3","shape":[2,2],"data_offsets":[0,4]}}`, 4, "F6_E2M3 [2 2] needs 3"},
		{"F8 too short", `{"w":{"dtype":"F8_E4M3","shape":[4,4],"data_offsets":[0,15]}}`, 15, "F8_E4M3 [4 4] needs 16"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			bad := filepath.Join(dir, "bad.safetensors")
			h := c.header + strings.Repeat(" ", (8-len(c.header)%8)%8)
			file := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
			file = append(append(file, h...), make([]byte, c.data)...)
			if err := os.WriteFile(bad, file, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out.safetensors")
			errs := map[string]error{}
			_, errs["convert"] = convertTo(ctx, bad, out, Options{})
			_, errs["restore"] = restoreTo(ctx, bad, out, RestoreOptions{})
			_, errs["inspect"] = Inspect(ctx, bad)
			_, errs["diff"] = diff.Diff(ctx, bad, bad, diff.Options{})
			for cmd, err := range errs {
				if err == nil || !strings.HasPrefix(err.Error(), bad+`: tensor "w": `) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
					t.Errorf("%s: %v; want one line naming %s and tensor w, saying %q", cmd, err, bad, c.want)
				}
			}
			if got := names(t, dir); len(got) != 1 {
				t.Errorf("left behind: %v", got)
			}
		})
	}
}
