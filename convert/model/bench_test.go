package model

import (
	"context"
	"testing"
)

// BenchmarkLayer times one decoder layer over T positions on random
// weights held in memory, so it measures the forward pass, not the reads.
func BenchmarkLayer(b *testing.B) {
	for _, bc := range []struct {
		name                          string
		hidden, inter, heads, kv, seq int
	}{
		{"llama-h512-T128", 512, 1376, 8, 4, 128},
		{"phi3-h1024-T128", 1024, 2816, 16, 16, 128},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := &Config{Architecture: "LlamaForCausalLM", Hidden: bc.hidden, Intermediate: bc.inter, Layers: 1,
				Heads: bc.heads, KVHeads: bc.kv, HeadDim: bc.hidden / bc.heads, Vocab: 32, MaxPositions: 4096,
				NormEps: 1e-5, RopeTheta: 10000, RotaryDim: bc.hidden / bc.heads, Rope: RopeScaling{Type: "default", Factor: 1, AttentionFactor: 1}}
			w := Weights(randomWeights(cfg))
			if bc.name[:4] == "phi3" {
				cfg.Architecture = "Phi3ForCausalLM"
				w = phi3View{w}
			}
			m, err := New(cfg, w)
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]int, bc.seq)
			for i := range ids {
				ids[i] = i % cfg.Vocab
			}
			ctx := context.Background()
			s, err := m.Embed(ctx, ids)
			if err != nil {
				b.Fatal(err)
			}
			q, kv := cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
			flops := 2 * float64(bc.seq) * float64(bc.hidden) * float64(q+2*kv+q+3*bc.inter)
			b.ResetTimer()
			for range b.N {
				if err := m.Layer(ctx, 0, s); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "linear-GFLOP/s")
		})
	}
}
