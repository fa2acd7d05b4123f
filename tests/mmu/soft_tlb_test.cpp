#include "mmu/soft_tlb.h"

#include <doctest/doctest.h>

namespace {

// Fills the slot for vaddr the way the CPU does after a successful walk.
SoftTlb::Entry& fill(SoftTlb& tlb, bool user, GuestVirt vaddr, u64 page_size = PAGE_SIZE,
                     bool global = false)
{
    u64 tag = vaddr >> 12;
    SoftTlb::Entry& e = tlb.begin_fill(tlb.slot(user, vaddr), tag, 0x1000'0000 + (vaddr & PAGE_MASK & (page_size - 1)),
                                       page_size);
    e.read_tag = tag;
    e.write_tag = tag;
    e.exec_tag = tag;
    e.phys_page = 0x1000'0000 + (vaddr & PAGE_MASK & (page_size - 1));
    e.global = global;
    return e;
}

bool hits(SoftTlb& tlb, bool user, GuestVirt vaddr)
{
    const SoftTlb::Entry& e = tlb.slot(user, vaddr);
    u64 tag = vaddr >> 12;
    return e.read_tag == tag || e.write_tag == tag || e.exec_tag == tag;
}

} // namespace

TEST_CASE("A fresh TLB misses everywhere")
{
    SoftTlb tlb;
    CHECK_FALSE(hits(tlb, false, 0));
    CHECK_FALSE(hits(tlb, true, 0x7fff'ffff'f000));
    CHECK(tlb.slot(false, 0).page_size == PAGE_SIZE);
}

