// CpuState through the structures of KVM's vCPU ioctls and back
// (accel/kvm/kvm_state.h): what a switch between the interpreter and KVM,
// or a snapshot of a KVM vCPU, carries.
#include "accel/kvm/kvm_state.h"

#include "cpu/state/cpuid_model.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace {

Segment segment(u16 selector, u64 base, u32 limit, u32 attr)
{
    Segment s;
    s.selector = selector;
    s.base = base;
    s.limit = limit;
    s.attr = attr;
    return s;
}

// A 64-bit kernel in the middle of its work: every field away from its reset value.
CpuState busy_state()
{
    CpuState s;
    for (unsigned i = 0; i < 16; ++i)
        s.gpr[i] = 0x1111111111111111ull * (i + 1);
    s.rip = 0xFFFFFFFF81000123ull;
    s.rflags = rf::FIXED1 | rf::IF | rf::ZF | rf::AC;
    s.seg[CS] = segment(0x10, 0, 0xFFFFFFFF, Segment::P | Segment::S | 0xB | Segment::L | Segment::G);
    s.seg[SS] = segment(0x18, 0, 0xFFFFFFFF, Segment::P | Segment::S | 0x3 | Segment::DB | Segment::G);
    s.seg[DS] = segment(0, 0, 0, Segment::UNUSABLE);
    s.seg[ES] = segment(0x2B, 0x1000, 0xFFFFF, Segment::P | Segment::S | 0x3 | (3u << 5) | Segment::AVL);
    s.seg[FS] = segment(0, 0x7F0012340000ull, 0xFFFFFFFF, Segment::P | Segment::S | 0x3);
    s.seg[GS] = segment(0, 0xFFFF888012340000ull, 0xFFFFFFFF, Segment::P | Segment::S | 0x3);
    s.ldtr = segment(0x50, 0xFFFFFE0000001000ull, 0x7F, Segment::P | 0x2);
    s.tr = segment(0x40, 0xFFFFFE0000003000ull, 0x4087, Segment::P | 0xB);
    s.gdtr = {0xFFFFFE0000001000ull, 0x7F};
    s.idtr = {0xFFFFFE0000000000ull, 0xFFF};
    s.cr0 = 0x80050033, s.cr2 = 0x7F00DEAD0000ull, s.cr3 = 0x12345000, s.cr4 = 0x3406F0, s.cr8 = 5;
    s.xcr0 = xfeat::X87 | xfeat::SSE | xfeat::AVX;
    s.dr = {0x1000, 0x2000, 0x3000, 0x4000, 0xFFFF0FF1, 0x401, 0xFFFF0FF1, 0x401};
    s.msr.efer = 0xD01;
    s.msr.star = 0x0023001000000000ull, s.msr.lstar = 0xFFFFFFFF81800000ull;
    s.msr.cstar = 0xFFFFFFFF81800100ull, s.msr.sfmask = 0x47700;
    s.msr.kernel_gs_base = 0x7F0000000000ull;
    s.msr.sysenter_cs = 0x10, s.msr.sysenter_esp = 0xFFFFFE0000004000ull, s.msr.sysenter_eip = 0xFFFFFFFF81801000ull;
    s.msr.tsc_aux = 1, s.msr.pat = 0x0407050600070106ull, s.msr.misc_enable = 0x850089;
    s.msr.apic_base = 0xFEE00900;
    FpuState& f = s.fpu;
    f.fcw = 0x027F, f.fsw = 0x3800 | 0x20, f.fop = 0x5D9;
    f.fip = 0x401234, f.fdp = 0x605678;
    f.st[7] = {0x8000000000000000ull, 0x3FFF}; // 1.0 in physical register 7 (TOP = 7: ST0)
    f.st[0] = {0xC000000000000000ull, 0x4000}; // 3.0 in physical register 0 (ST1)
    f.ftw = static_cast<u16>(0xFFFF & ~(3u << 14) & ~3u); // registers 7 and 0 valid
    f.mxcsr = 0x1FA0;
    for (unsigned i = 0; i < 16; ++i) {
        f.xmm[i] = {0xA5A5000000000000ull + i, 0x5A5A000000000000ull + i};
        f.ymm_high[i] = {0xC3C3000000000000ull + i, 0x3C3C000000000000ull + i};
    }
    s.events.nmi = true;
    s.events.nmi_blocked = true;
    return s;
}

