// System instructions: control/debug registers, MSRs, descriptor-table
// registers, I/O, HLT, CLI/STI, fast system calls, CPUID and the TSC.
#include "cpu/core/cpu_state_check.h"
#include "cpu/core/handlers.h"
#include "cpu/system/amd_msrs.h"
#include "cpu/simd/simd.h"
#include "cpu/system/machine_check.h"

#include <cstdio>

namespace {

// MSR numbers the core owns (SDM Vol 4).
// IA32_APIC_BASE (0x1B) belongs to the local APIC, on the MSR bus.
constexpr u32 MSR_TSC = 0x10, MSR_PLATFORM_ID = 0x17, MSR_BIOS_SIGN_ID = 0x8B, MSR_MTRRCAP = 0xFE,
              MSR_SYSENTER_CS = 0x174, MSR_SYSENTER_ESP = 0x175, MSR_SYSENTER_EIP = 0x176,
              MSR_MISC_ENABLE = 0x1A0, MSR_PAT = 0x277, MSR_MTRR_DEF_TYPE = 0x2FF,
              MSR_XSS = 0xDA0, MSR_ARCH_CAPABILITIES = 0x10A,
              MSR_EFER = 0xC0000080, MSR_STAR = 0xC0000081, MSR_LSTAR = 0xC0000082,
              MSR_CSTAR = 0xC0000083, MSR_SFMASK = 0xC0000084, MSR_FS_BASE = 0xC0000100,
              MSR_GS_BASE = 0xC0000101, MSR_KERNEL_GS_BASE = 0xC0000102,
              MSR_TSC_AUX = 0xC0000103;

// IA32_ARCH_CAPABILITIES (SDM Vol 4 2-1; Linux's msr-index.h names the same
// bits): an interpreter executes nothing speculatively, so every "not
// affected" bit holds. Without them Linux takes a GenuineIntel CPU for one
// with Meltdown, MDS and the rest, and pays page-table isolation (two CR3
// writes a system call), VERW on every return to user mode and the
// indirect-branch thunks for nothing. IBRS_ALL, RSBA, TSX_CTRL and
// FB_CLEAR stay clear: they promise controls the model does not have.
constexpr u64 ARCH_CAPABILITIES =
    (1ull << 0)     // RDCL_NO: no rogue data cache load (Meltdown), nor L1TF
    | (1ull << 3)   // SKIP_L1DFL_VMENTRY: no L1D flush needed on VM entry
    | (1ull << 4)   // SSB_NO: no speculative store bypass
    | (1ull << 5)   // MDS_NO: no microarchitectural data sampling
    | (1ull << 6)   // IF_PSCHANGE_MC_NO: no machine check on page-size changes
    | (1ull << 8)   // TAA_NO: no TSX asynchronous abort
    | (1ull << 13)  // SBDR_SSDP_NO: no shared-buffer stale data
    | (1ull << 14)  // FBSDP_NO: no fill-buffer stale data propagation
    | (1ull << 15)  // PSDP_NO: no primary stale data propagation
    | (1ull << 20)  // BHI_NO: no branch history injection
    | (1ull << 24)  // PBRSB_NO: no post-barrier return stack buffer predictions
    | (1ull << 26)  // GDS_NO: no gather data sampling
    | (1ull << 27)  // RFDS_NO: no register file data sampling
    | (1ull << 62); // ITS_NO: no indirect target selection

bool require_cpl0(Cpu& cpu)
{
    if (cpu.s.protected_mode() && (cpu.s.v86_mode() || cpu.s.cpl() != 0))
        return cpu.raise_gp(0);
    return true;
}

bool require_protected(Cpu& cpu)
{
    if (!cpu.s.protected_mode() || cpu.s.v86_mode())
        return cpu.raise_ud();
    return true;
}

unsigned iopl(const Cpu& cpu) { return (cpu.s.rflags & rf::IOPL) >> rf::IOPL_SHIFT; }

// Flat 64-bit/32-bit segments that SYSCALL/SYSENTER load without reading
// descriptors (SDM Vol 2B SYSCALL).
Segment flat_code(u16 selector, unsigned dpl, bool long_code)
{
    Segment s;
    s.selector = selector;
    s.base = 0;
    s.limit = 0xFFFFFFFF;
    s.attr = 0xB | Segment::S | (dpl << 5) | Segment::P | Segment::G |
             (long_code ? Segment::L : Segment::DB);
    return s;
}

Segment flat_stack(u16 selector, unsigned dpl)
{
    Segment s;
    s.selector = selector;
    s.base = 0;
    s.limit = 0xFFFFFFFF;
    s.attr = 0x3 | Segment::S | (dpl << 5) | Segment::P | Segment::G | Segment::DB;
    return s;
}

constexpr u64 CR4_SUPPORTED = cr::CR4_VME | cr::CR4_PVI | cr::CR4_DE | cr::CR4_TSD | cr::CR4_PSE | cr::CR4_PAE |
                              cr::CR4_MCE | cr::CR4_PGE | cr::CR4_PCE | cr::CR4_OSFXSR |
                              cr::CR4_OSXMMEXCPT | cr::CR4_LA57 | cr::CR4_FSGSBASE |
                              cr::CR4_SMEP | cr::CR4_SMAP | cr::CR4_OSXSAVE;
constexpr u64 CR4_PAGING_BITS = cr::CR4_PSE | cr::CR4_PAE | cr::CR4_PGE | cr::CR4_PCIDE |
                                cr::CR4_SMEP | cr::CR4_SMAP | cr::CR4_LA57;

std::string hex(u64 value)
{
    char text[24];
    std::snprintf(text, sizeof text, "%#llx", static_cast<unsigned long long>(value));
    return text;
}

} // namespace

// ---- Control registers ----

