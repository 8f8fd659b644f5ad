//go:build !amd64 || purego

package diff

// fusePairs adds pairs of elements of a run (see fusePairsGo).
func fusePairs(l *lanes, raw []byte, codes []uint8, signs []int8, tab *table, first int64) bool {
	return fusePairsGo(l, raw, codes, signs, tab, first)
}
