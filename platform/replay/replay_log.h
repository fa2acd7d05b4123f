// Record and replay of a deterministic machine (docs/replay.md). A Recorder
// logs every host input at the host-poll point where the machine took it and,
// every sync interval, a sync record: each vCPU's retired count and register
// hash and a hash of the RAM pages written since the last one. A Replayer
// gives the machine those inputs at the same points, nothing live, and
// compares every sync record: the first disagreement ends the run with one
// line saying where.
//
// A point is (host-poll sequence number, retired instructions). The number
// counts every poll of every machine of the run (a reboot makes a new one);
// the count alone would not do, since several polls may see the same count
// (an idle machine's timers fire between them).
#pragma once

#include "platform/machine/machine.h"
#include "platform/net/net_backend.h"
#include "platform/replay/recording.h"
#include "platform/replay/replay_snapshots.h"

#include <map>
#include <memory>
#include <optional>
#include <string>

namespace replay {

// The exit status of a replay that diverged from its recording.
constexpr int DIVERGED = 9;
// Instructions between sync records unless --sync-interval says (docs/replay.md
// "Overhead": well under 1% of a boot at this spacing).
constexpr u64 DEFAULT_SYNC_INTERVAL = 10'000'000;

// The registers a sync record compares (a fixed selection: CpuState's
// padding is not part of it).
u64 hash_cpu_state(const CpuState& state);

// The sync record for the machine now; collects (and so restarts) the dirty log.
Record take_sync(Machine& machine, PhysicalMemory::DirtyBitmap& scratch);

class Recorder final : public MachineInputLog {
public:
    Recorder(std::unique_ptr<RecordingWriter> writer, u64 sync_interval);
    // A machine booted and is about to run: its writes are logged from here.
    void begin(Machine& machine);
    std::optional<int> at_poll(Machine& machine, bool again) override;
    bool live_input(Machine& machine, const HostInput& input) override;
    bool replaying() const override { return false; }
    // The cable as the last set_link left it (a reboot keeps it).
    bool nic_link_up() const { return m_link_up; }
    // The run ended: the End record, and the file is complete.
    ErrorOr<void> finish(RunOutcome::Kind kind, int status, u64 retired, u64 total_retired);
    // Why the recording stopped the run (a write failed); empty if it did not.
    const std::string& failure() const { return m_failure; }
    u64 bytes_written() const { return m_writer->bytes_written(); }
    u64 inputs() const { return m_inputs; }
    u64 syncs() const { return m_syncs; }

private:
    void write(const Record& record);

    std::unique_ptr<RecordingWriter> m_writer;
    u64 m_sync_interval;
    u64 m_poll = 0;
    u64 m_next_sync = 0;
    u64 m_inputs = 0, m_syncs = 0;
    bool m_link_up = true;
    std::string m_failure;
    PhysicalMemory::DirtyBitmap m_scratch;
};

class Replayer final : public MachineInputLog {
public:
    explicit Replayer(Recording recording);
    void begin(Machine& machine);
    std::optional<int> at_poll(Machine& machine, bool again) override;
    bool live_input(Machine&, const HostInput&) override { return false; }
    bool replaying() const override { return true; }
    bool nic_link_up() const { return m_link_up; }
    const RecordingHeader& header() const { return m_recording.header; }
    // The recording was cut short (recording.h): replayed to its last sync record.
    bool cut_short() const { return m_recording.cut_short; }
    // For tests of divergence: the n-th typed byte (from 0) of the log is
    // delivered with its low bit flipped.
    void alter_serial_input(u64 n) { m_alter = n; }
    // Why the replay stopped the run, when it diverged.
    const std::optional<std::string>& divergence() const { return m_divergence; }
    // After the last machine's run: nothing when it ended where and as the
    // recording did, else the line that says how it differs.
    std::optional<std::string> check_end(RunOutcome::Kind kind, int status, u64 total_retired) const;
    u64 syncs_checked() const { return m_syncs; }

    // ---- Reverse execution (replay_navigator.h) ----
    // Keeps in-memory snapshots along the replay, at the machine's first
    // host poll and at every sync record, in at most `max_bytes`.
    void keep_snapshots(u64 max_bytes);
    size_t snapshot_count() const { return m_snapshots ? m_snapshots->count() : 0; }
    // Each vCPU's units at snapshot `index`.
    const std::vector<u64>& snapshot_units(size_t index) const;
    u64 snapshot_key(size_t index) const { return m_snapshots->key(index); }
    // The machine's instruction count at snapshot `index`.
    u64 snapshot_retired(size_t index) const;
    // Puts the machine and this replayer back to snapshot `index`.
    ErrorOr<void> rewind(size_t index, Machine& machine);

private:
    int diverge(std::string message);
    std::optional<std::string> compare(const Record& recorded, const Record& now) const;
    void take_snapshot(Machine& machine);
    // This host poll's records: the inputs applied, the sync compared.
    std::optional<int> deliver(Machine& machine);

    // Where a snapshot left the replay: with the machine's state, this is
    // what going back to it restores.
    struct SnapshotPoint {
        size_t next = 0;
        u64 poll = 0, serial_seen = 0, syncs = 0;
        bool link_up = true;
        u64 retired = 0;        // by the machine's vCPUs together
        std::vector<u64> units; // each vCPU's
        std::vector<Machine::DriveDisc> discs; // recorded disc changes are undone too
    };
    std::unique_ptr<ReplaySnapshots> m_snapshots;
    std::map<u64, SnapshotPoint> m_snapshot_points; // by the snapshot's key
    bool m_snapshot_due = false;

    Recording m_recording;
    size_t m_next = 0;
    u64 m_poll = 0;
    u64 m_serial_seen = 0;
    std::optional<u64> m_alter;
    u64 m_syncs = 0;
    bool m_link_up = true;
    std::optional<std::string> m_divergence;
    PhysicalMemory::DirtyBitmap m_scratch;
};

// The network backend of a replay: frames the guest sends go nowhere, and
// the received ones come from the log.
class DiscardingNetBackend final : public NetBackend {
public:
    void send(std::span<const u8>) override {}
    void set_receiver(Receiver) override {}
};

} // namespace replay
