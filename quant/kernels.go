package quant

import (
	"encoding/binary"
	"math"

	"github.com/qins-dev/qins/format/dtype"
)

// The inner loops of the range and encode passes, in Go. On amd64 with
// AVX-512 the assembly kernels of kernels_amd64.s take the whole blocks and
// these the rest; the tests run both on the same inputs.

// minMax16 returns the largest 15-bit magnitude of the little-endian 16-bit
// values of b and mx, and the smallest above tiny of them and mn.
func minMax16(b []byte, tiny, mx, mn uint16) (uint16, uint16) {
	// The smallest above tiny is found as the smallest of m-tiny-1 in
	// uint32, where magnitudes at or below tiny wrap to the top.
	lo := uint32(tiny) + 1
	mx0, mn0 := uint32(mx), uint32(mn)-lo
	if mn <= tiny {
		mn0 = math.MaxUint32
	}
	mx1, mn1 := mx0, mn0
	le := binary.LittleEndian
	if len(b) >= 1<<14 {
		// Long chunks mark the magnitudes present, which takes a store
		// and no comparison per value, then look for the extremes.
		var seen [1 << 15]bool
		for ; len(b) >= 8; b = b[8:] {
			x := le.Uint64(b)
			seen[x&0x7fff], seen[x>>16&0x7fff] = true, true
			seen[x>>32&0x7fff], seen[x>>48&0x7fff] = true, true
		}
		for m := len(seen) - 1; m > int(mx0); m-- {
			if seen[m] {
				mx0 = uint32(m)
				break
			}
		}
		end := len(seen)
		if mn0 < 1<<15 {
			end = int(mn0 + lo)
		}
		for m := int(lo); m < end; m++ {
			if seen[m] {
				mn0 = uint32(m) - lo
				break
			}
		}
	}
	for len(b) >= 8 {
		x := le.Uint64(b)
		a, c := uint32(x)&0x7fff, uint32(x>>16)&0x7fff
		d, e := uint32(x>>32)&0x7fff, uint32(x>>48)
		e &= 0x7fff
		mx0, mx1 = max(mx0, a), max(mx1, c)
		mn0, mn1 = min(mn0, a-lo), min(mn1, c-lo)
		mx0, mx1 = max(mx0, d), max(mx1, e)
		mn0, mn1 = min(mn0, d-lo), min(mn1, e-lo)
		b = b[8:]
	}
	for len(b) >= 2 {
		m := uint32(le.Uint16(b)) & 0x7fff
		mx0, mn0 = max(mx0, m), min(mn0, m-lo)
		b = b[2:]
	}
	mx0, mn0 = max(mx0, mx1), min(mn0, mn1)
	if mn0 >= 1<<15 {
		return uint16(mx0), 0xffff // none above tiny
	}
	return uint16(mx0), uint16(mn0 + lo)
}

// minMax32 is minMax16 for 32-bit values: 31-bit magnitudes.
func minMax32(b []byte, tiny, mx, mn uint32) (uint32, uint32) {
	b = b[:len(b)&^3]
	for i := 0; i+3 < len(b); i += 4 {
		m := binary.LittleEndian.Uint32(b[i:]) & 0x7fffffff
		mx = max(mx, m)
		v := m
		if m <= tiny {
			v = 0xffffffff
		}
		mn = min(mn, v)
	}
	return mx, mn
}

// codeTable holds the code of each 15-bit magnitude of a 16-bit dtype, 0
// where it was not computed. The padding lets a kernel read four bytes at
// any entry.
type codeTable [1<<15 + 8]uint8

