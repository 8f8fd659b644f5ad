//go:build amd64 && !purego

#include "textflag.h"

// func minMax16AVX512(p *byte, blocks int, tiny uint16, out *[64]uint16)
TEXT ·minMax16AVX512(SB), NOSPLIT, $0-32
	MOVQ    p+0(FP), SI
	MOVQ    blocks+8(FP), CX
	MOVWLZX tiny+16(FP), AX
	MOVQ    out+24(FP), DI
	VPBROADCASTW AX, Z4
	MOVL    $0x7fff, AX
	VPBROADCASTW AX, Z5
	VPXORQ  Z0, Z0, Z0            // largest magnitude
	VPTERNLOGD $0xff, Z1, Z1, Z1  // smallest above tiny
	VPXORQ  Z6, Z6, Z6            // the same for odd blocks
	VPTERNLOGD $0xff, Z7, Z7, Z7
	SHRQ    $1, CX                // pairs of blocks
	JZ      one
pair:
	VPANDD  (SI), Z5, Z2
	VPANDD  64(SI), Z5, Z3
	VPMAXUW Z2, Z0, Z0
	VPMAXUW Z3, Z6, Z6
	VPCMPUW $6, Z4, Z2, K1        // Z2 > tiny
	VPCMPUW $6, Z4, Z3, K2
	VPMINUW Z2, Z1, K1, Z1
	VPMINUW Z3, Z7, K2, Z7
	ADDQ    $128, SI
	DECQ    CX
	JNZ     pair
one:
	TESTQ   $1, blocks+8(FP)
	JZ      done
	VPANDD  (SI), Z5, Z2
	VPMAXUW Z2, Z0, Z0
	VPCMPUW $6, Z4, Z2, K1
	VPMINUW Z2, Z1, K1, Z1
done:
	VPMAXUW Z6, Z0, Z0
	VPMINUW Z7, Z1, Z1
	VMOVDQU16 Z0, (DI)
	VMOVDQU16 Z1, 64(DI)
	VZEROUPPER
	RET

// func minMax32AVX512(p *byte, blocks int, tiny uint32, out *[32]uint32)
TEXT ·minMax32AVX512(SB), NOSPLIT, $0-32
	MOVQ    p+0(FP), SI
	MOVQ    blocks+8(FP), CX
	MOVL    tiny+16(FP), AX
	MOVQ    out+24(FP), DI
	VPBROADCASTD AX, Z4
	MOVL    $0x7fffffff, AX
	VPBROADCASTD AX, Z5
	VPXORQ  Z0, Z0, Z0
	VPTERNLOGD $0xff, Z1, Z1, Z1
	VPXORQ  Z6, Z6, Z6
	VPTERNLOGD $0xff, Z7, Z7, Z7
	SHRQ    $1, CX
	JZ      one
pair:
	VPANDD  (SI), Z5, Z2
	VPANDD  64(SI), Z5, Z3
	VPMAXUD Z2, Z0, Z0
	VPMAXUD Z3, Z6, Z6
	VPCMPUD $6, Z4, Z2, K1
	VPCMPUD $6, Z4, Z3, K2
	VPMINUD Z2, Z1, K1, Z1
	VPMINUD Z3, Z7, K2, Z7
	ADDQ    $128, SI
	DECQ    CX
	JNZ     pair
one:
	TESTQ   $1, blocks+8(FP)
	JZ      done
	VPANDD  (SI), Z5, Z2
	VPMAXUD Z2, Z0, Z0
	VPCMPUD $6, Z4, Z2, K1
	VPMINUD Z2, Z1, K1, Z1
done:
	VPMAXUD Z6, Z0, Z0
	VPMINUD Z7, Z1, Z1
	VMOVDQU32 Z0, (DI)
	VMOVDQU32 Z1, 64(DI)
	VZEROUPPER
	RET

