package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/qins-dev/qins/format/dtype"

	"github.com/qins-dev/qins/format"
)

// TestLayoutMatchesPhi35 checks the full-size layout against the real
// checkpoint's index in ../shared, without writing any data.
func TestLayoutMatchesPhi35(t *testing.T) {
	b, err := os.ReadFile("../../../shared/phi-3.5-mini/model.safetensors.index.json")
	if err != nil {
		t.Skip("../shared/phi-3.5-mini is not here")
	}
	var idx struct {
		Metadata struct {
			TotalSize uint64 `json:"total_size"`
		} `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	specs := Layout(presets["full"])
	if len(specs) != len(idx.WeightMap) || len(specs) != 195 {
		t.Fatalf("%d tensors, the index lists %d", len(specs), len(idx.WeightMap))
	}
	var total uint64
	perShard := [2]int{}
	for _, s := range specs {
		if idx.WeightMap[s.Name] != ShardNames[s.Shard] {
			t.Errorf("%s in %s, index says %s", s.Name, ShardNames[s.Shard], idx.WeightMap[s.Name])
		}
		n, _ := format.Elements(s.Shape)
		total += 2 * n
		perShard[s.Shard]++
	}
	if total != idx.Metadata.TotalSize {
		t.Errorf("total size %d, index says %d", total, idx.Metadata.TotalSize)
	}
	if perShard != [2]int{128, 67} {
		t.Errorf("tensors per shard %v, want 128 and 67", perShard)
	}
}

// TestTinyIsReproducible regenerates the committed tiny checkpoint and
// compares it byte for byte.
func TestTinyIsReproducible(t *testing.T) {
	dir := t.TempDir()
	if err := Generate(dir, presets["tiny"], 1, false); err != nil {
		t.Fatal(err)
	}
	committed := "../../testdata/phi-3.5-mini-tiny"
	ents, err := os.ReadDir(committed)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 4 {
		t.Errorf("committed folder holds %d files, want 4", len(ents))
	}
	for _, e := range ents {
		a, _ := os.ReadFile(filepath.Join(committed, e.Name()))
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from a fresh generation (err %v)", e.Name(), err)
		}
	}
}

func TestValuesLookLikeWeights(t *testing.T) {
	c, err := format.OpenCheckpoint("../../testdata/phi-3.5-mini-tiny")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var zeros, outliers, n, normN int
	var normSum float64
	for _, ts := range c.Tensors {
		raw := make([]byte, ts.Bytes())
		ts.Section().ReadAt(raw, 0)
		for i := 0; i+1 < len(raw); i += 2 {
			v := float64(dtype.BF16ToFloat32(binary.LittleEndian.Uint16(raw[i:])))
			if len(ts.Shape) == 1 {
				normSum += v
				normN++
				continue
			}
			n++
			if v == 0 {
				zeros++
			}
			if v > 0.1 || v < -0.1 {
				outliers++
			}
		}
	}
	if zeros == 0 || outliers == 0 || float64(outliers) > 0.01*float64(n) {
		t.Errorf("%d zeros and %d outliers (|w| > 5 sigma) in %d weights", zeros, outliers, n)
	}
	if m := normSum / float64(normN); m < 0.95 || m > 1.05 {
		t.Errorf("norm weights average %v, want about 1", m)
	}
}

func decodeConfig(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The full preset writes Phi-3.5-mini's own config.json, every value as
// published (key order aside).
func TestFullConfigIsPhi35s(t *testing.T) {
	real, err := os.ReadFile("../../../shared/phi-3.5-mini/config.json")
	if err != nil {
		t.Skip("../shared/phi-3.5-mini is not here")
	}
	got, err := Config(presets["full"])
	if err != nil {
		t.Fatal(err)
	}
	if g, w := decodeConfig(t, got), decodeConfig(t, real); !reflect.DeepEqual(g, w) {
		t.Errorf("full preset config.json differs from Phi-3.5-mini's:\n%s", got)
	}
}

// Every preset's config describes its tensors: sizes, one rope factor per
// pair of head dimensions, special ids inside the vocabulary.
func TestConfigsAreConsistent(t *testing.T) {
	for name, a := range presets {
		b, err := Config(a)
		if err != nil {
			t.Fatal(name, err)
		}
		m := decodeConfig(t, b)
		num := func(k string) int {
			n, err := strconv.Atoi(string(m[k].(json.Number)))
			if err != nil {
				t.Fatalf("%s: %s: %v", name, k, err)
			}
			return n
		}
		if num("hidden_size") != a.Hidden || num("intermediate_size") != a.Intermediate || num("num_hidden_layers") != a.Layers ||
			num("num_attention_heads") != a.Heads || num("num_key_value_heads") != a.Heads || num("vocab_size") != a.Vocab {
			t.Errorf("%s: sizes differ from %+v:\n%s", name, a, b)
		}
		rs := m["rope_scaling"].(map[string]any)
		for _, k := range []string{"short_factor", "long_factor"} {
			if n := len(rs[k].([]any)); n != a.Hidden/a.Heads/2 {
				t.Errorf("%s: %d %s, want %d", name, n, k, a.Hidden/a.Heads/2)
			}
		}
		for _, k := range []string{"bos_token_id", "eos_token_id", "pad_token_id"} {
			if id := num(k); id < 0 || id >= a.Vocab {
				t.Errorf("%s: %s %d outside the vocabulary of %d", name, k, id, a.Vocab)
			}
		}
	}
}
