package model

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// forward runs ids through every layer and returns the logits.
func forward(t testing.TB, m *Model, ids []int) []float32 {
	t.Helper()
	ctx := context.Background()
	s, err := m.Embed(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for l := 0; l < m.NumLayers(); l++ {
		if err := m.Layer(ctx, l, s); err != nil {
			t.Fatal(err)
		}
	}
	logits, err := m.Logits(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	return logits
}

func newModel(t testing.TB, cfg *Config, w Weights) *Model {
	t.Helper()
	m, err := New(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readIDs(t testing.TB, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	if err := json.Unmarshal(data, &ids); err != nil {
		t.Fatal(err)
	}
	return ids
}

// stories returns the Llama stories260K model and its 201-token stream.
func stories(t testing.TB) (*Config, Weights, []int) {
	dir := fixture(t, "stories260K")
	return loadConfig(t, filepath.Join(dir, "config.json")), openWeights(t, dir), readIDs(t, filepath.Join(dir, "expected-greedy-200.ids.json"))
}

// phi3Stories returns the stories260K weights seen in the Phi-3 layout
// under the config at path (the Llama config made Phi3 when empty).
func phi3Stories(t testing.TB, path string) (*Config, Weights) {
	cfg, w, _ := stories(t)
	if path != "" {
		return loadConfig(t, path), phi3View{w}
	}
	c := *cfg
	c.Architecture = "Phi3ForCausalLM"
	return &c, phi3View{w}
}

func TestGreedyStories(t *testing.T) {
	cfg, w, want := stories(t)
	for _, budget := range []int64{DefaultGenerateBudget, 0} {
		m := newModel(t, cfg, w)
		m.GenerateBudget = budget
		got, err := m.Generate(context.Background(), want[:1], len(want)-1)
		if err != nil {
			t.Fatal(err)
		}
		if i := firstDiff(got, want[1:]); i >= 0 {
			t.Errorf("budget %d: greedy output differs at generated token %d: got %v, want %v", budget, i+1, got[i:min(i+5, len(got))], want[1+i:min(i+6, len(want))])
		}
	}
}

func firstDiff(a, b []int) int {
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return -1
}

// maxRelDiff returns the largest |a-b| / (1+|b|).
func maxRelDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i]))/(1+math.Abs(float64(b[i]))))
	}
	return d
}

func TestPhi3LayoutMatchesLlama(t *testing.T) {
	cfg, w, ids := stories(t)
	want := forward(t, newModel(t, cfg, w), ids)
	pcfg, pw := phi3Stories(t, "")
	views := map[string]struct {
		cfg *Config
		w   Weights
	}{"testdata view": {pcfg, pw}}
	shared := filepath.Join("..", "..", "..", "..", "..", "shared", "fixtures", "llm", "stories260K-phi3")
	if _, err := os.Stat(shared); err == nil {
		views["../shared stories260K-phi3"] = struct {
			cfg *Config
			w   Weights
		}{loadConfig(t, filepath.Join(shared, "config.json")), openWeights(t, shared)}
	}
	for name, v := range views {
		got := forward(t, newModel(t, v.cfg, v.w), ids)
		// Same weights, same arithmetic: equal up to float32 rounding.
		d := maxRelDiff(got, want)
		if d > 1e-6 {
			t.Errorf("%s: logits differ from the Llama layout by %.3g (relative)", name, d)
		}
		t.Logf("%s: largest relative difference from the Llama layout: %.3g", name, d)
	}
}

// goldenTolerance bounds |Go - torch| / (1 + |torch|) over every logit
// compared; both are float32, with different summation orders.
const goldenTolerance = 2e-5

