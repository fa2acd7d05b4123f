#include "platform/replay/replay_snapshots.h"

#include "platform/machine/snapshot.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace replay {

namespace {

constexpr u64 PAGE_BYTES = 4096;

// Calls `f(index)` for every set bit below `limit`.
template <class F>
void for_each_bit(const PhysicalMemory::DirtyBitmap& bits, u64 limit, F f)
{
    for (size_t word = 0; word < bits.size(); ++word)
        for (u64 w = bits[word]; w; w &= w - 1) {
            const u64 index = word * 64 + static_cast<u64>(std::countr_zero(w));
            if (index >= limit)
                return;
            f(index);
        }
}

void set_bit(PhysicalMemory::DirtyBitmap& bits, u64 index) { bits[index >> 6] |= 1ull << (index & 63); }
void clear_bit(PhysicalMemory::DirtyBitmap& bits, u64 index) { bits[index >> 6] &= ~(1ull << (index & 63)); }

// The guest-physical address of RAM page `index` (PhysicalMemory's
// numbering), for the code-write notice that drops blocks decoded there.
GuestPhys page_address(PhysicalMemory& memory, u64 index)
{
    const u8* host = memory.ram_page_by_index(index);
    for (const PhysicalMemory::RamRange& range : memory.ram_ranges())
        if (host >= range.host && host < range.host + range.size)
            return range.base + static_cast<u64>(host - range.host);
    return PhysicalMemory::NOT_RAM; // the padding between the ranges: never written
}

// Makes RAM page `index` hold `bytes` (null: zero). A page that already
// does is left alone: its decoded code is still right, and a page never
// touched stays unbacked.
bool put_page(PhysicalMemory& memory, u64 index, const u8* bytes)
{
    u8* page = memory.ram_page_by_index(index);
    if (bytes ? std::memcmp(page, bytes, PAGE_BYTES) == 0 : is_zero_page(page))
        return false;
    if (const GuestPhys address = page_address(memory, index); address != PhysicalMemory::NOT_RAM)
        memory.note_write(address, PAGE_BYTES); // before the bytes change, as a store does
    if (bytes)
        std::memcpy(page, bytes, PAGE_BYTES);
    else
        std::memset(page, 0, PAGE_BYTES);
    return true;
}

} // namespace

ReplaySnapshots::ReplaySnapshots(u64 max_bytes) : m_max_bytes(max_bytes) {}

u64 ReplaySnapshots::size_of(const Snapshot& s)
{
    return sizeof(Snapshot) + s.extra.size() + s.state.size() + s.pages.size() * sizeof(u64) +
           s.slots.size() * sizeof(u32) + s.data.size();
}

void ReplaySnapshots::hold_page(Snapshot& s, u64 index, const u8* bytes)
{
    s.pages.push_back(index);
    if (!bytes) {
        s.slots.push_back(ZERO);
        return;
    }
    s.slots.push_back(static_cast<u32>(s.data.size() / PAGE_BYTES));
    s.data.insert(s.data.end(), bytes, bytes + PAGE_BYTES);
}

void ReplaySnapshots::note_written(const PhysicalMemory::DirtyBitmap& pages)
{
    // Before the first snapshot nothing needs them: it holds all of RAM.
    const size_t words = std::min(pages.size(), m_written.size());
    for (size_t i = 0; i < words; ++i)
        m_written[i] |= pages[i];
}

std::optional<size_t> ReplaySnapshots::latest_at_or_before(u64 key) const
{
    auto after = std::upper_bound(m_snapshots.begin(), m_snapshots.end(), key,
                                  [](u64 k, const Snapshot& s) { return k < s.key; });
    if (after == m_snapshots.begin())
        return std::nullopt;
    return static_cast<size_t>(after - m_snapshots.begin()) - 1;
}

