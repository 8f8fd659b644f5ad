//go:build amd64 && !purego

#include "textflag.h"

// func errors16AVX512(counts *uint32, mags *float32, t0 *byte, t *byte, dec0 *[256]float64, dec *[256]float64, blocks int, acc *[16]float64)
//
// errorLanes on blocks of 8 patterns, lane k taking the k-th of each: the
// same operations in the same order, so the same sums.
TEXT ·errors16AVX512(SB), NOSPLIT, $0-64
	MOVQ    counts+0(FP), SI
	MOVQ    mags+8(FP), DX
	MOVQ    t0+16(FP), R8
	MOVQ    t+24(FP), R9
	MOVQ    dec0+32(FP), R10
	MOVQ    dec+40(FP), R11
	MOVQ    blocks+48(FP), CX
	MOVQ    acc+56(FP), DI
	VMOVUPD (DI), Z0
	VMOVUPD 64(DI), Z1
	TESTQ   CX, CX
	JZ      done
loop:
	VPMOVZXBD (R8), Y2            // the codes under p0
	VPMOVZXBD (R9), Y3            // and under p
	KXNORW  K1, K1, K1
	KXNORW  K2, K2, K2
	VPXORQ  Z4, Z4, Z4
	VPXORQ  Z5, Z5, Z5
	VGATHERDPD (R10)(Y2*8), K1, Z4 // their decoded magnitudes
	VGATHERDPD (R11)(Y3*8), K2, Z5
	VCVTPS2PD (DX), Z6            // a
	VCVTUDQ2PD (SI), Z7           // w
	VSUBPD  Z4, Z6, Z4            // x0 = a - dec0
	VSUBPD  Z5, Z6, Z5            // x = a - dec
	VMULPD  Z4, Z7, Z8            // w*x0
	VMULPD  Z4, Z8, Z8            // *x0
	VADDPD  Z8, Z0, Z0
	VMULPD  Z5, Z7, Z9
	VMULPD  Z5, Z9, Z9
	VADDPD  Z9, Z1, Z1
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $8, R8
	ADDQ    $8, R9
	DECQ    CX
	JNZ     loop
done:
	VMOVUPD Z0, (DI)
	VMOVUPD Z1, 64(DI)
	VZEROUPPER
	RET
