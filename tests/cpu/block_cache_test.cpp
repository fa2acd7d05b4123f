// The block cache: decoded blocks are reused until the code they came from
// changes, including the one kind of block that depends on two pages, an
// instruction straddling a page boundary.
#include "cpu/jit/perf_map.h"
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

TEST_CASE("a DMA write into a code page invalidates the cached block")
{
    CpuHarness h;
    h.enter_long64();
    // mov eax, 1 ; hlt
    CHECK(h.run_code({0xB8, 1, 0, 0, 0}) == RunExit::Halted);
    CHECK(h.state.gpr[RAX] == 1);
    CHECK(h.mem.is_code(CpuHarness::CODE));
    // Overwrite the immediate the way a device or loader would, then rerun.
    const u8 two = 2;
    h.mem.write_bytes(CpuHarness::CODE + 1, &two, 1);
    CHECK(!h.mem.is_code(CpuHarness::CODE));
    h.state.rip = CpuHarness::CODE;
    h.state.events.halted = false;
    CHECK(h.cpu.run(100) == RunExit::Halted);
    CHECK(h.state.gpr[RAX] == 2);
}

TEST_CASE("the block cache drops only the blocks of the written page")
{
    BlockCache cache;
    auto a = std::make_unique<Block>();
    a->phys = 0x1000;
    auto b = std::make_unique<Block>();
    b->phys = 0x2010;
    cache.insert(std::move(a));
    cache.insert(std::move(b));
    const u64 gen = cache.generation();
    cache.invalidate_page(0x1000);
    CHECK(cache.find(0x1000, 4) == nullptr);
    CHECK(cache.find(0x2010, 4) != nullptr);
    CHECK(cache.generation() != gen);
}

TEST_CASE("a store into the running block takes effect on the next instruction")
{
    CpuHarness h;
    h.enter_protected32();
    // mov byte [CODE+12], 0x90 ; nop ; nop ; nop ; nop ; nop ; ud2 → the UD2's first byte becomes NOP
    // c6 05 <addr32> 90 : 7 bytes + 4 = 11 bytes, then at +11: nop, +12: ud2 (0f 0b)
    const u32 target = CpuHarness::CODE + 12;
    h.put(CpuHarness::CODE, {0xC6, 0x05, u8(target), u8(target >> 8), u8(target >> 16),
                             u8(target >> 24), 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x0F, 0x0B});
    // After patching: ... 0x90 (was 0x0f), 0x0b = "or ecx, [ebx]"-style garbage? Use a HLT pair.
    h.put(CpuHarness::CODE + 13, {0xF4});
    // Patch turns byte 12 (0x0F) into 0x90: nop ; hlt
    CHECK(h.cpu.run(100) == RunExit::Halted);
    CHECK(h.state.rip == CpuHarness::CODE + 14);
}

namespace {

// Long mode with 4 KiB pages for the code under test: linear 0x400000 and
// 0x401000 map to frames the test chooses (through global PTEs when asked,
// with CR4.PGE on); the first 4 MiB stay identity-mapped (2 MiB pages) for
// the harness's GDT, stack and page tables.
struct PagedCode : CpuHarness {
    static constexpr u64 PDPT = 0x21000, PD = 0x22000, PT = 0x23000;
    static constexpr u64 FIRST = 0x400000, SECOND = 0x401000;
    static constexpr u64 FRAME_A = 0x200000, FRAME_B = 0x201000, FRAME_C = 0x202000;