bool ReplaySnapshots::take(Machine& machine, u64 key, std::vector<u8> extra)
{
    PhysicalMemory& memory = machine.memory();
    // Saving drains the disks, which would complete their requests early;
    // without the dirty log no later delta could be known.
    if (machine.disk_requests_pending() || !memory.dirty_logging())
        return false;
    const bool first = m_snapshots.empty();
    if (!first && key < m_snapshots[m_base].key)
        return false; // not where the machine's run is
    const std::optional<size_t> before = latest_at_or_before(key);
    if (!first && before && m_snapshots[*before].key == key) {
        // The run came back to a snapshot it holds: the same state, as the
        // replay is deterministic.
        m_base = *before;
        std::fill(m_written.begin(), m_written.end(), 0);
        return true;
    }

    Snapshot s;
    s.key = key;
    s.extra = std::move(extra);
    s.next_host_poll = machine.next_host_poll();
    StateVisitor saver = StateVisitor::saver();
    machine.visit_state(saver);
    if (!saver.ok())
        return false;
    s.state = saver.bytes();

    const u64 pages = memory.ram_page_count();
    if (first) {
        // Every populated page that is not zero; the others read as zero.
        std::vector<u64> held;
        for_each_bit(populated_ram_pages(memory), pages, [&](u64 index) {
            if (!is_zero_page(memory.ram_page_by_index(index)))
                held.push_back(index);
        });
        s.data.reserve(held.size() * PAGE_BYTES);
        s.pages.reserve(held.size());
        s.slots.reserve(held.size());
        for (u64 index : held)
            hold_page(s, index, memory.ram_page_by_index(index));
        m_written.assign((pages + 63) / 64, 0);
    } else {
        // The pages written since the snapshot before, zero ones as such (a
        // page that became zero is a change too).
        u64 nonzero = 0;
        for_each_bit(m_written, pages, [&](u64 index) { nonzero += !is_zero_page(memory.ram_page_by_index(index)); });
        s.data.reserve(nonzero * PAGE_BYTES);
        for_each_bit(m_written, pages, [&](u64 index) {
            const u8* bytes = memory.ram_page_by_index(index);
            hold_page(s, index, is_zero_page(bytes) ? nullptr : bytes);
        });
        std::fill(m_written.begin(), m_written.end(), 0);
    }
    m_costs.take_pages = s.pages.size();
    m_bytes += size_of(s);
    const size_t at = before ? *before + 1 : 0;
    m_snapshots.insert(m_snapshots.begin() + static_cast<std::ptrdiff_t>(at), std::move(s));
    m_base = at;
    thin();
    return true;
}

ErrorOr<std::vector<u8>> ReplaySnapshots::restore(size_t index, Machine& machine)
{
    if (index >= m_snapshots.size())
        return make_error("no in-memory snapshot " + std::to_string(index) + " (the store holds " +
                          std::to_string(m_snapshots.size()) + ")");
    PhysicalMemory& memory = machine.memory();
    const u64 pages = memory.ram_page_count();
    // A completion in flight belongs to the future being abandoned; it runs
    // now, and the pages it writes are in the log, restored below.
    machine.drain_disks();

    // The pages that differ from snapshot `index`: those written since the
    // earlier of it and the machine's own point (the later snapshots'
    // deltas, the bitmaps noted since the last one, and the log now).
    PhysicalMemory::DirtyBitmap need = m_written;
    memory.collect_dirty(m_scratch);
    for (size_t i = 0; i < need.size() && i < m_scratch.size(); ++i)
        need[i] |= m_scratch[i];
    for (size_t j = std::min(m_base, index) + 1; j < m_snapshots.size(); ++j)
        for (u64 page : m_snapshots[j].pages)
            set_bit(need, page);
    u64 left = 0;
    for (u64 word : need)
        left += static_cast<u64>(std::popcount(word));
    m_costs.restore_pages = left;

    // Each one's content at `index`: in the latest snapshot at or before it
    // that holds the page; in none, it was zero.
    for (size_t j = index + 1; j-- > 0 && left > 0;) {
        const Snapshot& s = m_snapshots[j];
        for (size_t i = 0; i < s.pages.size(); ++i) {
            const u64 page = s.pages[i];
            if (!PhysicalMemory::test_bit(need, page))
                continue;
            put_page(memory, page, s.slots[i] == ZERO ? nullptr : s.data.data() + u64{s.slots[i]} * PAGE_BYTES);
            clear_bit(need, page);
            --left;
        }
    }
    for_each_bit(need, pages, [&](u64 page) { put_page(memory, page, nullptr); });

    const Snapshot& s = m_snapshots[index];
    TRY(machine.rewind_state(s.state, s.next_host_poll));
    // Clean, as the sync record the snapshot was taken after left it.
    memory.collect_dirty(m_scratch);
    std::fill(m_written.begin(), m_written.end(), 0);
    m_base = index;
    return s.extra;
}

