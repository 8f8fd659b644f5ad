//go:build amd64 && !purego

#include "textflag.h"

// The layout of lanes: sumAbs 0, sse 64, sa2 128, sb2 192, sab 256
// (eight float64 each), maxErr 320 (eight float64), maxIdx 384 (eight
// int64), identical 448.

// func fusePairsAVX(l *lanes, raw *byte, codes *byte, signs *byte, pairs int, tab *table, first int64) int
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
	VMOVUPD 64(R12), X10  // sse
	VMOVUPD 128(R12), X11  // sa2
	VMOVUPD 192(R12), X12  // sb2
	VMOVUPD 256(R12), X13  // sab
	VMOVUPD 320(R12), X4   // maxErr[0:2]
	VMOVDQU 384(R12), X7  // maxIdx[0:2]
	MOVQ    448(R12), R13 // identical
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
	VMAXPD  X4, X3, X4
	VBLENDVPD X5, X6, X7, X7
	VPADDQ  X15, X6, X6
	VCMPPD  $0, X1, X0, X5      // a == b, d == 0
	VMOVMSKPD X5, AX
	POPCNTL AX, AX
	ADDQ    AX, R13
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
	VMOVUPD X10, 64(R12)
	VMOVUPD X11, 128(R12)
	VMOVUPD X12, 192(R12)
	VMOVUPD X13, 256(R12)
	VMOVUPD X4, 320(R12)
	VMOVDQU X7, 384(R12)
	MOVQ    R13, 448(R12)
	MOVQ    BX, ret+56(FP)
	RET

DATA ·fuseOnes<>+0(SB)/4, $1
DATA ·fuseOnes<>+4(SB)/4, $1
DATA ·fuseOnes<>+8(SB)/4, $1
DATA ·fuseOnes<>+12(SB)/4, $1
GLOBL ·fuseOnes<>(SB), RODATA|NOPTR, $16

DATA ·fuseThrees<>+0(SB)/4, $3
DATA ·fuseThrees<>+4(SB)/4, $3
DATA ·fuseThrees<>+8(SB)/4, $3
DATA ·fuseThrees<>+12(SB)/4, $3
GLOBL ·fuseThrees<>(SB), RODATA|NOPTR, $16

DATA ·fuseIota<>+0(SB)/8, $0
DATA ·fuseIota<>+8(SB)/8, $1
DATA ·fuseIota<>+16(SB)/8, $2
DATA ·fuseIota<>+24(SB)/8, $3
GLOBL ·fuseIota<>(SB), RODATA|NOPTR, $32

DATA ·fuseFours<>+0(SB)/8, $4
DATA ·fuseFours<>+8(SB)/8, $4
DATA ·fuseFours<>+16(SB)/8, $4
DATA ·fuseFours<>+24(SB)/8, $4
GLOBL ·fuseFours<>(SB), RODATA|NOPTR, $32

DATA ·fuseAbs<>+0(SB)/8, $0x7fffffffffffffff
DATA ·fuseAbs<>+8(SB)/8, $0x7fffffffffffffff
DATA ·fuseAbs<>+16(SB)/8, $0x7fffffffffffffff
DATA ·fuseAbs<>+24(SB)/8, $0x7fffffffffffffff
GLOBL ·fuseAbs<>(SB), RODATA|NOPTR, $32

// func fuseQuadsAVX2(l *lanes, raw *byte, codes *byte, signs *byte, quads int, tab *table, first int64) int
//
// fusePairsAVX on two pairs at a time: the values of four elements are
// gathered, converted and multiplied in 256-bit registers, then each sum
// adds the first pair's half and the second's, in that order, to its
// 128-bit lanes, so that every lane adds what fusePairsGo adds, in its
// order. The largest errors are kept by position modulo 4. An invalid
// sign reads the table's row of NaNs, which the caller sees in the sums.
// Returns quads.
TEXT ·fuseQuadsAVX2(SB), NOSPLIT, $0-64
	MOVQ l+0(FP), R12
	MOVQ raw+8(FP), SI
	MOVQ codes+16(FP), DI
	MOVQ signs+24(FP), DX
	MOVQ quads+32(FP), CX
	MOVQ tab+40(FP), R8
	MOVQ first+48(FP), AX
	VMOVUPD 0(R12), X9    // sumAbs
	VMOVUPD 64(R12), X10  // sse
	VMOVUPD 128(R12), X11  // sa2
	VMOVUPD 192(R12), X12  // sb2
	VMOVUPD 256(R12), X13  // sab
	VMOVUPD 320(R12), Y15  // maxErr
	VMOVDQU 384(R12), Y8  // maxIdx
	VPXOR   Y14, Y14, Y14 // identical, by lane
	VMOVQ   AX, X7
	VPBROADCASTQ X7, Y7
	VPADDQ  ·fuseIota<>(SB), Y7, Y7 // positions of the quad
	XORQ    BX, BX
	TESTQ   CX, CX
	JZ      qdone
