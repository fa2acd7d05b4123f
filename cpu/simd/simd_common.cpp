// Operand access, device-availability checks and the MMX/x87 aliasing shared
// by the SSE and MMX handler files.
#include "cpu/simd/simd.h"

namespace simd {

void set_mmx(Cpu& cpu, unsigned r, u64 v)
{
    // A write through an MMX register sets the exponent and sign bits of its
    // x87 register to all ones (SDM Vol 1 9.5.1), so it reads back as a NaN.
    cpu.s.fpu.st[r].mantissa = v;
    cpu.s.fpu.st[r].sign_exponent = 0xFFFF;
}

void enter_mmx(Cpu& cpu)
{
    // FpuState.st holds the physical registers R0..R7 (cpu/x87/x87.cpp reaches
    // ST(i) as R((TOP + i) mod 8)), so MMi is st[i] whatever TOP is.
    FpuState& f = cpu.s.fpu;
    f.fsw = static_cast<u16>(f.fsw & ~(7u << 11)); // TOP = 0
    f.ftw = 0;                                     // every register valid
}

bool uses_mmx(const Insn& insn)
{
    for (unsigned i = 0; i < insn.operand_count; ++i)
        if (insn.op[i].kind == OpKind::Mmx)
            return true;
    return false;
}

bool begin(Cpu& cpu, const Insn& insn)
{
    if (!uses_mmx(insn))
        return cpu.check_fpu_available(insn);
    bool has_xmm = false;
    for (unsigned i = 0; i < insn.operand_count; ++i)
        has_xmm |= insn.op[i].kind == OpKind::Xmm;
    if (has_xmm) {
        CPU_TRY(cpu.check_fpu_available(insn));
    } else {
        if (cpu.s.cr0 & cr::CR0_EM)
            return cpu.raise_ud();
        if (cpu.s.cr0 & cr::CR0_TS)
            return cpu.raise(Fault{VEC_NM, false, 0, 0});
    }
    // A pending unmasked x87 exception (FSW.ES) is reported before an MMX
    // instruction runs: #MF, or FERR# and the freeze with CR0.NE = 0.
    if (cpu.s.fpu.fsw & 0x80)
        CPU_TRY(cpu.report_x87_error());
    cpu.note_mmx_switch(cpu.s.fpu.fsw, cpu.s.fpu.ftw);
    enter_mmx(cpu);
    return true;
}

namespace {

bool linear_128(Cpu& cpu, const Insn& insn, bool write, Align align, u64& linear)
{
    const u64 ea = cpu.effective_address(insn);
    // The alignment #GP comes before the segment's checks: a misaligned
    // operand at a non-canonical stack address is #GP, not #SS, on the host.
    if (align == Align::Required && ((cpu.s.seg[insn.mem.seg].base + ea) & 15))
        return cpu.raise_gp(0);
    return cpu.segment_linear(insn.mem.seg, ea, 16, write, linear);
}

u64 next_half(const Cpu& cpu, u64 linear)
{
    return (linear + 8) & cpu.linear_wrap();
}

} // namespace

bool read_mem128(Cpu& cpu, const Insn& insn, Vec& v, Align align)
{
    u64 linear;
    CPU_TRY(linear_128(cpu, insn, false, align, linear));
    u64 lo, hi;
    CPU_TRY(cpu.read_linear(linear, 8, lo));
    CPU_TRY(cpu.read_linear(next_half(cpu, linear), 8, hi));
    v.q[0] = lo;
    v.q[1] = hi;
    return true;
}

bool write_mem128(Cpu& cpu, const Insn& insn, const Vec& v, Align align)
{
    u64 linear;
    CPU_TRY(linear_128(cpu, insn, true, align, linear));
    const u64 last = next_half(cpu, linear) + 7;
    if ((linear >> 12) != (last >> 12)) {
        // Both pages must be writable before either half is stored.
        SoftTlb::Entry* e;
        const bool user = cpu.access_is_user(false);
        CPU_TRY(cpu.translate(linear, Access::Write, user, e));
        CPU_TRY(cpu.translate(last & PAGE_MASK, Access::Write, user, e)); // CR2: the page's first byte
    }
    CPU_TRY(cpu.write_linear(linear, 8, v.q[0]));
    return cpu.write_linear(next_half(cpu, linear), 8, v.q[1]);
}

bool read_src_other(Cpu& cpu, const Insn& insn, unsigned i, Vec& v, Align align)
{
    const Operand& op = insn.op[i];
    switch (op.kind) {
    case OpKind::Xmm:
        v = xmm(cpu, op.reg);
        return true;
    case OpKind::Mmx:
        v = Vec{{mmx(cpu, op.reg), 0}};
        return true;
    case OpKind::Gpr:
        v = Vec{{cpu.gpr(op.reg, op.size), 0}};
        return true;
    case OpKind::Imm:
        v = Vec{{insn.imm, 0}};
        return true;
    case OpKind::Mem: {
        if (op.size == 16)
            return read_mem128(cpu, insn, v, align);
        u64 value;
        CPU_TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), op.size, value));
        v = Vec{{value, 0}};
        return true;
    }
    default:
        return cpu.raise_ud();
    }
}

bool write_dst_other(Cpu& cpu, const Insn& insn, unsigned i, const Vec& v, Align align)
{
    const Operand& op = insn.op[i];
    switch (op.kind) {
    case OpKind::Xmm:
        set_xmm(cpu, op.reg, v);
        return true;
    case OpKind::Mmx:
        set_mmx(cpu, op.reg, v.q[0]);
        return true;
    case OpKind::Gpr:
        cpu.set_gpr(op.reg, op.size, v.q[0]);
        return true;
    case OpKind::Mem:
        if (op.size == 16)
            return write_mem128(cpu, insn, v, align);
        return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), op.size, v.q[0]);
    default:
        return cpu.raise_ud();
    }
}

bool raise_xm(Cpu& cpu)
{
    if (cpu.s.cr4 & cr::CR4_OSXMMEXCPT)
        return cpu.raise(Fault{VEC_XM, false, 0, 0});
    return cpu.raise_ud();
}

} // namespace simd
