//go:build amd64 && !purego

package diff

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// avx reports whether fusePairsAVX can run, avx2 fuseQuadsAVX2, avx512
// fuseAVX512.
var (
	avx    = cpu.X86.HasAVX && cpu.X86.HasPOPCNT
	avx2   = cpu.X86.HasAVX2
	avx512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasPOPCNT
	// avx512dq: fusePackedAVX512 (KMOVB).
	avx512dq = avx512 && cpu.X86.HasAVX512DQ
)

// fusePackedAVX512 is fuseAVX512 on the packed layout's codes and sign
// bits, a byte of them per block; in fused_amd64.s.
//
//go:noescape
func fusePackedAVX512(l *lanes, raw *byte, codes *byte, bits *byte, blocks int, mag *[256]float32, first int64)

// fusePackedBlocks adds the elements of a run of the packed layout in
// blocks of eight, from the first whose bit starts a byte, and returns
// the first and the end of the elements it added.
func fusePackedBlocks(l *lanes, raw []byte, codes []uint8, bits []byte, bitOff int, mag *[256]float32, first int64) (int, int) {
	i := (8 - bitOff%8) % 8
	if !avx512dq || len(codes)-i < 8 {
		return 0, 0
	}
	n := (len(codes) - i) / 8
	b := (bitOff + i) / 8
	_, _, _ = raw[2*i+16*n-1], codes[i+8*n-1], bits[b+n-1]
	fusePackedAVX512(l, &raw[2*i], &codes[i], &bits[b], n, mag, first+int64(i))
	return i, i + 8*n
}

// fuseAVX512 adds blocks blocks of eight elements, each to its lane, the
// first at position first of the chunk, their values being the
// magnitudes mag times the signs; in fused_amd64.s.
//
//go:noescape
func fuseAVX512(l *lanes, raw *byte, codes *byte, signs *byte, blocks int, mag *[256]float32, first int64)

// fuseBlocks adds the elements of a run in blocks of eight, with a
// kernel that keeps eight lanes (AVX-512), and returns how many it added.
func fuseBlocks(l *lanes, raw []byte, codes []uint8, signs []int8, mag *[256]float32, first int64) int {
	n := len(codes) / 8
	if !avx512 || n == 0 {
		return 0
	}
	_, _ = raw[16*n-1], signs[8*n-1]
	fuseAVX512(l, &raw[0], &codes[0], (*byte)(unsafe.Pointer(&signs[0])), n, mag, first)
	return 8 * n
}

// fuseQuadsAVX2 is fusePairsAVX on quads pairs of pairs, the largest
// errors kept by position modulo 4, an invalid sign read as tab's row of
// NaNs; in fused_amd64.s.
//
//go:noescape
func fuseQuadsAVX2(l *lanes, raw *byte, codes *byte, signs *byte, quads int, tab *table, first int64) int

// fusePairsAVX is fusePairsGo on pairs pairs, in fused_amd64.s.
//
//go:noescape
func fusePairsAVX(l *lanes, raw *byte, codes *byte, signs *byte, pairs int, tab *table, first int64) int

// fusePairs adds pairs of elements of a run (see fusePairsGo), with the
// AVX kernel where it runs.
func fusePairs(l *lanes, raw []byte, codes []uint8, signs []int8, tab *table, first int64) bool {
	if !avx || len(codes) < 2 {
		return fusePairsGo(l, raw, codes, signs, tab, first)
	}
	if q := len(codes) / 4; avx2 && q > 0 {
		_, _ = raw[8*q-1], signs[4*q-1]
		fuseQuadsAVX2(l, &raw[0], &codes[0], (*byte)(unsafe.Pointer(&signs[0])), q, tab, first)
		raw, codes, signs, first = raw[8*q:], codes[4*q:], signs[4*q:], first+int64(4*q)
		if len(codes) < 2 {
			return true
		}
	}
	pairs := len(codes) / 2
	_, _ = raw[4*pairs-1], signs[2*pairs-1]
	return fusePairsAVX(l, &raw[0], &codes[0], (*byte)(unsafe.Pointer(&signs[0])), pairs, tab, first) == pairs
}
