//go:build amd64 && !purego

package quant

// magnitudesAVX512 builds the table from eight chains, in
// magnitudes_amd64.s.
//
//go:noescape
func magnitudesAVX512(tab *[256]float32, v *[8]float64, step8 float64, bad *[32]uint8)

// magnitudesFast is the geometric part of MagnitudesF32 with eight
// chains in one register, where AVX-512 runs; it reports whether it ran.
func magnitudesFast(p Params, tab *[256]float32, v0, step float64) bool {
	if !avx512 {
		return false
	}
	var v [8]float64
	v[0] = v0
	for j := 1; j < 8; j++ {
		v[j] = v[j-1] * step
	}
	step2 := step * step
	step4 := step2 * step2
	var bad [32]uint8
	keep := tab[0]
	magnitudesAVX512(tab, &v, step4*step4, &bad)
	tab[0], bad[31] = keep, bad[31]&^0x80 // code 0 is not a magnitude
	for i, b := range bad {
		if b != 0 {
			fix32(p, tab, 255-8*i, uint64(b))
		}
	}
	return true
}
