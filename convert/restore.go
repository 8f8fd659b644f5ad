package convert

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/quant"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// DType is the dtype of decoded tensors and of copied floating-point
	// tensors: F32, F16, BF16 or F64. The zero value (Invalid) means F32.
	DType dtype.DType
	// Force replaces an existing output.
	Force bool
	// Progress, when set, follows the work in input bytes.
	Progress Progress
	// ChunkBytes bounds the bytes each goroutine reads or writes at a time;
	// 0 means DefaultChunkBytes, or less when there are so many workers
	// that memory would grow past a bound.
	ChunkBytes int
	// Workers is the number of goroutines; 0 means twice GOMAXPROCS up to
	// 8, and at least GOMAXPROCS up to 64, so that some compute while
	// others wait for the disk.
	Workers int
	// MaxShardBytes bounds the tensor data of each shard of a folder
	// output; 0 means DefaultMaxShardBytes.
	MaxShardBytes int64
	// Pending, when set, tracks the output until it is committed, for a
	// signal handler (see format.Pending).
	Pending *format.Pending
	// scales holds the names of the tensors that scale an FP8, FP6 or
	// FP4 tensor, kept in their dtype (set by Restore).
	scales map[string]bool
}

// outDType returns the dtype l is restored to: opts.DType for a floating-
// point tensor, but for the scales of low-precision tensors, which keep
// theirs as the other tensors of dtypes the codec does not read do.
func (o *RestoreOptions) outDType(l *format.Logical) dtype.DType {
	if quant.IsFloat(l.DType) && (l.Encoded() || !o.scales[l.Name]) {
		return o.DType
	}
	return l.DType
}

// Restore decodes the QINS file or folder at in into a plain safetensors
// file at out, or into a model folder when out names one (see
// OutputIsFolder): the source's tensor names, shapes and metadata, with
// every floating-point tensor in opts.DType and every other tensor
// unchanged.
func Restore(ctx context.Context, in, out string, opts RestoreOptions) (*Summary, error) {
	start := time.Now()
	if opts.DType == dtype.Invalid { // the zero value
		opts.DType = dtype.F32
	}
	if !quant.IsFloat(opts.DType) {
		return nil, fmt.Errorf("cannot restore to dtype %v: choose F32, F16, BF16 or F64", opts.DType)
	}
	c, ls, err := openModel(ctx, in)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	opts.scales = map[string]bool{}
	for i := range ls {
		addScales(opts.scales, ls[i].Name, ls[i].DType)
	}
	if !format.IsQINS(c.Metadata) {
		return nil, &format.Error{Path: c.Path, Err: ErrNotQINS}
	}
	if OutputIsFolder(in, out) {
		return restoreFolder(ctx, c, ls, in, out, opts, start)
	}
	if opts.MaxShardBytes != 0 {
		return nil, fmt.Errorf("%s: a shard size only applies to a folder output", out)
	}
	if err := checkNotInput(out, c); err != nil {
		return nil, err
	}
	s, err := restoreFile(ctx, c, ls, out, opts)
	if err != nil {
		return nil, err
	}
	s.BytesIn = c.Size()
	s.Elapsed = time.Since(start)
	return s, nil
}

// restoreFile decodes the tensors ls of c into one file at out. c may hold
// only the stored tensors of ls: one shard of a folder output. The
// summary's input size and time are left to the caller.
func restoreFile(ctx context.Context, c *format.Checkpoint, ls []format.Logical, out string, opts RestoreOptions) (*Summary, error) {
	meta := make(map[string]string)
	for k, v := range c.Metadata {
		if k != format.VersionKey && !strings.HasPrefix(k, format.ParamsPrefix) {
			meta[k] = v
		}
	}
	outDType := opts.outDType
	// Largest element size first keeps every tensor aligned.
	order := make([]int, len(ls))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return outDType(&ls[order[a]]).Size() > outDType(&ls[order[b]]).Size()
	})
	tensors := make([]format.TensorInfo, len(ls))
	outIndex := make([]int, len(ls))
	for k, i := range order {
		tensors[k] = format.TensorInfo{Name: ls[i].Name, DType: outDType(&ls[i]), Shape: ls[i].Shape}
		outIndex[i] = k
	}
	w, err := createOutput(c.Path, out, meta, tensors, format.CreateOptions{Force: opts.Force, Pending: opts.Pending}, format.MaxHeaderSize)
	if err != nil {
		return nil, err
	}
	defer w.Abort()

	p := newWriterPool(ctx, opts.Workers)
	pr := orNoProgress(opts.Progress)
	pr.Start(workBytes(c))
	r := &restorer{pool: p, w: w, chunk: chunkSize(opts.ChunkBytes, p.workers, c), progress: pr.Add}
	r.bufs = make([]restoreBufs, r.pool.workers)
	s := &Summary{Input: c.Path, Output: out}
	// Read in the input's order; the writer takes tensors in any order.
	for i := range ls {
		l := &ls[i]
		k := outIndex[i]
		switch {
		case l.Encoded():
			err = r.decode(l, opts.DType, k)
			s.Encoded++
		case outDType(l) != l.DType:
			err = r.cast(l, opts.DType, k)
			s.Copied++
		default:
			err = r.copy(l, k)
			s.Copied++
			if !quant.IsFloat(l.DType) {
				s.kept(l.DType.String())
			}
		}
		if err != nil {
			return nil, err
		}
		w.StartWriteback(k)
		stored, _ := l.DType.Bytes(l.Elements())
		s.FP32Bytes += fp32Bytes(format.TensorInfo{DType: l.DType, Shape: l.Shape, End: stored})
	}
	if err := c.Unchanged(); err != nil {
		return nil, err
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	if st, err := os.Stat(out); err == nil {
		s.BytesOut = st.Size()
	}
	return s, nil
}

