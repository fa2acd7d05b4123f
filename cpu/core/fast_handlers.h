// Decode-time handler specialization (cpu/core/fast_handlers.cpp): swaps a freshly
// decoded instruction's generic handler for one made for its operand shape.
#pragma once

#include "cpu/decoder/insn.h"

void specialize_handler(Insn& insn, unsigned code_size);

// What a specialized handler does, for the block translator (cpu/jit/),
// which emits host code for these shapes and calls every other handler.
// Reading the shape off the handler the decoder chose (rather than off the
// operands again) keeps the translator to exactly the forms, sizes and
// prefixes that specialize_handler accepted.
enum class FastKind : u8 {
    None,
    MovRegReg, MovRegImm, MovRegMem, MovMemReg, MovMemImm, // size = operand size
    MovzxRegReg, MovzxRegMem,                               // size = source size
    Lea,                                                    // size = destination size
    Jcc64, JmpRel64,                                        // cc in Insn::cc
    Alu,        // register destination; alu and src say which; size 1, 2, 4 or 8
    CompareMem, // CMP/TEST with a memory first operand; src is Reg or Imm
    CmovRegReg, // CMOVcc between 32/64-bit registers (the generic handler)
    ShiftImm,   // SHL/SHR/SAR of a 32/64-bit register by an immediate; shift says which
    ShiftCl,    // ... by CL
    Imul,       // IMUL r, r/m (src Reg or Mem) or r, r/m, imm (three_operands)
    Push64, Pop64, CallRel64, Ret64, // 64-bit stack forms in 64-bit code
    // Generic handlers on these operand shapes:
    Nop,        // NOP/ENDBR: nothing at all
    MovsxReg, MovsxMem, // MOVSX/MOVSXD into a 32/64-bit register; size = source size
    SetccReg,   // SETcc of a low-byte register
    NotReg,     // NOT of a register (any size but AH..BH)
    AdcSbbReg,  // ADC/SBB of a register with a register or immediate; sbb says which
    ShiftImmNarrow, // SHL/SHR/SAR of an 8/16-bit register by 1..width-1
    RotateImm,  // ROL/ROR of a 32/64-bit register by an immediate; shift says which
    IncDecReg,  // INC/DEC of a 32/64-bit register; sbb = true for DEC
    AluMem,     // ADD/OR/AND/SUB/XOR with a memory destination; src Reg or Imm
    IncDecMem,  // INC/DEC of memory (any size, LOCK or not); sbb = true for DEC
    // MovRegReg, MovRegImm and MovRegMem also come with size 1 or 2 (the
    // generic MOV into AL..R15B or AX..R15W, merged into the register).
};
enum class FastAlu : u8 { Add, Or, And, Sub, Xor, Cmp, Test };
enum class FastSrc : u8 { Reg, Imm, Mem };
enum class FastShift : u8 { Shl, Shr, Sar, Rol, Ror };

struct FastForm {
    FastKind kind = FastKind::None;
    u8 size = 0;
    FastAlu alu = FastAlu::Add;
    FastSrc src = FastSrc::Reg;
    FastShift shift = FastShift::Shl;
    bool three_operands = false;
    bool sbb = false;
};

FastForm fast_form_of(const Insn& insn);
