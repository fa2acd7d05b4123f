// The whole architectural state of one vCPU as plain data. It is the single
// truth that the interpreter works on and that a KVM backend, snapshots,
// record/replay and the GDB stub load and store (docs/architecture.md "CpuState").
#pragma once

#include "mmu/base/types.h"

#include <array>

enum Gpr : u8 {
    RAX = 0, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15,
};

enum SegReg : u8 { ES = 0, CS, SS, DS, FS, GS, SEG_COUNT };

// RFLAGS bits (SDM Vol 1 3.4.3).
namespace rf {
constexpr u64 CF = 1u << 0, FIXED1 = 1u << 1, PF = 1u << 2, AF = 1u << 4, ZF = 1u << 6,
              SF = 1u << 7, TF = 1u << 8, IF = 1u << 9, DF = 1u << 10, OF = 1u << 11,
              IOPL = 3u << 12, NT = 1u << 14, RF = 1u << 16, VM = 1u << 17, AC = 1u << 18,
              VIF = 1u << 19, VIP = 1u << 20, ID = 1u << 21;
constexpr u64 ARITH = CF | PF | AF | ZF | SF | OF;
constexpr unsigned IOPL_SHIFT = 12;
} // namespace rf

// Debug status and control bits (SDM Vol 3B 18.2.3-18.2.4).
namespace dbg {
constexpr u64 DR6_B_MASK = 0xF, DR6_BD = 1u << 13, DR6_BS = 1u << 14, DR6_BT = 1u << 15;
constexpr u64 DR6_FIXED1 = 0xFFFF0FF0; // reserved bits that read 1 (RTM, BLD active low)
constexpr u64 DR6_WRITABLE = 0x0000E00F;
constexpr u64 DR7_ENABLES = 0xFF; // L0 G0 L1 G1 L2 G2 L3 G3
constexpr u64 DR7_GD = 1u << 13;
constexpr u64 DR7_FIXED1 = 0x400;
constexpr u64 DR7_WRITABLE = 0xFFFF2BFF;
} // namespace dbg

// A segment register with its hidden descriptor cache. `attr` holds the
// descriptor's type (bits 0-3), S (4), DPL (5-6), P (7), AVL (8), L (9),
// D/B (10), G (11), in the packed form KVM and VMX use; bit 16 = unusable.
struct Segment {
    u16 selector = 0;
    u64 base = 0;
    u32 limit = 0xFFFF; // expanded byte limit (granularity already applied)
    u32 attr = 0;

    static constexpr u32 TYPE_MASK = 0xF, S = 1u << 4, P = 1u << 7, AVL = 1u << 8, L = 1u << 9,
                         DB = 1u << 10, G = 1u << 11, UNUSABLE = 1u << 16;
    unsigned type() const { return attr & TYPE_MASK; }
    unsigned dpl() const { return (attr >> 5) & 3; }
    bool present() const { return attr & P; }
};

struct DescriptorTable {
    u64 base = 0;
    u16 limit = 0xFFFF;
};

// Machine-check MSRs (cpu/system/machine_check.h): IA32_MCG_STATUS, IA32_MCG_CTL and
// the banks' CTL, STATUS, ADDR and MISC. The enables start all ones, as KVM
// sets them (the SDM leaves them undefined at reset).
struct MachineCheckState {
    u64 mcg_status = 0;
    u64 mcg_ctl = ~0ull;
    std::array<std::array<u64, 4>, 10> banks = [] {
        std::array<std::array<u64, 4>, 10> b{};
        for (auto& bank : b)
            bank[0] = ~0ull;
        return b;
    }();
};

// The AMD model's own MSRs (cpu/system/amd_msrs.h).
struct AmdMsrState {
    u64 hwcr = 0;
    u64 nb_cfg = 0;
    std::array<u64, 4> perf_ctl{}, perf_ctr{};
};