// restorer runs the tensors of a restore through a pool of goroutines,
// each reading, decoding and writing its own chunks.
type restorer struct {
	pool     *pool
	w        *format.Writer
	chunk    int
	progress func(int64)
	bufs     []restoreBufs // per goroutine
}

type restoreBufs struct {
	in, codes, signs, out []byte
	vals                  []float64
}

// grow returns b with length n, reallocating only to grow.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// copy writes a stored tensor unchanged.
func (r *restorer) copy(l *format.Logical, k int) error {
	t := *l.Plain
	sec := t.Section()
	return r.pool.each(sec.Size(), int64(r.chunk), func(w int, off, n int64) error {
		b := &r.bufs[w]
		b.in = grow(b.in, int(n))
		if _, err := sec.ReadAt(b.in, off); err != nil {
			return tensorErr(t, err)
		}
		if err := r.w.WriteAt(k, b.in, off); err != nil {
			return err
		}
		r.progress(n)
		return nil
	})
}

// decode writes the decoded values of an encoded tensor in dtype dt.
func (r *restorer) decode(l *format.Logical, dt dtype.DType, k int) error {
	if err := l.Params.CheckFinite(dt); err != nil {
		return &format.Error{Path: l.Codes.File.Path, Tensor: l.Name, Err: fmt.Errorf("cannot be restored to %v: %v", dt, err)}
	}
	d := quant.NewDecoder(l.Params)
	size := int64(dt.Size())
	step := max(8, int64(r.chunk)/size/8*8) // elements, whole bytes of sign bits
	return r.pool.each(int64(l.Elements()), step, func(w int, off, n int64) error {
		b := &r.bufs[w]
		b.codes, b.signs, b.out = grow(b.codes, int(n)), grow(b.signs, int(n)), grow(b.out, int(n*size))
		if err := l.ReadCodes(off, n, b.codes, quant.Int8s(b.signs), &b.in); err != nil {
			return err
		}
		err := eachRow(l, d, off, n, func(d *quant.Decoder, a, c int64) error {
			return d.DecodeTo(dt, b.codes[a:c], quant.Int8s(b.signs[a:c]), b.out[a*size:c*size], off+a)
		})
		if err != nil {
			return decodeErr(l, err)
		}
		if err := r.w.WriteAt(k, b.out, off*size); err != nil {
			return err
		}
		r.progress(int64(l.Codes.Bytes()+l.Signs.Bytes()) * n / max(int64(l.Elements()), 1))
		return nil
	})
}

// cast writes a stored floating-point tensor in dtype dt.
func (r *restorer) cast(l *format.Logical, dt dtype.DType, k int) error {
	t := *l.Plain
	read, err := quant.Reader(l.DType)
	if err != nil {
		return tensorErr(t, err)
	}
	put, err := quant.Putter(dt)
	if err != nil {
		return tensorErr(t, err)
	}
	in, outSize := int64(l.DType.Size()), int64(dt.Size())
	step := max(1, int64(r.chunk)/max(in, outSize)) // elements
	sec := t.Section()
	return r.pool.each(int64(l.Elements()), step, func(w int, off, n int64) error {
		b := &r.bufs[w]
		b.in, b.out = grow(b.in, int(n*in)), grow(b.out, int(n*outSize))
		if int64(cap(b.vals)) < n {
			b.vals = make([]float64, n)
		}
		vals := b.vals[:n]
		if _, err := sec.ReadAt(b.in, off*in); err != nil {
			return tensorErr(t, err)
		}
		read(b.in, vals)
		for i, v := range vals {
			put(b.out, i, v)
		}
		if err := r.w.WriteAt(k, b.out, off*outSize); err != nil {
			return err
		}
		r.progress(n * in)
		return nil
	})
}
