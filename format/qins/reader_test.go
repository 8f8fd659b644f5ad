package qins

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qins-dev/qins/format"

	"github.com/qins-dev/qins/format/dtype"
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
		{"unknown version", map[string]string{"qins": "4", "qins:w": good}, []format.TensorInfo{codes, signs}, `version "4"`},
		{"per-row in version 1", meta("qins:w", rowMeta), []format.TensorInfo{codes, signs, ranges}, "need QINS version 2"},
		{"per-row without ranges", v2("qins:w", rowMeta), []format.TensorInfo{codes, signs}, "no w.logrange"},
		{"ranges of wrong shape", v2("qins:w", rowMeta), []format.TensorInfo{codes, signs, {Name: "w.logrange", DType: dtype.F32, Shape: []uint64{3, 2}}}, "want F32 [2 2]"},
		{"ranges of wrong dtype", v2("qins:w", rowMeta), []format.TensorInfo{codes, signs, {Name: "w.logrange", DType: dtype.F64, Shape: []uint64{2, 2}}}, "want F32"},
		{"unknown granularity", v2("qins:w", `{"log_min":-5,"log_max":-1,"dtype":"BF16","granularity":"block"}`), []format.TensorInfo{codes, signs, ranges}, `granularity "block"`},
		{"stored twice", meta("qins:w", good), []format.TensorInfo{codes, signs, {Name: "w", DType: dtype.F32, Shape: []uint64{1}}}, "both encoded and unchanged"},
		{"unknown layout", meta("qins:w", `{"log_min":-5,"log_max":-1,"dtype":"BF16","layout":"zip"}`), []format.TensorInfo{codes, signs}, `layout "zip"`},
		{"packed without sign bits", meta("qins:w", packed), []format.TensorInfo{codes, signs}, "has .qins but no .signbits"},
		{"packed sign bits too short", meta("qins:w", packed), []format.TensorInfo{codes, {Name: "w.signbits", DType: dtype.U8, Shape: []uint64{0}}}, "need [1]"},
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
