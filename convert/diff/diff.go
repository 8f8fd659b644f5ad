// Package diff compares two checkpoints tensor by tensor, by value: error
// statistics (max and mean absolute error, RMSE, relative RMSE, cosine,
// SNR, identical elements) per tensor and in total, against optional
// thresholds. Either side may be a QINS checkpoint, decoded on the fly as
// a restore to F32 writes it; both stream in chunks. It renders no text:
// a Report marshals to JSON, and the command prints it.
package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/qins-dev/qins/convert/internal/work"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
)

// Options configure Diff. A nil threshold is not checked.
type Options struct {
	MaxRelRMSE *float64 // per tensor
	MinSNRdB   *float64 // per tensor; an exact match passes
	MinCosine  *float64 // per tensor
	// Progress, when set, follows the work in input bytes of both sides.
	Progress Progress
	// ChunkElems is the number of elements compared at a time; 0 means
	// 1<<16, and on the fast path of 16-bit tensors up to 1<<18 (fewer
	// when there are many workers).
	ChunkElems int
	// Workers is the number of goroutines comparing chunks; 0 means
	// GOMAXPROCS, up to 64.
	Workers int
	// Outputs are files the caller is to write from the report (a plot):
	// Diff refuses them, before any work, when they are inputs.
	Outputs []string
}

// testHooks are the choices of tests that callers do not make.
type testHooks struct {
	floatOnly bool  // no fast path (diff_hist.go)
	histMin   int64 // the fast path's smallest tensor, when not 0
	// fused, when set, counts the chunks the fused path compares.
	fused *atomic.Int64
}

// Progress follows a diff: Start once with the total, in input bytes of
// both sides, then Add as they are compared, adding up to that total.
type Progress = work.Progress

// Num is a float64 that is written to JSON as null when it is not finite.
type Num float64

// MarshalJSON implements json.Marshaler.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// Stats measure how far B is from A over some elements. For tensors
// whose values diff does not read (F4, F6_*, F8_E8M0, the FNUZ formats,
// C64), compared by their bits, the measures of values are NaN, null in
// JSON, and only Elements, Identical and Exact say something.
type Stats struct {
	Elements       uint64 `json:"elements"`
	MaxAbsErr      Num    `json:"max_abs_err"`
	MaxAbsErrIndex int64  `json:"max_abs_err_index"` // flat index in the tensor
	MeanAbsErr     Num    `json:"mean_abs_err"`
	RMSE           Num    `json:"rmse"`
	// RelRMSE is RMSE divided by the RMS of A.
	RelRMSE Num `json:"rel_rmse"`
	Cosine  Num `json:"cosine"`
	// SNRdB is 10*log10(sum a^2 / sum (a-b)^2); null when Exact.
	SNRdB Num  `json:"snr_db"`
	Exact bool `json:"exact"` // every element equal
	// Identical counts the elements whose values are equal.
	Identical uint64 `json:"identical"`
	// NonFinite counts the elements where a NaN or an infinity on one side
	// is not matched by the same on the other; they are left out of the
	// error sums.
	NonFinite uint64 `json:"non_finite_mismatches"`
}

// Tensor is the comparison of one tensor.
type Tensor struct {
	Name   string   `json:"name"`
	Shape  []uint64 `json:"shape"`
	DTypeA string   `json:"dtype_a"`
	DTypeB string   `json:"dtype_b"`
	Stats
	// Fails lists the thresholds this tensor misses.
	Fails []string `json:"fails,omitempty"`
}

// Mismatch is a tensor present on both sides that cannot be compared.
type Mismatch struct {
	Name   string   `json:"name"`
	ShapeA []uint64 `json:"shape_a"`
	ShapeB []uint64 `json:"shape_b"`
	DTypeA string   `json:"dtype_a"`
	DTypeB string   `json:"dtype_b"`
	Reason string   `json:"reason"`
}

// Total sums the comparison over every tensor compared.
type Total struct {
	Tensors int `json:"tensors"`
	Stats
	MaxAbsErrTensor string `json:"max_abs_err_tensor"`
	Failing         int    `json:"failing_tensors"`
}