// encode16 writes the codes and signs of the little-endian 16-bit values of
// b, eight at a time, and returns how many it wrote: it stops short of a
// group of eight that holds a magnitude t does not have, and of the last
// len(b)/2 % 8.
func encode16(t *codeTable, b []byte, codes []uint8, signs []int8) int {
	n := min(len(b)/2, len(codes), len(signs)) &^ 7
	b, codes, sb := b[:2*n], codes[:n], Int8Bytes(signs[:n])
	le := binary.LittleEndian
	i := 0
	for ; i+8 <= n; i += 8 {
		x, y := le.Uint64(b[2*i:]), le.Uint64(b[2*i+8:])
		c := uint64(t[x&0x7fff]) | uint64(t[x>>16&0x7fff])<<8 | uint64(t[x>>32&0x7fff])<<16 | uint64(t[x>>48&0x7fff])<<24 |
			uint64(t[y&0x7fff])<<32 | uint64(t[y>>16&0x7fff])<<40 | uint64(t[y>>32&0x7fff])<<48 | uint64(t[y>>48&0x7fff])<<56
		if (c-0x0101010101010101)&^c&0x8080808080808080 != 0 {
			break // a code 0: a magnitude without an entry
		}
		le.PutUint64(codes[i:], c)
		le.PutUint64(sb[i:], pack8(signs4(x), signs4(y)))
	}
	return i
}

// signs4 returns the signs of four 16-bit values as the low bytes of four
// 16-bit lanes: 1, 0xff (-1), or 0 for a zero of either sign.
func signs4(x uint64) uint64 {
	const lanes = 0x0001000100010001
	// A lane's magnitude plus 0x7fff carries into its bit 15 unless the
	// magnitude is 0.
	nz := ((x & 0x7fff7fff7fff7fff) + 0x7fff7fff7fff7fff) >> 15 & lanes
	neg := x >> 15 & nz
	return nz | neg*0xfe
}

// encode32 writes the codes and signs of the little-endian float32 values
// of b, eight at a time, from the buckets of an f32Coder, and returns how
// many it wrote: it stops short of a group of eight that holds a value of a
// slow bucket, and of the last len(b)/4 % 8.
func encode32(bk *[1 << 15]uint32, b []byte, codes []uint8, signs []int8) int {
	n := min(len(b)/4, len(codes), len(signs)) &^ 7
	b, codes, sb := b[:4*n], codes[:n], Int8Bytes(signs[:n])
	le := binary.LittleEndian
	i := 0
	for ; i+8 <= n; i += 8 {
		var c, s, slow uint64
		for k := range 8 {
			h := le.Uint32(b[4*(i+k):])
			u := h & 0x7fffffff
			e := bk[u>>16]
			ge := ((u & 0xffff) + 1<<17 - (e >> 8 & 0x1ffff)) >> 17 & 1
			slow |= uint64(e)
			c |= uint64(uint8(e)-uint8(ge)) << (8 * k)
			nz := uint64(min(u, 1))
			s |= (nz | uint64(h>>31)*nz*0xfe) << (8 * k)
		}
		if slow&slowBucket != 0 {
			break
		}
		le.PutUint64(codes[i:], c)
		le.PutUint64(sb[i:], s)
	}
	return i
}

// encode16Packed is encode16 for the packed layout: codes 0 for exact
// zeros, and one byte of sign bits per eight values.
func encode16Packed(t *codeTable, b []byte, codes []uint8, bits []byte) int {
	n := min(len(b)/2, len(codes), 8*len(bits)) &^ 7
	b, codes, bits = b[:2*n], codes[:n], bits[:n/8]
	le := binary.LittleEndian
	i := 0
	for ; i+8 <= n; i += 8 {
		x, y := le.Uint64(b[2*i:]), le.Uint64(b[2*i+8:])
		c := uint64(t[x&0x7fff]) | uint64(t[x>>16&0x7fff])<<8 | uint64(t[x>>32&0x7fff])<<16 | uint64(t[x>>48&0x7fff])<<24 |
			uint64(t[y&0x7fff])<<32 | uint64(t[y>>16&0x7fff])<<40 | uint64(t[y>>32&0x7fff])<<48 | uint64(t[y>>48&0x7fff])<<56
		if (c-0x0101010101010101)&^c&0x8080808080808080 != 0 {
			break // a code 0: a magnitude without an entry
		}
		nx, ny := nonZero4(x), nonZero4(y)
		le.PutUint64(codes[i:], c&(pack8(nx, ny)*0xff))
		bits[i/8] = bits4(x>>15&nx) | bits4(y>>15&ny)<<4
	}
	return i
}

// nonZero4 returns 1 in the low bit of each 16-bit lane of x whose
// magnitude is not zero.
func nonZero4(x uint64) uint64 {
	// A lane's magnitude plus 0x7fff carries into its bit 15 unless the
	// magnitude is 0.
	return ((x & 0x7fff7fff7fff7fff) + 0x7fff7fff7fff7fff) >> 15 & 0x0001000100010001
}