TEST_CASE("User and supervisor halves hold the same page independently")
{
    SoftTlb tlb;
    fill(tlb, true, 0x40'0000);
    CHECK(hits(tlb, true, 0x40'0000));
    CHECK_FALSE(hits(tlb, false, 0x40'0000));
    // Another page in the same slot index replaces, not aliases.
    CHECK_FALSE(hits(tlb, true, 0x40'0000 + SoftTlb::ENTRIES * PAGE_SIZE));
}

TEST_CASE("flush_all drops every entry, global ones too")
{
    SoftTlb tlb;
    fill(tlb, false, 0xffff'8000'0000'0000, PAGE_SIZE, true);
    fill(tlb, true, 0x1000);
    tlb.flush_all();
    CHECK_FALSE(hits(tlb, false, 0xffff'8000'0000'0000));
    CHECK_FALSE(hits(tlb, true, 0x1000));
    CHECK(tlb.slot(false, 0xffff'8000'0000'0000).host_page == nullptr);
    CHECK_FALSE(tlb.slot(false, 0xffff'8000'0000'0000).global);
}

TEST_CASE("flush_non_global keeps global entries and drops the rest")
{
    SoftTlb tlb;
    fill(tlb, false, 0xffff'8000'0000'0000, PAGE_SIZE, true);
    fill(tlb, false, 0xffff'8000'0000'1000);
    fill(tlb, true, 0x40'2000, PAGE_SIZE, true);
    fill(tlb, true, 0x40'3000);
    tlb.flush_non_global();
    CHECK(hits(tlb, false, 0xffff'8000'0000'0000));
    CHECK_FALSE(hits(tlb, false, 0xffff'8000'0000'1000));
    CHECK(hits(tlb, true, 0x40'2000));
    CHECK_FALSE(hits(tlb, true, 0x40'3000));
}

TEST_CASE("flush_page drops that page in both halves, global or not, and nothing else")
{
    SoftTlb tlb;
    fill(tlb, false, 0x40'5000, PAGE_SIZE, true);
    fill(tlb, true, 0x40'5000);
    fill(tlb, true, 0x40'6000);
    fill(tlb, false, 0x40'4000, PAGE_SIZE, true);
    tlb.flush_page(0x40'5abc);
    CHECK_FALSE(hits(tlb, false, 0x40'5000));
    CHECK_FALSE(hits(tlb, true, 0x40'5000));
    CHECK(hits(tlb, true, 0x40'6000));
    CHECK(hits(tlb, false, 0x40'4000));
}

TEST_CASE("flush_page of a page in another slot alias leaves the slot alone")
{
    SoftTlb tlb;
    fill(tlb, false, 0x40'5000);
    tlb.flush_page(0x40'5000 + SoftTlb::ENTRIES * PAGE_SIZE);
    CHECK(hits(tlb, false, 0x40'5000));
}

TEST_CASE("flush_page drops every 4 KiB piece of a large page that covers the address")
{
    SoftTlb tlb;
    // Three pieces of one 2 MiB page, cached from separate accesses.
    GuestVirt large = 0x7f00'0020'0000;
    fill(tlb, false, large + 0x1000, 2ull << 20);
    fill(tlb, false, large + 0x8'3000, 2ull << 20, true);
    fill(tlb, true, large + 0x1f'f000, 2ull << 20);
    // A 4 KiB page just past it and one of a 1 GiB page elsewhere.
    fill(tlb, false, large + 0x20'0000);
    fill(tlb, false, 0x4000'5000, 1ull << 30);

    tlb.flush_page(large + 0x12'3456); // a piece that was never cached
    CHECK_FALSE(hits(tlb, false, large + 0x1000));
    CHECK_FALSE(hits(tlb, false, large + 0x8'3000));
    CHECK_FALSE(hits(tlb, true, large + 0x1f'f000));
    CHECK(hits(tlb, false, large + 0x20'0000));
    CHECK(hits(tlb, false, 0x4000'5000));

    tlb.flush_page(0x7fff'f000); // inside the 1 GiB page [0x4000'0000, 0x8000'0000)
    CHECK_FALSE(hits(tlb, false, 0x4000'5000));
}

TEST_CASE("flush_page drops entries with only some access tags valid")
{
    SoftTlb tlb;
    SoftTlb::Entry& e = tlb.begin_fill(tlb.slot(false, 0x9000), 0x9, 0x9000);
    e.exec_tag = 0x9; // fetch-only entry, e.g. a code page that must not take writes
    tlb.flush_page(0x9000);
    CHECK(tlb.slot(false, 0x9000).exec_tag == SoftTlb::INVALID);

    SoftTlb::Entry& w = tlb.begin_fill(tlb.slot(true, 0x20'0000), 0x200, 0x20'0000, 2ull << 20);
    w.write_tag = 0x200;
    tlb.flush_page(0x21'0000);
    CHECK(tlb.slot(true, 0x20'0000).write_tag == SoftTlb::INVALID);
}

TEST_CASE("flushes drop the SMAP override entries with the rest")
{
    SoftTlb tlb;
    CHECK(tlb.find_override(0x5000) == nullptr); // nothing ever filled there
    tlb.begin_fill(tlb.override_slot(0x5000), 5, 0x5000).read_tag = 5;
    REQUIRE(tlb.find_override(0x5000) != nullptr);
    CHECK(tlb.find_override(0x5000)->read_tag == 5);
    tlb.flush_non_global();
    CHECK(tlb.find_override(0x5000) == nullptr);
    tlb.begin_fill(tlb.override_slot(0x5000), 5, 0x5000).read_tag = 5;
    tlb.flush_page(0x5000);
    // Emptied, the part is not looked in at all.
    const SoftTlb::Entry* after = tlb.find_override(0x5000);
    CHECK((after == nullptr || after->read_tag == SoftTlb::INVALID));
    tlb.flush_all();
    CHECK(tlb.find_override(0x5000) == nullptr);
}

TEST_CASE("Flushes clear every filled slot, past the fill log's capacity too")
{
    // The fill log holds a few hundred slots; more fills than that make the
    // next flush scan every slot, after which the log serves again.
    for (unsigned fills : {10u, 600u, 6000u}) {
        CAPTURE(fills);
        SoftTlb tlb;
        for (int round = 0; round < 3; ++round) {
            for (unsigned i = 0; i < fills; ++i) {
                const bool user = i % 2;
                const GuestVirt page = (0x10'0000ull + i) << 12;
                fill(tlb, user, page, PAGE_SIZE, i % 7 == 0);
                fill(tlb, user, page); // refilling a slot logs it once
            }
            // Slots filled again after a flush, and global ones kept by it.
            tlb.flush_non_global();
            unsigned left = 0;
            for (unsigned i = 0; i < fills; ++i)
                left += hits(tlb, i % 2, (0x10'0000ull + i) << 12);
            CHECK(left == 0); // the refill made none of them global
            fill(tlb, false, 0xffff'8000'0000'0000, PAGE_SIZE, true);
            tlb.flush_non_global();
            CHECK(hits(tlb, false, 0xffff'8000'0000'0000));
            tlb.flush_all();
            CHECK_FALSE(hits(tlb, false, 0xffff'8000'0000'0000));
        }
    }
}

TEST_CASE("flush_page finds the pieces of a large page cached after flush_all, and 4 KiB pages beside it")
{
    SoftTlb tlb;
    fill(tlb, false, 0x40'1000, 2ull << 20);
    tlb.flush_all(); // forgets where large pages were
    fill(tlb, false, 0x20'0000); // a 4 KiB page
    fill(tlb, true, 0x60'3000, 4ull << 20); // a piece of a 4 MiB page (32-bit paging)
    fill(tlb, false, 0x8000'2000, 1ull << 30);
    tlb.flush_page(0x20'0000);
    CHECK_FALSE(hits(tlb, false, 0x20'0000));
    CHECK(hits(tlb, true, 0x60'3000));
    tlb.flush_page(0x7f'f000); // inside the 4 MiB page [0x40'0000, 0x80'0000)
    CHECK_FALSE(hits(tlb, true, 0x60'3000));
    CHECK(hits(tlb, false, 0x8000'2000));
    tlb.flush_page(0xbfff'f000); // inside the 1 GiB page
    CHECK_FALSE(hits(tlb, false, 0x8000'2000));
}
