package model

import (
	"context"
	"math"
)

// archTensors adds to layer l's tensor list, through add, those of
// ArchConfig: Gemma's extra norms, the per-head q and k norms, and the
// router and experts of a mixture-of-experts layer.
func (c *Config) archTensors(l int, add func(s string, shape ...int)) {
	h := c.Hidden
	if c.Gemma {
		add("pre_feedforward_layernorm.weight", h)
		add("post_feedforward_layernorm.weight", h)
	}
	if c.QKNorm {
		add("self_attn.q_norm.weight", c.HeadDim)
		add("self_attn.k_norm.weight", c.HeadDim)
	}
	if !c.moeLayer(l) {
		return
	}
	router, _, _, _ := c.moeNames(0)
	add(router+".weight", c.Experts, h)
	for e := 0; e < c.Experts; e++ {
		_, gate, up, down := c.moeNames(e)
		add(gate+".weight", c.ExpertIntermediate, h)
		add(up+".weight", c.ExpertIntermediate, h)
		add(down+".weight", h, c.ExpertIntermediate)
	}
}

// rmsNorm sets the rows of dst (width wide) to RMSNorm of those of x, as
// transformers: the mean of x² in float32, x·rsqrt(mean+eps), then times
// w, or times (1 + w) for Gemma's norm. dst may be x.
func rmsNorm(dst, x, w []float32, width int, eps float32, plusOne bool) {
	scale := w
	if plusOne {
		scale = make([]float32, len(w))
		for i, v := range w {
			scale[i] = 1 + v
		}
	}
	for o := 0; o+width <= len(x); o += width {
		row, out := x[o:o+width], dst[o:o+width]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		variance := float32(ss / float64(width))
		r := float32(1 / math.Sqrt(float64(variance+eps)))
		for i, v := range row {
			out[i] = scale[i] * float32(v*r)
		}
	}
}

// qkNorm applies q_norm and k_norm to each head of q ([n, Heads·HeadDim])
// and k ([n, KVHeads·HeadDim]).
func (m *Model) qkNorm(ctx context.Context, rd *reader, l int, q, k []float32, n int) error {
	c := m.cfg
	eps := float32(c.NormEps)
	for _, p := range []struct {
		name string
		x    []float32
	}{{"self_attn.q_norm.weight", q}, {"self_attn.k_norm.weight", k}} {
		w, err := rd.tensor(ctx, layerName(l, p.name), c.HeadDim)
		if err != nil {
			return err
		}
		rmsNorm(p.x, p.x, w, c.HeadDim, eps, c.Gemma)
	}
	return nil
}

// activate sets gate to act(gate)·up, the MLP's activation.
func (c *Config) activate(gate, up []float32) {
	switch c.Activation {
	case "gelu_pytorch_tanh":
		// 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³)))
		k := math.Sqrt(2 / math.Pi)
		for i, g := range gate {
			x := float64(g)
			gate[i] = float32(0.5*x*(1+math.Tanh(k*(x+0.044715*x*x*x)))) * up[i]
		}
	case "gelu":
		for i, g := range gate {
			x := float64(g)
			gate[i] = float32(0.5*x*(1+math.Erf(x/math.Sqrt2))) * up[i]
		}
	default:
		for i, g := range gate {
			gate[i] = float32(float64(g)/(1+math.Exp(-float64(g)))) * up[i]
		}
	}
}

// softcap replaces each value v of row by cap·tanh(v·scale/cap), in
// float32 steps as torch: scale, divide, tanh, multiply.
func softcap(row []float32, scale, cp float32) {
	for i, v := range row {
		row[i] = float32(math.Tanh(float64((v*scale)/cp))) * cp
	}
}

// capLogits applies final_logit_softcapping to logits.
func (c *Config) capLogits(logits []float32) {
	if c.FinalSoftcap > 0 {
		softcap(logits, 1, float32(c.FinalSoftcap))
	}
}