// bits4 gathers the low bits of the four 16-bit lanes of v, whose other
// bits must be zero, into bits 0-3.
func bits4(v uint64) byte {
	// Lane k lands on bit 48+k; the other products stay below bit 48.
	return byte(v * (1<<48 | 1<<33 | 1<<18 | 1<<3) >> 48 & 0xf)
}

// count16 counts the 15-bit magnitudes of the little-endian 16-bit values
// of b, alternately in counts[m] and counts[m|0x8000].
func count16(b []byte, counts *[1 << 16]uint32) {
	le := binary.LittleEndian
	for ; len(b) >= 8; b = b[8:] {
		x := le.Uint64(b)
		counts[x&0x7fff]++
		counts[x>>16&0x7fff|0x8000]++
		counts[x>>32&0x7fff]++
		counts[x>>48|0x8000]++
	}
	for ; len(b) >= 2; b = b[2:] {
		counts[le.Uint16(b)&0x7fff]++
	}
}

// count32 counts the top 15 bits of the magnitudes of the little-endian
// 32-bit values of b, alternately in counts[m] and counts[m|0x8000].
func count32(b []byte, counts *[1 << 16]uint32) {
	le := binary.LittleEndian
	for ; len(b) >= 8; b = b[8:] {
		x := le.Uint64(b)
		counts[x>>16&0x7fff]++
		counts[x>>48&0x7fff|0x8000]++
	}
	for ; len(b) >= 4; b = b[4:] {
		counts[le.Uint32(b)>>16&0x7fff]++
	}
}

// rowCodes16 writes t[i] = the code of a magnitude whose logarithm is
// logs[i], under a range with log_min lmin and log_max - log_min d > 0,
// for a code of top levels (Levels8 or Levels7): Params.Code's (or
// Code7's) operations in its order, so the same code. It returns len(t);
// the kernels of kernels_amd64.s do the same on blocks of 8 and 16, the
// logarithms ascending.
func rowCodes16(logs []float64, t []uint8, lmin, d, top float64) int {
	logs = logs[:len(t)]
	for i, l := range logs {
		t[i] = uint8(min(max(math.RoundToEven(top-(top-1)*(l-lmin)/d), 1), top))
	}
	return len(t)
}

// rowCodes32Bound returns the constants of the float32 code kernel for
// logarithms between first and last (either order) under a range with
// log_min lmin and log_max - log_min d > 0 and a code of top levels, c =
// (top-1)/d and k = top + lmin*c, and lim = 0.5 - eps, eps bounding how
// far k - c*l in float32 (l rounded to float32, one fused operation) can
// be from the formula's value top - (top-1)*(l - lmin)/d: each of l, c, k
// and the result is off by
// at most 2^-24 of its magnitude (a result beyond [-45, 300] is clamped
// as the formula's would be, whatever the error), and the formula's own
// float64 operations by far less than 1e-9. ok is false when eps is too
// large for the kernel to keep most blocks.
func rowCodes32Bound(first, last, lmin, d, top float64) (c, k, lim float32, ok bool) {
	cf := (top - 1) / d
	kf := top + lmin*cf
	maxL := max(math.Abs(first), math.Abs(last))
	eps := 0x1p-24*(2*cf*maxL+math.Abs(kf)+300)*1.01 + 1e-9
	// The bound holds for logarithms float32 holds; the 1.01 is the margin
	// the roundings of lim and of subnormals take, not to be loosened.
	if eps > 0.05 || math.IsInf(kf, 0) || math.IsNaN(kf) || cf > math.MaxFloat32 || maxL > math.MaxFloat32 {
		return 0, 0, 0, false
	}
	return float32(cf), float32(kf), float32(0.5 - eps), true
}

// byteTable holds a byte for each 16-bit bit pattern: the i8 or rational
// code of the value it stands for. The padding lets a kernel read four
// bytes at any entry.
type byteTable [1<<16 + 3]uint8