bool Cpu::write_cr(unsigned n, u64 value)
{
    switch (n) {
    case 0: {
        if (value >> 32)
            return raise_gp(0);
        value |= cr::CR0_ET;
        if ((value & cr::CR0_PG) && !(value & cr::CR0_PE))
            return raise_gp(0);
        if ((value & cr::CR0_NW) && !(value & cr::CR0_CD))
            return raise_gp(0);
        const bool enabling_paging = (value & cr::CR0_PG) && !(s.cr0 & cr::CR0_PG);
        const bool disabling_paging = !(value & cr::CR0_PG) && (s.cr0 & cr::CR0_PG);
        if (enabling_paging && (s.msr.efer & cr::EFER_LME)) {
            if (!(s.cr4 & cr::CR4_PAE) || (s.seg[CS].attr & Segment::L))
                return raise_gp(0);
            s.msr.efer |= cr::EFER_LMA;
        }
        if (disabling_paging && s.long_mode_active()) {
            if (s.in_64bit_code())
                return raise_gp(0);
            s.msr.efer &= ~cr::EFER_LMA;
        }
        const u64 changed = s.cr0 ^ value;
        s.cr0 = value;
        if (changed & (cr::CR0_PG | cr::CR0_WP | cr::CR0_PE))
            flush_tlb(true);
        end_block();
        return true;
    }
    case 2:
        s.cr2 = value;
        return true;
    case 3: {
        u64 v = value;
        if (s.cr4 & cr::CR4_PCIDE)
            v &= ~(1ull << 63); // bit 63 asks not to flush; we flush anyway (always allowed)
        if (s.long_mode_active() && (v >> CpuidModel::PHYS_BITS))
            return raise_gp(0);
        s.cr3 = v;
        flush_tlb(false);
        end_block();
        return true;
    }
    case 4: {
        if (value & ~CR4_SUPPORTED)
            return raise_gp(0);
        if ((value & cr::CR4_OSXSAVE) && !cpuid.has(cpufeat::XSAVE))
            return raise_gp(0);
        if ((value & (cr::CR4_VME | cr::CR4_PVI)) && !cpuid.has(cpufeat::VME))
            return raise_gp(0);
        if (s.long_mode_active() && !(value & cr::CR4_PAE))
            return raise_gp(0);
        if (s.long_mode_active() && ((value ^ s.cr4) & cr::CR4_LA57))
            return raise_gp(0);
        const u64 changed = s.cr4 ^ value;
        s.cr4 = value;
        if (changed & CR4_PAGING_BITS)
            flush_tlb(true);
        end_block();
        return true;
    }
    case 8:
        if (value >> 4)
            return raise_gp(0);
        // With a local APIC, CR8 is its TPR[7:4] (read back through it);
        // CpuState keeps a copy for machines without one and for dumps.
        if (m_interrupts)
            m_interrupts->write_cr8(value);
        s.cr8 = value;
        end_block(); // a lower priority may unmask a pending interrupt
        return true;
    default:
        return raise_ud();
    }
}

std::optional<std::string> cpu_state_problem(const CpuState& s, const CpuidModel& cpuid)
{
    const bool lma = s.msr.efer & cr::EFER_LMA;
    if ((s.cr0 >> 32) || ((s.cr0 & cr::CR0_PG) && !(s.cr0 & cr::CR0_PE)) ||
        ((s.cr0 & cr::CR0_NW) && !(s.cr0 & cr::CR0_CD)))
        return "CR0 " + hex(s.cr0) + " is not a value MOV to CR0 accepts";
    if ((s.cr4 & ~CR4_SUPPORTED) || ((s.cr4 & cr::CR4_OSXSAVE) && !cpuid.has(cpufeat::XSAVE)) ||
        ((s.cr4 & (cr::CR4_VME | cr::CR4_PVI)) && !cpuid.has(cpufeat::VME)))
        return "CR4 " + hex(s.cr4) + " has bits this CPU does not have";
    if (s.cr8 >> 4)
        return "CR8 " + hex(s.cr8) + " has reserved bits";
    if (s.msr.efer & ~(cr::EFER_SCE | cr::EFER_LME | cr::EFER_LMA | cr::EFER_NXE))
        return "EFER " + hex(s.msr.efer) + " has reserved bits";
    // LMA is LME with paging on (SDM Vol 3A 9.8.5); IA-32e mode needs PAE
    // and 64-bit code segments are not also 32-bit ones (SDM Vol 3C 27.3.1.2).
    if (lma != ((s.msr.efer & cr::EFER_LME) && (s.cr0 & cr::CR0_PG)))
        return "EFER.LMA does not follow EFER.LME and CR0.PG";
    if (lma && !(s.cr4 & cr::CR4_PAE))
        return "long mode without CR4.PAE";
    if (lma && (s.seg[CS].attr & Segment::L) && (s.seg[CS].attr & Segment::DB))
        return "a code segment with both L and D set in long mode";
    // RFLAGS: bit 1 reads 1; bits 3, 5, 15 and 22-63 are reserved; no
    // virtual-8086 mode in long mode (SDM Vol 3C 27.3.1.4).
    constexpr u64 RFLAGS_RESERVED = (1ull << 3) | (1ull << 5) | (1ull << 15) | ~((1ull << 22) - 1);
    if (!(s.rflags & rf::FIXED1) || (s.rflags & RFLAGS_RESERVED) || (lma && (s.rflags & rf::VM)))
        return "RFLAGS " + hex(s.rflags) + " has reserved bits or VM in long mode";
    if (!s.in_64bit_code() && (s.rip >> 32))
        return "RIP " + hex(s.rip) + " beyond 4 GiB outside 64-bit code";
    if ((s.dr[6] >> 32) || (s.dr[7] >> 32))
        return "DR6 or DR7 has bits 63:32 set";
    if ((s.xcr0 & ~cpuid.xcr0_supported()) || !(s.xcr0 & xfeat::X87) ||
        ((s.xcr0 & xfeat::AVX) && !(s.xcr0 & xfeat::SSE)))
        return "XCR0 " + hex(s.xcr0) + " is not a value XSETBV accepts";
    if (s.fpu.mxcsr & ~mxcsr::WRITABLE)
        return "MXCSR " + hex(s.fpu.mxcsr) + " has reserved bits";
    return std::nullopt;
}

void Cpu::flush_tlb(bool include_global)
{
    new_link_epochs(include_global);
    if (include_global)
        m_tlb.flush_all();
    else
        m_tlb.flush_non_global();
}

