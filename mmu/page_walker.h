// The software page walker: translates a linear address under the paging
// mode that CR0/CR4/EFER select (none, 32-bit, PAE, 4-level, 5-level/LA57),
// checks permissions (U/S, R/W with CR0.WP, NX, SMEP, SMAP), sets accessed
// and dirty bits, and produces the exact #PF error code (SDM Vol 3A ch. 4).
#pragma once

#include "mmu/physical_memory.h"

// MAXPHYADDR of the modelled CPU (CPUID 80000008h EAX[7:0]); entry bits from
// here up to 51 are reserved (SDM Vol 3A 4.1.4). 46 matches common hosts, so
// the same guest sees the same limit under KVM.
constexpr unsigned PHYS_ADDR_BITS = 46;

enum class Access : u8 { Read = 0, Write = 1, Execute = 2 };

// Register bits that select and qualify paging.
namespace cr {
constexpr u64 CR0_PE = 1ull << 0, CR0_MP = 1ull << 1, CR0_EM = 1ull << 2, CR0_TS = 1ull << 3,
              CR0_ET = 1ull << 4, CR0_NE = 1ull << 5, CR0_WP = 1ull << 16, CR0_AM = 1ull << 18,
              CR0_NW = 1ull << 29, CR0_CD = 1ull << 30, CR0_PG = 1ull << 31;
constexpr u64 CR4_VME = 1ull << 0, CR4_PVI = 1ull << 1, CR4_TSD = 1ull << 2, CR4_DE = 1ull << 3,
              CR4_PSE = 1ull << 4, CR4_PAE = 1ull << 5, CR4_MCE = 1ull << 6, CR4_PGE = 1ull << 7,
              CR4_PCE = 1ull << 8, CR4_OSFXSR = 1ull << 9, CR4_OSXMMEXCPT = 1ull << 10,
              CR4_UMIP = 1ull << 11, CR4_LA57 = 1ull << 12, CR4_FSGSBASE = 1ull << 16,
              CR4_PCIDE = 1ull << 17, CR4_OSXSAVE = 1ull << 18, CR4_SMEP = 1ull << 20,
              CR4_SMAP = 1ull << 21, CR4_PKE = 1ull << 22;
constexpr u64 EFER_SCE = 1ull << 0, EFER_LME = 1ull << 8, EFER_LMA = 1ull << 10,
              EFER_NXE = 1ull << 11;
} // namespace cr

// #PF error code bits (SDM Vol 3A 4.7).
constexpr u32 PFEC_PRESENT = 1u << 0, PFEC_WRITE = 1u << 1, PFEC_USER = 1u << 2,
              PFEC_RSVD = 1u << 3, PFEC_FETCH = 1u << 4;

struct PagingRegs {
    u64 cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
};

struct WalkRequest {
    GuestVirt vaddr = 0;
    Access access = Access::Read;
    // A user-mode access: CPL 3 and not an implicit supervisor access
    // (descriptor-table and TSS accesses are supervisor even at CPL 3).
    bool user = false;
    // Supervisor data access with EFLAGS.AC=1 (explicit, CPL < 3): SMAP allows it.
    bool smap_override = false;
    // A debugger's look (the gdb stub): no accessed or dirty bit is written.
    bool inspect_only = false;
};

struct Translation {
    GuestPhys phys = 0;       // the translated address (not page-aligned)
    u64 page_size = PAGE_SIZE; // 4 KiB, 2 MiB, 4 MiB or 1 GiB
    bool writable = false;    // effective R/W for this requester after CR0.WP
    bool user = false;        // effective U/S of the whole walk
    bool executable = true;   // no NX bit on any level (or NX disabled)
    bool global = false;
    bool dirty = false;       // the leaf's D bit is set (so a later write needs no walk)
};

// Translates req.vaddr. With paging off the address is returned unchanged
// (truncated to 32 bits outside long mode). On failure returns the #PF
// fault (address = the linear address: vaddr, truncated to 32 bits outside
// long mode) and leaves out untouched. A/D bits are written only when the
// translation succeeds (see page_walker.cpp). Canonical checks are the
// caller's: bits above the top index are ignored here.
// Translation::writable/executable do not fold in SMAP/SMEP; a caller caching
// a supervisor translation of a user page (user == true) must account for them.
std::optional<Fault> walk_page_tables(PhysicalMemory& mem, const PagingRegs& regs,
                                      const WalkRequest& req, Translation& out);
