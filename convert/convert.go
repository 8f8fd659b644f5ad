// Package convert holds the qins pipelines: convert a safetensors checkpoint
// into a QINS file, restore a QINS file to floating point, and inspect
// either. Each streams tensor by tensor and chunk by chunk, so memory stays
// bounded by a few chunks whatever the model size.
package convert

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/quant"
)

// DefaultChunkBytes is the size of the pieces tensors are read in, on
// machines with up to 8 cores.
const DefaultChunkBytes = 4 << 20

// chunkBudget bounds the default chunks of all goroutines together: with
// more goroutines than it holds at DefaultChunkBytes, the chunks shrink,
// so that memory does not grow with the number of cores.
const chunkBudget = 32 << 20

// minChunkBytes is the smallest default chunk: below it, the calls per
// byte start to cost more than the memory saved.
const minChunkBytes = 256 << 10

// checkEvery is how many tensors a loop over a whole header handles between
// two looks at its context.
const checkEvery = 4096

// Options configure Convert.
type Options struct {
	// Include, when set, selects the floating-point tensors to encode by
	// name, whatever their rank; by default every F16, BF16, F32 or F64
	// tensor of rank 2 or more is encoded, but for the scales of FP8, FP6
	// and FP4 tensors (NAME_scale or NAME_scale_inv beside NAME). Tensors
	// of the other dtypes are always stored unchanged.
	Include *regexp.Regexp
	// Exclude keeps the matching tensors unchanged.
	Exclude *regexp.Regexp
	// Force replaces an existing output.
	Force bool
	// Progress, when set, follows the work in input bytes.
	Progress Progress
	// ChunkBytes is the read size; 0 means DefaultChunkBytes, or less when
	// there are so many workers that memory would grow past a bound.
	ChunkBytes int
	// Workers is the number of goroutines; 0 means twice GOMAXPROCS up to
	// 8, and at least GOMAXPROCS up to 64, so that some compute while
	// others wait for the disk.
	Workers int
	// Layout is format.LayoutU8I8 (the default when empty) or
	// format.LayoutPacked.
	Layout string
	// Range is format.RangeMinMax (the formula's, the default when empty)
	// or format.RangeMSE: log_min chosen to minimise the squared error.
	Range string
	// Granularity is format.GranularityTensor (one range per tensor, the
	// default when empty) or format.GranularityRow (one per row).
	Granularity string
	// MaxShardBytes bounds the tensor data of each shard of a folder
	// output; 0 means DefaultMaxShardBytes. A tensor larger than that gets
	// a shard of its own.
	MaxShardBytes int64
	// Pending, when set, tracks the output until it is committed, for a
	// signal handler (see format.Pending).
	Pending *format.Pending
	// maxHeader, when set, replaces format.MaxHeaderSize: for tests.
	maxHeader int
	// scales holds the names of the tensors that scale an FP8, FP6 or
	// FP4 tensor of the checkpoint (set by checkConvert).
	scales map[string]bool
}

// defaults fills in the default layout and range, and checks them.
func (o *Options) defaults() error {
	switch o.Layout {
	case "":
		o.Layout = format.LayoutU8I8
	case format.LayoutU8I8, format.LayoutPacked:
	default:
		return fmt.Errorf("layout %q: choose %s or %s", o.Layout, format.LayoutU8I8, format.LayoutPacked)
	}
	switch o.Range {
	case "":
		o.Range = format.RangeMinMax
	case format.RangeMinMax, format.RangeMSE:
	default:
		return fmt.Errorf("range %q: choose %s or %s", o.Range, format.RangeMinMax, format.RangeMSE)
	}
	return nil
}

func (o *Options) headerLimit() int {
	if o.maxHeader > 0 {
		return o.maxHeader
	}
	return format.MaxHeaderSize
}