HANDLER(op_mov_cr)
{
    CPU_TRY(require_cpl0(cpu));
    const bool to_cr = insn.op[0].kind == OpKind::Cr;
    const unsigned n = to_cr ? insn.op[0].reg : insn.op[1].reg;
    if (n == 8 && !cpu.s.in_64bit_code())
        return cpu.raise_ud();
    if (to_cr) {
        const unsigned size = insn.op[1].size;
        return cpu.write_cr(n, cpu.gpr(insn.op[1].reg, size));
    }
    u64 v;
    switch (n) {
    case 0: v = cpu.s.cr0; break;
    case 2: v = cpu.s.cr2; break;
    case 3: v = cpu.s.cr3; break;
    case 4: v = cpu.s.cr4; break;
    case 8: v = cpu.read_cr8(); break;
    default: return cpu.raise_ud();
    }
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, v);
    return true;
}

HANDLER(op_mov_dr)
{
    CPU_TRY(require_cpl0(cpu));
    const bool to_dr = insn.op[0].kind == OpKind::Dr;
    unsigned n = to_dr ? insn.op[0].reg : insn.op[1].reg;
    if (n == 4 || n == 5) {
        if (cpu.s.cr4 & cr::CR4_DE)
            return cpu.raise_ud();
        n += 2; // DR4/DR5 alias DR6/DR7 without CR4.DE
    }
    if (n > 7)
        return cpu.raise_ud();
    if (cpu.s.dr[7] & dbg::DR7_GD)
        return cpu.raise_general_detect();
    if (to_dr) {
        const u64 v = cpu.gpr(insn.op[1].reg, insn.op[1].size);
        if ((n == 6 || n == 7) && (v >> 32))
            return cpu.raise_gp(0);
        if (n == 6) // B0-B3, BD, BS, BT writable; bit 16 (RTM) reads 1 without RTM
            cpu.s.dr[6] = (v & dbg::DR6_WRITABLE) | dbg::DR6_FIXED1;
        else if (n == 7)
            cpu.s.dr[7] = (v & dbg::DR7_WRITABLE) | dbg::DR7_FIXED1;
        else
            cpu.s.dr[n] = v;
        // Breakpoints take effect from the next instruction, which must run
        // on the careful path if one is now enabled.
        cpu.sync_debug_registers();
        cpu.end_block();
        return true;
    }
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, cpu.s.dr[n]);
    return true;
}

HANDLER(op_lmsw)
{
    CPU_TRY(require_cpl0(cpu));
    u64 v;
    CPU_TRY(cpu.read_operand(insn, 0, v));
    // LMSW changes PE, MP, EM, TS; it can set PE but never clear it.
    const u64 low = (v & 0xF) | (cpu.s.cr0 & cr::CR0_PE);
    return cpu.write_cr(0, (cpu.s.cr0 & ~0xFull) | low);
}

HANDLER(op_smsw)
{
    if (insn.op[0].kind == OpKind::Mem)
        return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), 2, cpu.s.cr0 & 0xFFFF);
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, cpu.s.cr0);
    return true;
}

HANDLER(op_clts)
{
    (void)insn;
    CPU_TRY(require_cpl0(cpu));
    cpu.s.cr0 &= ~cr::CR0_TS;
    return true;
}

HANDLER(op_invlpg)
{
    CPU_TRY(require_cpl0(cpu));
    u64 linear;
    if (cpu.s.in_64bit_code())
        linear = cpu.effective_address(insn) + (insn.mem.seg >= FS ? cpu.s.seg[insn.mem.seg].base : 0);
    else
        linear = (cpu.s.seg[insn.mem.seg].base + cpu.effective_address(insn)) & 0xFFFFFFFF;
    cpu.invalidate_page(linear);
    cpu.end_block();
    return true;
}

HANDLER(op_wbinvd)
{
    (void)insn;
    return require_cpl0(cpu);
}

// ---- MSRs ----

bool Cpu::read_msr(u32 index, u64& value)
{
    switch (index) {
    case MSR_TSC: value = read_tsc(); return true;
    case MSR_MTRRCAP: value = 0; return true;
    case MSR_BIOS_SIGN_ID: value = 0; return true; // no microcode update loaded
    // Intel's alone: AMD processors raise #GP for these two.
    case MSR_PLATFORM_ID: value = 0; return intel() || raise_gp(0); // platform 0 (microcode)
    case MSR_SYSENTER_CS: value = s.msr.sysenter_cs; return true;
    case MSR_SYSENTER_ESP: value = s.msr.sysenter_esp; return true;
    case MSR_SYSENTER_EIP: value = s.msr.sysenter_eip; return true;
    case MSR_MISC_ENABLE: value = s.msr.misc_enable; return intel() || raise_gp(0);
    case MSR_PAT: value = s.msr.pat; return true;
    case MSR_MTRR_DEF_TYPE: value = s.msr.mtrr_def_type_and_cap[0]; return true;
    case MSR_EFER: value = s.msr.efer; return true;
    case MSR_STAR: value = s.msr.star; return true;
    case MSR_LSTAR: value = s.msr.lstar; return true;
    case MSR_CSTAR: value = s.msr.cstar; return true;
    case MSR_SFMASK: value = s.msr.sfmask; return true;
    case MSR_FS_BASE: value = s.seg[FS].base; return true;
    case MSR_GS_BASE: value = s.seg[GS].base; return true;
    case MSR_KERNEL_GS_BASE: value = s.msr.kernel_gs_base; return true;
    case MSR_TSC_AUX: value = s.msr.tsc_aux; return true;
    case MSR_XSS: // exists with XSAVES (SDM Vol 4, IA32_XSS)
        if (!cpuid.has(cpufeat::XSAVES))
            return raise_gp(0);
        value = s.msr.xss;
        return true;
    case MSR_ARCH_CAPABILITIES:
        if (!cpuid.has(cpufeat::ARCH_CAPABILITIES))
            return raise_gp(0);
        value = ARCH_CAPABILITIES;
        return true;
    default:
        if (cpuid.has(cpufeat::MCA))
            if (auto done = mca::read(s.msr.machine_check, index, value))
                return *done || raise_gp(0);
        if (amd())
            if (auto done = amd_msr::read(s.msr.amd, index, value))
                return *done || raise_gp(0);
        if (auto v = msrs.read(apic_id, index)) {
            value = *v;
            return true;
        }
        return raise_gp(0);
    }
}

