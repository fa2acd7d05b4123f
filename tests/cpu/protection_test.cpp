// Segment limits, types and alignment checks: behaviour the SDM requires and
// that QEMU's TCG does not enforce, so the test ROMs (checked against QEMU)
// cannot cover it.
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

namespace {

// A 32-bit IDT whose every vector points at a stub that records the vector
// number in EBX (mov ebx, vector ; hlt). Stubs live at 0x12000 + 16*vector.
void install_recording_idt(CpuHarness& h)
{
    const u64 idt = 0x3000;
    for (unsigned v = 0; v < 32; ++v) {
        const u32 handler = 0x12000 + v * 16;
        const u64 gate = (handler & 0xFFFF) | (u64(0x08) << 16) | (u64(0x8E) << 40) |
                         (u64(handler >> 16) << 48);
        h.put64(idt + v * 8, gate);
        h.put(handler, {0xBB, u8(v), 0, 0, 0, 0xF4});
    }
    h.state.idtr = {idt, 32 * 8 - 1};
}

u64 pushed_error_code(CpuHarness& h) { return h.get64(h.state.gpr[RSP]) & 0xFFFFFFFF; }

} // namespace

TEST_CASE("a read past a data segment's limit raises #GP(0)")
{
    CpuHarness h;
    h.enter_protected32();
    install_recording_idt(h);
    // DS: base 0, limit 0xFFF, byte granular.
    h.put64(CpuHarness::GDT + 24, 0x0040930000000FFFull);
    h.cpu.set_segment_from_descriptor(h.state.seg[DS], 0x18, 0x0040930000000FFFull);
    // mov eax, [0xFFE] reads bytes 0xFFE..0x1001: beyond the limit.
    CHECK(h.run_code({0xA1, 0xFE, 0x0F, 0, 0}) == RunExit::Halted);
    CHECK(h.state.gpr[RBX] == VEC_GP);
    CHECK(pushed_error_code(h) == 0);
}

TEST_CASE("a stack access past SS's limit raises #SS, not #GP")
{
    CpuHarness h;
    h.enter_protected32();
    install_recording_idt(h);
    // SS: limit 0x7FFFF (covers the handler's stack) but ESP points past it.
    const u64 ss_desc = 0x004793000000FFFFull; // limit 0x7FFFF byte granular
    h.cpu.set_segment_from_descriptor(h.state.seg[SS], 0x10, ss_desc);
    h.state.gpr[RSP] = 0x7FFFE; // push of 4 bytes wraps to 0x7FFFA: inside; use mov instead
    // mov eax, [esp+4]  (SS-relative, 0x80002 > limit)
    CHECK(h.run_code({0x8B, 0x44, 0x24, 0x04}) == RunExit::Halted);
    CHECK(h.state.gpr[RBX] == VEC_SS);
}

TEST_CASE("an expand-down segment faults below its limit and allows above it")
{
    CpuHarness h;
    h.enter_protected32();
    install_recording_idt(h);
    // ES: expand-down writable data, limit 0x1000, D/B=1 (upper bound 4 GiB).
    const u64 es_desc = 0x0040970000001000ull;
    h.cpu.set_segment_from_descriptor(h.state.seg[ES], 0x10, es_desc);
    // mov eax, es:[0x2000] is valid (above the limit) ; mov eax, es:[0x800] faults.
    CHECK(h.run_code({0x26, 0xA1, 0x00, 0x20, 0, 0, 0x26, 0xA1, 0x00, 0x08, 0, 0}) ==
          RunExit::Halted);
    CHECK(h.state.gpr[RBX] == VEC_GP);
    // The fault is at the second load: the first one retired.
    CHECK((h.get64(h.state.gpr[RSP] + 4) & 0xFFFFFFFF) == CpuHarness::CODE + 6);
}

TEST_CASE("a write through a read-only data segment raises #GP(0)")
{
    CpuHarness h;
    h.enter_protected32();
    install_recording_idt(h);
    const u64 ro_desc = 0x00CF91000000FFFFull; // present, data, read-only
    h.cpu.set_segment_from_descriptor(h.state.seg[FS], 0x10, ro_desc);
    // mov fs:[0x40000], eax
    CHECK(h.run_code({0x64, 0xA3, 0x00, 0x00, 0x04, 0x00}) == RunExit::Halted);
    CHECK(h.state.gpr[RBX] == VEC_GP);
}

