// Package convert holds the qins pipelines that write: Convert a
// safetensors checkpoint into a QINS file or model folder, Restore a QINS
// checkpoint to floating point, and Inspect either. Each streams tensor by
// tensor and chunk by chunk, so memory stays bounded by a few chunks
// whatever the model size; a model folder output carries the input's
// other files (config, tokenizer) under a side-file policy. Comparing
// checkpoints is package convert/diff's, evaluating models
// convert/eval's; the file formats are package format's and its
// subpackages'; output names and all text are the command's.
package convert

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
)

// Options configure Convert. Their zero value encodes as the QINS
// reference implementation does: the log codec, codes and sign bytes, one
// min/max range per tensor (16 bits per weight). The qins command's
// default is LayoutPacked, GranularityRow and RangeMSE (about 9 bits per
// weight, a tenth of the error on a trained model); its --reference flag
// is the zero value.
type Options struct {
	WriteOptions
	// Include, when set, selects the floating-point tensors to encode by
	// name, whatever their rank; by default every F16, BF16, F32 or F64
	// tensor of rank 2 or more is encoded, but for the scales of FP8, FP6
	// and FP4 tensors (NAME_scale or NAME_scale_inv beside NAME). Tensors
	// of the other dtypes are always stored unchanged.
	Include *regexp.Regexp
	// Exclude keeps the matching tensors unchanged.
	Exclude *regexp.Regexp
	// Layout is how codes and signs are stored; the zero value is
	// qins.LayoutU8I8.
	Layout qins.Layout
	// Range is how log_min is chosen; the zero value is the formula's,
	// qins.RangeMinMax.
	Range qins.Range
	// Granularity is how many ranges a tensor has; the zero value is one,
	// qins.GranularityTensor.
	Granularity qins.Granularity
	// Codec is the code; the zero value is the log codec, qins.CodecLog.
	// The rational codec (QINS version 3) takes the zero Layout, Range
	// and Granularity.
	Codec qins.Codec
	// Alpha is the rational codec's parameter for every tensor, rounded to
	// float32; 0 chooses, per tensor, the alpha of the least squared error.
	Alpha float64
	// RowRangeBudget, when above 0 with GranularityRow, is the most bits
	// per encoded weight that the per-row ranges may take over the
	// checkpoint: above it, every tensor gets one range instead, and
	// Summary.ShortRows says what the rows would have cost. The qins
	// command's default granularity is row with a budget of 1 bit (rows of
	// 64 weights or more: not LoRA adapters' or convolutions').
	RowRangeBudget float64

	shortRows float64 // set by checkConvert: see Summary.ShortRows
}

// encoding returns how opts encodes tensors.
func (o *Options) encoding() qins.Encoding {
	return qins.Encoding{Layout: o.Layout, Range: o.Range, Granularity: o.Granularity, Codec: o.Codec}
}

// checkAlpha checks Options.Alpha against the codec.
func (o *Options) checkAlpha() error {
	switch {
	case o.Alpha == 0:
		return nil
	case o.Codec != qins.CodecRational:
		return fmt.Errorf("alpha is for the rational codec, not the %v codec", o.Codec)
	case o.Granularity == qins.GranularityRow:
		return errors.New("alpha gives every tensor one alpha; the row granularity chooses one per row: give one or the other")
	case math.IsNaN(o.Alpha) || math.IsInf(o.Alpha, 0) || o.Alpha < 0:
		return fmt.Errorf("alpha %v must be finite and above 0", o.Alpha)
	}
	if a := float32(o.Alpha); a == 0 || math.IsInf(float64(a), 0) {
		return fmt.Errorf("alpha %v is beyond float32's range", o.Alpha)
	}
	return nil
}

// convertHooks change Convert for tests.
type convertHooks struct {
	// maxHeader, when set, replaces format.MaxHeaderSize.
	maxHeader int
}

// Convert converts the checkpoint at src (a .safetensors file, a folder or
// an index.json) into a QINS file at dst, or into a model folder when dst
// names one (WriteOptions.Folder).
func Convert(ctx context.Context, src, dst string, opts Options) (*Summary, error) {
	return convertWith(ctx, src, dst, opts, convertHooks{})
}

// convertWith is Convert with the tests' hooks.
func convertWith(ctx context.Context, src, dst string, opts Options, hooks convertHooks) (*Summary, error) {
	start := time.Now()
	c, err := format.OpenCheckpoint(src)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sel, err := checkConvert(c, &opts)
	if err != nil {
		return nil, err
	}
	limit := format.MaxHeaderSize
	if hooks.maxHeader > 0 {
		limit = hooks.maxHeader
	}
	p := &convertPipeline{c: c, opts: &opts, sel: sel, limit: limit, version: fileVersion(c, &opts, sel)}
	s, err := write(ctx, p, &output{src: c, in: src, dst: dst, prefix: qinsPrefix, opts: opts.WriteOptions, start: start})
	if err != nil {
		return nil, err
	}
	s.Encoding, s.ShortRows = opts.encoding(), opts.shortRows
	return s, nil
}

// rowRangeBits returns the bits per encoded weight that per-row ranges
// take over the tensors of c that sel selects under e.
func rowRangeBits(c *format.Checkpoint, sel *selection, e qins.Encoding) float64 {
	var bytes, elems int64
	for _, t := range c.Tensors {
		if !sel.selected(t.TensorInfo) {
			continue
		}
		r := e.Stored(qins.PartRanges, "", t.Shape)
		b, _ := r.DType.Bytes(r.Elements())
		bytes += int64(b)
		elems += int64(t.Elements())
	}
	if elems == 0 {
		return 0
	}
	return 8 * float64(bytes) / float64(elems)
}

