package qins

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/qins-dev/qins/format"
)

// Reader reads the tensors of a checkpoint, QINS or not, as the source
// model had them: restore, diff, inspect and eval read through it.
type Reader struct {
	// Checkpoint is the checkpoint as stored.
	Checkpoint *format.Checkpoint
	// Tensors are its tensors as the source model had them, in the order
	// of their data: an encoded tensor's parts are one tensor.
	Tensors []Logical
	byName  map[string]*Logical
	// Workers is the number of goroutines ReadFloat32 uses; 0 means
	// GOMAXPROCS, up to 64.
	Workers int
}

// Open opens the checkpoint at path (a file, a folder or an index) and
// checks its QINS layout, stopping early when ctx is done (a header of
// many tensors takes a while).
func Open(ctx context.Context, path string) (*Reader, error) {
	c, err := format.OpenCheckpoint(path)
	if err != nil {
		return nil, err
	}
	ls, err := Logicals(ctx, c)
	if err != nil {
		c.Close()
		return nil, err
	}
	r := &Reader{Checkpoint: c, Tensors: ls, byName: make(map[string]*Logical, len(ls))}
	for i := range ls {
		r.byName[ls[i].Name] = &ls[i]
	}
	return r, nil
}

// Path returns the file or index the checkpoint was read from (for a
// folder, the file or index found in it).
func (r *Reader) Path() string { return r.Checkpoint.Path }

// Tensor returns the named tensor, and whether it exists.
func (r *Reader) Tensor(name string) (*Logical, bool) {
	l, ok := r.byName[name]
	return l, ok
}

// readChunk is the number of elements one goroutine reads at a time.
const readChunk = 1 << 16

// ReadFloat32 fills dst with elements [off, off+len(dst)) of the named
// floating-point tensor, in row-major order: stored values converted
// exactly (F64 rounded once), encoded ones decoded as a restore to F32
// writes them. It is safe for concurrent use.
func (r *Reader) ReadFloat32(ctx context.Context, name string, off int64, dst []float32) error {
	l, ok := r.byName[name]
	if !ok {
		return &format.Error{Path: r.Path(), Tensor: name, Err: fmt.Errorf("no such tensor")}
	}
	if !l.DType.IsFloat() {
		return &format.Error{Path: r.Path(), Tensor: name, Err: fmt.Errorf("is %v, not a floating-point tensor", l.DType)}
	}
	n := int64(len(dst))
	if off < 0 || off+n > int64(l.Elements()) {
		return &format.Error{Path: r.Path(), Tensor: name, Err: fmt.Errorf("elements [%d, %d) are outside its %d", off, off+n, l.Elements())}
	}
	src, err := NewSource(l)
	if err != nil {
		return err
	}
	workers := r.Workers
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), 64)
	}
	pieces := (n + readChunk - 1) / readChunk
	g, ctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for range min(int64(workers), max(pieces, 1)) {
		g.Go(func() error {
			vals := make([]float64, readChunk)
			var raw []byte
			for k := next.Add(1) - 1; k < pieces; k = next.Add(1) - 1 {
				if err := ctx.Err(); err != nil {
					return err
				}
				i := k * readChunk
				m := min(readChunk, n-i)
				if _, err := src.Values(off+i, m, vals, &raw); err != nil {
					return err
				}
				out := dst[i : i+m]
				for j, v := range vals[:m] {
					out[j] = float32(v) // exact but for F64, rounded once as restore does
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// Close closes the checkpoint's files.
func (r *Reader) Close() error { return r.Checkpoint.Close() }
