package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/qins-dev/qins/format/dtype"
)

// The rational codec with one alpha per row (see the package
// documentation): each row's alpha is searched on the row alone, and its
// codes are RationalCode's with it.

// RationalExactRowMax is the longest row whose alpha is searched on its
// exact squared error; longer rows are searched on a model of it, and
// rows up to RationalRefineRowMax then on their exact error at the
// 2*refineSteps alphas 1% apart around the model's pick (see the package
// documentation).
const (
	RationalExactRowMax  = 256
	RationalRefineRowMax = 2048
	refineSteps          = 2
)

// A short row's alpha is searched on a grid of coarseSteps+1 alphas over
// the range, then on grids of 2*denseSteps+1 alphas denseStep apart on
// log alpha around the coarse grid's best few.
const (
	coarseSteps = 96
	denseSteps  = 28
	denseStep   = 0.005
)

// maxOutliers is how many of a long row's largest magnitudes the search
// scores exactly, the largest of the up to maxAbove above the outliers'
// threshold.
const (
	maxOutliers = 8
	maxAbove    = 240
)

// fineX is where the model of a long row's error is taken to hold: up to
// x = alpha*m = 8, where the code's levels are at most 9% apart.
const fineX = 8

// levelNum[c] is (1 - |z|)/|z| for z = c/127.5 - 1: code c decodes to
// ±levelNum[c]/alpha (RationalValue, but for the rounding of its
// operations).
var levelNum = func() (t [256]float64) {
	for c := range t {
		z := math.Abs(float64(c)/127.5 - 1)
		t[c] = (1 - z) / z
	}
	return t
}()

// RationalRowCoder finds each row's alpha and codes the row with it. It is
// not safe for concurrent use: a goroutine takes one of its own.
type RationalRowCoder struct {
	dt    dtype.DType
	size  int
	read  func([]byte, []float64)
	vals  []byte    // the row as little-endian float32 values, from which its codes are made
	f64   []float64 // F64 rows, as read
	codes []uint8   // the exact search's codes of the row
	above []byte    // the row's magnitudes above a threshold, as float32 values with their signs
	out   []byte    // the largest maxOutliers of them, then zeros to a block of 16
	ocode []uint8
	ms    [maxOutliers + 16]float64 // their magnitudes over the row's largest
}

// NewRationalRowCoder returns a row coder for tensors of dtype dt (F16,
// BF16, F32 or F64).
func NewRationalRowCoder(dt dtype.DType) (*RationalRowCoder, error) {
	if !dt.IsFloat() {
		return nil, fmt.Errorf("dtype %v cannot be encoded: it is not F16, BF16, F32 or F64", dt)
	}
	read, err := dtype.Reader(dt)
	if err != nil {
		return nil, err
	}
	return &RationalRowCoder{dt: dt, size: int(dt.Size()), read: read,
		above: make([]byte, 4*(maxAbove+16)), out: make([]byte, 4*(maxOutliers+16)), ocode: make([]uint8, maxOutliers+16)}, nil
}

// Encode codes one row, the whole elements of b, whose first element has
// flat index first: it finds the row's alpha (see the package
// documentation) and writes RationalCode of each element with it to
// codes, which must hold one per element and not overlap b. A NaN or an
// infinity is a *NonFiniteError.
func (rc *RationalRowCoder) Encode(b []byte, first int64, codes []uint8) (float32, error) {
	vals, maxU, err := rc.load(b, first)
	if err != nil {
		return 0, err
	}
	a := rc.alpha(vals, maxU)
	rational32Fast(vals, a, codes[:len(vals)/4])
	return a, nil
}