bool Cpu::write_msr(u32 index, u64 value)
{
    switch (index) {
    case MSR_TSC:
        s.msr.tsc_offset = value - (m_tsc_source ? m_tsc_source() : m_retired);
        return true;
    case MSR_BIOS_SIGN_ID: return true; // writing 0 asks CPUID to latch the revision
    case MSR_SYSENTER_CS: s.msr.sysenter_cs = value & 0xFFFF; return true;
    case MSR_SYSENTER_ESP:
    case MSR_SYSENTER_EIP:
    case MSR_LSTAR:
    case MSR_CSTAR:
    case MSR_FS_BASE:
    case MSR_GS_BASE:
    case MSR_KERNEL_GS_BASE:
        if (!is_canonical_stored(value))
            return raise_gp(0);
        switch (index) {
        case MSR_SYSENTER_ESP: s.msr.sysenter_esp = value; break;
        case MSR_SYSENTER_EIP: s.msr.sysenter_eip = value; break;
        case MSR_LSTAR: s.msr.lstar = value; break;
        case MSR_CSTAR: s.msr.cstar = value; break;
        case MSR_FS_BASE: s.seg[FS].base = value; break;
        case MSR_GS_BASE: s.seg[GS].base = value; break;
        default: s.msr.kernel_gs_base = value; break;
        }
        return true;
    case MSR_MISC_ENABLE:
        if (amd())
            return raise_gp(0);
        s.msr.misc_enable = value;
        return true;
    case MSR_PAT:
        for (unsigned i = 0; i < 8; ++i) {
            const u64 type = (value >> (i * 8)) & 0xFF;
            if (type == 2 || type == 3 || type > 7)
                return raise_gp(0);
        }
        s.msr.pat = value;
        return true;
    case MSR_MTRR_DEF_TYPE: s.msr.mtrr_def_type_and_cap[0] = value; return true;
    case MSR_EFER: {
        const u64 allowed = cr::EFER_SCE | cr::EFER_LME | cr::EFER_LMA | cr::EFER_NXE;
        if (value & ~allowed)
            return raise_gp(0);
        if ((s.cr0 & cr::CR0_PG) && ((value ^ s.msr.efer) & cr::EFER_LME))
            return raise_gp(0);
        // LMA is read-only: it follows CR0.PG with LME.
        const u64 changed = (s.msr.efer ^ value) & cr::EFER_NXE;
        s.msr.efer = (value & ~cr::EFER_LMA) | (s.msr.efer & cr::EFER_LMA);
        if (changed)
            flush_tlb(true);
        return true;
    }
    case MSR_STAR: s.msr.star = value; return true;
    case MSR_SFMASK: s.msr.sfmask = value & 0xFFFFFFFF; return true;
    case MSR_TSC_AUX: s.msr.tsc_aux = value & 0xFFFFFFFF; return true;
    case MSR_XSS:
        if (!cpuid.has(cpufeat::XSAVES) || (value & ~CpuidModel::xss_supported()))
            return raise_gp(0);
        s.msr.xss = value;
        return true;
    default:
        if (cpuid.has(cpufeat::MCA))
            if (auto done = mca::write(s.msr.machine_check, index, value))
                return *done || raise_gp(0);
        if (amd())
            if (auto done = amd_msr::write(s.msr.amd, index, value))
                return *done || raise_gp(0);
        if (msrs.write(apic_id, index, value))
            return true;
        return raise_gp(0);
    }
}

HANDLER(op_rdmsr)
{
    (void)insn;
    CPU_TRY(require_cpl0(cpu));
    u64 v;
    CPU_TRY(cpu.read_msr(static_cast<u32>(cpu.s.gpr[RCX]), v));
    cpu.set_gpr(RAX, 4, v & 0xFFFFFFFF);
    cpu.set_gpr(RDX, 4, v >> 32);
    return true;
}

HANDLER(op_wrmsr)
{
    (void)insn;
    CPU_TRY(require_cpl0(cpu));
    const u64 v = (cpu.gpr(RDX, 4) << 32) | cpu.gpr(RAX, 4);
    CPU_TRY(cpu.write_msr(static_cast<u32>(cpu.s.gpr[RCX]), v));
    cpu.end_block();
    return true;
}

// ---- Time and identification ----

u64 Cpu::read_tsc()
{
    return (m_tsc_source ? m_tsc_source() : m_retired) + s.msr.tsc_offset;
}

HANDLER(op_rdtsc)
{
    (void)insn;
    if ((cpu.s.cr4 & cr::CR4_TSD) && cpu.s.protected_mode() && cpu.s.cpl() != 0)
        return cpu.raise_gp(0);
    const u64 t = cpu.read_tsc();
    cpu.set_gpr(RAX, 4, t & 0xFFFFFFFF);
    cpu.set_gpr(RDX, 4, t >> 32);
    return true;
}

// The Intel model has no performance-monitoring counters (CPUID leaf 0AH
// reports version 0), so every ECX names an invalid counter: #GP(0), which
// is also the answer at CPL > 0 with CR4.PCE clear (SDM Vol 2B, RDPMC). On
// AMD the four legacy counters are architectural (APM Vol 3, RDPMC): ECX 0-3
// read PerfCtr0-3 (cpu/system/amd_msrs.h), which hold what was written and never
// count.
HANDLER(op_rdpmc)
{
    (void)insn;
    const u64 index = cpu.s.gpr[RCX] & 0xFFFFFFFF;
    const bool allowed = cpu.s.cpl() == 0 || (cpu.s.cr4 & cr::CR4_PCE);
    if (!cpu.amd() || !allowed || index >= 4)
        return cpu.raise_gp(0);
    const u64 count = cpu.s.msr.amd.perf_ctr[index];
    cpu.set_gpr(RAX, 4, count & 0xFFFFFFFF);
    cpu.set_gpr(RDX, 4, count >> 32);
    return true;
}

HANDLER(op_rdtscp)
{
    CPU_TRY(op_rdtsc(cpu, insn));
    cpu.set_gpr(RCX, 4, cpu.s.msr.tsc_aux);
    return true;
}

HANDLER(op_cpuid)
{
    (void)insn;
    const CpuidContext ctx{(cpu.s.cr4 & cr::CR4_OSXSAVE) != 0, cpu.s.xcr0,
                           !cpu.interrupt_source() || cpu.interrupt_source()->apic_enabled()};
    const CpuidResult r = cpu.cpuid.query(static_cast<u32>(cpu.s.gpr[RAX]),
                                          static_cast<u32>(cpu.s.gpr[RCX]), cpu.apic_id, ctx);
    cpu.set_gpr(RAX, 4, r.eax);
    cpu.set_gpr(RBX, 4, r.ebx);
    cpu.set_gpr(RCX, 4, r.ecx);
    cpu.set_gpr(RDX, 4, r.edx);
    return true;
}

