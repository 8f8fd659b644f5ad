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

// bucketSumsFast gives each bucket's sums as bucketBF16 does, for counts
// up to the largest it takes (a bucket's summing to below 2^24).
func TestBucketSums(t *testing.T) {
	if !avx512 {
		t.Skip("no AVX-512 here")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, limit := range []uint32{2, 100, 1 << 12, 1 << 20} { // 16 counts sum below 2^24
		for _, groups := range []int{1, 2, 7} {
			counts := make([]uint32, 256*groups+37) // and a partial group
			for i := range counts {
				if r.IntN(3) > 0 {
					counts[i] = uint32(r.Int64N(int64(limit)))
				}
			}
			out := make([]uint32, 48*groups)
			if g := bucketSumsFast(counts, out); g != groups {
				t.Fatalf("%d groups done of %d", g, groups)
			}
			for b := range 16 * groups {
				o := out[48*(b/16)+b%16:]
				n, s1, s2 := bucketBF16((*[16]uint32)(counts[16*b:]), 0)
				if uint64(o[0]) != n || 8*uint64(o[16]) != s1 || 64*uint64(o[32]) != s2 {
					t.Fatalf("limit %d, bucket %d: n %d sj %d sj2 %d; want %d %d %d", limit, b, o[0], o[16], o[32], n, s1/8, s2/64)
				}
			}
		}
	}
}