// func encode16AVX512(t *codeTable, p *byte, blocks int, codes *byte, signs *byte) int
//
// Per block of 32 values: the codes are gathered from the table, four
// bytes at each magnitude (the table is padded for it), and the signs come
// from two masks, magnitude not zero and sign bit set.
TEXT ·encode16AVX512(SB), NOSPLIT, $0-48
	MOVQ    t+0(FP), DI
	MOVQ    p+8(FP), SI
	MOVQ    blocks+16(FP), CX
	MOVQ    codes+24(FP), R8
	MOVQ    signs+32(FP), R9
	XORQ    BX, BX
	MOVL    $0x7fff, AX
	VPBROADCASTD AX, Z5
	VPBROADCASTW AX, Z11
	MOVL    $1, AX
	VPBROADCASTB AX, Y9           // +1 bytes
	VPCMPEQB Y10, Y10, Y10        // -1 bytes
	TESTQ   CX, CX
	JZ      done
loop:
	VPMOVZXWD (SI), Z2
	VPMOVZXWD 32(SI), Z3
	VPANDD  Z5, Z2, Z2            // magnitudes, as dword indices
	VPANDD  Z5, Z3, Z3
	KXNORW  K1, K1, K1
	KXNORW  K2, K2, K2
	VPXORD  Z6, Z6, Z6
	VPXORD  Z7, Z7, Z7
	VPGATHERDD (DI)(Z2*1), K1, Z6
	VPGATHERDD (DI)(Z3*1), K2, Z7
	VPMOVDB Z6, X6
	VPMOVDB Z7, X7
	VINSERTI128 $1, X7, Y6, Y6
	VPTESTNMB Y6, Y6, K3          // a code 0: no entry
	KORTESTD K3, K3
	JNZ     done
	VMOVDQU8 Y6, (R8)
	VMOVDQU16 (SI), Z0
	VPMOVW2M Z0, K5               // sign bits
	VPTESTMW Z11, Z0, K4          // magnitude not zero
	KANDD   K4, K5, K5
	VMOVDQU8.Z Y9, K4, Y8
	VMOVDQU8 Y10, K5, Y8
	VMOVDQU8 Y8, (R9)
	ADDQ    $64, SI
	ADDQ    $32, R8
	ADDQ    $32, R9
	INCQ    BX
	CMPQ    BX, CX
	JLT     loop
done:
	MOVQ    BX, ret+40(FP)
	VZEROUPPER
	RET

// func encode32AVX512(bk *[1 << 15]uint32, p *byte, blocks int, codes *byte, signs *byte) int
//
// Per block of 16 values: each value's bucket entry is gathered; the code
// is the bucket's start code, less one when the low 16 bits of the
// magnitude reach the bucket's threshold.
TEXT ·encode32AVX512(SB), NOSPLIT, $0-48
	MOVQ    bk+0(FP), DI
	MOVQ    p+8(FP), SI
	MOVQ    blocks+16(FP), CX
	MOVQ    codes+24(FP), R8
	MOVQ    signs+32(FP), R9
	XORQ    BX, BX
	MOVL    $0x7fffffff, AX
	VPBROADCASTD AX, Z5           // magnitude
	MOVL    $0xffff, AX
	VPBROADCASTD AX, Z11          // low 16 bits
	MOVL    $0x1ffff, AX
	VPBROADCASTD AX, Z12          // threshold field
	MOVL    $0x20000, AX
	VPBROADCASTD AX, Z13
	MOVL    $0xff, AX
	VPBROADCASTD AX, Z14          // start code field
	MOVL    $0x80000000, AX
	VPBROADCASTD AX, Z15          // sign bit, slow bucket bit
	MOVL    $1, AX
	VPBROADCASTB AX, X9           // +1 bytes
	VPCMPEQB X10, X10, X10        // -1 bytes
	TESTQ   CX, CX
	JZ      done32