// scaleEmbeddings multiplies Gemma's embeddings by sqrt(hidden_size),
// rounded to float32 as transformers' normalizer is in the float32 pass.
func (c *Config) scaleEmbeddings(x []float32) {
	if !c.Gemma {
		return
	}
	s := float32(math.Sqrt(float64(c.Hidden)))
	for i := range x {
		x[i] *= s
	}
}

// localRope returns the configuration of the sliding layers' RoPE: base
// LocalRopeTheta, no scaling.
func (c *Config) localRope() *Config {
	lc := *c
	lc.RopeTheta, lc.LocalRopeTheta = c.LocalRopeTheta, 0
	lc.Rope = RopeScaling{Type: "default", Factor: 1, AttentionFactor: 1}
	return &lc
}

// at returns the tables layer l uses: the local ones for a sliding layer
// when there are any.
func (r *rotary) at(c *Config, l int) *rotary {
	if r.local != nil && c.windowAt(l) > 0 {
		return r.local
	}
	return r
}

// moe replaces h ([n, Hidden]) by the mixture of experts' output, as
// transformers' sparse MoE blocks compute it: a softmax over the router's
// logits, the top ExpertsPerToken of each position (the lower index first
// on ties), their weights divided by their sum when NormTopK, and the sum
// of the chosen experts' MLPs times those weights. Each expert the router
// picks for any position is read once and applied to all its positions;
// the others are not read.
func (m *Model) moe(ctx context.Context, rd *reader, l int, h []float32, n int) error {
	c := m.cfg
	hid, ne, k, in := c.Hidden, c.Experts, c.ExpertsPerToken, c.ExpertIntermediate
	router, _, _, _ := c.moeNames(0)
	logits := make([]float32, n*ne)
	if err := m.linear(ctx, rd, l, router, logits, h, n, ne, hid, false); err != nil {
		return err
	}
	// rows[e] lists the positions routed to expert e, weights[e] theirs.
	rows, weights := make([][]int, ne), make([][]float32, ne)
	picked := make([]bool, ne)
	for t := 0; t < n; t++ {
		p := logits[t*ne : (t+1)*ne]
		softmax(p, 1)
		clear(picked)
		top := make([]int, 0, k)
		var sum float32
		for range k {
			best := -1
			for e, v := range p {
				if !picked[e] && (best < 0 || v > p[best]) {
					best = e
				}
			}
			picked[best] = true
			top = append(top, best)
			sum += p[best]
		}
		for _, e := range top {
			w := p[e]
			if c.NormTopK {
				w /= sum
			}
			rows[e] = append(rows[e], t)
			weights[e] = append(weights[e], w)
		}
	}
	out := make([]float32, n*hid)
	for e := 0; e < ne; e++ {
		r := len(rows[e])
		if r == 0 {
			continue
		}
		x := make([]float32, r*hid)
		for i, t := range rows[e] {
			copy(x[i*hid:(i+1)*hid], h[t*hid:(t+1)*hid])
		}
		_, gateName, upName, downName := c.moeNames(e)
		gate, up, y := make([]float32, r*in), make([]float32, r*in), make([]float32, r*hid)
		if err := m.linear(ctx, rd, l, gateName, gate, x, r, in, hid, false); err != nil {
			return err
		}
		if err := m.linear(ctx, rd, l, upName, up, x, r, in, hid, false); err != nil {
			return err
		}
		c.activate(gate, up)
		if err := m.linear(ctx, rd, l, downName, y, gate, r, hid, in, false); err != nil {
			return err
		}
		// Experts in order, each adding its weighted output to its
		// positions, as transformers' index_add_.
		for i, t := range rows[e] {
			dst, w := out[t*hid:(t+1)*hid], weights[e][i]
			for j, v := range y[i*hid : (i+1)*hid] {
				dst[j] += v * w
			}
		}
	}
	copy(h, out)
	return nil
}
