package quant

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/qins-dev/qins/format/dtype"
)

// The rational codec: one uint8 per weight, the sign inside, and one
// parameter alpha per tensor (see the package documentation).

// RationalCode returns the rational code of w with parameter alpha: the
// formula of the package documentation in float32, evaluated in this
// exact order, with exact zeros and the signs of nonzero weights kept.
// w must not be NaN.
func RationalCode(w float64, alpha float32) uint8 {
	if w == 0 {
		if math.Signbit(w) {
			return 0 // decodes to -0
		}
		return 255 // decodes to +0
	}
	a := float32(math.Abs(w))
	t := float32(alpha * a)
	d := float32(1 + t)
	z := float32(1 / d)
	if w < 0 {
		z = -z
	}
	u := float32(z + 1)
	y := float32(u * 127.5)
	q := math.RoundToEven(float64(y))
	q = min(max(q, 0), 255)
	// Float rounding can put a tiny |z| on 127.5, which rounds to 128:
	// a weight never changes sign.
	if w > 0 {
		q = max(q, 128)
	} else {
		q = min(q, 127)
	}
	return uint8(q)
}

// RationalValue returns the value of code c with parameter alpha, in
// float64: z = c/127.5 - 1, sign(z) * (1 - |z|) / (alpha * |z|). Codes 0 and
// 255 decode to -0 and +0.
func RationalValue(c uint8, alpha float64) float64 {
	z := float64(c)/127.5 - 1
	a := math.Abs(z)
	return math.Copysign((1-a)/(alpha*a), z)
}

// CheckRationalAlpha reports whether alpha is a valid parameter for a
// tensor of dtype dt: finite, above 0, and such that the largest magnitude
// (codes 127 and 128, about 254/alpha) is finite in dt.
func CheckRationalAlpha(alpha float64, dt dtype.DType) error {
	if math.IsNaN(alpha) || math.IsInf(alpha, 0) || alpha <= 0 {
		return fmt.Errorf("alpha %v must be finite and above 0", alpha)
	}
	m := max(RationalValue(128, alpha), -RationalValue(127, alpha))
	inf := math.IsInf(m, 0)
	switch dt {
	case dtype.F32:
		inf = inf || math.IsInf(float64(float32(m)), 0)
	case dtype.F16:
		inf = inf || math.IsInf(float64(dtype.F16ToFloat32(dtype.Float64ToF16(m))), 0)
	case dtype.BF16:
		inf = inf || math.IsInf(float64(dtype.BF16ToFloat32(dtype.Float64ToBF16(m))), 0)
	}
	if inf {
		return fmt.Errorf("alpha %v decodes to %g, beyond the largest %v", alpha, m, dt)
	}
	return nil
}

// NewRationalDecoder returns a Decoder of rational codes with parameter
// alpha, which must be valid (see CheckRationalAlpha): every code 0..255
// is valid, and the sign must be +1 (the sign is inside the code).
func NewRationalDecoder(alpha float64) *Decoder {
	d := new(Decoder)
	d.ResetRational(alpha)
	return d
}

// ResetRational makes d the Decoder of rational codes with parameter
// alpha, which must be valid, keeping its memory: a tensor with one alpha
// per row decodes each row with its own.
func (d *Decoder) ResetRational(alpha float64) {
	d.bad32, d.zeroOK, d.i8 = 0x7fc0dead, true, false
	nan := math.NaN()
	for c := range 256 {
		v := RationalValue(uint8(c), alpha)
		d.f64[0][c], d.f64[1][c], d.f64[2][c] = nan, nan, v
		d.f64r[0][c], d.f64r[1][c], d.f64r[2][c] = nan, nan, float64(float32(v))
		d.f32[0][c], d.f32[1][c], d.f32[2][c] = d.bad32, d.bad32, math.Float32bits(float32(v))
	}
}

// RationalEncoder encodes the elements of a tensor with the rational codec.
// It is safe for concurrent use.
type RationalEncoder struct {
	dt    dtype.DType
	alpha float32
	tab   *byteTable // 16-bit dtypes: the code of each bit pattern
	read  func([]byte, []float64)
}

