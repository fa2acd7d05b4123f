#include "accel/kvm/kvm_state.h"

#include "cpu/state/cpuid_model.h"
#include "cpu/x87/fpu_image.h"
#include "mmu/base/byte_order.h"

#include <array>
#include <span>

namespace {

// Architectural MSR numbers (SDM Vol 4 Table 2-2; APM Vol 2 Appendix A).
constexpr u32 MSR_SYSENTER_CS = 0x174, MSR_SYSENTER_ESP = 0x175, MSR_SYSENTER_EIP = 0x176;
constexpr u32 MSR_MISC_ENABLE = 0x1A0, MSR_PAT = 0x277;
constexpr u32 MSR_STAR = 0xC0000081, MSR_LSTAR = 0xC0000082, MSR_CSTAR = 0xC0000083,
              MSR_SFMASK = 0xC0000084, MSR_KERNEL_GS_BASE = 0xC0000102, MSR_TSC_AUX = 0xC0000103;

constexpr std::array<u32, 10> COMMON_MSRS = {
    MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP, MSR_PAT,          MSR_STAR,
    MSR_LSTAR,       MSR_CSTAR,        MSR_SFMASK,       MSR_KERNEL_GS_BASE, MSR_TSC_AUX,
};
// IA32_MISC_ENABLE is Intel's (the AMD model has no such MSR).
constexpr std::array<u32, 11> INTEL_MSRS = {
    MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP, MSR_PAT,          MSR_STAR,
    MSR_LSTAR,       MSR_CSTAR,        MSR_SFMASK,       MSR_KERNEL_GS_BASE, MSR_TSC_AUX,
    MSR_MISC_ENABLE,
};

u64* msr_field(CpuState& s, u32 index)
{
    switch (index) {
    case MSR_SYSENTER_CS: return &s.msr.sysenter_cs;
    case MSR_SYSENTER_ESP: return &s.msr.sysenter_esp;
    case MSR_SYSENTER_EIP: return &s.msr.sysenter_eip;
    case MSR_PAT: return &s.msr.pat;
    case MSR_STAR: return &s.msr.star;
    case MSR_LSTAR: return &s.msr.lstar;
    case MSR_CSTAR: return &s.msr.cstar;
    case MSR_SFMASK: return &s.msr.sfmask;
    case MSR_KERNEL_GS_BASE: return &s.msr.kernel_gs_base;
    case MSR_TSC_AUX: return &s.msr.tsc_aux;
    case MSR_MISC_ENABLE: return &s.msr.misc_enable;
    }
    return nullptr;
}

// Offsets in the legacy region and the XSAVE header (SDM Vol 1 Table 10-2, 13.4.2).
constexpr unsigned MXCSR_OFFSET = 24, MXCSR_MASK_OFFSET = 28, XMM_OFFSET = 160;
constexpr unsigned XSTATE_BV_OFFSET = 512;
// MXCSR bits a processor with DAZ lets software set (SDM Vol 1 11.6.6).
constexpr u32 MXCSR_MASK = 0xFFFF;

// A 128-bit register (XMM, or the upper half of a YMM) in the area.
void store_register(std::span<u8> area, size_t at, const std::array<u64, 2>& value)
{
    store_le(area, at, value[0], 8);
    store_le(area, at + 8, value[1], 8);
}
std::array<u64, 2> load_register(std::span<const u8> area, size_t at)
{
    return {load_le(area, at, 8), load_le(area, at + 8, 8)};
}

} // namespace

void to_kvm_regs(const CpuState& s, kvm_regs& out)
{
    out = {};
    out.rax = s.gpr[RAX], out.rcx = s.gpr[RCX], out.rdx = s.gpr[RDX], out.rbx = s.gpr[RBX];
    out.rsp = s.gpr[RSP], out.rbp = s.gpr[RBP], out.rsi = s.gpr[RSI], out.rdi = s.gpr[RDI];
    out.r8 = s.gpr[R8], out.r9 = s.gpr[R9], out.r10 = s.gpr[R10], out.r11 = s.gpr[R11];
    out.r12 = s.gpr[R12], out.r13 = s.gpr[R13], out.r14 = s.gpr[R14], out.r15 = s.gpr[R15];
    out.rip = s.rip;
    out.rflags = s.rflags;
}