// ---- Descriptor-table registers ----

namespace {

bool table_register_address(Cpu& cpu, const Insn& insn, u64& ea)
{
    if (insn.op[0].kind != OpKind::Mem)
        return cpu.raise_ud();
    ea = cpu.effective_address(insn);
    return true;
}

bool load_table_register(Cpu& cpu, const Insn& insn, DescriptorTable& table)
{
    CPU_TRY(require_cpl0(cpu));
    u64 ea, limit, base;
    CPU_TRY(table_register_address(cpu, insn, ea));
    const unsigned base_size = cpu.s.in_64bit_code() ? 8 : 4;
    CPU_TRY(cpu.read_mem(insn.mem.seg, ea, 2, limit));
    CPU_TRY(cpu.read_mem(insn.mem.seg, (ea + 2) & size_mask(insn.addrsize), base_size, base));
    if (base_size == 8 && !cpu.is_canonical_stored(base))
        return cpu.raise_gp(0);
    if (insn.opsize == 2 && base_size == 4)
        base &= 0xFFFFFF; // 16-bit operand size loads a 24-bit base
    table.limit = static_cast<u16>(limit);
    table.base = base;
    return true;
}

bool store_table_register(Cpu& cpu, const Insn& insn, const DescriptorTable& table)
{
    u64 ea;
    CPU_TRY(table_register_address(cpu, insn, ea));
    const unsigned base_size = cpu.s.in_64bit_code() ? 8 : 4;
    CPU_TRY(cpu.write_mem(insn.mem.seg, ea, 2, table.limit));
    return cpu.write_mem(insn.mem.seg, (ea + 2) & size_mask(insn.addrsize), base_size,
                         table.base);
}

// A selector operand of LLDT/LTR/VERR/LAR... (register or 16-bit memory).
bool read_selector(Cpu& cpu, const Insn& insn, unsigned index, u16& selector)
{
    u64 v;
    CPU_TRY(cpu.read_operand(insn, index, v));
    selector = static_cast<u16>(v);
    return true;
}

} // namespace

namespace {
// The 64-bit base of a 16-byte LDT/TSS descriptor (SDM Vol 3A 8.2.3).
u64 system_base(u64 desc, u64 high)
{
    return ((desc >> 16) & 0xFFFFFF) | ((desc >> 32) & 0xFF000000) | ((high & 0xFFFFFFFF) << 32);
}
} // namespace

HANDLER(op_lgdt) { return load_table_register(cpu, insn, cpu.s.gdtr); }
HANDLER(op_lidt) { return load_table_register(cpu, insn, cpu.s.idtr); }
HANDLER(op_sgdt) { return store_table_register(cpu, insn, cpu.s.gdtr); }
HANDLER(op_sidt) { return store_table_register(cpu, insn, cpu.s.idtr); }

HANDLER(op_lldt)
{
    CPU_TRY(require_protected(cpu));
    CPU_TRY(require_cpl0(cpu));
    u16 sel;
    CPU_TRY(read_selector(cpu, insn, 0, sel));
    if ((sel & 0xFFFC) == 0) {
        cpu.s.ldtr = Segment{sel, 0, 0, Segment::UNUSABLE};
        return true;
    }
    if (sel & 4)
        return cpu.raise_gp(sel & 0xFFFC);
    u64 desc, high;
    bool in_bounds;
    CPU_TRY(cpu.read_descriptor(sel, desc, high, in_bounds));
    if (!in_bounds || ((desc >> 40) & 0x1F) != 0x2)
        return cpu.raise_gp(sel & 0xFFFC);
    if (!((desc >> 47) & 1))
        return cpu.raise(Fault{VEC_NP, true, static_cast<u32>(sel & 0xFFFC), 0});
    if (cpu.s.long_mode_active() && !cpu.is_canonical_stored(system_base(desc, high)))
        return cpu.raise_gp(sel & 0xFFFC);
    cpu.set_segment_from_descriptor(cpu.s.ldtr, sel, desc);
    if (cpu.s.long_mode_active())
        cpu.s.ldtr.base |= (high & 0xFFFFFFFF) << 32;
    return true;
}

HANDLER(op_ltr)
{
    CPU_TRY(require_protected(cpu));
    CPU_TRY(require_cpl0(cpu));
    u16 sel;
    CPU_TRY(read_selector(cpu, insn, 0, sel));
    if ((sel & 0xFFFC) == 0 || (sel & 4))
        return cpu.raise_gp(sel & 0xFFFC);
    u64 desc, high;
    bool in_bounds;
    CPU_TRY(cpu.read_descriptor(sel, desc, high, in_bounds));
    const unsigned type = (desc >> 40) & 0x1F;
    const bool available = cpu.s.long_mode_active() ? type == 0x9 : (type == 0x1 || type == 0x9);
    if (!in_bounds || !available)
        return cpu.raise_gp(sel & 0xFFFC);
    if (!((desc >> 47) & 1))
        return cpu.raise(Fault{VEC_NP, true, static_cast<u32>(sel & 0xFFFC), 0});
    if (cpu.s.long_mode_active() && !cpu.is_canonical_stored(system_base(desc, high)))
        return cpu.raise_gp(sel & 0xFFFC);
    // Mark the descriptor busy in the GDT.
    CPU_TRY(cpu.write_linear(cpu.s.gdtr.base + (sel & 0xFFF8u) + 5, 1, ((desc >> 40) & 0xFF) | 0x2, true));
    cpu.set_segment_from_descriptor(cpu.s.tr, sel, desc | (2ull << 40));
    if (cpu.s.long_mode_active())
        cpu.s.tr.base |= (high & 0xFFFFFFFF) << 32;
    return true;
}

HANDLER(op_sldt)
{
    CPU_TRY(require_protected(cpu));
    if (insn.op[0].kind == OpKind::Mem)
        return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), 2, cpu.s.ldtr.selector);
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, cpu.s.ldtr.selector);
    return true;
}

