package qins

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
)

// qinsShards writes a two-shard QINS checkpoint: shard 1 holds n (F32) and
// the metadata meta1, shard 2 holds w.qins and w.sign and the metadata
// meta2. It returns the index.
func qinsShards(t *testing.T, meta1, meta2 map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, meta map[string]string, ts ...format.TensorInfo) {
		w, err := format.Create(filepath.Join(dir, name), meta, ts, format.CreateOptions{})
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
	}
	write("s1.safetensors", meta1, format.TensorInfo{Name: "n", DType: dtype.F32, Shape: []uint64{3}})
	write("s2.safetensors", meta2, format.TensorInfo{Name: "w.qins", DType: dtype.U8, Shape: []uint64{2, 3}},
		format.TensorInfo{Name: "w.sign", DType: dtype.I8, Shape: []uint64{2, 3}})
	index := filepath.Join(dir, "model.qins.safetensors.index.json")
	js := format.MarshalIndex(18, map[string]string{"n": "s1.safetensors", "w.qins": "s2.safetensors", "w.sign": "s2.safetensors"})
	if err := os.WriteFile(index, js, 0o644); err != nil {
		t.Fatal(err)
	}
	return index
}

func TestQINSShards(t *testing.T) {
	params := `{"log_min":-5,"log_max":-1,"dtype":"BF16"}`
	v := map[string]string{"qins": "1"}
	withW := map[string]string{"qins": "1", "qins:w": params}
	for _, tc := range []struct {
		name         string
		meta1, meta2 map[string]string
		want         string // "" for no error
	}{
		{"metadata with the tensor", v, withW, ""},
		{"metadata in the other shard", withW, v, "is in this shard but w.qins is in"},
		{"metadata in both shards", withW, withW, "is in this shard but w.qins is in"},
		{"a shard without the version", map[string]string{"format": "pt"}, withW, "without \"qins\" metadata"},
		{"versions differ", v, map[string]string{"qins": "2", "qins:w": params}, "differs from the other shards"},
		// The error names the shard that holds the bad entry, not the index.
		{"a bad entry", v, map[string]string{"qins": "1", "qins:w": `{"log_min":-5}`}, "s2.safetensors: tensor \"w\": metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := format.OpenCheckpoint(qinsShards(t, tc.meta1, tc.meta2))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ls, err := Logicals(context.Background(), c)
			if tc.want == "" {
				if err != nil || len(ls) != 2 || !ls[1].Encoded() && !ls[0].Encoded() {
					t.Errorf("logicals %v, %v", ls, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