// checkConvert checks that c can be converted under opts, and returns
// which of its tensors are encoded.
func checkConvert(c *format.Checkpoint, opts *Options) (*selection, error) {
	if qins.IsQINS(c.Metadata) {
		return nil, &format.Error{Path: c.Path, Err: ErrIsQINS}
	}
	if err := opts.encoding().Check(); err != nil {
		return nil, err
	}
	if err := opts.checkAlpha(); err != nil {
		return nil, err
	}
	sel := &selection{include: opts.Include, exclude: opts.Exclude, scales: scaleNames(c)}
	if e := opts.encoding(); e.Granularity == qins.GranularityRow && opts.RowRangeBudget > 0 {
		if bits := rowRangeBits(c, sel, e); bits > opts.RowRangeBudget {
			opts.Granularity, opts.shortRows = qins.GranularityTensor, bits
		}
	}
	for k := range c.Metadata {
		if qins.IsQINSKey(k) {
			return nil, &format.Error{Path: c.Path, Err: fmt.Errorf("metadata key %q is reserved for QINS files", k)}
		}
	}
	if opts.Include != nil && !sel.any(c) {
		return nil, &format.Error{Path: c.Path, Err: fmt.Errorf("the include pattern %q %w", opts.Include, ErrNoneSelected)}
	}
	return sel, nil
}

// fileVersion returns the format version of the output of c: the least
// that describes it, qins.VersionRows only when a tensor is encoded with
// per-row ranges, so that a file without them stays readable by
// version-1 readers. It is decided over the whole checkpoint: every shard
// of a folder output carries the same version.
func fileVersion(c *format.Checkpoint, opts *Options, sel *selection) string {
	if !sel.any(c) {
		return qins.Version
	}
	return opts.encoding().Version()
}

// selection is which tensors of a checkpoint a convert encodes: those
// Options.Include and Exclude choose, but for the scales of the
// checkpoint's low-precision tensors.
type selection struct {
	include, exclude *regexp.Regexp
	scales           map[string]bool
}

// any reports whether s selects any tensor of c.
func (s *selection) any(c *format.Checkpoint) bool {
	for _, t := range c.Tensors {
		if s.selected(t.TensorInfo) {
			return true
		}
	}
	return false
}

// checkNames refuses a checkpoint in which a part of a tensor to encode
// (its codes, signs or ranges) would take the name of another tensor. It
// looks at the whole checkpoint, so that a folder output split into
// shards is checked as one.
func checkNames(c *format.Checkpoint, opts *Options, sel *selection) error {
	e := opts.encoding()
	parts := e.Parts()
	// Every name, not only those ending in a part's suffix: a list of
	// suffixes here would have to follow every new part (NAME.alpha was
	// missed once, and two tensors of one name were written).
	names := make(map[string]bool, len(c.Tensors))
	for i := range c.Tensors {
		names[c.Tensors[i].Name] = true
	}
	for i := range c.Tensors {
		t := &c.Tensors[i]
		if !sel.selected(t.TensorInfo) {
			continue
		}
		for _, p := range parts {
			if n := t.Name + e.Suffix(p); names[n] {
				return &format.Error{Path: c.Path, Tensor: t.Name, Err: &NameClashError{Tensor: t.Name, Part: p, Stored: n}}
			}
		}
	}
	return nil
}

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

// selected reports whether tensor t is to be encoded. By default, the
// scales of low-precision tensors are not: their errors would multiply
// those of the tensors they scale, to save a few bytes.
func (s *selection) selected(t format.TensorInfo) bool {
	if !t.DType.IsFloat() || (s.scales[t.Name] && s.include == nil) {
		return false
	}
	if s.exclude != nil && s.exclude.MatchString(t.Name) {
		return false
	}
	if s.include != nil {
		return s.include.MatchString(t.Name)
	}
	return len(t.Shape) >= 2
}

// convertPipeline is Convert's work, for write.
type convertPipeline struct {
	c       *format.Checkpoint
	opts    *Options
	sel     *selection
	limit   int    // of the header
	version string // of every output file (fileVersion)
}

var _ pipeline = (*convertPipeline)(nil)

// check refuses a checkpoint whose encoded tensors' parts would take the
// names of other tensors.
func (p *convertPipeline) check() error { return checkNames(p.c, p.opts, p.sel) }

// units returns the number of tensors of the checkpoint.
func (p *convertPipeline) units() int { return len(p.c.Tensors) }

// outBytes returns the size of each tensor once converted.
func (p *convertPipeline) outBytes() []uint64 {
	e := p.opts.encoding()
	sizes := make([]uint64, len(p.c.Tensors))
	for i, t := range p.c.Tensors {
		sizes[i] = t.Bytes()
		if p.sel.selected(t.TensorInfo) {
			sizes[i] = e.EncodedBytes(t.Shape)
		}
	}
	return sizes
}

// file returns a converter of tensors [from, to).
func (p *convertPipeline) file(from, to int) fileWork {
	c := p.c
	part := &format.Checkpoint{Path: c.Path, Index: c.Index, Files: c.Files, Metadata: c.Metadata, Tensors: c.Tensors[from:to]}
	return &convertFile{c: part, opts: p.opts, sel: p.sel, limit: p.limit, version: p.version}
}
