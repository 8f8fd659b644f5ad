package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// MaxExperts bounds num_local_experts (num_experts), far above the 128 or
// 256 of released mixture-of-experts models.
const MaxExperts = 1 << 16

// ArchConfig is what Qwen3, Gemma 2 and 3 and the mixture-of-experts models
// (Mixtral, Qwen3-MoE) add to Llama's configuration. Its zero value is
// Llama's layer.
type ArchConfig struct {
	// QKNorm: an RMSNorm over each head of the queries and keys
	// (self_attn.q_norm, k_norm), before RoPE (Qwen3, Gemma 3).
	QKNorm bool
	// Gemma: norm weights applied as (1 + w), four norms per layer
	// (input, post_attention, pre_feedforward, post_feedforward) and
	// embeddings scaled by sqrt(hidden_size).
	Gemma bool
	// Activation is the MLP's: "silu" (also when ""), "gelu_pytorch_tanh"
	// or "gelu".
	Activation string
	// QueryScale multiplies the attention scores: query_pre_attn_scalar^-0.5
	// for Gemma, head_dim^-0.5 when 0.
	QueryScale float64
	// AttnSoftcap and FinalSoftcap, when > 0, cap the attention scores and
	// the logits to cap·tanh(x/cap) (Gemma 2's attn_logit_softcapping,
	// final_logit_softcapping).
	AttnSoftcap, FinalSoftcap float64
	// Sliding, when not nil, says per layer whether it uses SlidingWindow
	// (Gemma's layer_types, and Qwen3's when it slides); when nil,
	// SlidingFrom does.
	Sliding []bool
	// LocalRopeTheta, when > 0, is the RoPE base of the sliding layers,
	// which use no rope_scaling (Gemma 3's rope_local_base_freq).
	LocalRopeTheta float64
	// Experts is num_local_experts (Mixtral) or num_experts (Qwen3-MoE);
	// 0 for a dense model.
	Experts int
	// ExpertsPerToken is num_experts_per_tok, the k of the top-k routing.
	ExpertsPerToken int
	// ExpertIntermediate is the experts' intermediate size
	// (moe_intermediate_size; Mixtral's intermediate_size).
	ExpertIntermediate int
	// NormTopK: the top-k routing weights are divided by their sum
	// (Mixtral always; Qwen3-MoE's norm_topk_prob).
	NormTopK bool
	// MoELayers says per layer whether its MLP is the experts' (nil: none).
	MoELayers []bool
}

// rawArch is the part of config.json only the architectures of ArchConfig
// read. Raw fields tell an absent key (the default) from null (none).
type rawArch struct {
	HiddenActivation   string           `json:"hidden_activation"`
	QueryPreAttnScalar json.RawMessage  `json:"query_pre_attn_scalar"`
	AttnSoftcap        json.RawMessage  `json:"attn_logit_softcapping"`
	FinalSoftcap       json.RawMessage  `json:"final_logit_softcapping"`
	LayerTypes         []string         `json:"layer_types"`
	SlidingPattern     *int             `json:"sliding_window_pattern"`
	RopeLocalBase      *float64         `json:"rope_local_base_freq"`
	Bidirectional      bool             `json:"use_bidirectional_attention"`
	LocalExperts       *int             `json:"num_local_experts"`
	NumExperts         *int             `json:"num_experts"`
	ExpertsPerToken    *int             `json:"num_experts_per_tok"`
	MoEIntermediate    *int             `json:"moe_intermediate_size"`
	NormTopK           *bool            `json:"norm_topk_prob"`
	DecoderSparseStep  *int             `json:"decoder_sparse_step"`
	MLPOnlyLayers      []int            `json:"mlp_only_layers"`
	SharedExpert       *int             `json:"shared_expert_intermediate_size"`
	TextConfig         *json.RawMessage `json:"text_config"`
	SlidingWindow      json.RawMessage  `json:"sliding_window"`
	RopeParameters     json.RawMessage  `json:"rope_parameters"`
}

func (c *Config) qwen3() bool {
	return c.Architecture == "Qwen3ForCausalLM" || c.Architecture == "Qwen3MoeForCausalLM"
}

