// Package model runs the forward pass of decoder-only transformers (Llama,
// Mistral, Phi-3, Qwen2, Qwen3, Gemma 2 and 3, and the mixtures of experts
// Mixtral and Qwen3-MoE) in float32 as Hugging Face transformers computes
// it, reading weights tensor by tensor so memory stays about one layer.
//
// Every product of a weight matrix by activations goes through Model.mul
// (resident.go): a matrix Generate keeps in memory (a Matrix, see
// Resident and Model.Memory) multiplies in place, one pass over its stored
// bytes per token; any other is read and goes to gemm. A new layer type
// calls mul (or linear, which adds the bias) and gets both.
package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"

	"github.com/qins-dev/qins/format"
)

// supportedList names the architectures the package runs, for errors.
const supportedList = "LlamaForCausalLM, MistralForCausalLM, Phi3ForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, MixtralForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM"

// Bounds on config.json's sizes, far above those of any released model of
// the supported architectures. Within them, no width made of config
// values (num_attention_heads × head_dim, say), no matrix of two widths and
// no product of a width and a stream length overflows an int, so such a
// value cannot wrap around to a checkpoint's real width.
const (
	// MaxWidth bounds hidden_size, intermediate_size, vocab_size and the
	// widths made of them: heads × head_dim, the fused projections.
	MaxWidth = 1 << 24
	// MaxLayers bounds num_hidden_layers.
	MaxLayers = 1 << 16
	// MaxPositions bounds max_position_embeddings.
	MaxPositions = 1 << 26
	// MaxNormEps bounds rms_norm_eps.
	MaxNormEps = 1
)

// Config is the part of a Hugging Face config.json the forward pass needs.
type Config struct {
	Architecture string // e.g. "LlamaForCausalLM"
	Hidden       int    // hidden_size
	Intermediate int    // intermediate_size
	Layers       int    // num_hidden_layers
	Heads        int    // num_attention_heads
	KVHeads      int    // num_key_value_heads (GQA); Heads when absent
	HeadDim      int    // head_dim, or Hidden/Heads when absent
	Vocab        int    // vocab_size
	MaxPositions int    // max_position_embeddings: the longest stream
	NormEps      float64
	RopeTheta    float64
	// RotaryDim is how many leading dimensions of each head RoPE rotates:
	// HeadDim times partial_rotary_factor.
	RotaryDim int
	Rope      RopeScaling
	// TieEmbeddings is tie_word_embeddings: the output head is the input
	// embedding. Untied, lm_head.weight must be there.
	TieEmbeddings bool
	// QKVBias: q, k and v projections have biases (Qwen2, Llama's
	// attention_bias); OBias: o_proj too (Llama's attention_bias).
	QKVBias, OBias bool
	MLPBias        bool // Llama's mlp_bias
	// SlidingWindow, when > 0, lets a position attend to the last
	// SlidingWindow positions only (itself included), in layers from
	// SlidingFrom on.
	SlidingWindow int
	SlidingFrom   int
	BOS           int   // bos_token_id, -1 when none
	EOS           []int // eos_token_id (one or several)
	// ArchConfig holds what Qwen3, Gemma and the mixtures of experts add.
	ArchConfig
}

// RopeScaling is config.json's rope_scaling.
type RopeScaling struct {
	// Type is "default", "linear", "dynamic", "llama3" or "longrope" ("su"
	// is read as "longrope").
	Type   string
	Factor float64
	// llama3
	LowFreqFactor, HighFreqFactor float64
	// OriginalMax is original_max_position_embeddings (llama3, longrope).
	OriginalMax int
	// longrope: per-frequency divisors, RotaryDim/2 each; long_factor is
	// used when the sequence is longer than OriginalMax.
	ShortFactor, LongFactor []float64
	// AttentionFactor scales cos and sin (longrope); 1 when not scaled.
	AttentionFactor float64
	// derivedFrom, when not "", says what AttentionFactor is derived
	// from, config.json not holding attention_factor.
	derivedFrom string
}

