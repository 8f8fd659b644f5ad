//go:build amd64 && !purego

package quant

import (
	"math/rand/v2"
	"testing"
)

// TestRowAlphaSameWithoutKernels: the row coder chooses the same alphas
// and writes the same codes with the AVX-512 kernels and with the Go
// loops (the power sums add the same float32 values in the same order),
// so a file does not depend on the machine that wrote it.
func TestRowAlphaSameWithoutKernels(t *testing.T) {
	if !avx512 {
		t.Skip("no AVX-512 here")
	}
	r := rand.New(rand.NewPCG(67, 68))
	var rows [][]float64
	for _, n := range []int{64, 3072, 8191} {
		for _, g := range rowGens {
			rows = append(rows, g.gen(r, n))
		}
	}
	for _, dt := range floatTypes {
		rc, _ := NewRationalRowCoder(dt)
		for k, ws := range rows {
			raw, _ := toRaw(t, dt, ws)
			c1, c2 := make([]uint8, len(ws)), make([]uint8, len(ws))
			a1, err1 := rc.Encode(raw, 0, c1)
			avx512 = false
			a2, err2 := rc.Encode(raw, 0, c2)
			avx512 = true
			if err1 != nil || err2 != nil || a1 != a2 || string(c1) != string(c2) {
				t.Fatalf("%v row %d (%d elements): alpha %v with the kernels, %v without (%v, %v)", dt, k, len(ws), a1, a2, err1, err2)
			}
		}
	}
}
