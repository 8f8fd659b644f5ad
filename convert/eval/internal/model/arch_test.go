package model

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// archBase is a small valid config.json body without architectures; a
// case's fields come after it, so they win.
const archBase = `"hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 4, "vocab_size": 40, "max_position_embeddings": 64`

func parseArch(t *testing.T, arch, extra string) *Config {
	t.Helper()
	js := `{"architectures": ["` + arch + `"], ` + archBase
	if extra != "" {
		js += ", " + extra
	}
	c, err := ParseConfig([]byte(js + "}"))
	if err != nil {
		t.Fatalf("%s %s: %v", arch, extra, err)
	}
	return c
}

func TestParseConfigArch(t *testing.T) {
	for _, tt := range []struct {
		name, arch, extra string
		check             func(c *Config) bool
	}{
		{"qwen3 defaults", "Qwen3ForCausalLM", "",
			func(c *Config) bool {
				return c.QKNorm && !c.QKVBias && !c.OBias && !c.Gemma && c.SlidingWindow == 0 && c.Experts == 0 && c.MoELayers == nil
			}},
		{"qwen3 bias and window", "Qwen3ForCausalLM", `"attention_bias": true, "use_sliding_window": true, "sliding_window": 8, "max_window_layers": 2`,
			func(c *Config) bool {
				return c.QKVBias && c.OBias && c.windowAt(1) == 0 && c.windowAt(2) == 8
			}},
		{"qwen3-moe defaults", "Qwen3MoeForCausalLM", `"num_experts": 4, "num_experts_per_tok": 2`,
			func(c *Config) bool {
				return c.QKNorm && c.Experts == 4 && c.ExpertsPerToken == 2 && !c.NormTopK && c.ExpertIntermediate == 768 &&
					slices.Equal(c.MoELayers, []bool{true, true, true, true}) && c.windowAt(0) == 0
			}},
		{"qwen3-moe num_local_experts", "Qwen3MoeForCausalLM", `"num_local_experts": 6, "num_experts_per_tok": 2`,
			func(c *Config) bool { return c.Experts == 6 }},
		{"qwen3-moe sparse step and mlp_only_layers", "Qwen3MoeForCausalLM", `"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 6, "norm_topk_prob": true, "decoder_sparse_step": 2, "mlp_only_layers": [3], "use_sliding_window": true, "sliding_window": 5`,
			func(c *Config) bool {
				return c.NormTopK && c.ExpertIntermediate == 6 && slices.Equal(c.MoELayers, []bool{false, true, false, false}) &&
					c.windowAt(0) == 5 && c.windowAt(3) == 5
			}},
		{"mixtral defaults", "MixtralForCausalLM", "",
			func(c *Config) bool {
				return c.Experts == 8 && c.ExpertsPerToken == 2 && c.NormTopK && c.ExpertIntermediate == 24 && !c.QKNorm &&
					slices.Equal(c.MoELayers, []bool{true, true, true, true}) && c.SlidingWindow == 0 &&
					c.NormEps == 1e-5 && c.RopeTheta == 1e6 // MixtralConfig's, not Llama's
			}},
		{"mistral defaults", "MistralForCausalLM", "",
			func(c *Config) bool { return c.SlidingWindow == 4096 && c.NormEps == 1e-6 && c.RopeTheta == 10000 }},
		{"mistral window null", "MistralForCausalLM", `"sliding_window": null`,
			func(c *Config) bool { return c.SlidingWindow == 0 }},
		{"phi3 defaults", "Phi3ForCausalLM", "",
			func(c *Config) bool { return c.SlidingWindow == 0 && c.NormEps == 1e-5 }},
		// Qwen3Config's head_dim is 128; Qwen3-MoE's attention falls back
		// to hidden_size / heads.
		{"qwen3 head_dim default", "Qwen3ForCausalLM", `"head_dim": null`,
			func(c *Config) bool { return c.HeadDim == 128 && c.NormEps == 1e-6 && c.RopeTheta == 10000 }},
		{"qwen3-moe head_dim default", "Qwen3MoeForCausalLM", `"head_dim": null, "num_experts": 4, "num_experts_per_tok": 2`,
			func(c *Config) bool { return c.HeadDim == 4 }},
		{"qwen3 layer_types", "Qwen3ForCausalLM", `"use_sliding_window": true, "sliding_window": 8, "max_window_layers": 0, "layer_types": ["full_attention", "sliding_attention", "full_attention", "sliding_attention"]`,
			func(c *Config) bool {
				return c.windowAt(0) == 0 && c.windowAt(1) == 8 && c.windowAt(2) == 0 && c.windowAt(3) == 8
			}},
		{"qwen3 layer_types without use_sliding_window", "Qwen3ForCausalLM", `"sliding_window": 8, "layer_types": ["full_attention", "sliding_attention", "full_attention", "sliding_attention"]`,
			func(c *Config) bool { return c.windowAt(1) == 0 && c.windowAt(3) == 0 }},
		{"mixtral window", "MixtralForCausalLM", `"num_local_experts": 3, "num_experts_per_tok": 3, "sliding_window": 7`,
			func(c *Config) bool { return c.Experts == 3 && c.ExpertsPerToken == 3 && c.windowAt(2) == 7 }},
		{"gemma2 defaults", "Gemma2ForCausalLM", `"head_dim": null, "hidden_act": "gelu_pytorch_tanh"`,
			func(c *Config) bool {
				return c.Gemma && !c.QKNorm && c.HeadDim == 256 && c.Activation == "gelu_pytorch_tanh" && c.QueryScale == 1.0/16 &&
					c.AttnSoftcap == 50 && c.FinalSoftcap == 30 && c.TieEmbeddings && c.LocalRopeTheta == 0 && c.RopeTheta == 10000 &&
					slices.Equal(c.Sliding, []bool{true, false, true, false}) && c.SlidingWindow == 4096
			}},
		{"gemma2 null caps", "Gemma2ForCausalLM", `"attn_logit_softcapping": null, "final_logit_softcapping": null, "query_pre_attn_scalar": 4, "tie_word_embeddings": false, "hidden_activation": "gelu"`,
			func(c *Config) bool {
				return c.AttnSoftcap == 0 && c.FinalSoftcap == 0 && c.QueryScale == 0.5 && !c.TieEmbeddings && c.Activation == "gelu"
			}},
		{"gemma3 defaults", "Gemma3ForCausalLM", `"num_hidden_layers": 7`,
			func(c *Config) bool {
				return c.Gemma && c.QKNorm && c.RopeTheta == 1e6 && c.LocalRopeTheta == 10000 && c.AttnSoftcap == 0 && c.FinalSoftcap == 0 &&
					slices.Equal(c.Sliding, []bool{true, true, true, true, true, false, true})
			}},
		{"gemma3 attention cap ignored, as transformers", "Gemma3ForCausalLM", `"attn_logit_softcapping": 20, "final_logit_softcapping": 30, "sliding_window_pattern": 2, "rope_local_base_freq": 500, "rope_scaling": {"rope_type": "linear", "factor": 8}`,
			func(c *Config) bool {
				return c.AttnSoftcap == 0 && c.FinalSoftcap == 30 && c.LocalRopeTheta == 500 && c.Rope.Type == "linear" &&
					slices.Equal(c.Sliding, []bool{true, false, true, false})
			}},
		{"gemma3 layer_types", "Gemma3ForCausalLM", `"layer_types": ["full_attention", "sliding_attention", "full_attention", "sliding_attention"], "sliding_window": 3`,
			func(c *Config) bool {
				return slices.Equal(c.Sliding, []bool{false, true, false, true}) && c.windowAt(1) == 3 && c.windowAt(2) == 0
			}},
		// transformers 5 writes rope_theta and rope_scaling into rope_parameters.
		{"rope_parameters", "Qwen3ForCausalLM", `"rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}`,
			func(c *Config) bool { return c.RopeTheta == 1e6 && c.Rope.Type == "default" }},
		{"rope_parameters llama3", "LlamaForCausalLM", `"rope_theta": 10000, "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}`,
			func(c *Config) bool {
				return c.RopeTheta == 5e5 && c.Rope.Type == "llama3" && c.Rope.Factor == 8 && c.Rope.OriginalMax == 32
			}},
		{"rope_parameters per layer type", "Gemma3ForCausalLM", `"rope_parameters": {"full_attention": {"rope_theta": 1000000.0, "rope_type": "linear", "factor": 8.0}, "sliding_attention": {"rope_theta": 20000.0, "rope_type": "default"}}`,
			func(c *Config) bool {
				return c.RopeTheta == 1e6 && c.Rope.Type == "linear" && c.Rope.Factor == 8 && c.LocalRopeTheta == 20000
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if c := parseArch(t, tt.arch, tt.extra); !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
	// Gemma 3's text model with its sizes in text_config.
	c, err := ParseConfig([]byte(`{"architectures": ["Gemma3ForCausalLM"], "text_config": {` + archBase + `, "sliding_window_pattern": 2}}`))
	if err != nil || c.Hidden != 16 || !c.Gemma || !slices.Equal(c.Sliding, []bool{true, false, true, false}) {
		t.Errorf("text_config: %v, %+v", err, c)
	}
}

// Hostile and inconsistent configs get one line naming config.json and the
// key.
func TestParseConfigArchErrors(t *testing.T) {
	for _, tt := range []struct{ name, arch, extra, want string }{
		{"multimodal gemma3", "Gemma3ForConditionalGeneration", "", "architecture Gemma3ForConditionalGeneration is not supported"},
		{"deepseek", "DeepseekV3ForCausalLM", "", "architecture DeepseekV3ForCausalLM is not supported"},
		{"top-k over experts", "MixtralForCausalLM", `"num_local_experts": 4, "num_experts_per_tok": 5`, "num_experts_per_tok is 5, want > 0 and at most num_local_experts 4"},
		{"top-k 0", "Qwen3MoeForCausalLM", `"num_experts": 4, "num_experts_per_tok": 0`, "num_experts_per_tok is 0"},
		{"no experts", "MixtralForCausalLM", `"num_local_experts": 0`, "num_local_experts is 0"},
		{"negative experts", "Qwen3MoeForCausalLM", `"num_experts": -4`, "num_experts is -4"},
		{"too many experts", "Qwen3MoeForCausalLM", `"num_experts": 100000000, "num_experts_per_tok": 2`, "num_experts is 100000000"},
		{"moe width huge", "Qwen3MoeForCausalLM", `"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16777217`, "moe_intermediate_size is 16777217"},
		{"moe width", "Qwen3MoeForCausalLM", `"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 0`, "moe_intermediate_size is 0"},
		{"sparse step 0", "Qwen3MoeForCausalLM", `"num_experts": 4, "num_experts_per_tok": 2, "decoder_sparse_step": 0`, "decoder_sparse_step is 0"},
		{"mlp_only_layers out of range", "Qwen3MoeForCausalLM", `"num_experts": 4, "num_experts_per_tok": 2, "mlp_only_layers": [4]`, "mlp_only_layers holds 4"},
		{"shared expert", "Qwen3MoeForCausalLM", `"num_experts": 4, "num_experts_per_tok": 2, "shared_expert_intermediate_size": 8`, "shared_expert_intermediate_size is 8"},
		{"mixtral gelu", "MixtralForCausalLM", `"hidden_act": "gelu"`, `hidden_act "gelu"`},
		{"mixtral window 0", "MixtralForCausalLM", `"sliding_window": 0`, "sliding_window is 0"},
		{"qwen3 window -1", "Qwen3ForCausalLM", `"use_sliding_window": true, "sliding_window": -1`, "sliding_window is -1"},
		{"qwen3 layer_types length", "Qwen3ForCausalLM", `"use_sliding_window": true, "sliding_window": 4, "layer_types": ["sliding_attention"]`, "layer_types has 1 entries"},
		{"gemma activation", "Gemma2ForCausalLM", `"hidden_activation": "relu"`, `hidden_activation "relu"`},
		{"gemma scalar 0", "Gemma2ForCausalLM", `"query_pre_attn_scalar": 0`, "query_pre_attn_scalar is 0"},
		{"gemma scalar null", "Gemma3ForCausalLM", `"query_pre_attn_scalar": null`, "query_pre_attn_scalar is null"},
		{"gemma scalar text", "Gemma3ForCausalLM", `"query_pre_attn_scalar": "256"`, "query_pre_attn_scalar: want a number"},
		{"gemma cap negative", "Gemma2ForCausalLM", `"final_logit_softcapping": -30`, "final_logit_softcapping is -30"},
		{"gemma attn cap 0", "Gemma2ForCausalLM", `"attn_logit_softcapping": 0`, "attn_logit_softcapping is 0"},
		{"gemma window 0", "Gemma2ForCausalLM", `"sliding_window": 0`, "sliding_window is 0"},
		{"gemma window null", "Gemma3ForCausalLM", `"sliding_window": null`, "sliding_window is null, but layers slide"},
		{"layer_types length", "Gemma3ForCausalLM", `"layer_types": ["full_attention"]`, "layer_types has 1 entries, want num_hidden_layers 4"},
		{"layer_types value", "Gemma3ForCausalLM", `"layer_types": ["full_attention", "chunked_attention", "full_attention", "full_attention"]`, `layer_types[1] is "chunked_attention"`},
		{"pattern 0", "Gemma3ForCausalLM", `"sliding_window_pattern": 0`, "sliding_window_pattern is 0"},
		{"local base 0", "Gemma3ForCausalLM", `"rope_local_base_freq": 0`, "rope_local_base_freq is 0"},
		{"bidirectional", "Gemma3ForCausalLM", `"use_bidirectional_attention": true`, "use_bidirectional_attention"},
		{"gemma head_dim 0", "Gemma2ForCausalLM", `"head_dim": 0`, "head_dim is 0"},
		{"rope_parameters per type on qwen3", "Qwen3ForCausalLM", `"rope_parameters": {"full_attention": {"rope_theta": 1e6}}`, "rope_parameters per layer type are only supported for Gemma3ForCausalLM"},
		{"rope_parameters sliding scaled", "Gemma3ForCausalLM", `"rope_parameters": {"sliding_attention": {"rope_type": "linear", "factor": 2}}`, `rope_parameters sliding_attention: rope_type "linear"`},
		{"rope_parameters yarn", "Qwen3ForCausalLM", `"rope_parameters": {"rope_type": "yarn", "factor": 4, "rope_theta": 1e6}`, `rope_scaling type "yarn" is not supported`},
		{"rope_parameters not an object", "Qwen3ForCausalLM", `"rope_parameters": [1]`, "rope_parameters"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(`{"architectures": ["` + tt.arch + `"], ` + archBase + `, ` + strings.TrimPrefix(tt.extra, ", ") + `}`))
			if tt.extra == "" {
				_, err = ParseConfig([]byte(`{"architectures": ["` + tt.arch + `"], ` + archBase + `}`))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "config.json: ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line naming config.json and %q", err, tt.want)
			}
		})
	}
}