loop32:
	VMOVDQU32 (SI), Z0
	VPANDD  Z5, Z0, Z1            // u
	VPSRLD  $16, Z1, Z2           // bucket
	KXNORW  K1, K1, K1
	VPXORD  Z3, Z3, Z3
	VPGATHERDD (DI)(Z2*4), K1, Z3 // entries
	VPTESTMD Z15, Z3, K2
	KORTESTW K2, K2
	JNZ     done32                // a slow bucket
	VPANDD  Z11, Z1, Z4
	VPADDD  Z13, Z4, Z4
	VPSRLD  $8, Z3, Z6
	VPANDD  Z12, Z6, Z6
	VPSUBD  Z6, Z4, Z4
	VPSRLD  $17, Z4, Z4           // 1 when the low bits reach the threshold
	VPANDD  Z14, Z3, Z3
	VPSUBD  Z4, Z3, Z3
	VPMOVDB Z3, X3
	VMOVDQU8 X3, (R8)
	VPTESTMD Z1, Z1, K3           // not zero
	VPTESTMD Z15, Z0, K4          // negative
	KANDW   K3, K4, K4
	VMOVDQU8.Z X9, K3, X8
	VMOVDQU8 X10, K4, X8
	VMOVDQU8 X8, (R9)
	ADDQ    $64, SI
	ADDQ    $16, R8
	ADDQ    $16, R9
	INCQ    BX
	CMPQ    BX, CX
	JLT     loop32
done32:
	MOVQ    BX, ret+40(FP)
	VZEROUPPER
	RET

// func encode16PackedAVX512(t *codeTable, p *byte, blocks int, codes *byte, bits *byte) int
//
// encode16AVX512 for the packed layout: the codes of exact zeros are
// zeroed, and the mask of the negative non-zero values is the sign bits.
TEXT ·encode16PackedAVX512(SB), NOSPLIT, $0-48
	MOVQ    t+0(FP), DI
	MOVQ    p+8(FP), SI
	MOVQ    blocks+16(FP), CX
	MOVQ    codes+24(FP), R8
	MOVQ    bits+32(FP), R9
	XORQ    BX, BX
	MOVL    $0x7fff, AX
	VPBROADCASTD AX, Z5
	VPBROADCASTW AX, Z11
	TESTQ   CX, CX
	JZ      donep
loopp:
	VPMOVZXWD (SI), Z2
	VPMOVZXWD 32(SI), Z3
	VPANDD  Z5, Z2, Z2
	VPANDD  Z5, Z3, Z3
	KXNORW  K1, K1, K1
	KXNORW  K2, K2, K2
	VPXORD  Z6, Z6, Z6
	VPXORD  Z7, Z7, Z7
	VPGATHERDD (DI)(Z2*1), K1, Z6
	VPGATHERDD (DI)(Z3*1), K2, Z7
	VPMOVDB Z6, X6
	VPMOVDB Z7, X7
	VINSERTI128 $1, X7, Y6, Y6
	VPTESTNMB Y6, Y6, K3
	KORTESTD K3, K3
	JNZ     donep
	VMOVDQU16 (SI), Z0
	VPTESTMW Z11, Z0, K4          // magnitude not zero
	VPMOVW2M Z0, K5               // sign bits
	KANDD   K4, K5, K5
	VMOVDQU8.Z Y6, K4, Y6         // code 0 for the zeros
	VMOVDQU8 Y6, (R8)
	KMOVD   K5, (R9)
	ADDQ    $64, SI
	ADDQ    $32, R8
	ADDQ    $4, R9
	INCQ    BX
	CMPQ    BX, CX
	JLT     loopp
donep:
	MOVQ    BX, ret+40(FP)
	VZEROUPPER
	RET

// func rowCodes16AVX512(logs *float64, blocks int, t *byte, lmin, d float64)
//
// Per block of 8: 255 - 254*(l - lmin)/d in float64, each operation
// rounded as Go rounds it (no fused operation), rounded half to even and
// clamped to [1, 255]. The division is first replaced by a product with
// 1/d, which is off by a few ulps at most (up to 1e-13 within [-50, 300];
// beyond, the clamp hides any difference): the block keeps that result
// when each lane is more than 1e-9 away from a half-integer, as the
// exact value then rounds to the same integer, and else divides.
TEXT ·rowCodes16AVX512(SB), NOSPLIT, $0-48
	MOVQ    logs+0(FP), SI
	MOVQ    blocks+8(FP), CX
	MOVQ    t+16(FP), DI
	VBROADCASTSD lmin+24(FP), Z1
	VBROADCASTSD d+32(FP), Z2
	VBROADCASTSD top+40(FP), Z4   // top: 255.0, or 127.0 for the i8 form
	MOVQ    $0x3ff0000000000000, AX // 1.0
	MOVQ    AX, X5
	VBROADCASTSD X5, Z5
	VSUBPD  Z5, Z4, Z3            // top - 1, exact
	VDIVPD  Z2, Z5, Z6            // 1/d
	MOVQ    $0x3fdffffffeed1f41, AX // 0.5 - 1e-9
	MOVQ    AX, X7
	VBROADCASTSD X7, Z7
	MOVQ    $0x7fffffffffffffff, AX
	MOVQ    AX, X11
	VBROADCASTSD X11, Z11         // magnitude bits
	TESTQ   CX, CX
	JZ      donec
