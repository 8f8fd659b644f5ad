package format

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"
)

// qinsFile writes a small QINS-layout file from tensors (name, dtype, shape
// and byte value) and metadata.
func qinsFile(t *testing.T, meta map[string]string, tensors ...TensorInfo) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "q.safetensors")
	w, err := Create(p, meta, tensors, CreateOptions{})
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
	codes := TensorInfo{Name: "w.qins", DType: safetensors.U8, Shape: []uint64{2, 3}}
	signs := TensorInfo{Name: "w.sign", DType: safetensors.I8, Shape: []uint64{2, 3}}
	norm := TensorInfo{Name: "n", DType: safetensors.F32, Shape: []uint64{3}}
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
	ranges := TensorInfo{Name: "w.logrange", DType: safetensors.F32, Shape: []uint64{2, 2}}
	p := qinsFile(t, meta("qins:w", good), norm, codes, signs)
	c, err := OpenCheckpoint(p)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := Logicals(c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || ls[1].Name != "w" || !ls[1].Encoded() || ls[1].DType != safetensors.BF16 || ls[1].Params.LogMin != -5 || ls[0].Encoded() {
		t.Fatalf("logicals %+v", ls)
	}

	cases := []struct {
		name    string
		meta    map[string]string
		tensors []TensorInfo
		want    string
	}{
		{"codes without signs", meta("qins:w", good), []TensorInfo{codes}, "has .qins but no .sign"},
		{"signs without codes", meta("qins:w", good), []TensorInfo{signs}, "has .sign but no .qins"},
		{"neither", meta("qins:w", good), []TensorInfo{norm}, "neither"},
		{"shapes differ", meta("qins:w", good), []TensorInfo{codes, {Name: "w.sign", DType: safetensors.I8, Shape: []uint64{3, 2}}}, "shape"},
		{"codes not U8", meta("qins:w", good), []TensorInfo{{Name: "w.qins", DType: safetensors.I8, Shape: []uint64{2, 3}}, signs}, "want U8 and I8"},
		{"no metadata", meta(), []TensorInfo{codes, signs}, `no "qins:w" metadata`},
		{"metadata not JSON", meta("qins:w", "{"), []TensorInfo{codes, signs}, "not a JSON object"},
		{"metadata lacks log_max", meta("qins:w", `{"log_min":1,"dtype":"F32"}`), []TensorInfo{codes, signs}, `lacks "log_max"`},
		{"log_min above log_max", meta("qins:w", `{"log_min":1,"log_max":0,"dtype":"F32"}`), []TensorInfo{codes, signs}, "greater than"},
		{"log_min not a number", meta("qins:w", `{"log_min":"x","log_max":0,"dtype":"F32"}`), []TensorInfo{codes, signs}, "malformed"},
		{"huge log range", meta("qins:w", `{"log_min":-1e400,"log_max":0,"dtype":"F32"}`), []TensorInfo{codes, signs}, "malformed"},
		{"unknown source dtype", meta("qins:w", `{"log_min":0,"log_max":0,"dtype":"I64"}`), []TensorInfo{codes, signs}, "dtype"},
		{"unknown version", map[string]string{"qins": "3", "qins:w": good}, []TensorInfo{codes, signs}, `version "3"`},
		{"per-row in version 1", meta("qins:w", rowMeta), []TensorInfo{codes, signs, ranges}, "need QINS version 2"},
		{"per-row without ranges", v2("qins:w", rowMeta), []TensorInfo{codes, signs}, "no w.logrange"},
		{"ranges of wrong shape", v2("qins:w", rowMeta), []TensorInfo{codes, signs, {Name: "w.logrange", DType: safetensors.F32, Shape: []uint64{3, 2}}}, "want F32 [2 2]"},
		{"ranges of wrong dtype", v2("qins:w", rowMeta), []TensorInfo{codes, signs, {Name: "w.logrange", DType: safetensors.F64, Shape: []uint64{2, 2}}}, "want F32"},
		{"ranges without granularity", v2("qins:w", good), []TensorInfo{codes, signs, ranges}, "granularity"},
		{"unknown granularity", v2("qins:w", `{"log_min":-5,"log_max":-1,"dtype":"BF16","granularity":"block"}`), []TensorInfo{codes, signs, ranges}, `granularity "block"`},
		{"stored twice", meta("qins:w", good), []TensorInfo{codes, signs, {Name: "w", DType: safetensors.F32, Shape: []uint64{1}}}, "both encoded and unchanged"},
		{"unknown layout", meta("qins:w", `{"log_min":-5,"log_max":-1,"dtype":"BF16","layout":"zip"}`), []TensorInfo{codes, signs}, `layout "zip"`},
		{"packed without sign bits", meta("qins:w", packed), []TensorInfo{codes, signs}, "has .qins but no .signbits"},
		{"packed sign bits too short", meta("qins:w", packed), []TensorInfo{codes, {Name: "w.signbits", DType: safetensors.U8, Shape: []uint64{0}}}, "need [1]"},
		{"packed sign bits not U8", meta("qins:w", packed), []TensorInfo{codes, {Name: "w.signbits", DType: safetensors.I8, Shape: []uint64{1}}}, "want U8 and U8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := qinsFile(t, c.meta, c.tensors...)
			ck, err := OpenCheckpoint(p)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			_, err = Logicals(ck)
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, c.want) || !strings.HasPrefix(msg, p) {
				t.Errorf("got %q, want the file named and %q", msg, c.want)
			}
		})
	}
}
