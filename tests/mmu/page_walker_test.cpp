#include "mmu/page_walker.h"

#include <doctest/doctest.h>

#include <span>
#include <vector>

namespace {

// Entry bits (SDM Vol 3A 4.3-4.5), spelled as the tables below use them.
constexpr u64 P = 1ull << 0, RW = 1ull << 1, US = 1ull << 2, PWT = 1ull << 3, PCD = 1ull << 4,
              A = 1ull << 5, D = 1ull << 6, PS = 1ull << 7, G = 1ull << 8, XD = 1ull << 63;
constexpr u64 bit(unsigned n)
{
    return 1ull << n;
}

constexpr u32 PF_P = PFEC_PRESENT, PF_W = PFEC_WRITE, PF_U = PFEC_USER, PF_RSVD = PFEC_RSVD,
              PF_ID = PFEC_FETCH;

constexpr u64 K4 = 4ull << 10, M2 = 2ull << 20, M4 = 4ull << 20, G1 = 1ull << 30;

enum class Mode { Off, Legacy32, Pae, Long4, Long5 };

const char* mode_name(Mode m)
{
    switch (m) {
    case Mode::Off:
        return "paging off";
    case Mode::Legacy32:
        return "32-bit";
    case Mode::Pae:
        return "PAE";
    case Mode::Long4:
        return "4-level";
    case Mode::Long5:
        return "5-level";
    }
    return "?";
}

// One walk: how the tables are built, what is asked, and what must come back.
struct Row {
    const char* name;
    Mode mode = Mode::Long4;
    u64 page_size = K4;
    u64 leaf = P | RW | US;         // flags of the entry that maps the page
    u64 upper = P | RW | US;        // flags of every entry above it (a PAE PDPTE takes only P)
    u64 cr0 = 0, cr4 = 0, efer = 0; // on top of what the mode needs
    Access access = Access::Read;
    bool user = false;
    bool smap_override = false;
    // Bits toggled in one entry after building: level 0 is the leaf, 1 its parent...
    unsigned flip_level = 0;
    u64 flip = 0;
    std::optional<u32> error{}; // the #PF error code, or none when the walk succeeds
};

// Linear addresses with a non-zero index at every level of their mode.
constexpr GuestVirt VADDR_32 = 0xc123'4567;
constexpr GuestVirt VADDR_64 = 0x00ab'cdef'1234'5678;

// Page tables for one Row, built in a fresh guest so rows cannot interfere.
struct Guest {
    PhysicalMemory mem{16ull << 20};
    PagingRegs regs;
    GuestVirt vaddr = 0;
    GuestPhys target = 0; // base of the mapped page
    unsigned entry_size = 8;
    std::vector<GuestPhys> entries; // top level first, the leaf last
    GuestPhys next_table = 0x10'0000;

    GuestPhys alloc_table()
    {
        GuestPhys t = next_table;
        next_table += PAGE_SIZE;
        return t;
    }
    u64 entry(unsigned level_from_leaf)
    {
        return mem.read(entries[entries.size() - 1 - level_from_leaf], entry_size);
    }