// NewRationalEncoder returns the encoder of a tensor of dtype dt (F16,
// BF16, F32 or F64) with parameter alpha, which must be finite and above
// 0 (see also CheckRationalAlpha).
func NewRationalEncoder(dt dtype.DType, alpha float32) (*RationalEncoder, error) {
	if !dt.IsFloat() {
		return nil, fmt.Errorf("dtype %v cannot be encoded: it is not F16, BF16, F32 or F64", dt)
	}
	if a := float64(alpha); math.IsNaN(a) || math.IsInf(a, 0) || a <= 0 {
		return nil, fmt.Errorf("alpha %v must be finite and above 0", alpha)
	}
	read, err := dtype.Reader(dt)
	if err != nil {
		return nil, err
	}
	return &RationalEncoder{dt: dt, alpha: alpha, read: read, tab: rationalTable(dt, alpha)}, nil
}

// Alpha returns the encoder's parameter.
func (e *RationalEncoder) Alpha() float32 { return e.alpha }

// Encode writes the codes of the elements in b (whole elements of the
// encoder's dtype) to codes: RationalCode of each. The codes of NaNs are
// unspecified (the range pass refuses them).
func (e *RationalEncoder) Encode(b []byte, codes []uint8) {
	size := int(e.dt.Size())
	n := len(b) / size
	codes, b = codes[:n], b[:n*size]
	switch {
	case e.tab != nil:
		lookup16Fast(e.tab, b, codes)
	case e.dt == dtype.F32:
		rational32Fast(b, e.alpha, codes)
	default:
		var vals [512]float64
		for len(codes) > 0 {
			k := min(len(codes), len(vals))
			e.read(b[:k*size], vals[:k])
			for i, x := range vals[:k] {
				codes[i] = RationalCode(x, e.alpha)
			}
			b, codes = b[k*size:], codes[k:]
		}
	}
}

// rationalTable returns, for a 16-bit dtype, the rational code of each bit
// pattern with parameter alpha, so that encoding is one lookup per
// element; nil for other dtypes. Every value of a 16-bit dtype is a
// float32, coded as F32 values are. NaN and infinities get 0: the range
// pass refuses them first.
func rationalTable(dt dtype.DType, alpha float32) *byteTable {
	to, expAll := toF32(dt)
	if to == nil {
		return nil
	}
	t := new(byteTable)
	const k = 1024
	var vals [4 * k]byte // k float32 values
	for h0 := 0; h0 < 1<<16; h0 += k {
		for i := range k {
			binary.LittleEndian.PutUint32(vals[4*i:], math.Float32bits(to(uint16(h0+i))))
		}
		rational32Fast(vals[:], alpha, t[h0:h0+k])
	}
	for h := range 1 << 16 {
		if uint16(h)&expAll == expAll {
			t[h] = 0
		}
	}
	return t
}

// RationalAlpha returns the alpha, a float32, that minimises the squared
// error of the decoded weights over the scanned values: a search on log
// alpha, first on a grid, then by golden section around the grid's best.
// The error is that of each magnitude counted, as the mean of its error as
// a positive and as a negative weight: exact for 16-bit dtypes (but for
// the sign), measured on the counts' buckets of magnitudes for F32 and
// F64. Alpha keeps the largest magnitude finite in the dtype. A tensor
// with no nonzero element gets alpha 1.
func (s *Scanner) RationalAlpha() (float32, error) {
	if s.counts == nil {
		return 0, errors.New("the rational mse alpha needs a scanner that counts values (NewScanner)")
	}
	p, err := s.Params()
	if err != nil {
		return 0, err
	}
	mags, ns := s.magnitudes()
	if len(mags) == 0 {
		return 1, nil
	}
	var errs alphaErrors
	errs.reset(mags, ns)
	// The least alpha whose largest magnitude is finite in the dtype.
	least := 254 / maxFinite(s.dt) * 1.01
	return searchAlpha(math.Exp(p.LogMax), least, errs.sqErr), nil
}

