package model

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
)

// hostileBase is a valid Llama config.json body but for the fields a case
// adds; a case's field comes last, so it wins.
const hostileBase = `"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512, "max_position_embeddings": 512`

// Sizes whose products wrap around to a real width, and sizes too large for
// any model, are refused by key before anything is sized (issue 23, item 1).
func TestParseConfigBounds(t *testing.T) {
	for _, tt := range []struct{ name, extra, want string }{
		// 8 × (2^61 + 8) wraps to 64, the real width of q_proj.
		{"head_dim wraps", `"head_dim": 2305843009213693960`, "head_dim is 2305843009213693960"},
		{"head_dim near 2^62", `"head_dim": 4611686018427387912`, "head_dim"},
		{"heads × head_dim", `"num_attention_heads": 65536, "num_key_value_heads": 65536, "head_dim": 65536`, "num_attention_heads 65536 × head_dim 65536 is too large"},
		{"qkv width", `"num_attention_heads": 4096, "num_key_value_heads": 4096, "head_dim": 4096`, "head_dim 4096 is too large"},
		{"heads", `"num_attention_heads": 4611686018427387904, "num_key_value_heads": 4`, "num_attention_heads is 4611686018427387904"},
		{"intermediate", `"intermediate_size": 9223372036854775807`, "intermediate_size is 9223372036854775807"},
		{"gate_up width", `"architectures": ["Phi3ForCausalLM"], "intermediate_size": 16777216`, "2 × intermediate_size 16777216 is too large"},
		{"vocab", `"vocab_size": 4611686018427387904`, "vocab_size is 4611686018427387904"},
		{"hidden", `"hidden_size": 4611686018427387904, "head_dim": 8`, "hidden_size is 4611686018427387904"},
		{"layers", `"num_hidden_layers": 1000000000000`, "num_hidden_layers is 1000000000000"},
		{"positions", `"max_position_embeddings": 9223372036854775807`, "max_position_embeddings is 9223372036854775807"},
		{"negative kv heads", `"num_key_value_heads": -8`, "num_key_value_heads -8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(`{` + hostileBase + `, ` + tt.extra + `}`))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "config.json: ") {
				t.Errorf("error %v, want one naming config.json and %q", err, tt.want)
			}
		})
	}
	if _, ok := mul(math.MaxInt, 2); ok {
		t.Error("mul(MaxInt, 2) does not overflow")
	}
	if _, ok := add(math.MaxInt, 1); ok {
		t.Error("add(MaxInt, 1) does not overflow")
	}
}

// RoPE and norm values that cannot compute are config.json's fault, by
// key, not the weights' (issue 23, item 7).
func TestParseConfigValues(t *testing.T) {
	for _, tt := range []struct{ name, extra, want string }{
		{"rope_theta 0", `"rope_theta": 0`, "rope_theta is 0"},
		{"rope_theta negative", `"rope_theta": -10000`, "rope_theta is -10000"},
		{"rms_norm_eps negative", `"rms_norm_eps": -1e-5`, "rms_norm_eps is -1e-05"},
		{"linear factor tiny", `"rope_scaling": {"type": "linear", "factor": 1e-300}`, "rope_scaling factor is 1e-300"},
		{"linear factor 0", `"rope_scaling": {"type": "linear", "factor": 0}`, "rope_scaling factor is 0"},
		{"linear factor negative", `"rope_scaling": {"type": "linear", "factor": -2}`, "rope_scaling factor is -2"},
		{"linear factor huge", `"rope_scaling": {"type": "linear", "factor": 1e300}`, "rope_scaling factor is 1e+300"},
		{"llama3 factor tiny", `"rope_scaling": {"rope_type": "llama3", "factor": 1e-300, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 16}`, "rope_scaling factor is 1e-300"},
		{"dynamic factor 0", `"rope_scaling": {"type": "dynamic", "factor": 0}`, "rope_scaling factor is 0"},
		{"partial rotary", `"partial_rotary_factor": 1e308`, "partial_rotary_factor is 1e+308"},
		{"partial rotary 0", `"partial_rotary_factor": 0`, "partial_rotary_factor is 0"},
		{"longrope factor 0", `"architectures": ["Phi3ForCausalLM"], "rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1, 0], "long_factor": [1, 1, 1, 1]}`, "short_factor[3] is 0"},
		{"longrope attention", `"architectures": ["Phi3ForCausalLM"], "rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1, 1], "long_factor": [1, 1, 1, 1], "attention_factor": 0}`, "attention_factor is 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(`{` + hostileBase + `, ` + tt.extra + `}`))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "config.json: ") {
				t.Errorf("error %v, want one naming config.json and %q", err, tt.want)
			}
		})
	}
}

