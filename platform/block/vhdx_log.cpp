#include "platform/block/vhdx_log.h"

#include "platform/block/crc32c.h"

#include <algorithm>
#include <array>

namespace vhdx {

namespace {

constexpr u32 SECTOR = static_cast<u32>(LOG_SECTOR_SIZE);
// 2.3.1.2/2.3.1.3: updates never touch the file identifier or the headers
// (those change by the two-header update of 2.2.2.1).
constexpr u64 LOGGABLE_START = REGION_TABLE_OFFSETS[0];
// Not in the spec: no update reaches past 256 TiB (a VHDX holds at most
// 64 TiB of payload), so a hostile descriptor cannot make a huge sparse file.
constexpr u64 MAX_UPDATE_END = 256 * TiB;

// Lengths within the circular log ([tail, head) taken as full when equal).
u32 circular_length(const LogRegion& region, u32 from, u32 to)
{
    if (to > from)
        return to - from;
    if (to < from)
        return to + region.length - from;
    return region.length;
}

u32 circular_add(const LogRegion& region, u32 position, u32 length)
{
    u64 sum = u64{position} + length;
    return static_cast<u32>(sum % region.length);
}

bool within_sequence(const LogRegion& region, u32 tail, u32 head, u32 position)
{
    return circular_length(region, position, head) <= circular_length(region, tail, head);
}

u64 sector_file_offset(const LogRegion& region, u32 entry, u32 offset_in_entry)
{
    return region.file_offset + circular_add(region, entry, offset_in_entry);
}

u32 descriptor_area(u64 descriptor_count)
{
    u64 bytes = LogEntryHeader::SIZE + descriptor_count * LogDescriptor::SIZE;
    return static_cast<u32>((bytes + SECTOR - 1) / SECTOR * SECTOR);
}

bool overlaps_log(const LogRegion& region, u64 offset, u64 length)
{
    return offset < region.file_offset + region.length && offset + length > region.file_offset;
}

struct Entry {
    u32 position = 0;
    u32 length = 0;
    u32 tail = 0;
    u64 sequence = 0;
    u64 flushed_file_offset = 0;
    u64 last_file_offset = 0;
};

// Validates the entry at `position` (2.3.1) and appends its updates. False
// when it is not a valid entry; an I/O error is returned as such.
BlockResult<bool> read_entry(const HostFile& file, const LogRegion& region, const Guid& guid,
                             u32 position, Entry& entry, std::vector<LogUpdate>& updates)
{
    std::array<u8, SECTOR> sector;
    TRY(file.read_at(sector_file_offset(region, position, 0), sector));
    auto header = LogEntryHeader::decode(std::span(sector).first<LogEntryHeader::SIZE>());
    if (header.signature != LOG_ENTRY_SIGNATURE || header.log_guid != guid ||
        header.sequence_number == 0)
        return false;
    if (header.entry_length % SECTOR != 0 || header.entry_length < SECTOR ||
        header.entry_length >= region.length || header.tail % SECTOR != 0 ||
        header.tail >= region.length)
        return false;
    if (header.descriptor_count > (header.entry_length - LogEntryHeader::SIZE) / LogDescriptor::SIZE)
        return false;
    const u32 descriptors_end = descriptor_area(header.descriptor_count);
    if (descriptors_end > header.entry_length)
        return false;
    if (updates.size() + header.descriptor_count > MAX_REPLAY_UPDATES)
        return false;

    const size_t first_update = updates.size();
    u32 crc = checksum_with_hole(sector, 4);
    u32 data_sectors = 0;
    for (u32 i = 0; i < header.descriptor_count; ++i) {
        u32 at = static_cast<u32>(LogEntryHeader::SIZE + u64{i} * LogDescriptor::SIZE);
        if (at % SECTOR == 0) {
            TRY(file.read_at(sector_file_offset(region, position, at), sector));
            crc = crc32c_append(crc, sector);
        }
        auto descriptor =
            LogDescriptor::decode(std::span(sector).subspan(at % SECTOR).first<LogDescriptor::SIZE>());
        if (descriptor.sequence_number != header.sequence_number ||
            descriptor.file_offset % SECTOR != 0 || descriptor.file_offset < LOGGABLE_START)
            return false;
        LogUpdate update;
        update.file_offset = descriptor.file_offset;
        if (descriptor.signature == LOG_DATA_DESCRIPTOR_SIGNATURE) {
            update.leading_bytes = descriptor.leading_bytes;
            update.trailing_bytes = descriptor.trailing_bytes;
            update.data_sector =
                sector_file_offset(region, position, descriptors_end + data_sectors * SECTOR);
            ++data_sectors;
        } else if (descriptor.signature == LOG_ZERO_DESCRIPTOR_SIGNATURE) {
            update.zero = true;
            update.length = descriptor.leading_bytes;
            if (update.length == 0 || update.length % SECTOR != 0)
                return false;
        } else {
            return false;
        }
        if (update.length > MAX_UPDATE_END || update.file_offset > MAX_UPDATE_END - update.length ||
            overlaps_log(region, update.file_offset, update.length))
            return false;
        updates.push_back(update);
    }
    if (u64{descriptors_end} + u64{data_sectors} * SECTOR != header.entry_length)
        return false;
    // Descriptors never straddle a sector, so the loop above read and
    // summed every sector of the descriptor area.
    for (u32 i = 0; i < data_sectors; ++i) {
        TRY(file.read_at(sector_file_offset(region, position, descriptors_end + i * SECTOR), sector));
        crc = crc32c_append(crc, sector);
        if (load32(&sector[0]) != LOG_DATA_SECTOR_SIGNATURE ||
            load32(&sector[4]) != static_cast<u32>(header.sequence_number >> 32) ||
            load32(&sector[SECTOR - 4]) != static_cast<u32>(header.sequence_number))
            return false;
    }
    if (crc != header.checksum) {
        updates.resize(first_update);
        return false;
    }
    entry = Entry{position,
                  header.entry_length,
                  header.tail,
                  header.sequence_number,
                  header.flushed_file_offset,
                  header.last_file_offset};
    return true;
}

struct Sequence {
    std::vector<Entry> entries; // from the sequence's tail to its head
    std::vector<LogUpdate> updates;
    std::vector<size_t> first_update; // per entry
};

// The longest valid sequence whose first entry is at `start` (2.3.3): each
// entry's sequence number one more than the last, within the free space the
// earlier ones leave, its tail inside the run. Entries before the head
// entry's tail are dropped (they were applied already).
BlockResult<Sequence> sequence_from(const HostFile& file, const LogRegion& region,
                                    const Guid& guid, u32 start)
{
    Sequence sequence;
    u32 head = start;
    u32 tail = start;
    for (;;) {
        Entry entry;
        size_t before = sequence.updates.size();
        bool valid = TRY(read_entry(file, region, guid, head, entry, sequence.updates));
        if (valid && !sequence.entries.empty()) {
            u32 new_head = circular_add(region, head, entry.length);
            valid = entry.sequence == sequence.entries.back().sequence + 1 &&
                    entry.length <= region.length - circular_length(region, tail, head) &&
                    within_sequence(region, tail, new_head, entry.tail);
        }
        if (!valid) {
            sequence.updates.resize(before);
            break;
        }
        sequence.entries.push_back(entry);
        sequence.first_update.push_back(before);
        tail = entry.tail;
        head = circular_add(region, head, entry.length);
        if (head == start)
            break; // went all the way round
    }
    if (sequence.entries.empty())
        return sequence;
    // The head entry's tail names where the active sequence starts; it must
    // be one of the entries read.
    u32 active_tail = sequence.entries.back().tail;
    auto first = std::find_if(sequence.entries.begin(), sequence.entries.end(),
                              [&](const Entry& e) { return e.position == active_tail; });
    if (first == sequence.entries.end())
        return Sequence{};
    size_t index = static_cast<size_t>(first - sequence.entries.begin());
    sequence.updates.erase(sequence.updates.begin(),
                           sequence.updates.begin() +
                               static_cast<std::ptrdiff_t>(sequence.first_update[index]));
    sequence.entries.erase(sequence.entries.begin(), first);
    return sequence;
}

} // namespace

BlockResult<LogReplay> find_active_sequence(const HostFile& file, const LogRegion& region,
                                            const Guid& log_guid)
{
    LogReplay best;
    if (region.length == 0 || region.length % SECTOR != 0)
        return best;
    u32 start = 0;
    while (start < region.length) {
        Sequence sequence = TRY(sequence_from(file, region, log_guid, start));
        if (sequence.entries.empty()) {
            start += SECTOR;
            continue;
        }
        const Entry& last = sequence.entries.back();
        if (best.empty() || last.sequence > best.last_sequence) {
            best.updates = std::move(sequence.updates);
            best.last_sequence = last.sequence;
            best.last_file_offset = last.last_file_offset;
            best.entries = static_cast<u32>(sequence.entries.size());
            // 2.3.3: a file shorter than what the log says was flushed lost
            // data that the log cannot bring back.
            u64 size = TRY(file.size());
            if (last.flushed_file_offset > size)
                return file_error(BlockErrorKind::Corrupt, file.path(),
                                  "the log says the file was flushed at " +
                                      std::to_string(last.flushed_file_offset) +
                                      " bytes but it is " + std::to_string(size) +
                                      " (truncated)");
            if (best.last_file_offset > MAX_UPDATE_END)
                return file_error(BlockErrorKind::Corrupt, file.path(),
                                  "the log's last file offset is out of range");
        }
        u32 next = sequence.entries.back().position + sequence.entries.back().length;
        if (next <= start || next >= region.length)
            break; // the run wrapped round the end of the log: everything was seen
        start = next;
    }
    return best;
}

BlockStatus apply_replay(HostFile& file, const LogReplay& replay)
{
    std::array<u8, SECTOR> sector;
    for (const LogUpdate& update : replay.updates) {
        if (update.zero) {
            TRY(file.zero_range(update.file_offset, update.length));
            continue;
        }
        TRY(file.read_at(update.data_sector, sector));
        store64(&sector[0], update.leading_bytes);
        store32(&sector[SECTOR - 4], update.trailing_bytes);
        TRY(file.write_at(update.file_offset, sector));
    }
    u64 size = TRY(file.size());
    if (size < replay.last_file_offset)
        TRY(file.set_size(replay.last_file_offset));
    return file.flush();
}

BlockStatus read_replayed(const HostFile& file, const LogReplay& replay, u64 offset,
                          std::span<u8> out)
{
    TRY(file.read_at_or_zero(offset, out));
    std::array<u8, SECTOR> sector;
    const u64 end = offset + out.size();
    for (const LogUpdate& update : replay.updates) {
        u64 from = std::max(offset, update.file_offset);
        u64 to = std::min(end, update.file_offset + update.length);
        if (from >= to)
            continue;
        auto target = out.subspan(from - offset, to - from);
        if (update.zero) {
            std::fill(target.begin(), target.end(), u8{0});
            continue;
        }
        TRY(file.read_at(update.data_sector, sector));
        store64(&sector[0], update.leading_bytes);
        store32(&sector[SECTOR - 4], update.trailing_bytes);
        std::copy_n(sector.begin() + static_cast<std::ptrdiff_t>(from - update.file_offset),
                    target.size(), target.begin());
    }
    return {};
}

u32 LogWriter::entry_length(size_t pages)
{
    return descriptor_area(pages) + static_cast<u32>(pages) * SECTOR;
}

bool LogWriter::could_fit(size_t pages) const
{
    // One sector always stays free, so a full log is never mistaken for an
    // empty one (head == tail).
    return u64{entry_length(pages)} + SECTOR <= m_region.length;
}

bool LogWriter::would_lap(size_t pages) const
{
    return m_written + entry_length(pages) + SECTOR > m_region.length;
}

bool LogWriter::fits(size_t pages) const
{
    return u64{entry_length(pages)} + SECTOR + m_used <= m_region.length;
}

BlockStatus LogWriter::write_entry(HostFile& file, std::span<const Page> pages, u64 file_size,
                                   u64 flushed_size)
{
    if (!fits(pages.size()))
        return block_error(BlockErrorKind::NoSpace, "VHDX log entry does not fit in the log");
    const u64 sequence = m_sequence + 1;
    const u32 length = entry_length(pages.size());
    const u32 descriptors_end = descriptor_area(pages.size());
    std::vector<u8> entry(length, 0);

    LogEntryHeader header;
    header.entry_length = length;
    header.tail = m_used == 0 ? m_head : m_tail;
    header.sequence_number = sequence;
    header.descriptor_count = static_cast<u32>(pages.size());
    header.log_guid = m_guid;
    header.flushed_file_offset = flushed_size;
    header.last_file_offset = file_size;
    for (size_t i = 0; i < pages.size(); ++i) {
        const Page& page = pages[i];
        LogDescriptor descriptor;
        descriptor.signature = LOG_DATA_DESCRIPTOR_SIGNATURE;
        descriptor.leading_bytes = load64(&page.data[0]);
        descriptor.trailing_bytes = load32(&page.data[SECTOR - 4]);
        descriptor.file_offset = page.file_offset;
        descriptor.sequence_number = sequence;
        descriptor.encode(std::span(entry).subspan(LogEntryHeader::SIZE + i * LogDescriptor::SIZE)
                              .first<LogDescriptor::SIZE>());
        u8* data = &entry[descriptors_end + i * SECTOR];
        store32(data, LOG_DATA_SECTOR_SIGNATURE);
        store32(data + 4, static_cast<u32>(sequence >> 32));
        std::copy_n(page.data.begin() + 8, LOG_DATA_SECTOR_PAYLOAD, data + 8);
        store32(data + SECTOR - 4, static_cast<u32>(sequence));
    }
    header.encode(std::span(entry).first<LogEntryHeader::SIZE>());
    store32(&entry[4], checksum_with_hole(entry, 4));

    // Sector by sector: an entry may wrap round the end of the log.
    for (u32 at = 0; at < length;) {
        u32 position = circular_add(m_region, m_head, at);
        u32 run = std::min(length - at, m_region.length - position);
        TRY(file.write_at(m_region.file_offset + position,
                          std::span(entry).subspan(at, run)));
        at += run;
    }
    TRY(file.flush());
    if (m_used == 0)
        m_tail = m_head;
    m_head = circular_add(m_region, m_head, length);
    m_used += length;
    m_written += length;
    m_sequence = sequence;
    return {};
}

void LogWriter::all_applied()
{
    m_tail = m_head;
    m_used = 0;
}

} // namespace vhdx
