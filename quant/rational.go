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
	d := &Decoder{bad32: 0x7fc0dead, zeroOK: true}
	nan := math.NaN()
	for c := range 256 {
		v := RationalValue(uint8(c), alpha)
		d.f64[0][c], d.f64[1][c], d.f64[2][c] = nan, nan, v
		d.f64r[0][c], d.f64r[1][c], d.f64r[2][c] = nan, nan, float64(float32(v))
		d.f32[0][c], d.f32[1][c], d.f32[2][c] = d.bad32, d.bad32, math.Float32bits(float32(v))
	}
	return d
}

// RationalEncoder encodes the elements of a tensor with the rational codec.
type RationalEncoder struct {
	dt    dtype.DType
	alpha float32
	tab   []uint8 // 16-bit dtypes: the code of each bit pattern
	read  func([]byte, []float64)
	vals  []float64
}

// NewRationalEncoder returns the encoder of a tensor of dtype dt (F16,
// BF16, F32 or F64) with parameter alpha.
func NewRationalEncoder(dt dtype.DType, alpha float32) (*RationalEncoder, error) {
	if !dt.IsFloat() {
		return nil, fmt.Errorf("dtype %v cannot be encoded: it is not F16, BF16, F32 or F64", dt)
	}
	read, err := dtype.Reader(dt)
	if err != nil {
		return nil, err
	}
	code := func(w float64) uint8 { return RationalCode(w, alpha) }
	return &RationalEncoder{dt: dt, alpha: alpha, read: read, tab: patternTable(dt, code)}, nil
}

// Alpha returns the encoder's parameter.
func (e *RationalEncoder) Alpha() float32 { return e.alpha }

// Encode writes the codes of the elements in b (whole elements of the
// encoder's dtype) to codes.
func (e *RationalEncoder) Encode(b []byte, codes []uint8) {
	size := int(e.dt.Size())
	n := len(b) / size
	codes = codes[:n]
	if e.tab != nil {
		for i := range codes {
			codes[i] = e.tab[binary.LittleEndian.Uint16(b[2*i:])]
		}
		return
	}
	if e.dt == dtype.F32 {
		for i := range codes {
			codes[i] = RationalCode(float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))), e.alpha)
		}
		return
	}
	if cap(e.vals) < n {
		e.vals = make([]float64, n)
	}
	v := e.vals[:n]
	e.read(b, v)
	for i, x := range v {
		codes[i] = RationalCode(x, e.alpha)
	}
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
	top := math.Exp(p.LogMax)
	// The least alpha whose largest magnitude is finite in the dtype.
	least := 254 / maxFinite(s.dt) * 1.01
	var dec [256]float64
	sqErr := func(a float32) float64 {
		for c := range dec {
			dec[c] = RationalValue(uint8(c), float64(a))
		}
		var e float64
		for i, m := range mags {
			d1 := m - dec[RationalCode(m, a)]
			d2 := -m - dec[RationalCode(-m, a)]
			e += ns[i] * (d1*d1 + d2*d2) / 2
		}
		return e
	}
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
	for _, x := range []float64{c, d} {
		if e := sqErr(alphaAt(x)); e < bestErr {
			best, bestErr = x, e
		}
	}
	return alphaAt(best), nil
}

// maxFinite returns the largest value a tensor of dtype dt may decode to:
// finite in dt, and in F32, which every reader decodes to.
func maxFinite(dt dtype.DType) float64 {
	if dt == dtype.F16 {
		return 65504
	}
	return math.MaxFloat32
}
