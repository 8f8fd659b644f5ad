package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/qins-dev/qins/format/dtype"
)

// RowCoder finds the log range of each row of a tensor and encodes the row
// with it: the per-row granularity, where a row is a run of the last
// dimension. A row's range follows the rules of a tensor's (see Magnitudes),
// and is rounded to float32 as the file stores it (see StoredRange), so that
// every code is the formula's with the stored range. A RowCoder is not safe
// for concurrent use; each goroutine makes its own.
type RowCoder struct {
	dt   dtype.DType
	size int
	read func([]byte, []float64)
	vals []float64 // F32 and F64: the row's values
	// F32 and F64: the logarithms of the row's magnitudes (see rowLogs).
	logs       []float64
	logs32     []float32
	lgLo, lgHi float64
	tiny       int
	alt        []uint8 // mse: the min/max range's codes
	hist       rowHist
	// 16-bit: the dtype's shared tables, and this coder's scratch.
	tab    *tables16
	toF32  func(uint16) float32
	expAll uint16
	tinyH  uint16 // the largest pattern <= Tiny
	tables [2]*codeTable
	counts *[1 << 15]uint32  // mse: the row's count of each pattern, zero between rows
	sums   *[48 * 128]uint32 // mse, BF16: bucketSumsFast's sums
	dist   *distinct16       // mse on rows of at most ExactRowMax
	spread *spread16         // mse on longer rows spread wide
	// The i8 form: its code tables, and the row's distinct magnitudes.
	tables7 [2]*codeTable
	mcodes  []uint8 // a row's magnitude codes and signs
	msigns  []int8
	keys    []uint16
	mags    []float64
	ns      []float64
}

// NewRowCoder returns a RowCoder for rows of dtype dt, which must be F16,
// BF16, F32 or F64.
func NewRowCoder(dt dtype.DType) (*RowCoder, error) {
	if !dt.IsFloat() {
		return nil, fmt.Errorf("dtype %v cannot be encoded: it is not F16, BF16, F32 or F64", dt)
	}
	read, err := dtype.Reader(dt)
	if err != nil {
		return nil, err
	}
	rc := &RowCoder{dt: dt, size: int(dt.Size()), read: read}
	rc.toF32, rc.expAll = toF32(dt)
	if rc.toF32 != nil {
		rc.tab = shared16(dt)
		rc.tinyH = rc.tab.tinyH
	}
	return rc, nil
}

// StoredRange returns p as a file stores a row's range, in float32:
// log_max rounded down, so that nothing decodes above the row's largest
// magnitude, and log_min rounded to nearest, but not above log_max.
func StoredRange(p Params) Params {
	hi := float32(p.LogMax)
	if float64(hi) > p.LogMax {
		hi = math.Nextafter32(hi, float32(math.Inf(-1)))
	}
	lo := min(float32(p.LogMin), hi)
	return Params{LogMin: float64(lo), LogMax: float64(hi)}
}

// Range returns the stored min/max range of one row, whose first element
// has flat index first, or a *NonFiniteError naming its first NaN or
// infinity.
func (rc *RowCoder) Range(row []byte, first int64) (Params, error) {
	n := len(row) / rc.size
	if rc.toF32 == nil {
		return rangeValues(rc.values(row), first)
	}
	r := NewMagnitudes()
	le := binary.LittleEndian
	var maxM uint16
	minM := uint16(0xffff)
	for i := 0; i < n; i++ {
		m := le.Uint16(row[2*i:]) & 0x7fff
		maxM = max(maxM, m)
		if m > rc.tinyH {
			minM = min(minM, m)
		}
	}
	if maxM >= rc.expAll {
		for i := 0; i < n; i++ {
			if h := le.Uint16(row[2*i:]); h&rc.expAll == rc.expAll {
				return Params{}, &NonFiniteError{Index: first + int64(i), Value: float64(rc.toF32(h))}
			}
		}
	}
	r.addMagnitude(float64(rc.toF32(maxM)))
	if minM != 0xffff {
		r.addMagnitude(float64(rc.toF32(minM)))
	}
	p, err := r.Params()
	return StoredRange(p), err
}

// rangeValues is Range on the values of an F32 or F64 row.
func rangeValues(v []float64, first int64) (Params, error) {
	r := NewMagnitudes()
	r.Add(v, first)
	p, err := r.Params()
	return StoredRange(p), err
}

// values returns the row's values, for F32 and F64.
func (rc *RowCoder) values(row []byte) []float64 {
	n := len(row) / rc.size
	if cap(rc.vals) < n {
		rc.vals = make([]float64, n)
	}
	v := rc.vals[:n]
	rc.read(row, v)
	return v
}