// Round 4: values the help's promise ("positive numbers float32 holds")
// and released models rule out are refused by key, not run to a uniform
// distribution or to non-finite logits blamed on a derived value.
func TestParseConfigRound4(t *testing.T) {
	phi := `"architectures": ["Phi3ForCausalLM"], "rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1, 1], "long_factor": [1, 1, 1, 1]}, `
	for _, tt := range []struct{ name, extra, want string }{
		{"eps 0", `"rms_norm_eps": 0`, "rms_norm_eps is 0"},
		{"eps 1e30", `"rms_norm_eps": 1e30`, "rms_norm_eps is 1e+30"},
		{"eps 1e39", `"rms_norm_eps": 1e39`, "rms_norm_eps is 1e+39"},
		{"eps 1e300", `"rms_norm_eps": 1e300`, "rms_norm_eps is 1e+300"},
		{"eps 1e-300", `"rms_norm_eps": 1e-300`, "rms_norm_eps is 1e-300"},
		{"theta 1e39", `"rope_theta": 1e39`, "rope_theta is 1e+39"},
		{"theta 1e300", `"rope_theta": 1e300`, "rope_theta is 1e+300"},
		{"theta 1e-300", `"rope_theta": 1e-300`, "rope_theta is 1e-300"},
		{"original max 1", phi + `"original_max_position_embeddings": 1`, "original_max_position_embeddings is 1"},
		{"original max 0", phi + `"original_max_position_embeddings": 0`, "original_max_position_embeddings is 0"},
		{"original max over max", phi + `"original_max_position_embeddings": 513`, "original_max_position_embeddings is 513"},
		{"rope_scaling original max 1", `"architectures": ["Phi3ForCausalLM"], "rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1, 1], "long_factor": [1, 1, 1, 1], "original_max_position_embeddings": 1}`, "original_max_position_embeddings is 1"},
		{"mistral window -5", `"architectures": ["MistralForCausalLM"], "sliding_window": -5`, "sliding_window is -5"},
		{"mistral window 0", `"architectures": ["MistralForCausalLM"], "sliding_window": 0`, "sliding_window is 0"},
		{"phi3 window 0", `"architectures": ["Phi3ForCausalLM"], "sliding_window": 0`, "sliding_window is 0"},
		{"qwen2 window -1", `"architectures": ["Qwen2ForCausalLM"], "use_sliding_window": true, "sliding_window": -1`, "sliding_window is -1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(`{` + hostileBase + `, ` + tt.extra + `}`))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "config.json: ") {
				t.Errorf("error %v, want one naming config.json and %q", err, tt.want)
			}
		})
	}
	// null is no window; a window is kept as given.
	for extra, want := range map[string]int{
		`"architectures": ["MistralForCausalLM"], "sliding_window": null`:                         0,
		`"architectures": ["MistralForCausalLM"], "sliding_window": 4096`:                         4096,
		`"architectures": ["Qwen2ForCausalLM"], "use_sliding_window": false, "sliding_window": 0`: 0,
		`"architectures": ["LlamaForCausalLM"], "sliding_window": -5`:                             0,
		phi + `"original_max_position_embeddings": 512`:                                           0,
		phi + `"original_max_position_embeddings": 2`:                                             0,
	} {
		c, err := ParseConfig([]byte(`{` + hostileBase + `, ` + extra + `}`))
		if err != nil || c.SlidingWindow != want {
			t.Errorf("%s: %v, window %v, want %d", extra, err, c, want)
		}
	}
}

