// The project's compact decoded-instruction form. Zydis decodes once
// (cpu/decoder/decoder.cpp); the interpreter only ever sees this struct.
#pragma once

#include "cpu/state/cpu_state.h"

class Cpu;
struct Insn;

// A handler executes one instruction. It returns false when the instruction
// raised a fault (the fault is then pending in the Cpu); on success the Cpu
// commits next_rip, which branch handlers may have changed.
using Handler = bool (*)(Cpu&, const Insn&);

enum class OpKind : u8 {
    None,
    Gpr,      // reg = 0..15
    GprHigh8, // reg = 0..3 for AH, CH, DH, BH
    Seg,      // reg = SegReg
    Cr,       // reg = control register number
    Dr,       // reg = debug register number
    Mem,      // the instruction's memory operand (Insn::mem)
    Imm,      // Insn::imm (sign- or zero-extended as the encoding says)
    FarPtr,   // ptr16:16/32: Insn::imm = offset, Insn::imm2 = selector
    Rel,      // relative branch target: Insn::imm = displacement
    X87,      // reg = ST(i) index relative to TOP
    Mmx,      // reg = 0..7
    Xmm,      // reg = 0..15 (size 16)
    Ymm,      // reg = 0..15 (size 32)
    Other,    // registers the core does not model (ZMM, mask, bound, ...)
};

struct Operand {
    OpKind kind = OpKind::None;
    u8 size = 0; // bytes
    u8 reg = 0;
};

constexpr u8 NO_REG = 0xFF;
constexpr u8 REG_RIP = 16;

struct MemRef {
    u8 seg = DS;
    u8 base = NO_REG; // 0..15, REG_RIP, or NO_REG
    u8 index = NO_REG;
    u8 scale = 1;
    // VSIB (gathers): the vector register holding the indices and its width
    // in bytes (16 or 32); `index` is then NO_REG.
    u8 vsib = NO_REG;
    u8 vsib_bytes = 0;
    i64 disp = 0;
};

// Prefix bits.
namespace pfx {
constexpr u8 REP = 1 << 0, REPNE = 1 << 1, LOCK = 1 << 2, SEG_OVERRIDE = 1 << 3,
             REX_W = 1 << 4,
             VEX_VVVV = 1 << 5; // a VEX operand is encoded in VEX.vvvv (NDS/NDD forms)
} // namespace pfx

// Instructions that touch x87 or SIMD state obey CR0.EM/TS/MP and CR4.OSFXSR
// (SDM Vol 3A 2.5, 13.1): the decoder tags them so one check serves all.
enum FpuClass : u8 { FPU_NONE = 0, FPU_X87 = 1, FPU_SSE = 2, FPU_AVX = 3, FPU_WAIT = 4 };

struct Insn {
    Handler handler = nullptr;
    u16 mnemonic = 0;   // decoder-internal id, for traces and tables
    u8 length = 0;      // bytes
    u8 opsize = 4;      // operand size in bytes: 2, 4 or 8
    u8 addrsize = 4;    // address size in bytes: 2, 4 or 8
    u8 prefixes = 0;    // pfx bits
    u8 operand_count = 0;
    u8 opcode = 0;      // last opcode byte (sub-op selection for some handlers)
    u8 modrm_reg = 0;   // ModRM.reg field (group opcodes)
    u8 modrm = 0;       // the ModRM byte as encoded (x87 FOP records it)
    u8 cc = 0;          // condition code for Jcc/SETcc/CMOVcc
    u8 fpu_class = 0;   // FpuClass: which device-not-available rules apply
    Operand op[4];
    MemRef mem;
    u64 imm = 0;
    u64 imm2 = 0;
};