qloop:
	VPMOVSXBD (DX)(BX*4), X1
	VPADDD  ·fuseOnes<>(SB), X1, X1
	VPMINUD ·fuseThrees<>(SB), X1, X1   // sign + 1, or 3 (the NaN row)
	VPMOVZXBD (DI)(BX*4), X2
	VPSLLD  $8, X1, X1
	VPADDD  X2, X1, X1                  // table index
	VPCMPEQD Y6, Y6, Y6
	VGATHERDPD Y6, (R8)(X1*8), Y4       // b
	VPMOVZXWD (SI)(BX*8), X0
	VPSLLD  $16, X0, X0
	VCVTPS2PD X0, Y0                    // a
	VSUBPD  Y4, Y0, Y2                  // d
	VANDPD  ·fuseAbs<>(SB), Y2, Y3      // |d|
	VCMPPD  $0, Y4, Y0, Y6              // a == b, d == 0
	VPSUBQ  Y6, Y14, Y14
	VCMPPD  $0x1e, Y15, Y3, Y6          // |d| > maxErr
	VMAXPD  Y15, Y3, Y15
	VBLENDVPD Y6, Y7, Y8, Y8
	VPADDQ  ·fuseFours<>(SB), Y7, Y7
	// The sums, each the first pair's half and then the second's.
	VEXTRACTF128 $1, Y3, X5
	VADDPD  X3, X9, X9
	VADDPD  X5, X9, X9
	VMULPD  Y2, Y2, Y2
	VMULPD  Y4, Y0, Y1
	VMULPD  Y0, Y0, Y0
	VMULPD  Y4, Y4, Y4
	VEXTRACTF128 $1, Y2, X5
	VADDPD  X2, X10, X10
	VADDPD  X5, X10, X10
	VEXTRACTF128 $1, Y0, X5
	VADDPD  X0, X11, X11
	VADDPD  X5, X11, X11
	VEXTRACTF128 $1, Y4, X5
	VADDPD  X4, X12, X12
	VADDPD  X5, X12, X12
	VEXTRACTF128 $1, Y1, X5
	VADDPD  X1, X13, X13
	VADDPD  X5, X13, X13
	INCQ    BX
	CMPQ    BX, CX
	JB      qloop
qdone:
	VMOVUPD X9, 0(R12)
	VMOVUPD X10, 64(R12)
	VMOVUPD X11, 128(R12)
	VMOVUPD X12, 192(R12)
	VMOVUPD X13, 256(R12)
	VMOVUPD Y15, 320(R12)
	VMOVDQU Y8, 384(R12)
	VEXTRACTI128 $1, Y14, X5
	VPADDQ  X5, X14, X14
	VPSHUFD $0x4e, X14, X5
	VPADDQ  X5, X14, X14
	VMOVQ   X14, AX
	ADDQ    AX, 448(R12)
	VZEROUPPER
	MOVQ    BX, ret+56(FP)
	RET

DATA ·fuseIota8<>+0(SB)/8, $0
DATA ·fuseIota8<>+8(SB)/8, $1
DATA ·fuseIota8<>+16(SB)/8, $2
DATA ·fuseIota8<>+24(SB)/8, $3
DATA ·fuseIota8<>+32(SB)/8, $4
DATA ·fuseIota8<>+40(SB)/8, $5
DATA ·fuseIota8<>+48(SB)/8, $6
DATA ·fuseIota8<>+56(SB)/8, $7
GLOBL ·fuseIota8<>(SB), RODATA|NOPTR, $64

