package format

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tinyDir = "../testdata/phi-3.5-mini-tiny"

// copyTiny copies the tiny checkpoint into a temporary folder and returns
// it with its index decoded.
func copyTiny(t *testing.T) (string, map[string]any) {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(tinyDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
	}
	var idx map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, IndexName))
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	return dir, idx
}

func writeIndex(t *testing.T, dir string, idx map[string]any) {
	t.Helper()
	b, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(dir, IndexName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCheckpointForms(t *testing.T) {
	for _, p := range []string{tinyDir, filepath.Join(tinyDir, IndexName)} {
		c, err := OpenCheckpoint(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Tensors) != 195 || len(c.Files) != 2 || c.Metadata["format"] != "pt" {
			t.Errorf("%s: %d tensors in %d files, metadata %v", p, len(c.Tensors), len(c.Files), c.Metadata)
		}
		c.Close()
	}
	c, err := OpenCheckpoint(filepath.Join(tinyDir, "model-00002-of-00002.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tensors) != 67 || c.Index != "" {
		t.Errorf("one shard: %d tensors, index %q", len(c.Tensors), c.Index)
	}
	c.Close()
}

func TestIndexChecks(t *testing.T) {
	cases := []struct {
		name string
		edit func(dir string, wm map[string]any)
		want string
	}{
		{"missing shard", func(dir string, wm map[string]any) {
			os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors"))
		}, `lists shard "model-00002-of-00002.safetensors" (for tensor "lm_head.weight" and 66 more), which does not exist`},
		{"listed tensor not in shard", func(dir string, wm map[string]any) {
			wm["model.extra.weight"] = "model-00001-of-00002.safetensors"
		}, `tensor "model.extra.weight": listed in the index, but shard`},
		{"shard tensor not listed", func(dir string, wm map[string]any) {
			delete(wm, "lm_head.weight")
		}, `tensor "lm_head.weight": is in shard "model-00002-of-00002.safetensors" but not listed`},
		{"tensor listed in the wrong shard", func(dir string, wm map[string]any) {
			wm["lm_head.weight"] = "model-00001-of-00002.safetensors"
		}, `tensor "lm_head.weight"`},
		{"parent path", func(dir string, wm map[string]any) {
			wm["lm_head.weight"] = "../model-00002-of-00002.safetensors"
		}, "leaves the checkpoint folder"},
		{"absolute path", func(dir string, wm map[string]any) {
			wm["lm_head.weight"] = filepath.Join(dir, "model-00002-of-00002.safetensors")
		}, "leaves the checkpoint folder"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, idx := copyTiny(t)
			c.edit(dir, idx["weight_map"].(map[string]any))
			writeIndex(t, dir, idx)
			ck, err := OpenCheckpoint(dir)
			if err == nil {
				ck.Close()
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, c.want) || !strings.Contains(msg, IndexName) {
				t.Errorf("got %q, want the index named and %q", msg, c.want)
			}
		})
	}
}

func TestIndexNotValid(t *testing.T) {
	for name, js := range map[string]string{
		"not json":        "{",
		"no weight_map":   `{"metadata":{}}`,
		"shard not text":  `{"weight_map":{"a":1}}`,
		"duplicate entry": `{"weight_map":{"a":"x.safetensors","a":"x.safetensors"}}`,
		"empty":           `{"weight_map":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, IndexName), []byte(js), 0o644)
			if _, err := OpenCheckpoint(dir); err == nil || !strings.Contains(err.Error(), IndexName) {
				t.Errorf("got %v, want an error naming the index", err)
			}
		})
	}
}

// The Hugging Face cache lays snapshots out as symlinks into ../../blobs.
func TestSymlinkedShards(t *testing.T) {
	root := t.TempDir()
	blobs := filepath.Join(root, "blobs")
	snap := filepath.Join(root, "snapshots", "abc123")
	os.MkdirAll(blobs, 0o755)
	os.MkdirAll(snap, 0o755)
	ents, _ := os.ReadDir(tinyDir)
	for i, e := range ents {
		b, _ := os.ReadFile(filepath.Join(tinyDir, e.Name()))
		blob := filepath.Join(blobs, "blob"+string(rune('a'+i)))
		os.WriteFile(blob, b, 0o644)
		if err := os.Symlink(filepath.Join("..", "..", "blobs", filepath.Base(blob)), filepath.Join(snap, e.Name())); err != nil {
			t.Skip("symlinks not permitted:", err)
		}
	}
	c, err := OpenCheckpoint(snap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Tensors) != 195 {
		t.Errorf("%d tensors", len(c.Tensors))
	}
}

func TestFolderWithoutIndex(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "no .safetensors file") {
		t.Errorf("empty folder: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(tinyDir, "model-00002-of-00002.safetensors"))
	os.WriteFile(filepath.Join(dir, "a.safetensors"), b, 0o644)
	c, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatalf("one file: %v", err)
	}
	c.Close()
	os.WriteFile(filepath.Join(dir, "b.safetensors"), b, 0o644)
	if _, err := OpenCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "2 .safetensors files") {
		t.Errorf("two files: %v", err)
	}
}