TEST_CASE("a misaligned access at CPL 3 with CR0.AM and EFLAGS.AC raises #AC(0)")
{
    CpuHarness h;
    h.enter_long64();
    // IDT vector 17 → handler (64-bit gate), ring-3 code and data segments.
    const u64 idt = 0x3000, handler = 0x12000;
    h.put64(idt + 17 * 16, (handler & 0xFFFF) | (u64(0x08) << 16) | (u64(0x8E) << 40) |
                               (u64(handler >> 16 & 0xFFFF) << 48));
    h.put64(idt + 17 * 16 + 8, 0);
    h.state.idtr = {idt, 0xFFF};
    h.put(handler, {0xBB, 17, 0, 0, 0, 0xF4});
    // TSS with RSP0 for the ring switch.
    const u64 tss = 0x5000;
    h.put64(tss + 4, 0x70000);
    h.state.tr.base = tss;
    h.state.tr.limit = 0x67;
    h.state.tr.attr = 0x8B;
    h.put64(CpuHarness::GDT + 24, 0x00AFFB000000FFFFull);
    h.put64(CpuHarness::GDT + 32, 0x00CFF3000000FFFFull);
    h.state.gdtr.limit = 0x3F;
    h.cpu.set_segment_from_descriptor(h.state.seg[CS], 0x1B, 0x00AFFB000000FFFFull);
    h.cpu.set_segment_from_descriptor(h.state.seg[SS], 0x23, 0x00CFF3000000FFFFull);
    h.state.cr0 |= cr::CR0_AM;
    h.state.rflags |= rf::AC;
    // mov eax, [0x40001]  (misaligned 4-byte load)
    CHECK(h.run_code({0x8B, 0x04, 0x25, 0x01, 0x00, 0x04, 0x00}) == RunExit::Halted);
    CHECK(h.state.gpr[RBX] == 17);
    CHECK(h.state.cpl() == 0);
}

TEST_CASE("a fault while delivering an exception through a bad gate sets EXT in the error code")
{
    CpuHarness h;
    h.enter_protected32();
    install_recording_idt(h);
    // Vector 6 (#UD) gate not present: delivering #UD raises #NP(6*8+2+EXT).
    h.put64(0x3000 + 6 * 8, h.get64(0x3000 + 6 * 8) & ~(1ull << 47));
    CHECK(h.run_code({0x0F, 0x0B}) == RunExit::Halted);
    CHECK(h.state.gpr[RBX] == VEC_NP);
    CHECK(pushed_error_code(h) == 6 * 8 + 2 + 1);
}

TEST_CASE("INT n through a gate with DPL below CPL raises #GP with the IDT error code")
{
    CpuHarness h;
    h.enter_long64();
    const u64 idt = 0x3000, handler = 0x12000;
    // Vector 13 handler (DPL 0 gate is fine for exceptions) and vector 0x80 with DPL 0.
    for (unsigned v : {13u, 0x80u}) {
        h.put64(idt + v * 16, (handler & 0xFFFF) | (u64(0x08) << 16) | (u64(0x8E) << 40) |
                                  (u64(handler >> 16 & 0xFFFF) << 48));
        h.put64(idt + v * 16 + 8, 0);
    }
    h.state.idtr = {idt, 0xFFF};
    h.put(handler, {0xF4});
    const u64 tss = 0x5000;
    h.put64(tss + 4, 0x70000);
    h.state.tr.base = tss;
    h.state.tr.limit = 0x67;
    h.state.tr.attr = 0x8B;
    h.put64(CpuHarness::GDT + 24, 0x00AFFB000000FFFFull);
    h.put64(CpuHarness::GDT + 32, 0x00CFF3000000FFFFull);
    h.state.gdtr.limit = 0x3F;
    h.cpu.set_segment_from_descriptor(h.state.seg[CS], 0x1B, 0x00AFFB000000FFFFull);
    h.cpu.set_segment_from_descriptor(h.state.seg[SS], 0x23, 0x00CFF3000000FFFFull);
    CHECK(h.run_code({0xCD, 0x80}) == RunExit::Halted); // int 0x80 at CPL 3
    // #GP(0x80*8 + 2), delivered on the ring-0 stack from the TSS.
    CHECK(h.state.cpl() == 0);
    CHECK(h.get64(h.state.gpr[RSP]) == 0x80 * 8 + 2);
    CHECK(h.get64(h.state.gpr[RSP] + 8) == CpuHarness::CODE); // faulting RIP is the INT
}