// searchAlpha returns the float32 alpha of the least sqErr for weights of
// largest magnitude top: a grid of 49 points on log alpha over [0.01,
// 5000] / top, then 40 steps of golden section around the grid's best,
// each candidate exp(x) rounded to float32 within [least, MaxFloat32].
func searchAlpha(top, least float64, sqErr func(float32) float64) float32 {
	alphaAt := func(x float64) float32 {
		return float32(min(max(math.Exp(x), least), math.MaxFloat32))
	}
	lo, hi := math.Log(0.01/top), math.Log(5000/top)
	const steps = 48
	width := (hi - lo) / steps
	best, bestErr := lo, math.Inf(1)
	for k := 0; k <= steps; k++ {
		x := lo + float64(k)*width
		if e := sqErr(alphaAt(x)); e < bestErr {
			best, bestErr = x, e
		}
	}
	// Golden section on [best-width, best+width].
	const g = 0.6180339887498949
	a, b := best-width, best+width
	c, d := b-g*(b-a), a+g*(b-a)
	fc, fd := sqErr(alphaAt(c)), sqErr(alphaAt(d))
	for range 40 {
		if fc < fd {
			b, d, fd = d, c, fc
			c = b - g*(b-a)
			fc = sqErr(alphaAt(c))
		} else {
			a, c, fc = c, d, fd
			d = a + g*(b-a)
			fd = sqErr(alphaAt(d))
		}
	}
	if fc < bestErr {
		best, bestErr = c, fc
	}
	if fd < bestErr {
		best = d
	}
	return alphaAt(best)
}

// alphaErrors gives the squared error of the decoded weights with any
// alpha over a set of distinct magnitudes with counts: each magnitude's
// error is the mean of its error as a positive and as a negative weight.
type alphaErrors struct {
	mags, ns []float64
	// Each magnitude as a positive and as a negative float32 (the
	// magnitudes are float32 values), coded by rational32Fast: the codes
	// are RationalCode's.
	pos, neg []byte
	cp, cn   []uint8
	dec      [256]float64
}

// reset makes e the errors of magnitudes mags (float32 values, at least 0)
// with counts ns, keeping its memory.
func (e *alphaErrors) reset(mags, ns []float64) {
	n := len(mags)
	e.mags, e.ns = mags, ns[:n]
	if cap(e.cp) < n {
		e.pos, e.neg = make([]byte, 4*n), make([]byte, 4*n)
		e.cp, e.cn = make([]uint8, n), make([]uint8, n)
	}
	e.pos, e.neg, e.cp, e.cn = e.pos[:4*n], e.neg[:4*n], e.cp[:n], e.cn[:n]
	for i, m := range mags {
		u := math.Float32bits(float32(m))
		binary.LittleEndian.PutUint32(e.pos[4*i:], u)
		binary.LittleEndian.PutUint32(e.neg[4*i:], u|1<<31)
	}
}

// sqErr returns the squared error with alpha a, which must be finite and
// above 0: the sum over the magnitudes m, in order, of n * (d1*d1 +
// d2*d2) / 2, d1 = m - RationalValue(RationalCode(m, a), a) and d2 the
// same for -m.
func (e *alphaErrors) sqErr(a float32) float64 {
	dec := &e.dec
	for c := range dec {
		dec[c] = RationalValue(uint8(c), float64(a))
	}
	rational32Fast(e.pos, a, e.cp)
	rational32Fast(e.neg, a, e.cn)
	cp, cn, ns := e.cp, e.cn[:len(e.cp)], e.ns[:len(e.cp)]
	var s float64
	for i, m := range e.mags[:len(cp)] {
		d1 := m - dec[cp[i]]
		d2 := -m - dec[cn[i]]
		s += ns[i] * (d1*d1 + d2*d2) / 2
	}
	return s
}

// maxFinite returns the largest value a tensor of dtype dt may decode to:
// finite in dt, and in F32, which every reader decodes to.
func maxFinite(dt dtype.DType) float64 {
	if dt == dtype.F16 {
		return 65504
	}
	return math.MaxFloat32
}