// Encode writes the codes and signs of one row with the stored range p and
// returns p. With mse, it first chooses the row's log_min for the least
// squared error (see MSERange), keeping the min/max range when that is at
// least as good, and returns the range it used. codes and signs must hold
// one entry per element of the row.
func (rc *RowCoder) Encode(row []byte, first int64, mse bool, codes []uint8, signs []int8) (Params, error) {
	n := len(row) / rc.size
	codes, signs = codes[:n], signs[:n]
	if rc.tab != nil {
		return rc.encode16(row[:2*n], first, mse, codes, signs)
	}
	// F32 and F64: the values read once, for every step below.
	v := rc.values(row)
	p0, err := rangeValues(v, first)
	if err != nil {
		return Params{}, err
	}
	Signs(rc.dt, row, signs)
	rc.rowLogs(v)
	if !mse || p0.LogMin == p0.LogMax {
		rc.codes(v, p0, codes, false)
		return p0, nil
	}
	p := rc.modelRangeValues(p0, v)
	if n <= ExactRowMax {
		p = exactMSE(v, p0)
	}
	e := rc.codes(v, p, codes, true)
	if p == p0 {
		return p, nil
	}
	if cap(rc.alt) < n {
		rc.alt = make([]uint8, n)
	}
	alt := rc.alt[:n]
	if e0 := rc.codes(v, p0, alt, true); e0 <= e {
		copy(codes, alt)
		return p0, nil
	}
	return p, nil
}

// rowLogs sets rc.logs and rc.logs32 to the logarithms of the magnitudes
// of an F32 or F64 row's values (rc.values), for codes: ln|x| where |x| is
// above Tiny, else the least of those, whose code codes sets to 255 after
// (0 when there is none); rc.lgLo and rc.lgHi are their least and
// greatest, and rc.tiny counts the elements at or below Tiny.
func (rc *RowCoder) rowLogs(v []float64) {
	n := len(v)
	if cap(rc.logs) < n {
		rc.logs, rc.logs32 = make([]float64, n), make([]float32, n)
	}
	logs, logs32 := rc.logs[:n], rc.logs32[:n]
	lo, hi := math.Inf(1), math.Inf(-1)
	tiny := 0
	for i, x := range v {
		a := math.Abs(x)
		if a <= Tiny {
			tiny++
			continue
		}
		l := math.Log(a) // as Params.Code takes it
		logs[i], logs32[i] = l, float32(l)
		lo, hi = min(lo, l), max(hi, l)
	}
	if tiny == n {
		lo, hi = 0, 0
	}
	for i := 0; tiny > 0 && i < n; i++ {
		if math.Abs(v[i]) <= Tiny {
			logs[i], logs32[i] = lo, float32(lo)
		}
	}
	rc.logs, rc.logs32, rc.lgLo, rc.lgHi, rc.tiny = logs, logs32, lo, hi, tiny
}

// codes writes the codes of an F32 or F64 row with range p, as
// Params.Code gives them, from the logarithms rowLogs found (the code
// kernel on the formula's operations), and with withErr returns the row's
// squared reconstruction error, each value decoded in float64.
func (rc *RowCoder) codes(v []float64, p Params, codes []uint8, withErr bool) float64 {
	if d := p.LogMax - p.LogMin; d == 0 {
		for i := range codes {
			codes[i] = 1 // and 255 at or below Tiny, below
		}
	} else {
		rowCodes16Within(rc.logs, rc.logs32, codes, p.LogMin, d, Levels8, rc.lgLo, rc.lgHi)
	}
	if rc.tiny > 0 {
		for i, x := range v {
			if math.Abs(x) <= Tiny {
				codes[i] = 255
			}
		}
	}
	if !withErr {
		return 0
	}
	var dec [256]float64
	for c := 1; c < 256; c++ {
		dec[c] = p.Magnitude(uint8(c))
	}
	var e float64
	for i, x := range v {
		if a := math.Abs(x); a != 0 {
			d := a - dec[codes[i]]
			e += d * d
		}
	}
	return e
}

// ExactRowMax is the longest row whose log_min Encode chooses by an exact
// search instead of MSERange's model. The model is an expectation over
// many elements; on a short row the error depends on where its few large
// elements fall among the codes, which only the exact error sees, and
// there the search's 160 evaluations of the row cost little.
const ExactRowMax = 512

// exactMSE returns the stored range keeping p0's log_max whose log_min,
// in [p0.LogMin, p0.LogMax], gives the least exact squared error of the
// row of values v, by a coarse-to-fine search (64 candidates, then three
// rounds of 32 around the best); p0 is a candidate.
func exactMSE(v []float64, p0 Params) Params {
	// The magnitudes and their logarithms once; each candidate then costs
	// the formula and one exponential per element (a row this short has
	// fewer elements than codes).
	mags, logs := make([]float64, 0, len(v)), make([]float64, 0, len(v))
	for _, x := range v {
		if a := math.Abs(x); a != 0 {
			mags, logs = append(mags, a), append(logs, math.Log(a))
		}
	}
	return exactSearch(p0, func(p Params) float64 {
		d := p.LogMax - p.LogMin
		var e float64
		for i, a := range mags {
			c := uint8(255)
			switch {
			case a <= Tiny:
			case d == 0:
				c = 1
			default: // Params.Code with the logarithm computed once
				c = uint8(min(max(math.RoundToEven(255-254*(logs[i]-p.LogMin)/d), 1), 255))
			}
			x := a - p.Magnitude(c)
			e += x * x
		}
		return e
	})
}

