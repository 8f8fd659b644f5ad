//go:build !amd64 || purego

package diff

// avx512 reports whether fuseBlocks has a kernel, avx512dq
// fusePackedBlocks: not here.
const avx512, avx512dq = false, false

// fusePairs adds pairs of elements of a run (see fusePairsGo).
func fusePairs(l *lanes, raw []byte, codes []uint8, signs []int8, tab *table, first int64) bool {
	return fusePairsGo(l, raw, codes, signs, tab, first)
}

// fuseBlocks adds the elements of a run in blocks of eight with a kernel
// that keeps eight lanes: none here.
func fuseBlocks(l *lanes, raw []byte, codes []uint8, signs []int8, mag *[256]float32, first int64) int {
	return 0
}

// fusePackedBlocks adds blocks of eight elements of the packed layout
// with a kernel: none here.
func fusePackedBlocks(l *lanes, raw []byte, codes []uint8, bits []byte, bitOff int, mag *[256]float32, first int64) (int, int) {
	return 0, 0
}