    PagedCode(bool jit, bool global) : global(global)
    {
        enter_long64();
        state.cr4 |= cr::CR4_PGE;
        cpu.set_jit_enabled(jit);
        put64(PML4, PDPT | 0x7);
        put64(PDPT, PD | 0x7);
        put64(PD + 0, 0x000000 | 0x87);
        put64(PD + 8, 0x200000 | 0x87);
        put64(PD + 16, PT | 0x7);
        map(FIRST, FRAME_A);
        map(SECOND, FRAME_B);
    }
    // Runs the loop under test `count` times (ECX) from `rip` to its HLT;
    // returns EDX, which the loop adds to.
    u32 run_loop_from(u64 rip, u32 count)
    {
        state.rip = rip;
        state.events.halted = false;
        state.gpr[RCX] = count;
        state.gpr[RDX] = 0;
        REQUIRE(cpu.run(100000) == RunExit::Halted);
        return static_cast<u32>(state.gpr[RDX]);
    }
    void map(u64 linear, u64 frame)
    {
        put64(PT + ((linear >> 12) & 0x1FF) * 8, frame | 0x7 | (global ? 0x100 : 0));
    }
    bool global;
};

// An instruction straddling FIRST and SECOND.
struct TwoPageCode : PagedCode {
    explicit TwoPageCode(bool jit) : PagedCode(jit, false)
    {
        // mov eax, imm32 at 0x400FFE: B8 and one byte of the immediate on the
        // first page, three on the second; then add edx, eax; dec ecx;
        // jnz back to the MOV; hlt.
        put(FRAME_A + 0xFFE, {0xB8, 0x11});
        put(FRAME_B, {0x22, 0x33, 0x44, 0x01, 0xC2, 0xFF, 0xC9, 0x75, 0xF5, 0xF4});
        state.rip = FIRST + 0xFFE;
    }
    // Runs the loop `count` times from the MOV and returns EDX (the sum).
    u32 run_loop(u32 count) { return run_loop_from(FIRST + 0xFFE, count); }
};

} // namespace

TEST_CASE("An instruction that straddles two pages is decoded once, not on every run")
{
    for (bool jit : {false, true}) {
        CAPTURE(jit);
        TwoPageCode h(jit);
        CHECK(h.run_loop(1000) == 1000u * 0x44332211u);
        // The MOV's block and the loop body's block, and the HLT after it:
        // a handful of decodes, not one per iteration.
        CHECK(h.cpu.blocks_decoded() < 10);
    }
}

TEST_CASE("A straddling instruction follows a new mapping of its second page")
{
    for (bool jit : {false, true}) {
        CAPTURE(jit);
        TwoPageCode h(jit);
        CHECK(h.run_loop(100) == 100u * 0x44332211u);
        // The same code on another frame with another immediate; the MOV's
        // first page is unchanged. After INVLPG-equivalent flushing (a CR3
        // reload), the MOV must read its immediate from the new frame.
        h.put(TwoPageCode::FRAME_C, {0x66, 0x55, 0x00, 0x01, 0xC2, 0xFF, 0xC9, 0x75, 0xF5, 0xF4});
        h.map(TwoPageCode::SECOND, TwoPageCode::FRAME_C);
        h.cpu.flush_tlb(true);
        CHECK(h.run_loop(100) == 100u * 0x00556611u);
        // And back.
        h.map(TwoPageCode::SECOND, TwoPageCode::FRAME_B);
        h.cpu.flush_tlb(true);
        CHECK(h.run_loop(100) == 100u * 0x44332211u);
    }
}

TEST_CASE("A store to the second page of a straddling instruction changes what it does")
{
    for (bool jit : {false, true}) {
        CAPTURE(jit);
        TwoPageCode h(jit);
        CHECK(h.run_loop(100) == 100u * 0x44332211u);
        // The guest rewrites the top byte of the immediate through its own
        // mapping of the second page (mov byte [0x401001], 0x77; then jumps
        // back to the loop), as self-modifying code would.
        h.put(0x30000, {0xC6, 0x04, 0x25, 0x01, 0x10, 0x40, 0x00, 0x77, 0xF4});
        h.state.rip = 0x30000;
        h.state.events.halted = false;
        REQUIRE(h.cpu.run(100) == RunExit::Halted);
        CHECK(h.run_loop(100) == 100u * 0x44772211u);
    }
}

