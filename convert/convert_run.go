package convert

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/qins-dev/qins/convert/internal/work"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// convertFile is the work of converting a checkpoint, or a part of one,
// into one QINS file: its plan lays the file out, and returns the run.
type convertFile struct {
	c       *format.Checkpoint
	opts    *Options
	sel     *selection
	limit   int    // of the header
	version string // the format version, the whole checkpoint's
}

var _ fileWork = (*convertFile)(nil)

// converter writes the tensors of a planned QINS file: it runs the jobs'
// steps on the goroutines of a command, each reading, encoding and
// writing its own chunks.
type converter struct {
	c    *format.Checkpoint
	opts *Options
	jobs []job

	workers  work.Workers
	w        *format.Writer
	chunk    int
	progress func(int64)
	packed   bool // the packed layout
	mse      bool // log_min chosen for the least squared error
	rows     bool // one range per row (rows.go)
	rational bool // the rational codec
	// onePass: encoding needs no range pass (the rational codec with a
	// given alpha, per tensor); rats are its encoders by dtype.
	onePass  bool
	rats     map[dtype.DType]*quant.RationalEncoder
	i8       bool // the i8 layout of the log codec
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
	// rat encodes a tensor of the rational codec, instead of enc; alpha
	// is its parameter.
	rat   *quant.RationalEncoder
	alpha float32
	// i8 encodes a tensor in the i8 layout, instead of enc.
	i8 *quant.I8Encoder
}

