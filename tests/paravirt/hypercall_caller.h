// The registers of a guest making a hypercall, as the TLFS calling
// conventions place the control word and the input and output GPAs (3.7):
// a 64-bit caller (EFER.LMA and CS.L) in RCX, RDX, R8; a 32-bit one in
// EDX:EAX, EBX:ECX, EDI:ESI. For the hypercall fuzzers.
#pragma once

#include "cpu/state/cpu_state.h"

inline CpuState hypercall_caller(bool caller64, u64 control, u64 input, u64 output)
{
    CpuState regs;
    if (caller64) {
        regs.msr.efer |= 1ull << 10; // LMA
        regs.seg[CS].attr |= Segment::L;
        regs.gpr[RCX] = control;
        regs.gpr[RDX] = input;
        regs.gpr[R8] = output;
    } else {
        regs.gpr[RDX] = control >> 32;
        regs.gpr[RAX] = control & 0xFFFFFFFF;
        regs.gpr[RBX] = input >> 32;
        regs.gpr[RCX] = input & 0xFFFFFFFF;
        regs.gpr[RDI] = output >> 32;
        regs.gpr[RSI] = output & 0xFFFFFFFF;
    }
    return regs;
}