namespace {

// Chained successors across changes of the code's mapping: the block at
// FIRST jumps to the block at SECOND, which adds its page's constant to EDX
// and loops back. SECOND maps FRAME_B (adds 1) or FRAME_C (adds 0x100),
// through a global PTE or not; CR4.PGE is on.
struct ChainedRemap : PagedCode {
    ChainedRemap(bool jit, bool global) : PagedCode(jit, global)
    {
        cpu.set_jit_threshold(1);
        // FIRST: jmp SECOND (E9 rel32 = 0x1000 - 5).
        put(FRAME_A, {0xE9, 0xFB, 0x0F, 0x00, 0x00});
        // SECOND: add edx, imm32; dec ecx; jnz FIRST; hlt.
        put(FRAME_B, {0x81, 0xC2, 0x01, 0x00, 0x00, 0x00, 0xFF, 0xC9, 0x0F, 0x85, 0xF2, 0xEF, 0xFF, 0xFF, 0xF4});
        put(FRAME_C, {0x81, 0xC2, 0x00, 0x01, 0x00, 0x00, 0xFF, 0xC9, 0x0F, 0x85, 0xF2, 0xEF, 0xFF, 0xFF, 0xF4});
        cpu.flush_tlb(true);
    }
    // Runs the loop `count` times; returns EDX (the sum of the constants).
    u32 run_loop(u32 count) { return run_loop_from(FIRST, count); }
    // The block lookups of one more run of the loop.
    u64 lookups_of_a_run()
    {
        const u64 before = cpu.block_lookups();
        REQUIRE(run_loop(50) != 0);
        return cpu.block_lookups() - before;
    }
};

} // namespace

TEST_CASE("A chained jump follows its target's new mapping after a CR3 write, INVLPG or a global flush")
{
    for (bool jit : {false, true})
        for (bool global : {false, true}) {
            CAPTURE(jit);
            CAPTURE(global);
            ChainedRemap h(jit, global);
            CHECK(h.run_loop(100) == 100u);
            // INVLPG of the target's page drops any link into it.
            h.map(ChainedRemap::SECOND, ChainedRemap::FRAME_C);
            h.cpu.invalidate_page(ChainedRemap::SECOND);
            CHECK(h.run_loop(100) == 0x100u * 100);
            // A flush of everything, global entries too (CR4.PGE toggled).
            h.map(ChainedRemap::SECOND, ChainedRemap::FRAME_B);
            h.cpu.flush_tlb(true);
            CHECK(h.run_loop(100) == 100u);
            if (!global) {
                // A CR3 write drops non-global translations and the links to them.
                h.map(ChainedRemap::SECOND, ChainedRemap::FRAME_C);
                h.cpu.flush_tlb(false);
                CHECK(h.run_loop(100) == 0x100u * 100);
            }
        }
}

TEST_CASE("Chains into global pages survive CR3 writes and INVLPG elsewhere; others are looked up again")
{
    for (bool jit : {false, true})
        for (bool global : {false, true}) {
            CAPTURE(jit);
            CAPTURE(global);
            ChainedRemap h(jit, global);
            h.run_loop(100);
            const u64 warm = h.lookups_of_a_run(); // the first block of the run, no more
            h.cpu.flush_tlb(false);
            const u64 after_cr3 = h.lookups_of_a_run();
            h.cpu.invalidate_page(0x100000); // another 2 MiB region
            const u64 after_invlpg = h.lookups_of_a_run();
            if (global) {
                CHECK(after_cr3 == warm);
                CHECK(after_invlpg == warm);
            } else {
                CHECK(after_cr3 > warm);
                CHECK(after_invlpg > warm);
            }
        }
}

namespace {

// A device that counts its reads (and answers 0).
struct CountingDevice final : IoDevice {
    u64 reads = 0;
    u64 io_read(u64, unsigned) override { return ++reads, 0; }
    void io_write(u64, unsigned, u64) override {}
};

// The loop of ChainedRemap with a CMPXCHG (which translated code runs
// through its handler) on memory at `data` in the block at SECOND.
struct HandlerInLoop : ChainedRemap {
    HandlerInLoop(bool jit, u32 data) : ChainedRemap(jit, false)
    {
        // mov esi, data; cmpxchg [rsi], ecx; add edx, 1; dec ecx; jnz FIRST; hlt.
        put(FRAME_B, {0xBE, u8(data), u8(data >> 8), u8(data >> 16), u8(data >> 24), 0x0F, 0xB1, 0x0E,
                      0x81, 0xC2, 0x01, 0x00, 0x00, 0x00, 0xFF, 0xC9, 0x0F, 0x85, 0xEA, 0xEF, 0xFF, 0xFF, 0xF4});
        cpu.flush_tlb(true);
    }
};

} // namespace