func (c *Config) gemma() bool {
	return c.Architecture == "Gemma2ForCausalLM" || c.Architecture == "Gemma3ForCausalLM"
}

// parseArch reads rawArch and sets, in r, the defaults of the new
// architectures' config classes that Llama's reading would get wrong
// (Gemma's head_dim 256, Gemma 3's rope_theta 1e6, Qwen3's head_dim 128,
// Mixtral's rms_norm_eps 1e-5 and rope_theta 1e6, Phi-3's rms_norm_eps
// 1e-5, Mistral's sliding_window 4096). A Gemma3ForCausalLM
// config whose sizes sit in text_config is read from there.
func (c *Config) parseArch(data []byte, r *rawConfig) (*rawArch, error) {
	a := &rawArch{}
	if err := json.Unmarshal(data, a); err != nil {
		return nil, err
	}
	if c.Architecture == "Gemma3ForCausalLM" && r.Hidden == 0 && a.TextConfig != nil {
		archs, text := r.Architectures, *a.TextConfig
		*r, *a = rawConfig{}, rawArch{}
		if err := json.Unmarshal(text, r); err != nil {
			return nil, fmt.Errorf("text_config: %w", err)
		}
		if err := json.Unmarshal(text, a); err != nil {
			return nil, fmt.Errorf("text_config: %w", err)
		}
		r.Architectures = archs
	}
	if err := c.ropeParameters(r, a); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Architecture, err)
	}
	// Defaults of the config classes that differ from Llama's.
	switch c.Architecture {
	case "Qwen3ForCausalLM":
		// Qwen3Config's head_dim is 128, not hidden_size / heads.
		if r.HeadDim == nil {
			d := 128
			r.HeadDim = &d
		}
	case "MistralForCausalLM":
		// MistralConfig's sliding_window is 4096 when the key is absent;
		// null is no window.
		if len(bytes.TrimSpace(a.SlidingWindow)) == 0 {
			w := 4096
			r.SlidingWindow = &w
		}
	case "Phi3ForCausalLM":
		if r.RMSNormEps == nil {
			eps := 1e-5 // Phi3Config's
			r.RMSNormEps = &eps
		}
	case "MixtralForCausalLM":
		if r.RMSNormEps == nil {
			eps := 1e-5
			r.RMSNormEps = &eps
		}
		if r.RopeTheta == nil {
			t := 1e6
			r.RopeTheta = &t
		}
	}
	if c.gemma() {
		if r.HeadDim == nil {
			d := 256
			r.HeadDim = &d
		}
		if r.RopeTheta == nil && c.Architecture == "Gemma3ForCausalLM" {
			t := 1e6
			r.RopeTheta = &t
		}
		// Gemma's MLP reads hidden_activation; hidden_act, when there, is
		// not what runs.
		r.HiddenAct = ""
	}
	return a, nil
}

// ropeParameters reads rope_parameters, where transformers 5 writes what
// rope_theta and rope_scaling held: one set of RoPE parameters with their
// rope_theta, or (Gemma 3) one per layer type, full_attention's for the
// global layers and sliding_attention's for the sliding ones. They set r's
// rope_theta and rope_scaling, and a's rope_local_base_freq.
func (c *Config) ropeParameters(r *rawConfig, a *rawArch) error {
	raw := bytes.TrimSpace(a.RopeParameters)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var byType map[string]json.RawMessage
	if err := json.Unmarshal(raw, &byType); err != nil {
		return fmt.Errorf("rope_parameters: %w", err)
	}
	full, sliding := byType["full_attention"], byType["sliding_attention"]
	if full == nil && sliding == nil {
		return setRope(r, raw)
	}
	if c.Architecture != "Gemma3ForCausalLM" {
		return fmt.Errorf("rope_parameters per layer type are only supported for Gemma3ForCausalLM")
	}
	if full != nil {
		if err := setRope(r, full); err != nil {
			return fmt.Errorf("rope_parameters full_attention: %w", err)
		}
	}
	if sliding != nil {
		var p struct {
			Type  string   `json:"rope_type"`
			Theta *float64 `json:"rope_theta"`
		}
		if err := json.Unmarshal(sliding, &p); err != nil {
			return fmt.Errorf("rope_parameters sliding_attention: %w", err)
		}
		if p.Type != "" && p.Type != "default" {
			return fmt.Errorf("rope_parameters sliding_attention: rope_type %q is not supported (default)", p.Type)
		}
		if p.Theta != nil {
			a.RopeLocalBase = p.Theta
		}
	}
	return nil
}

