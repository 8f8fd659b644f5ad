package convert

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/qins-dev/qins/convert/internal/work"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	WriteOptions
	// DType is the dtype of decoded tensors and of copied floating-point
	// tensors: F32, F16, BF16 or F64. The zero value (Invalid) means F32.
	DType dtype.DType
}

// outDTypes is the dtype each tensor of a QINS checkpoint is restored to:
// dt for a floating-point tensor, but for the scales of low-precision
// tensors (FP8, FP6, FP4), which keep theirs as the other tensors of
// dtypes the codec does not read do.
type outDTypes struct {
	dt     dtype.DType
	scales map[string]bool
}

func (o outDTypes) of(l *qins.Logical) dtype.DType {
	if l.DType.IsFloat() && (l.Encoded() || !o.scales[l.Name]) {
		return o.dt
	}
	return l.DType
}

// Restore decodes the QINS file or folder at in into a plain safetensors
// file at out, or into a model folder (WriteOptions.Folder): the source's tensor names, shapes and metadata, with
// every floating-point tensor in opts.DType and every other tensor
// unchanged.
func Restore(ctx context.Context, in, outPath string, opts RestoreOptions) (*Summary, error) {
	start := time.Now()
	if opts.DType == dtype.Invalid { // the zero value
		opts.DType = dtype.F32
	}
	if !opts.DType.IsFloat() {
		return nil, fmt.Errorf("cannot restore to dtype %v: choose F32, F16, BF16 or F64", opts.DType)
	}
	c, ls, err := openModel(ctx, in)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	out := outDTypes{dt: opts.DType, scales: map[string]bool{}}
	for i := range ls {
		addScales(out.scales, ls[i].Name, ls[i].DType)
	}
	if !qins.IsQINS(c.Metadata) {
		return nil, &format.Error{Path: c.Path, Err: ErrNotQINS}
	}
	p := &restorePipeline{c: c, ls: ls, opts: &opts, dtypes: out}
	s, err := write(ctx, p, &output{src: c, in: in, dst: outPath, prefix: restoredPrefix, configDType: torchDType(opts.DType), opts: opts.WriteOptions, start: start})
	if err != nil {
		return nil, err
	}
	s.Unmarked = unmarkedPairs(ls, c.Metadata[qins.VersionKey])
	return s, nil
}

// unmarkedPairs returns, sorted, the names NAME of the QINS checkpoint's
// tensors ls for which NAME.qins (U8) and its signs, NAME.sign (I8 of the
// same shape) or NAME.signbits (U8 of shape [ceil(n/8)]), are stored
// plain: no qins:NAME entry marks them encoded; in a file of version 3,
// or 4, also a lone NAME.qins of U8 or I8 (a rational or i8 tensor has no
// signs).
// Restore copies them, as the format says, but that is what an encoded
// tensor whose entry was lost looks like.
func unmarkedPairs(ls []qins.Logical, version string) []string {
	plain := make(map[string]*qins.Logical)
	for i := range ls {
		if l := &ls[i]; !l.Encoded() {
			plain[l.Name] = l
		}
	}
	var names []string
	for i := range ls {
		codes := &ls[i]
		name, ok := strings.CutSuffix(codes.Name, qins.CodesSuffix)
		if !ok || codes.Encoded() || codes.DType != dtype.U8 && codes.DType != dtype.I8 {
			continue
		}
		if version == qins.VersionRational || version == qins.VersionRationalRows {
			names = append(names, name)
			continue
		}
		if codes.DType != dtype.U8 {
			continue
		}
		for _, e := range []qins.Encoding{{Layout: qins.LayoutU8I8}, {Layout: qins.LayoutPacked}} {
			want := e.Stored(qins.PartSigns, name, codes.Shape)
			if signs := plain[want.Name]; signs != nil && signs.DType == want.DType && slices.Equal(signs.Shape, want.Shape) {
				names = append(names, name)
				break
			}
		}
	}
	sort.Strings(names)
	return names
}

// restorePipeline is Restore's work, for write.
type restorePipeline struct {
	c      *format.Checkpoint
	ls     []qins.Logical
	opts   *RestoreOptions
	dtypes outDTypes
}

var _ pipeline = (*restorePipeline)(nil)

// check accepts any QINS checkpoint: Restore checked it is one.
func (p *restorePipeline) check() error { return nil }

