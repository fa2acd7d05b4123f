// A per-vCPU software TLB of linear page → host pointer / physical page,
// split into user and supervisor halves so that a CPL change needs no flush,
// plus a third part for supervisor accesses to user pages that SMAP allows
// only while EFLAGS.AC is set (copy_to_user and friends between STAC and
// CLAC): those are looked up only while the override holds, so a CLAC needs
// no flush either.
// It caches only successful walks; the CPU flushes it on CR3 writes, INVLPG
// and changes of the CR0/CR4/EFER bits that affect translation.
#pragma once

#include "mmu/page_walker.h"

#include <array>
#include <bitset>

class SoftTlb {
public:
    static constexpr unsigned ENTRIES = 2048;
    static constexpr u64 INVALID = ~0ull;

    struct Entry {
        u64 read_tag = INVALID;  // linear page number for which reads may hit
        u64 write_tag = INVALID; // ... writes (page writable, dirty, not code, RAM)
        u64 exec_tag = INVALID;  // ... instruction fetches
        u8* host_page = nullptr; // RAM/ROM page for direct access, or nullptr (MMIO)
        GuestPhys phys_page = 0;
        // Size of the translation this entry was filled from (Translation::page_size).
        // INVLPG of any address inside a large page drops all its 4 KiB entries.
        u64 page_size = PAGE_SIZE;
        bool global = false;
        bool logged = false; // in the fill log (SoftTlb::begin_fill)
    };

    Entry& slot(bool user, GuestVirt vaddr)
    {
        return m_entries[user][(vaddr >> 12) % ENTRIES];
    }
    // Supervisor data accesses to user pages under SMAP's EFLAGS.AC
    // override (SDM Vol 3A 4.6.1): valid only while the override holds, so
    // only the CPU's override-aware paths look here.
    Entry& override_slot(GuestVirt vaddr)
    {
        m_override_used = true;
        return m_entries[OVERRIDE][(vaddr >> 12) % ENTRIES];
    }
    Entry* find_override(GuestVirt vaddr)
    {
        return m_override_used ? &m_entries[OVERRIDE][(vaddr >> 12) % ENTRIES] : nullptr;
    }
    // The slot `e` (from slot() or override_slot()) about to cache the
    // translation of linear page `vpn` to `phys_page`, a 4 KiB piece of a
    // page of `page_size` bytes: emptied first when it holds another, noted
    // in the fill log so that flushes find it, and its page size set.
    Entry& begin_fill(Entry& e, u64 vpn, GuestPhys phys_page, u64 page_size = PAGE_SIZE);
    // The supervisor or user half (translated code indexes it itself).
    const Entry* half(bool user) const { return m_entries[user].data(); }
    void flush_all();
    void flush_non_global();
    void flush_page(GuestVirt vaddr);
    // Makes stores to pages that no longer allow cached writes (now code, or
    // cleaned by the dirty log) take the slow path, which invalidates the
    // blocks decoded from them and marks them dirty.
    void drop_stale_writes(const PhysicalMemory& memory);

private:
    static constexpr unsigned OVERRIDE = 2;
    // [0] supervisor, [1] user (half() hands these to translated code),
    // [OVERRIDE] supervisor with the SMAP override.
    std::array<std::array<Entry, ENTRIES>, 3> m_entries{};
    // Whether the override part may hold entries: flushes skip it when not,
    // so a guest without SMAP pays nothing for it on every CR3 write.
    bool m_override_used = false;
    // Whether a flush kept a global entry in the override part.
    bool m_override_global = false;
    // The fill log: the slots filled since the last non-global flush, so
    // that a CR3 write clears those few instead of scanning every slot
    // (Linux's page-table isolation writes CR3 twice a system call, and
    // scanning all 6,144 slots each time was a fifth of a syscall-heavy
    // guest's time). Global entries that a flush keeps leave the log; past
    // its capacity the next flush scans again.
    static constexpr unsigned FILL_LOG_CAPACITY = 512;
    std::array<u16, FILL_LOG_CAPACITY> m_fill_log{};
    unsigned m_fill_count = 0;
    bool m_fill_log_overflowed = false;
    // Where pieces of large pages may be cached, by size (2 MiB, 4 MiB,
    // 1 GiB) and the page's number modulo the bitmap's size: an INVLPG
    // outside all of them has one slot a part to clear, not every slot
    // (SoftTlb::flush_page). Cleared only by flush_all.
    static constexpr unsigned LARGE_REGIONS = 1024;
    static constexpr unsigned LARGE_SHIFTS[3] = {21, 22, 30};
    std::array<std::bitset<LARGE_REGIONS>, 3> m_large_regions{};
    bool large_page_may_cover(GuestVirt vaddr) const;
    template <typename F> void for_each_part(F f);
    void log_slot(Entry& e);
    static void clear_keeping_log(Entry& e);
};
