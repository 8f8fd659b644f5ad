//go:build amd64 && !purego

package quant

// errors16AVX512 is errorLanes on blocks of 8 patterns.
//
//go:noescape
func errors16AVX512(counts *uint32, mags *float32, t0 *byte, t *byte, dec0 *[256]float64, dec *[256]float64, blocks int, acc *[16]float64)

// errorLanesFast is errorLanes, with the AVX-512 kernel where it runs.
func errorLanesFast(counts []uint32, mags []float32, t0, t []uint8, dec0, dec *[256]float64, acc *[16]float64) {
	n := min(len(counts), len(mags), len(t0), len(t))
	done := 0
	if avx512 && n >= 8 {
		errors16AVX512(&counts[0], &mags[0], &t0[0], &t[0], dec0, dec, n/8, acc)
		done = n &^ 7
	}
	errorLanes(counts[done:n], mags[done:n], t0[done:n], t[done:n], dec0, dec, acc)
}