HANDLER(op_str)
{
    CPU_TRY(require_protected(cpu));
    if (insn.op[0].kind == OpKind::Mem)
        return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), 2, cpu.s.tr.selector);
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, cpu.s.tr.selector);
    return true;
}

namespace {

// Whether a selector's descriptor is visible at the current CPL/RPL for
// LAR/LSL/VERR/VERW (SDM Vol 2A LAR). Returns false on a memory fault.
bool probe_descriptor(Cpu& cpu, u16 sel, bool& visible, u64& desc, u64& high)
{
    visible = false;
    if ((sel & 0xFFFC) == 0)
        return true;
    bool in_bounds;
    CPU_TRY(cpu.read_descriptor(sel, desc, high, in_bounds));
    if (!in_bounds)
        return true;
    const bool system = !((desc >> 44) & 1);
    const bool conforming_code = !system && ((desc >> 43) & 1) && ((desc >> 42) & 1);
    const unsigned dpl = (desc >> 45) & 3;
    if (!conforming_code && (dpl < cpu.s.cpl() || dpl < (sel & 3u)))
        return true;
    visible = true;
    return true;
}

bool system_type_valid_for(u64 desc, bool for_lsl, bool long_mode)
{
    const unsigned type = (desc >> 40) & 0xF;
    if (long_mode)
        return type == 0x2 || type == 0x9 || type == 0xB || (!for_lsl && type == 0xC);
    switch (type) {
    case 0x1: case 0x2: case 0x3: case 0x9: case 0xB: return true;
    case 0x4: case 0x5: case 0xC: return !for_lsl;
    default: return false;
    }
}

} // namespace

HANDLER(op_lar)
{
    CPU_TRY(require_protected(cpu));
    u16 sel;
    CPU_TRY(read_selector(cpu, insn, 1, sel));
    bool visible;
    u64 desc = 0, high = 0;
    CPU_TRY(probe_descriptor(cpu, sel, visible, desc, high));
    if (visible && !((desc >> 44) & 1))
        visible = system_type_valid_for(desc, false, cpu.s.long_mode_active());
    cpu.set_flag(rf::ZF, visible);
    if (visible)
        cpu.set_gpr(insn.op[0].reg, insn.op[0].size, (desc >> 32) & 0x00F0FF00);
    return true;
}

HANDLER(op_lsl)
{
    CPU_TRY(require_protected(cpu));
    u16 sel;
    CPU_TRY(read_selector(cpu, insn, 1, sel));
    bool visible;
    u64 desc = 0, high = 0;
    CPU_TRY(probe_descriptor(cpu, sel, visible, desc, high));
    if (visible && !((desc >> 44) & 1))
        visible = system_type_valid_for(desc, true, cpu.s.long_mode_active());
    cpu.set_flag(rf::ZF, visible);
    if (visible) {
        Segment seg;
        cpu.set_segment_from_descriptor(seg, sel, desc);
        cpu.set_gpr(insn.op[0].reg, insn.op[0].size, seg.limit);
    }
    return true;
}

namespace {
bool verify(Cpu& cpu, const Insn& insn, bool for_write)
{
    CPU_TRY(require_protected(cpu));
    u16 sel;
    CPU_TRY(read_selector(cpu, insn, 0, sel));
    bool visible;
    u64 desc = 0, high = 0;
    CPU_TRY(probe_descriptor(cpu, sel, visible, desc, high));
    if (visible) {
        const bool system = !((desc >> 44) & 1);
        const bool code = (desc >> 43) & 1;
        const bool rw = (desc >> 41) & 1;
        visible = !system && (for_write ? (!code && rw) : (!code || rw));
    }
    cpu.set_flag(rf::ZF, visible);
    return true;
}
} // namespace

HANDLER(op_verr) { return verify(cpu, insn, false); }
HANDLER(op_verw) { return verify(cpu, insn, true); }

HANDLER(op_arpl)
{
    u64 dst, src;
    CPU_TRY(cpu.read_operand(insn, 0, dst));
    CPU_TRY(cpu.read_operand(insn, 1, src));
    if ((dst & 3) < (src & 3)) {
        CPU_TRY(cpu.write_operand(insn, 0, (dst & ~3ull) | (src & 3)));
        cpu.set_flag(rf::ZF, true);
    } else {
        cpu.set_flag(rf::ZF, false);
    }
    return true;
}

// ---- I/O ----

bool Cpu::check_io_permission(u16 port, unsigned size)
{
    if (!s.protected_mode())
        return true;
    if (!s.v86_mode() && s.cpl() <= ((s.rflags & rf::IOPL) >> rf::IOPL_SHIFT))
        return true;
    // Consult the TSS I/O permission bitmap (SDM Vol 1 19.5.2).
    const unsigned type = s.tr.type();
    if ((type != 0x9 && type != 0xB) || s.tr.limit < 0x67)
        return raise_gp(0);
    u64 map_base;
    if (!read_linear(s.tr.base + 0x66, 2, map_base, true))
        return false;
    const u64 byte = map_base + port / 8;
    if (byte + 1 > s.tr.limit)
        return raise_gp(0);
    u64 bits;
    if (!read_linear(s.tr.base + byte, 2, bits, true))
        return false;
    const u64 mask = ((1u << size) - 1) << (port & 7);
    if (bits & mask)
        return raise_gp(0);
    return true;
}

HANDLER(op_in)
{
    const unsigned size = insn.op[0].size;
    u64 port;
    CPU_TRY(cpu.read_operand(insn, 1, port));
    port &= 0xFFFF;
    CPU_TRY(cpu.check_io_permission(static_cast<u16>(port), size));
    cpu.set_gpr(RAX, size, cpu.ports.read(static_cast<u16>(port), size));
    cpu.note_io_access(static_cast<u16>(port), size);
    cpu.end_block(); // a device may have stopped the CPU or raised an interrupt
    return true;
}

HANDLER(op_out)
{
    const unsigned size = insn.op[1].size;
    u64 port;
    CPU_TRY(cpu.read_operand(insn, 0, port));
    port &= 0xFFFF;
    CPU_TRY(cpu.check_io_permission(static_cast<u16>(port), size));
    if (cpu.is_hypercall_gate(static_cast<u16>(port), size)) {
        // As the KVM backend takes it: after the permission check, from
        // CPL 0 only (elsewhere an ordinary write to an unused port).
        cpu.end_block();
        return cpu.call_hypercall_handler();
    }
    cpu.ports.write(static_cast<u16>(port), size, cpu.gpr(RAX, size));
    cpu.note_io_access(static_cast<u16>(port), size);
    cpu.end_block();
    return true;
}

