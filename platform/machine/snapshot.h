// Whole-machine snapshots and the migration stream (docs/snapshots.md): a
// header that names the format, the build and the machine's configuration,
// then one zlib stream of RAM page records (a page's bytes, or "this page is
// zero"; a later record of a page replaces an earlier one) and last the
// machine's state (Machine::visit_state). A snapshot is the one-round case:
// every non-zero page once. Saving to a file writes a temporary file and
// renames it, so a crash never leaves a half-written snapshot under the name
// asked for.
#pragma once

#include "platform/machine/machine.h"

#include <cstdio>
#include <memory>
#include <string>

// The configuration a snapshot must be loaded into, as text: what changes
// what the guest sees (memory, vCPUs, CPU model and features, clock mode,
// enlightenments). Options that only change how the host runs the guest
// (the JIT, tracing, where serial output goes) may differ.
std::string snapshot_configuration(const MachineConfig& config);
// The build a snapshot (or a recording) comes from: the version and the
// sizes of the structures saved as they are laid out in memory.
std::string build_identity();

// Writes the stream piece by piece: the header, page records in any order
// and number, then the state, which ends it. Live migration (migration.h)
// sends rounds of pages with it while the guest runs.
class SnapshotWriter {
public:
    explicit SnapshotWriter(std::FILE* out);
    ~SnapshotWriter();
    SnapshotWriter(const SnapshotWriter&) = delete;
    SnapshotWriter& operator=(const SnapshotWriter&) = delete;

    ErrorOr<void> begin(const MachineConfig& config);
    ErrorOr<void> page(u64 index, const u8* bytes);
    ErrorOr<void> zero_page(u64 index);
    // The machine's state (as it is now) and the end of the stream; flushed.
    ErrorOr<void> finish(Machine& machine);
    // Bytes handed to the FILE* so far (compressed).
    u64 bytes_written() const;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

bool is_zero_page(const u8* page);
// One bit per RAM page (PhysicalMemory's numbering): set for every page the
// host has ever backed (resident or swapped out). The others were never
// written and read as zero, and are skipped without touching them: reading
// one would cost a page fault. All set when the kernel cannot tell
// (/proc/self/pagemap unreadable).
PhysicalMemory::DirtyBitmap populated_ram_pages(PhysicalMemory& memory);

// Where a saved stream goes: a file (written as PATH.tmp, synced and renamed
// when complete), a shell command's standard input (QEMU's `exec:`; it must
// exit with status 0), or a connected socket (live migration).
class SnapshotSink {
public:
    static ErrorOr<std::unique_ptr<SnapshotSink>> file(const std::string& path);
    static ErrorOr<std::unique_ptr<SnapshotSink>> exec(const std::string& command);
    // Takes ownership of the socket.
    static ErrorOr<std::unique_ptr<SnapshotSink>> socket(int fd, const std::string& name);
    ~SnapshotSink();
    std::FILE* stream() { return m_file; }
    // complete: the stream is whole; commit it (rename the file, check the
    // command's status). Otherwise abandon it (the temporary file goes).
    ErrorOr<void> close(bool complete);

private:
    enum class Kind : u8 { File, Exec, Socket };
    SnapshotSink(Kind kind, std::FILE* file, std::string name) : m_kind(kind), m_file(file), m_name(std::move(name)) {}
    Kind m_kind;
    std::FILE* m_file;
    std::string m_name; // the path, the command or the peer
};

// Writes the machine as it is now. Call it between runs (Machine::run has
// returned).
ErrorOr<void> save_snapshot(Machine& machine, std::FILE* out);
ErrorOr<void> save_snapshot_file(Machine& machine, const std::string& path);
// Through a shell command that reads the snapshot on its standard input
// (QEMU's `exec:` migration); it must exit with status 0.
ErrorOr<void> save_snapshot_exec(Machine& machine, const std::string& command);

// Loads a snapshot into a machine made with the same configuration that has
// not run yet. A snapshot of another format, build or configuration, or a
// damaged one, is refused with one line saying why.
ErrorOr<void> load_snapshot(Machine& machine, std::FILE* in);
ErrorOr<void> load_snapshot_file(Machine& machine, const std::string& path);
// From a shell command that writes the snapshot on its standard output.
ErrorOr<void> load_snapshot_exec(Machine& machine, const std::string& command);
// From a connected socket (live migration's target); closes it.
ErrorOr<void> load_snapshot_socket(Machine& machine, int fd);
