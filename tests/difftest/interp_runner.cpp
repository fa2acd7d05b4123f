#include "tests/difftest/interp_runner.h"

#include "cpu/x87/fpu_image.h"
#include "mmu/page_walker.h"

#include <cstring>

namespace difftest {

namespace {

// Guest-physical layout. The system structures are identity-mapped and
// supervisor-only, below the host's lowest possible mapping.
constexpr u64 GDT = 0x1000;
constexpr u64 IDT = 0x2000;
constexpr u64 STUBS = 0x3000; // one HLT per vector, 16 bytes apart
constexpr u64 TSS = 0x4000;
constexpr u64 KERNEL_STACK_TOP = 0x6000;
constexpr u64 PML4 = 0x8000, PDPT = 0x9000, PD = 0xA000, PT_LOW = 0xB000, PT_WINDOW = 0xC000;
constexpr u64 CODE_PA = 0x10000, DATA_PA = 0x11000;
constexpr unsigned VECTORS = 32;

// Selectors as Linux lays them out, so PUSH/POP of selectors would agree.
constexpr u16 KERNEL_CS = 0x10, KERNEL_DS = 0x18, TSS_SEL = 0x40;
constexpr u64 KERNEL_CODE64 = 0x00AF9B000000FFFFull, KERNEL_DATA = 0x00CF93000000FFFFull,
              USER_CODE32 = 0x00CFFB000000FFFFull, USER_DATA = 0x00CFF3000000FFFFull,
              USER_CODE64 = 0x00AFFB000000FFFFull;

constexpr u64 PTE_P = 1, PTE_W = 2, PTE_U = 4, PTE_NX = 1ull << 63;

bool has_error_code(u8 v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21;
}

u64 get64(const u8* p)
{
    u64 v;
    std::memcpy(&v, p, 8);
    return v;
}

void put64(u8* p, u64 v)
{
    std::memcpy(p, &v, 8);
}

// What the host's XRSTOR does with the case's image (every component present).
void load_fp(FpuState& f, const FpImage& img)
{
    const u8* b = img.b.data();
    load_x87_image(f, true, b);
    std::memcpy(&f.mxcsr, b + fpimg::MXCSR, 4);
    for (unsigned i = 0; i < 16; ++i) {
        f.xmm[i] = {get64(b + fpimg::XMM + 16 * i), get64(b + fpimg::XMM + 16 * i + 8)};
        f.ymm_high[i] = {get64(b + fpimg::YMM_HI + 16 * i), get64(b + fpimg::YMM_HI + 16 * i + 8)};
    }
}

// The state as the host's signal frame shows it (XSAVE64 layout).
void store_fp(const FpuState& f, FpImage& img)
{
    u8* b = img.b.data();
    store_x87_image(f, true, b);
    std::memcpy(b + fpimg::MXCSR, &f.mxcsr, 4);
    for (unsigned i = 0; i < 16; ++i) {
        put64(b + fpimg::XMM + 16 * i, f.xmm[i][0]);
        put64(b + fpimg::XMM + 16 * i + 8, f.xmm[i][1]);
        put64(b + fpimg::YMM_HI + 16 * i, f.ymm_high[i][0]);
        put64(b + fpimg::YMM_HI + 16 * i + 8, f.ymm_high[i][1]);
    }
}

} // namespace

InterpRunner::InterpRunner(CpuVendor vendor) : m_cpuid(1, vendor)
{
    m_cpu.reset();
    auto put64 = [&](u64 addr, u64 v) { m_mem.write_bytes(addr, &v, 8); };

    put64(GDT + KERNEL_CS, KERNEL_CODE64);
    put64(GDT + KERNEL_DS, KERNEL_DATA);
    put64(GDT + (USER_CS32 & ~3), USER_CODE32);
    put64(GDT + (USER_DS & ~3), USER_DATA);
    put64(GDT + (USER_CS64 & ~3), USER_CODE64);
    const u64 tss_low =
        0x67 | ((TSS & 0xFFFFFF) << 16) | (0x8Bull << 40) | (((TSS >> 24) & 0xFF) << 56);
    put64(GDT + TSS_SEL, tss_low);
    put64(GDT + TSS_SEL + 8, TSS >> 32);

    for (unsigned v = 0; v < VECTORS; ++v) {
        const u64 target = STUBS + 16 * v;
        // #BP and #OF gates have DPL 3, as Linux sets them, so INT3 and INTO
        // from user mode reach them.
        const u64 type = (v == VEC_BP || v == VEC_OF) ? 0xEE : 0x8E;
        const u64 lo = (target & 0xFFFF) | (u64(KERNEL_CS) << 16) | (type << 40) |
                       (((target >> 16) & 0xFFFF) << 48);
        put64(IDT + 16 * v, lo);
        put64(IDT + 16 * v + 8, target >> 32);
    }
    for (unsigned i = 0; i < VECTORS * 16; ++i) {
        const u8 hlt = 0xF4;
        m_mem.write_bytes(STUBS + i, &hlt, 1);
    }
    put64(TSS + 4, KERNEL_STACK_TOP); // RSP0

    put64(PML4, PDPT | PTE_P | PTE_W | PTE_U);
    put64(PDPT, PD | PTE_P | PTE_W | PTE_U);
    put64(PD, PT_LOW | PTE_P | PTE_W | PTE_U);
    put64(PD + 8 * ((WINDOW_VA >> 21) & 511), PT_WINDOW | PTE_P | PTE_W | PTE_U);
    for (u64 page = 0x1000; page < 0x8000; page += 0x1000)
        put64(PT_LOW + 8 * (page >> 12), page | PTE_P | PTE_W);
    put64(PT_WINDOW + 8 * ((CODE_VA >> 12) & 511), CODE_PA | PTE_P | PTE_W | PTE_U);
    put64(PT_WINDOW + 8 * ((DATA_VA >> 12) & 511), DATA_PA | PTE_P | PTE_W | PTE_U | PTE_NX);

    CpuState& s = m_state;
    s.cr0 =
        cr::CR0_PE | cr::CR0_MP | cr::CR0_ET | cr::CR0_NE | cr::CR0_WP | cr::CR0_AM | cr::CR0_PG;
    s.cr3 = PML4;
    // SSE and AVX enabled as Linux enables them (OSFXSR, OSXMMEXCPT, OSXSAVE, XCR0 = x87|SSE|AVX).
    s.cr4 = cr::CR4_PAE | cr::CR4_OSFXSR | cr::CR4_OSXMMEXCPT | cr::CR4_OSXSAVE;
    s.xcr0 = xfeat::X87 | xfeat::SSE | xfeat::AVX;
    s.msr.efer = cr::EFER_SCE | cr::EFER_LME | cr::EFER_LMA | cr::EFER_NXE;
    s.gdtr = {GDT, 0x4F};
    s.idtr = {IDT, VECTORS * 16 - 1};
    m_cpu.set_segment_from_descriptor(s.seg[CS], USER_CS64, USER_CODE64);
    m_cpu.set_segment_from_descriptor(s.seg[SS], USER_DS, USER_DATA);
    for (unsigned seg : {DS, ES, FS, GS}) {
        // Null selectors, as a Linux process has them; usable in 64-bit mode.
        s.seg[seg] = Segment{0, 0, 0, Segment::UNUSABLE};
    }
    s.tr = Segment{TSS_SEL, TSS, 0x67, Segment::P | 0xB};
    s.rflags = 0x202;
    m_initial = s;
    // Compatibility mode, as the host prologue leaves it: 32-bit code, DS and
    // ES loaded with the user data selector.
    m_initial32 = s;
    m_cpu.set_segment_from_descriptor(m_initial32.seg[CS], USER_CS32, USER_CODE32);
    m_cpu.set_segment_from_descriptor(m_initial32.seg[DS], USER_DS, USER_DATA);
    m_cpu.set_segment_from_descriptor(m_initial32.seg[ES], USER_DS, USER_DATA);
}

Result InterpRunner::run(const TestCase& tc, const u8* code_page)
{
    m_mem.write_bytes(CODE_PA, code_page, PAGE_SIZE);
    m_mem.write_bytes(DATA_PA, tc.data.data(), DATA_SIZE);
    m_state = tc.mode32 ? m_initial32 : m_initial;
    m_state.gpr = tc.init.gpr;
    m_state.rflags = tc.init.rflags;
    m_state.rip = tc.init.rip;
    if (tc.fp)
        load_fp(m_state.fpu, tc.fp_init);
    m_cpu.lf = LazyFlags{};

    // A long REP string instruction retires in chunks, each leaving RIP on
    // the instruction; run until it moves on (or faults) as the host does.
    const u16 user_cs = m_state.seg[CS].selector;
    RunExit exit = m_cpu.run(1);
    for (unsigned chunk = 0; chunk < 64 && exit == RunExit::BudgetExhausted &&
                             m_state.rip == tc.init.rip && m_state.seg[CS].selector == user_cs;
         ++chunk)
        exit = m_cpu.run(1);
    Result r;
    m_mem.read_bytes(DATA_PA, r.data.data(), DATA_SIZE);
    if (tc.fp)
        store_fp(m_state.fpu, r.fp);
    if (exit != RunExit::BudgetExhausted) {
        r.ok = false;
        r.error = exit == RunExit::TripleFault ? "ours: triple fault" : "ours: run did not finish";
        return r;
    }
    if (m_state.seg[CS].selector != KERNEL_CS) {
        r.regs.gpr = m_state.gpr;
        r.regs.rflags = m_cpu.rflags();
        r.regs.rip = m_state.rip;
        return r;
    }
    // The exception was delivered; its stub's HLT may or may not have run
    // within the budget, depending on whether delivery counts as retirement.
    const u64 stub = m_state.events.halted ? m_state.rip - 1 : m_state.rip;
    if (stub < STUBS || stub >= STUBS + VECTORS * 16 || (stub - STUBS) % 16) {
        r.ok = false;
        r.error = "ours: ended in kernel mode outside the exception stubs";
        return r;
    }
    r.faulted = true;
    r.vector = static_cast<u8>((stub - STUBS) / 16);
    u64 frame = m_state.gpr[RSP];
    auto pop = [&] {
        u64 v = 0;
        m_mem.read_bytes(frame, &v, 8);
        frame += 8;
        return v;
    };
    if (has_error_code(r.vector))
        r.error_code = static_cast<u32>(pop());
    r.regs.rip = pop();
    pop(); // CS
    r.regs.rflags = pop();
    r.regs.gpr = m_state.gpr;
    r.regs.gpr[RSP] = pop();
    if (r.vector == 14)
        r.fault_address = m_state.cr2;
    return r;
}

} // namespace difftest