TEST_CASE("Translated blocks chain past a handler that reaches no device, and stop after one that does")
{
    // Entries into translated code from the run loop in one run of the loop.
    auto entries_of_a_run = [](HandlerInLoop& h) {
        const u64 before = h.cpu.native_entries();
        h.run_loop(100);
        return h.cpu.native_entries() - before;
    };
    // RAM: after the first runs the loop's blocks go from one to the next
    // in translated code.
    HandlerInLoop ram(true, 0x300000);
    ram.run_loop(100);
    CHECK(entries_of_a_run(ram) <= 2);
    CHECK(ram.run_loop(100) == 100u);
    // MMIO: every read may have changed what the run loop checks (a device
    // can raise an interrupt), so each iteration goes back to it.
    HandlerInLoop mmio(true, 0x402000);
    mmio.map(0x402000, 0xFEB00000);
    CountingDevice device;
    mmio.mem.map_mmio(0xFEB00000, 0x1000, &device);
    mmio.run_loop(100);
    CHECK(entries_of_a_run(mmio) >= 100);
    CHECK(device.reads >= 200);
}

namespace {

// Three calls in a row to a function at SECOND that adds its page's
// constant to EDX: its RET goes back to three places, more than a block's
// two links remember.
struct ThreeCallers : PagedCode {
    ThreeCallers(bool jit) : PagedCode(jit, false)
    {
        cpu.set_jit_threshold(1);
        // FIRST: call SECOND (three times); dec ecx; jnz FIRST; hlt.
        put(FRAME_A, {0xE8, 0xFB, 0x0F, 0x00, 0x00, 0xE8, 0xF6, 0x0F, 0x00, 0x00, 0xE8, 0xF1, 0x0F, 0x00, 0x00,
                      0xFF, 0xC9, 0x75, 0xED, 0xF4});
        // SECOND: add edx, 1; ret. FRAME_C: add edx, 0x100; ret.
        put(FRAME_B, {0x81, 0xC2, 0x01, 0x00, 0x00, 0x00, 0xC3});
        put(FRAME_C, {0x81, 0xC2, 0x00, 0x01, 0x00, 0x00, 0xC3});
        cpu.flush_tlb(true);
    }
    u32 run_loop(u32 count) { return run_loop_from(FIRST, count); }
};

} // namespace

TEST_CASE("Returns to more places than a block links are found in the jump cache, which follows remaps")
{
    for (bool jit : {false, true}) {
        CAPTURE(jit);
        ThreeCallers h(jit);
        CHECK(h.run_loop(50) == 150u);
        const u64 before = h.cpu.block_lookups();
        CHECK(h.run_loop(50) == 150u);
        CHECK(h.cpu.block_lookups() - before <= 3); // without the cache: 151, one a return
        // The function's page remapped: a CR3 write and an INVLPG each
        // make every cached block be looked up again.
        h.map(PagedCode::SECOND, PagedCode::FRAME_C);
        h.cpu.flush_tlb(false);
        CHECK(h.run_loop(50) == 0x100u * 150);
        h.map(PagedCode::SECOND, PagedCode::FRAME_B);
        h.cpu.invalidate_page(PagedCode::SECOND);
        CHECK(h.run_loop(50) == 150u);
    }
}

TEST_CASE("With a perf map, the code arena starts over at addresses never used before")
{
    CodeArena arena(1 << 20);
    REQUIRE(arena.usable());
    const u8* first = arena.cursor();
    arena.commit(4096);
    arena.reset_at_new_addresses();
    u8* second = arena.cursor();
    CHECK((second < first || second >= first + (1 << 20)));
    second[0] = 0xC3; // the new mapping takes code
    arena.commit(16);
    arena.reset();
    CHECK(arena.cursor() == second); // without a map it starts over in place

    BlockCache cache;
    const u8* before = cache.code_arena().cursor();
    cache.drop_translations();
    CHECK(cache.code_arena().cursor() == before);
    PerfMap map("/dev/null");
    cache.set_perf_map(&map);
    cache.drop_translations();
    CHECK(cache.code_arena().cursor() != before);
}
