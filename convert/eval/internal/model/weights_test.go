package model

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
)

// fileWeights is a test-only Weights over a plain F32/BF16 safetensors
// checkpoint.
type fileWeights struct {
	byName map[string]format.Tensor
}

func openWeights(t testing.TB, dir string) *fileWeights {
	t.Helper()
	c, err := format.OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &fileWeights{byName: map[string]format.Tensor{}}
	for _, tn := range c.Tensors {
		w.byName[tn.Name] = tn
	}
	return w
}

func (w *fileWeights) Shape(name string) ([]int, bool) {
	t, ok := w.byName[name]
	if !ok {
		return nil, false
	}
	s := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		s[i] = int(d)
	}
	return s, true
}

func (w *fileWeights) Read(ctx context.Context, name string, dst []float32) error {
	t, ok := w.byName[name]
	if !ok {
		return fmt.Errorf("no tensor %s", name)
	}
	return w.read(t, 0, dst)
}

func (w *fileWeights) ReadRows(ctx context.Context, name string, r0, r1 int, dst []float32) error {
	t, ok := w.byName[name]
	if !ok || len(t.Shape) != 2 {
		return fmt.Errorf("no 2-D tensor %s", name)
	}
	return w.read(t, int64(r0)*int64(t.Shape[1]), dst[:(r1-r0)*int(t.Shape[1])])
}

// read decodes len(dst) elements of t from element off.
func (w *fileWeights) read(t format.Tensor, off int64, dst []float32) error {
	size := int64(t.DType.Size())
	buf := make([]byte, int64(len(dst))*size)
	if _, err := t.Section().ReadAt(buf, off*size); err != nil && err != io.EOF {
		return err
	}
	for i := range dst {
		switch t.DType {
		case dtype.F32:
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		case dtype.BF16:
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(buf[2*i:])) << 16)
		default:
			return fmt.Errorf("%s: dtype %s not handled", t.Name, t.DType)
		}
	}
	return nil
}

// phi3View shows Llama-layout weights under Phi-3's fused names: qkv_proj
// stacks q, k, v rows and gate_up_proj gate, up rows.
type phi3View struct{ Weights }

func (v phi3View) parts(name string) []string {
	var l int
	var rest string
	if n, _ := fmt.Sscanf(name, "model.layers.%d.%s", &l, &rest); n != 2 {
		return nil
	}
	switch rest {
	case "self_attn.qkv_proj.weight":
		return []string{layerName(l, "self_attn.q_proj.weight"), layerName(l, "self_attn.k_proj.weight"), layerName(l, "self_attn.v_proj.weight")}
	case "mlp.gate_up_proj.weight":
		return []string{layerName(l, "mlp.gate_proj.weight"), layerName(l, "mlp.up_proj.weight")}
	}
	return nil
}

func (v phi3View) Shape(name string) ([]int, bool) {
	ps := v.parts(name)
	if ps == nil {
		return v.Weights.Shape(name)
	}
	rows, cols := 0, 0
	for _, p := range ps {
		s, ok := v.Weights.Shape(p)
		if !ok {
			return nil, false
		}
		rows, cols = rows+s[0], s[1]
	}
	return []int{rows, cols}, true
}

func (v phi3View) Read(ctx context.Context, name string, dst []float32) error {
	ps := v.parts(name)
	if ps == nil {
		return v.Weights.Read(ctx, name, dst)
	}
	for _, p := range ps {
		s, _ := v.Weights.Shape(p)
		if err := v.Weights.Read(ctx, p, dst[:s[0]*s[1]]); err != nil {
			return err
		}
		dst = dst[s[0]*s[1]:]
	}
	return nil
}

// memWeights is an in-memory Weights for synthetic models.
type memWeights map[string]memTensor

type memTensor struct {
	shape []int
	data  []float32
}

func (w memWeights) Shape(name string) ([]int, bool) {
	t, ok := w[name]
	return t.shape, ok
}

func (w memWeights) Read(ctx context.Context, name string, dst []float32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	copy(dst, w[name].data)
	return nil
}

func (w memWeights) ReadRows(ctx context.Context, name string, r0, r1 int, dst []float32) error {
	t := w[name]
	c := t.shape[1]
	copy(dst, t.data[r0*c:r1*c])
	return nil
}

// randomWeights fills every tensor model m's config needs with values
// from a fixed generator, scaled like a trained model's.
func randomWeights(c *Config) memWeights {
	w := memWeights{}
	m := &Model{cfg: c, head: headName}
	seed := uint64(1)
	for _, t := range m.tensors() {
		n := 1
		for _, d := range t.shape {
			n *= d
		}
		data := make([]float32, n)
		scale := 1 / math.Sqrt(float64(t.shape[len(t.shape)-1]))
		for i := range data {
			seed = seed*6364136223846793005 + 1442695040888963407
			u := float64(seed>>11) / (1 << 53)
			data[i] = float32((2*u - 1) * math.Sqrt(3) * scale)
			if len(t.shape) == 1 {
				data[i] = 1 + data[i]/10
			}
		}
		w[t.name] = memTensor{t.shape, data}
	}
	return w
}

// fixture returns the folder of a ../shared/fixtures/llm model, preferring
// the repository's testdata copy; it skips the test when neither exists.
func fixture(t testing.TB, name string) string {
	t.Helper()
	for _, dir := range []string{filepath.Join("..", "..", "..", "..", "testdata", name), filepath.Join("..", "..", "..", "..", "..", "shared", "fixtures", "llm", name)} {
		if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
			return dir
		}
	}
	t.Skipf("fixture %s not found in testdata/ or ../shared/fixtures/llm", name)
	return ""
}

func loadConfig(t testing.TB, path string) *Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type tensorSpec struct {
	name  string
	shape []int
}

// tensors lists every tensor the architecture reads, with its shape.
func (m *Model) tensors() []tensorSpec {
	var ts []tensorSpec
	m.eachTensor(func(name string, shape ...int) error {
		ts = append(ts, tensorSpec{name, shape})
		return nil
	})
	return ts
}
