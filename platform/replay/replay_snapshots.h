// In-memory snapshots along a replay (issue 18 part 3, docs/replay.md): the
// store that reverse execution and --replay-goto go back through. A snapshot
// is the machine's state but RAM (Machine::visit_state, a few hundred KiB)
// and RAM as a delta: the first snapshot holds every populated page, each
// later one the pages written since the one before it, with their bytes at
// that point. A page's content at snapshot k is in the latest snapshot
// j <= k that holds it (none: the page was zero). Restoring copies back only
// the pages written since, so its cost follows what the guest wrote, not the
// size of RAM.
//
// The store learns which pages were written from the dirty log: the
// replayer's sync records collect it (replay::take_sync) and hand each
// bitmap to note_written. A snapshot is taken right after such a record,
// with the log clean, so that restoring it leaves the log as the recorded
// run had it there (the next sync record compares the pages written since).
//
// When the store would hold more than its limit it thins out: older
// snapshots go (every other one, never the first, which holds the base
// RAM), each dropped snapshot's pages merged into its successor where that
// does not hold them. Snapshots are kept in key order; a replay put back to
// snapshot k and run on may take snapshots between k and k + 1 (they go in
// between), or at a key already held (then nothing is taken: the replay is
// deterministic, the one held is the same).
#pragma once

#include "platform/machine/machine.h"

#include <optional>
#include <vector>

namespace replay {

class ReplaySnapshots {
public:
    explicit ReplaySnapshots(u64 max_bytes = 1ull << 30);

    // Pages written since the previous call, as the dirty log collected them.
    void note_written(const PhysicalMemory::DirtyBitmap& pages);
    // A snapshot of `machine` now, between rounds of Machine::run (from the
    // replayer's host poll), right after a sync record collected the dirty
    // log and handed it to note_written: the log must be clean (pages still
    // in it would be missing from the delta). Returns false and takes none
    // when it cannot be taken without changing the run or without losing
    // track of writes: a disk request in flight or waiting for its
    // completion time (saving would drain it), the dirty log off, or a
    // machine with no saved state (the kvm-unit-tests test devices). `key`
    // orders snapshots (a monotonic position); `extra` is handed back by
    // restore. Taking may thin older snapshots out: indexes change.
    bool take(Machine& machine, u64 key, std::vector<u8> extra);
    size_t count() const { return m_snapshots.size(); }
    u64 key(size_t index) const { return m_snapshots[index].key; }
    std::optional<size_t> latest_at_or_before(u64 key) const;
    // Puts the machine back as it was at snapshot `index`: vCPUs, devices and
    // clock, and the RAM pages written since (or, restoring a later snapshot
    // than the machine's point, before it). Afterwards the dirty log is
    // clean, decoded code and TLBs agree with the restored RAM, and later
    // snapshots stay valid. Returns the snapshot's `extra`.
    ErrorOr<std::vector<u8>> restore(size_t index, Machine& machine);
    // Memory held (page bytes, page lists, states, extras).
    u64 bytes() const { return m_bytes; }
    // A new machine (after a reboot): everything goes.
    void clear();

    // What the last take and restore cost, for docs/replay.md's numbers.
    struct Costs {
        u64 take_pages = 0;    // pages the last snapshot holds
        u64 restore_pages = 0; // pages the last restore compared or copied
    };
    const Costs& costs() const { return m_costs; }

private:
    static constexpr u32 ZERO = ~0u; // a page's slot when it was zero
    struct Snapshot {
        u64 key = 0;
        std::vector<u8> extra;
        std::vector<u8> state; // Machine::visit_state
        u64 next_host_poll = 0;
        // The pages it holds, ascending, each with its slot in `data` (in
        // pages) or ZERO.
        std::vector<u64> pages;
        std::vector<u32> slots;
        std::vector<u8> data;
    };

    static u64 size_of(const Snapshot& s);
    // Adds `index`'s page to `s`, copied from `bytes`.
    static void hold_page(Snapshot& s, u64 index, const u8* bytes);
    // Drops snapshot `index` (> 0), merging its pages into the next one.
    void drop(size_t index);
    // Drops older snapshots until the store is under its limit or only the
    // first, the machine's own and the latest are left.
    void thin();

    u64 m_max_bytes;
    u64 m_bytes = 0;
    std::vector<Snapshot> m_snapshots;
    // The snapshot the machine's run last passed (took or was put back to),
    // and the pages written since it that the dirty log handed over.
    size_t m_base = 0;
    PhysicalMemory::DirtyBitmap m_written;
    PhysicalMemory::DirtyBitmap m_scratch;
    Costs m_costs;
};

} // namespace replay