type rawConfig struct {
	Architectures    []string         `json:"architectures"`
	Hidden           int              `json:"hidden_size"`
	Intermediate     int              `json:"intermediate_size"`
	Layers           int              `json:"num_hidden_layers"`
	Heads            int              `json:"num_attention_heads"`
	KVHeads          *int             `json:"num_key_value_heads"`
	HeadDim          *int             `json:"head_dim"`
	Vocab            int              `json:"vocab_size"`
	MaxPositions     int              `json:"max_position_embeddings"`
	OriginalMax      *int             `json:"original_max_position_embeddings"`
	RMSNormEps       *float64         `json:"rms_norm_eps"`
	RopeTheta        *float64         `json:"rope_theta"`
	PartialRotary    *float64         `json:"partial_rotary_factor"`
	RopeScaling      *json.RawMessage `json:"rope_scaling"`
	HiddenAct        string           `json:"hidden_act"`
	Tie              *bool            `json:"tie_word_embeddings"`
	AttentionBias    bool             `json:"attention_bias"`
	MLPBias          bool             `json:"mlp_bias"`
	SlidingWindow    *int             `json:"sliding_window"`
	UseSlidingWindow *bool            `json:"use_sliding_window"`
	MaxWindowLayers  *int             `json:"max_window_layers"`
	BOS              json.RawMessage  `json:"bos_token_id"`
	EOS              json.RawMessage  `json:"eos_token_id"`
}

type rawRope struct {
	Type            string    `json:"type"`
	RopeType        string    `json:"rope_type"`
	Factor          *float64  `json:"factor"`
	LowFreqFactor   float64   `json:"low_freq_factor"`
	HighFreqFactor  float64   `json:"high_freq_factor"`
	OriginalMax     int       `json:"original_max_position_embeddings"`
	ShortFactor     []float64 `json:"short_factor"`
	LongFactor      []float64 `json:"long_factor"`
	AttentionFactor *float64  `json:"attention_factor"`
}

// ConfigError is what is wrong in a config.json's content. Its message
// starts with "config.json: "; a caller that names the file itself prints
// Err instead, so the file is not named twice.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return "config.json: " + e.Err.Error() }

func (e *ConfigError) Unwrap() error { return e.Err }

// ParseConfig parses a Hugging Face config.json. An architecture the
// package does not run is an error naming it. Its errors are
// *ConfigError.
func ParseConfig(data []byte) (*Config, error) {
	c, err := parseConfig(data)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	return c, nil
}

func parseConfig(data []byte) (*Config, error) {
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if len(r.Architectures) != 1 {
		return nil, fmt.Errorf("want one architecture, got %q", r.Architectures)
	}
	c := &Config{Architecture: r.Architectures[0]}
	if !supported(c.Architecture) {
		return nil, fmt.Errorf("architecture %s is not supported (supported: %s)", format.Printable(c.Architecture), supportedList)
	}
	a, err := c.parseArch(data, &r)
	if err != nil {
		return nil, err
	}
	if err := c.sizes(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Architecture, err)
	}
	if err := c.rope(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Architecture, err)
	}
	if err := c.extras(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Architecture, err)
	}
	if err := c.archExtras(&r, a); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Architecture, err)
	}
	if c.BOS, err = firstID(r.BOS); err != nil {
		return nil, fmt.Errorf("bos_token_id: %w", err)
	}
	if c.EOS, err = ids(r.EOS); err != nil {
		return nil, fmt.Errorf("eos_token_id: %w", err)
	}
	return c, nil
}

func supported(arch string) bool {
	switch arch {
	case "LlamaForCausalLM", "MistralForCausalLM", "Phi3ForCausalLM", "Qwen2ForCausalLM",
		"Qwen3ForCausalLM", "Qwen3MoeForCausalLM", "MixtralForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM":
		return true
	}
	return false
}