// workerBufs are one goroutine's buffers; what a step writes is placed
// in them by format.Writer.Buffer.
type workerBufs struct {
	in    []byte
	codes []byte
	signs []byte // or their bits in the packed layout
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

// run converts every job into w, then sets the metadata of the encoded
// tensors and counts them in s.
func (cv *converter) run(ctx context.Context, w *format.Writer, progress func(int64), s *Summary) error {
	opts := cv.opts
	cv.w, cv.progress = w, progress
	cv.workers = work.ForWriting(opts.Workers)
	cv.chunk = cv.workers.ChunkSize(opts.ChunkBytes, cv.c)
	cv.packed = opts.Layout == qins.LayoutPacked
	cv.mse = opts.Range == qins.RangeMSE
	cv.rational = opts.Codec == qins.CodecRational
	cv.i8 = opts.Layout == qins.LayoutI8
	if cv.rational {
		cv.mse = opts.Alpha == 0 // the alpha of the least squared error
	}
	cv.rows = opts.Granularity == qins.GranularityRow
	cv.onePass = cv.rational && !cv.mse && !cv.rows
	steps, states, err := cv.schedule(ctx)
	if err != nil {
		return err
	}
	bufs := make([]workerBufs, cv.workers)
	err = cv.workers.Each(ctx, int64(len(steps)), 1, func(ctx context.Context, wk int, k, _ int64) error {
		s := steps[k]
		return cv.do(ctx, &cv.jobs[s.job], &states[s.job], s, wk, &bufs[wk])
	})
	if err != nil {
		return err
	}
	return cv.finish(ctx, states, s)
}

// schedule returns the steps of the jobs, in the order they are to run,
// and the state of each job. Encoding needs two passes over a tensor, the
// second after the first is complete; to keep the cores and the disk
// busy, the range pass of each tensor runs while the previous one is
// being encoded and written.
func (cv *converter) schedule(ctx context.Context) ([]step, []tensorState, error) {
	jobs := cv.jobs
	states := make([]tensorState, len(jobs))
	steps := make([]step, 0, countSteps(jobs, cv.stepBytes))
	chunks := func(i, pass int, stepBytes int64) {
		size := jobs[i].src.Section().Size()
		for off := int64(0); off < size; off += stepBytes {
			steps = append(steps, step{i, pass, off, min(stepBytes, size-off)})
		}
	}
	pending := -1 // the encoded tensor whose encode steps come next
	for i := range jobs {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		j, st := &jobs[i], &states[i]
		if j.encode && cv.rows {
			st.encodeState = &encodeState{}
			sb := cv.rowStepBytes(j)
			st.nWrite = (j.src.Section().Size() + sb - 1) / sb
			if st.nWrite == 0 {
				// No step: rows of no elements (a last dimension of 0),
				// each of range (0, 0), as an empty tensor has.
				if err := cv.emptyRows(ctx, j); err != nil {
					return nil, nil, err
				}
			}
			chunks(i, passRows, sb)
			continue
		}
		sb := cv.stepBytes(j)
		n := (j.src.Section().Size() + sb - 1) / sb
		if !j.encode {
			st.nWrite = n
			chunks(i, passCopy, sb)
			continue
		}
		if cv.onePass {
			if err := cv.prepareOnePass(j, st); err != nil {
				return nil, nil, err
			}
			st.nWrite = n
			chunks(i, passEncode, sb)
			continue
		}
		st.encodeState = &encodeState{}
		st.nScan, st.nWrite = n, n
		st.scans = make([]*quant.Scanner, cv.workers)
		st.ready = make(chan struct{})
		if n == 0 {
			if err := cv.prepare(j, st); err != nil {
				return nil, nil, err
			}
		}
		if pending < 0 {
			chunks(i, passScan, sb)
		} else {
			steps = interleave(steps, i, sb, j.src.Section().Size(), pending, cv.stepBytes(&jobs[pending]), jobs[pending].src.Section().Size())
		}
		pending = i
	}
	if pending >= 0 {
		chunks(pending, passEncode, cv.stepBytes(&jobs[pending]))
	}
	return steps, states, nil
}

// interleave appends the scan steps of job i (of sb bytes, si in all)
// merged with the encode steps of job pending (of pb bytes, sp in all),
// each at its share of the way: the scans only read and the encodes
// write, so the disk keeps writing while the next tensor is scanned
// instead of waiting for the whole scan. Every scan step of a job still
// comes before all of its encode steps, which wait for the last of them.
func interleave(steps []step, i int, sb, si int64, pending int, pb, sp int64) []step {
	n, m := (si+sb-1)/sb, (sp+pb-1)/pb
	var a, b int64
	for a < n || b < m {
		// Scan step a sits at a/n of the way, encode step b at b/m; a
		// scan goes first on a tie.
		if a < n && (b == m || a*m <= b*n) {
			steps = append(steps, step{i, passScan, a * sb, min(sb, si-a*sb)})
			a++
			continue
		}
		steps = append(steps, step{pending, passEncode, b * pb, min(pb, sp-b*pb)})
		b++
	}
	return steps
}

// stepBytes returns the source bytes of the steps of j: a chunk, of whole
// elements and whole bytes of sign bits when encoded.
func (cv *converter) stepBytes(j *job) int64 {
	if !j.encode {
		return int64(cv.chunk)
	}
	size := int64(j.src.DType.Size())
	return max(8, int64(cv.chunk)/size/8*8) * size
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

// finish sets the metadata of the encoded tensors, with their final
// ranges, and counts the jobs in s.
func (cv *converter) finish(ctx context.Context, states []tensorState, s *Summary) error {
	e := cv.opts.encoding()
	for i := range cv.jobs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		j := &cv.jobs[i]
		s.FP32Bytes += fp32Bytes(j.src.TensorInfo)
		if !j.encode {
			s.Copied++
			if !j.src.DType.IsFloat() {
				s.kept(j.src.DType.String())
			}
			continue
		}
		p := states[i].params
		if cv.rows {
			p = states[i].env.p
		}
		alpha := float64(states[i].alpha)
		hi := alpha
		if cv.rational && cv.rows {
			alpha, hi = states[i].env.alphas()
		}
		cv.w.SetMetadata(qins.ParamsKey(j.src.Name), encodedMeta(p, alpha, j.src.DType, e))
		if cv.rational {
			s.alpha(alpha, hi, cv.mse, cv.rows)
		}
		s.Encoded++
		n := int64(j.src.Elements())
		s.EncodedElems += n
		s.EncodedBytes += int64(e.EncodedBytes(j.src.Shape))
		if cv.rows {
			r := e.Stored(qins.PartRanges, "", j.src.Shape)
			b, _ := r.DType.Bytes(r.Elements())
			s.RangeBytes += int64(b)
		}
		if !cv.packed && !cv.rational && !cv.i8 && j.src.DType.Size() == 2 {
			s.packedSaving += n - int64(qins.SignBytes(uint64(n)))
		}
	}
	return nil
}

// do runs one step on goroutine w.
func (cv *converter) do(ctx context.Context, j *job, st *tensorState, s step, w int, b *workerBufs) error {
	t := *j.src
	if s.pass == passEncode {
		// The range pass of this tensor was scheduled before any of its
		// encode steps, so it only has steps in progress left.
		select {
		case <-st.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var err error
	if m := t.Mapped(); m != nil && s.pass != passCopy {
		// The passes that compute from their bytes read them in place
		// from the file's mapping, where there is one: half the CPU of a
		// copy.
		err = cv.mapped(j, m[s.off:s.off+s.n], func(in []byte) error {
			switch s.pass {
			case passScan:
				return cv.scan(j, st, in, s, w)
			case passEncode:
				return cv.encode(j, st, in, s.off, b)
			}
			// passRows: the codes, one byte per element, placed at
			// their offset in the output.
			size := int64(t.DType.Size())
			codes := cv.w.Buffer(grown(&b.codes, s.n/size), int(s.n/size), j.out, s.off/size)
			return cv.encodeRows(j, st, in, codes, s.off, b)
		})
		if err != nil || s.pass == passScan {
			return err
		}
	} else {
		// The copies and the per-row codes (over the source) are written
		// from in: placed at their offset in the output.
		at := s.off
		if s.pass == passRows {
			at /= int64(t.DType.Size())
		}
		in := cv.w.Buffer(grown(&b.in, max(int64(cv.chunk), s.n)), int(s.n), j.out, at)
		if _, err := t.Section().ReadAt(in, s.off); err != nil {
			return t.Err(err)
		}
		switch s.pass {
		case passCopy:
			err = cv.w.WriteAt(j.out, in, s.off)
		case passScan:
			return cv.scan(j, st, in, s, w)
		case passEncode:
			err = cv.encode(j, st, in, s.off, b)
		case passRows:
			err = cv.encodeRows(j, st, in, in, s.off, b)
		}
		if err != nil {
			return err
		}
	}
	done := s.n
	if s.pass == passEncode && !cv.onePass {
		done -= s.n / 2 // the scan pass reported the other half
	}
	cv.progress(done)
	if st.written.Add(1) == st.nWrite {
		cv.w.StartWriteback(j.out)
		if j.encode {
			st.enc, st.rat, st.i8 = nil, nil, nil // their tables (32 KB, 160 KB for F32; 64 KB); every step of the tensor is done
			if j.signs >= 0 {
				cv.w.StartWriteback(j.signs)
			}
		}
	}
	return nil
}

// mapped runs f on in, bytes of the source's mapping, which it releases
// after: a file cut short meanwhile is an error, not a crash.
func (cv *converter) mapped(j *job, in []byte, f func([]byte) error) (err error) {
	defer j.src.File.Release(in)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			err = j.src.Err(format.ErrMappingFault)
		}
	}()
	return f(in)
}

// scan runs the range pass on the chunk in of step s, and prepares the
// tensor's encoder after its last scan step.
func (cv *converter) scan(j *job, st *tensorState, in []byte, s step, w int) error {
	t := *j.src
	size := int64(t.DType.Size())
	if st.scans[w] == nil {
		var err error
		if st.scans[w], err = cv.scanners.get(t.DType, cv.mse); err != nil {
			return t.Err(err)
		}
	}
	st.scans[w].Scan(in, s.off/size)
	cv.progress(s.n / 2)
	if st.scanned.Add(1) == st.nScan {
		return cv.prepare(j, st)
	}
	return nil
}

// encode encodes the chunk in at source byte offset off with the tensor's
// encoder, and writes its codes and signs.
func (cv *converter) encode(j *job, st *tensorState, in []byte, off int64, b *workerBufs) error {
	size := int64(j.src.DType.Size())
	k, first := len(in)/int(size), off/size
	codes := cv.w.Buffer(grown(&b.codes, int64(k)), k, j.out, first)
	if cv.onePass {
		if err := cv.encodeChecked(j, st, in, first, codes); err != nil {
			return err
		}
		return cv.w.WriteAt(j.out, codes, first)
	}
	if st.rat != nil {
		st.rat.Encode(in, codes)
		return cv.w.WriteAt(j.out, codes, first)
	}
	if st.i8 != nil {
		st.i8.Encode(in, quant.Int8s(codes))
		return cv.w.WriteAt(j.out, codes, first)
	}
	n, at := k, first
	if cv.packed {
		n, at = (k+7)/8, first/8
	}
	out := cv.w.Buffer(grown(&b.signs, int64(k)), n, j.signs, at)
	if cv.packed {
		st.enc.EncodePacked(in, codes, out)
	} else {
		st.enc.Encode(in, codes, quant.Int8s(out))
	}
	if err := cv.w.WriteAt(j.out, codes, first); err != nil {
		return err
	}
	return cv.w.WriteAt(j.signs, out, at)
}

// grown returns buf, reallocated empty when its capacity is under n: the
// steps of a tensor are alike, so it grows to a whole step at once.
func grown(buf *[]byte, n int64) *[]byte {
	if int64(cap(*buf)) < n {
		*buf = make([]byte, 0, n)
	}
	return buf
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
			return t.Err(err)
		}
	}
	if cv.rational {
		err := cv.prepareRational(scan, t, st.encodeState)
		cv.scanners.put(scan)
		if err != nil {
			return err
		}
		close(st.ready)
		return nil
	}
	params := scan.Params
	if cv.mse {
		params = scan.MSEParams
		if cv.i8 {
			params = func() (quant.Params, error) { return scan.MSEParamsLevels(quant.Levels7) }
		}
	}
	p, err := params()
	if err != nil {
		return t.Err(err)
	}
	if cv.i8 {
		enc, err := quant.NewI8Encoder(t.DType, p)
		if err != nil {
			return t.Err(err)
		}
		st.i8, st.params = enc, p
		cv.scanners.put(scan)
		close(st.ready)
		return nil
	}
	st.enc, st.params = scan.EncoderFor(p), p
	cv.scanners.put(scan)
	close(st.ready)
	return nil
}