// Summary reports what a pipeline did.
type Summary struct {
	Input, Output string
	Encoded       int   // tensors encoded (convert) or decoded (restore)
	Copied        int   // tensors stored unchanged or cast
	BytesIn       int64 // size of the input files
	BytesOut      int64 // size of the output file
	FP32Bytes     int64 // size of the model's tensors with every float as F32
	// PackedBytes, for a convert to the u8+i8 layout of 16-bit tensors, is
	// what the output would take with the packed layout; 0 otherwise.
	PackedBytes int64
	// EncodedElems and EncodedBytes, for a convert, are the weights
	// encoded and the bytes they take: codes, signs and per-row ranges.
	EncodedElems, EncodedBytes int64
	// KeptDType counts the copied tensors kept because the codec does not
	// read their dtype (integers, BOOL, FP8, FP6, FP4, C64...), whose
	// names KeptDTypes lists, sorted.
	KeptDType  int
	KeptDTypes []string
	Elapsed    time.Duration
	// Shards and SideFiles, for a folder output, count the weight files
	// written and the other files copied.
	Shards, SideFiles int
}

// MBPerSecond returns the input throughput in MB/s (10^6 bytes).
func (s *Summary) MBPerSecond() float64 {
	sec := s.Elapsed.Seconds()
	if sec <= 0 {
		return 0
	}
	return float64(s.BytesIn) / 1e6 / sec
}

// Progress follows a pipeline: Start once with the total, in input bytes,
// then Add as they are processed, adding up to that total.
type Progress interface {
	Start(total int64)
	Add(n int64)
}

type noProgress struct{}

func (noProgress) Start(int64) {}
func (noProgress) Add(int64)   {}

// orNoProgress returns p, or a Progress that ignores everything when p is
// nil.
func orNoProgress(p Progress) Progress {
	if p == nil {
		return noProgress{}
	}
	return p
}

// workBytes returns the total a Progress follows for c: the data bytes of
// its tensors.
func workBytes(c *format.Checkpoint) int64 {
	var n int64
	for _, t := range c.Tensors {
		n += int64(t.Bytes())
	}
	return n
}

// DefaultOutput returns where Convert writes when no output is given:
// for a folder, or an index inside one, the folder <folder>.qins beside it;
// for a file, <SRC name>.qins.safetensors beside it.
func DefaultOutput(src string) string {
	if dir, ok := modelFolder(src); ok {
		return besideFolder(dir, ".qins")
	}
	src = filepath.Clean(src)
	base := strings.TrimSuffix(filepath.Base(src), ".safetensors")
	return filepath.Join(filepath.Dir(src), base+".qins.safetensors")
}

// encodable reports whether dt is a dtype the codec reads.
func encodable(dt dtype.DType) bool { return quant.IsFloat(dt) }

// scaleNames returns the names of the tensors that would scale a tensor
// of c in a low-precision dtype, as FP8 checkpoints store them.
func scaleNames(c *format.Checkpoint) map[string]bool {
	m := map[string]bool{}
	for _, t := range c.Tensors {
		addScales(m, t.Name, t.DType)
	}
	return m
}

// addScales adds to m the names of the tensors that scale the tensor name
// when its dtype dt is low-precision: NAME_scale or NAME_scale_inv.
func addScales(m map[string]bool, name string, dt dtype.DType) {
	if dt.LowPrecision() {
		m[name+"_scale"], m[name+"_scale_inv"] = true, true
	}
}

// selected reports whether tensor t is to be encoded under opts. By
// default, the scales of low-precision tensors are not: their errors
// would multiply those of the tensors they scale, to save a few bytes.
func (o *Options) selected(t format.TensorInfo) bool {
	if !encodable(t.DType) || (o.scales[t.Name] && o.Include == nil) {
		return false
	}
	if o.Exclude != nil && o.Exclude.MatchString(t.Name) {
		return false
	}
	if o.Include != nil {
		return o.Include.MatchString(t.Name)
	}
	return len(t.Shape) >= 2
}

// job is one source tensor and where it goes in the output.
type job struct {
	src    *format.Tensor
	encode bool
	out    int // output tensor index: the copy, or the codes
	signs  int // output index of the signs when encoded
	ranges int // output index of the per-row ranges, or -1
}

