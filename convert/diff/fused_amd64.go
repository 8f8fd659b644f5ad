//go:build amd64 && !purego

package diff

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// avx reports whether fusePairsAVX can run.
var avx = cpu.X86.HasAVX

// fusePairsAVX is fusePairsGo on pairs pairs, in fused_amd64.s.
//
//go:noescape
func fusePairsAVX(l *lanes, raw *byte, codes *byte, signs *byte, pairs int, tab *[3][256]float64, first int64) int

// fusePairs adds pairs of elements of a run (see fusePairsGo), with the
// AVX kernel where it runs.
func fusePairs(l *lanes, raw []byte, codes []uint8, signs []int8, tab *[3][256]float64, first int64) bool {
	if !avx || len(codes) < 2 {
		return fusePairsGo(l, raw, codes, signs, tab, first)
	}
	pairs := len(codes) / 2
	_, _ = raw[4*pairs-1], signs[2*pairs-1]
	return fusePairsAVX(l, &raw[0], &codes[0], (*byte)(unsafe.Pointer(&signs[0])), pairs, tab, first) == pairs
}