// Stored linear addresses are canonical relative to the widest linear
// address the CPU supports (57 bits: the model offers LA57), even while
// 4-level paging is on; kvm-unit-tests' la57 test checks exactly this.
TEST_CASE("WRMSR FS_BASE and LGDT accept 57-bit canonical bases under 4-level paging")
{
    CpuHarness h;
    h.enter_long64_with_vector_stubs();
    REQUIRE((h.state.cr4 & (1u << 12)) == 0); // CR4.LA57 off
    auto wrmsr = [&h](u32 index, u64 value) {
        h.state.gpr[RCX] = index;
        h.state.gpr[RAX] = value & 0xFFFFFFFF;
        h.state.gpr[RDX] = value >> 32;
        return h.run_to_vector({0x0F, 0x30});
    };
    CHECK(wrmsr(0xC0000100, 0xFFAAAAAAAAAAAAAAull) == -1); // 57-bit canonical
    CHECK(h.state.seg[FS].base == 0xFFAAAAAAAAAAAAAAull);
    CHECK(wrmsr(0xC0000100, 0xAAAAAAAAAAAAAAAAull) == VEC_GP); // canonical nowhere
    // LGDT [rbx] with a base that is canonical only with 57 bits.
    h.put64(0x30000, 0xFFFF);
    h.put64(0x30002, 0xFF80000000000000ull);
    h.state.gpr[RBX] = 0x30000;
    const u64 old_gdt = h.state.gdtr.base;
    CHECK(h.run_to_vector({0x0F, 0x01, 0x13}) == -1);
    CHECK(h.state.gdtr.base == 0xFF80000000000000ull);
    h.state.gdtr.base = old_gdt;
}

// The memory fast path trusts the soft TLB to hold only canonical pages, so
// a non-canonical address whose low 48 bits alias a page just used must
// still fault: #GP, or #SS for a stack-segment access.
TEST_CASE("non-canonical data accesses fault even when their low bits alias a cached page")
{
    CpuHarness h;
    h.enter_long64_with_vector_stubs();
    h.put64(0x30000, 0x1122334455667788ull);
    h.state.gpr[RBX] = 0x30000;
    CHECK(h.run_to_vector({0x48, 0x8B, 0x03}) == -1); // mov rax, [rbx]: caches the page
    CHECK(h.state.gpr[RAX] == 0x1122334455667788ull);
    h.state.gpr[RBX] = 0x8000000000030000ull;
    CHECK(h.run_to_vector({0x48, 0x8B, 0x03}) == VEC_GP);
    h.state.gpr[RBP] = 0x8000000000030000ull;
    CHECK(h.run_to_vector({0x48, 0x8B, 0x45, 0x00}) == VEC_SS); // mov rax, [rbp]
    // An FS base that is canonical only with 57 bits may be stored, but
    // under 4-level paging an access through it is #GP.
    h.state.seg[FS].base = 0xFFAAAAAAAAA00000ull;
    h.state.gpr[RBX] = 0x30000 - (0xFFAAAAAAAAA00000ull & 0xFFFFFFFFFFFFull);
    CHECK(h.run_to_vector({0x64, 0x48, 0x8B, 0x03}) == VEC_GP); // mov rax, fs:[rbx]
}

// A guest that moves its APIC window over RAM (IA32_APIC_BASE) changes the
// physical map under a running CPU: its soft TLB must not keep serving the
// RAM page that the window now hides.
TEST_CASE("an MMIO range mapped over RAM at run time takes effect despite a cached translation")
{
    struct Answer : IoDevice {
        u64 io_read(u64, unsigned) override { return 0xD00DFEED; }
        void io_write(u64, unsigned, u64) override {}
    } device;
    CpuHarness h;
    h.enter_long64_with_vector_stubs();
    h.put64(0x30000, 0x11111111);
    h.state.gpr[RBX] = 0x30000;
    CHECK(h.run_to_vector({0x8B, 0x03}) == -1); // mov eax, [rbx]
    CHECK(h.state.gpr[RAX] == 0x11111111);
    REQUIRE(h.mem.try_map_mmio(0x30000, 0x1000, &device));
    CHECK(h.run_to_vector({0x8B, 0x03}) == -1);
    CHECK(h.state.gpr[RAX] == 0xD00DFEED);
    h.mem.unmap_mmio(0x30000, &device);
    CHECK(h.run_to_vector({0x8B, 0x03}) == -1);
    CHECK(h.state.gpr[RAX] == 0x11111111);
}

