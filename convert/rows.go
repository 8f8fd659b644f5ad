package convert

import (
	"context"
	"encoding/binary"
	"math"
	"sync"

	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"

	"github.com/qins-dev/qins/quant"
)

// With per-row ranges a tensor takes one pass: each step reads whole rows,
// finds each row's range and encodes the row with it at once, and writes
// the rows' ranges to NAME.logrange (or, for the rational codec, the rows'
// alphas to NAME.alpha).

// rowBufs are one goroutine's per-row coders, one per dtype, and its
// buffers: the signs of a step, their bits in the packed layout, and the
// codes of a step's first row.
type rowBufs struct {
	coders map[dtype.DType]*quant.RowCoder
	rats   map[dtype.DType]*quant.RationalRowCoder
	signs  []byte
	bits   []byte
	first  []uint8
}

// grow makes the first row's buffer at least n.
func (r *rowBufs) grow(n int) {
	if len(r.first) < n {
		r.first = make([]uint8, n)
	}
}

func (r *rowBufs) coder(dt dtype.DType) (*quant.RowCoder, error) {
	if rc := r.coders[dt]; rc != nil {
		return rc, nil
	}
	rc, err := quant.NewRowCoder(dt)
	if err != nil {
		return nil, err
	}
	if r.coders == nil {
		r.coders = make(map[dtype.DType]*quant.RowCoder)
	}
	r.coders[dt] = rc
	return rc, nil
}

// rational returns the goroutine's rational row coder of dtype dt.
func (r *rowBufs) rational(dt dtype.DType) (*quant.RationalRowCoder, error) {
	if rc := r.rats[dt]; rc != nil {
		return rc, nil
	}
	rc, err := quant.NewRationalRowCoder(dt)
	if err != nil {
		return nil, err
	}
	if r.rats == nil {
		r.rats = make(map[dtype.DType]*quant.RationalRowCoder)
	}
	r.rats[dt] = rc
	return rc, nil
}

// envelope is the smallest log_min and largest log_max of a tensor's rows,
// which its qins:NAME metadata gives (for the rational codec, the smallest
// and largest alpha), and the tensor's ranges (or alphas) until its last
// step writes them at once: a small write per step would leave a partial
// block of the direct-I/O writer at each end, each an 8 KB buffer for the
// collector.
type envelope struct {
	mu     sync.Mutex
	set    bool
	p      quant.Params
	lo, hi float32 // the rational codec's
	ranges []byte  // 8 bytes per row of the tensor (4 for alphas)
	done   int64   // steps whose rows are in ranges
}

// add merges p, the envelope of a step's rows, into e.
func (e *envelope) add(p quant.Params) {
	e.mu.Lock()
	if !e.set {
		e.p, e.set = p, true
	}
	e.p.LogMin, e.p.LogMax = min(e.p.LogMin, p.LogMin), max(e.p.LogMax, p.LogMax)
	e.mu.Unlock()
}

// addAlphas merges lo and hi, the smallest and largest alpha of a step's
// rows, into e.
func (e *envelope) addAlphas(lo, hi float32) {
	e.mu.Lock()
	if !e.set {
		e.lo, e.hi, e.set = lo, hi, true
	}
	e.lo, e.hi = min(e.lo, lo), max(e.hi, hi)
	e.mu.Unlock()
}

// alphas returns the smallest and largest alpha of the tensor's rows, 1
// for a tensor of no rows.
func (e *envelope) alphas() (float64, float64) {
	if !e.set {
		return 1, 1
	}
	return float64(e.lo), float64(e.hi)
}

// buffer returns the tensor's ranges (or alphas), of n bytes, made on
// first use.
func (e *envelope) buffer(n int64) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ranges == nil {
		e.ranges = make([]byte, n)
	}
	return e.ranges
}

// stepDone counts a step whose rows are in the ranges, and returns the
// ranges when it was the last of steps, else nil.
func (e *envelope) stepDone(steps int64) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.done++
	if e.done < steps {
		return nil
	}
	r := e.ranges
	e.ranges = nil
	return r
}

