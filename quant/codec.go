package quant

import (
	"fmt"
	"math"

	"github.com/qins-dev/qins/format/dtype"
)

// Tiny is the magnitude at or below which an element does not take part in
// the log range; such elements get code 255.
const Tiny = 1e-8

// Params are the per-tensor parameters of the code.
type Params struct {
	LogMin float64 `json:"log_min"`
	LogMax float64 `json:"log_max"`
}

// Validate reports whether p can decode: both finite and LogMin <= LogMax.
func (p Params) Validate() error {
	if math.IsNaN(p.LogMin) || math.IsInf(p.LogMin, 0) || math.IsNaN(p.LogMax) || math.IsInf(p.LogMax, 0) {
		return fmt.Errorf("log_min %v and log_max %v must be finite", p.LogMin, p.LogMax)
	}
	if p.LogMin > p.LogMax {
		return fmt.Errorf("log_min %v is greater than log_max %v", p.LogMin, p.LogMax)
	}
	return nil
}

// CheckFinite reports whether every code decodes, with p, to a finite value
// in dtype dt: a range beyond float64's (log_max - log_min overflows), or
// whose largest magnitude rounds to an infinity in dt, decodes to NaN or
// infinities. p must be valid (see Validate).
func (p Params) CheckFinite(dt dtype.DType) error {
	if math.IsInf(p.LogMax-p.LogMin, 0) {
		return fmt.Errorf("log_min %v and log_max %v are too far apart to decode", p.LogMin, p.LogMax)
	}
	// Magnitudes fall as codes rise: code 1 is the largest.
	m := p.Magnitude(1)
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
		return fmt.Errorf("log_max %v decodes to %g, beyond the largest %v", p.LogMax, m, dt)
	}
	return nil
}

// Code returns the code of a magnitude a = |w| >= 0. It is the formula of the
// package documentation, evaluated in this exact order; every faster encoder
// in this package is built from it.
func (p Params) Code(a float64) uint8 {
	if a <= Tiny {
		return 255
	}
	if p.LogMax == p.LogMin {
		return 1
	}
	v := math.RoundToEven(255 - 254*(math.Log(a)-p.LogMin)/(p.LogMax-p.LogMin))
	switch {
	case v < 1: // also catches magnitudes above exp(log_max)
		return 1
	case v > 255:
		return 255
	}
	return uint8(v)
}

// Magnitude returns the decoded magnitude of code c.
func (p Params) Magnitude(c uint8) float64 {
	return math.Exp(p.LogMin + float64(255-int(c))/254*(p.LogMax-p.LogMin))
}

// NonFiniteError reports a NaN or an infinity in a tensor to be encoded.
type NonFiniteError struct {
	Index int64   // flat element index
	Value float64 // the offending value
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("element %d is %v: NaN and infinities cannot be encoded", e.Index, e.Value)
}

// Magnitudes accumulates the magnitudes of a tensor's elements, as float64 values,
// to find its Params.
type Magnitudes struct {
	n      int64   // elements seen
	min    float64 // smallest |w| > Tiny; +Inf before the first
	maxAll float64 // largest |w| of all elements
	bad    *NonFiniteError
}

// NewMagnitudes returns an empty Magnitudes.
func NewMagnitudes() *Magnitudes { return &Magnitudes{min: math.Inf(1)} }

// Add takes elements of the tensor, the first of which has flat index
// first.
func (r *Magnitudes) Add(w []float64, first int64) {
	for i, x := range w {
		a := math.Abs(x)
		if a > math.MaxFloat64 || a != a {
			if r.bad == nil || first+int64(i) < r.bad.Index {
				r.bad = &NonFiniteError{Index: first + int64(i), Value: x}
			}
			continue
		}
		if a > r.maxAll {
			r.maxAll = a
		}
		if a > Tiny && a < r.min {
			r.min = a
		}
	}
	r.n += int64(len(w))
}

// Merge adds what o took to r.
func (r *Magnitudes) Merge(o *Magnitudes) {
	if o.bad != nil && (r.bad == nil || o.bad.Index < r.bad.Index) {
		r.bad = o.bad
	}
	r.n += o.n
	r.addMagnitude(o.maxAll)
	if o.min < r.min {
		r.min = o.min
	}
}

// addMagnitude takes one magnitude known to be finite, without counting it
// as an element; the 16-bit encoders feed their distinct values through it.
func (r *Magnitudes) addMagnitude(a float64) {
	if a > r.maxAll {
		r.maxAll = a
	}
	if a > Tiny && a < r.min {
		r.min = a
	}
}

// Params returns the tensor's parameters, or a *NonFiniteError for the first
// NaN or infinity seen.
func (r *Magnitudes) Params() (Params, error) {
	if r.bad != nil {
		return Params{}, r.bad
	}
	if r.maxAll > Tiny {
		return Params{LogMin: math.Log(r.min), LogMax: math.Log(r.maxAll)}, nil
	}
	if r.maxAll == 0 {
		return Params{}, nil
	}
	l := math.Log(r.maxAll)
	return Params{LogMin: l, LogMax: l}, nil
}

// Sign returns -1, 0 or +1 for x; zero (either sign) gives 0.
func Sign(x float64) int8 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}
