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
	// levels is Levels8 for the 8-bit code, Params.Code, or Levels7 for
	// the i8 form's 7-bit code, Params.Code7: the same thresholds, fewer.
	levels int
	// thr[c], for c in 1..levels-1, is the smallest magnitude bits whose
	// code is at most c.
	thr [255]uint32
	// start[b] is the code of magnitude bits b<<16, the start of bucket b.
	start [1 << 15]uint8
	// bucket[b] gives the code of any magnitude bits u in bucket b = u>>16
	// with one comparison: start[b] in bits 0-7, and in bits 8-24 the low
	// 16 bits of the threshold inside the bucket, 1<<16 for none. Bit 31
	// marks the buckets that need f.code: two thresholds or more, or
	// non-finite values.
	bucket [1 << 15]uint32
}

// slowBucket marks a bucket whose codes come from f.code.
const slowBucket = 1 << 31

// maxFinite32 is the bits of the largest finite float32.
const maxFinite32 = 0x7f7fffff

func (p Params) code32(u uint32) uint8 { return p.Code(float64(math.Float32frombits(u))) }

// formula returns the code of magnitude bits u by the formula itself.
func (f *f32Coder) formula(u uint32) uint8 {
	if f.levels == Levels7 {
		return uint8(f.p.Code7(float64(math.Float32frombits(u))))
	}
	return f.p.code32(u)
}

// newF32Coder returns the coder of parameters p, which must be valid (see
// Params.Validate): with LogMin > LogMax the codes are not monotonic.
func newF32Coder(p Params) *f32Coder { return newF32CoderLevels(p, Levels8) }

// newF32CoderLevels is newF32Coder for the code of the given levels,
// Levels8 or Levels7.
func newF32CoderLevels(p Params, levels int) *f32Coder {
	f := &f32Coder{p: p, levels: levels}
	for c := 1; c < levels; c++ {
		// maxFinite32+1 stands for no finite magnitude: when log_max is
		// above ln(MaxFloat32), the smallest codes are never reached.
		lo, hi := uint32(0), uint32(maxFinite32+1)
		for lo < hi {
			mid := lo + (hi-lo)/2
			if f.formula(mid) <= uint8(c) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		f.thr[c] = lo
	}
	// Walk the buckets and the thresholds together: the code at u is 1
	// plus the number of thresholds above u.
	c := levels
	for b := range f.start {
		u := uint32(b) << 16
		for c > 1 && u >= f.thr[c-1] {
			c--
		}
		f.start[b] = uint8(c)
	}
	for b := range f.bucket {
		lo, next := uint32(b)<<16, uint32(b+1)<<16
		c := f.start[b]
		e := uint32(c) | 1<<16<<8
		switch {
		case lo > maxFinite32:
			e = slowBucket
		case c > 1 && f.thr[c-1] < next:
			e = uint32(c) | (f.thr[c-1]-lo)<<8
			if c > 2 && f.thr[c-2] < next {
				e = slowBucket
			}
		}
		f.bucket[b] = e
	}
	return f
}

// fast returns the code of magnitude bits u from its bucket, and false
// when the bucket needs f.code.
func (f *f32Coder) fast(u uint32) (uint8, bool) {
	e := f.bucket[u>>16]
	// 1 when the low bits of u reach the threshold.
	ge := ((u & 0xffff) + 1<<17 - (e >> 8 & 0x1ffff)) >> 17 & 1
	return uint8(e) - uint8(ge), e&slowBucket == 0
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
			codes[i] = f.formula(u)
			continue
		}
		codes[i] = f.code(u)
	}
}

// encode32 writes the codes and signs of a chunk of little-endian float32
// values in one pass, the signs as Signs writes them.
func (f *f32Coder) encode32(b []byte, codes []uint8, signs []int8) {
	le := binary.LittleEndian
	n := len(codes)
	b, signs = b[:4*n], signs[:n]
	for i := 0; i < n; {
		i += encode32Fast(&f.bucket, b[4*i:], codes[i:], signs[i:])
		// The kernels stop at a group holding a value of a slow bucket,
		// and before the last few.
		for end := min(i+16, n); i < end; i++ {
			h := le.Uint32(b[4*i:])
			u := h & 0x7fffffff
			nz := int8(min(u, 1))
			signs[i] = nz - 2*nz*int8(h>>31)
			c, ok := f.fast(u)
			if !ok {
				c = f.formula(u)
				if u <= maxFinite32 {
					c = f.code(u)
				}
			}
			codes[i] = c
		}
	}
}