// rowStepBytes returns the source bytes of a step of whole rows: about a
// chunk, and a multiple of 4096 elements where that costs at most 4 rows
// more (so that the codes of a step fill whole blocks of the direct-I/O
// writer, which otherwise holds the partial ones back), else of 8, so
// that packed sign bits fill whole bytes. A row longer than a chunk makes
// a step of its own (of up to 8 rows).
func (cv *converter) rowStepBytes(j *job) int64 {
	size := int64(j.src.DType.Size())
	n := qins.RowLen(j.src.Shape)
	if n == 0 {
		return int64(cv.chunk)
	}
	q := 4096 / gcd(n, 4096) // rows per multiple of 4096 elements
	if q > 4 {
		q = 8 / gcd(n, 8)
	}
	rows := max(1, int64(cv.chunk)/(n*size)/q) * q
	return rows * n * size
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// encodeRows encodes the whole rows of the chunk in at source byte offset
// off, and writes their codes, signs and ranges. The codes go to out,
// which may be in itself: they overwrite it as they go, row r's over the
// bytes of rows before it (the first row's once it is coded), so a step
// that reads into a buffer needs no codes buffer of its own.
func (cv *converter) encodeRows(j *job, st *tensorState, in, out []byte, off int64, b *workerBufs) error {
	t := *j.src
	size := int64(t.DType.Size())
	rc, err := b.rows.coder(t.DType)
	if err != nil {
		return t.Err(err)
	}
	k := int64(len(in)) / size
	n := qins.RowLen(t.Shape)
	rows := k / n
	codes := out[:k]
	first := off / size
	b.rows.grow(int(n))
	// The signs buffer is of a full chunk, as the per-tensor steps make
	// theirs, rather than of this step's rows: steps of rows of another
	// length would grow it again.
	signs := quant.Int8s((*grown(&b.rows.signs, max(k, int64(cv.chunk)/size)))[:k])
	if j.signs >= 0 && !cv.packed { // written as they are
		signs = quant.Int8s(cv.w.Buffer(&b.rows.signs, int(k), j.signs, first))
	}
	width := int64(8) // bytes of a row's range, or alpha
	if cv.rational {
		width = 4
	}
	ranges := st.env.buffer(width * (t.Section().Size() / size / n))[width*(first/n):][:width*rows]
	le := binary.LittleEndian
	if cv.rational {
		return cv.encodeRationalRows(j, st, in, codes, first, ranges, &b.rows)
	}
	var env quant.Params
	if cv.i8 {
		// One I8 per element, over the source as it goes: row r's codes
		// over bytes of rows before it, the first row's once it is coded.
		out := quant.Int8s(codes)
		for r := int64(0); r < rows; r++ {
			e := (r + 1) * n
			dst := out[r*n : e]
			if r == 0 {
				dst = quant.Int8s(b.rows.first[:n])
			}
			p, err := rc.EncodeI8(in[r*n*size:e*size], first+r*n, cv.mse, dst)
			if err != nil {
				return t.Err(err)
			}
			if r == 0 {
				copy(codes, b.rows.first[:n])
				env = p
			}
			env.LogMin, env.LogMax = min(env.LogMin, p.LogMin), max(env.LogMax, p.LogMax)
			le.PutUint32(ranges[8*r:], math.Float32bits(float32(p.LogMin)))
			le.PutUint32(ranges[8*r+4:], math.Float32bits(float32(p.LogMax)))
		}
		if rows > 0 {
			st.env.add(env)
		}
		if err := cv.w.WriteAt(j.out, codes, first); err != nil {
			return err
		}
		if all := st.env.stepDone(st.nWrite); all != nil {
			return cv.w.WriteAt(j.ranges, all, 0)
		}
		return nil
	}
	for r := int64(0); r < rows; r++ {
		e := (r + 1) * n
		dst := codes[r*n : e]
		if r == 0 {
			dst = b.rows.first[:n]
		}
		p, err := rc.Encode(in[r*n*size:e*size], first+r*n, cv.mse, dst, signs[r*n:e])
		if err != nil {
			return t.Err(err)
		}
		if r == 0 {
			copy(codes, dst)
			env = p
		}
		env.LogMin, env.LogMax = min(env.LogMin, p.LogMin), max(env.LogMax, p.LogMax)
		le.PutUint32(ranges[8*r:], math.Float32bits(float32(p.LogMin)))
		le.PutUint32(ranges[8*r+4:], math.Float32bits(float32(p.LogMax)))
	}
	if rows > 0 {
		st.env.add(env)
	}
	if err := cv.writeRows(j, first, codes, signs, &b.rows); err != nil {
		return err
	}
	if all := st.env.stepDone(st.nWrite); all != nil {
		return cv.w.WriteAt(j.ranges, all, 0)
	}
	return nil
}

// encodeRationalRows is encodeRows for the rational codec: each row's
// alpha and codes, the codes to codes, which may be in (then over the
// source as they go: row r's over bytes of rows before it, the first
// row's once it is coded), the alphas into the tensor's buffer, written
// by its last step.
func (cv *converter) encodeRationalRows(j *job, st *tensorState, in, codes []byte, first int64, alphas []byte, b *rowBufs) error {
	t := *j.src
	size := int64(t.DType.Size())
	rc, err := b.rational(t.DType)
	if err != nil {
		return t.Err(err)
	}
	k := int64(len(in)) / size
	n := qins.RowLen(t.Shape)
	rows := k / n
	codes = codes[:k]
	b.grow(int(n))
	var lo, hi float32
	for r := int64(0); r < rows; r++ {
		e := (r + 1) * n
		dst := codes[r*n : e]
		if r == 0 {
			dst = b.first[:n]
		}
		a, err := rc.Encode(in[r*n*size:e*size], first+r*n, dst)
		if err != nil {
			return t.Err(err)
		}
		if r == 0 {
			copy(codes, dst)
			lo, hi = a, a
		}
		lo, hi = min(lo, a), max(hi, a)
		binary.LittleEndian.PutUint32(alphas[4*r:], math.Float32bits(a))
	}
	if rows > 0 {
		st.env.addAlphas(lo, hi)
	}
	if err := cv.w.WriteAt(j.out, codes, first); err != nil {
		return err
	}
	if all := st.env.stepDone(st.nWrite); all != nil {
		return cv.w.WriteAt(j.ranges, all, 0)
	}
	return nil
}

// emptyRows writes the ranges of an encoded tensor that has no elements,
// which no step writes: zeros, the float32 range (0, 0) of each of its
// rows, when its last dimension is 0 and the others are not (a tensor of
// no rows has no ranges); for the rational codec, alpha 1 for each row. A
// hostile header can give such a tensor many rows; their ranges are
// written in bounded pieces.
func (cv *converter) emptyRows(ctx context.Context, j *job) error {
	size := 8 * qins.Rows(j.src.Shape)
	if cv.rational {
		size = 4 * qins.Rows(j.src.Shape)
	}
	fill := make([]byte, min(size, 1<<16)) // (0, 0) ranges, or alphas 1
	if cv.rational {
		for i := 0; i+4 <= len(fill); i += 4 {
			binary.LittleEndian.PutUint32(fill[i:], math.Float32bits(1))
		}
	}
	for off := int64(0); off < size; off += int64(len(fill)) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := cv.w.WriteAt(j.ranges, fill[:min(int64(len(fill)), size-off)], off); err != nil {
			return err
		}
	}
	return nil
}

// writeRows writes the codes and signs of a step whose first element is
// element first of the tensor, in the output's layout. The source is
// gone (the codes are over it), so the packed layout's exact zeros are
// found by their sign.
func (cv *converter) writeRows(j *job, first int64, codes []uint8, signs []int8, b *rowBufs) error {
	out, at := quant.Int8Bytes(signs), first
	if cv.packed {
		k := len(codes)
		out, at = cv.w.Buffer(grown(&b.bits, int64(k+7)/8), (k+7)/8, j.signs, first/8), first/8
		quant.PackCodes(codes, signs, out)
	}
	if err := cv.w.WriteAt(j.out, codes, first); err != nil {
		return err
	}
	return cv.w.WriteAt(j.signs, out, at)
}