// units returns the number of tensors of the model.
func (p *restorePipeline) units() int { return len(p.ls) }

// outBytes returns the size of each tensor once restored.
func (p *restorePipeline) outBytes() []uint64 {
	sizes := make([]uint64, len(p.ls))
	for i := range p.ls {
		sizes[i], _ = p.dtypes.of(&p.ls[i]).Bytes(p.ls[i].Elements())
	}
	return sizes
}

// file returns the restore of tensors [from, to) into one file. The
// shards of a folder carry "format": "pt", without which transformers
// refuses them.
func (p *restorePipeline) file(from, to int) fileWork {
	meta := make(map[string]string, len(p.c.Metadata)+1)
	for k, v := range p.c.Metadata {
		if !qins.IsQINSKey(k) {
			meta[k] = v
		}
	}
	if _, ok := meta["format"]; !ok && p.opts.Folder {
		meta["format"] = "pt"
	}
	ls := p.ls[from:to]
	part := &format.Checkpoint{Path: p.c.Path, Index: p.c.Index, Files: p.c.Files, Metadata: p.c.Metadata, Tensors: stored(ls)}
	return &restoreFile{c: part, ls: ls, meta: meta, opts: p.opts, dtypes: p.dtypes}
}

// restoreFile is the work of restoring a QINS checkpoint, or a part of
// one, into one file: its plan lays the file out and returns the run.
type restoreFile struct {
	c      *format.Checkpoint
	ls     []qins.Logical
	meta   map[string]string
	opts   *RestoreOptions
	dtypes outDTypes
}

var _ fileWork = (*restoreFile)(nil)

// restorer writes the decoded tensors of a QINS checkpoint, or of a part
// of one, into one file. It reads in the input's order, each tensor in
// chunks on the goroutines of a command; the writer takes tensors in any
// order.
type restorer struct {
	c      *format.Checkpoint
	ls     []qins.Logical
	opts   *RestoreOptions
	dtypes outDTypes
	// outIndex is the output index of each tensor of ls.
	outIndex []int

	workers  work.Workers
	w        *format.Writer
	chunk    int
	progress func(int64)
	bufs     []restoreBufs // per goroutine
}

// plan lays out the output, largest element size first so that every
// tensor stays aligned.
func (rf *restoreFile) plan() (*outputPlan, error) {
	ls, outDType := rf.ls, rf.dtypes.of
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
	run := func(ctx context.Context, w *format.Writer, progress func(int64), s *Summary) error {
		r := &restorer{c: rf.c, ls: ls, opts: rf.opts, dtypes: rf.dtypes, outIndex: outIndex}
		return r.run(ctx, w, progress, s)
	}
	return &outputPlan{meta: rf.meta, tensors: tensors, limit: format.MaxHeaderSize, run: run}, nil
}

