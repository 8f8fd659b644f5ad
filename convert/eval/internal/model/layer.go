package model

import (
	"context"
	"fmt"
	"math"

	"github.com/qins-dev/qins/convert/eval/internal/gemm"
)

// reader reads weight tensors for forward passes. Within budget bytes it
// keeps what it reads for later passes (Generate); beyond, matrices go to
// the model's one read buffer, valid until the next read.
type reader struct {
	m      *Model
	keep   map[string][]float32
	budget int64
	mats   map[string]Matrix // matrices kept in their stored form (Resident)
}

// reader returns a reader that keeps tensors in keep (nil: keeps none).
func (m *Model) reader(keep map[string][]float32) *reader {
	rd := &reader{m: m, keep: keep}
	if keep != nil {
		rd.budget = m.GenerateBudget
	}
	return rd
}

// buffer returns the shared read buffer with room for n values.
func (rd *reader) buffer(n int) []float32 {
	if cap(rd.m.scratch) < n {
		rd.m.scratch = nil // let the old one go before the new one is made
		rd.m.scratch = make([]float32, max(n, rd.m.maxMatrix))
	}
	return rd.m.scratch[:n]
}

// tensor returns the n values of tensor name; small ones are always
// allocated, large ones not kept go to the shared buffer.
func (rd *reader) tensor(ctx context.Context, name string, n int) ([]float32, error) {
	if t, ok := rd.keep[name]; ok {
		return t, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var dst []float32
	switch {
	case rd.keep != nil && int64(n)*4 <= rd.budget:
		dst = make([]float32, n)
	case n <= 1<<16:
		dst = make([]float32, n)
	default:
		dst = rd.buffer(n)
	}
	if err := rd.m.w.Read(ctx, name, dst); err != nil {
		return nil, fmt.Errorf("model: reading %s: %w", name, err)
	}
	if rd.keep != nil && int64(n)*4 <= rd.budget {
		rd.keep[name] = dst
		rd.budget -= int64(n) * 4
	}
	return dst, nil
}

// kvLayer holds one layer's keys (after RoPE) and values of every position
// so far, per key/value head: [positions, HeadDim] each.
type kvLayer struct {
	k, v [][]float32
	n    int
}

// add appends n positions of k and v ([n, KVHeads·HeadDim] each).
func (kv *kvLayer) add(k, v []float32, n, heads, hd int) {
	if kv.k == nil {
		kv.k, kv.v = make([][]float32, heads), make([][]float32, heads)
	}
	for t := 0; t < n; t++ {
		for g := 0; g < heads; g++ {
			o := (t*heads + g) * hd
			kv.k[g] = append(kv.k[g], k[o:o+hd]...)
			kv.v[g] = append(kv.v[g], v[o:o+hd]...)
		}
	}
	kv.n += n
}

// layer applies decoder layer l to the n rows of x, the positions after
// the kv.n already in kv; rot has their cos and sin.
func (m *Model) layer(ctx context.Context, rd *reader, l int, x []float32, n int, rot *rotary, kv *kvLayer) error {
	c := m.cfg
	h := make([]float32, n*c.Hidden)
	if err := m.norm(ctx, rd, layerName(l, "input_layernorm.weight"), h, x, n); err != nil {
		return err
	}
	q, k, v, err := m.qkv(ctx, rd, l, h, n)
	if err != nil {
		return err
	}
	if c.QKNorm {
		if err := m.qkNorm(ctx, rd, l, q, k, n); err != nil {
			return err
		}
	}
	hd := c.HeadDim
	rot = rot.at(c, l)
	for t := 0; t < n; t++ {
		for i := 0; i < c.Heads; i++ {
			rot.apply(q[(t*c.Heads+i)*hd:], t)
		}
		for i := 0; i < c.KVHeads; i++ {
			rot.apply(k[(t*c.KVHeads+i)*hd:], t)
		}
	}
	kv.add(k, v, n, c.KVHeads, hd)
	o := m.attend(q, kv, n, c.windowAt(l))
	if err := m.linear(ctx, rd, l, "self_attn.o_proj", h, o, n, c.Hidden, c.Heads*hd, c.OBias); err != nil {
		return err
	}
	preMLP := "post_attention_layernorm.weight"
	if c.Gemma {
		// Gemma normalizes the attention's output before the residual,
		// and has its own norm before the MLP.
		if err := m.norm(ctx, rd, layerName(l, preMLP), h, h, n); err != nil {
			return err
		}
		preMLP = "pre_feedforward_layernorm.weight"
	}
	addTo(x, h)
	if err := m.norm(ctx, rd, layerName(l, preMLP), h, x, n); err != nil {
		return err
	}
	if c.moeLayer(l) {
		err = m.moe(ctx, rd, l, h, n)
	} else {
		err = m.mlp(ctx, rd, l, h, n)
	}
	if err != nil {
		return err
	}
	if c.Gemma {
		if err := m.norm(ctx, rd, layerName(l, "post_feedforward_layernorm.weight"), h, h, n); err != nil {
			return err
		}
	}
	addTo(x, h)
	return nil
}

func addTo(x, y []float32) {
	for i, v := range y {
		x[i] += v
	}
}

// linear sets y = x·Wᵀ (+ bias) for the layer's Linear called name.
func (m *Model) linear(ctx context.Context, rd *reader, l int, name string, y, x []float32, n, out, in int, bias bool) error {
	if err := m.mul(ctx, rd, layerName(l, name+".weight"), y, x, n, out, in); err != nil {
		return err
	}
	if !bias {
		return nil
	}
	b, err := rd.tensor(ctx, layerName(l, name+".bias"), out)
	if err != nil {
		return err
	}
	for t := 0; t < n; t++ {
		addTo(y[t*out:(t+1)*out], b)
	}
	return nil
}

// qkv projects h to queries [n, Heads·HeadDim], keys and values [n,
// KVHeads·HeadDim].
func (m *Model) qkv(ctx context.Context, rd *reader, l int, h []float32, n int) (q, k, v []float32, err error) {
	c := m.cfg
	nq, nkv := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	q, k, v = make([]float32, n*nq), make([]float32, n*nkv), make([]float32, n*nkv)
	if !c.phi3() {
		for _, p := range []struct {
			name string
			y    []float32
			out  int
		}{{"self_attn.q_proj", q, nq}, {"self_attn.k_proj", k, nkv}, {"self_attn.v_proj", v, nkv}} {
			if err := m.linear(ctx, rd, l, p.name, p.y, h, n, p.out, c.Hidden, c.QKVBias); err != nil {
				return nil, nil, nil, err
			}
		}
		return q, k, v, nil
	}
	// Phi-3's qkv_proj stacks the rows of q, k and v.
	all := nq + 2*nkv
	y := make([]float32, n*all)
	if err := m.linear(ctx, rd, l, "self_attn.qkv_proj", y, h, n, all, c.Hidden, false); err != nil {
		return nil, nil, nil, err
	}
	for t := 0; t < n; t++ {
		row := y[t*all : (t+1)*all]
		copy(q[t*nq:], row[:nq])
		copy(k[t*nkv:], row[nq:nq+nkv])
		copy(v[t*nkv:], row[nq+nkv:])
	}
	return q, k, v, nil
}

// mlp replaces h ([n, Hidden]) by down(silu(gate(h)) * up(h)).
func (m *Model) mlp(ctx context.Context, rd *reader, l int, h []float32, n int) error {
	c := m.cfg
	in := c.Intermediate
	gate, up := make([]float32, n*in), make([]float32, n*in)
	if c.phi3() {
		// Phi-3's gate_up_proj stacks the rows of gate, then up.
		y := make([]float32, n*2*in)
		if err := m.linear(ctx, rd, l, "mlp.gate_up_proj", y, h, n, 2*in, c.Hidden, false); err != nil {
			return err
		}
		for t := 0; t < n; t++ {
			copy(gate[t*in:], y[2*t*in:(2*t+1)*in])
			copy(up[t*in:], y[(2*t+1)*in:(2*t+2)*in])
		}
	} else {
		if err := m.linear(ctx, rd, l, "mlp.gate_proj", gate, h, n, in, c.Hidden, c.MLPBias); err != nil {
			return err
		}
		if err := m.linear(ctx, rd, l, "mlp.up_proj", up, h, n, in, c.Hidden, c.MLPBias); err != nil {
			return err
		}
	}
	c.activate(gate, up)
	return m.linear(ctx, rd, l, "mlp.down_proj", h, gate, n, c.Hidden, in, c.MLPBias)
}

// norm sets the n rows of dst to RMSNorm of x's with the weight name (see
// rmsNorm).
func (m *Model) norm(ctx context.Context, rd *reader, name string, dst, x []float32, n int) error {
	hid := m.cfg.Hidden
	w, err := rd.tensor(ctx, name, hid)
	if err != nil {
		return err
	}
	rmsNorm(dst[:n*hid], x[:n*hid], w, hid, float32(m.cfg.NormEps), m.cfg.Gemma)
	return nil
}

// attend returns causal attention ([n, Heads·HeadDim]) of the n queries q,
// the last n positions in kv, over kv's keys and values; window > 0 limits
// each query to that many latest positions.
func (m *Model) attend(q []float32, kv *kvLayer, n, window int) []float32 {
	c := m.cfg
	hd, total, p0 := c.HeadDim, kv.n, kv.n-n
	o := make([]float32, n*c.Heads*hd)
	qh, s := make([]float32, n*hd), make([]float32, n*total)
	scale := float32(1 / math.Sqrt(float64(hd)))
	if c.QueryScale > 0 {
		scale = float32(c.QueryScale)
	}
	group := c.Heads / c.KVHeads
	for h := 0; h < c.Heads; h++ {
		g := h / group // repeat_kv: query heads share key/value heads in blocks
		for t := 0; t < n; t++ {
			copy(qh[t*hd:(t+1)*hd], q[(t*c.Heads+h)*hd:])
		}
		gemm.MulT(s, qh, kv.k[g], n, total, hd)
		for t := 0; t < n; t++ {
			pos := p0 + t
			lo := 0
			if window > 0 {
				lo = max(0, pos-window+1)
			}
			row := s[t*total+lo : t*total+pos+1]
			if c.AttnSoftcap > 0 {
				// Gemma 2 caps the scaled scores, then takes the softmax.
				softcap(row, scale, float32(c.AttnSoftcap))
				softmax(row, 1)
			} else {
				softmax(row, scale)
			}
			dst := o[(t*c.Heads+h)*hd : (t*c.Heads+h+1)*hd]
			for j, p := range row {
				vj := kv.v[g][(lo+j)*hd : (lo+j+1)*hd]
				for d, vv := range vj {
					dst[d] += p * vv
				}
			}
		}
	}
	return o
}

// softmax scales row by scale and replaces it by its softmax.
func softmax(row []float32, scale float32) {
	mx := float32(math.Inf(-1))
	for i := range row {
		row[i] *= scale
		mx = max(mx, row[i])
	}
	var sum float64
	for i, v := range row {
		e := float32(math.Exp(float64(v - mx)))
		row[i] = e
		sum += float64(e)
	}
	for i, v := range row {
		row[i] = float32(float64(v) / sum)
	}
}

// logits returns the final norm and output head of the n rows of x.
func (m *Model) logits(ctx context.Context, rd *reader, x []float32, n int) ([]float32, error) {
	c := m.cfg
	h := make([]float32, n*c.Hidden)
	if err := m.norm(ctx, rd, normName, h, x, n); err != nil {
		return nil, err
	}
	out := make([]float32, n*c.Vocab)
	if _, ok := rd.mats[m.head]; ok {
		if err := m.mul(ctx, rd, m.head, out, h, n, c.Vocab, c.Hidden); err != nil {
			return nil, err
		}
		c.capLogits(out)
		return out, nil
	}
	if w, ok := rd.keep[m.head]; ok || (rd.keep != nil && int64(c.Vocab*c.Hidden)*4 <= rd.budget) {
		if !ok {
			var err error
			if w, err = rd.tensor(ctx, m.head, c.Vocab*c.Hidden); err != nil {
				return nil, err
			}
		}
		gemm.MulT(out, h, w, n, c.Vocab, c.Hidden)
		c.capLogits(out)
		return out, nil
	}
	rows := min(c.Vocab, max(1, max(m.maxMatrix, 1<<22)/c.Hidden))
	tmp := make([]float32, n*rows)
	for r0 := 0; r0 < c.Vocab; r0 += rows {
		r1 := min(r0+rows, c.Vocab)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w := rd.buffer((r1 - r0) * c.Hidden)
		if err := m.w.ReadRows(ctx, m.head, r0, r1, w); err != nil {
			return nil, fmt.Errorf("model: reading %s rows %d..%d: %w", m.head, r0, r1, err)
		}
		gemm.MulT(tmp, h, w, n, r1-r0, c.Hidden)
		for t := 0; t < n; t++ {
			copy(out[t*c.Vocab+r0:t*c.Vocab+r1], tmp[t*(r1-r0):(t+1)*(r1-r0)])
		}
	}
	c.capLogits(out)
	return out, nil
}