// Convert converts the checkpoint at src (a .safetensors file, a folder or
// an index.json) into a QINS file at dst, or into a model folder when dst
// names one (see OutputIsFolder).
func Convert(ctx context.Context, src, dst string, opts Options) (*Summary, error) {
	start := time.Now()
	c, err := format.OpenCheckpoint(src)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := checkConvert(c, &opts); err != nil {
		return nil, err
	}
	if OutputIsFolder(src, dst) {
		return convertFolder(ctx, c, src, dst, opts, start)
	}
	if opts.MaxShardBytes != 0 {
		return nil, fmt.Errorf("%s: a shard size only applies to a folder output", dst)
	}
	if err := checkNotInput(dst, c); err != nil {
		return nil, err
	}
	s, err := convertFile(ctx, c, dst, opts)
	if err != nil {
		return nil, err
	}
	s.BytesIn = c.Size()
	s.Elapsed = time.Since(start)
	return s, nil
}

// checkConvert checks that c can be converted under opts, and fills in
// the defaults of opts.
func checkConvert(c *format.Checkpoint, opts *Options) error {
	if format.IsQINS(c.Metadata) {
		return &format.Error{Path: c.Path, Err: ErrIsQINS}
	}
	if err := opts.defaults(); err != nil {
		return err
	}
	switch opts.Granularity {
	case "":
		opts.Granularity = format.GranularityTensor
	case format.GranularityTensor, format.GranularityRow:
	default:
		return fmt.Errorf("granularity %q: choose %s or %s", opts.Granularity, format.GranularityTensor, format.GranularityRow)
	}
	opts.scales = scaleNames(c)
	for k := range c.Metadata {
		if k == format.VersionKey || strings.HasPrefix(k, format.ParamsPrefix) {
			return &format.Error{Path: c.Path, Err: fmt.Errorf("metadata key %q is reserved for QINS files", k)}
		}
	}
	if opts.Include != nil {
		for _, t := range c.Tensors {
			if opts.selected(t.TensorInfo) {
				return nil
			}
		}
		return &format.Error{Path: c.Path, Err: fmt.Errorf("the include pattern %q %w", opts.Include, ErrNoneSelected)}
	}
	return nil
}