// Report is the result of Diff.
type Report struct {
	A             string     `json:"a"`
	B             string     `json:"b"`
	Tensors       []Tensor   `json:"tensors"`
	MissingInA    []string   `json:"missing_in_a"`
	MissingInB    []string   `json:"missing_in_b"`
	ShapeMismatch []Mismatch `json:"shape_mismatch"`
	Total         Total      `json:"total"`
}

// OK reports whether every tensor is present on both sides, comparable, and
// within the thresholds.
func (r *Report) OK() bool {
	return len(r.MissingInA) == 0 && len(r.MissingInB) == 0 && len(r.ShapeMismatch) == 0 && r.Total.Failing == 0
}

// Diff compares two checkpoints tensor by tensor, by value. Either side may
// be a safetensors file, folder or index, or a QINS file, which is decoded
// on the fly as `qins restore` would write it (F32). Both sides are read in
// chunks, so memory is a few chunks whatever the model size.
func Diff(ctx context.Context, pathA, pathB string, opts Options) (*Report, error) {
	return diffWith(ctx, pathA, pathB, opts, testHooks{})
}

// diffWith is Diff with the tests' hooks.
func diffWith(ctx context.Context, pathA, pathB string, opts Options, hooks testHooks) (*Report, error) {
	ra, err := qins.Open(ctx, pathA)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	rb, err := qins.Open(ctx, pathB)
	if err != nil {
		return nil, err
	}
	defer rb.Close()
	ca, la, cb, lb := ra.Checkpoint, ra.Tensors, rb.Checkpoint, rb.Tensors
	for _, out := range opts.Outputs {
		for _, c := range []*format.Checkpoint{ca, cb} {
			if c.IsInput(out) {
				return nil, &format.Error{Path: out, Err: errors.New("is an input of this command; refusing to overwrite it")}
			}
		}
	}
	pr := work.OrNone(opts.Progress)
	pr.Start(ca.DataBytes() + cb.DataBytes())
	d := newDiffer(&opts, hooks, pr.Add)

	r := &Report{A: ca.Path, B: cb.Path, Tensors: []Tensor{}, MissingInA: []string{}, MissingInB: []string{}, ShapeMismatch: []Mismatch{}}
	inB := make(map[string]int32, len(lb))
	for i := range lb {
		inB[lb[i].Name] = int32(i)
	}
	seenB := make([]bool, len(lb))
	r.Tensors = make([]Tensor, 0, min(len(la), len(lb)))
	total := NewAccumulator()
	for i := range la {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		a := &la[i]
		k, ok := inB[a.Name]
		if !ok {
			r.MissingInB = append(r.MissingInB, a.Name)
			continue
		}
		b := &lb[k]
		seenB[k] = true
		if m, bad := mismatch(a, b); bad {
			r.ShapeMismatch = append(r.ShapeMismatch, m)
			continue
		}
		st, err := d.tensor(ctx, a, b)
		if err != nil {
			return nil, err
		}
		td := tensorDiff(a, b, st, opts)
		if len(td.Fails) > 0 {
			r.Total.Failing++
		}
		if st.maxErr > total.maxErr {
			r.Total.MaxAbsErrTensor = a.Name
		}
		total.Merge(st)
		r.Tensors = append(r.Tensors, td)
	}
	for i := range lb {
		if !seenB[i] {
			r.MissingInA = append(r.MissingInA, lb[i].Name)
		}
	}
	r.Total.Tensors = len(r.Tensors)
	r.Total.Stats = total.Stats()
	for _, c := range []*format.Checkpoint{ca, cb} {
		if err := c.Unchanged(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// tensorDiff reports the comparison st of a and b, checked against opts.
func tensorDiff(a, b *qins.Logical, st *Accumulator, opts Options) Tensor {
	td := Tensor{Name: a.Name, Shape: a.Shape, DTypeA: a.DType.String(), DTypeB: b.DType.String(), Stats: st.Stats()}
	if td.Shape == nil {
		td.Shape = []uint64{}
	}
	if bitsOnly(a.DType) {
		td.Stats.noValues()
	}
	td.Fails = check(&td, opts, a.DType.ReadsFloat())
	return td
}

// mismatch reports why a and b cannot be compared, if they cannot.
func mismatch(a, b *qins.Logical) (Mismatch, bool) {
	m := Mismatch{Name: a.Name, ShapeA: a.Shape, ShapeB: b.Shape, DTypeA: a.DType.String(), DTypeB: b.DType.String()}
	switch {
	case !slices.Equal(a.Shape, b.Shape):
		m.Reason = "shapes differ"
	case a.DType.ReadsFloat() != b.DType.ReadsFloat() || (!a.DType.ReadsFloat() && a.DType != b.DType):
		m.Reason = "dtypes differ and are not both floating point"
	default:
		return m, false
	}
	return m, true
}

// bitsOnly reports whether diff compares tensors of dtype dt by the bits
// of their elements only, not reading their values: F4, F6_*, F8_E8M0,
// the FNUZ formats and C64.
func bitsOnly(dt dtype.DType) bool {
	_, err := dtype.Reader(dt)
	return err != nil
}

// noValues marks the measures of values as unknown (null in JSON), for a
// tensor compared by its bits only.
func (s *Stats) noValues() {
	nan := Num(math.NaN())
	s.MaxAbsErr, s.MeanAbsErr, s.RMSE, s.RelRMSE, s.Cosine, s.SNRdB = nan, nan, nan, nan, nan, nan
}

// check returns the thresholds td misses. A non-float tensor must match
// exactly.
func check(td *Tensor, opts Options, float bool) []string {
	var fails []string
	if !float {
		if !td.Exact {
			fails = append(fails, "non-float tensor differs")
		}
		return fails
	}
	if td.NonFinite > 0 {
		fails = append(fails, fmt.Sprintf("%d unmatched NaN or infinity", td.NonFinite))
	}
	if td.Exact {
		return fails
	}
	rel, snr, cos := float64(td.RelRMSE), float64(td.SNRdB), float64(td.Cosine)
	if t := opts.MaxRelRMSE; t != nil && !(rel <= *t) {
		fails = append(fails, fmt.Sprintf("rel_rmse %.4g > %g", rel, *t))
	}
	if t := opts.MinSNRdB; t != nil && !(snr >= *t) {
		fails = append(fails, fmt.Sprintf("snr_db %.4g < %g", snr, *t))
	}
	if t := opts.MinCosine; t != nil && !(cos >= *t) {
		fails = append(fails, fmt.Sprintf("cosine %.6g < %g", cos, *t))
	}
	return fails
}

// newDiffer returns a differ for opts that reports its progress.
func newDiffer(opts *Options, hooks testHooks, progress func(int64)) *differ {
	d := &differ{workers: work.Compute(opts.Workers), chunk: opts.ChunkElems, histChunk: opts.ChunkElems, progress: progress, floatOnly: hooks.floatOnly, histMin: hooks.histMin, fusedChunks: hooks.fused}
	if d.histMin == 0 {
		d.histMin = minHistElems
	}
	if d.chunk <= 0 {
		d.chunk = 1 << 16 // both sides' values stay in the core's cache
		// The fast path keeps 4 to 6 bytes per element, not 16: larger
		// reads cost fewer calls (2.7 s instead of 3.1 s for the full
		// Phi-3.5 diff on 2 cores), as long as the goroutines together
		// keep few of them.
		d.histChunk = work.Share(histBudget, int(d.workers), 1<<16, 1<<18)
	}
	d.bufs = make([]diffBufs, d.workers)
	return d
}

// releaseBatch is the elements whose mapped pages leave memory at once.
const releaseBatch = 1 << 22

// differ compares tensors chunk by chunk on several goroutines.
type differ struct {
	workers   work.Workers
	chunk     int
	histChunk int // elements at a time on the fast path
	progress  func(int64)
	bufs      []diffBufs // per goroutine
	floatOnly bool       // no fast path: for tests
	histMin   int64      // the fast path's smallest tensor
	// fusedChunks, when set, counts the chunks of the fused path.
	fusedChunks *atomic.Int64
}

type diffBufs struct {
	a, b       []float64
	rawA, rawB []byte
	ka, kb     []uint16 // the fast path's keys
	hist       *pairHist
	tab        *table       // the fused path's table of a row
	mag        [256]float32 // the fused path's magnitudes of a row (AVX-512)
}

// faulted returns err, from reading a mapping of a's or b's files, naming
// the file that changed since it was opened (cut short), or both sides'
// when none did.
func faulted(a, b *qins.Logical, err error) error {
	for _, t := range []*format.Tensor{a.Plain, a.Codes, a.Signs, b.Plain, b.Codes, b.Signs} {
		if t != nil && t.File.Unchanged() != nil {
			return &format.Error{Path: t.File.Path, Tensor: a.Name, Err: err}
		}
	}
	return &format.Error{Path: storedPath(a) + " or " + storedPath(b), Tensor: a.Name, Err: err}
}

// storedPath returns the file holding l's data (its codes when encoded).
func storedPath(l *qins.Logical) string {
	if l.Codes != nil {
		return l.Codes.File.Path
	}
	return l.Plain.File.Path
}

// tensor compares a and b, of the same shape. The chunks' sums are merged
// in chunk order, so the result does not depend on scheduling.
func (d *differ) tensor(ctx context.Context, a, b *qins.Logical) (*Accumulator, error) {
	if bitsOnly(a.DType) { // and b's, the same
		return d.bitsTensor(ctx, a, b)
	}
	sa, err := qins.NewSource(a)
	if err != nil {
		return nil, err
	}
	sb, err := qins.NewSource(b)
	if err != nil {
		return nil, err
	}
	n := int64(a.Elements())
	// With AVX-512 the fused path is faster than the pair counts (full
	// size, per tensor: 2.3-2.5 s against 5.2-6.1 s); in Go it is slower
	// (11.4 s against 4.9 s), and with AVX2 alone it was not measured.
	if !d.floatOnly && n >= d.histMin && keyed(a) && keyed(b) && !(avx512 && fusable(sa, sb, a, b)) {
		if acc, err := d.histTensor(ctx, sa, sb, n); acc != nil || err != nil {
			return acc, err
		}
	}
	step := int64(d.chunk)
	parts := make([]Accumulator, (n+step-1)/step)
	exactBytes := !a.DType.ReadsFloat() // integers: compare the bytes too
	fused := !d.floatOnly && fusable(sa, sb, a, b)
	plain, enc, swap := sa, sb, false
	if fused && sa.Tabled() {
		plain, enc, swap = sb, sa, true
	}
	// The fused path reads the files' mappings, whose pages count as the
	// process's memory: those of the chunks done leave it, in batches
	// (a call per chunk would cost more than the chunk).
	rel := work.NewReleases(n, step, releaseBatch, func(off, m int64) {
		plain.Release(off, m)
		enc.Release(off, m)
	})
	err = d.workers.Each(ctx, n, step, func(_ context.Context, w int, off, m int64) error {
		buf := &d.bufs[w]
		if fused {
			p := &parts[off/step]
			ok, err := fusedChunk(plain, enc, swap, off, m, buf, p)
			rel.Done(off)
			if errors.Is(err, format.ErrMappingFault) {
				return faulted(a, b, err)
			}
			if err != nil {
				return err
			}
			if ok {
				if d.fusedChunks != nil {
					d.fusedChunks.Add(1)
				}
				d.progress(sa.BytesOf(off, m) + sb.BytesOf(off, m))
				return nil
			}
		}
		if buf.a == nil {
			buf.a, buf.b = make([]float64, step), make([]float64, step)
		}
		ra, err := sa.Values(off, m, buf.a, &buf.rawA)
		if err != nil {
			return err
		}
		rb, err := sb.Values(off, m, buf.b, &buf.rawB)
		if err != nil {
			return err
		}
		p := &parts[off/step]
		p.maxIdx = -1
		p.Add(buf.a[:m], buf.b[:m], off)
		if exactBytes {
			// Integers beyond 2^53 can be equal as float64 and differ as
			// stored: count what is identical as stored.
			p.identical = identicalElems(ra, rb, int(a.DType.Size()))
		}
		d.progress(sa.BytesOf(off, m) + sb.BytesOf(off, m))
		return nil
	})
	return merged(parts, err)
}

// merged returns the sum of the parts of a tensor, in their order, or err.
func merged(parts []Accumulator, err error) (*Accumulator, error) {
	if err != nil {
		return nil, err
	}
	total := NewAccumulator()
	for i := range parts {
		total.Merge(&parts[i])
	}
	return total, nil
}

// bitsTensor compares two stored tensors of a dtype in bitsOnly, chunk by
// chunk: how many elements have the same bits.
func (d *differ) bitsTensor(ctx context.Context, a, b *qins.Logical) (*Accumulator, error) {
	ta, tb := *a.Plain, *b.Plain // a dtype in bitsOnly is never encoded
	width := int(a.DType.Bits())
	n := int64(ta.Bytes())
	// 24 bytes hold whole elements of every width: 48 F4, 32 F6, 3 C64.
	step := max(24, int64(d.chunk)/24*24)
	parts := make([]Accumulator, (n+step-1)/step)
	err := d.workers.Each(ctx, n, step, func(_ context.Context, w int, off, m int64) error {
		buf := &d.bufs[w]
		buf.rawA, buf.rawB = slices.Grow(buf.rawA[:0], int(m))[:m], slices.Grow(buf.rawB[:0], int(m))[:m]
		if _, err := ta.Section().ReadAt(buf.rawA, off); err != nil {
			return ta.Err(err)
		}
		if _, err := tb.Section().ReadAt(buf.rawB, off); err != nil {
			return tb.Err(err)
		}
		p := &parts[off/step]
		p.maxIdx = -1
		p.n = uint64(m * 8 / int64(width))
		p.identical = identicalBits(buf.rawA, buf.rawB, width)
		d.progress(2 * m)
		return nil
	})
	return merged(parts, err)
}

// identicalBits counts the elements of width bits that are equal in a and
// b. Sub-byte elements are read least significant bits first: for F4 the
// count does not depend on the packing order, for F6 it is a convention.
func identicalBits(a, b []byte, width int) uint64 {
	if width%8 == 0 {
		return identicalElems(a, b, width/8)
	}
	field := func(x []byte, p int) uint16 {
		v := uint16(x[p/8])
		if p/8+1 < len(x) {
			v |= uint16(x[p/8+1]) << 8
		}
		return v >> (p % 8) & (1<<width - 1)
	}
	var n uint64
	for p := 0; p+width <= 8*len(a); p += width {
		if field(a, p) == field(b, p) {
			n++
		}
	}
	return n
}

// identicalElems counts the elements of size bytes that are equal in a and b.
func identicalElems(a, b []byte, size int) uint64 {
	var n uint64
	for i := 0; i+size <= len(a); i += size {
		if bytes.Equal(a[i:i+size], b[i:i+size]) {
			n++
		}
	}
	return n
}

// Worst returns up to n tensors, the furthest apart first: by relative
// RMSE, then by max_abs_err.
func (r *Report) Worst(n int) []Tensor {
	key := func(t *Tensor) float64 {
		switch v := float64(t.RelRMSE); {
		case !math.IsNaN(v):
			return v
		case t.Exact: // compared by bits, all equal
			return -1
		}
		return math.Inf(1)
	}
	// Sort indices, not the tensors: a report may hold a million.
	idx := make([]int32, len(r.Tensors))
	for i := range idx {
		idx[i] = int32(i)
	}
	sort.SliceStable(idx, func(i, j int) bool {
		a, b := &r.Tensors[idx[i]], &r.Tensors[idx[j]]
		ka, kb := key(a), key(b)
		if ka != kb {
			return ka > kb
		}
		return a.MaxAbsErr > b.MaxAbsErr
	})
	if n >= 0 && len(idx) > n {
		idx = idx[:n]
	}
	ts := make([]Tensor, len(idx))
	for k, i := range idx {
		ts[k] = r.Tensors[i]
	}
	return ts
}
