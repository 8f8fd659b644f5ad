//go:build amd64 && !purego

#include "textflag.h"

// func fusePairsAVX(l *lanes, raw *byte, codes *byte, signs *byte, pairs int, tab *[3][256]float64, first int64) int
//
// fusePairsGo with both lanes in one 128-bit register: the same
// operations in the same order on each lane (no FMA), so the same sums to
// the bit. Returns the pairs added, fewer than pairs at an invalid sign.
TEXT ·fusePairsAVX(SB), NOSPLIT, $0-64
	MOVQ l+0(FP), R12
	MOVQ raw+8(FP), SI
	MOVQ codes+16(FP), DI
	MOVQ signs+24(FP), DX
	MOVQ pairs+32(FP), CX
	MOVQ tab+40(FP), R8
	MOVQ first+48(FP), AX
	VMOVUPD 0(R12), X9    // sumAbs
	VMOVUPD 16(R12), X10  // sse
	VMOVUPD 32(R12), X11  // sa2
	VMOVUPD 48(R12), X12  // sb2
	VMOVUPD 64(R12), X13  // sab
	VMOVUPD 80(R12), X4   // maxErr
	VMOVDQU 96(R12), X7   // maxIdx
	VMOVDQU 112(R12), X8  // identical
	VMOVQ   AX, X6
	INCQ    AX
	VMOVQ   AX, X5
	VPUNPCKLQDQ X5, X6, X6 // positions of the pair
	MOVQ    $0x7fffffffffffffff, AX
	VMOVQ   AX, X14
	VPUNPCKLQDQ X14, X14, X14 // |x| mask
	MOVQ    $2, AX
	VMOVQ   AX, X15
	VPUNPCKLQDQ X15, X15, X15
	XORQ    BX, BX        // pairs done
	TESTQ   CX, CX
	JZ      done
loop:
	MOVBQSX (DX), R9
	MOVBQSX 1(DX), R10
	INCQ    R9
	INCQ    R10
	CMPQ    R9, $2
	JA      done
	CMPQ    R10, $2
	JA      done
	SHLQ    $8, R9
	SHLQ    $8, R10
	MOVBQZX (DI), R11
	ADDQ    R11, R9
	MOVBQZX 1(DI), R11
	ADDQ    R11, R10
	VMOVSD  (R8)(R9*8), X1
	VMOVHPD (R8)(R10*8), X1, X1 // b
	MOVL    (SI), AX
	MOVL    AX, R11
	SHLL    $16, R11
	ANDL    $0xffff0000, AX
	SHLQ    $32, AX
	ORQ     R11, AX
	VMOVQ   AX, X0
	VCVTPS2PD X0, X0            // a
	VSUBPD  X1, X0, X2          // d = a - b
	VANDPD  X14, X2, X3         // |d|
	VCMPPD  $0x1e, X4, X3, X5   // |d| > maxErr
	VBLENDVPD X5, X3, X4, X4
	VBLENDVPD X5, X6, X7, X7
	VPADDQ  X15, X6, X6
	VCMPPD  $0, X1, X0, X5      // a == b, d == 0
	VPSUBQ  X5, X8, X8
	VADDPD  X3, X9, X9
	VMULPD  X2, X2, X2
	VADDPD  X2, X10, X10
	VMULPD  X1, X0, X5
	VMULPD  X0, X0, X0
	VMULPD  X1, X1, X1
	VADDPD  X0, X11, X11
	VADDPD  X1, X12, X12
	VADDPD  X5, X13, X13
	ADDQ    $4, SI
	ADDQ    $2, DI
	ADDQ    $2, DX
	INCQ    BX
	CMPQ    BX, CX
	JB      loop
done:
	VMOVUPD X9, 0(R12)
	VMOVUPD X10, 16(R12)
	VMOVUPD X11, 32(R12)
	VMOVUPD X12, 48(R12)
	VMOVUPD X13, 64(R12)
	VMOVUPD X4, 80(R12)
	VMOVDQU X7, 96(R12)
	VMOVDQU X8, 112(R12)
	MOVQ    BX, ret+56(FP)
	RET