// Unusual names only keys config.json holds: a derived attention factor
// says what it is derived from.
func TestUnusualDerived(t *testing.T) {
	c, err := ParseConfig([]byte(`{` + hostileBase + `, "architectures": ["Phi3ForCausalLM"], "original_max_position_embeddings": 2, "rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1, 1], "long_factor": [1, 1, 1, 1]}}`))
	if err != nil {
		t.Fatal(err)
	}
	c.Rope.AttentionFactor = math.Inf(1) // as a hostile derivation would make it
	got := c.Unusual()
	if !strings.Contains(got, "derived from original_max_position_embeddings 2") || strings.HasPrefix(got, "rope_scaling attention_factor") {
		t.Errorf("Unusual() = %q, want the attention factor named as derived from original_max_position_embeddings", got)
	}
	c, err = ParseConfig([]byte(`{` + hostileBase + `, "architectures": ["Phi3ForCausalLM"], "rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1, 1], "long_factor": [1, 1, 1, 1], "attention_factor": 1e-5}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Unusual(); !strings.HasPrefix(got, "rope_scaling attention_factor 1e-05") {
		t.Errorf("Unusual() = %q, want rope_scaling attention_factor named", got)
	}
}

// Unusual names the value a NaN most likely comes from.
func TestUnusual(t *testing.T) {
	for extra, want := range map[string]string{
		`"rope_theta": 500000`:                                "",
		`"rms_norm_eps": 1e-5`:                                "",
		`"rope_theta": 1e-30`:                                 "rope_theta 1e-30",
		`"rms_norm_eps": 1e-30`:                               "rms_norm_eps 1e-30",
		`"rms_norm_eps": 0.5`:                                 "rms_norm_eps 0.5",
		`"rope_theta": 1e30`:                                  "rope_theta 1e+30",
		`"rope_scaling": {"type": "linear", "factor": 1e-30}`: "rope_scaling factor 1e-30",
	} {
		c, err := ParseConfig([]byte(`{` + hostileBase + `, ` + extra + `}`))
		if err != nil {
			t.Fatalf("%s: %v", extra, err)
		}
		if got := c.Unusual(); (want == "") != (got == "") || !strings.HasPrefix(got, want) {
			t.Errorf("%s: Unusual() = %q, want %q", extra, got, want)
		}
	}
}

// New checks the tensors as it lists them: a config.json with far more
// layers than the checkpoint stops at the first missing one, with no
// memory for the rest (issue 23, item 3).
func TestNewStopsAtFirstMissing(t *testing.T) {
	cfg := loadConfig(t, "testdata/qwen2-tiny/config.json")
	w := randomWeights(cfg)
	big := *cfg
	big.Layers = MaxLayers
	var err error
	allocs := testing.AllocsPerRun(1, func() { _, err = New(&big, w) })
	if err == nil || !strings.Contains(err.Error(), "model.layers.2.") || !strings.Contains(err.Error(), "num_hidden_layers 65536") {
		t.Errorf("error %v, want layer 2 missing", err)
	}
	if allocs > 200 {
		t.Errorf("New made %v allocations before refusing %d layers", allocs, big.Layers)
	}
}

// An untied head that the checkpoint lacks is an error naming it, not the
// embedding in its place: transformers would start it at random.
func TestUntiedHeadMissing(t *testing.T) {
	cfg := loadConfig(t, "testdata/qwen2-tiny/config.json")
	untied := *cfg
	untied.TieEmbeddings = false
	w := randomWeights(cfg)
	if _, err := New(&untied, w); err != nil {
		t.Fatalf("with lm_head.weight: %v", err)
	}
	delete(w, headName)
	if _, err := New(&untied, w); err == nil || !strings.Contains(err.Error(), "lm_head.weight is missing") || !strings.Contains(err.Error(), "tie_word_embeddings is false") {
		t.Errorf("untied without lm_head.weight: %v", err)
	}
	tied := untied
	tied.TieEmbeddings = true
	if _, err := New(&tied, w); err != nil {
		t.Errorf("tied without lm_head.weight: %v", err)
	}
}

// Unused names the tensors the config does not read, but for those
// transformers ignores too (issue 23, item 6).
func TestUnused(t *testing.T) {
	cfg := loadConfig(t, "testdata/qwen2-tiny/config.json")
	w := randomWeights(cfg)
	m := newModel(t, cfg, w)
	names := func(w memWeights) []string {
		var out []string
		for n := range w {
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	if u := m.Unused(names(w)); len(u) != 0 {
		t.Errorf("every tensor is read, but Unused gives %v", u)
	}
	w["model.layers.0.self_attn.rotary_emb.inv_freq"] = memTensor{[]int{3}, make([]float32, 3)}
	w["model.layers.2.input_layernorm.weight"] = memTensor{[]int{24}, make([]float32, 24)}
	w["x\x1b[2J"] = memTensor{[]int{1}, make([]float32, 1)}
	if u := m.Unused(names(w)); !slices.Equal(u, []string{"model.layers.2.input_layernorm.weight", "x\x1b[2J"}) {
		t.Errorf("Unused gives %q", u)
	}
	// One layer fewer than the checkpoint: its tensors are unused.
	one := *cfg
	one.Layers = 1
	if u := newModel(t, &one, w).Unused(names(w)); len(u) != 12+2 || !strings.HasPrefix(u[0], "model.layers.1.") {
		t.Errorf("config of 1 layer on 2: Unused gives %q", u)
	}
	// A tied head may sit beside the embedding, as transformers allows.
	tied := *cfg
	tied.TieEmbeddings = true
	if u := newModel(t, &tied, randomWeights(cfg)).Unused(names(randomWeights(cfg))); len(u) != 0 {
		t.Errorf("tied: Unused gives %q", u)
	}
	// Biases the config does not ask for are not read.
	nob := *cfg
	nob.QKVBias = false
	if u := newModel(t, &nob, randomWeights(cfg)).Unused(names(randomWeights(cfg))); len(u) != 6 || !strings.HasSuffix(u[0], ".bias") {
		t.Errorf("no biases: Unused gives %q", u)
	}
}

// A count to generate near MaxInt is refused, not wrapped around into a
// slice size (issue 23, item 2).
func TestGenerateHuge(t *testing.T) {
	cfg := loadConfig(t, "testdata/qwen2-tiny/config.json")
	m := newModel(t, cfg, randomWeights(cfg))
	for _, n := range []int{math.MaxInt, math.MaxInt - 1, math.MaxInt - 2} {
		if _, err := m.Generate(context.Background(), []int{1, 2, 3}, n); err == nil || !strings.Contains(err.Error(), "exceed max_position_embeddings") {
			t.Errorf("Generate(%d): error %v", n, err)
		}
	}
}
