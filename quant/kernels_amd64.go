//go:build amd64 && !purego

package quant

import (
	"math"
	"unsafe"

	"github.com/qins-dev/qins/format/dtype"
	"golang.org/x/sys/cpu"
)

// avx512 reports whether the AVX-512 kernels of kernels_amd64.s can run.
var avx512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL

// minMax16AVX512 stores in out the lane-wise largest 15-bit magnitude of
// blocks blocks of 32 little-endian 16-bit values at p (out[:32]), and the
// smallest above tiny, 0xffff for none (out[32:]).
//
//go:noescape
func minMax16AVX512(p *byte, blocks int, tiny uint16, out *[64]uint16)

// minMax32AVX512 is minMax16AVX512 for blocks of 16 32-bit values.
//
//go:noescape
func minMax32AVX512(p *byte, blocks int, tiny uint32, out *[32]uint32)

// encode16AVX512 is encode16 on blocks of 32 values; it returns how many
// blocks it wrote.
//
//go:noescape
func encode16AVX512(t *codeTable, p *byte, blocks int, codes *byte, signs *byte) int

// minMax16Fast is minMax16, with the AVX-512 kernel where it runs.
func minMax16Fast(b []byte, tiny, mx, mn uint16) (uint16, uint16) {
	if k := len(b) / 64; avx512 && k > 0 {
		var out [64]uint16
		minMax16AVX512(&b[0], k, tiny, &out)
		for i := range 32 {
			mx, mn = max(mx, out[i]), min(mn, out[32+i])
		}
		b = b[64*k:]
	}
	return minMax16(b, tiny, mx, mn)
}

// minMax32Fast is minMax32, with the AVX-512 kernel where it runs.
func minMax32Fast(b []byte, tiny, mx, mn uint32) (uint32, uint32) {
	if k := len(b) / 64; avx512 && k > 0 {
		var out [32]uint32
		minMax32AVX512(&b[0], k, tiny, &out)
		for i := range 16 {
			mx, mn = max(mx, out[i]), min(mn, out[16+i])
		}
		b = b[64*k:]
	}
	return minMax32(b, tiny, mx, mn)
}

// encode16Fast is encode16, with the AVX-512 kernel where it runs.
func encode16Fast(t *codeTable, b []byte, codes []uint8, signs []int8) int {
	n := min(len(b)/2, len(codes), len(signs))
	if !avx512 || n < 32 {
		return encode16(t, b, codes, signs)
	}
	k := 32 * encode16AVX512(t, &b[0], n/32, &codes[0], &Int8Bytes(signs)[0])
	if k < n&^31 {
		return k // stopped at a block holding a magnitude without an entry
	}
	return k + encode16(t, b[2*k:], codes[k:], signs[k:])
}

// encode32AVX512 is encode32 on blocks of 16 values; it returns how many
// blocks it wrote.
//
//go:noescape
func encode32AVX512(bk *[1 << 15]uint32, p *byte, blocks int, codes *byte, signs *byte) int

// encode32Fast is encode32, with the AVX-512 kernel where it runs.
func encode32Fast(bk *[1 << 15]uint32, b []byte, codes []uint8, signs []int8) int {
	n := min(len(b)/4, len(codes), len(signs))
	if !avx512 || n < 16 {
		return encode32(bk, b, codes, signs)
	}
	k := 16 * encode32AVX512(bk, &b[0], n/16, &codes[0], &Int8Bytes(signs)[0])
	if k < n&^15 {
		return k // stopped at a block holding a value of a slow bucket
	}
	return k + encode32(bk, b[4*k:], codes[k:], signs[k:])
}

// encode16PackedAVX512 is encode16Packed on blocks of 32 values; it
// returns how many blocks it wrote.
//
//go:noescape
func encode16PackedAVX512(t *codeTable, p *byte, blocks int, codes *byte, bits *byte) int

// encode16PackedFast is encode16Packed, with the AVX-512 kernel where it
// runs.
func encode16PackedFast(t *codeTable, b []byte, codes []uint8, bits []byte) int {
	n := min(len(b)/2, len(codes), 8*len(bits))
	if !avx512 || n < 32 {
		return encode16Packed(t, b, codes, bits)
	}
	k := 32 * encode16PackedAVX512(t, &b[0], n/32, &codes[0], &bits[0])
	if k < n&^31 {
		return k
	}
	return k + encode16Packed(t, b[2*k:], codes[k:], bits[k/8:])
}

// rowCodes16AVX512 is rowCodes16 on blocks of 8 logarithms.
//
//go:noescape
func rowCodes16AVX512(logs *float64, blocks int, t *byte, lmin, d, top float64)

