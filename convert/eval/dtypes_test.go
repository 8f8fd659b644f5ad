package eval

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Eval refuses FP8 block-scaled weights, and any low-precision matrix,
// before it reads a weight, naming the file and the tensor.
func TestRefusesFP8Weights(t *testing.T) {
	ctx := context.Background()
	fp8only := filepath.Join(t.TempDir(), "fp8.safetensors")
	h := `{"lm_head.weight":{"dtype":"F8_E5M2","shape":[2,4],"data_offsets":[0,8]},"norm.weight":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[8,16]}}`
	h += strings.Repeat(" ", (8-len(h)%8)%8)
	file := append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...)
	if err := os.WriteFile(fp8only, append(file, make([]byte, 16)...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, tensor, want string
	}{
		{"../../testdata/newdtypes", "model.layers.0.self_attn.q_proj.weight", "is F8_E4M3, block-scaled by model.layers.0.self_attn.q_proj.weight_scale_inv: eval does not run FP8 block-scaled weights"},
		{fp8only, "lm_head.weight", "is F8_E5M2: eval does not run FP8, FP6 or FP4 weights"},
	} {
		w, err := OpenWeights(ctx, c.path)
		if err == nil {
			w.Close()
			t.Errorf("%s: opened", c.path)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `tensor "`+c.tensor+`": `+c.want) || !strings.Contains(msg, "model.safetensors") && c.path != fp8only {
			t.Errorf("%s: %q; want the file, tensor %s and %q", c.path, msg, c.tensor, c.want)
		}
		if _, err := Eval(ctx, c.path, c.path, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Eval %s: %v", c.path, err)
		}
	}
}