void from_kvm_regs(const kvm_regs& in, CpuState& s)
{
    s.gpr = {in.rax, in.rcx, in.rdx, in.rbx, in.rsp, in.rbp, in.rsi, in.rdi,
             in.r8,  in.r9,  in.r10, in.r11, in.r12, in.r13, in.r14, in.r15};
    s.rip = in.rip;
    s.rflags = in.rflags;
}

kvm_segment to_kvm_segment(const Segment& seg)
{
    kvm_segment out{};
    out.base = seg.base;
    out.limit = seg.limit;
    out.selector = seg.selector;
    out.type = static_cast<u8>(seg.type());
    out.present = seg.present();
    out.dpl = static_cast<u8>(seg.dpl());
    out.db = (seg.attr & Segment::DB) != 0;
    out.s = (seg.attr & Segment::S) != 0;
    out.l = (seg.attr & Segment::L) != 0;
    out.g = (seg.attr & Segment::G) != 0;
    out.avl = (seg.attr & Segment::AVL) != 0;
    out.unusable = (seg.attr & Segment::UNUSABLE) != 0;
    return out;
}

Segment from_kvm_segment(const kvm_segment& in)
{
    Segment seg;
    seg.selector = in.selector;
    seg.base = in.base;
    seg.limit = in.limit;
    seg.attr = (in.type & Segment::TYPE_MASK) | (in.s ? Segment::S : 0) | ((in.dpl & 3u) << 5) |
               (in.present ? Segment::P : 0) | (in.avl ? Segment::AVL : 0) | (in.l ? Segment::L : 0) |
               (in.db ? Segment::DB : 0) | (in.g ? Segment::G : 0) |
               (in.unusable ? Segment::UNUSABLE : 0);
    return seg;
}

void to_kvm_sregs(const CpuState& s, kvm_sregs& out)
{
    out = {};
    out.es = to_kvm_segment(s.seg[ES]);
    out.cs = to_kvm_segment(s.seg[CS]);
    out.ss = to_kvm_segment(s.seg[SS]);
    out.ds = to_kvm_segment(s.seg[DS]);
    out.fs = to_kvm_segment(s.seg[FS]);
    out.gs = to_kvm_segment(s.seg[GS]);
    out.ldt = to_kvm_segment(s.ldtr);
    out.tr = to_kvm_segment(s.tr);
    out.gdt = {s.gdtr.base, s.gdtr.limit, {}};
    out.idt = {s.idtr.base, s.idtr.limit, {}};
    out.cr0 = s.cr0, out.cr2 = s.cr2, out.cr3 = s.cr3, out.cr4 = s.cr4, out.cr8 = s.cr8;
    out.efer = s.msr.efer;
    out.apic_base = s.msr.apic_base;
}

void from_kvm_sregs(const kvm_sregs& in, CpuState& s)
{
    s.seg[ES] = from_kvm_segment(in.es);
    s.seg[CS] = from_kvm_segment(in.cs);
    s.seg[SS] = from_kvm_segment(in.ss);
    s.seg[DS] = from_kvm_segment(in.ds);
    s.seg[FS] = from_kvm_segment(in.fs);
    s.seg[GS] = from_kvm_segment(in.gs);
    s.ldtr = from_kvm_segment(in.ldt);
    s.tr = from_kvm_segment(in.tr);
    s.gdtr = {in.gdt.base, in.gdt.limit};
    s.idtr = {in.idt.base, in.idt.limit};
    s.cr0 = in.cr0, s.cr2 = in.cr2, s.cr3 = in.cr3, s.cr4 = in.cr4, s.cr8 = in.cr8;
    s.msr.efer = in.efer;
    s.msr.apic_base = in.apic_base;
}