loopc:
	VMOVUPD (SI), Z0
	VSUBPD  Z1, Z0, Z0            // l - lmin
	VMULPD  Z3, Z0, Z0            // (top-1) * (l - lmin)
	VMULPD  Z6, Z0, Z8            // times 1/d
	VSUBPD  Z8, Z4, Z8            // top - that
	VRNDSCALEPD $0, Z8, Z9        // half to even
	VSUBPD  Z9, Z8, Z10           // how far it was rounded
	VANDPD  Z11, Z10, Z10
	VCMPPD  $0x16, Z7, Z10, K1    // farther than 0.5 - 1e-9, or NaN
	KORTESTB K1, K1
	JNZ     exact
	VMOVAPD Z9, Z0
	JMP     store
exact:
	VDIVPD  Z2, Z0, Z0            // / d
	VSUBPD  Z0, Z4, Z0            // top - that
	VRNDSCALEPD $0, Z0, Z0
store:
	VMAXPD  Z5, Z0, Z0
	VMINPD  Z4, Z0, Z0
	VCVTTPD2DQ Z0, Y0
	VPMOVDB Y0, X0
	MOVQ    X0, (DI)
	ADDQ    $64, SI
	ADDQ    $8, DI
	DECQ    CX
	JNZ     loopc
donec:
	VZEROUPPER
	RET

// func rowCodes16F32AVX512(logs32 *float32, logs *float64, blocks int, t *byte, c, k, lim float32, lmin, d, top float64)
//
// rowCodes16AVX512 on blocks of 16, first in float32: r = k - c*l with
// c = (top-1)/d and k = top + lmin*c, one fused operation. The caller bounds
// how far r can be from the formula's value by eps, and passes
// lim = 0.5 - eps: a block whose lanes were all rounded by at most lim
// keeps those integers (the formula's value rounds to the same), else
// its two halves take rowCodes16AVX512's exact path.
TEXT ·rowCodes16F32AVX512(SB), NOSPLIT, $0-72
	MOVQ    logs32+0(FP), R10
	MOVQ    logs+8(FP), SI
	MOVQ    blocks+16(FP), CX
	MOVQ    t+24(FP), DI
	VBROADCASTSS c+32(FP), Z12
	VBROADCASTSS k+36(FP), Z13
	VBROADCASTSS lim+40(FP), Z14
	MOVL    $0x7fffffff, AX
	VPBROADCASTD AX, Z15          // float32 magnitude bits
	MOVL    $0x3f800000, AX       // 1.0
	VPBROADCASTD AX, Z16
	MOVSD   top+64(FP), X3
	VCVTSD2SS X3, X3, X3          // top in float32, exact
	VBROADCASTSS X3, Z17
	VBROADCASTSD lmin+48(FP), Z1
	VBROADCASTSD d+56(FP), Z2
	VBROADCASTSD top+64(FP), Z4   // top: 255.0, or 127.0 for the i8 form
	MOVQ    $0x3ff0000000000000, AX // 1.0
	MOVQ    AX, X5
	VBROADCASTSD X5, Z5
	VSUBPD  Z5, Z4, Z3            // top - 1, exact
	TESTQ   CX, CX
	JZ      done16
	// Groups of up to 8 blocks: the fast path for every block, its
	// rounding checks gathered in K2 and tested once per group (a branch
	// per block doubled the time), and a group with a lane too near a
	// rounding boundary done again by the formula in float64.
group16:
	MOVQ    CX, R8
	CMPQ    R8, $8
	JLE     groupn16
	MOVQ    $8, R8