TEST_CASE("LTR raises #GP(selector) for a TSS descriptor with a non-canonical base")
{
    CpuHarness h;
    h.enter_long64_with_vector_stubs();
    // 16-byte available 64-bit TSS at GDT slot 3 (0x18), base 0xAAAAAAAA_00000000.
    h.put64(CpuHarness::GDT + 0x18, 0x0000890000000067ull);
    h.put64(CpuHarness::GDT + 0x20, 0x00000000AAAAAAAAull);
    h.state.gdtr = {CpuHarness::GDT, 0x2F};
    h.state.gpr[RAX] = 0x18;
    CHECK(h.run_to_vector({0x0F, 0x00, 0xD8}) == VEC_GP); // ltr ax
}

namespace {
// An interrupt controller that owns CR8, as a local APIC's TPR does.
struct TprSource : InterruptSource {
    u64 tpr_high = 0; // TPR[7:4]
    int writes = 0;
    bool interrupt_pending() override { return false; }
    u8 acknowledge_interrupt() override { return 0; }
    bool read_cr8(u64& value) override
    {
        value = tpr_high;
        return true;
    }
    bool write_cr8(u64 value) override
    {
        tpr_high = value;
        ++writes;
        return true;
    }
};
} // namespace

TEST_CASE("MOV to and from CR8 go to the local APIC's task priority")
{
    CpuHarness h;
    TprSource apic;
    h.cpu.set_interrupt_source(&apic);
    h.enter_long64_with_vector_stubs();
    h.state.gpr[RAX] = 0xB;
    CHECK(h.run_to_vector({0x44, 0x0F, 0x22, 0xC0}) == -1); // mov cr8, rax
    CHECK(apic.writes == 1);
    CHECK(apic.tpr_high == 0xB);
    apic.tpr_high = 0x3; // the guest wrote the TPR through MMIO
    CHECK(h.run_to_vector({0x44, 0x0F, 0x20, 0xC1}) == -1); // mov rcx, cr8
    CHECK(h.state.gpr[RCX] == 0x3);
}

TEST_CASE("CPUID.1:EDX.APIC follows the local APIC's global enable")
{
    struct DisabledApic : TprSource {
        bool enabled = true;
        bool apic_enabled() const override { return enabled; }
    };
    CpuHarness h;
    DisabledApic apic;
    h.cpuid.set_local_apic(true);
    h.cpu.set_interrupt_source(&apic);
    h.enter_long64_with_vector_stubs();
    auto apic_bit = [&h] {
        h.state.gpr[RAX] = 1;
        h.state.gpr[RCX] = 0;
        REQUIRE(h.run_to_vector({0x0F, 0xA2}) == -1);
        return (h.state.gpr[RDX] >> 9) & 1;
    };
    CHECK(apic_bit() == 1);
    apic.enabled = false; // IA32_APIC_BASE.EN cleared
    CHECK(apic_bit() == 0);
}

// DR6 bit 16 is the active-low RTM bit: without RTM it reads 1 whatever is
// written, so a cleared DR6 reads 0xFFFF0FF0 and a single-step #DB leaves
// 0xFFFF4FF0 (kvm-unit-tests debug compares DR6 exactly).
TEST_CASE("MOV to DR6 keeps the fixed-1 bits, bit 16 included without RTM")
{
    CpuHarness h;
    h.enter_long64_with_vector_stubs();
    h.state.gpr[RAX] = 0;
    CHECK(h.run_to_vector({0x0F, 0x23, 0xF0, 0x0F, 0x21, 0xF1}) == -1); // mov dr6, rax; mov rcx, dr6
    CHECK(h.state.gpr[RCX] == 0xFFFF0FF0);
    h.state.gpr[RAX] = 0x4001; // BS and B0 are writable
    CHECK(h.run_to_vector({0x0F, 0x23, 0xF0, 0x0F, 0x21, 0xF1}) == -1);
    CHECK(h.state.gpr[RCX] == 0xFFFF4FF1);
}

TEST_CASE("The vCPU counts the external interrupts it takes")
{
    // One interrupt at vector 5, pending until acknowledged.
    struct OneInterrupt : InterruptSource {
        bool pending = true;
        bool interrupt_pending() override { return pending; }
        u8 acknowledge_interrupt() override
        {
            pending = false;
            return 5;
        }
    };
    CpuHarness h;
    OneInterrupt pic;
    h.cpu.set_interrupt_source(&pic);
    h.enter_long64_with_vector_stubs();
    h.state.rflags &= ~rf::IF;
    CHECK(h.run_to_vector({0x90}) == -1); // masked: nop, then the final HLT
    CHECK(h.cpu.external_interrupts() == 0);
    CHECK(h.run_to_vector({0xFB, 0x90}) == 5); // sti; nop: taken after the shadow
    CHECK(h.cpu.external_interrupts() == 1);
}