    explicit Guest(const Row& row)
    {
        bool legacy = row.mode == Mode::Legacy32 || row.mode == Mode::Pae || row.mode == Mode::Off;
        vaddr = legacy ? VADDR_32 : VADDR_64;
        regs.cr0 = cr::CR0_PE | cr::CR0_ET | row.cr0;
        regs.cr4 = row.cr4;
        regs.efer = row.efer;
        if (row.mode == Mode::Off)
            return;
        regs.cr0 |= cr::CR0_PG;

        std::vector<unsigned> shifts;
        switch (row.mode) {
        case Mode::Legacy32:
            shifts = {22, 12};
            entry_size = 4;
            if (row.page_size == M4)
                regs.cr4 |= cr::CR4_PSE;
            break;
        case Mode::Pae:
            shifts = {30, 21, 12};
            break;
        case Mode::Long5:
            shifts = {48, 39, 30, 21, 12};
            break;
        default:
            shifts = {39, 30, 21, 12};
            break;
        }
        if (row.mode != Mode::Legacy32)
            regs.cr4 |= cr::CR4_PAE;
        if (row.mode == Mode::Long4 || row.mode == Mode::Long5)
            regs.efer |= cr::EFER_LME | cr::EFER_LMA;
        if (row.mode == Mode::Long5)
            regs.cr4 |= cr::CR4_LA57;

        switch (row.page_size) {
        case M2:
            target = 0x12'3440'0000;
            break;
        case M4:
            target = 0xab'c040'0000; // bits 39:32 through PSE-36
            break;
        case G1:
            target = 0x12'4000'0000;
            break;
        default:
            target = row.mode == Mode::Legacy32 ? 0x1234'5000 : 0x12'3456'7000;
            break;
        }
        unsigned leaf_shift = row.page_size == K4   ? 12
                              : row.page_size == M2 ? 21
                              : row.page_size == M4 ? 22
                                                    : 30;

        GuestPhys table = alloc_table();
        regs.cr3 = table;
        for (unsigned shift : shifts) {
            u64 index_mask = row.mode == Mode::Legacy32             ? 0x3ff
                             : row.mode == Mode::Pae && shift == 30 ? 3
                                                                    : 0x1ff;
            GuestPhys addr = table + ((vaddr >> shift) & index_mask) * entry_size;
            entries.push_back(addr);
            if (shift == leaf_shift) {
                u64 frame = target;
                if (row.mode == Mode::Legacy32 && row.page_size == M4)
                    frame = (target & 0xffc0'0000) | ((target >> 32) & 0xff) << 13;
                mem.write(addr, entry_size, frame | row.leaf | (row.page_size != K4 ? PS : 0));
                break;
            }
            GuestPhys next = alloc_table();
            bool pdpte = row.mode == Mode::Pae && shift == 30;
            mem.write(addr, entry_size, next | (pdpte ? row.upper & P : row.upper));
            table = next;
        }
        REQUIRE(row.flip_level < entries.size());
        GuestPhys flipped = entries[entries.size() - 1 - row.flip_level];
        mem.write(flipped, entry_size, mem.read(flipped, entry_size) ^ row.flip);
    }
};

WalkRequest request_for(const Row& row, GuestVirt vaddr)
{
    WalkRequest req;
    req.vaddr = vaddr;
    req.access = row.access;
    req.user = row.user;
    req.smap_override = row.smap_override;
    return req;
}

void check_rows(std::span<const Row> rows)
{
    for (const Row& row : rows) {
        INFO(mode_name(row.mode), ": ", row.name);
        Guest guest(row);
        Translation out;
        out.phys = 0xdead'0000;
        std::optional<Fault> fault =
            walk_page_tables(guest.mem, guest.regs, request_for(row, guest.vaddr), out);
        if (row.error) {
            REQUIRE(fault.has_value());
            CHECK(fault->vector == VEC_PF);
            CHECK(fault->has_error_code);
            CHECK(fault->error_code == *row.error);
            CHECK(fault->address == guest.vaddr);
            CHECK(out.phys == 0xdead'0000); // left untouched
        } else {
            if (fault)
                INFO("unexpected #PF error code ", fault->error_code);
            REQUIRE_FALSE(fault.has_value());
            GuestPhys expected = row.mode == Mode::Off
                                     ? guest.vaddr
                                     : guest.target + (guest.vaddr & (row.page_size - 1));
            CHECK(out.phys == expected);
            CHECK(out.page_size == row.page_size);
        }
    }
}

} // namespace

TEST_CASE("Every paging mode translates its 4 KiB and large pages to the mapped address")
{
    // clang-format off
    const Row rows[] = {
        {"identity", Mode::Off},
        {"4 KiB read", Mode::Legacy32},
        {.name = "4 KiB user write", .mode = Mode::Legacy32, .access = Access::Write, .user = true},
        {.name = "4 KiB user fetch", .mode = Mode::Legacy32, .access = Access::Execute,
         .user = true},
        {"4 MiB page with PSE-36 high bits", Mode::Legacy32, M4},
        {.name = "4 MiB page ignores the PAT bit", .mode = Mode::Legacy32, .page_size = M4,
         .flip_level = 0, .flip = bit(12)},
        {.name = "PS in a PDE is ignored without CR4.PSE", .mode = Mode::Legacy32, .flip_level = 1,
         .flip = PS},
        {"4 KiB read", Mode::Pae},
        {"2 MiB page", Mode::Pae, M2},
        {.name = "PWT and PCD are allowed in a PDPTE", .mode = Mode::Pae, .flip_level = 2,
         .flip = PWT | PCD},
        {.name = "XD is allowed with NXE", .mode = Mode::Pae, .leaf = P | RW | US | XD,
         .efer = cr::EFER_NXE},
        {"4 KiB read", Mode::Long4},
        {.name = "4 KiB write", .mode = Mode::Long4, .access = Access::Write},
        {"2 MiB page", Mode::Long4, M2},
        {"1 GiB page", Mode::Long4, G1},
        {.name = "bits 62:52 are ignored", .mode = Mode::Long4, .flip_level = 0,
         .flip = bit(62) | bit(52)},
        {.name = "bits 62:52 are ignored in a table entry", .mode = Mode::Long4, .flip_level = 3,
         .flip = bit(62) | bit(52)},
        {.name = "the PAT bit of a 4 KiB page is not PS", .mode = Mode::Long4, .flip_level = 0,
         .flip = PS},
        {.name = "the PAT bit of a 2 MiB page", .mode = Mode::Long4, .page_size = M2,
         .flip_level = 0, .flip = bit(12)},
        {"4 KiB read", Mode::Long5},
        {"2 MiB page", Mode::Long5, M2},
        {"1 GiB page", Mode::Long5, G1},
        {.name = "1 GiB user fetch", .mode = Mode::Long5, .page_size = G1,
         .access = Access::Execute, .user = true},
    };
    // clang-format on
    check_rows(rows);
}

TEST_CASE("Not-present entries fault with P clear and the access in the error code")
{
    // clang-format off
    const Row rows[] = {
        {.name = "leaf, supervisor read", .mode = Mode::Long4, .leaf = RW | US, .error = 0u},
        {.name = "leaf, user write", .mode = Mode::Long4, .leaf = RW | US, .access = Access::Write,
         .user = true, .error = PF_W | PF_U},
        {.name = "every upper level", .mode = Mode::Long4, .upper = RW | US, .user = true,
         .error = PF_U},
        {.name = "PML5E", .mode = Mode::Long5, .flip_level = 4, .flip = P, .error = 0u},
        {.name = "PML4E under 5-level", .mode = Mode::Long5, .flip_level = 3, .flip = P,
         .error = 0u},
        {.name = "PDE of a 2 MiB page", .mode = Mode::Long4, .page_size = M2, .leaf = RW,
         .error = 0u},
        {.name = "PDPTE of a 1 GiB page", .mode = Mode::Long4, .page_size = G1, .leaf = RW,
         .error = 0u},
        {.name = "reserved bits are not checked", .mode = Mode::Long4,
         .leaf = RW | US | bit(51) | PS, .error = 0u},
        {.name = "PDE, supervisor write", .mode = Mode::Legacy32, .access = Access::Write,
         .flip_level = 1, .flip = P, .error = PF_W},
        {.name = "PTE", .mode = Mode::Legacy32, .leaf = 0, .error = 0u},
        {.name = "PDPTE", .mode = Mode::Pae, .flip_level = 2, .flip = P, .error = 0u},
        {.name = "PDPTE with reserved bits", .mode = Mode::Pae, .flip_level = 2, .flip = P | RW,
         .error = 0u},
        {.name = "PDE", .mode = Mode::Pae, .user = true, .flip_level = 1, .flip = P, .error = PF_U},
        // I/D is set only when fetches are distinguishable: NXE with PAE paging, or SMEP.
        {.name = "fetch with NXE", .mode = Mode::Long4, .leaf = 0, .efer = cr::EFER_NXE,
         .access = Access::Execute, .error = PF_ID},
        {.name = "fetch without NXE or SMEP", .mode = Mode::Long4, .leaf = 0,
         .access = Access::Execute, .error = 0u},
        {.name = "fetch with SMEP only", .mode = Mode::Long4, .leaf = 0, .cr4 = cr::CR4_SMEP,
         .access = Access::Execute, .user = true, .error = PF_U | PF_ID},
        {.name = "fetch with NXE", .mode = Mode::Pae, .leaf = 0, .efer = cr::EFER_NXE,
         .access = Access::Execute, .error = PF_ID},
        {.name = "fetch without SMEP", .mode = Mode::Legacy32, .leaf = 0, .access = Access::Execute,
         .error = 0u},
        {.name = "fetch with NXE but no PAE", .mode = Mode::Legacy32, .leaf = 0,
         .efer = cr::EFER_NXE, .access = Access::Execute, .error = 0u},
        {.name = "fetch with SMEP", .mode = Mode::Legacy32, .leaf = 0, .cr4 = cr::CR4_SMEP,
         .access = Access::Execute, .error = PF_ID},
    };
    // clang-format on
    check_rows(rows);
}

TEST_CASE("User accesses and CR0.WP follow the U/S and R/W rights of every level")
{
    // clang-format off
    const Row rows[] = {
        {.name = "user read of a supervisor page", .mode = Mode::Long4, .leaf = P | RW,
         .user = true, .error = PF_P | PF_U},
        {.name = "user read with U/S clear only above the leaf", .mode = Mode::Long4,
         .upper = P | RW, .user = true, .error = PF_P | PF_U},
        {.name = "user read with U/S clear only in the PDPTE", .mode = Mode::Long4, .user = true,
         .flip_level = 2, .flip = US, .error = PF_P | PF_U},
        {.name = "user write to a read-only page", .mode = Mode::Long4, .leaf = P | US,
         .access = Access::Write, .user = true, .error = PF_P | PF_W | PF_U},
        {.name = "user write to a read-only page ignores WP=0", .mode = Mode::Long4, .leaf = P | US,
         .access = Access::Write, .user = true, .error = PF_P | PF_W | PF_U},
        {.name = "user write to a read-only page with WP=1", .mode = Mode::Long4, .leaf = P | US,
         .cr0 = cr::CR0_WP, .access = Access::Write, .user = true, .error = PF_P | PF_W | PF_U},
        {.name = "user write with R/W clear only in the PML4E", .mode = Mode::Long4,
         .access = Access::Write, .user = true, .flip_level = 3, .flip = RW,
         .error = PF_P | PF_W | PF_U},
        {.name = "user read of a read-only page", .mode = Mode::Long4, .leaf = P | US,
         .user = true},
        {.name = "supervisor write to a read-only page, WP=0", .mode = Mode::Long4, .leaf = P,
         .access = Access::Write},
        {.name = "supervisor write to a read-only page, WP=1", .mode = Mode::Long4, .leaf = P,
         .cr0 = cr::CR0_WP, .access = Access::Write, .error = PF_P | PF_W},
        {.name = "supervisor write with R/W clear above, WP=1", .mode = Mode::Long4,
         .upper = P | US, .cr0 = cr::CR0_WP, .access = Access::Write, .error = PF_P | PF_W},
        {.name = "supervisor write to a read-only user page, WP=0", .mode = Mode::Long4,
         .leaf = P | US, .access = Access::Write},
        {.name = "supervisor read of a supervisor page", .mode = Mode::Long4, .leaf = P},
        {.name = "user fetch from a supervisor page", .mode = Mode::Long4, .leaf = P | RW,
         .efer = cr::EFER_NXE, .access = Access::Execute, .user = true,
         .error = PF_P | PF_U | PF_ID},
        {.name = "user write to a read-only 1 GiB page", .mode = Mode::Long4, .page_size = G1,
         .leaf = P | US, .access = Access::Write, .user = true, .error = PF_P | PF_W | PF_U},
        {.name = "user read with U/S clear in the PML5E", .mode = Mode::Long5, .user = true,
         .flip_level = 4, .flip = US, .error = PF_P | PF_U},
        {.name = "user write to a read-only 2 MiB page", .mode = Mode::Long5, .page_size = M2,
         .leaf = P | US, .access = Access::Write, .user = true, .error = PF_P | PF_W | PF_U},
        {.name = "user write to a read-only page", .mode = Mode::Legacy32, .leaf = P | US,
         .access = Access::Write, .user = true, .error = PF_P | PF_W | PF_U},
        {.name = "user read with U/S clear in the PDE", .mode = Mode::Legacy32, .user = true,
         .flip_level = 1, .flip = US, .error = PF_P | PF_U},
        {.name = "supervisor write to a read-only 4 MiB page, WP=1", .mode = Mode::Legacy32,
         .page_size = M4, .leaf = P, .cr0 = cr::CR0_WP, .access = Access::Write,
         .error = PF_P | PF_W},
        {.name = "supervisor write to a read-only page, WP=0", .mode = Mode::Legacy32, .leaf = P,
         .access = Access::Write},
        {.name = "supervisor write to a read-only page, WP=1", .mode = Mode::Pae, .leaf = P,
         .cr0 = cr::CR0_WP, .access = Access::Write, .error = PF_P | PF_W},
        {.name = "user read with U/S clear in the PDE", .mode = Mode::Pae, .user = true,
         .flip_level = 1, .flip = US, .error = PF_P | PF_U},
        {.name = "user write to a read-only 2 MiB page", .mode = Mode::Pae, .page_size = M2,
         .leaf = P | US, .access = Access::Write, .user = true, .error = PF_P | PF_W | PF_U},
    };
    // clang-format on
    check_rows(rows);
}

TEST_CASE("XD faults instruction fetches only when EFER.NXE is set")
{
    const u64 nx_leaf = P | RW | US | XD;
    // clang-format off
    const Row rows[] = {
        {.name = "supervisor fetch", .mode = Mode::Long4, .leaf = nx_leaf, .efer = cr::EFER_NXE,
         .access = Access::Execute, .error = PF_P | PF_ID},
        {.name = "user fetch", .mode = Mode::Long4, .leaf = nx_leaf, .efer = cr::EFER_NXE,
         .access = Access::Execute, .user = true, .error = PF_P | PF_U | PF_ID},
        {.name = "XD only in the PDPTE", .mode = Mode::Long4, .efer = cr::EFER_NXE,
         .access = Access::Execute, .flip_level = 2, .flip = XD, .error = PF_P | PF_ID},
        {.name = "XD only in the PML5E", .mode = Mode::Long5, .efer = cr::EFER_NXE,
         .access = Access::Execute, .flip_level = 4, .flip = XD, .error = PF_P | PF_ID},
        {.name = "read of an XD page", .mode = Mode::Long4, .leaf = nx_leaf, .efer = cr::EFER_NXE},
        {.name = "user write to an XD page", .mode = Mode::Long4, .leaf = nx_leaf,
         .efer = cr::EFER_NXE, .access = Access::Write, .user = true},
        {.name = "fetch without XD", .mode = Mode::Long4, .efer = cr::EFER_NXE,
         .access = Access::Execute},
        {.name = "fetch from a 1 GiB XD page", .mode = Mode::Long4, .page_size = G1,
         .leaf = nx_leaf, .efer = cr::EFER_NXE, .access = Access::Execute, .error = PF_P | PF_ID},
        {.name = "fetch", .mode = Mode::Pae, .leaf = nx_leaf, .efer = cr::EFER_NXE,
         .access = Access::Execute, .user = true, .error = PF_P | PF_U | PF_ID},
        {.name = "fetch from a 2 MiB page", .mode = Mode::Pae, .page_size = M2, .leaf = nx_leaf,
         .efer = cr::EFER_NXE, .access = Access::Execute, .error = PF_P | PF_ID},
    };
    // clang-format on
    check_rows(rows);
}

TEST_CASE("SMEP and SMAP keep supervisor accesses away from user pages")
{
    const u64 smep = cr::CR4_SMEP, smap = cr::CR4_SMAP;
    // clang-format off
    const Row rows[] = {
        {.name = "SMEP: supervisor fetch from a user page", .mode = Mode::Long4, .cr4 = smep,
         .access = Access::Execute, .error = PF_P | PF_ID},
        {.name = "SMEP with NXE", .mode = Mode::Long4, .cr4 = smep, .efer = cr::EFER_NXE,
         .access = Access::Execute, .error = PF_P | PF_ID},
        {.name = "SMEP: user fetch from a user page", .mode = Mode::Long4, .cr4 = smep,
         .access = Access::Execute, .user = true},
        {.name = "SMEP: supervisor fetch from a supervisor page", .mode = Mode::Long4,
         .leaf = P | RW, .cr4 = smep, .access = Access::Execute},
        {.name = "SMEP: U/S clear in one upper level makes it a supervisor page",
         .mode = Mode::Long4, .cr4 = smep, .access = Access::Execute, .flip_level = 1, .flip = US},
        {.name = "SMEP: supervisor read of a user page", .mode = Mode::Long4, .cr4 = smep},
        {.name = "SMEP off: supervisor fetch from a user page", .mode = Mode::Long4,
         .access = Access::Execute},
        {.name = "SMEP: supervisor fetch from a user page", .mode = Mode::Legacy32, .cr4 = smep,
         .access = Access::Execute, .error = PF_P | PF_ID},
        {.name = "SMEP: supervisor fetch from a user 2 MiB page", .mode = Mode::Pae,
         .page_size = M2, .cr4 = smep, .access = Access::Execute, .error = PF_P | PF_ID},
        {.name = "SMAP: supervisor read of a user page", .mode = Mode::Long4, .cr4 = smap,
         .error = PF_P},
        {.name = "SMAP: supervisor write to a user page", .mode = Mode::Long4, .cr4 = smap,
         .access = Access::Write, .error = PF_P | PF_W},
        {.name = "SMAP: AC=1 read of a user page", .mode = Mode::Long4, .cr4 = smap,
         .smap_override = true},
        {.name = "SMAP: AC=1 write to a user page", .mode = Mode::Long4, .cr4 = smap,
         .access = Access::Write, .smap_override = true},
        {.name = "SMAP: AC=1 write to a read-only user page, WP=1", .mode = Mode::Long4,
         .leaf = P | US, .cr0 = cr::CR0_WP, .cr4 = smap, .access = Access::Write,
         .smap_override = true, .error = PF_P | PF_W},
        {.name = "SMAP: AC=1 write to a read-only user page, WP=0", .mode = Mode::Long4,
         .leaf = P | US, .cr4 = smap, .access = Access::Write, .smap_override = true},
        {.name = "SMAP: supervisor fetch from a user page", .mode = Mode::Long4, .cr4 = smap,
         .access = Access::Execute},
        {.name = "SMAP: user read of a user page", .mode = Mode::Long4, .cr4 = smap, .user = true},
        {.name = "SMAP: supervisor read of a supervisor page", .mode = Mode::Long4, .leaf = P | RW,
         .cr4 = smap},
        {"SMAP off: supervisor read of a user page", Mode::Long4},
        {.name = "SMAP: supervisor read of a user 1 GiB page", .mode = Mode::Long5, .page_size = G1,
         .cr4 = smap, .error = PF_P},
        {.name = "SMAP: supervisor read of a user page", .mode = Mode::Pae, .cr4 = smap,
         .error = PF_P},
        {.name = "SMAP: supervisor write to a user 4 MiB page", .mode = Mode::Legacy32,
         .page_size = M4, .cr4 = smap, .access = Access::Write, .error = PF_P | PF_W},
    };
    // clang-format on
    check_rows(rows);
}

TEST_CASE("Reserved bits in a present entry fault with P and RSVD set")
{
    // clang-format off
    const Row rows[] = {
        {.name = "PTE bit 51", .mode = Mode::Long4, .flip_level = 0, .flip = bit(51),
         .error = PF_P | PF_RSVD},
        {.name = "PTE bit MAXPHYADDR", .mode = Mode::Long4, .flip_level = 0,
         .flip = bit(PHYS_ADDR_BITS), .error = PF_P | PF_RSVD},
        {.name = "PML4E bit 51", .mode = Mode::Long4, .flip_level = 3, .flip = bit(51),
         .error = PF_P | PF_RSVD},
        {.name = "PS in a PML4E", .mode = Mode::Long4, .flip_level = 3, .flip = PS,
         .error = PF_P | PF_RSVD},
        {.name = "PS in a PML5E", .mode = Mode::Long5, .flip_level = 4, .flip = PS,
         .error = PF_P | PF_RSVD},
        {.name = "PS in a PML4E under 5-level", .mode = Mode::Long5, .flip_level = 3, .flip = PS,
         .error = PF_P | PF_RSVD},
        {.name = "PML5E bit 48", .mode = Mode::Long5, .flip_level = 4, .flip = bit(48),
         .error = PF_P | PF_RSVD},
        {.name = "XD without NXE in the leaf", .mode = Mode::Long4, .leaf = P | RW | US | XD,
         .error = PF_P | PF_RSVD},
        {.name = "XD without NXE in the PDPTE", .mode = Mode::Long4, .flip_level = 2, .flip = XD,
         .error = PF_P | PF_RSVD},
        {.name = "XD without NXE, user write", .mode = Mode::Long4, .leaf = P | RW | US | XD,
         .access = Access::Write, .user = true, .error = PF_P | PF_W | PF_U | PF_RSVD},
        {.name = "reserved bit on a fetch with NXE", .mode = Mode::Long4, .efer = cr::EFER_NXE,
         .access = Access::Execute, .flip_level = 0, .flip = bit(50),
         .error = PF_P | PF_RSVD | PF_ID},
        {.name = "reserved bit wins over a permission fault", .mode = Mode::Long4,
         .leaf = P | RW | bit(47), .user = true, .error = PF_P | PF_U | PF_RSVD},
        {.name = "2 MiB page bit 13", .mode = Mode::Long4, .page_size = M2, .flip_level = 0,
         .flip = bit(13), .error = PF_P | PF_RSVD},
        {.name = "2 MiB page bit 20", .mode = Mode::Long4, .page_size = M2, .flip_level = 0,
         .flip = bit(20), .error = PF_P | PF_RSVD},
        {.name = "1 GiB page bit 13", .mode = Mode::Long4, .page_size = G1, .flip_level = 0,
         .flip = bit(13), .error = PF_P | PF_RSVD},
        {.name = "1 GiB page bit 29", .mode = Mode::Long5, .page_size = G1, .flip_level = 0,
         .flip = bit(29), .error = PF_P | PF_RSVD},
        {.name = "PDPTE bit 1 (no R/W in PAE)", .mode = Mode::Pae, .flip_level = 2, .flip = RW,
         .error = PF_P | PF_RSVD},
        {.name = "PDPTE bit 2 (no U/S in PAE)", .mode = Mode::Pae, .user = true, .flip_level = 2,
         .flip = US, .error = PF_P | PF_U | PF_RSVD},
        {.name = "PDPTE bit 5", .mode = Mode::Pae, .flip_level = 2, .flip = A,
         .error = PF_P | PF_RSVD},
        {.name = "PDPTE bit 7", .mode = Mode::Pae, .flip_level = 2, .flip = PS,
         .error = PF_P | PF_RSVD},
        {.name = "PDPTE bit 8", .mode = Mode::Pae, .flip_level = 2, .flip = G,
         .error = PF_P | PF_RSVD},
        {.name = "PDPTE bit 63 even with NXE", .mode = Mode::Pae, .efer = cr::EFER_NXE,
         .flip_level = 2, .flip = XD, .error = PF_P | PF_RSVD},
        {.name = "PDPTE bit 51", .mode = Mode::Pae, .flip_level = 2, .flip = bit(51),
         .error = PF_P | PF_RSVD},
        {.name = "PDE bit 62 (PAE reserves 62:M)", .mode = Mode::Pae, .flip_level = 1,
         .flip = bit(62), .error = PF_P | PF_RSVD},
        {.name = "PTE bit 52", .mode = Mode::Pae, .flip_level = 0, .flip = bit(52),
         .error = PF_P | PF_RSVD},
        {.name = "XD without NXE", .mode = Mode::Pae, .leaf = P | RW | US | XD,
         .error = PF_P | PF_RSVD},
        {.name = "2 MiB page bit 13", .mode = Mode::Pae, .page_size = M2, .flip_level = 0,
         .flip = bit(13), .error = PF_P | PF_RSVD},
        {.name = "4 MiB page bit 21", .mode = Mode::Legacy32, .page_size = M4, .flip_level = 0,
         .flip = bit(21), .error = PF_P | PF_RSVD},
        {.name = "4 MiB page bit 21, user write", .mode = Mode::Legacy32, .page_size = M4,
         .access = Access::Write, .user = true, .flip_level = 0, .flip = bit(21),
         .error = PF_P | PF_W | PF_U | PF_RSVD},
    };
    // clang-format on
    check_rows(rows);
}

namespace {

// One row per paging mode and page size, for the A/D and Translation tests.
// clang-format off
const Row every_mode[] = {
    {"4 KiB", Mode::Legacy32},  {"4 MiB", Mode::Legacy32, M4}, {"4 KiB", Mode::Pae},
    {"2 MiB", Mode::Pae, M2},   {"4 KiB", Mode::Long4},        {"2 MiB", Mode::Long4, M2},
    {"1 GiB", Mode::Long4, G1}, {"4 KiB", Mode::Long5},        {"1 GiB", Mode::Long5, G1},
};
// clang-format on

// Entries that have an accessed bit: all but a PAE PDPTE.
std::vector<unsigned> levels_with_a(const Row& row, const Guest& g)
{
    std::vector<unsigned> levels;
    for (unsigned level = 0; level < g.entries.size(); ++level)
        if (!(row.mode == Mode::Pae && level == g.entries.size() - 1))
            levels.push_back(level);
    return levels;
}

} // namespace

TEST_CASE("A successful read sets the accessed bit in every entry used and no dirty bit")
{
    for (const Row& row : every_mode) {
        INFO(mode_name(row.mode), ": ", row.name);
        Guest g(row);
        Translation out;
        REQUIRE_FALSE(walk_page_tables(g.mem, g.regs, request_for(row, g.vaddr), out));
        for (unsigned level : levels_with_a(row, g)) {
            INFO("level ", level);
            CHECK((g.entry(level) & A) != 0);
            CHECK((g.entry(level) & D) == 0);
        }
        CHECK_FALSE(out.dirty);
    }
}

TEST_CASE("A successful write also sets the dirty bit, on the leaf only")
{
    for (Row row : every_mode) {
        INFO(mode_name(row.mode), ": ", row.name);
        row.access = Access::Write;
        Guest g(row);
        Translation out;
        REQUIRE_FALSE(walk_page_tables(g.mem, g.regs, request_for(row, g.vaddr), out));
        CHECK((g.entry(0) & (A | D)) == (A | D));
        for (unsigned level : levels_with_a(row, g))
            if (level > 0)
                CHECK((g.entry(level) & (A | D)) == A);
        CHECK(out.dirty);
    }
}

TEST_CASE("A PAE PDPTE has no accessed bit to set")
{
    Row row{"4 KiB", Mode::Pae};
    Guest g(row);
    u64 before = g.entry(2);
    Translation out;
    REQUIRE_FALSE(walk_page_tables(g.mem, g.regs, request_for(row, g.vaddr), out));
    CHECK(g.entry(2) == before);
}

TEST_CASE("A faulting access sets no accessed or dirty bit anywhere")
{
    for (Row row : every_mode) {
        INFO(mode_name(row.mode), ": ", row.name);
        // A protection fault (user write to a supervisor page) after a complete walk.
        row.leaf = P;
        row.access = Access::Write;
        row.user = true;
        Guest g(row);
        Translation out;
        REQUIRE(walk_page_tables(g.mem, g.regs, request_for(row, g.vaddr), out));
        for (unsigned level = 0; level < g.entries.size(); ++level)
            CHECK((g.entry(level) & (A | D)) == 0);
    }
    Row not_present{.name = "leaf not present", .mode = Mode::Long4, .leaf = RW | US};
    Guest g(not_present);
    Translation out;
    REQUIRE(walk_page_tables(g.mem, g.regs, request_for(not_present, g.vaddr), out));
    for (unsigned level = 0; level < g.entries.size(); ++level)
        CHECK((g.entry(level) & A) == 0);
}

TEST_CASE("Already set accessed and dirty bits are not written again")
{
    Row row{.name = "4 KiB",
            .mode = Mode::Long4,
            .leaf = P | RW | US | A | D,
            .upper = P | RW | US | A,
            .access = Access::Write};
    Guest g(row);
    int writes_to_tables = 0;
    g.mem.set_code_write_listener([&](GuestPhys) { ++writes_to_tables; });
    for (GuestPhys e : g.entries)
        g.mem.mark_code(e); // any write to a table page would now be seen
    Translation out;
    REQUIRE_FALSE(walk_page_tables(g.mem, g.regs, request_for(row, g.vaddr), out));
    CHECK(writes_to_tables == 0);
    CHECK(out.dirty);
}

TEST_CASE("Setting accessed bits leaves the rest of the entry intact")
{
    Row row{.name = "4 KiB",
            .mode = Mode::Long4,
            .leaf = P | RW | US | G | XD,
            .efer = cr::EFER_NXE,
            .access = Access::Write};
    Guest g(row);
    u64 before = g.entry(0);
    Translation out;
    REQUIRE_FALSE(walk_page_tables(g.mem, g.regs, request_for(row, g.vaddr), out));
    CHECK(g.entry(0) == (before | A | D));
}

TEST_CASE("A translation reports the effective rights of the whole walk")
{
    Translation out;

    Row plain{"4 KiB", Mode::Long4};
    Guest g1(plain);
    REQUIRE_FALSE(walk_page_tables(g1.mem, g1.regs, request_for(plain, g1.vaddr), out));
    CHECK(out.writable);
    CHECK(out.user);
    CHECK(out.executable);
    CHECK_FALSE(out.global);

    // R/W clear in the PDE: writable for the supervisor only while WP=0.
    Row ro{.name = "4 KiB", .mode = Mode::Long4, .flip_level = 1, .flip = RW};
    Guest g2(ro);
    REQUIRE_FALSE(walk_page_tables(g2.mem, g2.regs, request_for(ro, g2.vaddr), out));
    CHECK(out.writable);
    ro.cr0 = cr::CR0_WP;
    Guest g3(ro);
    REQUIRE_FALSE(walk_page_tables(g3.mem, g3.regs, request_for(ro, g3.vaddr), out));
    CHECK_FALSE(out.writable);
    ro.cr0 = 0;
    ro.user = true;
    Guest g4(ro);
    REQUIRE_FALSE(walk_page_tables(g4.mem, g4.regs, request_for(ro, g4.vaddr), out));
    CHECK_FALSE(out.writable);

    // U/S clear in the PML4E only: a supervisor page.
    Row sup{.name = "4 KiB", .mode = Mode::Long4, .flip_level = 3, .flip = US};
    Guest g5(sup);
    REQUIRE_FALSE(walk_page_tables(g5.mem, g5.regs, request_for(sup, g5.vaddr), out));
    CHECK_FALSE(out.user);

    // XD in the PDPTE only: the whole walk is not executable.
    Row nx{.name = "4 KiB", .mode = Mode::Long4, .efer = cr::EFER_NXE, .flip_level = 2, .flip = XD};
    Guest g6(nx);
    REQUIRE_FALSE(walk_page_tables(g6.mem, g6.regs, request_for(nx, g6.vaddr), out));
    CHECK_FALSE(out.executable);
}

TEST_CASE("The global bit is reported only with CR4.PGE")
{
    for (Row row : every_mode) {
        INFO(mode_name(row.mode), ": ", row.name);
        row.leaf |= G;
        Translation out;
        Guest without(row);
        REQUIRE_FALSE(
            walk_page_tables(without.mem, without.regs, request_for(row, without.vaddr), out));
        CHECK_FALSE(out.global);
        row.cr4 |= cr::CR4_PGE;
        Guest with(row);
        REQUIRE_FALSE(walk_page_tables(with.mem, with.regs, request_for(row, with.vaddr), out));
        CHECK(out.global);
    }
    // G in a non-leaf entry means nothing.
    Row upper{.name = "4 KiB", .mode = Mode::Long4, .upper = P | RW | US | G, .cr4 = cr::CR4_PGE};
    Guest g(upper);
    Translation out;
    REQUIRE_FALSE(walk_page_tables(g.mem, g.regs, request_for(upper, g.vaddr), out));
    CHECK_FALSE(out.global);
}

TEST_CASE("A read reports dirty when the leaf's dirty bit is already set")
{
    Row row{.name = "2 MiB", .mode = Mode::Long4, .page_size = M2, .leaf = P | RW | US | D};
    Guest g(row);
    Translation out;
    REQUIRE_FALSE(walk_page_tables(g.mem, g.regs, request_for(row, g.vaddr), out));
    CHECK(out.dirty);
}

TEST_CASE("With paging off the address passes through, truncated outside long mode")
{
    PhysicalMemory mem(1ull << 20);
    PagingRegs regs;
    regs.cr0 = cr::CR0_PE;
    WalkRequest req;
    req.vaddr = 0x1'fedc'ba98;
    req.access = Access::Write;
    req.user = true;
    Translation out;
    REQUIRE_FALSE(walk_page_tables(mem, regs, req, out));
    CHECK(out.phys == 0xfedc'ba98);
    CHECK(out.writable);
    CHECK(out.user);
    CHECK(out.executable);
    CHECK(out.dirty);
    CHECK(out.page_size == PAGE_SIZE);
}

TEST_CASE("Outside long mode the linear address and the fault address are 32 bits")
{
    Row row{.name = "4 KiB", .mode = Mode::Pae, .leaf = RW | US};
    Guest g(row);
    Translation out;
    auto fault =
        walk_page_tables(g.mem, g.regs, request_for(row, 0xffff'ffff'0000'0000 | g.vaddr), out);
    REQUIRE(fault);
    CHECK(fault->address == g.vaddr);

    Row ok{"4 KiB", Mode::Legacy32};
    Guest g2(ok);
    REQUIRE_FALSE(
        walk_page_tables(g2.mem, g2.regs, request_for(ok, 0x1'0000'0000 | g2.vaddr), out));
    CHECK(out.phys == g2.target + (g2.vaddr & 0xfff));
}

TEST_CASE("5-level paging indexes the PML5 with linear bits 56:48")
{
    Row row{"4 KiB", Mode::Long5};
    Guest g(row);
    Translation out;
    // Same low 48 bits, another PML5 slot: nothing is mapped there.
    auto fault = walk_page_tables(g.mem, g.regs, request_for(row, g.vaddr ^ (1ull << 48)), out);
    REQUIRE(fault);
    CHECK(fault->error_code == 0);
    // Bits 63:57 are not used by the walk (canonicality is checked by the CPU).
    REQUIRE_FALSE(walk_page_tables(g.mem, g.regs, request_for(row, g.vaddr | (1ull << 60)), out));
}

TEST_CASE("Page tables outside RAM read as all ones without crashing the walk")
{
    PhysicalMemory mem(1ull << 20);
    PagingRegs regs;
    regs.cr0 = cr::CR0_PE | cr::CR0_PG;
    regs.cr4 = cr::CR4_PAE;
    regs.efer = cr::EFER_LME | cr::EFER_LMA;
    regs.cr3 = 0x3fff'ffff'f000; // highest table address MAXPHYADDR allows
    WalkRequest req;
    req.vaddr = 0x1234'5678;
    Translation out;
    auto fault = walk_page_tables(mem, regs, req, out);
    REQUIRE(fault);
    CHECK(fault->error_code == (PF_P | PF_RSVD));

    // 32-bit paging has no reserved bits to catch all ones: it translates to them.
    regs.cr4 = 0;
    regs.efer = 0;
    regs.cr3 = 0xa0000; // the legacy hole
    REQUIRE_FALSE(walk_page_tables(mem, regs, req, out));
    CHECK(out.phys == 0xffff'f678);
}

TEST_CASE("Page-table entries in a self-referencing PML4 get their bits once each")
{
    // PML4[0] points back at the PML4 itself; PML4[1] is the leaf through it.
    PhysicalMemory mem(1ull << 20);
    GuestPhys pml4 = 0x1000;
    mem.write(pml4 + 0, 8, pml4 | P | RW);
    mem.write(pml4 + 8, 8, 0x5000 | P | RW);
    PagingRegs regs;
    regs.cr0 = cr::CR0_PE | cr::CR0_PG;
    regs.cr4 = cr::CR4_PAE;
    regs.efer = cr::EFER_LME | cr::EFER_LMA;
    regs.cr3 = pml4;
    WalkRequest req;
    req.vaddr = (1ull << 12) | 0x234; // indices 0, 0, 0, 1
    req.access = Access::Write;
    Translation out;
    REQUIRE_FALSE(walk_page_tables(mem, regs, req, out));
    CHECK(out.phys == 0x5234);
    CHECK(mem.read(pml4, 8) == (pml4 | P | RW | A));
    CHECK(mem.read(pml4 + 8, 8) == (0x5000 | P | RW | A | D));
}
