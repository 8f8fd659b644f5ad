package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/qins-dev/qins/format/dtype"
)

// Scanner is the range pass over one tensor held as little-endian bytes of
// its dtype. A tensor can be scanned in chunks by several goroutines, each
// with its own Scanner, merged at the end; Encoder then gives the encoder.
//
// A Scanner from NewRangeScanner keeps only what the min/max range needs:
// the largest magnitude and the smallest above Tiny, which for a float
// dtype are the largest and smallest of the magnitudes' bits. One from
// NewScanner also counts how often each magnitude occurs, which MSEParams
// needs: for 16-bit dtypes the counts are of the 15-bit magnitudes, so they
// give the exact squared error of any log range; for F32 and F64 they are
// of the magnitudes' top 16 bits as float32. The count of magnitude m is
// counts[m] + counts[m|0x8000]: consecutive values go to either half, so
// that equal neighbours do not wait on each other's increment.
type Scanner struct {
	dt     dtype.DType
	size   int
	r      *Magnitudes
	counts *[1 << 16]uint32 // per magnitude or bucket, in two halves; nil for a range scanner
	bad    int64            // 16-bit: first element that is NaN or infinite, or -1
	badVal float64
	toF32  func(uint16) float32
	expAll uint16 // 16-bit: exponent mask; all ones means NaN or infinity
	vals   []float64
	read   func([]byte, []float64)
	// The largest magnitude's bits, and the smallest above Tiny's: for F32,
	// and for 16-bit dtypes in a range scanner. A float's magnitude bits
	// order it.
	maxU, minU uint32
	tinyU      uint32 // the bits of the largest magnitude at or below Tiny
}

// NewScanner returns a Scanner for a tensor of dtype dt, which must be F16,
// BF16, F32 or F64, that counts values for MSEParams.
func NewScanner(dt dtype.DType) (*Scanner, error) {
	s, err := NewRangeScanner(dt)
	if err != nil {
		return nil, err
	}
	s.counts = new([1 << 16]uint32)
	return s, nil
}

// NewRangeScanner returns a Scanner for a tensor of dtype dt, which must be
// F16, BF16, F32 or F64, that finds only the min/max range: it scans
// several times faster than one from NewScanner, and has no MSEParams.
func NewRangeScanner(dt dtype.DType) (*Scanner, error) {
	if !dt.IsFloat() {
		return nil, fmt.Errorf("dtype %v cannot be encoded: it is not F16, BF16, F32 or F64", dt)
	}
	read, err := dtype.Reader(dt)
	if err != nil {
		return nil, err
	}
	s := &Scanner{dt: dt, size: int(dt.Size()), r: NewMagnitudes(), read: read, bad: -1, minU: math.MaxUint32}
	s.toF32, s.expAll = toF32(dt)
	s.tinyU = math.Float32bits(float32(Tiny))
	if float64(math.Float32frombits(s.tinyU)) > Tiny {
		s.tinyU--
	}
	if s.toF32 != nil {
		s.tinyU = uint32(tiny16(s.toF32))
	}
	return s, nil
}

