// CPU stores mark pages in the dirty log (mmu/physical_memory.h), on the
// interpreter's TLB fast path and in translated code alike, even when the
// TLB held a write entry for the page from before the log was started or
// last collected.
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

namespace {

constexpr u64 DATA = 0x30000;

// A loop of 40 stores to [rsi]: "mov [rsi], rax; dec ecx; jnz top; hlt".
void run_store_loop(CpuHarness& h)
{
    static const std::vector<u8> code = {0x48, 0x89, 0x06, 0xFF, 0xC9, 0x75, 0xF9, 0xF4};
    h.mem.write_bytes(CpuHarness::CODE, code.data(), code.size());
    h.state.rip = CpuHarness::CODE;
    h.state.events.halted = false; // woken from the previous round's HLT
    h.state.gpr[RCX] = 40;
    h.state.gpr[RSI] = DATA;
    h.state.gpr[RAX] = 0x5A5A;
    REQUIRE(h.cpu.run(100000) == RunExit::Halted);
}

bool dirty(const CpuHarness& h, const PhysicalMemory::DirtyBitmap& bits, GuestPhys page)
{
    return PhysicalMemory::test_bit(bits, h.mem.ram_page_index(page));
}

void check_stores_are_logged(bool jit)
{
    CpuHarness h;
    h.cpu.set_jit_enabled(jit);
    h.cpu.set_jit_threshold(1); // translated on its first run
    h.enter_long64();
    // Before logging: the TLB gets a write entry for DATA, and with the JIT
    // on the loop gets translated.
    run_store_loop(h);

    h.mem.start_dirty_log();
    run_store_loop(h);
    PhysicalMemory::DirtyBitmap bits;
    h.mem.collect_dirty(bits);
    CHECK(dirty(h, bits, DATA));
    CHECK_FALSE(dirty(h, bits, DATA + PAGE_SIZE));
    CHECK_FALSE(dirty(h, bits, CpuHarness::CODE + PAGE_SIZE));

    // The collection cleaned the page: the next round's stores mark it again.
    run_store_loop(h);
    h.mem.collect_dirty(bits);
    CHECK(dirty(h, bits, DATA));
    h.mem.collect_dirty(bits);
    CHECK_FALSE(dirty(h, bits, DATA));
}

} // namespace

TEST_CASE("interpreted stores mark their page dirty in every round of the dirty log")
{
    check_stores_are_logged(false);
}

TEST_CASE("translated stores mark their page dirty in every round of the dirty log")
{
    check_stores_are_logged(true);
}
