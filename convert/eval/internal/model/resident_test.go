package model

import (
	"context"
	"encoding/binary"
	"math"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/qins-dev/qins/convert/eval/internal/matvec"
)

// residentWeights keeps matrices as F32 matvec matrices of the values w
// reads, counting the loads.
type residentWeights struct {
	Weights
	loads atomic.Int32
}

func (w *residentWeights) StoredBytes(name string) int64 {
	s, _ := w.Shape(name)
	return 4 * int64(s[0]) * int64(s[1])
}

func (w *residentWeights) LoadMatrix(ctx context.Context, name string) (Matrix, error) {
	s, _ := w.Shape(name)
	v := make([]float32, s[0]*s[1])
	if err := w.Read(ctx, name, v); err != nil {
		return nil, err
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	w.loads.Add(1)
	return matvec.NewFloat(matvec.F32, s[0], s[1], b)
}

// TestResidentGenerate checks that generation with the weights kept in
// memory gives the tokens of the streaming path, on the trained
// stories260K (200 tokens, the expected greedy output) and the tiny models
// (prompts of several tokens: the prefill decodes blocks for gemm), and
// that a budget one byte short streams.
func TestResidentGenerate(t *testing.T) {
	_, _, ids := stories(t)
	tests := []struct {
		name   string
		load   func(t *testing.T) (*Config, Weights)
		prompt []int
		n      int
	}{
		{"stories260K", func(t *testing.T) (*Config, Weights) { c, w, _ := stories(t); return c, w }, ids[:1], len(ids) - 1},
		{"stories260K prompt", func(t *testing.T) (*Config, Weights) { c, w, _ := stories(t); return c, w }, ids[:16], 40},
		{"phi3 layout", func(t *testing.T) (*Config, Weights) { return phi3Stories(t, "") }, ids[:5], 30},
		{"qwen2-tiny", tinyModel("qwen2-tiny"), []int{1, 5, 9}, 12},
		{"mistral-tiny sliding window", tinyModel("mistral-tiny"), []int{3, 4}, 14},
		{"llama3-tiny", tinyModel("llama3-tiny"), []int{7}, 10},
		// The architectures of issue 22: Gemma's scaled embeddings and
		// capped logits must be applied on the resident path too.
		{"qwen3-tiny", tinyModel("qwen3-tiny"), []int{2, 8}, 10},
		{"qwen3-moe-tiny", tinyModel("qwen3-moe-tiny"), []int{2, 8}, 10},
		{"mixtral-tiny", tinyModel("mixtral-tiny"), []int{4}, 10},
		{"gemma2-tiny", tinyModel("gemma2-tiny"), []int{2, 6, 9}, 10},
		{"gemma3-tiny", tinyModel("gemma3-tiny"), []int{2, 6, 9}, 10},
		{"phi3-longrope crossing", func(t *testing.T) (*Config, Weights) {
			return phi3Stories(t, "testdata/phi3-longrope/config.json")
		}, ids[:60], 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, w := tt.load(t)
			stream := newModel(t, cfg, w)
			want, err := stream.Generate(context.Background(), tt.prompt, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			rw := &residentWeights{Weights: w}
			m := newModel(t, cfg, rw)
			need, ok := m.ResidentBytes()
			if !ok || need <= 0 {
				t.Fatalf("ResidentBytes = %d, %v", need, ok)
			}
			m.Memory = need - 1
			if m.Resident() {
				t.Fatal("resident with a budget one byte short")
			}
			if _, err := m.Generate(context.Background(), tt.prompt, 2); err != nil {
				t.Fatal(err)
			}
			if rw.loads.Load() != 0 {
				t.Fatalf("a budget one byte short loaded %d matrices", rw.loads.Load())
			}
			m.Memory = need
			if !m.Resident() {
				t.Fatal("not resident with a budget of exactly its bytes")
			}
			got, err := m.Generate(context.Background(), tt.prompt, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if int(rw.loads.Load()) != len(m.matrices()) {
				t.Fatalf("loaded %d matrices, want %d", rw.loads.Load(), len(m.matrices()))
			}
			if !slices.Equal(got, want) {
				t.Errorf("resident %v, streaming %v", got, want)
			}
		})
	}
}