groupn16:
	MOVQ    SI, R9                // the group's start, for a redo
	MOVQ    DI, R11
	MOVQ    R8, R12
	KXORW   K2, K2, K2
loop16:
	VMOVUPS (R10), Z0
	VFNMADD213PS Z13, Z12, Z0     // k - c*l
	VRNDSCALEPS $0, Z0, Z8        // half to even
	VSUBPS  Z8, Z0, Z9            // how far it was rounded
	VANDPS  Z15, Z9, Z9
	VCMPPS  $0x16, Z14, Z9, K1    // farther than lim, or NaN
	KORW    K1, K2, K2
	VMAXPS  Z16, Z8, Z8
	VMINPS  Z17, Z8, Z8
	VCVTTPS2DQ Z8, Z8
	VPMOVDB Z8, X8
	VMOVDQU X8, (DI)
	ADDQ    $64, R10
	ADDQ    $128, SI
	ADDQ    $16, DI
	DECQ    R12
	JNZ     loop16
	KORTESTW K2, K2
	JZ      next16
	MOVQ    R9, SI
	MOVQ    R11, DI
	MOVQ    R8, R12
exact16:
	VMOVUPD (SI), Z0
	VMOVUPD 64(SI), Z6
	VSUBPD  Z1, Z0, Z0            // l - lmin
	VSUBPD  Z1, Z6, Z6
	VMULPD  Z3, Z0, Z0            // (top-1) * (l - lmin)
	VMULPD  Z3, Z6, Z6
	VDIVPD  Z2, Z0, Z0            // / d
	VDIVPD  Z2, Z6, Z6
	VSUBPD  Z0, Z4, Z0            // top - that
	VSUBPD  Z6, Z4, Z6
	VRNDSCALEPD $0, Z0, Z0
	VRNDSCALEPD $0, Z6, Z6
	VMAXPD  Z5, Z0, Z0
	VMAXPD  Z5, Z6, Z6
	VMINPD  Z4, Z0, Z0
	VMINPD  Z4, Z6, Z6
	VCVTTPD2DQ Z0, Y0
	VCVTTPD2DQ Z6, Y6
	VPMOVDB Y0, X0
	VPMOVDB Y6, X6
	MOVQ    X0, (DI)
	MOVQ    X6, 8(DI)
	ADDQ    $128, SI
	ADDQ    $16, DI
	DECQ    R12
	JNZ     exact16
next16:
	SUBQ    R8, CX
	JNZ     group16
done16:
	VZEROUPPER
	RET

// func lookup16AVX512(t *byteTable, p *byte, blocks int, out *byte)
//
// Per block of 32 little-endian 16-bit values: each value's entry is
// gathered, four bytes at the value as a byte offset (the table is padded
// for it), and the low byte of each is stored.
TEXT ·lookup16AVX512(SB), NOSPLIT, $0-32
	MOVQ    t+0(FP), DI
	MOVQ    p+8(FP), SI
	MOVQ    blocks+16(FP), CX
	MOVQ    out+24(FP), R8
	TESTQ   CX, CX
	JZ      donel
loopl:
	VPMOVZXWD (SI), Z2            // the values, as dword offsets
	VPMOVZXWD 32(SI), Z3
	KXNORW  K1, K1, K1
	KXNORW  K2, K2, K2
	VPXORD  Z6, Z6, Z6
	VPXORD  Z7, Z7, Z7
	VPGATHERDD (DI)(Z2*1), K1, Z6
	VPGATHERDD (DI)(Z3*1), K2, Z7
	VPMOVDB Z6, (R8)
	VPMOVDB Z7, 16(R8)
	ADDQ    $64, SI
	ADDQ    $32, R8
	DECQ    CX
	JNZ     loopl
donel:
	VZEROUPPER
	RET

