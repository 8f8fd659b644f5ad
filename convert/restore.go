package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/nlpodyssey/safetensors"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/quant"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// DType is the dtype of decoded tensors and of copied floating-point
	// tensors: F32, F16, BF16 or F64. The zero value (BOOL) means F32.
	DType safetensors.DType
	// Force replaces an existing output.
	Force bool
	// Progress, when set, follows the work in input bytes.
	Progress Progress
	// ChunkBytes is the number of elements decoded at a time; 0 means
	// DefaultChunkBytes.
	ChunkBytes int
}

// Restore decodes the QINS file at in into a plain safetensors file at out:
// the source's tensor names, shapes and metadata, with every floating-point
// tensor in opts.DType and every other tensor unchanged.
func Restore(ctx context.Context, in, out string, opts RestoreOptions) (*Summary, error) {
	start := time.Now()
	if opts.DType == safetensors.BOOL { // the zero value
		opts.DType = safetensors.F32
	}
	if !quant.IsFloat(opts.DType) {
		return nil, fmt.Errorf("cannot restore to dtype %v: choose F32, F16, BF16 or F64", opts.DType)
	}
	c, err := format.OpenCheckpoint(in)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if !format.IsQINS(c.Metadata) {
		return nil, &format.Error{Path: c.Path, Err: errors.New(`is not a QINS file (no "qins" metadata); qins convert makes one`)}
	}
	if err := checkNotInput(out, c); err != nil {
		return nil, err
	}
	ls, err := format.Logicals(c)
	if err != nil {
		return nil, err
	}
	meta := make(map[string]string)
	for k, v := range c.Metadata {
		if k != format.VersionKey && !strings.HasPrefix(k, format.ParamsPrefix) {
			meta[k] = v
		}
	}
	outDType := func(l *format.Logical) safetensors.DType {
		if quant.IsFloat(l.DType) {
			return opts.DType
		}
		return l.DType
	}
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
	w, err := format.Create(out, meta, tensors, format.CreateOptions{Force: opts.Force})
	if err != nil {
		return nil, err
	}
	defer w.Abort()

	chunk := chunkSize(opts.ChunkBytes, c)
	pr := opts.Progress
	if pr == nil {
		pr = noProgress{}
	}
	pr.Start(workBytes(c))
	progress := pr.Add
	r := restorer{ctx: ctx, chunk: chunk, progress: progress}
	s := &Summary{Input: c.Path, Output: out, BytesIn: c.Size()}
	// Read in the input's order; the writer takes tensors in any order.
	for i := range ls {
		l := &ls[i]
		tw := w.TensorWriter(outIndex[i])
		switch {
		case l.Encoded():
			err = r.decode(l, opts.DType, tw)
			s.Encoded++
		case quant.IsFloat(l.DType) && l.DType != opts.DType:
			err = r.cast(l, opts.DType, tw)
			s.Copied++
		default:
			err = copyTensor(ctx, *l.Plain, tw, r.buffer(), progress)
			s.Copied++
		}
		if err != nil {
			return nil, err
		}
		s.FP32Bytes += fp32Bytes(format.TensorInfo{DType: l.DType, Shape: l.Shape, End: l.Elements() * l.DType.Size()})
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	if st, err := os.Stat(out); err == nil {
		s.BytesOut = st.Size()
	}
	s.Elapsed = time.Since(start)
	return s, nil
}

// restorer holds the buffers of a restore, reused from tensor to tensor.
type restorer struct {
	ctx         context.Context
	chunk       int
	progress    func(int64)
	buf, codes  []byte
	signs, outb []byte
}

func (r *restorer) buffer() []byte {
	if r.buf == nil {
		r.buf = make([]byte, r.chunk)
	}
	return r.buf
}

// decode writes the decoded values of an encoded tensor, chunk by chunk.
func (r *restorer) decode(l *format.Logical, dt safetensors.DType, w io.Writer) error {
	if r.codes == nil {
		r.codes, r.signs = make([]byte, r.chunk), make([]byte, r.chunk)
	}
	need := r.chunk * int(dt.Size())
	if len(r.outb) < need {
		r.outb = make([]byte, need)
	}
	d := quant.NewDecoder(l.Params)
	cr, sr := l.Codes.Section(), l.Signs.Section()
	for off := int64(0); off < cr.Size(); off += int64(r.chunk) {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(r.chunk), cr.Size()-off))
		if _, err := cr.ReadAt(r.codes[:n], off); err != nil {
			return tensorErr(*l.Codes, err)
		}
		if _, err := sr.ReadAt(r.signs[:n], off); err != nil {
			return tensorErr(*l.Signs, err)
		}
		out := r.outb[:n*int(dt.Size())]
		if err := d.DecodeTo(dt, r.codes[:n], int8s(r.signs[:n]), out, off); err != nil {
			return &format.Error{Path: l.Codes.File.Path, Tensor: l.Name, Err: err}
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
		r.progress(2 * int64(n))
	}
	return nil
}

// cast writes a stored floating-point tensor in dtype dt.
func (r *restorer) cast(l *format.Logical, dt safetensors.DType, w io.Writer) error {
	read, err := quant.Reader(l.DType)
	if err != nil {
		return err
	}
	put, err := quant.Putter(dt)
	if err != nil {
		return err
	}
	in := int(l.DType.Size())
	var vals []float64
	return tensorErr(*l.Plain, chunks(r.ctx, l.Plain.Section(), r.buffer(), in, func(b []byte) error {
		n := len(b) / in
		if len(vals) < n {
			vals = make([]float64, n)
		}
		read(b, vals[:n])
		need := n * int(dt.Size())
		if len(r.outb) < need {
			r.outb = make([]byte, need)
		}
		for i, v := range vals[:n] {
			put(r.outb, i, v)
		}
		if _, err := w.Write(r.outb[:need]); err != nil {
			return err
		}
		r.progress(int64(len(b)))
		return nil
	}))
}

// int8s views b as signed bytes.
func int8s(b []byte) []int8 {
	return unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
}

// int8Bytes views s as bytes.
func int8Bytes(s []int8) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}