// load returns the elements of b as little-endian float32 values (the
// float32 each element is coded from: exact but for F64) and the largest
// float32 magnitude's bits, or the first NaN or infinity.
func (rc *RationalRowCoder) load(b []byte, first int64) ([]byte, uint32, error) {
	n := len(b) / rc.size
	var vals []byte
	switch rc.dt {
	case dtype.F32:
		vals = b[:4*n]
	case dtype.F64:
		if cap(rc.f64) < n {
			rc.f64 = make([]float64, n)
		}
		ws := rc.f64[:n]
		rc.read(b, ws)
		for i, w := range ws {
			if math.IsNaN(w) || math.IsInf(w, 0) {
				return nil, 0, &NonFiniteError{Index: first + int64(i), Value: w}
			}
		}
		vals = rc.grow(n)
		for i, w := range ws {
			binary.LittleEndian.PutUint32(vals[4*i:], math.Float32bits(float32(w)))
		}
		mx, _ := minMax32Fast(vals, 0, 0, math.MaxUint32)
		return vals, mx, nil
	default:
		vals = rc.grow(n)
		widen16Fast(rc.dt, b[:2*n], vals)
	}
	mx, _ := minMax32Fast(vals, 0, 0, math.MaxUint32)
	if mx > maxFinite32 {
		for i := range n {
			if u := binary.LittleEndian.Uint32(vals[4*i:]); u&0x7fffffff > maxFinite32 {
				return nil, 0, &NonFiniteError{Index: first + int64(i), Value: float64(math.Float32frombits(u))}
			}
		}
	}
	return vals, mx, nil
}

// grow returns rc.vals for n values.
func (rc *RationalRowCoder) grow(n int) []byte {
	if cap(rc.vals) < 4*n {
		rc.vals = make([]byte, 4*n)
	}
	return rc.vals[:4*n]
}

// alpha returns the alpha of the row of float32 values vals, whose
// largest magnitude has bits maxU.
func (rc *RationalRowCoder) alpha(vals []byte, maxU uint32) float32 {
	n := len(vals) / 4
	if maxU == 0 {
		return 1 // no nonzero element
	}
	top := float64(math.Float32frombits(maxU))
	least := 254 / maxFinite(rc.dt) * 1.01
	if n <= RationalExactRowMax || maxU > maxFinite32 {
		// Short rows, and F64 rows beyond float32's range: the exact
		// error.
		if cap(rc.codes) < n {
			rc.codes = make([]uint8, n)
		}
		codes := rc.codes[:n]
		sqErr := func(a float32) float64 { return rowSqErr(vals, a, codes) }
		return shortAlpha(vals, maxU, min(top, math.MaxFloat32), least, sqErr)
	}
	a := rc.modelAlpha(vals, maxU, top, least)
	if n > RationalRefineRowMax {
		return a
	}
	// Rows of moderate length: the exact error at alphas 1% apart
	// around the model's pick.
	if cap(rc.codes) < n {
		rc.codes = make([]uint8, n)
	}
	codes := rc.codes[:n]
	best, bestErr := a, rowSqErr(vals, a, codes)
	for k := -refineSteps; k <= refineSteps; k++ {
		if k == 0 {
			continue
		}
		c := float32(min(max(float64(a)*math.Exp(float64(k)*0.01), least), math.MaxFloat32))
		if e := rowSqErr(vals, c, codes); e < bestErr {
			best, bestErr = c, e
		}
	}
	return best
}

// shortAlpha searches the alpha of a short row, of float32 values vals,
// largest magnitude top (bits maxU), on its exact squared error sqErr: a
// short row's error is far from smooth in alpha (each element's is least
// where it falls on a level), so a grid of coarseSteps+1 alphas evenly
// spaced on log alpha over [0.01, 5000] / top, then dense grids around
// its three best and around the least of the model of long rows (see
// modelAlpha). Each alpha is a float32 within [least, MaxFloat32].
func shortAlpha(vals []byte, maxU uint32, top, least float64, sqErr func(float32) float64) float32 {
	at := func(a float64) float32 { return float32(min(max(a, least), math.MaxFloat32)) }
	lo, hi := math.Log(0.01/top), math.Log(5000/top)
	var centers [4]float64
	var errs [3]float64
	for i := range errs {
		errs[i] = math.Inf(1)
	}
	for k := 0; k <= coarseSteps; k++ {
		a := math.Exp(lo + float64(k)*(hi-lo)/coarseSteps)
		e := sqErr(at(a))
		for i := range errs { // the three best, in order
			if e < errs[i] {
				errs[i], e, centers[i], a = e, errs[i], a, centers[i]
			}
		}
	}
	n := 3
	if maxU <= maxFinite32 {
		all := sums(vals, float32(1/top))
		centers[n] = sumsRoot(&all) / top
		n++
	}
	best, bestErr := at(centers[0]), errs[0]
	for _, c := range centers[:n] {
		for k := -denseSteps; k <= denseSteps; k++ {
			a := at(c * math.Exp(float64(k)*denseStep))
			if e := sqErr(a); e < bestErr {
				best, bestErr = a, e
			}
		}
	}
	return best
}

