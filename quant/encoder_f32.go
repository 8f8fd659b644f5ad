package quant

import (
	"encoding/binary"
	"math"
)

// f32Coder gives the codes of float32 magnitudes without a logarithm per
// element. Params.Code is non-increasing in the magnitude, and so in the
// magnitude's bits, which order float32 magnitudes: a code is fixed by
// where the bits fall among 254 thresholds, each found once per tensor by
// a binary search that asks Params.Code itself. (Code is exactly monotonic
// on float32 inputs: neighbouring float32 values are at least 6e-8 apart
// in ln|w|, far more than the float64 rounding of the formula.)
type f32Coder struct {
	p Params
	// thr[c], for c in 1..254, is the smallest magnitude bits whose code
	// is at most c.
	thr [255]uint32
	// start[b] is the code of magnitude bits b<<16, the start of bucket b.
	start [1 << 15]uint8
}

// maxFinite32 is the bits of the largest finite float32.
const maxFinite32 = 0x7f7fffff

func (p Params) code32(u uint32) uint8 { return p.Code(float64(math.Float32frombits(u))) }

// newF32Coder returns the coder of parameters p, which must be valid (see
// Params.Validate): with LogMin > LogMax the codes are not monotonic.
func newF32Coder(p Params) *f32Coder {
	f := &f32Coder{p: p}
	for c := 1; c <= 254; c++ {
		// maxFinite32+1 stands for no finite magnitude: when log_max is
		// above ln(MaxFloat32), the smallest codes are never reached.
		lo, hi := uint32(0), uint32(maxFinite32+1)
		for lo < hi {
			mid := lo + (hi-lo)/2
			if p.code32(mid) <= uint8(c) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		f.thr[c] = lo
	}
	// Walk the buckets and the thresholds together: the code at u is 1
	// plus the number of thresholds above u.
	c := 255
	for b := range f.start {
		u := uint32(b) << 16
		for c > 1 && u >= f.thr[c-1] {
			c--
		}
		f.start[b] = uint8(c)
	}
	return f
}

// code returns the code of magnitude bits u, which must be finite.
func (f *f32Coder) code(u uint32) uint8 {
	c := f.start[u>>16]
	// A bucket spans 65536 float32 values; a few thresholds may fall in it.
	for c > 1 && u >= f.thr[c-1] {
		c--
	}
	return c
}

// codes32 writes the codes of a chunk of little-endian float32 values.
func (f *f32Coder) codes32(b []byte, codes []uint8) {
	le := binary.LittleEndian
	b = b[:4*len(codes)]
	for i := range codes {
		u := le.Uint32(b[4*i:]) & 0x7fffffff
		if u > maxFinite32 {
			// A NaN or an infinity, which a range pass refuses; coded as
			// the formula does.
			codes[i] = f.p.code32(u)
			continue
		}
		codes[i] = f.code(u)
	}
}

// encode32 writes the codes and signs of a chunk of little-endian float32
// values in one pass, the signs as Signs writes them.
func (f *f32Coder) encode32(b []byte, codes []uint8, signs []int8) {
	le := binary.LittleEndian
	b, signs = b[:4*len(codes)], signs[:len(codes)]
	for i := range codes {
		h := le.Uint32(b[4*i:])
		u := h & 0x7fffffff
		nz := int8(min(u, 1))
		signs[i] = nz - 2*nz*int8(h>>31)
		if u > maxFinite32 {
			codes[i] = f.p.code32(u)
			continue
		}
		codes[i] = f.code(u)
	}
}