// Model-specific registers that the core itself implements. Devices and
// enlightenments add theirs on the MSR bus.
struct MsrState {
    u64 efer = 0;
    u64 star = 0, lstar = 0, cstar = 0, sfmask = 0;
    u64 kernel_gs_base = 0;
    u64 sysenter_cs = 0, sysenter_esp = 0, sysenter_eip = 0;
    u64 tsc_offset = 0; // guest TSC = virtual clock ticks + tsc_offset
    u64 tsc_aux = 0;
    u64 xss = 0; // IA32_XSS: supervisor components for XSAVES/XRSTORS
    u64 pat = 0x0007040600070406ull;
    u64 apic_base = 0xFEE00900ull; // BSP flag + enabled; APs clear bit 8
    u64 misc_enable = 1; // fast strings
    std::array<u64, 2> mtrr_def_type_and_cap{};
    MachineCheckState machine_check;
    AmdMsrState amd;
};

// One x87 register in its 80-bit extended form.
struct X87Register {
    u64 mantissa = 0;      // explicit integer bit at 63
    u16 sign_exponent = 0; // sign at 15, biased exponent 14:0
};

// x87 and SSE state in the layout FXSAVE describes (SDM Vol 1 10.5.1);
// the complete-ISA work fills in the arithmetic that uses it.
struct FpuState {
    u16 fcw = 0x037F;
    u16 fsw = 0;
    u16 ftw = 0xFFFF; // full tag word: 11 = empty for every register
    u16 fop = 0;
    u64 fip = 0, fdp = 0;
    u16 fcs = 0, fds = 0;
    std::array<X87Register, 8> st{};
    u32 mxcsr = 0x1F80;
    std::array<std::array<u64, 2>, 16> xmm{};
    std::array<std::array<u64, 2>, 16> ymm_high{};
};

// An event waiting to be delivered at the next instruction boundary.
struct PendingEvents {
    bool nmi = false;
    bool interrupt_shadow = false; // STI / MOV SS blocking for one instruction
    // MOV SS / POP SS also hold back the debug traps of their own execution
    // (single-step, data breakpoints) until after the next instruction.
    bool mov_ss_blocking = false;
    u64 pending_debug = 0; // DR6 bits (B0-B3, BS) of the traps held back
    bool nmi_blocked = false;      // inside an NMI handler until IRET
    bool halted = false;
    bool ferr = false; // FERR# asserted (x87 error signalled with CR0.NE = 0)
    // The new TSS had its T bit set: #DB with DR6.BT before the new task's
    // first instruction (SDM Vol 3B 18.3.1.5).
    bool task_switch_trap = false;
};

struct CpuState {
    std::array<u64, 16> gpr{};
    u64 rip = 0xFFF0;
    u64 rflags = rf::FIXED1;

    std::array<Segment, SEG_COUNT> seg{};
    Segment ldtr{}, tr{};
    DescriptorTable gdtr{}, idtr{};

    u64 cr0 = 0x60000010, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0;
    u64 xcr0 = 1;
    std::array<u64, 8> dr{0, 0, 0, 0, 0xFFFF0FF0, 0x400, 0xFFFF0FF0, 0x400};

    MsrState msr{};
    FpuState fpu{};
    PendingEvents events{};

    // CPL is SS.DPL, as VMX and KVM keep it: correct in real mode (0), V86 (3)
    // and through conforming-code transfers where CS.RPL alone would not be.
    unsigned cpl() const { return seg[SS].dpl(); }
    bool long_mode_active() const { return msr.efer & (1ull << 10); }
    bool protected_mode() const { return cr0 & 1; }
    bool v86_mode() const { return rflags & rf::VM; }
    bool in_64bit_code() const { return long_mode_active() && (seg[CS].attr & Segment::L); }
};

// The state after power-on or INIT (SDM Vol 3A 9.1.1, Table 9-1): real mode,
// CS = F000 with base FFFF0000, IP = FFF0, EDX the reset signature. Every
// vCPU but the bootstrap one (APIC ID 0) has IA32_APIC_BASE.BSP clear.
CpuState power_on_state(unsigned apic_id);