// rowSqErr returns the squared error of the row of float32 values vals
// coded with alpha a, codes its scratch: the sum of (|w| - |v|)², v =
// RationalValue(RationalCode(w, a), a) computed as levelNum[c]/a (which
// may differ from it in the last bit), as (a|w| - levelNum[c])² / a².
func rowSqErr(vals []byte, a float32, codes []uint8) float64 {
	rational32Fast(vals, a, codes)
	x := float64(a)
	var e float64
	for i, c := range codes {
		m := float64(math.Float32frombits(binary.LittleEndian.Uint32(vals[4*i:]) & 0x7fffffff))
		d := x*m - levelNum[c]
		e += d * d
	}
	return e / (x * x)
}

// rowSums are power sums of a row's magnitudes m' = m/top: n of them not
// zero, s[k] the sum of m'^k.
type rowSums struct {
	n float64
	s [5]float64
}

// sums returns the power sums of the row of float32 values vals (see
// rowAcc), the lanes added in order in float64.
func sums(vals []byte, inv float32) rowSums {
	var acc rowAcc
	rowSums32Fast(vals, inv, &acc)
	var r rowSums
	for l := range 16 {
		r.n += float64(acc[0][l])
		for k := 1; k < 5; k++ {
			r.s[k] += float64(acc[k][l])
		}
	}
	return r
}

// modelAlpha searches the alpha of a long row on a model of its error.
// Most magnitudes are scored by the expected error of a fine quantiser,
// step² / 12 with the step of the code at that magnitude, which in x =
// alpha*m is (1+x)⁴ / (195075 alpha²) (codes are 2/255 apart in z =
// 1/(1+x)); summed over a row it needs only the row's power sums, and is
// least at the positive root of s4 a⁴ + 2 s3 a³ - 2 s1 a - n (a =
// alpha*top, s the sums of (m/top)^k, n the count of m > 0). The row's
// largest magnitudes above 4 times its root mean square, up to
// maxOutliers of them, are scored exactly when the others' root puts the
// largest beyond x = fineX, where the levels are coarse: on a grid on log
// alpha between the roots with and without them, widened by 2 each way,
// then at every alpha that puts the largest exactly on a coarse level
// within it (its error is least there), then by golden section around the
// best.
// Each candidate is rounded to float32 within [least, MaxFloat32].
func (rc *RationalRowCoder) modelAlpha(vals []byte, maxU uint32, top, least float64) float32 {
	at := func(a float64) float32 { // a = alpha*top
		return float32(min(max(a/top, least), math.MaxFloat32))
	}
	inv := float32(1 / top)
	all := sums(vals, inv)
	aAll := sumsRoot(&all)
	// The outliers: the row's largest magnitudes above 4 times its root
	// mean square (6, 9, ... times when more than the buffer holds), up
	// to maxOutliers of them.
	t := math.Float32bits(float32(4 * top * math.Sqrt(all.s[2]/all.n)))
	k := 0
	for {
		if t >= maxU {
			return at(aAll) // no outliers
		}
		if k = compressAbove32Fast(vals, t, rc.above); k <= maxAbove {
			break
		}
		t = math.Float32bits(math.Float32frombits(t) * 1.5)
	}
	k = largest(rc.above[:4*k], maxOutliers, rc.out)
	// Whole blocks of 16 for the kernel, zeros after the outliers.
	clear(rc.out[4*k:])
	out, ocode := rc.out[:64*((k+15)/16)], rc.ocode[:16*((k+15)/16)]
	ms := rc.ms[:k]
	bulk := all // the sums without the outliers
	for i := range ms {
		m := float64(math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:])&0x7fffffff) * inv)
		ms[i] = m
		m2 := m * m
		bulk.n--
		bulk.s[1] -= m
		bulk.s[2] -= m2
		bulk.s[3] -= m2 * m
		bulk.s[4] -= m2 * m2
	}
	if bulk.n <= 0 {
		return at(aAll)
	}
	for k := range bulk.s { // float32 sums less exact terms: not below 0
		bulk.s[k] = max(bulk.s[k], 0)
	}
	aBulk := sumsRoot(&bulk)
	if aBulk <= fineX {
		// At the others' alpha even the largest magnitude is on the fine
		// levels, where the model holds.
		return at(aAll)
	}
	sqErr := func(a float32) float64 {
		x := float64(a) * top
		s := &bulk.s
		e := (bulk.n/(x*x) + 4*s[1]/x + 6*s[2] + 4*x*s[3] + x*x*s[4]) / 195075
		rational32Fast(out, a, ocode)
		var o float64
		for i, m := range ms {
			d := x*m - levelNum[ocode[i]]
			o += d * d
		}
		return e + o/(x*x)
	}
	lo, hi := min(aAll, aBulk)/2, max(aAll, aBulk)*2
	const steps = 8
	step := math.Pow(hi/lo, 1.0/steps)
	best, bestErr, width := lo, math.Inf(1), step
	for i, a := 0, lo; i <= steps; i, a = i+1, a*step {
		if e := sqErr(at(a)); e < bestErr {
			best, bestErr = a, e
		}
	}
	// ms[0] is the largest (see largest).
	for c := 128; c < 255 && levelNum[c] >= 4; c++ {
		if a := levelNum[c] / ms[0]; a >= lo && a <= hi {
			if e := sqErr(at(a)); e < bestErr {
				best, bestErr, width = a, e, 1.02
			}
		}
	}
	// Golden section on log a within a factor width of the best.
	const g = 0.6180339887498949
	l, r := math.Log(best/width), math.Log(best*width)
	c, d := r-g*(r-l), l+g*(r-l)
	fc, fd := sqErr(at(math.Exp(c))), sqErr(at(math.Exp(d)))
	for range 4 {
		if fc < fd {
			r, d, fd = d, c, fc
			c = r - g*(r-l)
			fc = sqErr(at(math.Exp(c)))
		} else {
			l, c, fc = c, d, fd
			d = l + g*(r-l)
			fd = sqErr(at(math.Exp(d)))
		}
	}
	if fc < bestErr {
		best, bestErr = math.Exp(c), fc
	}
	if fd < bestErr {
		best = math.Exp(d)
	}
	return at(best)
}