func (c *Config) phi3() bool { return c.Architecture == "Phi3ForCausalLM" }

// sizes reads and checks the dimensions: each within its bound, and every
// width made of them computed with overflow-checked arithmetic.
func (c *Config) sizes(r *rawConfig) error {
	c.Hidden, c.Intermediate, c.Layers, c.Heads = r.Hidden, r.Intermediate, r.Layers, r.Heads
	c.Vocab, c.MaxPositions = r.Vocab, r.MaxPositions
	for _, f := range []struct {
		name   string
		v, max int
	}{{"hidden_size", c.Hidden, MaxWidth}, {"intermediate_size", c.Intermediate, MaxWidth}, {"num_hidden_layers", c.Layers, MaxLayers},
		{"num_attention_heads", c.Heads, MaxWidth}, {"vocab_size", c.Vocab, MaxWidth}, {"max_position_embeddings", c.MaxPositions, MaxPositions}} {
		if f.v <= 0 || f.v > f.max {
			return fmt.Errorf("%s is %d, want > 0 and at most %d", f.name, f.v, f.max)
		}
	}
	c.KVHeads = c.Heads
	if r.KVHeads != nil {
		c.KVHeads = *r.KVHeads
	}
	if c.KVHeads <= 0 || c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("num_key_value_heads %d does not divide num_attention_heads %d", c.KVHeads, c.Heads)
	}
	if r.HeadDim != nil {
		c.HeadDim = *r.HeadDim
	} else {
		if c.Hidden%c.Heads != 0 {
			return fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", c.Hidden, c.Heads)
		}
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.HeadDim <= 0 || c.HeadDim > MaxWidth {
		return fmt.Errorf("head_dim is %d, want > 0 and at most %d", c.HeadDim, MaxWidth)
	}
	if err := c.widths(); err != nil {
		return err
	}
	partial := 1.0
	if r.PartialRotary != nil {
		partial = *r.PartialRotary
	}
	if !(partial > 0 && partial <= 1) {
		return fmt.Errorf("partial_rotary_factor is %g, want > 0 and at most 1", partial)
	}
	c.RotaryDim = int(float64(c.HeadDim) * partial)
	if c.RotaryDim <= 0 || c.RotaryDim%2 != 0 || c.RotaryDim > c.HeadDim {
		return fmt.Errorf("rotary dimension %d (head_dim %d × partial_rotary_factor %g) must be even, in 2..head_dim", c.RotaryDim, c.HeadDim, partial)
	}
	c.NormEps = 1e-6
	if r.RMSNormEps != nil {
		c.NormEps = *r.RMSNormEps
	}
	// 0 or a huge epsilon flattens every norm, and so the distribution;
	// released models use 1e-5 or 1e-6.
	if err := float32Positive("rms_norm_eps", c.NormEps); err != nil {
		return err
	}
	if c.NormEps > MaxNormEps {
		return fmt.Errorf("rms_norm_eps is %g, want at most %g (released models use 1e-5 or 1e-6)", c.NormEps, float64(MaxNormEps))
	}
	c.RopeTheta = 10000
	if r.RopeTheta != nil {
		c.RopeTheta = *r.RopeTheta
	}
	if err := float32Positive("rope_theta", c.RopeTheta); err != nil {
		return err
	}
	if r.HiddenAct != "" && r.HiddenAct != "silu" {
		return fmt.Errorf("hidden_act %q is not supported (only silu)", r.HiddenAct)
	}
	return nil
}

