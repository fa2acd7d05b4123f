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