// rowCodes16F32AVX512 is rowCodes16 on blocks of 16 logarithms, in
// float32 where that gives the same codes (see rowCodes32Bound); logs32
// are the logarithms rounded to float32.
//
//go:noescape
func rowCodes16F32AVX512(logs32 *float32, logs *float64, blocks int, t *byte, c, k, lim float32, lmin, d, top float64)

// rowCodes16Fast is rowCodes16, with the AVX-512 kernels where they run;
// logs32 are the logarithms rounded to float32.
func rowCodes16Fast(logs []float64, logs32 []float32, t []uint8, lmin, d, top float64) int {
	if len(logs) == 0 || len(t) == 0 {
		return 0
	}
	// The bound looks at the first and last logarithms only: they must
	// ascend, as the tables' do.
	return rowCodes16Within(logs, logs32, t, lmin, d, top, logs[0], logs[min(len(logs), len(t))-1])
}

// rowCodes16Within is rowCodes16Fast for logarithms in any order, lo and
// hi (either order) bounding their magnitudes: the kernel's bound needs
// the largest magnitude.
func rowCodes16Within(logs []float64, logs32 []float32, t []uint8, lmin, d, top, lo, hi float64) int {
	n := min(len(logs), len(t))
	// A width whose reciprocal overflows would make the kernels' 1/d
	// infinite: the formula's own division is kept for it.
	if !avx512 || n < 8 || math.IsInf(1/d, 0) {
		return rowCodes16(logs[:n], t[:n], lmin, d, top)
	}
	done := 0
	if c, k, lim, ok := rowCodes32Bound(lo, hi, lmin, d, top); ok && n >= 16 && len(logs32) >= n {
		b := n / 16
		rowCodes16F32AVX512(&logs32[0], &logs[0], b, &t[0], c, k, lim, lmin, d, top)
		if n%16 != 0 {
			// The last 16, over some done: each code is its own.
			rowCodes16F32AVX512(&logs32[n-16], &logs[n-16], 1, &t[n-16], c, k, lim, lmin, d, top)
		}
		return n
	}
	if b := (n - done) / 8; b > 0 {
		rowCodes16AVX512(&logs[done], b, &t[done], lmin, d, top)
		done += 8 * b
	}
	return done + rowCodes16(logs[done:n], t[done:n], lmin, d, top)
}

// lookup16AVX512 is lookup16 on blocks of 32 values.
//
//go:noescape
func lookup16AVX512(t *byteTable, p *byte, blocks int, out *byte)

// lookup16Fast is lookup16, with the AVX-512 kernel where it runs.
func lookup16Fast(t *byteTable, b []byte, out []byte) int {
	n := min(len(b)/2, len(out))
	if !avx512 || n < 32 {
		return lookup16(t, b, out)
	}
	k := 32 * (n / 32)
	lookup16AVX512(t, &b[0], n/32, &out[0])
	return k + lookup16(t, b[2*k:2*n], out[k:n])
}

// rational32AVX512 is rational32 on blocks of 16 values, for a valid
// alpha (finite, above 0) and values that are not NaN.
//
//go:noescape
func rational32AVX512(p *byte, blocks int, alpha float32, codes *byte)

// rational32Fast is rational32, with the AVX-512 kernel where it runs.
// alpha must be finite and above 0, and the values not NaN: the kernel's
// codes are RationalCode's for those (a NaN has no code).
func rational32Fast(b []byte, alpha float32, codes []uint8) int {
	n := min(len(b)/4, len(codes))
	if !avx512 || n < 16 {
		return rational32(b, alpha, codes)
	}
	k := 16 * (n / 16)
	rational32AVX512(&b[0], n/16, alpha, &codes[0])
	return k + rational32(b[4*k:4*n], alpha, codes[k:n])
}

// count16Asm is count16 on n groups of four values.
//
//go:noescape
func count16Asm(p *byte, n int, counts *[1 << 16]uint32)

// count16Fast is count16, with the assembly loop (which needs no
// AVX-512).
func count16Fast(b []byte, counts *[1 << 16]uint32) {
	if n := len(b) / 8; n > 0 {
		count16Asm(&b[0], n, counts)
		b = b[8*n:]
	}
	count16(b, counts)
}

// bf16ToF32AVX512 and f16ToF32AVX512 are widen16 on blocks of 16 values.
//
//go:noescape
func bf16ToF32AVX512(p *byte, blocks int, out *byte)

//go:noescape
func f16ToF32AVX512(p *byte, blocks int, out *byte)

