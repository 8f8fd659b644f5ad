package model

import (
	"context"
	"fmt"
)

// Generate decodes n tokens greedily (the most likely each step, the
// lowest id on ties) after prompt, with a KV cache, and returns them. It
// does not stop at EOS. Logits that are not all finite are a
// *NonFiniteError: no token is picked from them. Every step runs all
// layers. When the weights fit m.Memory in their stored form (see
// Model.Resident), they are loaded once and each step reads them once, in
// place; otherwise decoded weights are kept between steps up to
// m.GenerateBudget bytes and the rest is read again every step, so memory
// does not grow with the model.
//
// For LongRoPE it does what transformers' Phi-3 does: once the stream
// outgrows original_max_position_embeddings, the cache is recomputed with
// the long factors.
func (m *Model) Generate(ctx context.Context, prompt []int, n int) ([]int, error) {
	return m.GenerateEach(ctx, prompt, n, nil)
}

// GenerateEach is Generate calling token, when not nil, after each token
// generated.
func (m *Model) GenerateEach(ctx context.Context, prompt []int, n int, token func()) ([]int, error) {
	if n < 0 {
		return nil, fmt.Errorf("model: cannot generate %d tokens", n)
	}
	if err := m.checkIDs(prompt, 0); err != nil {
		return nil, err
	}
	// The last token generated is never fed back. (checkIDs has put the
	// prompt within MaxPositions: the difference cannot overflow.)
	if n-1 > m.cfg.MaxPositions-len(prompt) {
		return nil, fmt.Errorf("model: prompt of %d tokens and %d to generate exceed max_position_embeddings %d", len(prompt), n, m.cfg.MaxPositions)
	}
	g := &generation{m: m, rd: m.reader(map[string][]float32{})}
	if m.Resident() {
		if err := g.rd.loadMatrices(ctx); err != nil {
			return nil, err
		}
	}
	seq := append([]int(nil), prompt...)
	logits, err := g.prefill(ctx, seq)
	out := make([]int, 0, n)
	for err == nil && len(out) < n {
		if !finite(logits) {
			return nil, &NonFiniteError{Pos: len(seq) - 1}
		}
		id := argmax(logits)
		out = append(out, id)
		if token != nil {
			token()
		}
		seq = append(seq, id)
		if len(out) == n {
			break
		}
		if m.cfg.longRope(len(seq)) != g.long {
			logits, err = g.prefill(ctx, seq)
		} else {
			logits, err = g.step(ctx, id, len(seq)-1)
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// NonFiniteError is the error of Generate when the logits at a position
// hold a NaN or an infinity.
type NonFiniteError struct {
	Pos int // the position whose logits they are, 0-based in prompt + generated
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("model: the logits at position %d are not finite", e.Pos)
}

// finite reports whether every value of x is finite.
func finite(x []float32) bool {
	var s float32
	for _, v := range x {
		s += v - v // NaN for a NaN or an infinity
	}
	return s == 0
}

// generation is the state of one Generate call.
type generation struct {
	m    *Model
	rd   *reader
	kv   []kvLayer
	long bool // the cache holds keys rotated with LongRoPE's long factors
}

// prefill runs ids from position 0 with an empty cache and returns the
// logits of the last position.
func (g *generation) prefill(ctx context.Context, ids []int) ([]float32, error) {
	g.kv = make([]kvLayer, g.m.cfg.Layers)
	g.long = g.m.cfg.longRope(len(ids))
	return g.run(ctx, ids, 0)
}

// step runs one token at position pos after the cached ones.
func (g *generation) step(ctx context.Context, id, pos int) ([]float32, error) {
	return g.run(ctx, []int{id}, pos)
}

func (g *generation) run(ctx context.Context, ids []int, p0 int) ([]float32, error) {
	m := g.m
	x, err := m.embed(ctx, g.rd, ids)
	if err != nil {
		return nil, err
	}
	n := len(ids)
	rot := m.cfg.rotaryFor(p0, n, p0+n)
	for l := range g.kv {
		if err := m.layer(ctx, g.rd, l, x, n, rot, &g.kv[l]); err != nil {
			return nil, err
		}
	}
	return m.logits(ctx, g.rd, x[(n-1)*m.cfg.Hidden:], 1)
}

// argmax returns the index of the largest value, the first on ties.
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