// tiny16 returns the largest 15-bit magnitude of a 16-bit dtype whose value
// is at most Tiny; the values grow with the magnitude bits.
func tiny16(toF32 func(uint16) float32) uint16 {
	lo, hi := 0, 1<<15 // the first magnitude above Tiny is in [lo, hi]
	for lo < hi {
		mid := (lo + hi) / 2
		if float64(toF32(uint16(mid))) > Tiny {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return uint16(lo - 1)
}

// toF32 returns the conversion and the exponent mask of a 16-bit dtype.
func toF32(dt dtype.DType) (func(uint16) float32, uint16) {
	switch dt {
	case dtype.F16:
		return dtype.F16ToFloat32, 0x7c00
	case dtype.BF16:
		return dtype.BF16ToFloat32, 0x7f80
	}
	return nil, 0
}

// Scan takes a chunk of the tensor whose first element has flat index
// first.
func (s *Scanner) Scan(b []byte, first int64) {
	n := len(b) / s.size
	counts := s.counts
	if s.dt == dtype.F32 {
		s.scan32(b[:4*n], first)
		return
	}
	if s.toF32 == nil {
		if cap(s.vals) < n {
			s.vals = make([]float64, n)
		}
		v := s.vals[:n]
		s.read(b, v)
		s.r.Add(v, first)
		if counts != nil {
			for _, x := range v {
				counts[math.Float32bits(float32(math.Abs(x)))>>16]++
			}
		}
		return
	}
	b = b[:2*n]
	s.r.n += int64(n)
	nonFinite := false
	if counts != nil {
		count16Fast(b, counts)
		nonFinite = s.sawNonFinite()
	} else {
		mx, mn := minMax16Fast(b, uint16(s.tinyU), 0, 0xffff)
		s.maxU, s.minU = max(s.maxU, uint32(mx)), min(s.minU, uint32(mn))
		nonFinite = mx >= s.expAll
	}
	if nonFinite && (s.bad < 0 || first < s.bad) {
		for i := 0; i < n; i++ {
			if h := binary.LittleEndian.Uint16(b[2*i:]); h&s.expAll == s.expAll {
				if s.bad < 0 || first+int64(i) < s.bad {
					s.bad, s.badVal = first+int64(i), float64(s.toF32(h))
				}
				break
			}
		}
	}
}

// Reset empties s for another tensor of the same dtype, keeping its
// memory.
func (s *Scanner) Reset() {
	if s.counts != nil {
		clear(s.counts[:])
	}
	*s.r = Magnitudes{min: math.Inf(1)}
	s.bad, s.badVal = -1, 0
	s.maxU, s.minU = 0, math.MaxUint32
}

// DType returns the dtype s scans.
func (s *Scanner) DType() dtype.DType { return s.dt }

// Counts reports whether s counts values, as MSEParams needs.
func (s *Scanner) Counts() bool { return s.counts != nil }

// scan32 is Scan for F32, on the magnitudes' bits.
func (s *Scanner) scan32(b []byte, first int64) {
	le := binary.LittleEndian
	counts := s.counts
	n := len(b) / 4
	if counts != nil {
		count32(b, counts)
	}
	maxU, minU := minMax32Fast(b, s.tinyU, s.maxU, s.minU)
	s.r.n += int64(n)
	if maxU > maxFinite32 {
		// A NaN or an infinity: find the first, and keep the finite
		// extremes without it.
		maxU, minU = s.maxU, s.minU
		for i := 0; i < n; i++ {
			u := le.Uint32(b[4*i:]) & 0x7fffffff
			if u > maxFinite32 {
				if s.r.bad == nil || first+int64(i) < s.r.bad.Index {
					s.r.bad = &NonFiniteError{Index: first + int64(i), Value: float64(math.Float32frombits(le.Uint32(b[4*i:])))}
				}
				continue
			}
			maxU = max(maxU, u)
			if u > s.tinyU {
				minU = min(minU, u)
			}
		}
	}
	s.maxU, s.minU = maxU, minU
}

// sawNonFinite reports whether any NaN or infinity has been counted.
func (s *Scanner) sawNonFinite() bool {
	lowExp := s.expAll & -s.expAll // lowest exponent bit
	for m := uint16(0); m < lowExp; m++ {
		if s.counts[s.expAll|m] != 0 || s.counts[0x8000|s.expAll|m] != 0 {
			return true
		}
	}
	return false
}

// Merge adds what o scanned to s; both scan the same tensor, and o counts
// values if s does.
func (s *Scanner) Merge(o *Scanner) {
	if s.counts != nil {
		for i, v := range o.counts {
			s.counts[i] += v
		}
	}
	if o.bad >= 0 && (s.bad < 0 || o.bad < s.bad) {
		s.bad, s.badVal = o.bad, o.badVal
	}
	s.maxU, s.minU = max(s.maxU, o.maxU), min(s.minU, o.minU)
	s.r.Merge(o.r)
}

// Elements returns how many elements have been scanned.
func (s *Scanner) Elements() int64 { return s.r.n }

// Params returns the tensor's parameters, or a *NonFiniteError naming the
// first NaN or infinity.
func (s *Scanner) Params() (Params, error) {
	if s.dt == dtype.F32 {
		r := *s.r
		r.addMagnitude(float64(math.Float32frombits(s.maxU)))
		if s.minU != math.MaxUint32 {
			r.addMagnitude(float64(math.Float32frombits(s.minU)))
		}
		return r.Params()
	}
	if s.toF32 == nil {
		return s.r.Params()
	}
	if s.bad >= 0 {
		return Params{}, &NonFiniteError{Index: s.bad, Value: s.badVal}
	}
	r := NewMagnitudes()
	if s.counts == nil {
		r.addMagnitude(float64(s.toF32(uint16(s.maxU))))
		if s.minU != math.MaxUint32 {
			r.addMagnitude(float64(s.toF32(uint16(s.minU))))
		}
		return r.Params()
	}
	for h := 0; h < 1<<15; h++ {
		if s.counts[h] != 0 || s.counts[h|0x8000] != 0 {
			r.addMagnitude(float64(s.toF32(uint16(h))))
		}
	}
	return r.Params()
}

// Encoder returns the encoder of the scanned tensor with its min/max range.
func (s *Scanner) Encoder() (*Encoder, error) {
	p, err := s.Params()
	if err != nil {
		return nil, err
	}
	return s.EncoderFor(p), nil
}

// EncoderFor returns the encoder of the scanned tensor with parameters p.
func (s *Scanner) EncoderFor(p Params) *Encoder {
	e := &Encoder{dt: s.dt, p: p, size: s.size, toF32: s.toF32}
	if s.toF32 != nil && p.Validate() == nil {
		e.table = newCodeTable(p, s.toF32, uint16(s.tinyU), s.expAll)
	}
	// The thresholds cost about as much as coding 10,000 elements with a
	// logarithm each.
	if s.dt == dtype.F32 && s.r.n >= minF32Coder && p.Validate() == nil {
		e.f32 = newF32Coder(p)
	}
	return e
}

// minF32Coder is the smallest F32 tensor coded with thresholds.
const minF32Coder = 1 << 14

// newCodeTable returns the code of every finite 15-bit magnitude of a
// 16-bit dtype under parameters p, which must be valid. Magnitudes at or
// below tiny get 255; above it the codes never increase with the
// magnitude bits (see f32Coder: 16-bit values are float32 values), so the
// table is filled run by run, each run's end found by a galloping search
// that asks Params.Code itself: a few thousand logarithms per tensor
// instead of one per magnitude.
func newCodeTable(p Params, toF32 func(uint16) float32, tiny, expAll uint16) *codeTable {
	t := new(codeTable)
	for m := range int(tiny) + 1 {
		t[m] = 255
	}
	code := func(m int) uint8 { return p.Code(float64(toF32(uint16(m)))) }
	fillRuns(t[:], int(tiny)+1, int(expAll), code) // up to the first non-finite magnitude
	return t
}

// Encoder encodes the chunks of one scanned tensor. It is safe for
// concurrent use.
type Encoder struct {
	dt   dtype.DType
	size int
	p    Params
	// 16-bit: the code of each finite magnitude; nil for invalid
	// parameters, whose codes are computed element by element.
	table *codeTable
	toF32 func(uint16) float32
	f32   *f32Coder // F32 tensors of minF32Coder elements or more
}

// NewEncoder returns the encoder of a tensor of dtype dt with parameters p,
// without a range pass.
func NewEncoder(dt dtype.DType, p Params) (*Encoder, error) {
	s, err := NewRangeScanner(dt)
	if err != nil {
		return nil, err
	}
	return s.EncoderFor(p), nil
}

// Params returns the tensor's parameters.
func (e *Encoder) Params() Params { return e.p }

// Encode writes the codes and signs of a chunk; codes and signs must hold
// one entry per element of b.
func (e *Encoder) Encode(b []byte, codes []uint8, signs []int8) {
	if e.f32 != nil {
		e.f32.encode32(b, codes[:len(b)/4], signs)
		return
	}
	if e.toF32 == nil {
		e.Codes(b, codes)
		Signs(e.dt, b, signs)
		return
	}
	n := len(b) / 2
	codes, signs = codes[:n], signs[:n]
	for i := 0; i < n; {
		if e.table != nil {
			i += encode16Fast(e.table, b[2*i:2*n], codes[i:], signs[i:])
		}
		// The kernels stop at a group holding a magnitude without an
		// entry (a NaN or an infinity), and before the last few.
		for end := min(i+32, n); i < end; i++ {
			h := uint16(b[2*i]) | uint16(b[2*i+1])<<8
			codes[i] = e.code16(h)
			nz := int8(min(h&0x7fff, 1))
			signs[i] = nz - 2*nz*int8(h>>15)
		}
	}
}

// EncodePacked writes the codes and sign bits of a chunk in the packed
// layout: the codes Encode writes, but 0 for an exact zero, and bit i of
// bits (least significant first) set when element i is negative and not
// zero, the padding bits of the last byte 0. codes must hold one entry per
// element of b, and bits one bit.
func (e *Encoder) EncodePacked(b []byte, codes []uint8, bits []byte) {
	n := len(b) / e.size
	codes, bits = codes[:n], bits[:(n+7)/8]
	var signs [256]int8
	for i := 0; i < n; { // i is a multiple of 8 but at the end
		step := len(signs)
		if e.table != nil {
			i += encode16PackedFast(e.table, b[2*i:2*n], codes[i:], bits[i/8:])
			step = 32 // back to the kernels after the group they left
		}
		end := min(i+step, n)
		if i == end {
			break
		}
		chunk := b[i*e.size : end*e.size]
		e.Encode(chunk, codes[i:end], signs[:end-i])
		ZeroCodes(e.dt, chunk, codes[i:end])
		PackSigns(signs[:end-i], bits[i/8:])
		i = end
	}
}

// code16 returns the code of a 16-bit value h.
func (e *Encoder) code16(h uint16) uint8 {
	if e.table != nil {
		if c := e.table[h&0x7fff]; c != 0 {
			return c
		}
	}
	return e.p.Code(math.Abs(float64(e.toF32(h))))
}

// pack8 returns the low bytes of the four 16-bit lanes of v and then of
// w, as eight bytes; the high bytes of the lanes must be zero.
func pack8(v, w uint64) uint64 {
	v = (v | v>>8) & 0x0000ffff0000ffff
	v = (v | v>>16) & 0xffffffff
	w = (w | w>>8) & 0x0000ffff0000ffff
	w = (w | w>>16) & 0xffffffff
	return v | w<<32
}

// Codes writes the codes of a chunk; codes must hold one entry per element
// of b.
func (e *Encoder) Codes(b []byte, codes []uint8) {
	n := len(b) / e.size
	codes = codes[:n]
	le := binary.LittleEndian
	p := e.p
	switch e.dt {
	case dtype.F16, dtype.BF16:
		b = b[:2*n]
		for i := range codes {
			codes[i] = e.code16(uint16(b[2*i]) | uint16(b[2*i+1])<<8)
		}
	case dtype.F32:
		if e.f32 != nil {
			e.f32.codes32(b, codes)
			return
		}
		for i := range codes {
			codes[i] = p.Code(math.Abs(float64(math.Float32frombits(le.Uint32(b[4*i:])))))
		}
	case dtype.F64:
		for i := range codes {
			codes[i] = p.Code(math.Abs(math.Float64frombits(le.Uint64(b[8*i:]))))
		}
	}
}

// Signs writes the signs of a chunk of a float tensor of dtype dt: -1, +1,
// and 0 for a zero of either sign. They need no range pass. signs must hold
// one entry per element of b.
func Signs(dt dtype.DType, b []byte, signs []int8) {
	le := binary.LittleEndian
	switch dt.Size() {
	case 2: // Encode takes the signs of 16-bit tensors from its table
		signs = signs[:len(b)/2]
		for i := range signs {
			h := le.Uint16(b[2*i:])
			nz := int8(min(h&0x7fff, 1))
			signs[i] = nz - 2*nz*int8(h>>15)
		}
	case 4:
		signs = signs[:len(b)/4]
		for i := range signs {
			h := le.Uint32(b[4*i:])
			nz := int8(min(h&0x7fffffff, 1))
			signs[i] = nz - 2*nz*int8(h>>31)
		}
	case 8:
		signs = signs[:len(b)/8]
		for i := range signs {
			h := le.Uint64(b[8*i:])
			nz := int8(min(h&0x7fffffffffffffff, 1))
			signs[i] = nz - 2*nz*int8(h>>63)
		}
	}
}

// Int8Bytes views signs as bytes, for I/O without a copy.
func Int8Bytes(s []int8) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// Int8s views bytes as signs, for I/O without a copy.
func Int8s(b []byte) []int8 {
	return unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
}

// PackSigns stores signs as bits, least significant first, set for -1:
// the sign bits of the packed layout. bits must hold ceil(len(signs)/8)
// bytes.
func PackSigns(signs []int8, bits []byte) {
	n := len(signs)
	bits = bits[:(n+7)/8]
	sb := Int8Bytes(signs)
	le := binary.LittleEndian
	j := 0
	for ; 8*j+8 <= n; j++ {
		// Bit 7 of lane k to bit k of one byte.
		neg := le.Uint64(sb[8*j:8*j+8]) >> 7 & 0x0101010101010101
		bits[j] = byte(neg * 0x0102040810204080 >> 56)
	}
	if j < len(bits) {
		var b byte
		for k, s := range signs[8*j:] {
			b |= byte(s>>7&1) << k
		}
		bits[j] = b
	}
}

// PackCodes turns the codes and signs of the u8+i8 layout into those of
// the packed layout, the inverse of UnpackSigns: the codes of exact zeros
// (sign 0) become 0, in place, and the signs become bits, as PackSigns
// stores them. bits must hold ceil(len(codes)/8) bytes.
func PackCodes(codes []uint8, signs []int8, bits []byte) {
	signs = signs[:len(codes)]
	i := packCodesFast(codes, signs, bits)
	codes, signs, bits = codes[i:], signs[i:], bits[i/8:]
	sb := Int8Bytes(signs)
	le := binary.LittleEndian
	j := 0
	for ; j+8 <= len(codes); j += 8 {
		s := le.Uint64(sb[j:])
		// The top bit of each byte: set unless the byte is 0.
		nz := ((s & 0x7f7f7f7f7f7f7f7f) + 0x7f7f7f7f7f7f7f7f | s) & 0x8080808080808080
		le.PutUint64(codes[j:], le.Uint64(codes[j:])&(nz>>7*0xff))
	}
	for ; j < len(codes); j++ {
		if sb[j] == 0 {
			codes[j] = 0
		}
	}
	PackSigns(signs, bits)
}

// UnpackSigns turns the codes and sign bits of the packed layout into the
// codes and signs of the u8+i8 layout, in place for the codes: code 0 (an
// exact zero) becomes code 255 with sign 0. Element i's bit is bit
// (bitOff+i) of bits, least significant first. It returns the index of the
// first exact zero whose sign bit is set, which no encoder writes, or -1.
func UnpackSigns(codes []uint8, bits []byte, bitOff int, signs []int8) int {
	signs = signs[:len(codes)]
	bad := -1
	one := func(i int) {
		p := bitOff + i
		if codes[i] == 0 {
			codes[i], signs[i] = 255, 0
			if bad < 0 && bits[p>>3]>>(p&7)&1 != 0 {
				bad = i
			}
			return
		}
		signs[i] = 1 - 2*int8(bits[p>>3]>>(p&7)&1)
	}
	i := 0
	for ; i < len(codes) && (bitOff+i)&7 != 0; i++ {
		one(i)
	}
	// Then a byte of bits, eight elements, at a time.
	le := binary.LittleEndian
	sb := Int8Bytes(signs)
	for ; i+8 <= len(codes); i += 8 {
		c := le.Uint64(codes[i : i+8])
		if (c-0x0101010101010101)&^c&0x8080808080808080 != 0 {
			for k := i; k < i+8; k++ { // an exact zero among them
				one(k)
			}
			continue
		}
		// Lane k keeps bit k of the byte, then becomes 1 if it is set.
		m := uint64(bits[(bitOff+i)>>3]) * 0x0101010101010101 & 0x8040201008040201
		neg := (m + 0x7f7f7f7f7f7f7f7f) >> 7 & 0x0101010101010101
		le.PutUint64(sb[i:i+8], 0x0101010101010101+neg*0xfe) // +1, or -1 (0xff)
	}
	for ; i < len(codes); i++ {
		one(i)
	}
	return bad
}

// ZeroCodes sets to 0 the codes of the exact zeros of a chunk of dtype dt:
// the codes of the packed layout.
func ZeroCodes(dt dtype.DType, b []byte, codes []uint8) {
	size := int(dt.Size())
	codes = codes[:len(b)/size]
	if size == 2 {
		b = b[:2*len(codes)]
		le := binary.LittleEndian
		i := 0
		for ; i+4 <= len(codes); i += 4 {
			// A lane's magnitude plus 0x7fff carries into its bit 15
			// unless the magnitude is 0.
			x := le.Uint64(b[2*i : 2*i+8])
			if ((x&0x7fff7fff7fff7fff)+0x7fff7fff7fff7fff)&0x8000800080008000 == 0x8000800080008000 {
				continue // no zero among the four
			}
			for k := i; k < i+4; k++ {
				if b[2*k]|b[2*k+1]&0x7f == 0 {
					codes[k] = 0
				}
			}
		}
		for ; i < len(codes); i++ {
			if b[2*i]|b[2*i+1]&0x7f == 0 {
				codes[i] = 0
			}
		}
		return
	}
	for i := range codes {
		e := b[i*size : i*size+size]
		z := e[size-1] & 0x7f
		for _, x := range e[:size-1] {
			z |= x
		}
		if z == 0 {
			codes[i] = 0
		}
	}
}