// prepareOnePass makes the state of a tensor that takes no range pass:
// the rational encoder of Options.Alpha, one per dtype for all tensors.
func (cv *converter) prepareOnePass(j *job, st *tensorState) error {
	t := *j.src
	a := float32(cv.opts.Alpha)
	if err := quant.CheckRationalAlpha(float64(a), t.DType); err != nil {
		return t.Err(err)
	}
	enc := cv.rats[t.DType]
	if enc == nil {
		var err error
		if enc, err = quant.NewRationalEncoder(t.DType, a); err != nil {
			return t.Err(err)
		}
		if cv.rats == nil {
			cv.rats = make(map[dtype.DType]*quant.RationalEncoder)
		}
		cv.rats[t.DType] = enc
	}
	ready := make(chan struct{})
	close(ready)
	st.encodeState = &encodeState{ready: ready, rat: enc, alpha: a}
	return nil
}

// checkBlock is the piece encodeChecked checks and then encodes, small
// enough to be read again from the core's cache.
const checkBlock = 64 << 10

// encodeChecked encodes the chunk in, whose first element is element
// first of the tensor, into codes with the tensor's rational encoder, and
// refuses a NaN or an infinity in it as the range pass would.
func (cv *converter) encodeChecked(j *job, st *tensorState, in []byte, first int64, codes []uint8) error {
	t := *j.src
	sc, err := cv.scanners.get(t.DType, false)
	if err != nil {
		return t.Err(err)
	}
	defer cv.scanners.put(sc)
	size := int(t.DType.Size())
	for off := 0; off < len(in); off += checkBlock {
		b := in[off:min(off+checkBlock, len(in))]
		sc.Scan(b, first+int64(off/size))
		st.rat.Encode(b, codes[off/size:])
	}
	if _, err := sc.Params(); err != nil {
		return t.Err(err)
	}
	return nil
}

// prepareRational makes the rational encoder of a scanned tensor t, with
// Options.Alpha or the alpha of the least squared error.
func (cv *converter) prepareRational(scan *quant.Scanner, t format.Tensor, st *encodeState) error {
	if _, err := scan.Params(); err != nil { // a NaN or an infinity
		return t.Err(err)
	}
	a := float32(cv.opts.Alpha)
	if cv.mse {
		var err error
		if a, err = scan.RationalAlpha(); err != nil {
			return t.Err(err)
		}
	}
	if err := quant.CheckRationalAlpha(float64(a), t.DType); err != nil {
		return t.Err(err)
	}
	enc, err := quant.NewRationalEncoder(t.DType, a)
	if err != nil {
		return t.Err(err)
	}
	st.rat, st.alpha = enc, a
	return nil
}
