// Command gencheckpoint writes a synthetic checkpoint with the layout of
// microsoft/Phi-3.5-mini-instruct: its tensor names, shapes, BF16 dtype,
// {"format":"pt"} metadata, two-shard split, model.safetensors.index.json
// and config.json (Phi-3.5-mini's own, longrope factors included, with the
// preset's sizes). Values are deterministic from a seed and shaped like
// trained weights: projections and embeddings Normal(0, 0.02) with a heavy
// tail of outliers and some exact zeros, norm weights near 1.
//
//	go run ./scripts/gencheckpoint -preset tiny -o testdata/phi-3.5-mini-tiny
//	go run ./scripts/gencheckpoint -preset full -o /data/phi-3.5-mini-gen
package main

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
)

// Arch is the size of a Phi-3-architecture model.
type Arch struct {
	Hidden, Intermediate, Layers, Vocab, Heads int
}

// Presets are the sizes the generator knows.
var presets = map[string]Arch{
	"full": {Hidden: 3072, Intermediate: 8192, Layers: 32, Vocab: 32064, Heads: 32},
	"tiny": {Hidden: 16, Intermediate: 32, Layers: 32, Vocab: 128, Heads: 2},
}

// Spec is one tensor of the checkpoint.
type Spec struct {
	Name  string
	Shape []uint64
	Shard int // 0 or 1
	Norm  bool
}

// ShardNames are the Hugging Face names of the two shards.
var ShardNames = [2]string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}

// Layout returns the tensors of a Phi-3 checkpoint of size a, split over two
// shards as Phi-3.5-mini's is: the first holds embed_tokens, layers up to
// 21 of 32 and that layer's o_proj (the same fraction for other depths),
// the second the rest.
func Layout(a Arch) []Spec {
	h, in, v := uint64(a.Hidden), uint64(a.Intermediate), uint64(a.Vocab)
	split := a.Layers * 21 / 32 // the layer whose o_proj ends the first shard
	var specs []Spec
	specs = append(specs, Spec{Name: "model.embed_tokens.weight", Shape: []uint64{v, h}})
	for l := 0; l < a.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		shard := 0
		if l > split {
			shard = 1
		}
		late := shard
		if l == split {
			late = 1 // all but o_proj of the split layer go to the second shard
		}
		specs = append(specs,
			Spec{Name: p + "input_layernorm.weight", Shape: []uint64{h}, Shard: late, Norm: true},
			Spec{Name: p + "mlp.down_proj.weight", Shape: []uint64{h, in}, Shard: late},
			Spec{Name: p + "mlp.gate_up_proj.weight", Shape: []uint64{2 * in, h}, Shard: late},
			Spec{Name: p + "post_attention_layernorm.weight", Shape: []uint64{h}, Shard: late, Norm: true},
			Spec{Name: p + "self_attn.o_proj.weight", Shape: []uint64{h, h}, Shard: shard},
			Spec{Name: p + "self_attn.qkv_proj.weight", Shape: []uint64{3 * h, h}, Shard: late},
		)
	}
	specs = append(specs,
		Spec{Name: "model.norm.weight", Shape: []uint64{h}, Shard: 1, Norm: true},
		Spec{Name: "lm_head.weight", Shape: []uint64{v, h}, Shard: 1},
	)
	return specs
}

func main() {
	preset := flag.String("preset", "tiny", "size: tiny or full")
	out := flag.String("o", "", "output `folder` (required)")
	seed := flag.Uint64("seed", 1, "random seed")
	layers := flag.Int("layers", 0, "number of layers (default: the preset's)")
	force := flag.Bool("force", false, "replace existing files")
	flag.Parse()
	a, ok := presets[*preset]
	if !ok || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: gencheckpoint -preset tiny|full -o FOLDER [-seed N] [-layers N] [-force]")
		os.Exit(2)
	}
	if *layers > 0 {
		a.Layers = *layers
	}
	if err := Generate(*out, a, *seed, *force); err != nil {
		fmt.Fprintln(os.Stderr, "gencheckpoint:", err)
		os.Exit(1)
	}
}

// Generate writes the checkpoint of size a into dir.
func Generate(dir string, a Arch, seed uint64, force bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	specs := Layout(a)
	weightMap := map[string]string{}
	var total uint64
	for shard, name := range ShardNames {
		var ts []format.TensorInfo
		var mine []Spec
		for _, s := range specs {
			if s.Shard == shard {
				mine = append(mine, s)
			}
		}
		// Hugging Face's writer orders a shard's tensors by name.
		sort.Slice(mine, func(i, j int) bool { return mine[i].Name < mine[j].Name })
		for _, s := range mine {
			ts = append(ts, format.TensorInfo{Name: s.Name, DType: dtype.BF16, Shape: s.Shape})
			weightMap[s.Name] = name
		}
		w, err := format.Create(filepath.Join(dir, name), map[string]string{"format": "pt"}, ts, format.CreateOptions{Force: force})
		if err != nil {
			return err
		}
		for i, s := range mine {
			if err := writeTensor(w, i, s, seed); err != nil {
				w.Abort()
				return err
			}
			total += w.Tensors()[i].Bytes()
		}
		if err := w.Commit(); err != nil {
			return err
		}
	}
	index := map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap}
	if err := writeJSON(filepath.Join(dir, format.IndexName), index, force); err != nil {
		return err
	}
	cfg, err := Config(a)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "config.json"), cfg, force)
}

