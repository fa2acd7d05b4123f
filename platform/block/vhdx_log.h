// The VHDX log ([MS-VHDX] 2.3): a circular write-ahead log of 4 KiB sector
// updates to the file's metadata. Reading finds the active sequence (the
// valid run of entries with the highest sequence number, 2.3.3) and turns
// it into the list of updates to redo; writing appends entries at the head.
//
// How an image uses it (docs/storage.md "VHDX"): every metadata update is
// one entry, written and flushed before the sectors it names are written in
// place, so a crash at any point leaves either the old metadata or a log
// that redoes the new. The tail stays at the oldest entry whose in-place
// writes are not yet known to be on the disk; a flush of the file moves it
// to the head.
#pragma once

#include "platform/block/host_file.h"
#include "platform/block/vhdx_format.h"

#include <vector>

namespace vhdx {

struct LogRegion {
    u64 file_offset = 0; // a multiple of 1 MiB
    u32 length = 0;      // a multiple of 1 MiB, at most MAX_LOG_LENGTH
};

// One update a replay redoes, in log order.
struct LogUpdate {
    u64 file_offset = 0;
    u64 length = LOG_SECTOR_SIZE; // a zero descriptor's length, 4 KiB for data
    bool zero = false;
    // A data update: where its data sector lies in the file, and the bytes
    // the descriptor carries in place of the sector's signature and sequence.
    u64 data_sector = 0;
    u64 leading_bytes = 0;
    u32 trailing_bytes = 0;
};

struct LogReplay {
    std::vector<LogUpdate> updates; // empty: nothing to replay
    u64 last_file_offset = 0;       // the file is at least this long afterwards
    u64 last_sequence = 0;
    u32 entries = 0;
    bool empty() const { return entries == 0; }
};

// Updates one replay may hold before it is refused as Unsupported: keeps a
// hostile log (a 1 GiB log of zero descriptors) from taking gigabytes.
constexpr size_t MAX_REPLAY_UPDATES = size_t{1} << 20;

// Finds the active sequence of the log tagged `log_guid`. No valid entry is
// an empty replay (the log was never written or its entries were torn);
// Corrupt when the sequence asks for a file shorter than what it says was
// flushed (the file was truncated).
BlockResult<LogReplay> find_active_sequence(const HostFile& file, const LogRegion& region,
                                            const Guid& log_guid);

// Redoes the updates in place, extends the file to last_file_offset and
// flushes it.
BlockStatus apply_replay(HostFile& file, const LogReplay& replay);

// Reads the file as it will be after the replay, without writing it: how a
// read-only open sees an image with a log to replay.
BlockStatus read_replayed(const HostFile& file, const LogReplay& replay, u64 offset,
                          std::span<u8> out);

class LogWriter {
public:
    struct Page {
        u64 file_offset = 0; // a multiple of 4 KiB, outside the header area and the log
        std::span<const u8> data; // 4 KiB
    };

    LogWriter() = default;
    LogWriter(LogRegion region, Guid log_guid) : m_region(region), m_guid(log_guid) {}

    const Guid& guid() const { return m_guid; }
    // Whether an entry of `pages` fits in the free part of the log now
    // (write_entry refuses one that does not). would_lap() implies it.
    bool fits(size_t pages) const;
    // Whether an entry of `pages` fits in the log at all.
    bool could_fit(size_t pages) const;
    // Whether an entry of `pages` would overwrite a sector an earlier entry
    // under this log GUID wrote. Before it does, the caller flushes the file
    // and starts a new log GUID: QEMU chains entries by sequence number alone
    // and refuses a log whose chain runs all the way round (EINVAL), which is
    // what a lap under one GUID leaves behind after a crash.
    bool would_lap(size_t pages) const;
    // Writes one entry holding `pages` at the head and flushes the file.
    // `file_size` is the file's size now, `flushed_size` what of it is known
    // to be on the disk (the entry's LastFileOffset and FlushedFileOffset).
    BlockStatus write_entry(HostFile& file, std::span<const Page> pages, u64 file_size,
                            u64 flushed_size);
    // Every entry written so far has been applied and the file flushed since:
    // their space may be reused, and a replay need not redo them.
    void all_applied();
    u64 sequence() const { return m_sequence; }

private:
    static u32 entry_length(size_t pages);

    LogRegion m_region;
    Guid m_guid;
    u32 m_head = 0;    // where the next entry goes
    u32 m_tail = 0;    // the oldest entry not known to be applied
    u32 m_used = 0;    // bytes from tail to head
    u64 m_written = 0; // bytes written under this log GUID
    u64 m_sequence = 0; // of the last entry written
};

} // namespace vhdx