// func rational32AVX512(p *byte, blocks int, alpha float32, codes *byte)
//
// Per block of 16 little-endian float32 values w: RationalCode's float32
// operations in its order, each an IEEE single operation rounded to
// nearest as Go's are (t = alpha*|w|, d = 1 + t, z = 1/d, z negated for a
// set sign bit, u = z + 1, y = u*127.5), y rounded half to even (the
// MXCSR's default rounding, which Go keeps) and clamped to [0, 255], then
// at least 128 for a clear sign bit and at most 127 for a set one. An
// exact zero needs no case of its own: +0 gives y = 255 and -0 gives y = 0.
TEXT ·rational32AVX512(SB), NOSPLIT, $0-32
	MOVQ    p+0(FP), SI
	MOVQ    blocks+8(FP), CX
	VBROADCASTSS alpha+16(FP), Z10
	MOVQ    codes+24(FP), R8
	MOVL    $0x7fffffff, AX
	VPBROADCASTD AX, Z11          // magnitude bits
	MOVL    $0x80000000, AX
	VPBROADCASTD AX, Z12          // sign bit
	MOVL    $0x3f800000, AX       // 1.0
	VPBROADCASTD AX, Z13
	MOVL    $0x42ff0000, AX       // 127.5
	VPBROADCASTD AX, Z14
	MOVL    $0x437f0000, AX       // 255.0
	VPBROADCASTD AX, Z15
	VPXORD  Z16, Z16, Z16         // 0.0
	MOVL    $128, AX
	VPBROADCASTD AX, Z17
	MOVL    $127, AX
	VPBROADCASTD AX, Z18
	TESTQ   CX, CX
	JZ      doner
loopr:
	VMOVDQU32 (SI), Z0
	VPANDD  Z11, Z0, Z1           // |w|
	VPANDD  Z12, Z0, Z2           // its sign bit
	VMULPS  Z1, Z10, Z1           // t = alpha * |w|
	VADDPS  Z13, Z1, Z1           // d = 1 + t
	VDIVPS  Z1, Z13, Z1           // z = 1 / d
	VPXORD  Z2, Z1, Z1            // -z for a set sign bit
	VADDPS  Z13, Z1, Z1           // u = z + 1
	VMULPS  Z14, Z1, Z1           // y = u * 127.5
	VMAXPS  Z16, Z1, Z1
	VMINPS  Z15, Z1, Z1
	VCVTPS2DQ Z1, Z1              // rounded half to even
	VPTESTMD Z12, Z0, K1          // sign bit set
	KNOTW   K1, K2
	VPMAXSD Z17, Z1, K2, Z1       // at least 128
	VPMINSD Z18, Z1, K1, Z1       // at most 127
	VPMOVDB Z1, (R8)
	ADDQ    $64, SI
	ADDQ    $16, R8
	DECQ    CX
	JNZ     loopr
doner:
	VZEROUPPER
	RET

// func count16Asm(p *byte, n int, counts *[1 << 16]uint32)
//
// count16 on n groups of four little-endian 16-bit values (8 bytes): the
// same increments, alternately in counts[m] and counts[m|0x8000], with an
// increment in memory per value, which the Go compiler's loop spends a few
// more instructions on.
TEXT ·count16Asm(SB), NOSPLIT, $0-24
	MOVQ    p+0(FP), SI
	MOVQ    n+8(FP), CX
	MOVQ    counts+16(FP), DI
	LEAQ    0x20000(DI), R9       // counts[0x8000:]
	TESTQ   CX, CX
	JZ      donecnt
loopcnt:
	MOVQ    (SI), AX
	MOVL    AX, BX
	ANDL    $0x7fff, BX
	MOVQ    AX, DX
	SHRQ    $16, DX
	ANDL    $0x7fff, DX
	INCL    (DI)(BX*4)
	INCL    (R9)(DX*4)
	MOVQ    AX, BX
	SHRQ    $32, BX
	ANDL    $0x7fff, BX
	SHRQ    $48, AX
	ANDL    $0x7fff, AX
	INCL    (DI)(BX*4)
	INCL    (R9)(AX*4)
	ADDQ    $8, SI
	DECQ    CX
	JNZ     loopcnt
donecnt:
	RET

// func bf16ToF32AVX512(p *byte, blocks int, out *byte)
//
// Per block of 16 BF16 values: each as the float32 of its bits, shifted
// up by 16.
TEXT ·bf16ToF32AVX512(SB), NOSPLIT, $0-24
	MOVQ    p+0(FP), SI
	MOVQ    blocks+8(FP), CX
	MOVQ    out+16(FP), DI
	TESTQ   CX, CX
	JZ      doneb