// largest writes the n float32 values of vals (little-endian, with their
// signs) of largest magnitude, or all of them if fewer, to out, largest
// first (of equal magnitudes, the first), and returns how many.
func largest(vals []byte, n int, out []byte) int {
	k := 0
	for i := 0; i+4 <= len(vals); i += 4 {
		u := binary.LittleEndian.Uint32(vals[i:])
		j := min(k, n-1)
		if k == n && u&0x7fffffff <= binary.LittleEndian.Uint32(out[4*j:])&0x7fffffff {
			continue
		}
		for ; j > 0 && binary.LittleEndian.Uint32(out[4*j-4:])&0x7fffffff < u&0x7fffffff; j-- {
			binary.LittleEndian.PutUint32(out[4*j:], binary.LittleEndian.Uint32(out[4*j-4:]))
		}
		binary.LittleEndian.PutUint32(out[4*j:], u)
		k = min(k+1, n)
	}
	return k
}

// sumsRoot returns the positive root a of s4 a⁴ + 2 s3 a³ - 2 s1
// a - n, the least error of the model over sums s: the polynomial is
// convex for a > 0 and negative at 0, so Newton's steps from a point where
// it is positive descend to the root.
func sumsRoot(r *rowSums) float64 {
	s, n := &r.s, r.n
	f := func(a float64) (float64, float64) {
		a2 := a * a
		return s[4]*a2*a2 + 2*s[3]*a2*a - 2*s[1]*a - n, 4*s[4]*a2*a + 6*s[3]*a2 - 2*s[1]
	}
	a := 1.0
	for v, _ := f(a); v <= 0 && a < 1e30; v, _ = f(a) {
		a *= 4
	}
	for range 60 {
		v, dv := f(a)
		if v <= 0 || dv <= 0 {
			break
		}
		next := a - v/dv
		if next >= a || next <= 0 {
			break
		}
		a = next
	}
	return a
}
