// RAM above 4 GiB (mmu/pc_memory_map.h), the checked DMA accessor
// (mmu/guest_memory.h) and the dirty-page log (mmu/physical_memory.h).
#include "mmu/guest_memory.h"

#include <doctest/doctest.h>

#include <array>
#include <fstream>
#include <vector>

namespace {

constexpr u64 GIB = 1ull << 30;
constexpr u64 FOUR_GIB = 4 * GIB;

// Resident set of this process in bytes (/proc/self/statm, field 2, pages).
u64 resident_bytes()
{
    std::ifstream statm("/proc/self/statm");
    u64 size = 0, resident = 0;
    statm >> size >> resident;
    return resident * PAGE_SIZE;
}

} // namespace

TEST_CASE("a machine under 3.5 GiB keeps all its RAM below 4 GiB")
{
    PhysicalMemory mem(3 * GIB + 256 * (1ull << 20));
    REQUIRE(mem.ram_ranges().size() == 1);
    CHECK(mem.ram_ranges()[0].base == 0);
    CHECK(mem.ram_ranges()[0].size == 0xD0000000);
    CHECK(mem.ram_page(0xCFFFF000) != nullptr);
    CHECK(mem.ram_page(0xD0000000) == nullptr);
    CHECK(mem.ram_page(FOUR_GIB) == nullptr);
}

TEST_CASE("RAM past 3 GiB of an 8 GiB machine continues at 4 GiB, with the PCI hole between")
{
    PhysicalMemory mem(8 * GIB);
    REQUIRE(mem.ram_ranges().size() == 2);
    CHECK(mem.ram_ranges()[0].base == 0);
    CHECK(mem.ram_ranges()[0].size == 3 * GIB);
    CHECK(mem.ram_ranges()[1].base == FOUR_GIB);
    CHECK(mem.ram_ranges()[1].size == 5 * GIB);
    CHECK(mem.ram_size() == 8 * GIB);
    // Each range is one host mapping, page-aligned (KVM memory slots).
    for (const PhysicalMemory::RamRange& r : mem.ram_ranges())
        CHECK(reinterpret_cast<uintptr_t>(r.host) % PAGE_SIZE == 0);
    CHECK(mem.ram_page(FOUR_GIB + 0x1234) == mem.ram_ranges()[1].host + 0x1000);

    mem.write(FOUR_GIB + 8, 8, 0x1122334455667788ull);
    CHECK(mem.read(FOUR_GIB + 8, 8) == 0x1122334455667788ull);
    mem.write(9 * GIB - 8, 8, 42);
    CHECK(mem.read(9 * GIB - 8, 8) == 42);
    // The hole and what lies past the end read as all ones and drop writes.
    mem.write(3 * GIB, 4, 7);
    CHECK(mem.read(3 * GIB, 4) == 0xFFFFFFFF);
    CHECK(mem.ram_page(3 * GIB) == nullptr);
    CHECK(mem.ram_page(9 * GIB) == nullptr);
    CHECK(mem.read(9 * GIB, 8) == ~0ull);
    // A store straddling the end of low RAM keeps its bytes below the hole.
    mem.write(3 * GIB - 2, 4, 0xAABBCCDD);
    CHECK(mem.read(3 * GIB - 2, 2) == 0xCCDD);
    // Low and high pages do not alias in the backing.
    mem.write(0x100000, 8, 1);
    CHECK(mem.read(FOUR_GIB + 0x100000, 8) == 0);
}

TEST_CASE("a 64 GiB machine reserves its RAM without committing host memory")
{
    const u64 before = resident_bytes();
    PhysicalMemory mem(64 * GIB);
    CHECK(mem.ram_size() == 64 * GIB);
    CHECK(mem.ram_ranges()[1].size == 61 * GIB);
    mem.write(FOUR_GIB + 61 * GIB - 8, 8, 5);
    CHECK(mem.read(FOUR_GIB + 61 * GIB - 8, 8) == 5);
    // Two bitmaps of 2 MiB (code pages, dirty log) and a touched page or two.
    CHECK(resident_bytes() - before < 64ull << 20);
}

TEST_CASE("DMA copies into and out of RAM above 4 GiB")
{
    PhysicalMemory mem(8 * GIB);
    GuestMemory dma(mem);
    const std::array<u8, 5> data = {1, 2, 3, 4, 5};
    REQUIRE(dma.write(FOUR_GIB + 0xFFE, data));
    std::array<u8, 5> back{};
    REQUIRE(dma.read(FOUR_GIB + 0xFFE, back));
    CHECK(back == data);
}

