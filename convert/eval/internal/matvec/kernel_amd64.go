//go:build !purego

package matvec

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// The assembly dot products: n columns, a multiple of 16 (x512) or 8
// (x256).

//go:noescape
func dotF32x512(n int, w, x *float32) float32

//go:noescape
func dotBF16x512(n int, w *uint16, x *float32) float32

//go:noescape
func dotF16x512(n int, w *uint16, x *float32) float32

//go:noescape
func dotCodedx512(n int, codes, signs *byte, t, x *float32) float32

//go:noescape
func dotCodedNSx512(n int, codes *byte, t, x *float32) float32

//go:noescape
func dotF32x256(n int, w, x *float32) float32

//go:noescape
func dotBF16x256(n int, w *uint16, x *float32) float32

//go:noescape
func dotF16x256(n int, w *uint16, x *float32) float32

//go:noescape
func dotCodedx256(n int, codes, signs *byte, t, x *float32) float32

//go:noescape
func dotCodedNSx256(n int, codes *byte, t, x *float32) float32

// asmKernel makes the kernel of assembly functions of vector step step;
// the Go functions do the columns past the last full vector.
func asmKernel(name string, step int, f32 func(int, *float32, *float32) float32, bf16, f16 func(int, *uint16, *float32) float32,
	coded func(int, *byte, *byte, *float32, *float32) float32, codedNS func(int, *byte, *float32, *float32) float32) kernel {
	k := kernel{name: name}
	k.f32 = func(w, x []float32, xp *float32) float32 {
		n := len(w) &^ (step - 1)
		var s float32
		if n > 0 {
			s = f32(n, unsafe.SliceData(w), xp)
		}
		return s + dotF32Go(w[n:], x[n:], nil)
	}
	k.bf16 = func(w []uint16, x []float32, xp *float32) float32 {
		n := len(w) &^ (step - 1)
		var s float32
		if n > 0 {
			s = bf16(n, unsafe.SliceData(w), xp)
		}
		return s + dotBF16Go(w[n:], x[n:], nil)
	}
	k.f16 = dotF16Go
	if f16 != nil {
		k.f16 = func(w []uint16, x []float32, xp *float32) float32 {
			n := len(w) &^ (step - 1)
			var s float32
			if n > 0 {
				s = f16(n, unsafe.SliceData(w), xp)
			}
			return s + dotF16Go(w[n:], x[n:], nil)
		}
	}
	k.coded = func(codes, signs []byte, planes *[1024]byte, x, _ []float32) float32 {
		n := len(codes) &^ (step - 1)
		var s float32
		if n > 0 {
			// The gathers read float32 entries: the row's table, unpacked.
			var t [256]float32
			for c := range t {
				t[c] = entry(planes, byte(c))
			}
			if signs == nil {
				s = codedNS(n, unsafe.SliceData(codes), &t[0], unsafe.SliceData(x))
			} else {
				s = coded(n, unsafe.SliceData(codes), unsafe.SliceData(signs), &t[0], unsafe.SliceData(x))
			}
		}
		if signs != nil {
			signs = signs[n/8:]
		}
		return s + dotCodedTail(codes[n:], signs, planes, x[n:])
	}
	return k
}

// prefetchTable asks the CPU to bring the 1024 bytes at p into cache.
//
//go:noescape
func prefetchTable(p *byte)

//go:noescape
func sumx512(n int, p *byte) uint64

// sumBlocks sums the words of b's leading multiple of 256 bytes with
// AVX-512 where the CPU has it, and returns how many bytes it summed.
func sumBlocks(b []byte) (uint64, int) {
	n := len(b) &^ 255
	if n == 0 || !(cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW) {
		return 0, 0
	}
	return sumx512(n, unsafe.SliceData(b)), n
}

//go:noescape
func dotCodedVBMI(n int, codes, signs, planes *byte, xperm *float32) float32

//go:noescape
func dotCodedNSVBMI(n int, codes, planes *byte, xperm *float32) float32

// vbmiBlock is the columns dotCodedVBMI takes at a time.
const vbmiBlock = 64

// permuteVBMI returns x's full blocks of 64 in the order dotCodedVBMI
// multiplies the looked-up values in: byte unpacks within 128-bit lanes
// put element 16L+4j+i of a block in lane L, position i, of vector j.
func permuteVBMI(x []float32) []float32 {
	n := len(x) &^ (vbmiBlock - 1)
	out := make([]float32, n)
	for b := 0; b < n; b += vbmiBlock {
		for j := range 4 {
			for l := range 4 {
				copy(out[b+16*j+4*l:b+16*j+4*l+4], x[b+16*l+4*j:b+16*l+4*j+4])
			}
		}
	}
	return out
}

// vbmiKernel is k with the coded product by byte shuffles (AVX-512 VBMI)
// instead of gathers: four 256-byte planes of the table looked up with
// VPERMI2B, about twice the gathers' speed.
func vbmiKernel(k kernel) kernel {
	k.name = "avx512vbmi"
	k.prepare = permuteVBMI
	k.coded = func(codes, signs []byte, planes *[1024]byte, x, xperm []float32) float32 {
		n := len(codes) &^ (vbmiBlock - 1)
		var s float32
		if n > 0 {
			if signs == nil {
				s = dotCodedNSVBMI(n, unsafe.SliceData(codes), &planes[0], unsafe.SliceData(xperm))
			} else {
				s = dotCodedVBMI(n, unsafe.SliceData(codes), unsafe.SliceData(signs), &planes[0], unsafe.SliceData(xperm))
			}
		}
		if signs != nil {
			signs = signs[n/8:]
		}
		return s + dotCodedTail(codes[n:], signs, planes, x[n:])
	}
	return k
}

// kernels lists the kernels this CPU can run, fastest first.
func kernels() []kernel {
	var ks []kernel
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW {
		k := asmKernel("avx512", 16, dotF32x512, dotBF16x512, dotF16x512, dotCodedx512, dotCodedNSx512)
		if cpu.X86.HasAVX512VBMI {
			ks = append(ks, vbmiKernel(k))
		}
		ks = append(ks, k)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		var f16 func(int, *uint16, *float32) float32
		if cpu.X86.HasF16C {
			f16 = dotF16x256
		}
		ks = append(ks, asmKernel("avx2", 8, dotF32x256, dotBF16x256, f16, dotCodedx256, dotCodedNSx256))
	}
	return append(ks, goKernel)
}