// widen16Fast is widen16, with the AVX-512 kernels where they run.
func widen16Fast(dt dtype.DType, b []byte, out []byte) int {
	n := min(len(b)/2, len(out)/4)
	if !avx512 || n < 16 {
		return widen16(dt, b, out)
	}
	k := n / 16
	if dt == dtype.BF16 {
		bf16ToF32AVX512(&b[0], k, &out[0])
	} else {
		f16ToF32AVX512(&b[0], k, &out[0])
	}
	return 16*k + widen16(dt, b[32*k:2*n], out[64*k:])
}

// rowSums32AVX512 is rowSums32 on blocks of 16 values.
//
//go:noescape
func rowSums32AVX512(p *byte, blocks int, inv float32, acc *rowAcc)

// rowSums32Fast is rowSums32, with the AVX-512 kernel where it runs: the
// same sums, bit for bit.
func rowSums32Fast(b []byte, inv float32, acc *rowAcc) {
	if k := len(b) / 64; avx512 && k > 0 {
		rowSums32AVX512(&b[0], k, inv, acc)
		b = b[64*k:]
	}
	rowSums32(b, inv, acc)
}

// compressAbove32AVX512 is compressAbove32 on blocks of 16 values.
//
//go:noescape
func compressAbove32AVX512(p *byte, blocks int, thr uint32, out *byte) int

// compressAbove32Fast is compressAbove32, with the AVX-512 kernel where it
// runs.
func compressAbove32Fast(b []byte, thr uint32, out []byte) int {
	k := 0
	if blocks := len(b) / 64; avx512 && blocks > 0 && len(out) > 0 {
		k = compressAbove32AVX512(&b[0], blocks, thr, &out[0])
		b = b[64*blocks:]
	}
	return k + compressAbove32(b, thr, out[4*k:])
}

// packCodesAVX512 is PackCodes on blocks of 64 elements.
//
//go:noescape
func packCodesAVX512(codes, signs *byte, blocks int, bits *byte)

// signCodesAVX2 is signCodes on blocks of 32 bytes.
//
//go:noescape
func signCodesAVX2(mags *byte, signs *byte, blocks int, out *byte)

// signCodesFast is signCodes, with the AVX2 kernel where it runs.
func signCodesFast(mags []uint8, signs []int8, out []int8) {
	n := min(len(mags), len(signs), len(out))
	done := 0
	if k := n / 32; cpu.X86.HasAVX2 && k > 0 {
		signCodesAVX2(&mags[0], (*byte)(unsafe.Pointer(&signs[0])), k, (*byte)(unsafe.Pointer(&out[0])))
		done = 32 * k
	}
	signCodes(mags[done:n], signs[done:n], out[done:n])
}

// packCodesFast packs the leading blocks of 64 elements of PackCodes with
// the AVX-512 kernel where it runs, and returns how many elements it did.
func packCodesFast(codes []uint8, signs []int8, bits []byte) int {
	k := min(len(codes), len(signs)) / 64
	if !avx512 || k == 0 {
		return 0
	}
	packCodesAVX512(&codes[0], (*byte)(unsafe.Pointer(&signs[0])), k, &bits[0])
	return 64 * k
}

// bucketSumsAVX512 sums groups groups of 16 buckets of 16 counts: see
// kernels_amd64.s.
//
//go:noescape
func bucketSumsAVX512(counts *uint32, groups int, idx *[16]int32, out *uint32)

// bucketSumsFast sets, for each whole group of 16 buckets of 16 counts in
// counts, out[48g+b], out[48g+16+b] and out[48g+32+b] to bucket b's Σ c_j,
// Σ j·c_j and Σ j²·c_j (j = 0..15 within the bucket), with the AVX-512
// kernel where it runs, and returns how many groups it did. The counts
// of each bucket must sum to below 2^24, so that its sums fit in uint32.
func bucketSumsFast(counts []uint32, out []uint32) int {
	g := min(len(counts)/256, len(out)/48)
	if !avx512 || g == 0 {
		return 0
	}
	idx := [16]int32{0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240}
	bucketSumsAVX512(&counts[0], g, &idx, &out[0])
	for k := 0; k < g; k++ {
		o := out[48*k : 48*k+48]
		for b := range 16 {
			// S = Σ (j+1) c_j and T = Σ (j+1)(j+2)/2 c_j to Σ j c_j and
			// Σ j² c_j (2T = Σ j² c_j + 3 Σ j c_j + 2 Σ c_j).
			n, s, t := o[b], o[16+b], o[32+b]
			sj := s - n
			o[16+b], o[32+b] = sj, 2*t-3*sj-2*n
		}
	}
	return g
}
