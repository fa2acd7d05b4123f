// The recording file (docs/replay.md "File format"): a header that names the
// format, the build, the machine's command line and the files it read, then
// one zlib stream of records: inputs and sync records keyed by the host-poll
// point where they happened, and last the run's end. Written as PATH.tmp
// (flushed at every sync record, so a killed recording leaves a readable
// prefix there) and renamed when the run has ended.
#pragma once

#include "mmu/base/error_or.h"
#include "mmu/base/types.h"
#include "platform/machine/machine_input.h"

#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace replay {

// 2: Kind::Medium inputs (QMP tray and medium commands), which version 1
// readers do not know. A version 1 file holds none and reads as ever.
// 3: a finished recording ends with a trailer after the event stream (a
// marker, the stream's CRC-32 and length), so that damage near its end is
// not taken for a killed recording's missing tail (zlib alone cannot tell
// the two apart) and damage Adler-32 misses is caught.
constexpr u32 FORMAT_VERSION = 3;
constexpr u32 OLDEST_FORMAT_VERSION = 1;

// A file the recorded machine read (kernel, initrd, firmware, a read-only
// disk): a replay refuses to run when it changed.
struct FileIdentity {
    std::string role; // "kernel", "initrd", "bios", "drive0", ...
    std::string path;
    u64 size = 0;
    u64 hash = 0; // content_hash of the whole file
};

struct RecordingHeader {
    std::string build; // build_identity() of the recording viridian
    // The command line that made the machine, without --record: the replay
    // parses it again, so the machine is configured exactly as recorded.
    std::vector<std::string> args;
    std::vector<FileIdentity> files;
    // Whether halted vCPUs waited for host input (MachineConfig::input_can_wake).
    bool input_can_wake = false;
    u64 sync_interval = 0; // instructions between sync records
    u64 rng_seed = 0;      // RDRAND/RDSEED's generator seed (informational: fixed)
};

// One vCPU in a sync record.
struct VcpuSync {
    u64 retired = 0;
    u64 state_hash = 0; // hash_cpu_state
};

struct Record {
    enum class Type : u8 { Input = 1, Sync = 2, End = 3 };
    Type type = Type::Input;
    // The point: the host-poll sequence number (counted across the machines
    // of every reboot) and the machine's retired instructions there.
    u64 poll = 0;
    u64 retired = 0;
    HostInput input;              // Input
    std::vector<VcpuSync> vcpus;  // Sync
    u64 memory_hash = 0;          // Sync: the pages written since the last one
    u64 dirty_pages = 0;          // Sync: how many
    u8 end_kind = 0;              // End: RunOutcome::Kind
    i32 end_status = 0;           // End: the exit status
    u64 total_retired = 0;        // End: every machine of the run together
};

struct Recording {
    RecordingHeader header;
    std::vector<Record> records; // the last one is the End
    // The file was cut short (a killed recording's PATH.tmp): the records
    // are its prefix up to the last sync record, and the End is a host stop
    // there that the file does not hold (its total count is unknown).
    bool cut_short = false;
};

// The build a recording must be replayed by (snapshot.h build_identity).
std::string recording_build_identity();
// A 64-bit hash of bytes (not cryptographic; for change and divergence).
u64 content_hash(std::span<const u8> bytes, u64 seed = 0);
ErrorOr<FileIdentity> identify_file(const std::string& role, const std::string& path);

// The whole file, checked: magic, version, build, header checksum, the
// stream's integrity (zlib's Adler-32) and that it ends with an End record.
// Every refusal is one line.
ErrorOr<Recording> parse_recording(std::span<const u8> bytes);
ErrorOr<Recording> read_recording(const std::string& path);
// The bytes parse_recording reads (tests, the fuzz seeds).
std::vector<u8> serialize_recording(const Recording& recording);

class RecordingWriter {
public:
    // Creates PATH.tmp and writes the header.
    static ErrorOr<std::unique_ptr<RecordingWriter>> create(const std::string& path,
                                                            const RecordingHeader& header);
    ~RecordingWriter();
    RecordingWriter(const RecordingWriter&) = delete;
    RecordingWriter& operator=(const RecordingWriter&) = delete;

    ErrorOr<void> append(const Record& record);
    // What is written so far reaches the file (a readable prefix).
    ErrorOr<void> flush();
    // Appends `end` (an End record), ends the stream and renames PATH.tmp to PATH.
    ErrorOr<void> finish(const Record& end);
    u64 bytes_written() const;

private:
    struct Impl;
    explicit RecordingWriter(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace replay