loopb:
	VPMOVZXWD (SI), Z0
	VPSLLD  $16, Z0, Z0
	VMOVDQU32 Z0, (DI)
	ADDQ    $32, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     loopb
doneb:
	VZEROUPPER
	RET

// func f16ToF32AVX512(p *byte, blocks int, out *byte)
//
// Per block of 16 F16 values: each converted to float32, which is exact
// (subnormals, infinities and NaNs included; a signalling NaN comes out
// quiet).
TEXT ·f16ToF32AVX512(SB), NOSPLIT, $0-24
	MOVQ    p+0(FP), SI
	MOVQ    blocks+8(FP), CX
	MOVQ    out+16(FP), DI
	TESTQ   CX, CX
	JZ      donef
loopf:
	VCVTPH2PS (SI), Z0
	VMOVUPS Z0, (DI)
	ADDQ    $32, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     loopf
donef:
	VZEROUPPER
	RET

// func rowSums32AVX512(p *byte, blocks int, inv float32, acc *rowAcc)
//
// rowSums32 on blocks of 16 values, lane by lane: acc is loaded, added
// to, and stored back.
TEXT ·rowSums32AVX512(SB), NOSPLIT, $0-32
	MOVQ    p+0(FP), SI
	MOVQ    blocks+8(FP), CX
	VBROADCASTSS inv+16(FP), Z21
	MOVQ    acc+24(FP), DI
	MOVL    $0x7fffffff, AX
	VPBROADCASTD AX, Z20          // magnitude bits
	MOVL    $0x3f800000, AX       // 1.0
	VPBROADCASTD AX, Z23
	VMOVUPS 0(DI), Z0             // count not zero
	VMOVUPS 64(DI), Z1            // m'
	VMOVUPS 128(DI), Z2           // m'^2
	VMOVUPS 192(DI), Z3           // m'^3
	VMOVUPS 256(DI), Z4           // m'^4
	TESTQ   CX, CX
	JZ      dones
loops:
	VPANDD  (SI), Z20, Z6         // m
	VPTESTMD Z6, Z6, K2           // m != 0
	VADDPS  Z23, Z0, K2, Z0
	VMULPS  Z21, Z6, Z7           // m' = m * inv
	VMULPS  Z7, Z7, Z8            // m2 = m' * m'
	VMULPS  Z7, Z8, Z9            // m2 * m'
	VMULPS  Z8, Z8, Z5            // m2 * m2
	VADDPS  Z7, Z1, Z1
	VADDPS  Z8, Z2, Z2
	VADDPS  Z9, Z3, Z3
	VADDPS  Z5, Z4, Z4
	ADDQ    $64, SI
	DECQ    CX
	JNZ     loops