// ---- Interrupt flag and halting ----

HANDLER(op_hlt)
{
    (void)insn;
    CPU_TRY(require_cpl0(cpu));
    cpu.halt();
    return true;
}

HANDLER(op_cli)
{
    (void)insn;
    if (cpu.s.protected_mode() && iopl(cpu) < (cpu.s.v86_mode() ? 3u : cpu.s.cpl())) {
        if (!cpu.virtual_interrupt_flag())
            return cpu.raise_gp(0);
        cpu.s.rflags &= ~rf::VIF;
        return true;
    }
    cpu.s.rflags &= ~rf::IF;
    return true;
}

HANDLER(op_sti)
{
    (void)insn;
    if (cpu.s.protected_mode() && iopl(cpu) < (cpu.s.v86_mode() ? 3u : cpu.s.cpl())) {
        // A pending virtual interrupt makes STI fault, so the monitor can
        // deliver it (SDM Vol 2B STI).
        if (!cpu.virtual_interrupt_flag() || (cpu.s.rflags & rf::VIP))
            return cpu.raise_gp(0);
        cpu.s.rflags |= rf::VIF;
        return true;
    }
    if (!(cpu.s.rflags & rf::IF)) {
        cpu.s.rflags |= rf::IF;
        cpu.s.events.interrupt_shadow = true; // interrupts wait one instruction
    }
    cpu.end_block();
    return true;
}

// ---- Fast system calls ----

// SYSCALL and SYSRET are AMD's: AMD runs them in legacy mode and in
// compatibility mode too (APM Vol 3, SYSCALL/SYSRET); Intel only in 64-bit
// mode (SDM Vol 2B). SYSENTER/SYSEXIT are Intel's: AMD raises #UD for them in
// long mode (APM Vol 3, SYSENTER), Intel runs them in every protected mode.
HANDLER(op_syscall)
{
    (void)insn;
    if (!(cpu.s.msr.efer & cr::EFER_SCE) || (cpu.intel() && !cpu.s.in_64bit_code()))
        return cpu.raise_ud();
    const u16 sel = static_cast<u16>((cpu.s.msr.star >> 32) & 0xFFFC);
    if (!cpu.s.long_mode_active()) {
        // AMD legacy mode: a flat 32-bit ring-0 CS:EIP from STAR (APM Vol 3).
        cpu.s.gpr[RCX] = cpu.next_rip & 0xFFFFFFFF;
        cpu.materialize_flags();
        cpu.s.rflags &= ~(rf::VM | rf::IF | rf::RF);
        cpu.s.seg[CS] = flat_code(sel, 0, false);
        cpu.s.seg[SS] = flat_stack(static_cast<u16>(sel + 8), 0);
        cpu.next_rip = cpu.s.msr.star & 0xFFFFFFFF;
        cpu.end_block();
        return true;
    }
    cpu.s.gpr[RCX] = cpu.next_rip;
    cpu.s.gpr[R11] = cpu.rflags() & ~rf::RF;
    // From compatibility mode (AMD only) the entry point is CSTAR.
    const u64 target = cpu.s.in_64bit_code() ? cpu.s.msr.lstar : cpu.s.msr.cstar;
    cpu.s.seg[CS] = flat_code(sel, 0, true);
    cpu.s.seg[SS] = flat_stack(static_cast<u16>(sel + 8), 0);
    cpu.s.rflags = (cpu.s.rflags & ~cpu.s.msr.sfmask & ~rf::RF) | rf::FIXED1;
    // The single-step trap follows SYSCALL only if TF survived SFMASK, so
    // that a kernel masking TF never sees #DB on its entry instruction.
    if (!(cpu.s.rflags & rf::TF))
        cpu.suppress_single_step();
    cpu.next_rip = target;
    cpu.end_block();
    return true;
}

HANDLER(op_sysret)
{
    if (!(cpu.s.msr.efer & cr::EFER_SCE) || (cpu.intel() && !cpu.s.in_64bit_code()))
        return cpu.raise_ud();
    if (!cpu.s.protected_mode() || cpu.s.v86_mode() || cpu.s.cpl() != 0)
        return cpu.raise_gp(0);
    const u16 base = static_cast<u16>((cpu.s.msr.star >> 48) & 0xFFFF);
    if (!cpu.s.long_mode_active()) {
        // AMD legacy mode: back to flat 32-bit ring 3 with interrupts on.
        cpu.materialize_flags();
        cpu.s.rflags |= rf::IF;
        cpu.s.seg[CS] = flat_code(static_cast<u16>(base | 3), 3, false);
        cpu.s.seg[SS] = flat_stack(static_cast<u16>((base + 8) | 3), 3);
        cpu.next_rip = cpu.s.gpr[RCX] & 0xFFFFFFFF;
        cpu.end_block();
        return true;
    }
    const bool to_64 = insn.opsize == 8;
    // Intel refuses a non-canonical return address here, at CPL 0; AMD
    // returns and the fetch faults at CPL 3 (the SYSRET erratum every
    // kernel guards against).
    if (to_64 && cpu.intel() && !cpu.is_canonical(cpu.s.gpr[RCX]))
        return cpu.raise_gp(0);
    cpu.write_rflags(cpu.s.gpr[R11], 0x3C7FD7);
    if (cpu.s.rflags & rf::TF)
        cpu.request_single_step_trap();
    if (to_64) {
        cpu.s.seg[CS] = flat_code(static_cast<u16>((base + 16) | 3), 3, true);
        cpu.next_rip = cpu.s.gpr[RCX];
    } else {
        cpu.s.seg[CS] = flat_code(static_cast<u16>(base | 3), 3, false);
        cpu.next_rip = cpu.s.gpr[RCX] & 0xFFFFFFFF;
    }
    // SS keeps its selector-derived attributes as a flat ring-3 data segment.
    // (AMD leaves SS's hidden attributes as they were, X86_BUG_SYSRET_SS_ATTRS
    // in Linux; the model loads them on both vendors, since the CPL is SS.DPL.)
    cpu.s.seg[SS] = flat_stack(static_cast<u16>((base + 8) | 3), 3);
    cpu.end_block();
    return true;
}