func writeJSON(path string, v any, force bool) error {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(js, '\n'), force)
}

func writeFile(path string, b []byte, force bool) error {
	if _, err := os.Stat(path); err == nil && !force {
		return fmt.Errorf("%s exists (pass -force to replace it)", path)
	}
	return os.WriteFile(path, b, 0o644)
}

// phiConfig is microsoft/Phi-3.5-mini-instruct's config.json, as published.
//
//go:embed phi-3.5-mini-config.json
var phiConfig []byte

// Config returns the config.json of a checkpoint of size a: Phi-3.5-mini's
// own, byte for byte in its values, with the sizes of a. When the head
// dimension differs from Phi-3.5's 96, the longrope factors (one per pair
// of head dimensions) are taken evenly from Phi-3.5's, so the config stays
// one that transformers would load; when the vocabulary has no room for
// Phi-3.5's end-of-text id 32000, end-of-text and padding become 2, the
// SentencePiece </s>.
func Config(a Arch) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(phiConfig))
	dec.UseNumber() // numbers written back exactly as Phi-3.5 has them
	var cfg map[string]any
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("embedded config.json: %v", err)
	}
	for k, v := range map[string]int{
		"hidden_size": a.Hidden, "intermediate_size": a.Intermediate, "num_hidden_layers": a.Layers,
		"num_attention_heads": a.Heads, "num_key_value_heads": a.Heads, "vocab_size": a.Vocab,
	} {
		cfg[k] = json.Number(strconv.Itoa(v))
	}
	if half := a.Hidden / a.Heads / 2; a.Hidden%a.Heads != 0 || half < 1 {
		return nil, fmt.Errorf("hidden size %d does not split into %d heads of an even size", a.Hidden, a.Heads)
	} else {
		rs := cfg["rope_scaling"].(map[string]any)
		for _, k := range []string{"short_factor", "long_factor"} {
			f := rs[k].([]any)
			if len(f) != half {
				sub := make([]any, half)
				for i := range sub {
					sub[i] = f[i*len(f)/half]
				}
				rs[k] = sub
			}
		}
	}
	if a.Vocab <= 32000 {
		cfg["eos_token_id"], cfg["pad_token_id"] = json.Number("2"), json.Number("2")
	}
	js, err := json.MarshalIndent(cfg, "", "  ")
	return append(js, '\n'), err
}

// chunkElems is the unit of parallel generation; each chunk has its own
// random stream, so the values do not depend on the number of goroutines.
const chunkElems = 1 << 20

func writeTensor(w *format.Writer, i int, s Spec, seed uint64) error {
	n, _ := format.Elements(s.Shape)
	h := fnv.New64a()
	h.Write([]byte(s.Name))
	tseed := h.Sum64() ^ seed
	nChunks := int((n + chunkElems - 1) / chunkElems)
	par := runtime.GOMAXPROCS(0)
	bufs := make([][]byte, par)
	tw := w.TensorWriter(i)
	for c0 := 0; c0 < nChunks; c0 += par {
		var wg sync.WaitGroup
		for k := 0; k < par && c0+k < nChunks; k++ {
			c := c0 + k
			m := int(min(uint64(chunkElems), n-uint64(c)*chunkElems))
			if cap(bufs[k]) < 2*m {
				bufs[k] = make([]byte, 2*chunkElems)
			}
			bufs[k] = bufs[k][:2*m]
			wg.Add(1)
			go func(b []byte, c int) {
				defer wg.Done()
				fill(b, rand.New(rand.NewPCG(tseed, uint64(c))), s.Norm)
			}(bufs[k], c)
		}
		wg.Wait()
		for k := 0; k < par && c0+k < nChunks; k++ {
			if _, err := tw.Write(bufs[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// fill writes BF16 values shaped like trained weights into b.
func fill(b []byte, r *rand.Rand, norm bool) {
	for i := 0; i < len(b)/2; i++ {
		var v float64
		switch u := r.Float64(); {
		case norm:
			v = 1 + 0.05*r.NormFloat64()
		case u < 0.001:
			v = 0 // exact zeros, as pruned or padded rows leave
		case u < 0.003:
			// Outliers: a heavy tail reaching tens of standard deviations.
			v = 0.02 * r.NormFloat64() * math.Exp(2*r.Float64()+1)
		default:
			v = 0.02 * r.NormFloat64()
		}
		binary.LittleEndian.PutUint16(b[2*i:], dtype.Float64ToBF16(v))
	}
}