dones:
	VMOVUPS Z0, 0(DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	VMOVUPS Z4, 256(DI)
	VZEROUPPER
	RET

// func compressAbove32AVX512(p *byte, blocks int, thr uint32, out *byte) int
//
// compressAbove32 on blocks of 16 values; blocks without such a value
// (most of them) only compare.
TEXT ·compressAbove32AVX512(SB), NOSPLIT, $0-40
	MOVQ    p+0(FP), SI
	MOVQ    blocks+8(FP), CX
	MOVL    thr+16(FP), AX
	VPBROADCASTD AX, Z22
	MOVQ    out+24(FP), DI
	MOVL    $0x7fffffff, AX
	VPBROADCASTD AX, Z20
	XORQ    BX, BX
	TESTQ   CX, CX
	JZ      donec2
loopc2:
	VMOVDQU32 (SI), Z0
	VPANDD  Z20, Z0, Z1
	VPCMPUD $6, Z22, Z1, K1       // m > thr
	KORTESTW K1, K1
	JZ      nextc2
	VPCOMPRESSD Z0, K1, (DI)(BX*4)
	KMOVW   K1, AX
	POPCNTL AX, AX
	ADDQ    AX, BX
nextc2:
	ADDQ    $64, SI
	DECQ    CX
	JNZ     loopc2
donec2:
	MOVQ    BX, ret+32(FP)
	VZEROUPPER
	RET

// func packCodesAVX512(codes *byte, signs *byte, blocks int, bits *byte)
// Per block of 64 elements: the sign bytes' top bits (set for -1) stored
// as 8 bytes of bits, and the codes whose sign is 0 set to 0, in place.
TEXT ·packCodesAVX512(SB), NOSPLIT, $0-32
	MOVQ codes+0(FP), SI
	MOVQ signs+8(FP), DX
	MOVQ blocks+16(FP), CX
	MOVQ bits+24(FP), DI
pack64:
	TESTQ CX, CX
	JZ    packdone
	VMOVDQU8 (DX), Z0
	VPMOVB2M Z0, K1
	KMOVQ K1, (DI)
	VPTESTMB Z0, Z0, K2
	VMOVDQU8.Z (SI), K2, Z1
	VMOVDQU8 Z1, (SI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $8, DI
	DECQ CX
	JMP  pack64
packdone:
	VZEROUPPER
	RET

// BSTEP(off, g) gathers column off/4 of the 16 buckets (count j of each,
// stride 64 bytes) into g, and adds it to the running sums: Z0 (R, the
// counts from j on), Z1 (S, the sum of R) and Z2 (T, the sum of S).
#define BSTEP(off, g) \
	VPXORD g, g, g; \
	KXNORW K1, K1, K1; \
	VPGATHERDD off(SI)(Z31*4), K1, g; \
	VPADDD g, Z0, Z0; \
	VPADDD Z0, Z1, Z1; \
	VPADDD Z1, Z2, Z2

// func bucketSumsAVX512(counts *uint32, groups int, idx *[16]int32, out *uint32)
// For each group of 16 buckets of 16 counts c_j (256 uint32), stores 48
// uint32: N = Σ c_j, S = Σ (j+1) c_j and T = Σ (j+1)(j+2)/2 c_j per
// bucket, by adding the columns from j = 15 down: R += c_j, S += R, T += S.
// idx holds 0, 16, ..., 240.
TEXT ·bucketSumsAVX512(SB), NOSPLIT, $0-32
	MOVQ counts+0(FP), SI
	MOVQ groups+8(FP), CX
	MOVQ idx+16(FP), AX
	MOVQ out+24(FP), DI
	VMOVDQU32 (AX), Z31
bsgroup:
	TESTQ CX, CX
	JZ    bsdone
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	BSTEP(60, Z3)
	BSTEP(56, Z4)
	BSTEP(52, Z5)
	BSTEP(48, Z6)
	BSTEP(44, Z3)
	BSTEP(40, Z4)
	BSTEP(36, Z5)
	BSTEP(32, Z6)
	BSTEP(28, Z3)
	BSTEP(24, Z4)
	BSTEP(20, Z5)
	BSTEP(16, Z6)
	BSTEP(12, Z3)
	BSTEP(8, Z4)
	BSTEP(4, Z5)
	BSTEP(0, Z6)
	VMOVDQU32 Z0, (DI)
	VMOVDQU32 Z1, 64(DI)
	VMOVDQU32 Z2, 128(DI)
	ADDQ $1024, SI
	ADDQ $192, DI
	DECQ CX
	JMP  bsgroup
bsdone:
	VZEROUPPER
	RET

// func signCodesAVX2(mags *byte, signs *byte, blocks int, out *byte)
//
// Per block of 32 bytes: out = mags negated where the sign byte is
// negative, zero where it is zero, as they are where it is positive
// (VPSIGNB, the product of a sign -1, 0 or +1 and a byte).
TEXT ·signCodesAVX2(SB), NOSPLIT, $0-32
	MOVQ    mags+0(FP), SI
	MOVQ    signs+8(FP), DX
	MOVQ    blocks+16(FP), CX
	MOVQ    out+24(FP), DI
	TESTQ   CX, CX
	JZ      scdone
scloop:
	VMOVDQU (SI), Y0
	VPSIGNB (DX), Y0, Y1
	VMOVDQU Y1, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     scloop
	VZEROUPPER
scdone:
	RET
