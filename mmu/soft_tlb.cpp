#include "mmu/soft_tlb.h"

namespace {

bool is_valid(const SoftTlb::Entry& e)
{
    return e.read_tag != SoftTlb::INVALID || e.write_tag != SoftTlb::INVALID ||
           e.exec_tag != SoftTlb::INVALID;
}

// The linear page number an entry caches: every tag that is not INVALID holds it.
u64 linear_page(const SoftTlb::Entry& e)
{
    if (e.read_tag != SoftTlb::INVALID)
        return e.read_tag;
    if (e.write_tag != SoftTlb::INVALID)
        return e.write_tag;
    return e.exec_tag;
}

} // namespace

template <typename F> void SoftTlb::for_each_part(F f)
{
    f(m_entries[0]);
    f(m_entries[1]);
    if (m_override_used)
        f(m_entries[OVERRIDE]);
}

void SoftTlb::flush_all()
{
    for (auto& half : m_entries)
        half.fill(Entry{});
    m_override_used = false;
}

void SoftTlb::flush_non_global()
{
    // MOV to CR3 without PCID keeps global translations (SDM Vol 3A 4.10.4.1).
    bool global_left = false;
    for_each_part([&global_left](auto& half) {
        global_left = false;
        for (Entry& e : half) {
            if (!e.global)
                e = Entry{};
            else
                global_left = true;
        }
    });
    // The override part (flushed last) holds user pages, which a guest
    // seldom makes global: once empty, later flushes skip it.
    if (!global_left)
        m_override_used = false;
}

void SoftTlb::flush_page(GuestVirt vaddr)
{
    // INVLPG drops every translation for the page containing vaddr, and that
    // page may be a 2 MiB, 4 MiB or 1 GiB one whose 4 KiB pieces sit in other
    // slots (SDM Vol 3A 4.10.4.1), global or not. The TLB does not see fills, so
    // it cannot know where large-page pieces are: scan all 512 entries, which
    // costs less than the walks a full flush would cause afterwards.
    for_each_part([vaddr](auto& half) {
        for (Entry& e : half) {
            if (!is_valid(e))
                continue;
            u64 size = e.page_size >= PAGE_SIZE ? e.page_size : PAGE_SIZE;
            u64 base = linear_page(e) << 12;
            if (((base ^ vaddr) & ~(size - 1)) == 0)
                e = Entry{};
        }
    });
}

void SoftTlb::drop_stale_writes(const PhysicalMemory& memory)
{
    for (auto& half : m_entries)
        for (Entry& e : half)
            if (e.write_tag != INVALID && !memory.may_cache_writes(e.phys_page))
                e.write_tag = INVALID;
}
