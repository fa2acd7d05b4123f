// A tiny machine for CPU unit tests: RAM, buses and one Cpu, with helpers to
// place code and start it in real, 32-bit protected or 64-bit long mode.
#pragma once

#include "cpu/core/cpu.h"

#include <cstring>
#include <initializer_list>
#include <vector>

struct CpuHarness {
    static constexpr u64 RAM = 4 * 1024 * 1024;
    static constexpr u64 CODE = 0x10000;
    static constexpr u64 GDT = 0x1000;
    static constexpr u64 PML4 = 0x20000;
    static constexpr u64 STACK_TOP = 0x80000;

    PhysicalMemory mem{RAM};
    PortBus ports;
    MsrBus msrs;
    CpuidModel cpuid;
    CpuState state;
    Cpu cpu{state, mem, ports, msrs, cpuid, 0};

    // The Intel model unless a test names another (host comparisons take
    // the host's vendor, tests/host_cpu.h).
    explicit CpuHarness(CpuVendor vendor = CpuVendor::Intel) : cpuid(1, vendor) { cpu.reset(); }

    void put(u64 addr, std::initializer_list<u8> bytes)
    {
        std::vector<u8> v(bytes);
        mem.write_bytes(addr, v.data(), v.size());
    }
    void put64(u64 addr, u64 value) { mem.write_bytes(addr, &value, 8); }
    u64 get64(u64 addr)
    {
        u64 v = 0;
        mem.read_bytes(addr, &v, 8);
        return v;
    }

    // Flat 32-bit protected mode, paging off, code at CODE.
    void enter_protected32()
    {
        put64(GDT + 8, 0x00CF9B000000FFFFull);  // 0x08: code 32-bit
        put64(GDT + 16, 0x00CF93000000FFFFull); // 0x10: data
        state.gdtr = {GDT, 0x2F};
        state.cr0 |= cr::CR0_PE;
        load_flat(0x08, 0x00CF9B000000FFFFull, 0x10, 0x00CF93000000FFFFull);
        state.rip = CODE;
        state.gpr[RSP] = STACK_TOP;
    }

    // 64-bit long mode with the first 1 GiB identity-mapped by a 1 GiB page.
    void enter_long64()
    {
        put64(GDT + 8, 0x00AF9B000000FFFFull);  // 0x08: code 64-bit
        put64(GDT + 16, 0x00CF93000000FFFFull); // 0x10: data
        state.gdtr = {GDT, 0x2F};
        put64(PML4, (PML4 + 0x1000) | 0x7);
        put64(PML4 + 0x1000, 0x0 | 0x87); // 1 GiB page, user, writable
        state.cr3 = PML4;
        state.cr4 = cr::CR4_PAE;
        state.msr.efer = cr::EFER_LME | cr::EFER_LMA | cr::EFER_SCE | cr::EFER_NXE;
        state.cr0 |= cr::CR0_PE | cr::CR0_PG;
        load_flat(0x08, 0x00AF9B000000FFFFull, 0x10, 0x00CF93000000FFFFull);
        state.rip = CODE;
        state.gpr[RSP] = STACK_TOP;
    }

    // Long mode with an IDT whose 32 exception vectors each lead to a HLT
    // of their own, so run_to_vector() can tell which exception was raised.
    static constexpr u64 VECTOR_IDT = 0x40000, VECTOR_STUBS = 0x41000;
    void enter_long64_with_vector_stubs()
    {
        enter_long64();
        for (u64 v = 0; v < 32; ++v) {
            const u64 target = VECTOR_STUBS + v * 16;
            put64(VECTOR_IDT + v * 16, (target & 0xFFFF) | (0x08ull << 16) | (0x8Eull << 40) |
                                           ((target >> 16) & 0xFFFF) << 48);
            put64(VECTOR_IDT + v * 16 + 8, target >> 32);
            put(target, {0xF4});
        }
        state.idtr = {VECTOR_IDT, 32 * 16 - 1};
    }

    // The same at CPL 3 with alignment checking on (CR0.AM, EFLAGS.AC). The
    // final HLT raises #GP there.
    void enter_user64_with_alignment_checks()
    {
        enter_long64_with_vector_stubs();
        enter_cpl3();
        state.cr0 |= cr::CR0_AM;
        state.rflags |= rf::AC;
    }
    // From long mode with the vector stubs: CPL 3 in 64-bit code, with a TSS
    // whose RSP0 takes exceptions back to the stubs. The trailing HLT faults
    // at CPL 3 too, so a test tells from the state whether the code ran.
    void enter_cpl3()
    {
        const u64 tss = 0x5000;
        put64(tss + 4, 0x70000); // RSP0
        state.tr.base = tss;
        state.tr.limit = 0x67;
        state.tr.attr = 0x8B;
        put64(GDT + 24, 0x00AFFB000000FFFFull);
        put64(GDT + 32, 0x00CFF3000000FFFFull);
        state.gdtr.limit = 0x3F;
        cpu.set_segment_from_descriptor(state.seg[CS], 0x1B, 0x00AFFB000000FFFFull);
        cpu.set_segment_from_descriptor(state.seg[SS], 0x23, 0x00CFF3000000FFFFull);
    }

    // Runs code at CODE and returns the exception vector it raised, -1 when
    // it reached its final HLT, 99 when it stopped anywhere else.
    int run_to_vector(std::initializer_list<u8> code)
    {
        state.rip = CODE;
        state.events.halted = false;
        run_code(code);
        if (state.rip >= VECTOR_STUBS && state.rip < VECTOR_STUBS + 32 * 16)
            return static_cast<int>((state.rip - VECTOR_STUBS) / 16);
        return state.rip == CODE + code.size() + 1 ? -1 : 99;
    }

    void load_flat(u16 cs, u64 cs_desc, u16 ds, u64 ds_desc)
    {
        cpu.set_segment_from_descriptor(state.seg[CS], cs, cs_desc);
        for (unsigned s : {DS, ES, SS, FS, GS})
            cpu.set_segment_from_descriptor(state.seg[s], ds, ds_desc);
    }

    // Places code at CODE followed by HLT and runs until the CPU halts.
    RunExit run_code(std::initializer_list<u8> code, u64 budget = 100000)
    {
        std::vector<u8> v(code);
        v.push_back(0xF4);
        mem.write_bytes(CODE, v.data(), v.size());
        return cpu.run(budget);
    }
};
