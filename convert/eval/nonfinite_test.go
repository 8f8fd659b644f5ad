package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qins-dev/qins/convert/internal/testfile"
	"github.com/qins-dev/qins/format/dtype"
)

// storiesCopy writes stories260K's tensors to dir/model.safetensors with
// edit applied to each (by name; it may add tensors), and the config with
// change. It returns the file.
func storiesCopy(t *testing.T, dir string, change map[string]any, edit func(name string, v []float32) []testfile.Spec) string {
	t.Helper()
	w, err := OpenWeights(context.Background(), stories)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var specs []testfile.Spec
	for _, name := range w.Names() {
		shape, _ := w.Shape(name)
		var s []uint64
		for _, d := range shape {
			s = append(s, uint64(d))
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		if err := w.Read(context.Background(), name, v); err != nil {
			t.Fatal(err)
		}
		more := edit(name, v)
		vals := make([]float64, n)
		for i, x := range v {
			vals[i] = float64(x)
		}
		specs = append(specs, testfile.T(name, dtype.F32, s, vals))
		specs = append(specs, more...)
	}
	os.MkdirAll(dir, 0o755)
	writeConfig(t, dir, change)
	return testfile.Write(t, filepath.Join(dir, "model.safetensors"), specs...)
}

// A NaN that only the generation reaches (CAND's embedding of a token
// that is not in the stream but that CAND generates; the output head is
// apart) stops the eval, naming CAND, the position and the weights.
// Before, CAND "generated" token 0 after it, and the eval succeeded.
func TestNonFiniteInCandGeneration(t *testing.T) {
	ids, _ := expected(t)
	prompt := ids[:PromptTokens]
	x, k := -1, 0
	for i, id := range ids[PromptTokens:] {
		if !slices.Contains(prompt, id) {
			x, k = id, i
			break
		}
	}
	dir := t.TempDir()
	untie := map[string]any{"tie_word_embeddings": false}
	head := func(name string, v []float32) []testfile.Spec {
		if name != "model.embed_tokens.weight" {
			return nil
		}
		vals := make([]float64, len(v))
		for i, f := range v {
			vals[i] = float64(f)
		}
		return []testfile.Spec{testfile.T("lm_head.weight", dtype.F32, []uint64{512, 64}, vals)}
	}
	ref := storiesCopy(t, filepath.Join(dir, "ref"), untie, head)
	cand := storiesCopy(t, filepath.Join(dir, "cand"), untie, func(name string, v []float32) []testfile.Spec {
		more := head(name, v)
		if name == "model.embed_tokens.weight" {
			for i := range 64 {
				v[x*64+i] = float32(math.NaN())
			}
		}
		return more
	})
	_, err := Eval(context.Background(), ref, cand, Options{Tokens: prompt, Generate: 20})
	var ie *InputError
	want := fmt.Sprintf("CAND's logits at position %d are not finite (greedy generation after a 16-token prompt): a NaN or an infinity in its weights", PromptTokens+k)
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), cand) {
		t.Errorf("Eval: %v\nwant an *InputError naming %s and saying %q", err, cand, want)
	}
	// The teacher-forced pass alone does not see it.
	if _, err := Eval(context.Background(), ref, cand, Options{Tokens: prompt, Generate: -1}); err != nil {
		t.Errorf("without generation: %v", err)
	}
}

// A LongRoPE long factor of 2e-38 (valid, but no released model's) makes
// REF's logits NaN once the generation outgrows
// original_max_position_embeddings; the error names the config value.
// Before, both models emitted token 0 and agreed. (A factor of 0 is
// refused when the config is read.)
func TestNonFiniteRopeInGeneration(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(tiny, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	m["original_max_position_embeddings"] = 8
	rs := m["rope_scaling"].(map[string]any)
	rs["long_factor"].([]any)[0] = 2e-38
	b, _ = json.Marshal(m)
	cfg := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(cfg, b, 0o644)
	idx := filepath.Join(tiny, "model.safetensors.index.json")
	_, err = Eval(context.Background(), idx, idx, Options{Tokens: []int{1, 5, 9, 3, 7}, Generate: 10, Config: cfg})
	var ie *InputError
	want := "REF's logits at position 8 are not finite (greedy generation after a 5-token prompt): likely from the config's rope_scaling long_factor[0] 2e-38, outside 0.001..1e+06"
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), cfg) {
		t.Errorf("Eval: %v\nwant an *InputError naming %s and saying %q", err, cfg, want)
	}
}

// Perplexities past float64 are null in JSON, named in "nonfinite", and
// the report is written; finite ones are written as before.
func TestWriteJSONNonFinite(t *testing.T) {
	r := &Report{Fails: []string{}, KLD: Dist{Mean: 3, Median: 2, P99: 4, Max: math.Inf(1)},
		PPL: Perplexity{Ref: math.Inf(1), Cand: math.Inf(1), Ratio: math.NaN()}}
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		KLD       map[string]*float64 `json:"kld"`
		PPL       map[string]*float64 `json:"ppl"`
		NonFinite []string            `json:"nonfinite"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got.KLD["mean"] == nil || *got.KLD["mean"] != 3 || got.KLD["max"] != nil || got.PPL["ref"] != nil || got.PPL["ratio"] != nil {
		t.Errorf("kld %v, ppl %v", got.KLD, got.PPL)
	}
	if want := []string{"kld_max", "ppl_ref", "ppl_cand", "ppl_ratio"}; !slices.Equal(got.NonFinite, want) {
		t.Errorf("nonfinite %q, want %q", got.NonFinite, want)
	}
	r.KLD.Max, r.PPL = 5, Perplexity{Ref: 1.5, Cand: 2, Ratio: 2 / 1.5}
	b.Reset()
	r.WriteJSON(&b)
	if strings.Contains(b.String(), "nonfinite") || !strings.Contains(b.String(), `"ratio": 1.3333333333333333`) {
		t.Errorf("finite report:\n%s", b.String())
	}
}

// A model whose logits are large (its tied embedding times 1e4) has an
// infinite perplexity: the eval still reports, and says which figures.
func TestInfinitePerplexity(t *testing.T) {
	ids, _ := expected(t)
	cand := storiesCopy(t, t.TempDir(), nil, func(name string, v []float32) []testfile.Spec {
		if name == "model.embed_tokens.weight" {
			for i := range v {
				v[i] *= 1e4
			}
		}
		return nil
	})
	r, err := Eval(context.Background(), stories, cand, Options{Tokens: ids[:40], Generate: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsInf(r.PPL.Cand, 1) || !math.IsInf(r.PPL.Ratio, 1) || !slices.Equal(r.NonFinite, []string{"ppl_cand", "ppl_ratio"}) {
		t.Errorf("ppl %+v, nonfinite %q", r.PPL, r.NonFinite)
	}
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil || !json.Valid(b.Bytes()) {
		t.Errorf("WriteJSON: %v\n%s", err, b.String())
	}
}
