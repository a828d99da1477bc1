#include "textflag.h"

// A byte's classes are the AND of the classes its low nibble allows and
// those its high nibble allows: 1 a digit, 2 a letter a-f or A-F, 4 the
// newline. No high nibble from 8 up allows any, so bytes from 0x80 have none.
DATA lowNibbleClasses<>+0(SB)/8, $0x0103030303030301
DATA lowNibbleClasses<>+8(SB)/8, $0x0000000000040101
GLOBL lowNibbleClasses<>(SB), RODATA|NOPTR, $16

DATA highNibbleClasses<>+0(SB)/8, $0x0002000201000004
DATA highNibbleClasses<>+8(SB)/8, $0
GLOBL highNibbleClasses<>(SB), RODATA|NOPTR, $16

DATA lowNibbleMask<>+0(SB)/1, $0x0f
GLOBL lowNibbleMask<>(SB), RODATA|NOPTR, $1

// A group of 32 phone lines is 33 vectors of 32 bytes, and line j-1 ends in
// vector j, at byte j-1. So the 32 bytes from expectedClasses+33-j are the
// classes allowed in vector j: a hex character (3) everywhere but the
// newline (4) at byte j-1, and no newline in vector 0.
DATA expectedClasses<>+0(SB)/8, $0x0303030303030303
DATA expectedClasses<>+8(SB)/8, $0x0303030303030303
DATA expectedClasses<>+16(SB)/8, $0x0303030303030303
DATA expectedClasses<>+24(SB)/8, $0x0303030303030303
DATA expectedClasses<>+32(SB)/8, $0x0303030303030304
DATA expectedClasses<>+40(SB)/8, $0x0303030303030303
DATA expectedClasses<>+48(SB)/8, $0x0303030303030303
DATA expectedClasses<>+56(SB)/8, $0x0303030303030303
DATA expectedClasses<>+64(SB)/8, $0x0303030303030303
GLOBL expectedClasses<>(SB), RODATA|NOPTR, $72

// CHECK_VECTOR keeps of the classes of the 32 bytes at data(SI) those
// allowed there, at expected(DI), and lowers Y12 to them byte by byte: a
// byte out of place leaves a 0 in Y12.
#define CHECK_VECTOR(data, expected) \
	VMOVDQU data(SI), Y0; \
	VPSRLW $4, Y0, Y1; \
	VPAND Y15, Y1, Y1; \
	VPSHUFB Y0, Y14, Y0; \
	VPSHUFB Y1, Y13, Y1; \
	VPAND Y1, Y0, Y0; \
	VPAND expected(DI), Y0, Y0; \
	VPMINUB Y0, Y12, Y12

// func countPhoneGroupsAVX2(p *byte, groups int) int
// It stops at the first group with a byte out of place. The group's
// vectors are checked three at a time, 11 times.
TEXT ·countPhoneGroupsAVX2(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ groups+8(FP), CX
	VBROADCASTI128 lowNibbleClasses<>(SB), Y14
	VBROADCASTI128 highNibbleClasses<>(SB), Y13
	VPBROADCASTB lowNibbleMask<>(SB), Y15
	VPXOR Y11, Y11, Y11
	LEAQ expectedClasses<>(SB), R8
	XORQ AX, AX

group:
	CMPQ AX, CX
	JEQ done
	VPCMPEQB Y12, Y12, Y12
	LEAQ 33(R8), DI

vectors:
	CHECK_VECTOR(0, 0)
	CHECK_VECTOR(32, -1)
	CHECK_VECTOR(64, -2)
	ADDQ $96, SI
	SUBQ $3, DI
	CMPQ DI, R8
	JNE vectors

	VPCMPEQB Y11, Y12, Y0
	VPTEST Y0, Y0
	JNZ done
	INCQ AX
	JMP group

done:
	VZEROUPPER
	MOVQ AX, ret+16(FP)
	RET