TEST_CASE("DMA that runs past the end of RAM, into a hole or across ranges is refused whole")
{
    PhysicalMemory mem(8 * GIB);
    GuestMemory dma(mem);
    std::vector<u8> ones(0x2000, 0x11);
    const auto untouched = [&](GuestPhys addr, u64 len) {
        std::vector<u8> bytes(len, 0xEE);
        REQUIRE(mem.read_bytes(addr, bytes.data(), len));
        for (u8 b : bytes)
            if (b != 0)
                return false;
        return true;
    };
    // The last page of low RAM and on into the PCI hole.
    CHECK_FALSE(dma.write(3 * GIB - 0x1000, ones));
    CHECK(untouched(3 * GIB - 0x1000, 0x1000));
    // The last page of high RAM and past the end.
    CHECK_FALSE(dma.write(9 * GIB - 0x1000, ones));
    CHECK(untouched(9 * GIB - 0x1000, 0x1000));
    // Entirely in the hole, entirely past the end, from the legacy area.
    CHECK_FALSE(dma.write(0xE0000000, std::span(ones).first(16)));
    CHECK_FALSE(dma.write(9 * GIB, std::span(ones).first(16)));
    CHECK_FALSE(dma.write(0x9F000, ones));
    CHECK(untouched(0x9F000, 0x1000));
    // From low RAM across the whole hole into high RAM: never adjacent.
    // (The source: untouched high RAM, so the test commits no host memory.)
    CHECK_FALSE(dma.write(3 * GIB - 0x1000, mem.ram_ranges()[1].host + GIB, GIB + 0x2000));
    CHECK(untouched(3 * GIB - 0x1000, 0x1000));
    CHECK(untouched(FOUR_GIB, 0x1000));
    // An address near the top of the 64-bit space does not wrap to 0.
    CHECK_FALSE(dma.write(~0ull - 4, std::span(ones).first(16)));
    CHECK(untouched(0, 0x1000));
    std::vector<u8> out(16, 0x33);
    CHECK_FALSE(dma.read(9 * GIB - 8, out));
    CHECK(out == std::vector<u8>(16, 0x33));
}

TEST_CASE("a DMA write invalidates code decoded from the pages it touches")
{
    PhysicalMemory mem(8 * GIB);
    std::vector<GuestPhys> invalidated;
    mem.set_code_write_listener([&](GuestPhys page) { invalidated.push_back(page); });
    mem.mark_code(FOUR_GIB + 0x3000);
    CHECK(mem.is_code(FOUR_GIB + 0x3000));
    const std::array<u8, 2> bytes = {0x90, 0x90};
    REQUIRE(GuestMemory(mem).write(FOUR_GIB + 0x3FFF, bytes));
    CHECK(invalidated == std::vector<GuestPhys>{FOUR_GIB + 0x3000});
    CHECK_FALSE(mem.is_code(FOUR_GIB + 0x3000));
}

TEST_CASE("the dirty log records the pages DMA and physical writes touch, per round")
{
    PhysicalMemory mem(8 * GIB);
    GuestMemory dma(mem);
    const std::array<u8, 4> bytes = {1, 2, 3, 4};
    REQUIRE(dma.write(0x200000, bytes)); // before logging: not recorded
    mem.start_dirty_log();
    REQUIRE(dma.write(0x300FFE, bytes)); // two pages
    REQUIRE(dma.write(FOUR_GIB + 0x5000, bytes));
    mem.write(0x7000, 1, 9);
    PhysicalMemory::DirtyBitmap dirty;
    mem.collect_dirty(dirty);
    std::vector<GuestPhys> pages;
    for (const PhysicalMemory::RamRange& r : mem.ram_ranges())
        for (GuestPhys p = r.base; p < r.base + r.size; p += PAGE_SIZE)
            if (PhysicalMemory::test_bit(dirty, mem.ram_page_index(p)))
                pages.push_back(p);
    CHECK(pages == std::vector<GuestPhys>{0x7000, 0x300000, 0x301000, FOUR_GIB + 0x5000});
    // Collecting cleans: the next round starts empty.
    mem.collect_dirty(dirty);
    for (u64 word : dirty)
        CHECK(word == 0);
    // A refused DMA marks nothing; after stop nothing is recorded.
    std::vector<u8> big(0x2000);
    CHECK_FALSE(dma.write(3 * GIB - 0x1000, big));
    mem.stop_dirty_log();
    REQUIRE(dma.write(0x9000, bytes));
    mem.collect_dirty(dirty);
    for (u64 word : dirty)
        CHECK(word == 0);
}

TEST_CASE("clean pages do not allow cached writes while the log is on")
{
    PhysicalMemory mem(8 * GIB);
    const u64 barrier = mem.write_barrier();
    CHECK(mem.may_cache_writes(FOUR_GIB));
    mem.start_dirty_log();
    CHECK(mem.write_barrier() != barrier);
    CHECK_FALSE(mem.may_cache_writes(FOUR_GIB));
    mem.write(FOUR_GIB, 1, 1);
    CHECK(mem.may_cache_writes(FOUR_GIB));
    const u64 before_collect = mem.write_barrier();
    PhysicalMemory::DirtyBitmap dirty;
    mem.collect_dirty(dirty);
    CHECK(mem.write_barrier() != before_collect);
    CHECK_FALSE(mem.may_cache_writes(FOUR_GIB));
    mem.stop_dirty_log();
    CHECK(mem.may_cache_writes(FOUR_GIB));
}