// widths checks, with overflow-checked arithmetic, every width the forward
// pass makes of config values (the attention's, the fused projections'),
// every matrix of two widths, and the products of a width, or of the
// attention scores' row, with the longest stream.
func (c *Config) widths() error {
	type width struct {
		what string
		v    int
		ok   bool
	}
	q, okQ := mul(c.Heads, c.HeadDim)
	kv, okKV := mul(c.KVHeads, c.HeadDim)
	kv2, ok2 := mul(2, kv)
	qkv, okQKV := add(q, kv2)
	gateUp, okGU := mul(2, c.Intermediate)
	ws := []width{
		{"hidden_size", c.Hidden, true},
		{"intermediate_size", c.Intermediate, true},
		{"vocab_size", c.Vocab, true},
		{fmt.Sprintf("num_attention_heads %d × head_dim %d", c.Heads, c.HeadDim), q, okQ},
		{fmt.Sprintf("num_key_value_heads %d × head_dim %d", c.KVHeads, c.HeadDim), kv, okKV},
		{fmt.Sprintf("(num_attention_heads %d + 2 × num_key_value_heads %d) × head_dim %d", c.Heads, c.KVHeads, c.HeadDim), qkv, okQ && okKV && ok2 && okQKV},
		{fmt.Sprintf("2 × intermediate_size %d", c.Intermediate), gateUp, okGU},
	}
	for _, w := range ws {
		if !w.ok || w.v > MaxWidth {
			return fmt.Errorf("%s is too large: a width over %d", w.what, MaxWidth)
		}
	}
	// Each matrix is two of these widths; each activation a width times
	// the stream's length; the attention scores the length squared.
	for _, a := range ws {
		for _, b := range ws {
			if _, ok := mul(a.v, b.v); !ok {
				return fmt.Errorf("a %s × %s matrix does not fit an int", a.what, b.what)
			}
		}
		if _, ok := mul(a.v, c.MaxPositions); !ok {
			return fmt.Errorf("%s × max_position_embeddings %d does not fit an int", a.what, c.MaxPositions)
		}
	}
	if _, ok := mul(c.MaxPositions, c.MaxPositions); !ok {
		return fmt.Errorf("max_position_embeddings %d squared does not fit an int", c.MaxPositions)
	}
	return nil
}

// mul returns a×b for a, b >= 0, and false when it does not fit an int.
func mul(a, b int) (int, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt {
		return 0, false
	}
	return int(lo), true
}

// add returns a+b for a, b >= 0, and false when it does not fit an int.
func add(a, b int) (int, bool) {
	if a < 0 || b < 0 || a > math.MaxInt-b {
		return 0, false
	}
	return a + b, true
}

// extras reads tied embeddings, biases and the sliding window. A window
// that is not null must be > 0: null is no window, as in transformers.
func (c *Config) extras(r *rawConfig) error {
	c.TieEmbeddings = r.Tie != nil && *r.Tie
	switch c.Architecture {
	case "LlamaForCausalLM":
		c.QKVBias, c.OBias, c.MLPBias = r.AttentionBias, r.AttentionBias, r.MLPBias
	case "Qwen2ForCausalLM":
		c.QKVBias = true
		// Qwen2 slides only when use_sliding_window, from layer
		// max_window_layers on (transformers' layer_types).
		if r.UseSlidingWindow != nil && *r.UseSlidingWindow && r.SlidingWindow != nil {
			if *r.SlidingWindow <= 0 {
				return fmt.Errorf("sliding_window is %d, want > 0 (or null for no window)", *r.SlidingWindow)
			}
			c.SlidingWindow = *r.SlidingWindow
			c.SlidingFrom = 28 // Qwen2Config's default
			if r.MaxWindowLayers != nil {
				c.SlidingFrom = *r.MaxWindowLayers
			}
		}
	case "MistralForCausalLM", "Phi3ForCausalLM":
		if r.SlidingWindow != nil {
			if *r.SlidingWindow <= 0 {
				return fmt.Errorf("sliding_window is %d, want > 0 (or null for no window)", *r.SlidingWindow)
			}
			c.SlidingWindow = *r.SlidingWindow
		}
	}
	return nil
}