void ReplaySnapshots::drop(size_t index)
{
    Snapshot& gone = m_snapshots[index];
    Snapshot& next = m_snapshots[index + 1];
    m_bytes -= size_of(gone) + size_of(next);
    // The successor's page list merged with the dropped one's: a page both
    // hold keeps the successor's bytes (it was written again in between);
    // one only the dropped snapshot holds was not, and keeps its bytes.
    Snapshot merged;
    merged.key = next.key;
    merged.extra = std::move(next.extra);
    merged.state = std::move(next.state);
    merged.next_host_poll = next.next_host_poll;
    u64 nonzero = next.data.size() / PAGE_BYTES;
    for (size_t i = 0, j = 0; i < gone.pages.size(); ++i) {
        while (j < next.pages.size() && next.pages[j] < gone.pages[i])
            ++j;
        if ((j == next.pages.size() || next.pages[j] != gone.pages[i]) && gone.slots[i] != ZERO)
            ++nonzero;
    }
    merged.data.reserve(nonzero * PAGE_BYTES);
    merged.pages.reserve(gone.pages.size() + next.pages.size());
    merged.slots.reserve(gone.pages.size() + next.pages.size());
    const auto bytes_of = [](const Snapshot& s, size_t i) {
        return s.slots[i] == ZERO ? nullptr : s.data.data() + u64{s.slots[i]} * PAGE_BYTES;
    };
    size_t i = 0, j = 0;
    while (i < gone.pages.size() || j < next.pages.size()) {
        if (j < next.pages.size() && (i == gone.pages.size() || next.pages[j] <= gone.pages[i])) {
            if (i < gone.pages.size() && gone.pages[i] == next.pages[j])
                ++i;
            hold_page(merged, next.pages[j], bytes_of(next, j));
            ++j;
        } else {
            hold_page(merged, gone.pages[i], bytes_of(gone, i));
            ++i;
        }
    }
    merged.pages.shrink_to_fit();
    merged.slots.shrink_to_fit();
    m_bytes += size_of(merged);
    next = std::move(merged);
    m_snapshots.erase(m_snapshots.begin() + static_cast<std::ptrdiff_t>(index));
    if (m_base > index)
        --m_base;
}

void ReplaySnapshots::thin()
{
    while (m_bytes > m_max_bytes) {
        // Every other snapshot of the older half, from the second on: the
        // recent past stays dense, where reverse steps go most. Never the
        // first (the base RAM), the latest, or the machine's own (the pages
        // written since it are counted from it).
        size_t older = std::max<size_t>(2, m_snapshots.size() / 2);
        bool dropped = false;
        // After a drop the next one moved into its place: ++i passes over it.
        for (size_t i = 1; i < older && i + 1 < m_snapshots.size(); ++i) {
            if (i == m_base)
                continue;
            drop(i);
            dropped = true;
            --older;
        }
        if (!dropped)
            return;
    }
}

void ReplaySnapshots::clear()
{
    m_snapshots.clear();
    m_bytes = 0;
    m_base = 0;
    m_written.clear();
    m_costs = {};
}

} // namespace replay
