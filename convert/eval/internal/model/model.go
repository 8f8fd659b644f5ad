package model

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Weights gives a checkpoint's tensors decoded to float32, by Hugging Face
// name.
type Weights interface {
	// Shape returns the tensor's shape, and false when there is no tensor
	// of that name.
	Shape(name string) ([]int, bool)
	// Read fills dst (len = product of the shape) with the whole tensor.
	Read(ctx context.Context, name string, dst []float32) error
	// ReadRows fills dst with rows [r0, r1) of a 2-D tensor (embedding
	// lookups, lm_head in blocks).
	ReadRows(ctx context.Context, name string, r0, r1 int, dst []float32) error
}

// DefaultGenerateBudget is how many bytes of decoded weights Generate keeps
// between steps unless Model.GenerateBudget says otherwise.
const DefaultGenerateBudget = 512 << 20

// Model runs a checkpoint's forward pass. Its methods are not safe for
// concurrent use: they share one read buffer.
type Model struct {
	cfg  *Config
	w    Weights
	head string // lm_head.weight, or the embedding when tied
	// GenerateBudget is how many bytes of decoded weights Generate may
	// keep in memory between steps; the rest is read again every step.
	GenerateBudget int64
	// Memory is how many bytes of weights Generate may keep in their
	// stored form (see Resident): when every matrix the forward pass
	// reads fits, it loads them all once and multiplies by them in
	// place; else it reads them every step, within GenerateBudget. 0
	// keeps none.
	Memory    int64
	maxMatrix int             // elements of a layer's largest matrix
	scratch   []float32       // read buffer for matrices not kept
	reads     map[string]bool // the tensors the forward pass reads
}

// Tensor names, Hugging Face's.
const (
	embedName = "model.embed_tokens.weight"
	normName  = "model.norm.weight"
	headName  = "lm_head.weight"
)

func layerName(l int, s string) string { return fmt.Sprintf("model.layers.%d.%s", l, s) }