// rope reads rope_scaling.
func (c *Config) rope(r *rawConfig) error {
	c.Rope = RopeScaling{Type: "default", Factor: 1, AttentionFactor: 1}
	if r.RopeScaling == nil || bytes.Equal(bytes.TrimSpace(*r.RopeScaling), []byte("null")) {
		return nil
	}
	var rr rawRope
	if err := json.Unmarshal(*r.RopeScaling, &rr); err != nil {
		return fmt.Errorf("rope_scaling: %w", err)
	}
	t := rr.RopeType
	if t == "" {
		t = rr.Type
	}
	if t == "" {
		t = "default"
	}
	if t == "su" {
		t = "longrope"
	}
	c.Rope.Type = t
	if rr.Factor != nil {
		c.Rope.Factor = *rr.Factor
		if err := float32Positive("rope_scaling factor", c.Rope.Factor); err != nil {
			return err
		}
	}
	switch t {
	case "default":
	case "dynamic":
		// Dynamic NTK changes nothing up to max_position_embeddings, the
		// longest stream the package accepts.
	case "linear":
	case "llama3":
		c.Rope.LowFreqFactor, c.Rope.HighFreqFactor, c.Rope.OriginalMax = rr.LowFreqFactor, rr.HighFreqFactor, rr.OriginalMax
		if rr.OriginalMax <= 0 || rr.HighFreqFactor <= rr.LowFreqFactor || rr.LowFreqFactor <= 0 {
			return fmt.Errorf("rope_scaling llama3: need factor > 0, original_max_position_embeddings > 0, high_freq_factor > low_freq_factor > 0")
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"low_freq_factor", rr.LowFreqFactor}, {"high_freq_factor", rr.HighFreqFactor}, {"high_freq_factor - low_freq_factor", rr.HighFreqFactor - rr.LowFreqFactor}} {
			if err := float32Positive("rope_scaling "+f.name, f.v); err != nil {
				return err
			}
		}
	case "longrope":
		return c.longrope(r, &rr)
	default:
		return fmt.Errorf("rope_scaling type %q is not supported (supported: default, linear, dynamic, llama3, longrope/su)", t)
	}
	return nil
}

// longrope reads LongRoPE's factors as transformers'
// _compute_longrope_parameters does.
func (c *Config) longrope(r *rawConfig, rr *rawRope) error {
	if !c.phi3() {
		return fmt.Errorf("rope_scaling type longrope is only supported for Phi3ForCausalLM")
	}
	half := c.RotaryDim / 2
	if len(rr.ShortFactor) != half || len(rr.LongFactor) != half {
		return fmt.Errorf("rope_scaling longrope: short_factor has %d values and long_factor %d, want %d (rotary dim / 2)", len(rr.ShortFactor), len(rr.LongFactor), half)
	}
	for _, f := range []struct {
		name string
		v    []float64
	}{{"short_factor", rr.ShortFactor}, {"long_factor", rr.LongFactor}} {
		for i, v := range f.v {
			if err := float32Positive(fmt.Sprintf("rope_scaling %s[%d]", f.name, i), v); err != nil {
				return err
			}
		}
	}
	c.Rope.ShortFactor, c.Rope.LongFactor = rr.ShortFactor, rr.LongFactor
	// Phi-3 keeps the pretraining length beside max_position_embeddings
	// and the scale is their ratio; otherwise rope_scaling's own fields.
	key := "original_max_position_embeddings"
	switch {
	case r.OriginalMax != nil:
		c.Rope.OriginalMax = *r.OriginalMax
		c.Rope.Factor = float64(c.MaxPositions) / float64(*r.OriginalMax)
	case rr.OriginalMax != 0:
		key = "rope_scaling original_max_position_embeddings"
		c.Rope.OriginalMax = rr.OriginalMax
		if rr.Factor == nil {
			c.Rope.Factor = float64(c.MaxPositions) / float64(rr.OriginalMax)
		}
	default:
		c.Rope.OriginalMax = c.MaxPositions
	}
	if c.Rope.OriginalMax <= 0 || c.Rope.OriginalMax > c.MaxPositions {
		return fmt.Errorf("rope_scaling longrope: %s is %d, want > 0 and at most max_position_embeddings %d", key, c.Rope.OriginalMax, c.MaxPositions)
	}
	switch {
	case rr.AttentionFactor != nil:
		c.Rope.AttentionFactor = *rr.AttentionFactor
		if err := float32Positive("rope_scaling attention_factor", c.Rope.AttentionFactor); err != nil {
			return err
		}
	case c.Rope.Factor <= 1:
		c.Rope.AttentionFactor = 1
	default:
		// ln(1) is 0: an original length of 1 scales by infinity.
		c.Rope.AttentionFactor = math.Sqrt(1 + math.Log(c.Rope.Factor)/math.Log(float64(c.Rope.OriginalMax)))
		c.Rope.derivedFrom = fmt.Sprintf("%s %d", key, c.Rope.OriginalMax)
		if err := float32Positive("rope_scaling attention_factor", c.Rope.AttentionFactor); err != nil {
			return fmt.Errorf("rope_scaling longrope: %s is %d: the attention factor derived from it, sqrt(1 + ln(factor %g) / ln(%d)), is %g, not a positive number float32 holds", key, c.Rope.OriginalMax, c.Rope.Factor, c.Rope.OriginalMax, c.Rope.AttentionFactor)
		}
	}
	return nil
}

