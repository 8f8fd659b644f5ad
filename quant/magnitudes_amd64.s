//go:build amd64 && !purego

#include "textflag.h"

DATA ·magReverse<>+0(SB)/4, $7
DATA ·magReverse<>+4(SB)/4, $6
DATA ·magReverse<>+8(SB)/4, $5
DATA ·magReverse<>+12(SB)/4, $4
DATA ·magReverse<>+16(SB)/4, $3
DATA ·magReverse<>+20(SB)/4, $2
DATA ·magReverse<>+24(SB)/4, $1
DATA ·magReverse<>+28(SB)/4, $0
GLOBL ·magReverse<>(SB), RODATA|NOPTR, $32

// func magnitudesAVX512(tab *[256]float32, v *[8]float64, step8 float64, bad *[32]uint8)
//
// Block i of eight: tab[255-8i-j] = float32(v[j]·step8^i) for j of 0 to
// 7 (so tab[0] too), and bit j of bad[i] set where that float32 might
// not be Magnitude's (see near32).
TEXT ·magnitudesAVX512(SB), NOSPLIT, $0-32
	MOVQ tab+0(FP), DI
	MOVQ v+8(FP), SI
	VBROADCASTSD step8+16(FP), Z1
	MOVQ bad+24(FP), R9
	VMOVUPD (SI), Z0
	MOVQ    $0x1fffffff, AX
	VPBROADCASTQ AX, Z2    // the low 29 bits
	MOVQ    $0xffe0000, AX // 1<<28 - 1<<17
	VPBROADCASTQ AX, Z3
	MOVQ    $0x40000, AX   // 1<<18
	VPBROADCASTQ AX, Z4
	MOVQ    $0x3810000000000000, AX // 2^-126
	VPBROADCASTQ AX, Z5
	MOVQ    $0x47f0000000000000, AX // 2^128
	VPBROADCASTQ AX, Z6
	VMOVDQU ·magReverse<>(SB), Y7
	ADDQ    $992, DI       // tab[248:256], block 0 reversed
	MOVQ    $32, CX
mloop:
	VPANDQ  Z2, Z0, Z8
	VPSUBQ  Z3, Z8, Z8
	VPCMPUQ $1, Z4, Z8, K1     // near a midpoint
	VCMPPD  $0x1d, Z5, Z0, K2  // v >= 2^-126
	VCMPPD  $0x11, Z6, Z0, K3  // v < 2^128
	KANDW   K2, K3, K2
	KNOTW   K2, K2
	KORW    K1, K2, K1
	KMOVW   K1, AX
	MOVB    AX, (R9)
	VCVTPD2PS Z0, Y8
	VPERMPS Y8, Y7, Y8
	VMOVUPS Y8, (DI)
	VMULPD  Z1, Z0, Z0
	SUBQ    $32, DI
	INCQ    R9
	DECQ    CX
	JNZ     mloop
	VZEROUPPER
	RET
