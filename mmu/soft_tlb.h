// A per-vCPU software TLB of linear page → host pointer / physical page,
// split into user and supervisor halves so that a CPL change needs no flush.
// It caches only successful walks; the CPU flushes it on CR3 writes, INVLPG
// and changes of the CR0/CR4/EFER bits that affect translation.
#pragma once

#include "mmu/page_walker.h"

#include <array>

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
    };

    Entry& slot(bool user, GuestVirt vaddr)
    {
        return m_entries[user][(vaddr >> 12) % ENTRIES];
    }
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
    std::array<std::array<Entry, ENTRIES>, 2> m_entries{};
};
