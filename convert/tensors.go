package convert

import (
	"context"
	"fmt"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// Tensors reads the tensors of a checkpoint by name as float32 values, the
// way diff reads them: stored floating-point values converted exactly (F64
// rounded once), and the tensors of a QINS file decoded as `qins restore`
// writes F32. It opens anything diff opens: a file, a folder or an index.
// Its methods are safe for concurrent use.
type Tensors struct {
	c      *format.Checkpoint
	ls     []qins.Logical
	byName map[string]*qins.Logical
	// Workers is the number of goroutines a read uses; 0 means GOMAXPROCS,
	// up to 64.
	Workers int
}

// OpenTensors opens the checkpoint at path, stopping early when ctx is
// done (a header of many tensors takes a while).
func OpenTensors(ctx context.Context, path string) (*Tensors, error) {
	c, ls, err := openModel(ctx, path)
	if err != nil {
		return nil, err
	}
	t := &Tensors{c: c, ls: ls, byName: make(map[string]*qins.Logical, len(ls))}
	for i := range ls {
		t.byName[ls[i].Name] = &ls[i]
	}
	return t, nil
}

// Path returns the file or index the checkpoint was read from (for a
// folder, the file or index found in it).
func (t *Tensors) Path() string { return t.c.Path }

// Names returns the tensor names, in the order of their data.
func (t *Tensors) Names() []string {
	names := make([]string, len(t.ls))
	for i := range t.ls {
		names[i] = t.ls[i].Name
	}
	return names
}

// Shape returns the shape of the named tensor, and whether it exists.
func (t *Tensors) Shape(name string) ([]uint64, bool) {
	l, ok := t.byName[name]
	if !ok {
		return nil, false
	}
	return l.Shape, true
}

// DType returns the source dtype of the named tensor, and whether it
// exists.
func (t *Tensors) DType(name string) (dtype.DType, bool) {
	l, ok := t.byName[name]
	if !ok {
		return dtype.Invalid, false
	}
	return l.DType, true
}

// readChunk is the number of elements one goroutine reads at a time.
const readChunk = 1 << 16

// ReadFloat32 fills dst with elements [off, off+len(dst)) of the named
// tensor, in row-major order.
func (t *Tensors) ReadFloat32(ctx context.Context, name string, off int64, dst []float32) error {
	l, ok := t.byName[name]
	if !ok {
		return &format.Error{Path: t.c.Path, Tensor: name, Err: fmt.Errorf("no such tensor")}
	}
	if !quant.IsFloat(l.DType) {
		return &format.Error{Path: t.c.Path, Tensor: name, Err: fmt.Errorf("is %v, not a floating-point tensor", l.DType)}
	}
	n := int64(len(dst))
	if off < 0 || off+n > int64(l.Elements()) {
		return &format.Error{Path: t.c.Path, Tensor: name, Err: fmt.Errorf("elements [%d, %d) are outside its %d", off, off+n, l.Elements())}
	}
	src, err := newSource(l)
	if err != nil {
		return err
	}
	p := computeWorkers(t.Workers)
	type bufs struct {
		vals []float64
		raw  []byte
	}
	bs := make([]bufs, p)
	return p.each(ctx, n, readChunk, func(_ context.Context, w int, i, m int64) error {
		b := &bs[w]
		if b.vals == nil {
			b.vals = make([]float64, readChunk)
		}
		if _, err := src.values(off+i, m, b.vals, &b.raw); err != nil {
			return err
		}
		out := dst[i : i+m]
		for k, v := range b.vals[:m] {
			out[k] = float32(v) // exact but for F64, rounded once as restore does
		}
		return nil
	})
}

// Close closes the checkpoint's files.
func (t *Tensors) Close() error { return t.c.Close() }