// setRope sets r's rope_theta and rope_scaling from one set of RoPE
// parameters.
func setRope(r *rawConfig, raw json.RawMessage) error {
	var p struct {
		Theta *float64 `json:"rope_theta"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	if p.Theta != nil {
		r.RopeTheta = p.Theta
	}
	scaling := json.RawMessage(slices.Clone(raw))
	r.RopeScaling = &scaling
	return nil
}

// archExtras reads what the new architectures add: biases, windows, the
// Gemma and mixture-of-experts fields.
func (c *Config) archExtras(r *rawConfig, a *rawArch) error {
	switch c.Architecture {
	case "Qwen3ForCausalLM":
		c.QKNorm = true
		c.QKVBias, c.OBias = r.AttentionBias, r.AttentionBias
		// As Qwen2: a window only when use_sliding_window, from layer
		// max_window_layers on.
		if r.UseSlidingWindow != nil && *r.UseSlidingWindow && r.SlidingWindow != nil {
			if err := c.window(*r.SlidingWindow); err != nil {
				return err
			}
			c.SlidingFrom = 28 // Qwen3Config's default
			if r.MaxWindowLayers != nil {
				c.SlidingFrom = *r.MaxWindowLayers
			}
			// layer_types, when config.json holds it, is what
			// Qwen3Attention reads instead of max_window_layers.
			if a.LayerTypes != nil {
				return c.layerTypes(a.LayerTypes)
			}
		}
	case "Qwen3MoeForCausalLM":
		c.QKNorm = true
		c.QKVBias, c.OBias = r.AttentionBias, r.AttentionBias
		// Every layer slides when use_sliding_window.
		if r.UseSlidingWindow != nil && *r.UseSlidingWindow && r.SlidingWindow != nil {
			if err := c.window(*r.SlidingWindow); err != nil {
				return err
			}
		}
		// transformers 5's Qwen3MoeConfig maps num_experts to
		// num_local_experts, which its config.json may hold instead.
		key, n := "num_experts", a.NumExperts
		if n == nil && a.LocalExperts != nil {
			key, n = "num_local_experts", a.LocalExperts
		}
		return c.moe(a, key, n, 128)
	case "MixtralForCausalLM":
		if r.SlidingWindow != nil {
			if err := c.window(*r.SlidingWindow); err != nil {
				return err
			}
		}
		return c.moe(a, "num_local_experts", a.LocalExperts, 8)
	case "Gemma2ForCausalLM", "Gemma3ForCausalLM":
		return c.gemmaExtras(r, a)
	}
	return nil
}

func (c *Config) window(w int) error {
	if w <= 0 {
		return fmt.Errorf("sliding_window is %d, want > 0 (or null for no window)", w)
	}
	c.SlidingWindow = w
	return nil
}

// moe reads the mixture-of-experts fields; key names the expert count's
// key, def its default in transformers' config class.
func (c *Config) moe(a *rawArch, key string, experts *int, def int) error {
	c.Experts = def
	if experts != nil {
		c.Experts = *experts
	}
	c.ExpertsPerToken = 2 // MixtralConfig's default
	if c.qwen3() {
		c.ExpertsPerToken = 8 // Qwen3MoeConfig's
	}
	if a.ExpertsPerToken != nil {
		c.ExpertsPerToken = *a.ExpertsPerToken
	}
	if c.Experts <= 0 || c.Experts > MaxExperts {
		return fmt.Errorf("%s is %d, want > 0 and at most %d", key, c.Experts, MaxExperts)
	}
	if c.ExpertsPerToken <= 0 || c.ExpertsPerToken > c.Experts {
		return fmt.Errorf("num_experts_per_tok is %d, want > 0 and at most %s %d", c.ExpertsPerToken, key, c.Experts)
	}
	c.MoELayers = make([]bool, c.Layers)
	if !c.qwen3() {
		// Mixtral: every layer, experts of intermediate_size.
		c.NormTopK, c.ExpertIntermediate = true, c.Intermediate
		for l := range c.MoELayers {
			c.MoELayers[l] = true
		}
		return c.moeWidths()
	}
	if a.SharedExpert != nil && *a.SharedExpert != 0 {
		return fmt.Errorf("shared_expert_intermediate_size is %d: shared experts (Qwen2-MoE) are not supported", *a.SharedExpert)
	}
	c.NormTopK = a.NormTopK != nil && *a.NormTopK
	c.ExpertIntermediate = 768 // Qwen3MoeConfig's default
	if a.MoEIntermediate != nil {
		c.ExpertIntermediate = *a.MoEIntermediate
	}
	if c.ExpertIntermediate <= 0 || c.ExpertIntermediate > MaxWidth {
		return fmt.Errorf("moe_intermediate_size is %d, want > 0 and at most %d", c.ExpertIntermediate, MaxWidth)
	}
	step := 1
	if a.DecoderSparseStep != nil {
		step = *a.DecoderSparseStep
	}
	if step <= 0 {
		return fmt.Errorf("decoder_sparse_step is %d, want > 0", step)
	}
	dense := make([]bool, c.Layers)
	for _, l := range a.MLPOnlyLayers {
		if l < 0 || l >= c.Layers {
			return fmt.Errorf("mlp_only_layers holds %d, outside layers 0..%d", l, c.Layers-1)
		}
		dense[l] = true
	}
	// Qwen3MoeDecoderLayer: the experts' MLP unless the layer is in
	// mlp_only_layers, and only every decoder_sparse_step-th layer.
	for l := range c.MoELayers {
		c.MoELayers[l] = !dense[l] && (l+1)%step == 0
	}
	return c.moeWidths()
}

// moeWidths checks the router's and the experts' matrices, and their
// activations over the longest stream, as widths() does for the rest.
func (c *Config) moeWidths() error {
	for _, w := range []struct {
		what string
		v    int
	}{{"the experts' intermediate size", c.ExpertIntermediate}, {"the number of experts", c.Experts}} {
		if _, ok := mul(w.v, c.Hidden); !ok {
			return fmt.Errorf("%s %d × hidden_size %d does not fit an int", w.what, w.v, c.Hidden)
		}
		if _, ok := mul(w.v, c.MaxPositions); !ok {
			return fmt.Errorf("%s %d × max_position_embeddings %d does not fit an int", w.what, w.v, c.MaxPositions)
		}
	}
	return nil
}

// gemmaExtras reads Gemma 2's and 3's fields, with the defaults of
// Gemma2Config and Gemma3TextConfig.
func (c *Config) gemmaExtras(r *rawConfig, a *rawArch) error {
	g3 := c.Architecture == "Gemma3ForCausalLM"
	c.Gemma, c.QKNorm = true, g3
	c.TieEmbeddings = r.Tie == nil || *r.Tie // Gemma's default is tied
	c.QKVBias, c.OBias = r.AttentionBias, r.AttentionBias
	if a.Bidirectional {
		return fmt.Errorf("use_bidirectional_attention is true: only causal attention is supported")
	}
	c.Activation = "gelu_pytorch_tanh"
	if a.HiddenActivation != "" {
		c.Activation = a.HiddenActivation
	}
	switch c.Activation {
	case "gelu_pytorch_tanh", "gelu":
	default:
		return fmt.Errorf("hidden_activation %q is not supported (gelu_pytorch_tanh, gelu)", c.Activation)
	}
	scalar, err := optPositive("query_pre_attn_scalar", a.QueryPreAttnScalar, 256)
	if err != nil {
		return err
	}
	if scalar == 0 {
		return fmt.Errorf("query_pre_attn_scalar is null, want a positive number")
	}
	c.QueryScale = 1 / math.Sqrt(scalar)
	finalDef, attnDef := 30.0, 50.0 // Gemma2Config's
	if g3 {
		finalDef, attnDef = 0, 0
	}
	if c.FinalSoftcap, err = optPositive("final_logit_softcapping", a.FinalSoftcap, finalDef); err != nil {
		return err
	}
	if c.AttnSoftcap, err = optPositive("attn_logit_softcapping", a.AttnSoftcap, attnDef); err != nil {
		return err
	}
	if g3 {
		// Gemma3Attention keeps attn_logit_softcapping but does not apply it.
		c.AttnSoftcap = 0
		c.LocalRopeTheta = 10000
		if a.RopeLocalBase != nil {
			c.LocalRopeTheta = *a.RopeLocalBase
		}
		if err := float32Positive("rope_local_base_freq", c.LocalRopeTheta); err != nil {
			return err
		}
	}
	return c.gemmaLayers(r, a, g3)
}

// gemmaLayers reads which layers slide: layer_types when given, else
// Gemma 2's every other layer from the first, or Gemma 3's all but every
// sliding_window_pattern-th.
func (c *Config) gemmaLayers(r *rawConfig, a *rawArch, g3 bool) error {
	c.Sliding = make([]bool, c.Layers)
	switch {
	case a.LayerTypes != nil:
		if err := c.layerTypes(a.LayerTypes); err != nil {
			return err
		}
	case g3:
		p := 6
		if a.SlidingPattern != nil {
			p = *a.SlidingPattern
		}
		if p <= 0 {
			return fmt.Errorf("sliding_window_pattern is %d, want > 0", p)
		}
		for l := range c.Sliding {
			c.Sliding[l] = (l+1)%p != 0
		}
	default:
		for l := range c.Sliding {
			c.Sliding[l] = l%2 == 0
		}
	}
	w := 4096 // both config classes' default
	if r.SlidingWindow != nil {
		w = *r.SlidingWindow
	} else if bytes.Equal(bytes.TrimSpace(a.SlidingWindow), []byte("null")) {
		if slices.Contains(c.Sliding, true) {
			return fmt.Errorf("sliding_window is null, but layers slide (layer_types, sliding_window_pattern)")
		}
		return nil
	}
	return c.window(w)
}

// layerTypes sets Sliding from layer_types.
func (c *Config) layerTypes(types []string) error {
	if len(types) != c.Layers {
		return fmt.Errorf("layer_types has %d entries, want num_hidden_layers %d", len(types), c.Layers)
	}
	c.Sliding = make([]bool, c.Layers)
	for l, t := range types {
		switch t {
		case "sliding_attention":
			c.Sliding[l] = true
		case "full_attention":
		default:
			return fmt.Errorf("layer_types[%d] is %q, want sliding_attention or full_attention", l, t)
		}
	}
	return nil
}

// optPositive reads an optional positive number: def when the key is
// absent, 0 when null.
func optPositive(key string, raw json.RawMessage, def float64) (float64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return def, nil
	}
	if bytes.Equal(raw, []byte("null")) {
		return 0, nil
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("%s: want a number, got %s", key, raw)
	}
	if err := float32Positive(key, v); err != nil {
		return 0, err
	}
	return v, nil
}

// windowAt returns layer l's sliding window, 0 for full attention.
func (c *Config) windowAt(l int) int {
	switch {
	case c.SlidingWindow <= 0:
		return 0
	case c.Sliding != nil:
		if c.Sliding[l] {
			return c.SlidingWindow
		}
		return 0
	case l >= c.SlidingFrom:
		return c.SlidingWindow
	}
	return 0
}

// moeLayer reports whether layer l's MLP is a mixture of experts.
func (c *Config) moeLayer(l int) bool { return c.MoELayers != nil && c.MoELayers[l] }

// moeNames returns the names, within a layer, of the router and of expert
// e's gate, up and down projections, as the checkpoints name them.
func (c *Config) moeNames(e int) (router, gate, up, down string) {
	if c.Architecture == "MixtralForCausalLM" {
		p := fmt.Sprintf("block_sparse_moe.experts.%d.", e)
		return "block_sparse_moe.gate", p + "w1", p + "w3", p + "w2"
	}
	p := fmt.Sprintf("mlp.experts.%d.", e)
	return "mlp.gate", p + "gate_proj", p + "up_proj", p + "down_proj"
}