// A config.json without a size the architecture needs names it.
func TestParseConfigArchMissing(t *testing.T) {
	for _, tt := range []struct{ arch, drop, want string }{
		{"Gemma3ForCausalLM", `"hidden_size": 16, `, "hidden_size is 0"},
		{"MixtralForCausalLM", `"intermediate_size": 24, `, "intermediate_size is 0"},
		{"Qwen3MoeForCausalLM", `"num_hidden_layers": 4, `, "num_hidden_layers is 0"},
		{"Gemma2ForCausalLM", `"vocab_size": 40, `, "vocab_size is 0"},
	} {
		js := `{"architectures": ["` + tt.arch + `"], ` + strings.Replace(archBase, tt.drop, "", 1) + `}`
		if !strings.Contains(archBase, tt.drop) {
			t.Fatalf("%q is not in the base config", tt.drop)
		}
		if _, err := ParseConfig([]byte(js)); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "config.json: "+tt.arch) {
			t.Errorf("%s without %s: error %v, want %q", tt.arch, tt.drop, err, tt.want)
		}
	}
}

// tinyArch returns a small config of each new architecture.
func tinyArch(t *testing.T) map[string]*Config {
	return map[string]*Config{
		"qwen3":     parseArch(t, "Qwen3ForCausalLM", ""),
		"qwen3-moe": parseArch(t, "Qwen3MoeForCausalLM", `"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 6, "mlp_only_layers": [2]`),
		"mixtral":   parseArch(t, "MixtralForCausalLM", `"num_local_experts": 3, "num_experts_per_tok": 2, "sliding_window": 5`),
		"gemma2":    parseArch(t, "Gemma2ForCausalLM", `"sliding_window": 5, "query_pre_attn_scalar": 8, "attn_logit_softcapping": 1.5, "final_logit_softcapping": 2`),
		"gemma3":    parseArch(t, "Gemma3ForCausalLM", `"sliding_window": 5, "sliding_window_pattern": 2, "rope_theta": 1000000, "rope_scaling": {"rope_type": "linear", "factor": 4}, "final_logit_softcapping": 3`),
	}
}

