//go:build !amd64 || purego

package quant

import "github.com/qins-dev/qins/format/dtype"

func minMax16Fast(b []byte, tiny, mx, mn uint16) (uint16, uint16) { return minMax16(b, tiny, mx, mn) }

func minMax32Fast(b []byte, tiny, mx, mn uint32) (uint32, uint32) { return minMax32(b, tiny, mx, mn) }

func encode16Fast(t *codeTable, b []byte, codes []uint8, signs []int8) int {
	return encode16(t, b, codes, signs)
}

func encode32Fast(bk *[1 << 15]uint32, b []byte, codes []uint8, signs []int8) int {
	return encode32(bk, b, codes, signs)
}

func encode16PackedFast(t *codeTable, b []byte, codes []uint8, bits []byte) int {
	return encode16Packed(t, b, codes, bits)
}

const avx512 = false

func rowCodes16Fast(logs []float64, _ []float32, t []uint8, lmin, d, top float64) int {
	n := min(len(logs), len(t))
	return rowCodes16(logs[:n], t[:n], lmin, d, top)
}

func rowCodes16Within(logs []float64, logs32 []float32, t []uint8, lmin, d, top, _, _ float64) int {
	return rowCodes16Fast(logs, logs32, t, lmin, d, top)
}

func lookup16Fast(t *byteTable, b []byte, out []byte) int { return lookup16(t, b, out) }

func rational32Fast(b []byte, alpha float32, codes []uint8) int { return rational32(b, alpha, codes) }

func count16Fast(b []byte, counts *[1 << 16]uint32) { count16(b, counts) }

func widen16Fast(dt dtype.DType, b []byte, out []byte) int { return widen16(dt, b, out) }

func rowSums32Fast(b []byte, inv float32, acc *rowAcc) { rowSums32(b, inv, acc) }

func compressAbove32Fast(b []byte, thr uint32, out []byte) int { return compressAbove32(b, thr, out) }

func magnitudesFast(p Params, tab *[256]float32, v0, step float64) bool { return false }

func packCodesFast([]uint8, []int8, []byte) int { return 0 }

func signCodesFast(mags []uint8, signs []int8, out []int8) { signCodes(mags, signs, out) }

func bucketSumsFast([]uint32, []uint32) int { return 0 }