// float32Positive checks a scale config.json gives RoPE, which computes in
// float32: a positive number that float32 holds as neither 0 nor infinity.
func float32Positive(name string, v float64) error {
	if f := float32(v); !(v > 0) || math.IsInf(v, 0) || f < 0x1p-126 || math.IsInf(float64(f), 0) {
		return fmt.Errorf("%s is %g, want a positive number float32 holds (%.2g to %.2g)", name, v, 0x1p-126, math.MaxFloat32)
	}
	return nil
}

// Unusual names the first of the values that scale RoPE or the RMS norms
// that is outside the range of released models ("rope_theta 1e-30, outside
// 1..1e+12"), "" when none is: when a forward pass gives NaN or
// infinities, such a value is a likelier cause than the weights.
func (c *Config) Unusual() string {
	type value struct {
		name    string
		v       float64
		lo, hi  float64
		applies bool
	}
	r := c.Rope
	// Name only keys config.json holds.
	attention := "rope_scaling attention_factor"
	if r.derivedFrom != "" {
		attention = "attention factor (derived from " + r.derivedFrom + ")"
	}
	vs := []value{
		{"rope_theta", c.RopeTheta, 1, 1e12, true},
		{"rope_local_base_freq", c.LocalRopeTheta, 1, 1e12, c.LocalRopeTheta > 0},
		{"rms_norm_eps", c.NormEps, 1e-12, 0.1, true},
		{"rope_scaling factor", r.Factor, 1, 1e6, r.Type == "linear" || r.Type == "llama3"},
		{attention, r.AttentionFactor, 1e-3, 1e3, r.Type == "longrope"},
	}
	for i, f := range r.ShortFactor {
		vs = append(vs, value{fmt.Sprintf("rope_scaling short_factor[%d]", i), f, 1e-3, 1e6, true})
	}
	for i, f := range r.LongFactor {
		vs = append(vs, value{fmt.Sprintf("rope_scaling long_factor[%d]", i), f, 1e-3, 1e6, true})
	}
	for _, v := range vs {
		if v.applies && !(v.v >= v.lo && v.v <= v.hi) {
			return fmt.Sprintf("%s %g, outside %g..%g", v.name, v.v, v.lo, v.hi)
		}
	}
	return ""
}

// firstID reads an optional token id; -1 when absent or null.
func firstID(raw json.RawMessage) (int, error) {
	v, err := ids(raw)
	if err != nil || len(v) == 0 {
		return -1, err
	}
	return v[0], nil
}

// ids reads a token id or a list of them.
func ids(raw json.RawMessage) ([]int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("want an id or a list of ids, got %s", raw)
	}
	return many, nil
}