CpuState through_kvm(const CpuState& s, CpuVendor vendor = CpuVendor::Intel)
{
    kvm_regs regs;
    kvm_sregs sregs;
    auto xsave = std::make_unique<kvm_xsave>();
    kvm_debugregs debug;
    kvm_vcpu_events events;
    to_kvm_regs(s, regs);
    to_kvm_sregs(s, sregs);
    to_kvm_xsave(s, *xsave);
    to_kvm_debugregs(s, debug);
    to_kvm_events(s, events);
    const std::vector<u64> msrs = to_kvm_msr_values(s, vendor);
    CpuState back; // from reset values, so that nothing is carried over by accident
    back.xcr0 = s.xcr0; // KVM_GET_XCRS, handled by the backend
    from_kvm_regs(regs, back);
    from_kvm_sregs(sregs, back);
    from_kvm_xsave(*xsave, back);
    from_kvm_debugregs(debug, back);
    from_kvm_events(events, back);
    from_kvm_msr_values(msrs, vendor, back);
    return back;
}

bool same_segment(const Segment& a, const Segment& b)
{
    return a.selector == b.selector && a.base == b.base && a.limit == b.limit && a.attr == b.attr;
}

} // namespace

TEST_CASE("A running 64-bit CpuState goes through KVM's structures and comes back the same")
{
    const CpuState s = busy_state();
    const CpuState back = through_kvm(s);
    CHECK(back.gpr == s.gpr);
    CHECK(back.rip == s.rip);
    CHECK(back.rflags == s.rflags);
    for (unsigned i = 0; i < SEG_COUNT; ++i)
        CHECK(same_segment(back.seg[i], s.seg[i]));
    CHECK(same_segment(back.ldtr, s.ldtr));
    CHECK(same_segment(back.tr, s.tr));
    CHECK((back.gdtr.base == s.gdtr.base && back.gdtr.limit == s.gdtr.limit));
    CHECK((back.idtr.base == s.idtr.base && back.idtr.limit == s.idtr.limit));
    CHECK(back.cr0 == s.cr0);
    CHECK(back.cr2 == s.cr2);
    CHECK(back.cr3 == s.cr3);
    CHECK(back.cr4 == s.cr4);
    CHECK(back.cr8 == s.cr8);
    CHECK(back.dr[0] == s.dr[0]);
    CHECK(back.dr[3] == s.dr[3]);
    CHECK(back.dr[6] == s.dr[6]);
    CHECK(back.dr[7] == s.dr[7]);
    CHECK(back.msr.efer == s.msr.efer);
    CHECK(back.msr.apic_base == s.msr.apic_base);
    CHECK(back.msr.star == s.msr.star);
    CHECK(back.msr.lstar == s.msr.lstar);
    CHECK(back.msr.cstar == s.msr.cstar);
    CHECK(back.msr.sfmask == s.msr.sfmask);
    CHECK(back.msr.kernel_gs_base == s.msr.kernel_gs_base);
    CHECK(back.msr.sysenter_cs == s.msr.sysenter_cs);
    CHECK(back.msr.sysenter_esp == s.msr.sysenter_esp);
    CHECK(back.msr.sysenter_eip == s.msr.sysenter_eip);
    CHECK(back.msr.tsc_aux == s.msr.tsc_aux);
    CHECK(back.msr.pat == s.msr.pat);
    CHECK(back.msr.misc_enable == s.msr.misc_enable);
    CHECK(back.events.nmi);
    CHECK(back.events.nmi_blocked);
    CHECK_FALSE(back.events.interrupt_shadow);
}

TEST_CASE("The x87, SSE and AVX registers go through KVM's XSAVE area bit for bit")
{
    const CpuState s = busy_state();
    const CpuState back = through_kvm(s);
    const FpuState& f = s.fpu;
    const FpuState& b = back.fpu;
    CHECK(b.fcw == f.fcw);
    CHECK(b.fsw == f.fsw);
    CHECK(b.ftw == f.ftw);
    CHECK(b.fop == f.fop);
    CHECK(b.fip == f.fip);
    CHECK(b.fdp == f.fdp);
    for (unsigned i = 0; i < 8; ++i) {
        CHECK(b.st[i].mantissa == f.st[i].mantissa);
        CHECK(b.st[i].sign_exponent == f.st[i].sign_exponent);
    }
    CHECK(b.mxcsr == f.mxcsr);
    CHECK(b.xmm == f.xmm);
    CHECK(b.ymm_high == f.ymm_high);
}