// lookup16 writes out[i] = t[v], v the i-th little-endian 16-bit value of
// b, for the first min(len(b)/2, len(out)) values, and returns how many.
func lookup16(t *byteTable, b []byte, out []byte) int {
	n := min(len(b)/2, len(out))
	b, out = b[:2*n], out[:n]
	le := binary.LittleEndian
	i := 0
	for ; i+8 <= n; i += 8 {
		x, y := le.Uint64(b[2*i:]), le.Uint64(b[2*i+8:])
		c := uint64(t[uint16(x)]) | uint64(t[uint16(x>>16)])<<8 | uint64(t[uint16(x>>32)])<<16 | uint64(t[x>>48])<<24 |
			uint64(t[uint16(y)])<<32 | uint64(t[uint16(y>>16)])<<40 | uint64(t[uint16(y>>32)])<<48 | uint64(t[y>>48])<<56
		le.PutUint64(out[i:], c)
	}
	for ; i < n; i++ {
		out[i] = t[le.Uint16(b[2*i:])]
	}
	return n
}

// rational32 writes the rational codes with parameter alpha of the
// little-endian float32 values of b, for the first min(len(b)/4,
// len(codes)) values, and returns how many: RationalCode itself.
func rational32(b []byte, alpha float32, codes []uint8) int {
	n := min(len(b)/4, len(codes))
	b, codes = b[:4*n], codes[:n]
	for i := range codes {
		codes[i] = RationalCode(float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))), alpha)
	}
	return n
}

// fillRuns sets t[m] = code(m) for every m in [lo, end), where each code
// is taken by one run of consecutive m, as a code that never increases (or
// never decreases) with m is: run by run, each run's end found by a
// galloping search that asks code itself, a few calls per run instead of
// one per m.
func fillRuns[T comparable](t []T, lo, end int, code func(int) T) {
	t = t[:end]
	for m := lo; m < end; {
		c := code(m)
		// The run of c is [m, last]; last+step is past it or past end.
		last, step := m, 1
		for last+step < end && code(last+step) == c {
			last += step
			step *= 2
		}
		for hi := min(last+step, end); hi-last > 1; {
			mid := last + (hi-last)/2
			if code(mid) == c {
				last = mid
			} else {
				hi = mid
			}
		}
		for k := m; k <= last; k++ {
			t[k] = c
		}
		m = last + 1
	}
}

// widen16 writes the little-endian 16-bit values of b, of dtype dt (F16
// or BF16), as little-endian float32 values to out, which must hold as
// many, and returns how many.
func widen16(dt dtype.DType, b []byte, out []byte) int {
	n := min(len(b)/2, len(out)/4)
	to, _ := toF32(dt)
	for i := range n {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(to(binary.LittleEndian.Uint16(b[2*i:]))))
	}
	return n
}

// rowAcc holds power sums of a row's magnitudes per lane: the value i
// of a row goes to lane i%16, so that the kernel, 16 lanes wide, and the
// Go loop add the same numbers in the same order: the count of the
// magnitudes m not zero, then the sums of m'^k for k = 1..4, m' = m*inv
// in float32.
type rowAcc [5][16]float32

// rowSums32 adds the values of b, little-endian float32 values of a row
// from one of its multiples of 16 on, to acc (see rowAcc), in float32
// operations as the kernel's: m' = m*inv, m2 = m'*m', m3 = m2*m', m4 =
// m2*m2.
func rowSums32(b []byte, inv float32, acc *rowAcc) {
	for i := 0; 4*i+4 <= len(b); i++ {
		u := binary.LittleEndian.Uint32(b[4*i:]) & 0x7fffffff
		l := i % 16
		if u != 0 {
			acc[0][l]++
		}
		m := math.Float32frombits(u) * inv
		m2 := m * m
		acc[1][l] += m
		acc[2][l] += m2
		acc[3][l] += m2 * m
		acc[4][l] += m2 * m2
	}
}

// compressAbove32 writes to out the little-endian float32 values of b
// whose magnitude bits are above thr, in order, and returns how many; out
// must have room for them.
func compressAbove32(b []byte, thr uint32, out []byte) int {
	k := 0
	for i := 0; i+4 <= len(b); i += 4 {
		u := binary.LittleEndian.Uint32(b[i:])
		if u&0x7fffffff > thr {
			binary.LittleEndian.PutUint32(out[4*k:], u)
			k++
		}
	}
	return k
}