HANDLER(op_sysenter)
{
    (void)insn;
    if (cpu.amd() && cpu.s.long_mode_active())
        return cpu.raise_ud();
    if (!cpu.s.protected_mode() || (cpu.s.msr.sysenter_cs & 0xFFFC) == 0)
        return cpu.raise_gp(0);
    const bool long_mode = cpu.s.long_mode_active();
    const u16 cs = static_cast<u16>(cpu.s.msr.sysenter_cs & 0xFFFC);
    cpu.materialize_flags();
    cpu.s.rflags &= ~(rf::VM | rf::IF | rf::RF);
    cpu.s.seg[CS] = flat_code(cs, 0, long_mode);
    cpu.s.seg[SS] = flat_stack(static_cast<u16>(cs + 8), 0);
    cpu.s.gpr[RSP] = long_mode ? cpu.s.msr.sysenter_esp : cpu.s.msr.sysenter_esp & 0xFFFFFFFF;
    cpu.next_rip = long_mode ? cpu.s.msr.sysenter_eip : cpu.s.msr.sysenter_eip & 0xFFFFFFFF;
    cpu.end_block();
    return true;
}

HANDLER(op_sysexit)
{
    if (cpu.amd() && cpu.s.long_mode_active())
        return cpu.raise_ud();
    if (!cpu.s.protected_mode() || cpu.s.v86_mode() || cpu.s.cpl() != 0 ||
        (cpu.s.msr.sysenter_cs & 0xFFFC) == 0)
        return cpu.raise_gp(0);
    const u16 base = static_cast<u16>(cpu.s.msr.sysenter_cs);
    const bool to_64 = insn.opsize == 8;
    if (to_64 && (!cpu.is_canonical(cpu.s.gpr[RDX]) || !cpu.is_canonical(cpu.s.gpr[RCX])))
        return cpu.raise_gp(0);
    if (to_64) {
        cpu.s.seg[CS] = flat_code(static_cast<u16>((base + 32) | 3), 3, true);
        cpu.s.seg[SS] = flat_stack(static_cast<u16>((base + 40) | 3), 3);
        cpu.s.gpr[RSP] = cpu.s.gpr[RCX];
        cpu.next_rip = cpu.s.gpr[RDX];
    } else {
        cpu.s.seg[CS] = flat_code(static_cast<u16>((base + 16) | 3), 3, false);
        cpu.s.seg[SS] = flat_stack(static_cast<u16>((base + 24) | 3), 3);
        cpu.s.gpr[RSP] = cpu.s.gpr[RCX] & 0xFFFFFFFF;
        cpu.next_rip = cpu.s.gpr[RDX] & 0xFFFFFFFF;
    }
    cpu.end_block();
    return true;
}

HANDLER(op_swapgs)
{
    (void)insn;
    if (!cpu.s.in_64bit_code())
        return cpu.raise_ud();
    CPU_TRY(require_cpl0(cpu));
    std::swap(cpu.s.seg[GS].base, cpu.s.msr.kernel_gs_base);
    return true;
}

// ---- FS/GS base, misc ----

namespace {
bool fsgsbase_allowed(Cpu& cpu)
{
    if (!cpu.s.in_64bit_code() || !(cpu.s.cr4 & cr::CR4_FSGSBASE))
        return cpu.raise_ud();
    return true;
}
} // namespace

HANDLER(op_rdfsbase)
{
    CPU_TRY(fsgsbase_allowed(cpu));
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, cpu.s.seg[FS].base);
    return true;
}

HANDLER(op_rdgsbase)
{
    CPU_TRY(fsgsbase_allowed(cpu));
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, cpu.s.seg[GS].base);
    return true;
}

HANDLER(op_wrfsbase)
{
    CPU_TRY(fsgsbase_allowed(cpu));
    const u64 v = cpu.gpr(insn.op[0].reg, insn.op[0].size);
    if (!cpu.is_canonical_stored(v))
        return cpu.raise_gp(0);
    cpu.s.seg[FS].base = v;
    return true;
}

HANDLER(op_wrgsbase)
{
    CPU_TRY(fsgsbase_allowed(cpu));
    const u64 v = cpu.gpr(insn.op[0].reg, insn.op[0].size);
    if (!cpu.is_canonical_stored(v))
        return cpu.raise_gp(0);
    cpu.s.seg[GS].base = v;
    return true;
}

HANDLER(op_ud)
{
    (void)insn;
    return cpu.raise_ud();
}

HANDLER(op_pause)
{
    (void)insn;
    cpu.pause_hint();
    return true;
}
HANDLER(op_fence) { (void)cpu; (void)insn; return true; }

HANDLER(op_clflush)
{
    // Checks the address like a byte read (it faults like one), then does nothing.
    u64 v;
    return cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), 1, v);
}

HANDLER(op_invpcid) { (void)insn; return cpu.raise_ud(); }
HANDLER(op_rdpid) { (void)insn; return cpu.raise_ud(); }

HANDLER(op_clac)
{
    (void)insn;
    if (cpu.s.protected_mode() && cpu.s.cpl() != 0)
        return cpu.raise_ud();
    cpu.s.rflags &= ~rf::AC;
    return true;
}

HANDLER(op_stac)
{
    (void)insn;
    if (cpu.s.protected_mode() && cpu.s.cpl() != 0)
        return cpu.raise_ud();
    cpu.s.rflags |= rf::AC;
    return true;
}

HANDLER(op_vmcall)
{
    // Hypercalls are a kernel-mode interface (TLFS: from CPL 0 only); a user
    // caller gets #UD like a guest on hardware that has no hypervisor. Each
    // vendor's guest uses its own instruction (VMCALL on VT-x, VMMCALL on
    // SVM); the other one is #UD there, as in a real guest.
    const bool vmmcall = insn.modrm == 0xD9;
    if (vmmcall != cpu.amd())
        return cpu.raise_ud();
    if (!cpu.has_hypercall_handler() || (cpu.s.protected_mode() && cpu.s.cpl() != 0) ||
        cpu.s.v86_mode() || !cpu.s.protected_mode())
        return cpu.raise_ud();
    cpu.end_block();
    return cpu.call_hypercall_handler();
}