// New checks that w holds every tensor cfg's architecture needs, with the
// right shapes, and returns the model. It reads no tensor data. The
// tensors are checked one by one as the architecture lists them, so a
// config.json with more layers than the checkpoint stops at the first
// missing tensor: memory does not grow with num_hidden_layers.
func New(cfg *Config, w Weights) (*Model, error) {
	m := &Model{cfg: cfg, w: w, head: headName, GenerateBudget: DefaultGenerateBudget, reads: map[string]bool{}}
	if cfg.TieEmbeddings {
		m.head = embedName
	} else if _, ok := w.Shape(headName); !ok {
		// transformers would start such a head at random: a checkpoint
		// that lost it must not pass for one whose head is the embedding.
		return nil, fmt.Errorf("%s: tensor %s is missing, and config.json's tie_word_embeddings is false (if the head is the embedding, it should be true)", cfg.Architecture, headName)
	}
	err := m.eachTensor(func(name string, shape ...int) error {
		got, ok := w.Shape(name)
		if !ok {
			if l, ok := layerOf(name); ok && l > 0 {
				return fmt.Errorf("%s: tensor %s is missing (config.json: num_hidden_layers %d)", cfg.Architecture, name, cfg.Layers)
			}
			return fmt.Errorf("%s: tensor %s is missing", cfg.Architecture, name)
		}
		if !slices.Equal(got, shape) {
			return fmt.Errorf("%s: tensor %s has shape %v, want %v", cfg.Architecture, name, got, shape)
		}
		m.reads[name] = true
		// The read buffer fits a layer's largest matrix; the embedding is
		// read by rows and the head in blocks that fit the buffer too.
		if len(shape) == 2 && strings.HasPrefix(name, "model.layers.") {
			m.maxMatrix = max(m.maxMatrix, shape[0]*shape[1])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// layerOf returns the layer of a "model.layers.N." name.
func layerOf(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "model.layers.")
	if !ok {
		return 0, false
	}
	n, _, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, false
	}
	l, err := strconv.Atoi(n)
	return l, err == nil
}

// Unused returns the names, in their order, that the forward pass does not
// read, but for those it may ignore: lm_head.weight when the head is the
// embedding (tie_word_embeddings, as transformers ties them), and the
// rotary_emb.inv_freq buffers older checkpoints hold, which transformers
// computes again.
func (m *Model) Unused(names []string) []string {
	var out []string
	for _, name := range names {
		switch {
		case m.reads[name]:
		case name == headName && m.head == embedName:
		case strings.HasPrefix(name, "model.layers.") && strings.HasSuffix(name, ".self_attn.rotary_emb.inv_freq"):
		default:
			out = append(out, name)
		}
	}
	return out
}

// eachTensor calls f with every tensor the architecture reads, and its
// shape, one at a time; it stops at the first error f returns.
func (m *Model) eachTensor(f func(name string, shape ...int) error) error {
	c := m.cfg
	h, q, kv := c.Hidden, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	if err := f(embedName, c.Vocab, h); err != nil {
		return err
	}
	if err := f(normName, h); err != nil {
		return err
	}
	if m.head != embedName {
		if err := f(headName, c.Vocab, h); err != nil {
			return err
		}
	}
	for l := 0; l < c.Layers; l++ {
		var err error
		add := func(s string, shape ...int) {
			if err == nil {
				err = f(layerName(l, s), shape...)
			}
		}
		add("input_layernorm.weight", h)
		add("post_attention_layernorm.weight", h)
		add("self_attn.o_proj.weight", h, q)
		dense := !c.moeLayer(l)
		if dense {
			add("mlp.down_proj.weight", h, c.Intermediate)
		}
		if c.phi3() {
			add("self_attn.qkv_proj.weight", q+2*kv, h)
			add("mlp.gate_up_proj.weight", 2*c.Intermediate, h)
		} else {
			add("self_attn.q_proj.weight", q, h)
			add("self_attn.k_proj.weight", kv, h)
			add("self_attn.v_proj.weight", kv, h)
			if dense {
				add("mlp.gate_proj.weight", c.Intermediate, h)
				add("mlp.up_proj.weight", c.Intermediate, h)
			}
			if c.QKVBias {
				add("self_attn.q_proj.bias", q)
				add("self_attn.k_proj.bias", kv)
				add("self_attn.v_proj.bias", kv)
			}
			if c.OBias {
				add("self_attn.o_proj.bias", h)
			}
			if c.MLPBias {
				add("mlp.gate_proj.bias", c.Intermediate)
				add("mlp.up_proj.bias", c.Intermediate)
				add("mlp.down_proj.bias", h)
			}
		}
		c.archTensors(l, add)
		if err != nil {
			return err
		}
	}
	return nil
}

// Config returns the model's configuration.
func (m *Model) Config() *Config { return m.cfg }

// NumLayers returns the number of decoder layers.
func (m *Model) NumLayers() int { return m.cfg.Layers }

// State is the hidden states of a token stream between layers.
type State struct {
	x   []float32 // [n, Hidden], row-major
	n   int
	rot *rotary // cos and sin for the stream, made by the first layer
}

// Len returns the number of positions.
func (s *State) Len() int { return s.n }

// Embed looks up the embeddings of ids, the positions 0..len(ids)-1 of a
// stream.
func (m *Model) Embed(ctx context.Context, ids []int) (*State, error) {
	if err := m.checkIDs(ids, 0); err != nil {
		return nil, err
	}
	x, err := m.embed(ctx, m.reader(nil), ids)
	if err != nil {
		return nil, err
	}
	return &State{x: x, n: len(ids)}, nil
}

// checkIDs checks a stream whose first id is at position p0.
func (m *Model) checkIDs(ids []int, p0 int) error {
	if len(ids) == 0 {
		return fmt.Errorf("model: empty token stream")
	}
	if p0+len(ids) > m.cfg.MaxPositions {
		return fmt.Errorf("model: stream of %d tokens is longer than max_position_embeddings %d", p0+len(ids), m.cfg.MaxPositions)
	}
	for i, id := range ids {
		if id < 0 || id >= m.cfg.Vocab {
			return fmt.Errorf("model: token id %d at position %d is outside the vocabulary (size %d)", id, p0+i, m.cfg.Vocab)
		}
	}
	return nil
}

func (m *Model) embed(ctx context.Context, rd *reader, ids []int) ([]float32, error) {
	h := m.cfg.Hidden
	x := make([]float32, len(ids)*h)
	mat, resident := rd.mats[embedName]
	for i, id := range ids {
		if resident {
			mat.DecodeRows(id, id+1, x[i*h:(i+1)*h])
		} else if err := m.w.ReadRows(ctx, embedName, id, id+1, x[i*h:(i+1)*h]); err != nil {
			return nil, fmt.Errorf("model: reading %s row %d: %w", embedName, id, err)
		}
	}
	m.cfg.scaleEmbeddings(x)
	return x, nil
}

// Layer applies decoder layer l to every position of s. It reads the
// layer's weights tensor by tensor and keeps none of them.
func (m *Model) Layer(ctx context.Context, l int, s *State) error {
	if l < 0 || l >= m.cfg.Layers {
		return fmt.Errorf("model: layer %d out of range 0..%d", l, m.cfg.Layers-1)
	}
	if s.rot == nil {
		s.rot = m.cfg.rotaryFor(0, s.n, s.n)
	}
	return m.layer(ctx, m.reader(nil), l, s.x, s.n, s.rot, &kvLayer{})
}

// Logits applies the final norm and the output head: T×Vocab row-major.
// The head is read in blocks of rows.
func (m *Model) Logits(ctx context.Context, s *State) ([]float32, error) {
	return m.logits(ctx, m.reader(nil), s.x, s.n)
}
