package eval

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/qins"
)

// Weights gives the tensors of any checkpoint `qins diff` reads (a file, a
// folder, an index, a QINS file) as float32, for a forward pass: stored
// floating-point values converted exactly, QINS codes decoded as `qins
// restore` writes F32. Nothing is kept in memory between reads.
type Weights struct {
	t *qins.Reader
}

// OpenWeights opens the checkpoint at path, stopping early when ctx is done.
func OpenWeights(ctx context.Context, path string) (*Weights, error) {
	t, err := qins.Open(ctx, path)
	if err != nil {
		if IsSavedRef(path) {
			// Not a checkpoint's header gone wrong, which is what the
			// reader would say: the file is in the wrong place.
			return nil, &format.Error{Path: path, Err: errors.New("is a saved REF, not a checkpoint: give it first, as REF (qins eval FILE CAND)")}
		}
		return nil, err
	}
	w := &Weights{t: t}
	if err := w.checkDTypes(); err != nil {
		t.Close()
		return nil, err
	}
	return w, nil
}

// checkDTypes refuses low-precision weights the forward pass cannot use:
// FP8 block-scaled ones (a NAME_scale_inv beside NAME, as DeepSeek-V3 and
// other FP8 releases ship them), and any matrix in FP8, FP6 or FP4, whose
// scales live elsewhere. It checks them all before any is read.
func (w *Weights) checkDTypes() error {
	for _, l := range w.t.Tensors {
		if base, ok := strings.CutSuffix(l.Name, "_scale_inv"); ok {
			if b, ok := w.t.Tensor(base); ok {
				return w.errorf(base, "is %v, block-scaled by %s: eval does not run FP8 block-scaled weights; dequantise them to BF16 or F32 first", b.DType, l.Name)
			}
		}
	}
	for _, l := range w.t.Tensors {
		if len(l.Shape) >= 2 && l.DType.LowPrecision() {
			return w.errorf(l.Name, "is %v: eval does not run FP8, FP6 or FP4 weights; dequantise them to BF16 or F32 first", l.DType)
		}
	}
	return nil
}

// Path returns the file or index the checkpoint was read from.
func (w *Weights) Path() string { return w.t.Path() }

// Names returns the tensor names, in the order of their data.
func (w *Weights) Names() []string {
	names := make([]string, len(w.t.Tensors))
	for i := range w.t.Tensors {
		names[i] = w.t.Tensors[i].Name
	}
	return names
}

// shape returns the shape of the named tensor, and whether it exists.
func (w *Weights) shape(name string) ([]uint64, bool) {
	l, ok := w.t.Tensor(name)
	if !ok {
		return nil, false
	}
	return l.Shape, true
}

// Shape returns the shape of the named tensor, and whether it exists.
func (w *Weights) Shape(name string) ([]int, bool) {
	s, ok := w.shape(name)
	if !ok {
		return nil, false
	}
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out, true
}

// Read fills dst, which holds exactly the tensor's elements, with the
// whole tensor.
func (w *Weights) Read(ctx context.Context, name string, dst []float32) error {
	s, ok := w.shape(name)
	if !ok {
		return w.errorf(name, "no such tensor")
	}
	if n, _ := format.Elements(s); uint64(len(dst)) != n {
		return w.errorf(name, "has %d elements (shape %v), not %d", n, s, len(dst))
	}
	return w.t.ReadFloat32(ctx, name, 0, dst)
}

// ReadRows fills dst with rows [r0, r1) of a 2-D tensor.
func (w *Weights) ReadRows(ctx context.Context, name string, r0, r1 int, dst []float32) error {
	s, ok := w.shape(name)
	switch {
	case !ok:
		return w.errorf(name, "no such tensor")
	case len(s) != 2:
		return w.errorf(name, "has shape %v; rows need a 2-D tensor", s)
	case r0 < 0 || r1 < r0 || uint64(r1) > s[0]:
		return w.errorf(name, "rows [%d, %d) are outside its %d", r0, r1, s[0])
	case uint64(len(dst)) != uint64(r1-r0)*s[1]:
		return w.errorf(name, "%d rows of %d need %d values, not %d", r1-r0, s[1], uint64(r1-r0)*s[1], len(dst))
	}
	return w.t.ReadFloat32(ctx, name, int64(r0)*int64(s[1]), dst)
}

func (w *Weights) errorf(name, f string, args ...any) error {
	return &format.Error{Path: w.t.Path(), Tensor: name, Err: fmt.Errorf(f, args...)}
}

// Close closes the checkpoint's files.
func (w *Weights) Close() error { return w.t.Close() }