// The tensors each architecture reads, with their shapes, by the names of
// the Hugging Face checkpoints.
func TestArchTensors(t *testing.T) {
	cs := tinyArch(t)
	for _, tt := range []struct {
		arch    string
		want    map[string][]int // name: shape (nil: must be absent)
		tensors int
	}{
		{"qwen3", map[string][]int{"model.layers.3.self_attn.q_norm.weight": {4}, "model.layers.0.self_attn.k_norm.weight": {4},
			"model.layers.0.self_attn.q_proj.bias": nil, "lm_head.weight": {40, 16}}, 3 + 4*11},
		{"qwen3-moe", map[string][]int{"model.layers.0.mlp.gate.weight": {4, 16}, "model.layers.1.mlp.experts.3.down_proj.weight": {16, 6},
			"model.layers.1.mlp.experts.0.gate_proj.weight": {6, 16}, "model.layers.2.mlp.down_proj.weight": {16, 24},
			"model.layers.2.mlp.gate.weight": nil, "model.layers.0.mlp.down_proj.weight": nil}, 3 + 4*8 + 3*(1+12) + 3},
		{"mixtral", map[string][]int{"model.layers.0.block_sparse_moe.gate.weight": {3, 16}, "model.layers.3.block_sparse_moe.experts.2.w2.weight": {16, 24},
			"model.layers.3.block_sparse_moe.experts.2.w1.weight": {24, 16}, "model.layers.3.block_sparse_moe.experts.2.w3.weight": {24, 16},
			"model.layers.0.mlp.gate_proj.weight": nil}, 3 + 4*(6+1+9)},
		{"gemma2", map[string][]int{"model.layers.1.pre_feedforward_layernorm.weight": {16}, "model.layers.1.post_feedforward_layernorm.weight": {16},
			"model.layers.1.self_attn.q_norm.weight": nil, "lm_head.weight": nil}, 2 + 4*11},
		{"gemma3", map[string][]int{"model.layers.1.pre_feedforward_layernorm.weight": {16}, "model.layers.1.self_attn.q_norm.weight": {4}}, 2 + 4*13},
	} {
		t.Run(tt.arch, func(t *testing.T) {
			c := cs[tt.arch]
			m := &Model{cfg: c, head: headName}
			if c.TieEmbeddings {
				m.head = embedName
			}
			got := map[string][]int{}
			for _, ts := range m.tensors() {
				got[ts.name] = ts.shape
			}
			for name, shape := range tt.want {
				if s, ok := got[name]; shape == nil && ok || shape != nil && !slices.Equal(s, shape) {
					t.Errorf("%s: shape %v (listed %v), want %v", name, s, ok, shape)
				}
			}
			if len(got) != tt.tensors {
				t.Errorf("%d tensors, want %d", len(got), tt.tensors)
			}
			// An expert or a norm of the wrong shape is refused by name.
			w := randomWeights(c)
			for name, shape := range tt.want {
				if shape == nil || len(shape) != 2 {
					continue
				}
				bad := memWeights{}
				for k, v := range w {
					bad[k] = v
				}
				bad[name] = memTensor{[]int{shape[1], shape[0]}, make([]float32, shape[0]*shape[1])}
				if _, err := New(c, bad); shape[0] != shape[1] && (err == nil || !strings.Contains(err.Error(), name+" has shape")) {
					t.Errorf("transposed %s: error %v", name, err)
				}
			}
		})
	}
}