// rowHist is a row's magnitudes in buckets of an eighth of an octave
// (the top 11 bits of the float32 magnitude): count, sum and sum of
// squares, for MSERange's model.
type rowHist struct {
	n, s1, s2 [1 << 11]float64
}

// bucketEdges holds ln of the lower edge of each bucket of rowHist,
// computed once and only read.
var bucketEdges = sync.OnceValue(func() *[1 << 11]float64 {
	edge := new([1 << 11]float64)
	for b := range edge {
		edge[b] = math.Log(float64(math.Float32frombits(uint32(b) << 20)))
	}
	return edge
})

// MSERange returns the stored range that keeps p0's log_max and chooses
// log_min to minimise the row's modelled squared error, p0 being the row's
// min/max range. The model is the high-resolution one for a logarithmic
// quantiser: an element at or above exp(log_min) is off by a factor
// exp(δ), δ uniform over a code step s = (log_max - log_min)/254, so its
// expected squared error is m² s²/12; an element below clamps to
// exp(log_min) (code 255) and its error is exact. The candidates are
// p0's log_min and the bucket edges above it; Encode then measures the
// exact error of the winner against p0's and keeps the better.
func (rc *RowCoder) MSERange(row []byte, p0 Params) Params {
	if p0.LogMin == p0.LogMax {
		return p0
	}
	if rc.toF32 == nil {
		return rc.modelRangeValues(p0, rc.values(row))
	}
	return rc.modelRange(p0, func(add func(m, w float64)) {
		le := binary.LittleEndian
		for i := 0; i+1 < len(row); i += 2 {
			if m := le.Uint16(row[i:]) & 0x7fff; m != 0 {
				add(float64(rc.toF32(m)), 1)
			}
		}
	})
}

// modelRangeValues is MSERange on the values of an F32 or F64 row.
func (rc *RowCoder) modelRangeValues(p0 Params, v []float64) Params {
	if p0.LogMin == p0.LogMax {
		return p0
	}
	return rc.modelRange(p0, func(add func(m, w float64)) {
		for _, x := range v {
			if x != 0 {
				add(math.Abs(x), 1)
			}
		}
	})
}

// modelRange is MSERange over the non-zero magnitudes visit gives, each
// with its count w.
func (rc *RowCoder) modelRange(p0 Params, visit func(add func(m, w float64))) Params {
	h := &rc.hist
	lo, hi := len(h.n), -1
	visit(func(m, w float64) {
		b := int(math.Float32bits(float32(m)) >> 20)
		h.n[b] += w
		h.s1[b] += w * m
		h.s2[b] += w * m * m
		lo, hi = min(lo, b), max(hi, b)
	})
	return h.pick(p0, lo, hi, Levels8)
}

// pick is modelRange's choice, for a code of the given levels, over the
// buckets [lo, hi] of h, which it empties; hi < lo when the row has no
// non-zero element.
func (h *rowHist) pick(p0 Params, lo, hi, levels int) Params {
	if hi < lo {
		return p0
	}
	var total float64
	for b := lo; b <= hi; b++ {
		total += h.s2[b]
	}
	// e is exp(lmin), the magnitude clamped elements decode to.
	model := func(lmin, e, n, s1, s2 float64) float64 {
		s := (p0.LogMax - lmin) / float64(levels-1)
		return s*s/12*(total-s2) + s2 - 2*e*s1 + e*e*n
	}
	edges := bucketEdges()
	best, bestErr := p0.LogMin, math.Inf(1)
	var n, s1, s2 float64
	for b := lo; b <= hi; b++ {
		edge := edges[b]
		if edge > p0.LogMin && edge < p0.LogMax {
			if e := model(edge, float64(math.Float32frombits(uint32(b)<<20)), n, s1, s2); e < bestErr {
				best, bestErr = edge, e
			}
		}
		n, s1, s2 = n+h.n[b], s1+h.s1[b], s2+h.s2[b]
		h.n[b], h.s1[b], h.s2[b] = 0, 0, 0
	}
	// p0 itself, modelled with nothing clamped but the tiny elements
	// (whose error is the same for every candidate near it).
	if e := model(p0.LogMin, 0, 0, 0, 0); e <= bestErr {
		return p0
	}
	return StoredRange(Params{LogMin: best, LogMax: p0.LogMax})
}
