//go:build !amd64 || purego

package diff

// avx512 reports whether fuseBlocks has a kernel: not here.
const avx512 = false

// fusePairs adds pairs of elements of a run (see fusePairsGo).
func fusePairs(l *lanes, raw []byte, codes []uint8, signs []int8, tab *table, first int64) bool {
	return fusePairsGo(l, raw, codes, signs, tab, first)
}

// fuseBlocks adds the elements of a run in blocks of eight with a kernel
// that keeps eight lanes: none here.
func fuseBlocks(l *lanes, raw []byte, codes []uint8, signs []int8, mag *[256]float32, first int64) int {
	return 0
}
