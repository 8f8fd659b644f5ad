package qins

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qins-dev/qins/format"

	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/quant"
)

// qinsFile writes a small QINS-layout file from tensors (name, dtype, shape
// and byte value) and metadata.
func qinsFile(t *testing.T, meta map[string]string, tensors ...format.TensorInfo) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "q.safetensors")
	w, err := format.Create(p, meta, tensors, format.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, ti := range w.Tensors() {
		b := make([]byte, ti.Bytes())
		for j := range b {
			b[j] = 1
		}
		w.TensorWriter(i).Write(b)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLogicals(t *testing.T) {
	good := `{"log_min":-5,"log_max":-1,"dtype":"BF16"}`
	packed := `{"log_min":-5,"log_max":-1,"dtype":"BF16","layout":"packed"}`
	codes := format.TensorInfo{Name: "w.qins", DType: dtype.U8, Shape: []uint64{2, 3}}
	signs := format.TensorInfo{Name: "w.sign", DType: dtype.I8, Shape: []uint64{2, 3}}
	norm := format.TensorInfo{Name: "n", DType: dtype.F32, Shape: []uint64{3}}
	meta := func(kv ...string) map[string]string {
		m := map[string]string{"qins": "1", "format": "pt"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	v2 := func(kv ...string) map[string]string {
		m := meta(kv...)
		m["qins"] = "2"
		return m
	}
	rowMeta := `{"log_min":-5,"log_max":-1,"dtype":"BF16","granularity":"row"}`
	v3 := func(kv ...string) map[string]string {
		m := meta(kv...)
		m["qins"] = "3"
		return m
	}
	rational := `{"codec":"rational","alpha":2,"dtype":"BF16"}`
	ranges := format.TensorInfo{Name: "w.logrange", DType: dtype.F32, Shape: []uint64{2, 2}}
	p := qinsFile(t, meta("qins:w", good), norm, codes, signs)
	c, err := format.OpenCheckpoint(p)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := Logicals(context.Background(), c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || ls[1].Name != "w" || !ls[1].Encoded() || ls[1].DType != dtype.BF16 || ls[1].Params.LogMin != -5 || ls[0].Encoded() {
		t.Fatalf("logicals %+v", ls)
	}

	// Only "qins:NAME" makes a tensor encoded: tensors whose names end in
	// the layout's suffixes are plain without it, and beside encoded ones.
	plain := []struct {
		name    string
		meta    map[string]string
		tensors []format.TensorInfo
		want    string // the logicals, name:encoded
	}{
		{"suffixes without metadata", meta(), []format.TensorInfo{codes, signs}, "w.qins:false w.sign:false"},
		{"I8 .sign beside an encoded tensor", meta("qins:w", good), []format.TensorInfo{codes, signs, {Name: "attention.sign", DType: dtype.I8, Shape: []uint64{4}}}, "attention.sign:false w:true"},
		{"U8 .qins and .signbits", meta("qins:w", good), []format.TensorInfo{codes, signs, {Name: "vocab.qins", DType: dtype.U8, Shape: []uint64{4}}, {Name: "vocab.signbits", DType: dtype.U8, Shape: []uint64{1}}}, "vocab.qins:false vocab.signbits:false w:true"},
		{"codes of an encoded .qins", meta("qins:w.qins", good), []format.TensorInfo{{Name: "w.qins.qins", DType: dtype.U8, Shape: []uint64{2}}, {Name: "w.qins.sign", DType: dtype.I8, Shape: []uint64{2}}, signs}, "w.qins:true w.sign:false"},
	}
	for _, c := range plain {
		t.Run(c.name, func(t *testing.T) {
			ck, err := format.OpenCheckpoint(qinsFile(t, c.meta, c.tensors...))
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			ls, err := Logicals(context.Background(), ck)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range ls {
				got = append(got, fmt.Sprintf("%s:%v", l.Name, l.Encoded()))
			}
			sort.Strings(got)
			if strings.Join(got, " ") != c.want {
				t.Errorf("got %v, want %s", got, c.want)
			}
		})
	}

	cases := []struct {
		name    string
		meta    map[string]string
		tensors []format.TensorInfo
		want    string
	}{
		{"codes without signs", meta("qins:w", good), []format.TensorInfo{codes}, "has .qins but no .sign"},
		{"signs without codes", meta("qins:w", good), []format.TensorInfo{signs}, "has .sign but no .qins"},
		{"neither", meta("qins:w", good), []format.TensorInfo{norm}, "neither"},
		{"shapes differ", meta("qins:w", good), []format.TensorInfo{codes, {Name: "w.sign", DType: dtype.I8, Shape: []uint64{3, 2}}}, "shape"},
		{"codes not U8", meta("qins:w", good), []format.TensorInfo{{Name: "w.qins", DType: dtype.I8, Shape: []uint64{2, 3}}, signs}, "want U8 and I8"},
		{"metadata not JSON", meta("qins:w", "{"), []format.TensorInfo{codes, signs}, "not valid JSON"},
		{"metadata not an object", meta("qins:w", "[1]"), []format.TensorInfo{codes, signs}, "not a JSON object"},
		{"metadata with data after", meta("qins:w", good+" {}"), []format.TensorInfo{codes, signs}, "data after"},
		{"key in upper case", meta("qins:w", `{"log_min":-10.74,"log_max":1.55,"dtype":"F32","LOG_MAX":50}`), []format.TensorInfo{codes, signs}, `unknown key "LOG_MAX"`},
		{"key case-folded", meta("qins:w", `{"Log_Min":-10.74,"log_max":1.55,"dtype":"F32"}`), []format.TensorInfo{codes, signs}, `unknown key "Log_Min"`},
		{"duplicate key", meta("qins:w", `{"log_min":-10.74,"log_max":1.55,"dtype":"F32","log_max":50}`), []format.TensorInfo{codes, signs}, `key "log_max" twice`},
		{"duplicate layout", meta("qins:w", `{"log_min":-5,"log_max":-1,"dtype":"BF16","layout":"u8+i8","layout":"packed"}`), []format.TensorInfo{codes, signs}, `key "layout" twice`},
		{"unknown key", meta("qins:w", `{"log_min":-5,"log_max":-1,"dtype":"BF16","scale":2}`), []format.TensorInfo{codes, signs}, `unknown key "scale"`},
		{"dtype not a string", meta("qins:w", `{"log_min":-5,"log_max":-1,"dtype":5}`), []format.TensorInfo{codes, signs}, "dtype is not a string"},
		{"log_max decodes to infinity", meta("qins:w", `{"log_min":-10,"log_max":1000,"dtype":"F32"}`), []format.TensorInfo{codes, signs}, "beyond the largest F32"},
		{"log_max beyond F32", meta("qins:w", `{"log_min":-10,"log_max":89,"dtype":"F32"}`), []format.TensorInfo{codes, signs}, "beyond the largest F32"},
		{"log_max beyond BF16", meta("qins:w", `{"log_min":-10,"log_max":89,"dtype":"BF16"}`), []format.TensorInfo{codes, signs}, "beyond the largest BF16"},
		{"log_max beyond F16", meta("qins:w", `{"log_min":-10,"log_max":11.1,"dtype":"F16"}`), []format.TensorInfo{codes, signs}, "beyond the largest F16"},
		{"log_max beyond F64", meta("qins:w", `{"log_min":-10,"log_max":710,"dtype":"F64"}`), []format.TensorInfo{codes, signs}, "beyond the largest F64"},
		{"range decodes to NaN", meta("qins:w", `{"log_min":-1e308,"log_max":1e308,"dtype":"F64"}`), []format.TensorInfo{codes, signs}, "too far apart"},
		{"metadata lacks log_max", meta("qins:w", `{"log_min":1,"dtype":"F32"}`), []format.TensorInfo{codes, signs}, `lacks "log_max"`},
		{"log_min above log_max", meta("qins:w", `{"log_min":1,"log_max":0,"dtype":"F32"}`), []format.TensorInfo{codes, signs}, "greater than"},
		{"log_min not a number", meta("qins:w", `{"log_min":"x","log_max":0,"dtype":"F32"}`), []format.TensorInfo{codes, signs}, "log_min: not valid JSON"},
		{"huge log range", meta("qins:w", `{"log_min":-1e400,"log_max":0,"dtype":"F32"}`), []format.TensorInfo{codes, signs}, "-1e400 is out of the range"},
		{"unknown source dtype", meta("qins:w", `{"log_min":0,"log_max":0,"dtype":"I64"}`), []format.TensorInfo{codes, signs}, "dtype"},
		{"unknown version", map[string]string{"qins": "5", "qins:w": good}, []format.TensorInfo{codes, signs}, `version "5"`},
		{"per-row in version 1", meta("qins:w", rowMeta), []format.TensorInfo{codes, signs, ranges}, "need QINS version 2"},
		{"per-row without ranges", v2("qins:w", rowMeta), []format.TensorInfo{codes, signs}, "no w.logrange"},
		{"ranges of wrong shape", v2("qins:w", rowMeta), []format.TensorInfo{codes, signs, {Name: "w.logrange", DType: dtype.F32, Shape: []uint64{3, 2}}}, "want F32 [2 2]"},
		{"ranges of wrong dtype", v2("qins:w", rowMeta), []format.TensorInfo{codes, signs, {Name: "w.logrange", DType: dtype.F64, Shape: []uint64{2, 2}}}, "want F32"},
		{"unknown granularity", v2("qins:w", `{"log_min":-5,"log_max":-1,"dtype":"BF16","granularity":"block"}`), []format.TensorInfo{codes, signs, ranges}, `granularity "block"`},
		{"stored twice", meta("qins:w", good), []format.TensorInfo{codes, signs, {Name: "w", DType: dtype.F32, Shape: []uint64{1}}}, "both encoded and unchanged"},
		{"unknown layout", meta("qins:w", `{"log_min":-5,"log_max":-1,"dtype":"BF16","layout":"zip"}`), []format.TensorInfo{codes, signs}, `layout "zip"`},
		{"packed without sign bits", meta("qins:w", packed), []format.TensorInfo{codes, signs}, "has .qins but no .signbits"},
		{"packed sign bits too short", meta("qins:w", packed), []format.TensorInfo{codes, {Name: "w.signbits", DType: dtype.U8, Shape: []uint64{0}}}, "need [1]"},
		{"rational in version 2", v2("qins:w", rational), []format.TensorInfo{codes}, "needs QINS version 3"},
		{"rational in version 1", meta("qins:w", rational), []format.TensorInfo{codes}, "needs QINS version 3"},
		{"rational without codes", v3("qins:w", rational), []format.TensorInfo{signs}, "no .qins"},
		{"rational codes not U8", v3("qins:w", rational), []format.TensorInfo{{Name: "w.qins", DType: dtype.I8, Shape: []uint64{2, 3}}}, "want U8"},
		{"rational stored twice", v3("qins:w", rational), []format.TensorInfo{codes, {Name: "w", DType: dtype.F32, Shape: []uint64{1}}}, "both encoded and unchanged"},
		{"rational with log_min", v3("qins:w", `{"codec":"rational","alpha":2,"dtype":"BF16","log_min":-1}`), []format.TensorInfo{codes}, `key "log_min", which the rational codec does not have`},
		{"rational with layout", v3("qins:w", `{"codec":"rational","alpha":2,"dtype":"BF16","layout":"packed"}`), []format.TensorInfo{codes}, `key "layout"`},
		{"rational without alpha", v3("qins:w", `{"codec":"rational","dtype":"BF16"}`), []format.TensorInfo{codes}, `lacks "alpha"`},
		{"rational alpha 0", v3("qins:w", `{"codec":"rational","alpha":0,"dtype":"BF16"}`), []format.TensorInfo{codes}, "above 0"},
		{"rational alpha negative", v3("qins:w", `{"codec":"rational","alpha":-2,"dtype":"BF16"}`), []format.TensorInfo{codes}, "above 0"},
		{"rational alpha too large a number", v3("qins:w", `{"codec":"rational","alpha":1e999,"dtype":"BF16"}`), []format.TensorInfo{codes}, "out of the range"},
		{"rational alpha beyond F16", v3("qins:w", `{"codec":"rational","alpha":0.001,"dtype":"F16"}`), []format.TensorInfo{codes}, "beyond the largest F16"},
		{"log codec with alpha", v3("qins:w", `{"log_min":-5,"log_max":-1,"dtype":"BF16","alpha":2}`), []format.TensorInfo{codes, signs}, `key "alpha", which the log codec does not have`},
		{"unknown codec", v3("qins:w", `{"codec":"zip","alpha":2,"dtype":"BF16"}`), []format.TensorInfo{codes}, `codec "zip"`},
		{"packed sign bits not U8", meta("qins:w", packed), []format.TensorInfo{codes, {Name: "w.signbits", DType: dtype.I8, Shape: []uint64{1}}}, "want U8 and U8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := qinsFile(t, c.meta, c.tensors...)
			ck, err := format.OpenCheckpoint(p)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			_, err = Logicals(context.Background(), ck)
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, c.want) || !strings.HasPrefix(msg, p) {
				t.Errorf("got %q, want the file named and %q", msg, c.want)
			}
		})
	}
}

// TestLogicalsCancel: the loop over a large header's encoded tensors stops
// once its context is done.
func TestLogicalsCancel(t *testing.T) {
	meta := map[string]string{"qins": "1"}
	var ts []format.TensorInfo
	for i := range 8192 {
		name := fmt.Sprintf("w%d", i)
		meta["qins:"+name] = `{"log_min":-5,"log_max":-1,"dtype":"BF16"}`
		ts = append(ts, format.TensorInfo{Name: name + ".qins", DType: dtype.U8, Shape: []uint64{1}}, format.TensorInfo{Name: name + ".sign", DType: dtype.I8, Shape: []uint64{1}})
	}
	c, err := format.OpenCheckpoint(qinsFile(t, meta, ts...))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ls, err := Logicals(context.Background(), c); err != nil || len(ls) != 8192 {
		t.Fatalf("%d logicals, %v", len(ls), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Logicals(ctx, c); err != context.Canceled {
		t.Fatalf("canceled: got %v", err)
	}
}

// TestLogicalsRational: a version-3 file's rational tensor has its codes
// alone, and every reader decodes them with its alpha: code 1 with alpha
// 2 is sign(z) (1-|z|)/(2|z|), z = 1/127.5 - 1.
func TestLogicalsRational(t *testing.T) {
	codes := format.TensorInfo{Name: "w.qins", DType: dtype.U8, Shape: []uint64{2, 3}}
	meta := map[string]string{"qins": "3", "qins:w": `{"codec":"rational","alpha":2,"dtype":"BF16"}`,
		"qins:v": `{"log_min":-5,"log_max":-1,"dtype":"F32"}`}
	p := qinsFile(t, meta, codes,
		format.TensorInfo{Name: "v.qins", DType: dtype.U8, Shape: []uint64{2}},
		format.TensorInfo{Name: "v.sign", DType: dtype.I8, Shape: []uint64{2}})
	c, err := format.OpenCheckpoint(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ls, err := Logicals(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	var l *Logical
	for i := range ls {
		if ls[i].Name == "w" {
			l = &ls[i]
		}
	}
	if len(ls) != 2 || l == nil || l.Codec != CodecRational || l.Alpha != 2 || l.Signs != nil || l.DType != dtype.BF16 || l.StoredBytes() != 6 {
		t.Fatalf("logicals %+v", ls)
	}
	want := quant.RationalValue(1, 2)
	src, err := NewSource(l)
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]float64, 6)
	var raw []byte
	if _, err := src.Values(0, 6, vals, &raw); err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if v != float64(float32(want)) || v >= 0 {
			t.Fatalf("values %v, want %v", vals, want)
		}
	}
	keys := make([]uint16, 6)
	if err := src.Keys(0, 6, keys, &raw); err != nil {
		t.Fatal(err)
	}
	if v, err := src.KeyValue(keys[0], 0); err != nil || v != vals[0] {
		t.Fatalf("key %#x: %v, %v", keys[0], v, err)
	}
	if n := src.BytesOf(0, 6); n != 6 {
		t.Errorf("BytesOf %d", n)
	}
	out := make([]byte, 6*8)
	cs, signs := make([]uint8, 6), make([]int8, 6)
	if err := l.ReadCodes(0, 6, cs, signs, &raw); err != nil {
		t.Fatal(err)
	}
	if err := NewDecoder(l).DecodeTo(dtype.F64, 0, cs, signs, out); err != nil {
		t.Fatal(err)
	}
	if got := math.Float64frombits(binary.LittleEndian.Uint64(out)); got != want {
		t.Errorf("F64 %v, want %v", got, want)
	}
}

// i8File writes a version-v file with the i8 tensor w of the given codes
// and metadata m, and its codes stored as dt.
func i8File(t *testing.T, v, m string, dt dtype.DType, codes []int8, extra ...format.TensorInfo) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "q.safetensors")
	infos := append([]format.TensorInfo{{Name: "w.qins", DType: dt, Shape: []uint64{2, uint64(len(codes) / 2)}}}, extra...)
	w, err := format.Create(p, map[string]string{"qins": v, "qins:w": m}, infos, format.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, ti := range w.Tensors() {
		b := make([]byte, ti.Bytes())
		if i == 0 {
			copy(b, quant.Int8Bytes(codes))
		}
		w.TensorWriter(i).Write(b)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLogicalsI8: a version-3 file's i8 tensor has its I8 codes alone;
// codes 0, ±1 and ±127 decode by the formula through every reader, -128
// is refused, and the parts, dtype and version are checked.
func TestLogicalsI8(t *testing.T) {
	meta := `{"log_min":-5,"log_max":-1,"dtype":"BF16","layout":"i8"}`
	p := quant.Params{LogMin: -5, LogMax: -1}
	codes := []int8{0, 1, -1, 127, -127, 64}
	c, err := format.OpenCheckpoint(i8File(t, "3", meta, dtype.I8, codes))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ls, err := Logicals(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Layout != LayoutI8 || ls[0].Signs != nil || ls[0].Params != p || ls[0].StoredBytes() != 6 {
		t.Fatalf("logicals %+v", ls)
	}
	l := &ls[0]
	src, err := NewSource(l)
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]float64, 6)
	var raw []byte
	if _, err := src.Values(0, 6, vals, &raw); err != nil {
		t.Fatal(err)
	}
	for i, c := range codes {
		want := float64(float32(p.ValueI8(c)))
		if vals[i] != want {
			t.Errorf("code %d: %v, want %v", c, vals[i], want)
		}
	}
	if vals[1] != float64(float32(math.Exp(-1))) || vals[4] != float64(float32(-math.Exp(-5))) || vals[0] != 0 {
		t.Errorf("values %v", vals)
	}
	keys := make([]uint16, 6)
	if err := src.Keys(0, 6, keys, &raw); err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if v, err := src.KeyValue(keys[i], int64(i)); err != nil || v != vals[i] {
			t.Fatalf("key %#x: %v, %v", keys[i], v, err)
		}
	}
	if n := src.BytesOf(0, 6); n != 6 {
		t.Errorf("BytesOf %d", n)
	}
	cs, signs := make([]uint8, 6), make([]int8, 6)
	if err := l.ReadCodes(0, 6, cs, signs, &raw); err != nil {
		t.Fatal(err)
	}
	for _, dt := range []dtype.DType{dtype.F16, dtype.BF16, dtype.F32, dtype.F64} {
		out := make([]byte, 6*dt.Size())
		if err := NewDecoder(l).DecodeTo(dt, 0, cs, signs, out); err != nil {
			t.Fatal(err)
		}
		if dt == dtype.F64 {
			if got := math.Float64frombits(binary.LittleEndian.Uint64(out[8*3:])); got != math.Exp(-5) {
				t.Errorf("F64 code 127: %v", got)
			}
		}
	}

	// Code -128 is refused when decoded, naming the element.
	bad, err := format.OpenCheckpoint(i8File(t, "3", meta, dtype.I8, []int8{0, 1, -128, 5}))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	ls, err = Logicals(context.Background(), bad)
	if err != nil {
		t.Fatal(err)
	}
	if src, err = NewSource(&ls[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Values(0, 4, vals, &raw); err == nil || !strings.Contains(err.Error(), "element 2") || !strings.Contains(err.Error(), "-128") {
		t.Errorf("code -128: %v", err)
	}

	for _, tc := range []struct {
		name, version, meta string
		dt                  dtype.DType
		extra               []format.TensorInfo
		want                string
	}{
		{"version 2", "2", meta, dtype.I8, nil, "needs QINS version 3"},
		{"version 1", "1", meta, dtype.I8, nil, "needs QINS version 3"},
		{"U8 codes", "3", meta, dtype.U8, nil, "want I8"},
		{"stored twice", "3", meta, dtype.I8, []format.TensorInfo{{Name: "w", DType: dtype.BF16, Shape: []uint64{2, 2}}}, "both encoded"},
		{"per row", "3", `{"log_min":-5,"log_max":-1,"dtype":"BF16","layout":"i8","granularity":"row"}`, dtype.I8, nil, "no w.logrange"},
		{"per row, bad ranges", "3", `{"log_min":-5,"log_max":-1,"dtype":"BF16","layout":"i8","granularity":"row"}`, dtype.I8, []format.TensorInfo{{Name: "w.logrange", DType: dtype.F32, Shape: []uint64{3, 2}}}, "want F32 [2 2]"},
		{"infinite range", "3", `{"log_min":-5,"log_max":1000,"dtype":"BF16","layout":"i8"}`, dtype.I8, nil, "beyond"},
	} {
		c, err := format.OpenCheckpoint(i8File(t, tc.version, tc.meta, tc.dt, []int8{1, 2, 3, 4}, tc.extra...))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Logicals(context.Background(), c)
		c.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// TestLogicalsFirstErrorIsStable: a file with several bad entries names
// the same one, the first by name, on every run (issue 23, round four:
// it depended on the order of a map).
func TestLogicalsFirstErrorIsStable(t *testing.T) {
	meta := map[string]string{"qins": "1"}
	var ts []format.TensorInfo
	for _, n := range []string{"m", "c", "x", "a", "q"} {
		meta["qins:"+n] = `{"log_min":1,"log_max":0,"dtype":"F32"}` // log_min above log_max
		ts = append(ts, format.TensorInfo{Name: n + ".qins", DType: dtype.U8, Shape: []uint64{2}},
			format.TensorInfo{Name: n + ".sign", DType: dtype.I8, Shape: []uint64{2}})
	}
	p := qinsFile(t, meta, ts...)
	for range 20 {
		ck, err := format.OpenCheckpoint(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Logicals(context.Background(), ck)
		ck.Close()
		if err == nil || !strings.Contains(err.Error(), `tensor "a"`) {
			t.Fatalf("got %v, want the error of tensor a", err)
		}
	}
}
