// Live migration's sending side (docs/snapshots.md "Live migration"), QEMU's
// pre-copy: the first round sends every non-zero RAM page while the guest
// runs on, each later round the pages the dirty log saw written during the
// one before, until what is left would go in about MAX_DOWNTIME_NS or the
// round limit is reached; then, with the guest no longer running, the last
// dirty pages and the machine's state (stop-and-copy). The stream is the
// snapshot stream (snapshot.h), so `--incoming` reads it whatever carried it.
//
// Everything runs on the machine's thread, in slices between vCPU rounds
// (step()), so the guest runs between them and nothing is copied or locked.
#pragma once

#include "platform/machine/snapshot.h"

#include <functional>
#include <memory>
#include <string>

// What query-migrate reports (QEMU's MigrationInfo and MigrationStats,
// qapi/migration.json).
struct MigrationProgress {
    enum class Status : u8 { Setup, Active, Completed, Failed, Cancelled };
    Status status = Status::Setup;
    u64 total_bytes = 0;      // RAM
    u64 transferred = 0;      // stream bytes sent (compressed)
    u64 remaining = 0;        // RAM bytes the current round has still to send
    u64 duplicate = 0;        // zero pages (left out or sent as a zero record)
    u64 normal = 0;           // pages sent with their bytes
    u64 dirty_sync_count = 0; // rounds begun
    u64 dirty_pages_rate = 0; // pages written per second during the last round
    u64 pages_per_second = 0;
    double mbps = 0;
    u64 setup_ms = 0;
    u64 total_ms = 0;    // so far, or until completion
    u64 downtime_ms = 0; // stop-and-copy (once completed)
    u64 downtime_bytes = 0;
    std::string error; // Failed: why
};
const char* migration_status_name(MigrationProgress::Status status);

class MigrationSender {
public:
    // The guest is stopped for at most about this long at the end (QEMU's
    // default downtime-limit, 300 ms), as the measured bandwidth predicts.
    static constexpr u64 MAX_DOWNTIME_NS = 300'000'000;
    // Rounds before stop-and-copy is forced, however much is dirty.
    static constexpr u64 MAX_ROUNDS = 30;

    MigrationSender(Machine& machine, std::unique_ptr<SnapshotSink> sink);
    // An unfinished migration is cancelled.
    ~MigrationSender();
    MigrationSender(const MigrationSender&) = delete;
    MigrationSender& operator=(const MigrationSender&) = delete;

    // Works for about `budget_ns` and returns true once the migration has
    // ended (progress().status says how). After Completed the machine must
    // not run on: its state is on the target. Every slice, beside the guest
    // or in its idle waits, records when it ended, for guest_ran_ns().
    bool step(u64 budget_ns);
    // step() for a guest that runs between slices: the slice lasts as long
    // as the guest ran since the previous one (running_slice_ns), so the
    // two share the machine's thread about evenly.
    bool step_beside_guest();
    // The guest reaches the host's poll points every Machine::QUANTUM
    // retired instructions, which is under a millisecond for most code but
    // tens of milliseconds for a guest in long REP strings (dd writing
    // tmpfs): a fixed 5 ms slice left the sender a tenth of the thread
    // there. Bounded below so a fast poller still sends, and above so the
    // guest's timers and the host's commands are not held up for long.
    static constexpr u64 MIN_RUNNING_SLICE_NS = 5'000'000, MAX_RUNNING_SLICE_NS = 50'000'000;
    static u64 running_slice_ns(u64 guest_ran_ns);
    // How long the guest has had the thread since the last slice ended (0
    // before the first): what step_beside_guest() sizes its slice from.
    u64 guest_ran_ns() const;
    // Abandons the stream (a file: its temporary file goes).
    void cancel();
    void fail(const std::string& why);
    bool finished() const;
    const MigrationProgress& progress() const { return m_progress; }

private:
    bool send_slice(u64 budget_ns);
    bool next_page(u64& page);
    void end_round();
    void stop_and_copy();
    ErrorOr<void> send_page(u64 page, bool skip_zero);
    void end(MigrationProgress::Status status);
    void update_rates();

    Machine& m_machine;
    std::unique_ptr<SnapshotSink> m_sink;
    SnapshotWriter m_writer;
    MigrationProgress m_progress;
    PhysicalMemory::DirtyBitmap m_dirty;
    PhysicalMemory::DirtyBitmap m_populated; // pages ever written when the first round began
    bool m_first_round = true;
    u64 m_cursor = 0;
    u64 m_round_left = 0; // pages of this round not yet sent
    u64 m_start_ns = 0;
    u64 m_round_start_ns = 0;
    u64 m_busy_ns = 0;     // time spent in step(): the bandwidth's denominator
    u64 m_busy_pages = 0;  // pages sent with their bytes in that time
    u64 m_last_step_end_ns = 0; // when the guest got the thread back
};

// Blocking TCP helpers for migration (the machine's thread, not the loop).
ErrorOr<int> migration_connect(const std::string& host, u16 port);
ErrorOr<int> migration_listen(const std::string& host, u16 port);
// Accepts one connection, asking `keep_waiting` about every 100 ms; an
// error when it says no.
ErrorOr<int> migration_accept(int listener, const std::function<bool()>& keep_waiting);
