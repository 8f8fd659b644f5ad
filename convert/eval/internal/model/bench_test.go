package model

import (
	"context"
	"math"
	"os"
	"path/filepath"
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

// synthWeights makes up every tensor on read, holding none: it lets a
// full-size layer run without its weights in memory or on disk.
type synthWeights map[string][]int

func (w synthWeights) Shape(name string) ([]int, bool) { s, ok := w[name]; return s, ok }

func (w synthWeights) Read(ctx context.Context, name string, dst []float32) error {
	s := w[name]
	scale := float32(1 / (1000 * math.Sqrt(float64(s[len(s)-1]))))
	for i := range dst {
		dst[i] = float32(int((uint32(i)*2654435761)%2001)-1000) * scale
	}
	if len(s) == 1 {
		for i := range dst {
			dst[i] = 1 + dst[i]/10
		}
	}
	return nil
}

func (w synthWeights) ReadRows(ctx context.Context, name string, r0, r1 int, dst []float32) error {
	return w.Read(ctx, name, dst)
}

// BenchmarkLayerPhi35 runs one Phi-3.5-mini layer (hidden 3072, MLP 8192,
// 32 heads) over 128 positions, weights made up on read.
func BenchmarkLayerPhi35(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "..", "shared", "phi-3.5-mini", "config.json"))
	if err != nil {
		b.Skip("no ../shared/phi-3.5-mini/config.json")
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		b.Fatal(err)
	}
	w := synthWeights{}
	for _, t := range (&Model{cfg: cfg, head: headName}).tensors() {
		w[t.name] = t.shape
	}
	m, err := New(cfg, w)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ids := make([]int, 128)
	for i := range ids {
		ids[i] = i * 97
	}
	s, err := m.Embed(ctx, ids)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := m.Layer(ctx, i%cfg.Layers, s); err != nil {
			b.Fatal(err)
		}
	}
	h, q := float64(cfg.Hidden), float64(cfg.Heads*cfg.HeadDim)
	flops := 2 * 128 * h * (3*q + q + 3*float64(cfg.Intermediate))
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "linear-GFLOP/s")
}
