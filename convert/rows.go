package convert

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"

	"github.com/qins-dev/qins/format/dtype"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/quant"
)

// With per-row ranges a tensor takes one pass: each step reads whole rows,
// finds each row's range and encodes the row with it at once, and writes
// the rows' ranges to NAME.logrange.

// rowBufs are one goroutine's per-row coders, one per dtype, and the bytes
// of the ranges of a step.
type rowBufs struct {
	coders map[dtype.DType]*quant.RowCoder
	ranges []byte
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

// envelope is the smallest log_min and largest log_max of a tensor's rows,
// which its qins:NAME metadata gives.
type envelope struct {
	mu  sync.Mutex
	set bool
	p   quant.Params
}

func (e *envelope) add(p quant.Params) {
	e.mu.Lock()
	if !e.set {
		e.p, e.set = p, true
	}
	e.p.LogMin, e.p.LogMax = min(e.p.LogMin, p.LogMin), max(e.p.LogMax, p.LogMax)
	e.mu.Unlock()
}

// rowStepBytes returns the source bytes of a step of whole rows: about a
// chunk, and a multiple of 4096 elements where that costs at most 4 rows
// more (so that the codes of a step fill whole blocks of the direct-I/O
// writer, which otherwise holds the partial ones back), else of 8, so
// that packed sign bits fill whole bytes. A row longer than a chunk makes
// a step of its own (of up to 8 rows).
func (cv *converter) rowStepBytes(j *job) int64 {
	size := int64(j.src.DType.Size())
	n := rowLen(j.src.Shape)
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
// off, and writes their codes, signs and ranges.
func (cv *converter) encodeRows(j *job, st *tensorState, in []byte, off int64, b *workerBufs) error {
	t := *j.src
	size := int64(t.DType.Size())
	rc, err := b.rows.coder(t.DType)
	if err != nil {
		return tensorErr(t, err)
	}
	k := int64(len(in)) / size
	n := rowLen(t.Shape)
	rows := k / n
	codes, signs := b.grow(int(k))
	if int64(cap(b.rows.ranges)) < 8*rows {
		b.rows.ranges = make([]byte, 8*rows)
	}
	ranges := b.rows.ranges[:8*rows]
	first := off / size
	le := binary.LittleEndian
	for r := int64(0); r < rows; r++ {
		e := (r + 1) * n
		p, err := rc.Encode(in[r*n*size:e*size], first+r*n, cv.mse, codes[r*n:e], signs[r*n:e])
		if err != nil {
			return tensorErr(t, err)
		}
		st.env.add(p)
		le.PutUint32(ranges[8*r:], math.Float32bits(float32(p.LogMin)))
		le.PutUint32(ranges[8*r+4:], math.Float32bits(float32(p.LogMax)))
	}
	if err := cv.writeCodes(j, in, off, codes, signs, b); err != nil {
		return err
	}
	return cv.w.WriteAt(j.ranges, ranges, 8*(first/n))
}

// eachRow calls fn for each run [a, b) of elements [off, off+m) of an
// encoded tensor, relative to off, that shares one range, with the decoder
// of that range: for a tensor with one range, once, with whole; for a
// per-row tensor, once per row, each with its row's stored range.
func eachRow(l *format.Logical, whole *quant.Decoder, off, m int64, fn func(d *quant.Decoder, a, b int64) error) error {
	if l.Ranges == nil {
		return fn(whole, 0, m)
	}
	n := l.RowLen()
	if m <= 0 || n <= 0 {
		return nil
	}
	r0, r1 := off/n, (off+m-1)/n
	ps := make([]quant.Params, r1-r0+1)
	var raw []byte
	if err := l.RowRanges(r0, ps, &raw); err != nil {
		return err
	}
	d := new(quant.Decoder)
	for r := r0; r <= r1; r++ {
		d.Reset(ps[r-r0])
		if err := fn(d, max(off, r*n)-off, min(off+m, (r+1)*n)-off); err != nil {
			return err
		}
	}
	return nil
}

// decodeErr names the file and tensor of a decoding error of l, unless it
// already names them (a row's range, read by eachRow).
func decodeErr(l *format.Logical, err error) error {
	var fe *format.Error
	if err == nil || errors.As(err, &fe) {
		return err
	}
	return &format.Error{Path: l.Codes.File.Path, Tensor: l.Name, Err: err}
}