TEST_CASE("FCS and FDS, which KVM's 64-bit XSAVE layout has no room for, come back 0")
{
    CpuState s = busy_state();
    s.fpu.fcs = 0x23;
    s.fpu.fds = 0x2B;
    const CpuState back = through_kvm(s);
    CHECK(back.fpu.fcs == 0);
    CHECK(back.fpu.fds == 0);
    CHECK(back.fpu.fip == s.fpu.fip);
}

TEST_CASE("XSAVE components the guest has not enabled read back in their initial configuration")
{
    CpuState s = busy_state();
    s.xcr0 = xfeat::X87; // no SSE, no AVX in XCR0: XSTATE_BV has neither
    kvm_xsave area;
    to_kvm_xsave(s, area);
    u64 xstate_bv;
    std::memcpy(&xstate_bv, reinterpret_cast<const u8*>(area.region) + 512, 8);
    CHECK(xstate_bv == xfeat::X87);
    CpuState back;
    from_kvm_xsave(area, back);
    CHECK(back.fpu.xmm[3] == std::array<u64, 2>{});
    CHECK(back.fpu.ymm_high[3] == std::array<u64, 2>{});
    CHECK(back.fpu.fcw == s.fpu.fcw); // the x87 component is in use
    // Not even x87: its initial configuration (SDM Vol 1 13.6).
    std::memset(reinterpret_cast<u8*>(area.region) + 512, 0, 8);
    from_kvm_xsave(area, back);
    CHECK(back.fpu.fcw == 0x037F);
    CHECK(back.fpu.ftw == 0xFFFF);
    CHECK(back.fpu.st[7].mantissa == 0);
}

TEST_CASE("The interrupt shadow of STI and of MOV SS keep their kinds through KVM's events")
{
    CpuState s = busy_state();
    s.events.interrupt_shadow = true;
    s.events.mov_ss_blocking = false;
    kvm_vcpu_events events;
    to_kvm_events(s, events);
    CHECK(events.interrupt.shadow == KVM_X86_SHADOW_INT_STI);
    CHECK((events.flags & KVM_VCPUEVENT_VALID_SHADOW) != 0);
    CpuState back;
    from_kvm_events(events, back);
    CHECK(back.events.interrupt_shadow);
    CHECK_FALSE(back.events.mov_ss_blocking);

    s.events.mov_ss_blocking = true;
    to_kvm_events(s, events);
    CHECK(events.interrupt.shadow == KVM_X86_SHADOW_INT_MOV_SS);
    from_kvm_events(events, back);
    CHECK(back.events.interrupt_shadow);
    CHECK(back.events.mov_ss_blocking);
}

TEST_CASE("An NMI KVM has injected but not yet delivered stays pending in CpuState")
{
    kvm_vcpu_events events{};
    events.nmi.injected = 1;
    CpuState back;
    from_kvm_events(events, back);
    CHECK(back.events.nmi);
}

TEST_CASE("IA32_MISC_ENABLE goes to KVM for the Intel model only")
{
    const std::span<const u32> intel = kvm_state_msr_indices(CpuVendor::Intel);
    const std::span<const u32> amd = kvm_state_msr_indices(CpuVendor::Amd);
    CHECK(std::find(intel.begin(), intel.end(), 0x1A0u) != intel.end());
    CHECK(std::find(amd.begin(), amd.end(), 0x1A0u) == amd.end());
    CpuState s = busy_state();
    const CpuState back = through_kvm(s, CpuVendor::Amd);
    CHECK(back.msr.misc_enable == CpuState{}.msr.misc_enable);
    CHECK(back.msr.lstar == s.msr.lstar);
}

TEST_CASE("A real-mode reset state goes through KVM's segments unchanged")
{
    const CpuState s = power_on_state(1);
    const CpuState back = through_kvm(s);
    CHECK(same_segment(back.seg[CS], s.seg[CS]));
    CHECK(back.seg[CS].base == 0xFFFF0000);
    CHECK(back.rip == 0xFFF0);
    CHECK(back.gpr[RDX] == 0x600);
    CHECK((back.msr.apic_base & (1u << 8)) == 0); // not the bootstrap processor
}