void to_kvm_xsave(const CpuState& s, kvm_xsave& out)
{
    out = {};
    const std::span<u8> b(reinterpret_cast<u8*>(out.region), sizeof out.region);
    const FpuState& f = s.fpu;
    store_x87_image(f, true, b.data());
    store_le(b, MXCSR_OFFSET, f.mxcsr, 4);
    store_le(b, MXCSR_MASK_OFFSET, MXCSR_MASK, 4);
    for (unsigned i = 0; i < 16; ++i) {
        store_register(b, XMM_OFFSET + 16 * i, f.xmm[i]);
        store_register(b, CpuidModel::XSAVE_AVX_OFFSET + 16 * i, f.ymm_high[i]);
    }
    // Every component the guest enabled is handed over as in use.
    store_le(b, XSTATE_BV_OFFSET, s.xcr0 & (xfeat::X87 | xfeat::SSE | xfeat::AVX), 8);
}

void from_kvm_xsave(const kvm_xsave& in, CpuState& s)
{
    const std::span<const u8> b(reinterpret_cast<const u8*>(in.region), sizeof in.region);
    const u64 in_use = load_le(b, XSTATE_BV_OFFSET, 8);
    FpuState& f = s.fpu;
    // A component not in use is in its initial configuration (SDM Vol 1
    // 13.6), whatever bytes the area holds for it.
    if (in_use & xfeat::X87) {
        load_x87_image(f, true, b.data());
        f.fcs = f.fds = 0;
    } else {
        init_x87_state(f);
    }
    f.mxcsr = static_cast<u32>(load_le(b, MXCSR_OFFSET, 4));
    for (unsigned i = 0; i < 16; ++i) {
        f.xmm[i] = (in_use & xfeat::SSE) ? load_register(b, XMM_OFFSET + 16 * i) : std::array<u64, 2>{};
        f.ymm_high[i] = (in_use & xfeat::AVX) ? load_register(b, CpuidModel::XSAVE_AVX_OFFSET + 16 * i)
                                              : std::array<u64, 2>{};
    }
}

void to_kvm_debugregs(const CpuState& s, kvm_debugregs& out)
{
    out = {};
    for (unsigned i = 0; i < 4; ++i)
        out.db[i] = s.dr[i];
    out.dr6 = s.dr[6];
    out.dr7 = s.dr[7];
}

void from_kvm_debugregs(const kvm_debugregs& in, CpuState& s)
{
    for (unsigned i = 0; i < 4; ++i)
        s.dr[i] = in.db[i];
    // DR4 and DR5 alias DR6 and DR7 (with CR4.DE = 0).
    s.dr[4] = s.dr[6] = in.dr6;
    s.dr[5] = s.dr[7] = in.dr7;
}

void to_kvm_events(const CpuState& s, kvm_vcpu_events& out)
{
    out = {};
    out.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
    out.nmi.pending = s.events.nmi;
    out.nmi.masked = s.events.nmi_blocked;
    if (s.events.interrupt_shadow)
        out.interrupt.shadow = s.events.mov_ss_blocking ? KVM_X86_SHADOW_INT_MOV_SS : KVM_X86_SHADOW_INT_STI;
}

void from_kvm_events(const kvm_vcpu_events& in, CpuState& s)
{
    s.events.nmi = in.nmi.pending || in.nmi.injected;
    s.events.nmi_blocked = in.nmi.masked;
    s.events.interrupt_shadow = in.interrupt.shadow != 0;
    s.events.mov_ss_blocking = (in.interrupt.shadow & KVM_X86_SHADOW_INT_MOV_SS) != 0;
}

std::span<const u32> kvm_state_msr_indices(CpuVendor vendor)
{
    if (vendor == CpuVendor::Intel)
        return INTEL_MSRS;
    return COMMON_MSRS;
}

std::vector<u64> to_kvm_msr_values(const CpuState& s, CpuVendor vendor)
{
    CpuState copy = s;
    std::vector<u64> values;
    for (u32 index : kvm_state_msr_indices(vendor))
        values.push_back(*msr_field(copy, index));
    return values;
}

void from_kvm_msr_values(std::span<const u64> values, CpuVendor vendor, CpuState& s)
{
    const std::span<const u32> indices = kvm_state_msr_indices(vendor);
    for (size_t i = 0; i < indices.size() && i < values.size(); ++i)
        *msr_field(s, indices[i]) = values[i];
}