// func fuseAVX512(l *lanes, raw *byte, codes *byte, signs *byte, blocks int, mag *[256]float32, first int64)
//
// Eight elements at a time, one per lane of a 512-bit register: the
// magnitudes gathered from mag (float32, NaN for code 0), times the
// signs, the BF16 values widened, and each sum kept by lane, the products
// fused into the additions. The largest errors are kept by lane, the
// first of each lane's largest; each lane's largest sign + 1 (unsigned)
// goes to signMax, which the caller checks.
TEXT ·fuseAVX512(SB), NOSPLIT, $0-56
	MOVQ l+0(FP), R12
	MOVQ raw+8(FP), SI
	MOVQ codes+16(FP), DI
	MOVQ signs+24(FP), DX
	MOVQ blocks+32(FP), CX
	MOVQ mag+40(FP), R8
	MOVQ first+48(FP), AX
	VMOVUPD 0(R12), Z9     // sumAbs
	VMOVUPD 64(R12), Z10   // sse
	VMOVUPD 128(R12), Z11  // sa2
	VMOVUPD 192(R12), Z12  // sb2
	VMOVUPD 256(R12), Z13  // sab
	VMOVUPD 320(R12), Z15  // maxErr
	VMOVDQU64 384(R12), Z8 // maxIdx
	MOVQ    448(R12), R13  // identical
	VMOVDQU32 456(R12), Y16 // signMax
	MOVQ    AX, R14        // position of the block
	VMOVDQU64 ·fuseIota8<>(SB), Z18
	MOVQ    $0x7fffffffffffffff, AX
	VPBROADCASTQ AX, Z5    // |x| mask
	MOVL    $1, AX
	VPBROADCASTD AX, Y14
	TESTQ   CX, CX
	JZ      zdone
zloop:
	// Prefetch ahead: the hardware prefetcher stops at each 4 KiB page
	// of a mapping.
	PREFETCHT0 1024(SI)
	PREFETCHT0 512(DI)
	PREFETCHT0 512(DX)
	VPMOVZXBD (DI), Y2
	KXNORW  K1, K1, K1
	VGATHERDPS (R8)(Y2*4), K1, Y4 // magnitudes
	VPMOVSXBD (DX), Y1
	VPADDD  Y14, Y1, Y3
	VPMAXUD Y3, Y16, Y16   // sign + 1: above 2 is invalid
	VCVTDQ2PS Y1, Y1
	VMULPS  Y1, Y4, Y4
	VCVTPS2PD Y4, Z4       // b
	VPMOVZXWD (SI), Y0
	VPSLLD  $16, Y0, Y0
	VCVTPS2PD Y0, Z0       // a
	VSUBPD  Z4, Z0, Z2     // d
	VPANDQ  Z5, Z2, Z3     // |d|
	VCMPPD  $0, Z4, Z0, K2 // a == b, d == 0
	KMOVW   K2, AX
	POPCNTL AX, AX
	ADDQ    AX, R13
	VCMPPD  $0x1e, Z15, Z3, K3 // |d| > maxErr
	KORTESTW K3, K3
	JNZ     zbetter // rare but early in a chunk
zback:
	ADDQ    $8, R14
	VADDPD  Z3, Z9, Z9
	VFMADD231PD Z2, Z2, Z10
	VFMADD231PD Z0, Z0, Z11
	VFMADD231PD Z4, Z4, Z12
	VFMADD231PD Z4, Z0, Z13
	ADDQ    $16, SI
	ADDQ    $8, DI
	ADDQ    $8, DX
	DECQ    CX
	JNZ     zloop
	JMP     zdone
zbetter:
	// A larger error in some lane: keep it and its position.
	VMOVAPD Z3, K3, Z15
	VPBROADCASTQ R14, Z17
	VPADDQ  Z18, Z17, Z17
	VMOVDQA64 Z17, K3, Z8
	JMP     zback
zdone:
	VMOVUPD Z9, 0(R12)
	VMOVUPD Z10, 64(R12)
	VMOVUPD Z11, 128(R12)
	VMOVUPD Z12, 192(R12)
	VMOVUPD Z13, 256(R12)
	VMOVUPD Z15, 320(R12)
	VMOVDQU64 Z8, 384(R12)
	MOVQ    R13, 448(R12)
	VMOVDQU32 Y16, 456(R12)
	VZEROUPPER
	RET