// TestGenerateMatchesFullPassesArch checks the KV cache, the sliding
// windows and Gemma 3's two RoPE tables of the new architectures: each
// generated token is the argmax of a full pass over the stream so far,
// past the window of 5.
func TestGenerateMatchesFullPassesArch(t *testing.T) {
	for name, cfg := range tinyArch(t) {
		t.Run(name, func(t *testing.T) {
			m := newModel(t, cfg, randomWeights(cfg))
			prompt := []int{1, 7, 3}
			seq := slices.Clone(prompt)
			var want []int
			for range 9 {
				logits := forward(t, m, seq)
				id := argmax(logits[(len(seq)-1)*cfg.Vocab:])
				want = append(want, id)
				seq = append(seq, id)
			}
			for _, budget := range []int64{DefaultGenerateBudget, 0} {
				m.GenerateBudget = budget
				got, err := m.Generate(context.Background(), prompt, len(want))
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

// A mixture whose experts are all one MLP, with renormalized top-k
// weights (Mixtral), is that MLP: the model equals the dense Mistral with
// the same weights.
func TestMixtralOfEqualExpertsIsDense(t *testing.T) {
	// MixtralConfig's defaults, which MistralConfig does not share.
	dense := parseArch(t, "MistralForCausalLM", `"sliding_window": 5, "rms_norm_eps": 1e-5, "rope_theta": 1e6`)
	moe := tinyArch(t)["mixtral"]
	w := randomWeights(dense)
	mw := randomWeights(moe) // its router: random
	for name, v := range w {
		if !strings.Contains(name, ".mlp.") {
			mw[name] = v
		}
	}
	for l := 0; l < moe.Layers; l++ {
		for e := 0; e < moe.Experts; e++ {
			_, g, u, d := moe.moeNames(e)
			mw[layerName(l, g+".weight")] = w[layerName(l, "mlp.gate_proj.weight")]
			mw[layerName(l, u+".weight")] = w[layerName(l, "mlp.up_proj.weight")]
			mw[layerName(l, d+".weight")] = w[layerName(l, "mlp.down_proj.weight")]
		}
	}
	ids := []int{1, 5, 9, 2, 33, 7, 7, 12}
	want := forward(t, newModel(t, dense, w), ids)
	got := forward(t, newModel(t, moe, mw), ids)
	if d := maxRelDiff(got, want); d > 1e-5 {
		t.Errorf("logits differ from the dense model's by %.3g (relative)", d)
	}
	// Without renormalization the top-2 weights sum to less than 1: not
	// the dense model.
	un := *moe
	un.NormTopK = false
	if d := maxRelDiff(forward(t, newModel(t, &un, mw), ids), want); d < 1e-3 {
		t.Errorf("unnormalized top-k weights give the dense model (difference %.3g): the test cannot see NormTopK", d)
	}
}

// TestMoEReads checks that the router decides what is read: with a router
// of zeros every position picks experts 0 and 1 (the lower index on ties),
// which are read once per Layer call whatever the positions; the others
// are not read.
func TestMoEReads(t *testing.T) {
	for _, name := range []string{"mixtral", "qwen3-moe"} {
		t.Run(name, func(t *testing.T) {
			cfg := tinyArch(t)[name]
			mw := randomWeights(cfg)
			router, _, _, _ := cfg.moeNames(0)
			for l := 0; l < cfg.Layers; l++ {
				if cfg.moeLayer(l) {
					mw[layerName(l, router+".weight")] = memTensor{[]int{cfg.Experts, cfg.Hidden}, make([]float32, cfg.Experts*cfg.Hidden)}
				}
			}
			w := &countingWeights{mw, map[string]int{}}
			m := newModel(t, cfg, w)
			ctx := context.Background()
			s, err := m.Embed(ctx, []int{1, 2, 3, 4, 5, 6})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Layer(ctx, 1, s); err != nil {
				t.Fatal(err)
			}
			for e := 0; e < cfg.Experts; e++ {
				_, g, u, d := cfg.moeNames(e)
				want := 0
				if e < 2 {
					want = 1
				}
				for _, n := range []string{g, u, d} {
					if got := w.reads[layerName(1, n+".weight")]; got != want {
						t.Errorf("%s read %d times, want %d", layerName(1, n+".weight"), got, want)
					}
				}
			}
			if n := w.reads[layerName(1, router+".weight")]; n != 1 {
				t.Errorf("router read %d times, want 1", n)
			}
		})
	}
}

// Gemma's pieces against their formulas: the (1 + w) norm, the scaled
// embeddings, the caps.
func TestGemmaPieces(t *testing.T) {
	x := []float32{1, -2, 3, 0.5}
	w := []float32{0, 0.5, -1, 2}
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	r := 1 / math.Sqrt(ss/4+1e-6)
	got := make([]float32, 4)
	rmsNorm(got, x, w, 4, 1e-6, true)
	for i := range x {
		if want := float64(x[i]) * r * (1 + float64(w[i])); math.Abs(float64(got[i])-want) > 1e-6*(1+math.Abs(want)) {
			t.Errorf("gemma norm [%d] = %v, want %v", i, got[i], want)
		}
	}
	c := &Config{Hidden: 64}
	c.Gemma, c.FinalSoftcap = true, 5
	e := []float32{1, -0.5}
	c.scaleEmbeddings(e)
	if e[0] != 8 || e[1] != -4 {
		t.Errorf("embeddings scaled to %v, want [8 -4]", e)
	}
	l := []float32{0, 5, -100}
	c.capLogits(l)
	if l[0] != 0 || math.Abs(float64(l[1])-5*math.Tanh(1)) > 1e-6 || math.Abs(float64(l[2])+5) > 1e-6 {
		t.Errorf("capped logits %v", l)
	}
	if u := parseArch(t, "Gemma3ForCausalLM", `"rope_local_base_freq": 1e-20`).Unusual(); !strings.HasPrefix(u, "rope_local_base_freq 1e-20") {
		t.Errorf("Unusual() = %q, want rope_local_base_freq named", u)
	}
	g, u := []float32{1, -1, 0}, []float32{1, 1, 1}
	(&Config{ArchConfig: ArchConfig{Activation: "gelu_pytorch_tanh"}}).activate(g, u)
	// gelu_tanh(1) = 0.8411920, gelu_tanh(-1) = -0.1588080
	if math.Abs(float64(g[0])-0.8411920) > 1e-6 || math.Abs(float64(g[1])+0.1588080) > 1e-6 || g[2] != 0 {
		t.Errorf("gelu_pytorch_tanh gives %v", g)
	}
}

// TestGoldenNumpy compares the forward pass of tiny random models of the
// newer architectures with scripts/eval_ref.py's float64 pass (written by
// scripts/arch_golden.py) at every position of 24 ids, past the sliding
// windows of 5, with Gemma's caps binding.
func TestGoldenNumpy(t *testing.T) {
	for _, name := range []string{"qwen3-tiny", "qwen3-moe-tiny", "mixtral-tiny", "gemma2-tiny", "gemma3-tiny"} {
		t.Run(name, func(t *testing.T) {
			var g struct {
				IDs       []int       `json:"ids"`
				Positions []int       `json:"positions"`
				Logits    [][]float32 `json:"logits"`
			}
			data, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &g); err != nil {
				t.Fatal(err)
			}
			cfg, w := tinyModel(name)(t)
			logits := forward(t, newModel(t, cfg, w), g.IDs)
			var worst float64
			for i, p := range g.Positions {
				got := logits[p*cfg.Vocab : (p+1)*cfg.Vocab]
				worst = max(worst, maxRelDiff(got, g.Logits[i]))
				if argmax(got) != argmax(g.Logits[i]) {
					t.Errorf("position %d: argmax %d, numpy %d", p, argmax(got), argmax(g.Logits[i]))
				}
			}
			if worst > goldenTolerance {
				t.Errorf("logits differ from numpy's by %.3g (relative), more than %g", worst, goldenTolerance)
			}
			t.Logf("largest relative difference from numpy: %.3g", worst)
		})
	}
}

// detWeights builds the tensors of a torch golden: each value is offset +
// (2u - 1)·sqrt(3)·scale, u uniform in [0, 1) from a 64-bit LCG seeded by
// the FNV-1a hash of the tensor's name, computed in float64 and rounded to
// float32, as scripts/model_ref_torch.py's det_tensor.
func detWeights(specs [][]json.RawMessage) (memWeights, error) {
	w := memWeights{}
	for _, s := range specs {
		var name string
		var shape []int
		var scale, offset float64
		if len(s) != 4 {
			return nil, fmt.Errorf("tensor spec %s: want [name, shape, scale, offset]", s)
		}
		for i, dst := range []any{&name, &shape, &scale, &offset} {
			if err := json.Unmarshal(s[i], dst); err != nil {
				return nil, err
			}
		}
		seed := uint64(0xcbf29ce484222325)
		for _, b := range []byte(name) {
			seed = (seed ^ uint64(b)) * 0x100000001b3
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			seed = seed*6364136223846793005 + 1442695040888963407
			u := float64(seed>>11) / (1 << 53)
			data[i] = float32(offset + (2*u-1)*math.Sqrt(3)*scale)
		}
		w[name] = memTensor{shape, data}
	}
	return w, nil
}

// TestGoldenTorchArch compares the forward pass of tiny random models of
// the newer architectures with scripts/model_ref_torch.py's independent
// float32 torch pass (written from transformers' modeling code, not from
// this package nor eval_ref.py) at every position of 24 ids: windows of 5
// or 6, sliding and global layers, Gemma 3's local RoPE base and linear
// scaling on its global layer, Gemma 2's binding caps, 4 experts top-2,
// config keys left out so that the config classes' defaults apply, and
// Gemma 3's config as transformers 5 writes it (layer_types,
// rope_parameters per layer type).
func TestGoldenTorchArch(t *testing.T) {
	for _, name := range []string{"torch-qwen3", "torch-qwen3-moe", "torch-mixtral", "torch-gemma2", "torch-gemma3", "torch-gemma3-tf5"} {
		t.Run(name, func(t *testing.T) {
			var g struct {
				Config    json.RawMessage     `json:"config"`
				Tensors   [][]json.RawMessage `json:"tensors"`
				IDs       []int               `json:"ids"`
				Positions []int               `json:"positions"`
				Logits    [][]float32         `json:"logits"`
			}
			data, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &g); err != nil {
				t.Fatal(err)
			}
			cfg, err := ParseConfig(g.Config)
			if err != nil {
				t.Fatal(err)
			}
			w, err := detWeights(g.Tensors)
			if err != nil {
				t.Fatal(err)
			}
			m := newModel(t, cfg, w)
			names := make([]string, 0, len(w))
			for n := range w {
				names = append(names, n)
			}
			slices.Sort(names)
			if u := m.Unused(names); len(u) > 0 {
				t.Errorf("tensors the model does not read: %v", u)
			}
			logits := forward(t, m, g.IDs)
			var worst float64
			for i, p := range g.Positions {
				got := logits[p*cfg.Vocab : (p+1)*cfg.Vocab]
				worst = max(worst, maxRelDiff(got, g.Logits[i]))
				if argmax(got) != argmax(g.Logits[i]) {
					t.Errorf("position %d: argmax %d, torch %d", p, argmax(got), argmax(g.Logits[i]))
				}
			}
			if worst > goldenTolerance {
				t.Errorf("logits differ from torch's by %.3g (relative), more than %g", worst, goldenTolerance)
			}
			t.Logf("largest relative difference from torch: %.3g", worst)
		})
	}
}
