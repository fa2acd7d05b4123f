// x87 control instructions and the device-not-available rules shared by
// every x87/SIMD instruction. The x87 arithmetic itself is the complete-ISA
// work (docs/status.md); until it lands those instructions raise #UD after
// the #NM checks, so a guest sees a consistent answer.
#include "cpu/handlers.h"

bool Cpu::check_fpu_available(const Insn& insn)
{
    switch (insn.fpu_class) {
    case FPU_X87:
        if (s.cr0 & (cr::CR0_EM | cr::CR0_TS))
            return raise(Fault{VEC_NM, false, 0, 0});
        return true;
    case FPU_WAIT:
        if ((s.cr0 & (cr::CR0_TS | cr::CR0_MP)) == (cr::CR0_TS | cr::CR0_MP))
            return raise(Fault{VEC_NM, false, 0, 0});
        return true;
    case FPU_SSE:
        if ((s.cr0 & cr::CR0_EM) || !(s.cr4 & cr::CR4_OSFXSR))
            return raise_ud();
        if (s.cr0 & cr::CR0_TS)
            return raise(Fault{VEC_NM, false, 0, 0});
        return true;
    case FPU_AVX:
        return raise_ud(); // no AVX state is offered yet (CPUID has no AVX/OSXSAVE)
    default:
        return true;
    }
}

HANDLER(op_fninit)
{
    TRY(cpu.check_fpu_available(insn));
    FpuState& f = cpu.s.fpu;
    f.fcw = 0x037F;
    f.fsw = 0;
    f.ftw = 0xFFFF;
    f.fop = 0;
    f.fip = f.fdp = 0;
    f.fcs = f.fds = 0;
    return true;
}

HANDLER(op_fnclex)
{
    TRY(cpu.check_fpu_available(insn));
    cpu.s.fpu.fsw &= 0x7F00; // clear exception flags, ES and B
    return true;
}

HANDLER(op_fnstsw)
{
    TRY(cpu.check_fpu_available(insn));
    if (insn.op[0].kind == OpKind::Gpr) {
        cpu.set_gpr(RAX, 2, cpu.s.fpu.fsw);
        return true;
    }
    return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), 2, cpu.s.fpu.fsw);
}

HANDLER(op_fnstcw)
{
    TRY(cpu.check_fpu_available(insn));
    return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), 2, cpu.s.fpu.fcw);
}

HANDLER(op_fldcw)
{
    TRY(cpu.check_fpu_available(insn));
    u64 v;
    TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), 2, v));
    cpu.s.fpu.fcw = static_cast<u16>((v & 0x1F3F) | 0x40);
    return true;
}

HANDLER(op_fwait)
{
    return cpu.check_fpu_available(insn);
}

HANDLER(op_fnop)
{
    return cpu.check_fpu_available(insn);
}
