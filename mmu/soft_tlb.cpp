#include "mmu/soft_tlb.h"

#include <utility>

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

void SoftTlb::log_slot(Entry& e)
{
    if (e.logged)
        return;
    e.logged = true;
    if (m_fill_count < FILL_LOG_CAPACITY)
        m_fill_log[m_fill_count++] = static_cast<u16>(&e - &m_entries[0][0]);
    else
        m_fill_log_overflowed = true;
}

SoftTlb::Entry& SoftTlb::begin_fill(Entry& e, u64 vpn, GuestPhys phys_page, u64 page_size)
{
    const bool same_page = (e.read_tag == vpn || e.write_tag == vpn || e.exec_tag == vpn) &&
                           e.phys_page == phys_page;
    if (!same_page)
        clear_keeping_log(e);
    log_slot(e);
    e.page_size = page_size;
    if (page_size > PAGE_SIZE) {
        // Any size above 4 KiB is marked by the class that contains it.
        const unsigned size_class = page_size <= (2ull << 20) ? 0 : page_size <= (4ull << 20) ? 1 : 2;
        m_large_regions[size_class].set(((vpn << 12) >> LARGE_SHIFTS[size_class]) % LARGE_REGIONS);
    }
    return e;
}

bool SoftTlb::large_page_may_cover(GuestVirt vaddr) const
{
    for (unsigned size_class = 0; size_class < 3; ++size_class)
        if (m_large_regions[size_class].test((vaddr >> LARGE_SHIFTS[size_class]) % LARGE_REGIONS))
            return true;
    return false;
}

void SoftTlb::clear_keeping_log(Entry& e)
{
    const bool logged = e.logged;
    e = Entry{};
    e.logged = logged; // its index is still in the log
}

void SoftTlb::flush_all()
{
    for (auto& half : m_entries)
        half.fill(Entry{});
    m_override_used = false;
    m_override_global = false;
    m_fill_count = 0;
    m_fill_log_overflowed = false;
    for (auto& regions : m_large_regions)
        regions.reset();
}

void SoftTlb::flush_non_global()
{
    // MOV to CR3 without PCID keeps global translations (SDM Vol 3A 4.10.4.1).
    // Every slot that may hold a non-global one is in the fill log unless it
    // overflowed; the global ones a flush keeps leave the log.
    auto flush = [](Entry& e) {
        if (e.global && is_valid(e))
            e.logged = false;
        else
            e = Entry{};
    };
    if (!std::exchange(m_fill_log_overflowed, false)) {
        for (unsigned i = 0; i < m_fill_count; ++i) {
            const unsigned part = m_fill_log[i] / ENTRIES;
            Entry& e = m_entries[part][m_fill_log[i] % ENTRIES];
            flush(e);
            if (part == OVERRIDE && e.global)
                m_override_global = true;
        }
        m_fill_count = 0;
        m_override_used = m_override_global;
        return;
    }
    m_fill_count = 0;
    bool global_left = false;
    for_each_part([&](auto& half) {
        global_left = false;
        for (Entry& e : half) {
            flush(e);
            global_left = global_left || e.global;
        }
    });
    // The override part (flushed last) holds user pages, which a guest
    // seldom makes global: once empty, later flushes skip it.
    if (!global_left)
        m_override_used = false;
    m_override_global = m_override_used;
}

void SoftTlb::flush_page(GuestVirt vaddr)
{
    // INVLPG drops every translation for the page containing vaddr, and that
    // page may be a 2 MiB, 4 MiB or 1 GiB one whose 4 KiB pieces sit in other
    // slots (SDM Vol 3A 4.10.4.1), global or not. The fill log does not hold
    // the global entries a CR3 write kept, so it cannot say where every piece
    // is: scan every slot, which costs less than the walks a full flush
    // would cause afterwards. A cleared slot stays in the log it is in.
    // Unless no large page can cover vaddr: then only its own slots can
    // hold it.
    if (!large_page_may_cover(vaddr)) {
        const u64 vpn = vaddr >> 12;
        for_each_part([vpn](auto& half) {
            Entry& e = half[vpn % ENTRIES];
            if (is_valid(e) && linear_page(e) == vpn)
                clear_keeping_log(e);
        });
        return;
    }
    for_each_part([vaddr](auto& half) {
        for (Entry& e : half) {
            if (!is_valid(e))
                continue;
            u64 size = e.page_size >= PAGE_SIZE ? e.page_size : PAGE_SIZE;
            u64 base = linear_page(e) << 12;
            if (((base ^ vaddr) & ~(size - 1)) == 0)
                clear_keeping_log(e);
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
