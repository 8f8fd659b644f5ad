package matvec

import (
	"math"

	"github.com/qins-dev/qins/format/dtype"
)

// kernel is a set of dot products of one row by x; each returns Σ w[j]·x[j]
// over len(w) (or len(codes)) columns. xp is &x[0], for the assembly.
// coded takes the row's table as planes, and xperm, what prepare (when
// not nil) made of x for the product.
type kernel struct {
	name    string
	f32     func(w, x []float32, xp *float32) float32
	bf16    func(w []uint16, x []float32, xp *float32) float32
	f16     func(w []uint16, x []float32, xp *float32) float32
	coded   func(codes, signs []byte, t *[1024]byte, x, xperm []float32) float32
	prepare func(x []float32) []float32
}

// best is the fastest kernel this CPU runs, chosen once.
var best = &kernels()[0]

// goKernel is the portable kernel, used where no assembly one applies; the
// assembly kernels use its functions for the columns past their last full
// vector.
var goKernel = kernel{name: "go", f32: dotF32Go, bf16: dotBF16Go, f16: dotF16Go, coded: dotCodedGo}

// Four accumulators in the Go loops: about twice as fast as one, and the
// same summation order for every kernel's tail.

func dotF32Go(w, x []float32, _ *float32) float32 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float32
	j := 0
	for ; j+4 <= len(w); j += 4 {
		s0 += w[j] * x[j]
		s1 += w[j+1] * x[j+1]
		s2 += w[j+2] * x[j+2]
		s3 += w[j+3] * x[j+3]
	}
	for ; j < len(w); j++ {
		s0 += w[j] * x[j]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotBF16Go(w []uint16, x []float32, _ *float32) float32 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float32
	j := 0
	for ; j+4 <= len(w); j += 4 {
		s0 += dtype.BF16ToFloat32(w[j]) * x[j]
		s1 += dtype.BF16ToFloat32(w[j+1]) * x[j+1]
		s2 += dtype.BF16ToFloat32(w[j+2]) * x[j+2]
		s3 += dtype.BF16ToFloat32(w[j+3]) * x[j+3]
	}
	for ; j < len(w); j++ {
		s0 += dtype.BF16ToFloat32(w[j]) * x[j]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotF16Go(w []uint16, x []float32, _ *float32) float32 {
	x = x[:len(w)]
	var s0, s1 float32
	j := 0
	for ; j+2 <= len(w); j += 2 {
		s0 += dtype.F16ToFloat32(w[j]) * x[j]
		s1 += dtype.F16ToFloat32(w[j+1]) * x[j+1]
	}
	for ; j < len(w); j++ {
		s0 += dtype.F16ToFloat32(w[j]) * x[j]
	}
	return s0 + s1
}

func dotCodedGo(codes, signs []byte, planes *[1024]byte, x, _ []float32) float32 {
	var t [256]float32
	for c := range t {
		t[c] = entry(planes, byte(c))
	}
	return dotCodedTable(codes, signs, &t, x)
}

// dotCodedTable is dotCodedGo with the table as float32 values.
func dotCodedTable(codes, signs []byte, t *[256]float32, x []float32) float32 {
	x = x[:len(codes)]
	var s0, s1 float32
	if signs == nil {
		j := 0
		for ; j+2 <= len(codes); j += 2 {
			s0 += t[codes[j]] * x[j]
			s1 += t[codes[j+1]] * x[j+1]
		}
		for ; j < len(codes); j++ {
			s0 += t[codes[j]] * x[j]
		}
		return s0 + s1
	}
	signs = signs[:(len(codes)+7)/8]
	j := 0
	for ; j+8 <= len(codes); j += 8 {
		b := uint32(signs[j/8])
		for k := 0; k < 8; k += 2 {
			v0 := math.Float32frombits(math.Float32bits(t[codes[j+k]]) ^ (b>>k&1)<<31)
			v1 := math.Float32frombits(math.Float32bits(t[codes[j+k+1]]) ^ (b>>(k+1)&1)<<31)
			s0 += v0 * x[j+k]
			s1 += v1 * x[j+k+1]
		}
	}
	for ; j < len(codes); j++ {
		bit := uint32(signs[j/8]>>(j%8)) & 1
		s0 += math.Float32frombits(math.Float32bits(t[codes[j]])^bit<<31) * x[j]
	}
	return s0 + s1
}

// dotCodedTail is the product of the few columns past an assembly
// kernel's last full vector, entry by entry.
func dotCodedTail(codes, signs []byte, t *[1024]byte, x []float32) float32 {
	var s float32
	for j, c := range codes {
		v := entry(t, c)
		if signs != nil && signs[j/8]>>(j%8)&1 != 0 {
			v = -v
		}
		s += v * x[j]
	}
	return s
}