func TestGoldenTorch(t *testing.T) {
	tests := []struct {
		name string
		load func(t *testing.T) (*Config, Weights)
		tol  float64 // when not goldenTolerance
	}{
		{"stories260K", func(t *testing.T) (*Config, Weights) { c, w, _ := stories(t); return c, w }, 0},
		{"stories260K-phi3", func(t *testing.T) (*Config, Weights) { return phi3Stories(t, "") }, 0},
		{"phi3-longrope", func(t *testing.T) (*Config, Weights) { return phi3Stories(t, "testdata/phi3-longrope/config.json") }, 0},
		{"phi3-longrope-short", func(t *testing.T) (*Config, Weights) { return phi3Stories(t, "testdata/phi3-longrope/config.json") }, 0},
		// Half-rotary RoPE on weights not trained for it is ill-conditioned:
		// torch's own float32 pass is 3.2e-5 from its float64 one, ours 4.5e-5.
		{"phi3-partial", func(t *testing.T) (*Config, Weights) { return phi3Stories(t, "testdata/phi3-partial/config.json") }, 1e-4},
		{"qwen2-tiny", tinyModel("qwen2-tiny"), 0},
		{"mistral-tiny", tinyModel("mistral-tiny"), 0},
		{"llama3-tiny", tinyModel("llama3-tiny"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g struct {
				IDs       []int       `json:"ids"`
				Positions []int       `json:"positions"`
				Logits    [][]float32 `json:"logits"`
			}
			data, err := os.ReadFile(filepath.Join("testdata", "golden", tt.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &g); err != nil {
				t.Fatal(err)
			}
			cfg, w := tt.load(t)
			logits := forward(t, newModel(t, cfg, w), g.IDs)
			var worst float64
			for i, p := range g.Positions {
				got := logits[p*cfg.Vocab : (p+1)*cfg.Vocab]
				worst = max(worst, maxRelDiff(got, g.Logits[i]))
				if argmax(got) != argmax(g.Logits[i]) {
					t.Errorf("position %d: argmax %d, torch %d", p, argmax(got), argmax(g.Logits[i]))
				}
			}
			tol := goldenTolerance
			if tt.tol != 0 {
				tol = tt.tol
			}
			if worst > tol {
				t.Errorf("logits differ from torch's by %.3g (relative), more than %g", worst, tol)
			}
			t.Logf("largest relative difference from torch: %.3g", worst)
		})
	}
}

func tinyModel(name string) func(t *testing.T) (*Config, Weights) {
	return func(t *testing.T) (*Config, Weights) {
		dir := filepath.Join("testdata", name)
		return loadConfig(t, filepath.Join(dir, "config.json")), openWeights(t, dir)
	}
}

// TestGenerateMatchesFullPasses checks the KV cache: each generated token
// is the argmax of a full pass over the stream so far. The LongRoPE case
// crosses original_max_position_embeddings (64) while generating.
func TestGenerateMatchesFullPasses(t *testing.T) {
	_, _, ids := stories(t)
	tests := []struct {
		name   string
		load   func(t *testing.T) (*Config, Weights)
		prompt []int
		n      int
	}{
		{"qwen2-tiny", tinyModel("qwen2-tiny"), []int{1, 5, 9}, 12},
		{"mistral-tiny sliding window", tinyModel("mistral-tiny"), []int{3, 4}, 14},
		{"llama3-tiny", tinyModel("llama3-tiny"), []int{7}, 10},
		{"phi3-longrope crossing", func(t *testing.T) (*Config, Weights) {
			return phi3Stories(t, "testdata/phi3-longrope/config.json")
		}, ids[:60], 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, w := tt.load(t)
			m := newModel(t, cfg, w)
			seq := slices.Clone(tt.prompt)
			var want []int
			for range tt.n {
				logits := forward(t, m, seq)
				id := argmax(logits[(len(seq)-1)*cfg.Vocab:])
				want = append(want, id)
				seq = append(seq, id)
			}
			for _, budget := range []int64{DefaultGenerateBudget, 0} {
				m.GenerateBudget = budget
				got, err := m.Generate(context.Background(), tt.prompt, tt.n)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Errorf("budget %d: Generate %v, full passes %v", budget, got, want)
				}
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	base := `"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10, "max_position_embeddings": 32`
	tests := []struct {
		name, json, want string
	}{
		{"unsupported architecture", `{"architectures": ["GPT2LMHeadModel"], ` + base + `}`, "GPT2LMHeadModel"},
		{"yarn", `{"architectures": ["LlamaForCausalLM"], "rope_scaling": {"rope_type": "yarn", "factor": 4.0}, ` + base + `}`, `rope_scaling type "yarn" is not supported`},
		{"longrope on Llama", `{"architectures": ["LlamaForCausalLM"], "rope_scaling": {"type": "longrope", "short_factor": [1,1], "long_factor": [1,1]}, ` + base + `}`, "only supported for Phi3ForCausalLM"},
		{"longrope factor count", `{"architectures": ["Phi3ForCausalLM"], "rope_scaling": {"type": "su", "short_factor": [1], "long_factor": [1,1]}, ` + base + `}`, "want 2"},
		{"gqa", `{"architectures": ["MistralForCausalLM"], "num_key_value_heads": 3, ` + base + `}`, "num_key_value_heads 3"},
		{"activation", `{"architectures": ["Qwen2ForCausalLM"], "hidden_act": "gelu", ` + base + `}`, `hidden_act "gelu"`},
		{"zero size", `{"architectures": ["LlamaForCausalLM"], "hidden_size": 0, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10, "max_position_embeddings": 32}`, "hidden_size is 0"},
		{"not json", `{`, "config.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	base := `"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10, "max_position_embeddings": 32`
	tests := []struct {
		name, json string
		check      func(c *Config) bool
	}{
		{"qwen2 window off", `{"architectures": ["Qwen2ForCausalLM"], "sliding_window": 4, "use_sliding_window": false, ` + base + `}`,
			func(c *Config) bool { return c.SlidingWindow == 0 && c.QKVBias && !c.OBias }},
		{"qwen2 window on", `{"architectures": ["Qwen2ForCausalLM"], "sliding_window": 4, "use_sliding_window": true, "max_window_layers": 3, ` + base + `}`,
			func(c *Config) bool { return c.SlidingWindow == 4 && c.SlidingFrom == 3 }},
		{"mistral window", `{"architectures": ["MistralForCausalLM"], "sliding_window": 4096, ` + base + `}`,
			func(c *Config) bool { return c.SlidingWindow == 4096 && c.SlidingFrom == 0 && !c.QKVBias }},
		{"llama window ignored", `{"architectures": ["LlamaForCausalLM"], "sliding_window": 4, "attention_bias": true, ` + base + `}`,
			func(c *Config) bool { return c.SlidingWindow == 0 && c.QKVBias && c.OBias && !c.MLPBias }},
		{"defaults", `{"architectures": ["LlamaForCausalLM"], "head_dim": null, "num_key_value_heads": null, "eos_token_id": [2, 7], ` + base + `}`,
			func(c *Config) bool {
				return c.HeadDim == 4 && c.KVHeads == 2 && c.RotaryDim == 4 && c.NormEps == 1e-6 && c.RopeTheta == 10000 &&
					c.BOS == -1 && slices.Equal(c.EOS, []int{2, 7}) && c.Rope.Type == "default" && !c.TieEmbeddings
			}},
		{"su is longrope", `{"architectures": ["Phi3ForCausalLM"], "rope_scaling": {"type": "su", "short_factor": [1, 1], "long_factor": [2, 2]}, "original_max_position_embeddings": 8, ` + base + `}`,
			func(c *Config) bool {
				return c.Rope.Type == "longrope" && c.Rope.OriginalMax == 8 && c.Rope.Factor == 4 &&
					math.Abs(c.Rope.AttentionFactor-math.Sqrt(1+math.Log(4)/math.Log(8))) < 1e-15
			}},
		{"longrope attention_factor", `{"architectures": ["Phi3ForCausalLM"], "rope_scaling": {"rope_type": "longrope", "short_factor": [1, 1], "long_factor": [2, 2], "attention_factor": 1.5}, "original_max_position_embeddings": 8, ` + base + `}`,
			func(c *Config) bool { return c.Rope.AttentionFactor == 1.5 }},
		{"longrope no scale", `{"architectures": ["Phi3ForCausalLM"], "rope_scaling": {"rope_type": "longrope", "short_factor": [1, 1], "long_factor": [2, 2]}, "original_max_position_embeddings": 32, ` + base + `}`,
			func(c *Config) bool { return c.Rope.AttentionFactor == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestParseConfigPhi35(t *testing.T) {
	path := filepath.Join("..", "..", "..", "..", "..", "shared", "phi-3.5-mini", "config.json")
	if _, err := os.Stat(path); err != nil {
		t.Skip("no ../shared/phi-3.5-mini")
	}
	c := loadConfig(t, path)
	want := math.Sqrt(1 + math.Log(32)/math.Log(4096)) // 131072 / 4096 = 32
	if c.Rope.Type != "longrope" || c.Rope.OriginalMax != 4096 || math.Abs(c.Rope.AttentionFactor-want) > 1e-12 || len(c.Rope.LongFactor) != 48 {
		t.Errorf("rope %+v, want longrope, original 4096, attention factor %v, 48 factors", c.Rope, want)
	}
	if c.HeadDim != 96 || c.RotaryDim != 96 || c.KVHeads != 32 || c.SlidingWindow != 262144 || c.TieEmbeddings || c.EOS[0] != 32000 {
		t.Errorf("config %+v", c)
	}
	if !c.longRope(4097) || c.longRope(4096) {
		t.Error("long factors must apply from 4097 positions on")
	}
}

func TestModelErrors(t *testing.T) {
	cfg := loadConfig(t, "testdata/qwen2-tiny/config.json")
	good := func() memWeights { return randomWeights(cfg) }
	ctx := context.Background()
	t.Run("missing tensor", func(t *testing.T) {
		w := good()
		delete(w, "model.layers.1.self_attn.k_proj.bias")
		_, err := New(cfg, w)
		if err == nil || !strings.Contains(err.Error(), "model.layers.1.self_attn.k_proj.bias is missing") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("wrong shape", func(t *testing.T) {
		w := good()
		w["model.layers.0.mlp.up_proj.weight"] = memTensor{[]int{24, 40}, make([]float32, 960)}
		_, err := New(cfg, w)
		if err == nil || !strings.Contains(err.Error(), "model.layers.0.mlp.up_proj.weight has shape [24 40], want [40 24]") {
			t.Errorf("error %v", err)
		}
	})
	m := newModel(t, cfg, good())
	for _, tt := range []struct {
		name string
		ids  []int
		want string
	}{
		{"id outside vocabulary", []int{1, 64}, "token id 64 at position 1 is outside the vocabulary"},
		{"negative id", []int{-1}, "token id -1"},
		{"too long", make([]int, 65), "longer than max_position_embeddings 64"},
		{"empty", nil, "empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Embed(ctx, tt.ids); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Embed: error %v, want %q", err, tt.want)
			}
			if _, err := m.Generate(ctx, tt.ids, 1); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Generate: error %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := m.Generate(ctx, []int{1, 2}, 64); err == nil || !strings.Contains(err.Error(), "exceed max_position_embeddings") {
		t.Errorf("Generate past the positions: error %v", err)
	}
	if _, err := m.Generate(ctx, []int{1, 2}, 63); err != nil {
		t.Errorf("Generate up to the last position: %v", err)
	}
	t.Run("cancelled", func(t *testing.T) {
		s, err := m.Embed(ctx, []int{1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := m.Layer(cctx, 0, s); err != context.Canceled {
			t.Errorf("Layer: error %v, want context.Canceled", err)
		}
		if _, err := m.Generate(cctx, []int{1}, 3); err != context.Canceled {
			t.Errorf("Generate: error %v, want context.Canceled", err)
		}
	})
}

// countingWeights counts whole-tensor reads by name.
type countingWeights struct {
	Weights
	reads map[string]int
}

func (w *countingWeights) Read(ctx context.Context, name string, dst []float32) error {
	w.reads[name]++
	return w.Weights.Read(ctx, name, dst)
}

// TestReads checks what stays in memory: Layer reads its own layer's
// tensors once per call and keeps none; Generate without a budget reads
// every layer again each step, with a budget it reads each once.
func TestReads(t *testing.T) {
	cfg := loadConfig(t, "testdata/mistral-tiny/config.json")
	w := &countingWeights{randomWeights(cfg), map[string]int{}}
	m := newModel(t, cfg, w)
	ctx := context.Background()
	s, err := m.Embed(ctx, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := m.Layer(ctx, 1, s); err != nil {
			t.Fatal(err)
		}
	}
	perLayer := 0
	for _, ts := range m.tensors() {
		if strings.HasPrefix(ts.name, "model.layers.1.") {
			perLayer++
			if w.reads[ts.name] != 2 {
				t.Errorf("%s read %d times by two Layer calls, want 2", ts.name, w.reads[ts.name])
			}
		}
	}
	if len(w.reads) != perLayer {
		t.Errorf("Layer 1 read %d tensors, want its %d", len(w.reads), perLayer)
	}
	for _, tt := range []struct {
		budget int64
		want   int
	}{{0, 5}, {DefaultGenerateBudget, 1}} {
		clear(w.reads)
		m.GenerateBudget = tt.budget
		if _, err := m.Generate(ctx, []int{1, 2}, 5); err != nil { // a prefill and 4 steps
			t.Fatal(err)
		}
		if n := w.reads["model.layers.0.mlp.down_proj.weight"]; n != tt.want {
			t.Errorf("budget %d: down_proj read %d times, want %d", tt.budget, n, tt.want)
		}
	}
}

// TestGenerateNonFinite checks that Generate picks no token from logits
// that are not finite: a LongRoPE long factor of 0 gives NaN only once
// the stream outgrows original_max_position_embeddings (64), in the
// middle of the generation, which must then stop with the position.
func TestGenerateNonFinite(t *testing.T) {
	_, _, ids := stories(t)
	cfg, w := phi3Stories(t, "testdata/phi3-longrope/config.json")
	c := *cfg
	c.Rope.LongFactor = []float64{0, 1.5, 3, 7.5}
	m := newModel(t, &c, w)
	got, err := m.Generate(context.Background(), ids[:60], 8)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Pos != 64 || got != nil {
		t.Fatalf("Generate = %v, %v; want a *NonFiniteError at position 64", got, err)
	}
	// Up to there the factors are the short ones: the first tokens come.
	if _, err := m.Generate(context.Background(), ids[:60], 4); err != nil {
		t.Errorf("4 tokens, positions 59..62: %v", err)
	}
}
