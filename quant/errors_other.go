//go:build !amd64 || purego

package quant

func errorLanesFast(counts []uint32, mags []float32, t0, t []uint8, dec0, dec *[256]float64, acc *[16]float64) {
	errorLanes(counts, mags, t0, t, dec0, dec, acc)
}
