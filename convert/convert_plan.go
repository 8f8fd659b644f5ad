package convert

import (
	"cmp"
	"context"
	"slices"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// job is one source tensor and where it goes in the output.
type job struct {
	src    *format.Tensor
	encode bool
	out    int // output tensor index: the copy, or the codes
	signs  int // output index of the signs when encoded, or -1 (rational, i8)
	ranges int // output index of the per-row ranges, or -1
}

// plan decides which tensors are encoded and lays out the output: copied
// tensors first, largest dtype first so every tensor stays aligned to its
// element size, then codes and signs in source order; per-row ranges go
// before the first tensor of elements smaller than theirs.
func (cf *convertFile) plan() (*outputPlan, error) {
	c, opts := cf.c, cf.opts
	e := opts.encoding()
	jobs, nEncoded := newJobs(c, cf.sel)
	if n := leastHeaderLen(c, jobs, e); n > cf.limit {
		return nil, headerTooLarge(c.Path, n, "at least ")
	}
	order := make([]int32, len(jobs))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		return cmp.Compare(outSize(&jobs[b]), outSize(&jobs[a]))
	})
	meta := make(map[string]string, len(c.Metadata)+nEncoded+1)
	for k, v := range c.Metadata {
		meta[k] = v
	}
	meta[qins.VersionKey] = cf.version
	out := make([]format.TensorInfo, 0, len(jobs)+2*nEncoded)
	placed := e.Granularity != qins.GranularityRow // the ranges, when any
	for _, i := range order {
		j := &jobs[i]
		t := j.src.TensorInfo
		if !placed && outSize(j) < 4 {
			out, placed = placeRanges(jobs, order, e, out), true
		}
		if !j.encode {
			j.out = len(out)
			out = append(out, format.TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape})
			continue
		}
		if e.Codec == qins.CodecRational || e.Layout == qins.LayoutI8 {
			// (per-row i8 ranges: placed as for the other layouts)
			j.out, j.signs = len(out), -1
			out = append(out, e.Stored(qins.PartCodes, t.Name, t.Shape))
			meta[qins.ParamsKey(t.Name)] = encodedMeta(quant.Params{}, 0, t.DType, e)
			continue
		}
		j.out, j.signs = len(out), len(out)+1
		out = append(out, e.Stored(qins.PartCodes, t.Name, t.Shape), e.Stored(qins.PartSigns, t.Name, t.Shape))
		meta[qins.ParamsKey(t.Name)] = encodedMeta(quant.Params{}, 0, t.DType, e)
	}
	if !placed {
		out = placeRanges(jobs, order, e, out)
	}
	run := func(ctx context.Context, w *format.Writer, progress func(int64), s *Summary) error {
		cv := &converter{c: c, opts: opts, jobs: jobs}
		return cv.run(ctx, w, progress, s)
	}
	return &outputPlan{meta: meta, tensors: out, reserve: qins.EncodedMetaSlack * nEncoded, limit: cf.limit, run: run}, nil
}

// newJobs returns a job per tensor of c, and how many are encoded.
func newJobs(c *format.Checkpoint, sel *selection) ([]job, int) {
	jobs := make([]job, len(c.Tensors))
	n := 0
	for i := range c.Tensors {
		t := &c.Tensors[i]
		jobs[i] = job{src: t, encode: sel.selected(t.TensorInfo), ranges: -1}
		if jobs[i].encode {
			n++
		}
	}
	return jobs, n
}

// placeRanges appends to out the per-row ranges of the encoded jobs, in
// the given order: F32 tensors of a multiple of 8 bytes, they keep every
// tensor after them aligned.
func placeRanges(jobs []job, order []int32, e qins.Encoding, out []format.TensorInfo) []format.TensorInfo {
	for _, i := range order {
		if j := &jobs[i]; j.encode {
			j.ranges = len(out)
			out = append(out, e.Stored(qins.PartRanges, j.src.Name, j.src.Shape))
		}
	}
	return out
}

// leastHeaderLen returns the least bytes the output's header can take, its
// offsets aside, from the plan's choices alone: a header far above the
// limit is refused before the output's tensors and metadata are built.
func leastHeaderLen(c *format.Checkpoint, jobs []job, e qins.Encoding) int {
	var h format.HeaderSize
	h.Metadata(qins.VersionKey, qins.Version)
	for k, v := range c.Metadata {
		h.Metadata(k, v)
	}
	placeholder := map[dtype.DType]string{} // the qins:NAME value, per dtype
	nEncoded := 0
	for i := range jobs {
		t := jobs[i].src.TensorInfo
		t.Begin, t.End = 0, 0
		if !jobs[i].encode {
			h.Tensor(t)
			continue
		}
		v, ok := placeholder[t.DType]
		if !ok {
			v = encodedMeta(quant.Params{}, 0, t.DType, e)
			placeholder[t.DType] = v
		}
		h.Metadata(qins.ParamsKey(t.Name), v)
		for _, p := range e.Parts() {
			h.Tensor(e.Stored(p, t.Name, t.Shape))
		}
		nEncoded++
	}
	return h.Len(qins.EncodedMetaSlack * nEncoded)
}

// encodedMeta renders the qins:NAME value of a tensor of dtype dt encoded
// so, with range p for the log codec or parameter alpha for the rational
// codec.
func encodedMeta(p quant.Params, alpha float64, dt dtype.DType, e qins.Encoding) string {
	if e.Codec == qins.CodecRational {
		return qins.MarshalRationalMeta(alpha, dt, e.Granularity)
	}
	return qins.MarshalEncodedMeta(p, dt, e)
}

// outSize is the element size of a job's output tensors.
func outSize(j *job) uint64 {
	if j.encode {
		return 1
	}
	return j.src.DType.Size()
}