// convertFile converts the tensors of c into one QINS file at dst. c may
// hold only some of a checkpoint's tensors: one shard of a folder output.
// The summary's input size and time are left to the caller.
func convertFile(ctx context.Context, c *format.Checkpoint, dst string, opts Options) (*Summary, error) {
	jobs, outTensors, meta, err := plan(c, &opts)
	if err != nil {
		return nil, err
	}
	nEncoded := 0
	for _, j := range jobs {
		if j.encode {
			nEncoded++
		}
	}
	w, err := createOutput(c.Path, dst, meta, outTensors, format.CreateOptions{
		Force:   opts.Force,
		Reserve: format.EncodedMetaSlack * nEncoded,
		Pending: opts.Pending,
	}, opts.headerLimit())
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	pr := orNoProgress(opts.Progress)
	pr.Start(workBytes(c))
	p := newWriterPool(ctx, opts.Workers)
	cv := &converter{
		pool: p, w: w, chunk: chunkSize(opts.ChunkBytes, p.workers, c), progress: pr.Add,
		packed: opts.Layout == format.LayoutPacked, mse: opts.Range == format.RangeMSE,
		rows: opts.Granularity == format.GranularityRow,
	}
	params, err := cv.run(jobs)
	if err != nil {
		return nil, err
	}
	s := &Summary{Input: c.Path, Output: dst}
	var saving int64 // what the packed layout would save on 16-bit sources
	for i := range jobs {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		j := &jobs[i]
		s.FP32Bytes += fp32Bytes(j.src.TensorInfo)
		if !j.encode {
			s.Copied++
			if !encodable(j.src.DType) {
				s.kept(j.src.DType.String())
			}
			continue
		}
		w.SetMetadata(format.ParamsPrefix+j.src.Name, format.MarshalEncodedMeta(params[i], j.src.DType, opts.Layout, opts.Range, opts.Granularity))
		s.Encoded++
		n := int64(j.src.Elements())
		s.EncodedElems += n
		for _, k := range []int{j.out, j.signs, j.ranges} {
			if k >= 0 {
				s.EncodedBytes += int64(outTensors[k].Elements() * outTensors[k].DType.Size())
			}
		}
		if n := j.src.Elements(); !cv.packed && j.src.DType.Size() == 2 {
			saving += int64(n - format.SignBytes(n))
		}
	}
	if err := c.Unchanged(); err != nil {
		return nil, err
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	if st, err := os.Stat(dst); err == nil {
		s.BytesOut = st.Size()
	}
	if saving > 0 {
		s.PackedBytes = s.BytesOut - saving
	}
	return s, nil
}

// checkNames refuses a checkpoint in which the codes or signs of a tensor
// to encode would take the name of another tensor. It looks at the whole
// checkpoint, so that a folder output split into shards is checked as one.
func checkNames(c *format.Checkpoint, opts *Options) error {
	// Only names with a suffix of the layout can be taken.
	names := make(map[string]bool)
	for i := range c.Tensors {
		n := c.Tensors[i].Name
		for _, suf := range []string{format.CodesSuffix, format.SignsSuffix, format.SignBitsSuffix, format.RangesSuffix} {
			if strings.HasSuffix(n, suf) {
				names[n] = true
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	type part struct{ what, suffix string }
	parts := []part{{"codes", format.CodesSuffix}, {"signs", format.SignsSuffix}}
	if opts.Layout == format.LayoutPacked {
		parts[1].suffix = format.SignBitsSuffix
	}
	if opts.Granularity == format.GranularityRow {
		parts = append(parts, part{"row ranges", format.RangesSuffix})
	}
	for i := range c.Tensors {
		t := &c.Tensors[i]
		if !opts.selected(t.TensorInfo) {
			continue
		}
		for _, p := range parts {
			if n := t.Name + p.suffix; names[n] {
				return &format.Error{Path: c.Path, Tensor: t.Name, Err: &NameClashError{Tensor: t.Name, Part: p.what, Stored: n}}
			}
		}
	}
	return nil
}

// plan decides which tensors are encoded and lays out the output: copied
// tensors first, largest dtype first so every tensor stays aligned to its
// element size, then codes and signs in source order.
func plan(c *format.Checkpoint, opts *Options) ([]job, []format.TensorInfo, map[string]string, error) {
	if err := checkNames(c, opts); err != nil {
		return nil, nil, nil, err
	}
	jobs := make([]job, len(c.Tensors))
	for i := range c.Tensors {
		t := &c.Tensors[i]
		jobs[i] = job{src: t, encode: opts.selected(t.TensorInfo)}
	}
	if n := leastHeaderLen(c, jobs, opts); n > opts.headerLimit() {
		return nil, nil, nil, headerTooLarge(c.Path, n, "at least ")
	}
	order := make([]int32, len(jobs))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		return cmp.Compare(outSize(&jobs[b]), outSize(&jobs[a]))
	})
	nEncoded := 0
	for i := range jobs {
		if jobs[i].encode {
			nEncoded++
		}
	}
	meta := make(map[string]string, len(c.Metadata)+nEncoded+1)
	for k, v := range c.Metadata {
		meta[k] = v
	}
	meta[format.VersionKey] = format.Version
	rows := opts.Granularity == format.GranularityRow
	if rows {
		meta[format.VersionKey] = format.VersionRows
	}
	out := make([]format.TensorInfo, 0, len(jobs)+2*nEncoded)
	// Per-row ranges go before the first tensor of smaller elements: F32
	// tensors of a multiple of 8 bytes, they keep every tensor aligned.
	ranges := func() error {
		for _, i := range order {
			j := &jobs[i]
			if t := j.src.TensorInfo; j.encode && rows {
				n := t.Name + format.RangesSuffix
				j.ranges = len(out)
				out = append(out, format.TensorInfo{Name: n, DType: dtype.F32, Shape: []uint64{rowCount(t.Shape), 2}})
			}
		}
		return nil
	}
	for i := range jobs {
		jobs[i].ranges = -1
	}
	placed := false
	for _, i := range order {
		j := &jobs[i]
		t := j.src.TensorInfo
		if !placed && outSize(j) < 4 {
			if err := ranges(); err != nil {
				return nil, nil, nil, err
			}
			placed = true
		}
		if !j.encode {
			j.out = len(out)
			out = append(out, format.TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape})
			continue
		}
		signs := format.TensorInfo{Name: t.Name + format.SignsSuffix, DType: dtype.I8, Shape: t.Shape}
		if opts.Layout == format.LayoutPacked {
			signs = format.TensorInfo{Name: t.Name + format.SignBitsSuffix, DType: dtype.U8, Shape: []uint64{format.SignBytes(t.Elements())}}
		}
		j.out, j.signs = len(out), len(out)+1
		out = append(out, format.TensorInfo{Name: t.Name + format.CodesSuffix, DType: dtype.U8, Shape: t.Shape}, signs)
		meta[format.ParamsPrefix+t.Name] = format.MarshalEncodedMeta(quant.Params{}, t.DType, opts.Layout, opts.Range, opts.Granularity)
	}
	if !placed {
		if err := ranges(); err != nil {
			return nil, nil, nil, err
		}
	}
	return jobs, out, meta, nil
}

// createOutput starts writing the output of src at dst, once its header is
// known to be within limit.
func createOutput(src, dst string, meta map[string]string, tensors []format.TensorInfo, opts format.CreateOptions, limit int) (*format.Writer, error) {
	if err := checkHeaderLen(src, meta, tensors, opts.Reserve, limit); err != nil {
		return nil, err
	}
	return format.Create(dst, meta, tensors, opts)
}

// checkHeaderLen refuses, before anything is written, an output whose
// header would be above the format's limit, which no reader opens: tiny
// tensors take more header than data, and each encoded one takes two
// entries and its metadata. reserve is the room kept for metadata that
// comes later.
func checkHeaderLen(src string, meta map[string]string, tensors []format.TensorInfo, reserve, limit int) error {
	n, ok := format.HeaderLen(meta, tensors)
	n = (n+7)/8*8 + reserve // as format.Create pads it
	if ok && n <= limit {
		return nil
	}
	return headerTooLarge(src, n, "")
}

func headerTooLarge(src string, n int, least string) error {
	return &format.Error{Path: src, Err: fmt.Errorf("the output's header would take %s%d bytes, %w of %d bytes: encode fewer tensors, or split the checkpoint", least, n, ErrHeaderTooLarge, format.MaxHeaderSize)}
}

// leastHeaderLen returns the least bytes the output's header can take, its
// offsets aside, from the plan's choices alone: a header far above the
// limit is refused before the output's tensors and metadata are built.
func leastHeaderLen(c *format.Checkpoint, jobs []job, opts *Options) int {
	n := 2 + len(`"__metadata__":{}`) - 1 + format.MetadataEntryLen(format.VersionKey, format.Version)
	for k, v := range c.Metadata {
		n += format.MetadataEntryLen(k, v)
	}
	metaLen := map[dtype.DType]int{} // the placeholder, per dtype
	for i := range jobs {
		t := jobs[i].src.TensorInfo
		t.Begin, t.End = 0, 0
		if !jobs[i].encode {
			n += format.EntryLen(t)
			continue
		}
		m, ok := metaLen[t.DType]
		if !ok {
			m = format.MetadataEntryLen(format.ParamsPrefix, format.MarshalEncodedMeta(quant.Params{}, t.DType, opts.Layout, opts.Range, opts.Granularity))
			metaLen[t.DType] = m
		}
		entry := format.EntryLen(t) - len(t.DType.String()) // the name's and the shape's
		signs := len(format.SignsSuffix) + len("I8")
		if opts.Layout == format.LayoutPacked {
			signs = len(format.SignBitsSuffix) + len("U8") + format.EntryLen(format.TensorInfo{Shape: []uint64{format.SignBytes(t.Elements())}}) - format.EntryLen(format.TensorInfo{Shape: t.Shape})
		}
		n += 2*entry + len(format.CodesSuffix) + len("U8") + signs + m + len(t.Name) + format.EncodedMetaSlack
	}
	return n
}

// rowCount returns the rows of a shape: the product of all dimensions but
// the last.
func rowCount(shape []uint64) uint64 {
	n := uint64(1)
	for i := 0; i+1 < len(shape); i++ {
		n *= shape[i]
	}
	return n
}

// rowLen returns the elements of a row: the last dimension, 1 for a
// scalar.
func rowLen(shape []uint64) int64 {
	if len(shape) == 0 {
		return 1
	}
	return int64(shape[len(shape)-1])
}

// outSize is the element size of a job's output tensors.
func outSize(j *job) uint64 {
	if j.encode {
		return 1
	}
	return j.src.DType.Size()
}

func fp32Bytes(t format.TensorInfo) int64 {
	if quant.IsFloat(t.DType) {
		return int64(t.Elements()) * 4
	}
	return int64(t.Bytes())
}

// checkNotInput refuses an output that is one of the input files.
func checkNotInput(dst string, c *format.Checkpoint) error {
	st, err := os.Stat(dst)
	if err != nil {
		return nil // does not exist yet, or Create reports it
	}
	if c.Index != "" {
		if ist, err := os.Stat(c.Index); err == nil && os.SameFile(st, ist) {
			return &format.Error{Path: dst, Err: errors.New("is an input of this command; refusing to overwrite it")}
		}
	}
	for _, f := range c.Files {
		if fst, err := f.Stat(); err == nil && os.SameFile(st, fst) {
			return &format.Error{Path: dst, Err: errors.New("is an input of this command; refusing to overwrite it")}
		}
	}
	return nil
}

// chunkSize returns the read size: the one asked for, or when 0 the
// default for that many workers, but no more than the largest tensor of c
// needs, so that small models take little memory. It is at least 8, one
// element of any dtype.
func chunkSize(asked, workers int, c *format.Checkpoint) int {
	if asked <= 0 {
		asked = share(chunkBudget, workers, minChunkBytes, DefaultChunkBytes)
	}
	var largest uint64
	for _, t := range c.Tensors {
		largest = max(largest, t.Bytes())
	}
	return max(8, int(min(uint64(asked), largest)))
}

// converter runs the tensors of a convert through a pool of goroutines,
// each reading, encoding and writing its own chunks.
type converter struct {
	pool     *pool
	w        *format.Writer
	chunk    int
	progress func(int64)
	packed   bool // the packed layout
	mse      bool // log_min chosen for the least squared error
	rows     bool // one range per row (rows.go)
	scanners scanners
}

// A step is one chunk of one pass over a tensor.
type step struct {
	job  int // index in the jobs
	pass int
	off  int64 // in source bytes
	n    int64
}

const (
	passCopy   = iota // copy the chunk unchanged
	passScan          // the range pass: count the chunk's patterns
	passEncode        // encode the chunk and write its codes and signs
	passRows          // per-row ranges: range and encode whole rows at once
)

// tensorState follows one tensor through its steps.
type tensorState struct {
	written      atomic.Int64 // writing steps done
	nWrite       int64
	*encodeState // nil for a copy: a header of tiny copies stays small
}

// encodeState follows the passes of an encoded tensor.
type encodeState struct {
	scans   []*quant.Scanner // per goroutine
	scanned atomic.Int64     // scan steps done
	nScan   int64
	ready   chan struct{}  // closed once enc is set
	enc     *quant.Encoder // dropped once the tensor is written
	params  quant.Params
	env     envelope // per-row ranges: their envelope
}

// workerBufs are one goroutine's buffers.
type workerBufs struct {
	in    []byte
	codes []uint8
	signs []int8
	bits  []byte
	rows  rowBufs
}

// scanners keeps the scanners of finished tensors for the next ones:
// each that counts values holds 256 KB of counts.
type scanners struct {
	mu   sync.Mutex
	free []*quant.Scanner
}

// get returns a scanner for dtype dt that counts values when counts is
// set (the mse range needs them; the min/max range scans faster without).
func (p *scanners) get(dt dtype.DType, counts bool) (*quant.Scanner, error) {
	p.mu.Lock()
	for i, s := range p.free {
		if s.DType() == dt && s.Counts() == counts {
			p.free = append(p.free[:i], p.free[i+1:]...)
			p.mu.Unlock()
			s.Reset()
			return s, nil
		}
	}
	p.mu.Unlock()
	if counts {
		return quant.NewScanner(dt)
	}
	return quant.NewRangeScanner(dt)
}

func (p *scanners) put(s *quant.Scanner) {
	p.mu.Lock()
	p.free = append(p.free, s)
	p.mu.Unlock()
}

// run converts every job and returns the parameters of each (zero for
// copies). Encoding needs two passes over a tensor, the second after the
// first is complete; to keep the cores and the disk busy, the range pass
// of each tensor runs while the previous one is being encoded and written.
func (cv *converter) run(jobs []job) ([]quant.Params, error) {
	ctx, cancel := context.WithCancel(cv.pool.ctx)
	defer cancel()
	states := make([]tensorState, len(jobs))
	stepBytes := func(j *job) int64 {
		if !j.encode {
			return int64(cv.chunk)
		}
		size := int64(j.src.DType.Size())
		// Whole elements, and whole bytes of sign bits.
		return max(8, int64(cv.chunk)/size/8*8) * size
	}
	steps := make([]step, 0, countSteps(jobs, stepBytes))
	chunks := func(i, pass int, stepBytes int64) {
		size := jobs[i].src.Section().Size()
		for off := int64(0); off < size; off += stepBytes {
			steps = append(steps, step{i, pass, off, min(stepBytes, size-off)})
		}
	}
	pending := -1 // the encoded tensor whose encode steps come next
	for i := range jobs {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		j, st := &jobs[i], &states[i]
		if j.encode && cv.rows {
			st.encodeState = &encodeState{}
			sb := cv.rowStepBytes(j)
			st.nWrite = (j.src.Section().Size() + sb - 1) / sb
			chunks(i, passRows, sb)
			continue
		}
		sb := stepBytes(j)
		n := (j.src.Section().Size() + sb - 1) / sb
		if !j.encode {
			st.nWrite = n
			chunks(i, passCopy, sb)
			continue
		}
		st.encodeState = &encodeState{}
		st.nScan, st.nWrite = n, n
		st.scans = make([]*quant.Scanner, cv.pool.workers)
		st.ready = make(chan struct{})
		chunks(i, passScan, sb)
		if n == 0 {
			if err := cv.prepare(j, st); err != nil {
				return nil, err
			}
		}
		if pending >= 0 {
			chunks(pending, passEncode, stepBytes(&jobs[pending]))
		}
		pending = i
	}
	if pending >= 0 {
		chunks(pending, passEncode, stepBytes(&jobs[pending]))
	}

	bufs := make([]workerBufs, cv.pool.workers)
	run := &pool{ctx: ctx, workers: cv.pool.workers}
	var first error
	var once sync.Once
	err := run.each(int64(len(steps)), 1, func(w int, k, _ int64) error {
		s := steps[k]
		err := cv.do(ctx, &jobs[s.job], &states[s.job], s, w, &bufs[w])
		if err != nil {
			// Record it before the steps waiting for a range pass give up
			// with the cancellation.
			once.Do(func() { first = err })
			cancel()
		}
		return err
	})
	if first != nil {
		return nil, first
	}
	if err != nil {
		return nil, err
	}
	params := make([]quant.Params, len(jobs))
	for i := range jobs {
		if jobs[i].encode {
			params[i] = states[i].params
			if cv.rows {
				params[i] = states[i].env.p
			}
		}
	}
	return params, nil
}

// countSteps returns how many steps jobs take, in pieces of stepBytes: so
// that the schedule of a header of a million tensors is allocated once.
func countSteps(jobs []job, stepBytes func(*job) int64) int {
	n := 0
	for i := range jobs {
		sb := stepBytes(&jobs[i])
		k := (int64(jobs[i].src.Bytes()) + sb - 1) / sb
		if jobs[i].encode {
			k *= 2 // the range pass, then the encode pass
		}
		n += int(k)
	}
	return n
}

// do runs one step on goroutine w.
func (cv *converter) do(ctx context.Context, j *job, st *tensorState, s step, w int, b *workerBufs) error {
	t := *j.src
	if int64(len(b.in)) < s.n { // a step holds at least 8 elements
		b.in = make([]byte, max(int64(cv.chunk), s.n))
	}
	in := b.in[:s.n]
	if s.pass == passEncode {
		// The range pass of this tensor was scheduled before any of its
		// encode steps, so it only has steps in progress left.
		select {
		case <-st.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if _, err := t.Section().ReadAt(in, s.off); err != nil {
		return tensorErr(t, err)
	}
	switch s.pass {
	case passCopy:
		if err := cv.w.WriteAt(j.out, in, s.off); err != nil {
			return err
		}
		cv.progress(s.n)
	case passScan:
		size := int64(t.DType.Size())
		if st.scans[w] == nil {
			var err error
			if st.scans[w], err = cv.scanners.get(t.DType, cv.mse); err != nil {
				return tensorErr(t, err)
			}
		}
		st.scans[w].Scan(in, s.off/size)
		cv.progress(s.n / 2)
		if st.scanned.Add(1) == st.nScan {
			return cv.prepare(j, st)
		}
		return nil
	case passEncode:
		size := int64(t.DType.Size())
		k := int(s.n / size)
		if len(b.codes) < k {
			b.codes, b.signs, b.bits = make([]uint8, k), make([]int8, k), make([]byte, (k+7)/8)
		}
		codes, signs := b.codes[:k], b.signs[:k]
		out, at := quant.Int8Bytes(signs), s.off/size
		if cv.packed {
			out, at = b.bits[:(k+7)/8], s.off/size/8
			st.enc.EncodePacked(in, codes, out)
		} else {
			st.enc.Encode(in, codes, signs)
		}
		if err := cv.w.WriteAt(j.out, codes, s.off/size); err != nil {
			return err
		}
		if err := cv.w.WriteAt(j.signs, out, at); err != nil {
			return err
		}
		cv.progress(s.n - s.n/2)
	case passRows:
		if err := cv.encodeRows(j, st, in, s.off, b); err != nil {
			return err
		}
		cv.progress(s.n)
	}
	if st.written.Add(1) == st.nWrite {
		cv.w.StartWriteback(j.out)
		if j.encode {
			st.enc = nil // its tables (32 KB, 160 KB for F32); every step of the tensor is done
			cv.w.StartWriteback(j.signs)
		}
	}
	return nil
}

// grow returns codes and signs buffers of k elements.
func (b *workerBufs) grow(k int) ([]uint8, []int8) {
	if len(b.codes) < k {
		b.codes, b.signs, b.bits = make([]uint8, k), make([]int8, k), make([]byte, (k+7)/8)
	}
	return b.codes[:k], b.signs[:k]
}

// writeCodes writes the codes and signs of the chunk in at source byte
// offset off, in the output's layout.
func (cv *converter) writeCodes(j *job, in []byte, off int64, codes []uint8, signs []int8, b *workerBufs) error {
	size := int64(j.src.DType.Size())
	k := len(codes)
	out, at := quant.Int8Bytes(signs), off/size
	if cv.packed {
		quant.ZeroCodes(j.src.DType, in, codes)
		out, at = b.bits[:(k+7)/8], off/size/8
		quant.PackSigns(signs, out)
	}
	if err := cv.w.WriteAt(j.out, codes, off/size); err != nil {
		return err
	}
	return cv.w.WriteAt(j.signs, out, at)
}

// prepare merges the range pass of a tensor and makes its encoder, once
// the last of its scan steps is done.
func (cv *converter) prepare(j *job, st *tensorState) error {
	t := *j.src
	var scan *quant.Scanner
	for _, s := range st.scans {
		if s == nil {
			continue
		}
		if scan == nil {
			scan = s
		} else {
			scan.Merge(s)
			cv.scanners.put(s)
		}
	}
	st.scans = nil
	if scan == nil { // an empty tensor
		var err error
		if scan, err = quant.NewScanner(t.DType); err != nil {
			return tensorErr(t, err)
		}
	}
	params := scan.Params
	if cv.mse {
		params = scan.MSEParams
	}
	p, err := params()
	if err != nil {
		return tensorErr(t, err)
	}
	st.enc, st.params = scan.EncoderFor(p), p
	cv.scanners.put(scan)
	close(st.ready)
	return nil
}

// tensorErr names the file and tensor in err, unless it is a cancellation
// or already names a file.
func tensorErr(t format.Tensor, err error) error {
	var fe *format.Error
	if err == nil || errors.Is(err, context.Canceled) || errors.As(err, &fe) {
		return err
	}
	return &format.Error{Path: t.File.Path, Tensor: t.Name, Err: err}
}

// kept counts a tensor copied because of its dtype, named dt.
func (s *Summary) kept(dt string) {
	s.KeptDType++
	s.keptName(dt)
}

// keptName adds dt to KeptDTypes, kept sorted and without repeats.
func (s *Summary) keptName(dt string) {
	if i, found := slices.BinarySearch(s.KeptDTypes, dt); !found {
		s.KeptDTypes = slices.Insert(s.KeptDTypes, i, dt)
	}
}