// run decodes, casts or copies each tensor into w.
func (r *restorer) run(ctx context.Context, w *format.Writer, progress func(int64), s *Summary) error {
	r.w, r.progress = w, progress
	r.workers = work.ForWriting(r.opts.Workers)
	r.chunk = r.workers.ChunkSize(r.opts.ChunkBytes, r.c)
	r.bufs = make([]restoreBufs, r.workers)
	dt := r.opts.DType
	for i := range r.ls {
		l, k := &r.ls[i], r.outIndex[i]
		var err error
		switch {
		case l.Encoded():
			err = r.decode(ctx, l, dt, k)
			s.Encoded++
		case r.dtypes.of(l) != l.DType:
			err = r.cast(ctx, l, dt, k)
			s.Copied++
		default:
			err = r.copy(ctx, l, k)
			s.Copied++
			if !l.DType.IsFloat() {
				s.kept(l.DType.String())
			}
		}
		if err != nil {
			return err
		}
		w.StartWriteback(k)
		stored, _ := l.DType.Bytes(l.Elements())
		s.FP32Bytes += fp32Bytes(format.TensorInfo{DType: l.DType, Shape: l.Shape, End: stored})
	}
	return nil
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
func (r *restorer) copy(ctx context.Context, l *qins.Logical, k int) error {
	t := *l.Plain
	sec := t.Section()
	return r.workers.Each(ctx, sec.Size(), int64(r.chunk), func(_ context.Context, w int, off, n int64) error {
		b := &r.bufs[w]
		in := r.w.Buffer(&b.in, int(n), k, off)
		if _, err := sec.ReadAt(in, off); err != nil {
			return t.Err(err)
		}
		if err := r.w.WriteAt(k, in, off); err != nil {
			return err
		}
		r.progress(n)
		return nil
	})
}

// decode writes the decoded values of an encoded tensor in dtype dt.
func (r *restorer) decode(ctx context.Context, l *qins.Logical, dt dtype.DType, k int) error {
	if err := l.CheckFinite(dt); err != nil {
		return &format.Error{Path: l.Codes.File.Path, Tensor: l.Name, Err: fmt.Errorf("cannot be restored to %v: %v", dt, err)}
	}
	d := qins.NewDecoder(l)
	size := int64(dt.Size())
	step := max(8, int64(r.chunk)/size/8*8) // elements, whole bytes of sign bits
	return r.workers.Each(ctx, int64(l.Elements()), step, func(_ context.Context, w int, off, n int64) error {
		b := &r.bufs[w]
		b.codes, b.signs = grow(b.codes, int(n)), grow(b.signs, int(n))
		out := r.w.Buffer(&b.out, int(n*size), k, off*size)
		if err := l.ReadCodes(off, n, b.codes, quant.Int8s(b.signs), &b.in); err != nil {
			return err
		}
		if err := d.DecodeTo(dt, off, b.codes, quant.Int8s(b.signs), out); err != nil {
			return err
		}
		if err := r.w.WriteAt(k, out, off*size); err != nil {
			return err
		}
		// The stored bytes of elements [0, x), scaled, telescope to the
		// tensor's whole size over its chunks.
		r.progress(int64(share64(l.StoredBytes(), uint64(off+n), l.Elements()) - share64(l.StoredBytes(), uint64(off), l.Elements())))
		return nil
	})
}

// cast writes a stored floating-point tensor in dtype dt.
func (r *restorer) cast(ctx context.Context, l *qins.Logical, dt dtype.DType, k int) error {
	t := *l.Plain
	read, err := dtype.Reader(l.DType)
	if err != nil {
		return t.Err(err)
	}
	put, err := dtype.Putter(dt)
	if err != nil {
		return t.Err(err)
	}
	in, outSize := int64(l.DType.Size()), int64(dt.Size())
	step := max(1, int64(r.chunk)/max(in, outSize)) // elements
	sec := t.Section()
	overflows := castOverflows(dt)
	return r.workers.Each(ctx, int64(l.Elements()), step, func(_ context.Context, w int, off, n int64) error {
		b := &r.bufs[w]
		b.in = grow(b.in, int(n*in))
		out := r.w.Buffer(&b.out, int(n*outSize), k, off*outSize)
		if int64(cap(b.vals)) < n {
			b.vals = make([]float64, n)
		}
		vals := b.vals[:n]
		if _, err := sec.ReadAt(b.in, off*in); err != nil {
			return t.Err(err)
		}
		read(b.in, vals)
		for i, v := range vals {
			if overflows(v) {
				return t.Err(&CastError{Index: off + int64(i), Value: v, DType: dt})
			}
			put(out, i, v)
		}
		if err := r.w.WriteAt(k, out, off*outSize); err != nil {
			return err
		}
		r.progress(n * in)
		return nil
	})
}

// castOverflows returns whether a finite value becomes infinite in dt:
// a cast that would turn a weight into infinity silently.
func castOverflows(dt dtype.DType) func(v float64) bool {
	switch dt {
	case dtype.F16:
		return func(v float64) bool { return dtype.Float64ToF16(v)&0x7fff == 0x7c00 && !math.IsInf(v, 0) }
	case dtype.BF16:
		return func(v float64) bool { return dtype.Float64ToBF16(v)&0x7fff == 0x7f80 && !math.IsInf(v, 0) }
	case dtype.F32:
		return func(v float64) bool { return math.IsInf(float64(float32(v)), 0) && !math.IsInf(v, 0) }
	}
	return func(float64) bool { return false }
}

// share64 returns floor(a*x/e), for x <= e, without overflow.
func share64(a, x, e uint64) uint64 {
	if e == 0 {
		return 0
	}
	hi, lo := bits.Mul64(a, x)
	q, _ := bits.Div64(hi, lo, e)
	return q
}