// func fusePackedAVX512(l *lanes, raw *byte, codes *byte, bits *byte, blocks int, mag *[256]float32, first int64)
//
// fuseAVX512 for the packed layout: each block's signs are a byte of
// bits (set for negative), code 0 an exact zero (mag[0] is 0); a code 0
// whose bit is set sets signMax[0] to 255, which the caller sees.
TEXT ·fusePackedAVX512(SB), NOSPLIT, $0-56
	MOVQ l+0(FP), R12
	MOVQ raw+8(FP), SI
	MOVQ codes+16(FP), DI
	MOVQ bits+24(FP), DX
	MOVQ blocks+32(FP), CX
	MOVQ mag+40(FP), R8
	MOVQ first+48(FP), AX
	VMOVUPD 0(R12), Z9     // sumAbs
	VMOVUPD 64(R12), Z10   // sse
	VMOVUPD 128(R12), Z11  // sa2
	VMOVUPD 192(R12), Z12  // sb2
	VMOVUPD 256(R12), Z13  // sab
	VMOVUPD 320(R12), Z15  // maxErr
	VMOVDQU64 384(R12), Z8 // maxIdx
	MOVQ    448(R12), R13  // identical
	MOVQ    AX, R14        // position of the block
	VMOVDQU64 ·fuseIota8<>(SB), Z18
	MOVQ    $0x7fffffffffffffff, AX
	VPBROADCASTQ AX, Z5    // |x| mask
	MOVL    $0x80000000, AX
	VPBROADCASTD AX, Y14   // float32 sign bit
	KXORW   K6, K6, K6     // negative zeros
	TESTQ   CX, CX
	JZ      pdone
ploop:
	PREFETCHT0 1024(SI)
	PREFETCHT0 512(DI)
	VPMOVZXBD (DI), Y2
	KXNORW  K1, K1, K1
	VGATHERDPS (R8)(Y2*4), K1, Y4 // magnitudes
	KMOVB   (DX), K4       // negative
	VPTESTNMD Y2, Y2, K5   // code 0
	KANDW   K4, K5, K5
	KORW    K5, K6, K6
	VXORPS  Y14, Y4, K4, Y4
	VCVTPS2PD Y4, Z4       // b
	VPMOVZXWD (SI), Y0
	VPSLLD  $16, Y0, Y0
	VCVTPS2PD Y0, Z0       // a
	VSUBPD  Z4, Z0, Z2     // d
	VPANDQ  Z5, Z2, Z3     // |d|
	VCMPPD  $0, Z4, Z0, K2 // a == b, d == 0
	KMOVW   K2, AX
	POPCNTL AX, AX
	ADDQ    AX, R13
	VCMPPD  $0x1e, Z15, Z3, K3 // |d| > maxErr
	KORTESTW K3, K3
	JNZ     pbetter // rare but early in a chunk
pback:
	ADDQ    $8, R14
	VADDPD  Z3, Z9, Z9
	VFMADD231PD Z2, Z2, Z10
	VFMADD231PD Z0, Z0, Z11
	VFMADD231PD Z4, Z4, Z12
	VFMADD231PD Z4, Z0, Z13
	ADDQ    $16, SI
	ADDQ    $8, DI
	INCQ    DX
	DECQ    CX
	JNZ     ploop
	JMP     pdone
pbetter:
	// A larger error in some lane: keep it and its position.
	VMOVAPD Z3, K3, Z15
	VPBROADCASTQ R14, Z17
	VPADDQ  Z18, Z17, Z17
	VMOVDQA64 Z17, K3, Z8
	JMP     pback
pdone:
	VMOVUPD Z9, 0(R12)
	VMOVUPD Z10, 64(R12)
	VMOVUPD Z11, 128(R12)
	VMOVUPD Z12, 192(R12)
	VMOVUPD Z13, 256(R12)
	VMOVUPD Z15, 320(R12)
	VMOVDQU64 Z8, 384(R12)
	MOVQ    R13, 448(R12)
	KMOVW   K6, AX
	TESTL   AX, AX
	JZ      pret
	MOVL    $255, 456(R12)
pret:
	VZEROUPPER
	RET
