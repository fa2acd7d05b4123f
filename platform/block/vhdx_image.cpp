#include "platform/block/vhdx_image.h"

#include "mmu/base/utf16.h"
#include "platform/block/vhdx_format.h"
#include "platform/block/vhdx_log.h"

#include <algorithm>
#include <filesystem>
#include <optional>

using namespace vhdx;

namespace {

u64 round_up(u64 value, u64 alignment)
{
    return (value + alignment - 1) / alignment * alignment;
}

bool is_power_of_two(u64 value)
{
    return value != 0 && (value & (value - 1)) == 0;
}

BlockError corrupt(const HostFile& file, const std::string& what)
{
    return file_error(BlockErrorKind::Corrupt, file.path(), what);
}

// The geometry the metadata describes (2.5, 2.6.2).
struct Geometry {
    u64 virtual_size = 0;
    u64 block_size = 0;
    u32 logical_sector_size = 512;
    u32 physical_sector_size = 4096;
    bool leave_blocks_allocated = false;
    bool has_parent = false;
    u64 chunk_ratio = 0;
    u64 payload_blocks = 0;
    u64 bitmap_blocks = 0;
    u64 bat_entries = 0;

    void derive()
    {
        chunk_ratio = vhdx::chunk_ratio(logical_sector_size, block_size);
        payload_blocks = (virtual_size + block_size - 1) / block_size;
        bitmap_blocks = (payload_blocks + chunk_ratio - 1) / chunk_ratio;
        // 2.5: a sector bitmap entry follows every chunk_ratio payload
        // entries; a disk without a parent needs none after its last chunk.
        if (has_parent)
            bat_entries = bitmap_blocks * (chunk_ratio + 1);
        else
            bat_entries = payload_blocks == 0 ? 0 : payload_blocks + (payload_blocks - 1) / chunk_ratio;
    }
    u64 payload_index(u64 block) const { return block + block / chunk_ratio; }
    u64 bitmap_index(u64 chunk) const { return chunk * (chunk_ratio + 1) + chunk_ratio; }
    bool is_bitmap_index(u64 index) const { return index % (chunk_ratio + 1) == chunk_ratio; }
    u64 sectors_per_block() const { return block_size / logical_sector_size; }
};

// 2.6.2.6.1: the keys of a VHDX parent locator.
struct ParentLocator {
    std::optional<Guid> linkage;  // parent_linkage: the parent's DataWriteGuid
    std::optional<Guid> linkage2; // parent_linkage2: accepted too
    std::string relative_path;
    std::string volume_path;
    std::string absolute_win32_path;
};



// Guards against a parent locator that leads back to the image itself
// (directly or round a loop) when images are opened read-only.
constexpr int MAX_CHAIN_DEPTH = 32;
thread_local int t_chain_depth = 0;

class VhdxImage final : public BlockImage {
public:
    static BlockResult<std::unique_ptr<BlockImage>> open(HostFile file, const OpenOptions& options);
    ~VhdxImage() override;

    const ImageInfo& info() const override { return m_info; }
    BlockStatus read(u64 offset, std::span<u8> out) override;
    BlockStatus write(u64 offset, std::span<const u8> data) override;
    BlockStatus flush() override;
    BlockStatus discard(u64 offset, u64 length) override;
    BlockResult<Extent> map(u64 offset, u64 max_length) override;
    BlockResult<CheckReport> check(bool repair) override;

    const Guid& data_write_guid() const { return m_header.data_write_guid; }

private:
    explicit VhdxImage(HostFile file) : m_file(std::move(file)) {}

    BlockStatus load(const OpenOptions& options);
    BlockStatus load_headers();
    BlockStatus load_log(bool read_only);
    BlockStatus load_regions();
    BlockStatus load_metadata();
    BlockStatus load_bat();
    std::vector<std::string> validate_bat() const;
    BlockStatus open_parent(const OpenOptions& options);
    std::vector<std::string> parent_candidates() const;

    // File reads see the log's updates when a read-only open could not
    // replay it.
    BlockStatus read_file(u64 offset, std::span<u8> out) const;
    u64 effective_file_size() const;

    BlockStatus update_headers(const Header& next);
    BlockStatus begin_writes(bool user_data);
    BlockStatus log_pages(std::span<const LogWriter::Page> pages, bool flush_data_first);
    BlockStatus start_new_log();
    BlockResult<std::vector<u8>> bat_page(u64 index) const;
    BlockResult<u64> allocate(u64 length);

    BlockStatus read_block(u64 block, u64 in_block, std::span<u8> out);
    BlockStatus read_parent(u64 offset, std::span<u8> out);
    BlockStatus write_block(u64 block, u64 in_block, std::span<const u8> data);
    BlockResult<std::vector<u8>> read_bitmap(u64 block, u64 in_block, u64 length, u64& first_bit);
    BlockStatus set_bitmap_pages(u64 block, u64 in_block, u64 length, u64 bitmap_offset,
                                 std::vector<std::vector<u8>>& pages,
                                 std::vector<u64>& page_offsets);

    HostFile m_file;
    ImageInfo m_info;
    Header m_header;
    int m_current_header = 0; // 0 or 1: where m_header lies
    bool m_header_copies_valid[2] = {false, false};
    bool m_region_copies_valid[2] = {false, false};
    LogRegion m_log_region;
    LogReplay m_pending; // a read-only open's log, not applied
    bool m_replayed_at_open = false;
    u64 m_bat_offset = 0;
    u64 m_bat_length = 0;
    u64 m_metadata_offset = 0;
    u64 m_metadata_length = 0;
    std::vector<std::pair<u64, u64>> m_other_regions;
    Geometry m_geometry;
    ParentLocator m_locator;
    std::vector<u64> m_bat;
    std::unique_ptr<BlockImage> m_parent;
    LogWriter m_log;
    bool m_session_started = false; // FileWriteGuid and LogGuid set
    bool m_data_guid_changed = false;
    u64 m_file_size = 0;
    u64 m_flushed_size = 0;
};

// --- open ------------------------------------------------------------------

BlockResult<std::unique_ptr<BlockImage>> VhdxImage::open(HostFile file, const OpenOptions& options)
{
    std::unique_ptr<VhdxImage> image(new VhdxImage(std::move(file)));
    TRY(image->load(options));
    return std::unique_ptr<BlockImage>(std::move(image));
}

BlockStatus VhdxImage::load(const OpenOptions& options)
{
    m_file_size = TRY(m_file.size());
    m_flushed_size = m_file_size;
    if (m_file_size < HEADER_AREA_SIZE)
        return corrupt(m_file, "too short for a VHDX file (" + std::to_string(m_file_size) +
                                   " bytes)");
    std::array<u8, 8> signature;
    TRY(m_file.read_at(FILE_IDENTIFIER_OFFSET, signature));
    if (load64(signature.data()) != FILE_SIGNATURE)
        return corrupt(m_file, "not a VHDX file (no \"vhdxfile\" identifier)");
    TRY(load_headers());
    TRY(load_log(options.read_only));
    m_file_size = TRY(m_file.size());
    m_flushed_size = m_file_size;
    TRY(load_regions());
    TRY(load_metadata());
    TRY(load_bat());

    m_info.format = "vhdx";
    m_info.subformat = m_geometry.has_parent               ? "differencing"
                       : m_geometry.leave_blocks_allocated ? "fixed"
                                                           : "dynamic";
    m_info.virtual_size = m_geometry.virtual_size;
    m_info.logical_sector_size = m_geometry.logical_sector_size;
    m_info.physical_sector_size = m_geometry.physical_sector_size;
    m_info.block_size = m_geometry.leave_blocks_allocated ? 0 : m_geometry.block_size;
    m_info.read_only = options.read_only;
    if (m_geometry.has_parent && !options.without_parent)
        TRY(open_parent(options));
    else if (m_geometry.has_parent)
        m_info.parent = first_regular_file(parent_candidates());
    return {};
}

BlockStatus VhdxImage::load_headers()
{
    // 2.2.2: the valid header with the higher sequence number is current.
    std::optional<Header> best;
    for (int slot = 0; slot < 2; ++slot) {
        std::vector<u8> bytes(HEADER_SIZE);
        TRY(m_file.read_at(HEADER_OFFSETS[slot], bytes));
        Header header = Header::decode(std::span(bytes).first<Header::SIZE>());
        bool valid = header.signature == HEADER_SIGNATURE &&
                     header.checksum == checksum_with_hole(bytes, 4);
        m_header_copies_valid[slot] = valid;
        if (!valid)
            continue;
        if (!best || header.sequence_number > best->sequence_number) {
            best = header;
            m_current_header = slot;
        }
    }
    if (!best)
        return corrupt(m_file, "neither VHDX header is valid");
    m_header = *best;
    if (m_header.version != 1)
        return file_error(BlockErrorKind::Unsupported, m_file.path(),
                          "VHDX version " + std::to_string(m_header.version) + " (only 1)");
    if (m_header.log_version != 0)
        return file_error(BlockErrorKind::Unsupported, m_file.path(),
                          "VHDX log version " + std::to_string(m_header.log_version) + " (only 0)");
    // 2.2.2: the log lies 1 MiB-aligned after the header area, inside the file.
    const u64 log_offset = m_header.log_offset;
    const u64 log_length = m_header.log_length;
    if (log_length < REGION_ALIGNMENT || log_length % REGION_ALIGNMENT != 0 ||
        log_length > MAX_LOG_LENGTH || log_offset < HEADER_AREA_SIZE ||
        log_offset % REGION_ALIGNMENT != 0 || log_offset > m_file_size ||
        log_length > m_file_size - log_offset)
        return corrupt(m_file, "the log (" + std::to_string(log_length) + " bytes at " +
                                   std::to_string(log_offset) +
                                   ") is misaligned or outside the file");
    m_log_region = LogRegion{log_offset, static_cast<u32>(log_length)};
    return {};
}

BlockStatus VhdxImage::load_log(bool read_only)
{
    if (m_header.log_guid.is_zero())
        return {};
    LogReplay replay = TRY(find_active_sequence(m_file, m_log_region, m_header.log_guid));
    if (read_only) {
        // Chosen over QEMU's refusal: a read-only open (a parent, viridian-img
        // info) sees the image as the replay would leave it, without writing.
        m_pending = std::move(replay);
        return {};
    }
    if (!replay.empty()) {
        TRY(apply_replay(m_file, replay));
        m_replayed_at_open = true;
    }
    // 2.3.3: once replayed, the log is emptied by clearing LogGuid.
    Header next = m_header;
    next.log_guid = Guid{};
    return update_headers(next);
}

u64 VhdxImage::effective_file_size() const
{
    return std::max(m_file_size, m_pending.empty() ? 0 : m_pending.last_file_offset);
}

BlockStatus VhdxImage::read_file(u64 offset, std::span<u8> out) const
{
    if (offset > effective_file_size() || out.size() > effective_file_size() - offset)
        return corrupt(m_file, "read of " + std::to_string(out.size()) + " bytes at " +
                                   std::to_string(offset) + " runs past the end of the file");
    if (!m_pending.empty())
        return read_replayed(m_file, m_pending, offset, out);
    return m_file.read_at(offset, out);
}

BlockStatus VhdxImage::load_regions()
{
    // 2.2.3: the first region table copy that is valid is used.
    std::vector<u8> table(REGION_TABLE_SIZE);
    std::optional<std::vector<u8>> chosen;
    for (int copy = 0; copy < 2; ++copy) {
        TRY(read_file(REGION_TABLE_OFFSETS[copy], table));
        bool valid = load32(&table[0]) == REGION_SIGNATURE &&
                     load32(&table[4]) == checksum_with_hole(table, 4) &&
                     load32(&table[8]) <= RegionTableHeader::MAX_ENTRIES;
        m_region_copies_valid[copy] = valid;
        if (valid && !chosen)
            chosen = table;
    }
    if (!chosen)
        return corrupt(m_file, "neither VHDX region table is valid");
    const u32 count = load32(&(*chosen)[8]);
    bool have_bat = false, have_metadata = false;
    std::vector<Guid> seen;
    for (u32 i = 0; i < count; ++i) {
        auto entry = RegionTableEntry::decode(
            std::span(*chosen).subspan(RegionTableHeader::SIZE + i * RegionTableEntry::SIZE)
                .first<RegionTableEntry::SIZE>());
        if (std::find(seen.begin(), seen.end(), entry.guid) != seen.end())
            return corrupt(m_file, "region " + entry.guid.to_string() + " is listed twice");
        seen.push_back(entry.guid);
        if (entry.file_offset % REGION_ALIGNMENT != 0 || entry.length % REGION_ALIGNMENT != 0 ||
            entry.length == 0 || entry.file_offset < HEADER_AREA_SIZE ||
            entry.file_offset > effective_file_size() ||
            entry.length > effective_file_size() - entry.file_offset)
            return corrupt(m_file, "region " + entry.guid.to_string() +
                                       " is misaligned or outside the file");
        if (entry.guid == BAT_REGION) {
            m_bat_offset = entry.file_offset;
            m_bat_length = entry.length;
            have_bat = true;
        } else if (entry.guid == METADATA_REGION) {
            m_metadata_offset = entry.file_offset;
            m_metadata_length = entry.length;
            have_metadata = true;
        } else if (entry.flags & RegionTableEntry::REQUIRED) {
            return file_error(BlockErrorKind::Unsupported, m_file.path(),
                              "unknown required VHDX region " + entry.guid.to_string());
        } else {
            m_other_regions.emplace_back(entry.file_offset, entry.length);
        }
    }
    if (!have_bat || !have_metadata)
        return corrupt(m_file, have_bat ? "no metadata region" : "no BAT region");
    // The regions, the log and the header area do not overlap.
    std::vector<std::pair<u64, u64>> spans = m_other_regions;
    spans.emplace_back(0, HEADER_AREA_SIZE);
    spans.emplace_back(m_log_region.file_offset, m_log_region.length);
    spans.emplace_back(m_bat_offset, m_bat_length);
    spans.emplace_back(m_metadata_offset, m_metadata_length);
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i)
        if (spans[i].first < spans[i - 1].first + spans[i - 1].second)
            return corrupt(m_file, "the VHDX regions and the log overlap");
    return {};
}

BlockStatus VhdxImage::load_metadata()
{
    if (m_metadata_length < METADATA_TABLE_SIZE)
        return corrupt(m_file, "the metadata region is too small");
    std::vector<u8> table(METADATA_TABLE_SIZE);
    TRY(read_file(m_metadata_offset, table));
    if (load64(&table[0]) != METADATA_SIGNATURE)
        return corrupt(m_file, "no metadata table signature");
    const u16 count = load16(&table[10]);
    if (count > MetadataTableHeader::MAX_ENTRIES)
        return corrupt(m_file, "too many metadata entries");

    std::optional<std::vector<u8>> file_parameters, disk_size, logical, physical, locator;
    std::vector<Guid> seen;
    for (u16 i = 0; i < count; ++i) {
        auto entry = MetadataTableEntry::decode(
            std::span(table).subspan(MetadataTableHeader::SIZE + i * MetadataTableEntry::SIZE)
                .first<MetadataTableEntry::SIZE>());
        if (std::find(seen.begin(), seen.end(), entry.item_id) != seen.end())
            return corrupt(m_file, "metadata item " + entry.item_id.to_string() + " is listed twice");
        seen.push_back(entry.item_id);
        // 2.6.1.2: an item lies after the table, inside the region; a zero
        // length has offset zero.
        if (entry.length == 0 ? entry.offset != 0
                              : entry.offset < METADATA_TABLE_SIZE ||
                                    entry.length > MAX_METADATA_ITEM_SIZE ||
                                    u64{entry.offset} + entry.length > m_metadata_length)
            return corrupt(m_file, "metadata item " + entry.item_id.to_string() +
                                       " lies outside the metadata region");
        std::optional<std::vector<u8>>* slot = nullptr;
        if (entry.item_id == FILE_PARAMETERS_ITEM)
            slot = &file_parameters;
        else if (entry.item_id == VIRTUAL_DISK_SIZE_ITEM)
            slot = &disk_size;
        else if (entry.item_id == LOGICAL_SECTOR_SIZE_ITEM)
            slot = &logical;
        else if (entry.item_id == PHYSICAL_SECTOR_SIZE_ITEM)
            slot = &physical;
        else if (entry.item_id == PARENT_LOCATOR_ITEM)
            slot = &locator;
        else if (entry.item_id == PAGE83_DATA_ITEM)
            continue; // the disk's SCSI identity: not needed to read it
        else if (entry.flags & MetadataTableEntry::IS_REQUIRED)
            return file_error(BlockErrorKind::Unsupported, m_file.path(),
                              "unknown required VHDX metadata item " + entry.item_id.to_string());
        else
            continue;
        std::vector<u8> item(entry.length);
        TRY(read_file(m_metadata_offset + entry.offset, item));
        *slot = std::move(item);
    }
    auto need = [&](const std::optional<std::vector<u8>>& item, size_t size,
                    const char* name) -> BlockStatus {
        if (!item)
            return corrupt(m_file, std::string("no ") + name + " metadata item");
        if (item->size() < size)
            return corrupt(m_file, std::string("the ") + name + " metadata item is too short");
        return {};
    };
    TRY(need(file_parameters, 8, "file parameters"));
    TRY(need(disk_size, 8, "virtual disk size"));
    TRY(need(logical, 4, "logical sector size"));
    TRY(need(physical, 4, "physical sector size"));
    Geometry& g = m_geometry;
    g.block_size = load32(file_parameters->data());
    u32 flags = load32(file_parameters->data() + 4);
    g.leave_blocks_allocated = flags & FileParameters::LEAVE_BLOCKS_ALLOCATED;
    g.has_parent = flags & FileParameters::HAS_PARENT;
    g.virtual_size = load64(disk_size->data());
    g.logical_sector_size = load32(logical->data());
    g.physical_sector_size = load32(physical->data());
    if (!is_power_of_two(g.block_size) || g.block_size < MIN_BLOCK_SIZE ||
        g.block_size > MAX_BLOCK_SIZE)
        return corrupt(m_file, "block size " + std::to_string(g.block_size) + " is invalid");
    if (g.logical_sector_size != 512 && g.logical_sector_size != 4096)
        return corrupt(m_file, "logical sector size " + std::to_string(g.logical_sector_size) +
                                   " is invalid");
    if (g.physical_sector_size != 512 && g.physical_sector_size != 4096)
        return corrupt(m_file, "physical sector size " + std::to_string(g.physical_sector_size) +
                                   " is invalid");
    if (g.virtual_size > MAX_VIRTUAL_DISK_SIZE || g.virtual_size % g.logical_sector_size != 0)
        return corrupt(m_file, "virtual disk size " + std::to_string(g.virtual_size) +
                                   " is invalid");
    g.derive();

    if (!g.has_parent)
        return {};
    // 2.6.2.6: the parent locator.
    if (!locator || locator->size() < ParentLocatorHeader::SIZE)
        return corrupt(m_file, "a differencing disk without a parent locator");
    const std::vector<u8>& item = *locator;
    Guid type;
    std::copy_n(item.begin(), 16, type.bytes.begin());
    if (type != VHDX_PARENT_LOCATOR_TYPE)
        return file_error(BlockErrorKind::Unsupported, m_file.path(),
                          "parent locator of unknown type " + type.to_string());
    u16 pairs = load16(&item[18]);
    if (ParentLocatorHeader::SIZE + u64{pairs} * ParentLocatorEntry::SIZE > item.size())
        return corrupt(m_file, "the parent locator's entries run past the item");
    for (u16 i = 0; i < pairs; ++i) {
        const u8* e = &item[ParentLocatorHeader::SIZE + i * ParentLocatorEntry::SIZE];
        u64 key_offset = load32(e), value_offset = load32(e + 4);
        u64 key_length = load16(e + 8), value_length = load16(e + 10);
        if (key_offset + key_length > item.size() || value_offset + value_length > item.size())
            return corrupt(m_file, "a parent locator key or value runs past the item");
        std::string key = utf16_to_utf8(std::span(item).subspan(key_offset, key_length));
        std::string value = utf16_to_utf8(std::span(item).subspan(value_offset, value_length));
        if (key == "parent_linkage" || key == "parent_linkage2") {
            Guid guid;
            if (!Guid::parse(value, guid))
                return corrupt(m_file, "the parent locator's " + key + " is not a GUID");
            (key == "parent_linkage" ? m_locator.linkage : m_locator.linkage2) = guid;
        } else if (key == "relative_path") {
            m_locator.relative_path = value;
        } else if (key == "volume_path") {
            m_locator.volume_path = value;
        } else if (key == "absolute_win32_path") {
            m_locator.absolute_win32_path = value;
        }
    }
    if (!m_locator.linkage)
        return corrupt(m_file, "the parent locator has no parent_linkage");
    return {};
}

BlockStatus VhdxImage::load_bat()
{
    const Geometry& g = m_geometry;
    if (g.bat_entries * 8 > m_bat_length)
        return corrupt(m_file, "the BAT region (" + std::to_string(m_bat_length) +
                                   " bytes) is too small for " + std::to_string(g.bat_entries) +
                                   " entries");
    std::vector<u8> bytes(g.bat_entries * 8);
    TRY(read_file(m_bat_offset, bytes));
    m_bat.resize(g.bat_entries);
    for (u64 i = 0; i < g.bat_entries; ++i)
        m_bat[i] = load64(&bytes[i * 8]);
    std::vector<std::string> errors = validate_bat();
    if (!errors.empty())
        return corrupt(m_file, errors.front());
    return {};
}

// 2.5.1: every entry's state is one the spec defines for its kind, and the
// blocks in the file lie inside it and overlap nothing.
std::vector<std::string> VhdxImage::validate_bat() const
{
    const Geometry& g = m_geometry;
    std::vector<std::string> errors;
    std::vector<std::pair<u64, u64>> spans = m_other_regions;
    spans.emplace_back(0, HEADER_AREA_SIZE);
    spans.emplace_back(m_log_region.file_offset, m_log_region.length);
    spans.emplace_back(m_bat_offset, m_bat_length);
    spans.emplace_back(m_metadata_offset, m_metadata_length);
    const u64 file_size = effective_file_size();
    for (u64 i = 0; i < m_bat.size() && errors.size() < 20; ++i) {
        const u64 entry = m_bat[i];
        const BlockState state = bat_state(entry);
        const u64 offset = bat_offset(entry);
        u64 length = 0;
        const std::string name = "BAT entry " + std::to_string(i);
        if (g.is_bitmap_index(i)) {
            if (state != BlockState::NotPresent && state != BlockState::FullyPresent) {
                errors.push_back(name + " (a sector bitmap) has invalid state " +
                                 std::to_string(entry & 7));
                continue;
            }
            if (state == BlockState::FullyPresent)
                length = SECTOR_BITMAP_BLOCK_SIZE;
        } else {
            switch (state) {
            case BlockState::NotPresent:
            case BlockState::Undefined:
            case BlockState::Zero:
            case BlockState::Unmapped:
                break;
            case BlockState::PartiallyPresent: {
                if (!g.has_parent) {
                    errors.push_back(name + " is partially present in a disk without a parent");
                    continue;
                }
                u64 chunk = (i / (g.chunk_ratio + 1));
                if (bat_state(m_bat[g.bitmap_index(chunk)]) != BlockState::FullyPresent) {
                    errors.push_back(name + " is partially present without a sector bitmap");
                    continue;
                }
                [[fallthrough]];
            }
            case BlockState::FullyPresent: {
                u64 block = i - i / (g.chunk_ratio + 1);
                // A last block past the end of the disk needs only its part.
                length = std::min(g.block_size,
                                  round_up(g.virtual_size - block * g.block_size, REGION_ALIGNMENT));
                break;
            }
            default:
                errors.push_back(name + " has invalid state " + std::to_string(entry & 7));
                continue;
            }
        }
        if (length == 0)
            continue;
        if (offset < HEADER_AREA_SIZE || offset > file_size || length > file_size - offset) {
            errors.push_back(name + " points outside the file (offset " + std::to_string(offset) +
                             ")");
            continue;
        }
        spans.emplace_back(offset, length);
    }
    if (!errors.empty())
        return errors;
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size() && errors.size() < 20; ++i)
        if (spans[i].first < spans[i - 1].first + spans[i - 1].second)
            errors.push_back("the block at file offset " + std::to_string(spans[i].first) +
                             " overlaps another block or region");
    return errors;
}

std::vector<std::string> VhdxImage::parent_candidates() const
{
    namespace fs = std::filesystem;
    auto windows_to_posix = [](std::string path) {
        std::replace(path.begin(), path.end(), '\\', '/');
        return path;
    };
    // 2.6.2.6.1: relative_path from the child's folder first, then the
    // absolute path. A Win32 path's drive letter and a volume path's volume
    // name mean nothing here; the rest is tried as a path from /.
    std::vector<std::string> candidates;
    fs::path directory = fs::path(m_file.path()).parent_path();
    if (!m_locator.relative_path.empty())
        candidates.push_back((directory / windows_to_posix(m_locator.relative_path))
                                 .lexically_normal()
                                 .string());
    if (!m_locator.absolute_win32_path.empty()) {
        std::string path = windows_to_posix(m_locator.absolute_win32_path);
        if (path.rfind("//?/", 0) == 0)
            path = path.substr(3);
        if (path.size() >= 2 && path[1] == ':')
            path = path.substr(2);
        candidates.push_back(path);
    }
    return candidates;
}

BlockStatus VhdxImage::open_parent(const OpenOptions& options)
{
    namespace fs = std::filesystem;
    if (t_chain_depth >= MAX_CHAIN_DEPTH)
        return corrupt(m_file, "the differencing chain is more than " +
                                   std::to_string(MAX_CHAIN_DEPTH) + " deep (a loop?)");
    std::vector<std::string> candidates = parent_candidates();
    std::string tried;
    for (const std::string& candidate : candidates) {
        std::error_code error;
        if (!fs::is_regular_file(candidate, error)) {
            tried += (tried.empty() ? "" : ", ") + candidate;
            continue;
        }
        OpenOptions parent_options;
        parent_options.format = "vhdx";
        parent_options.read_only = true;
        parent_options.cache = options.cache;
        ++t_chain_depth;
        auto opened = open_image(candidate, parent_options);
        --t_chain_depth;
        if (opened.is_error()) {
            BlockError error = opened.release_error();
            error.message = m_file.path() + ": parent: " + error.message;
            return error;
        }
        auto* parent = dynamic_cast<VhdxImage*>(opened.value().image.get());
        if (!parent)
            return corrupt(m_file, "the parent " + candidate + " is not a VHDX image");
        // 2.6.2.6.1: the parent is the one the child was made from only if
        // its DataWriteGuid is the recorded linkage.
        if (parent->data_write_guid() != *m_locator.linkage &&
            !(m_locator.linkage2 && parent->data_write_guid() == *m_locator.linkage2))
            return corrupt(m_file, "the parent " + candidate +
                                       " has changed since this differencing disk was made "
                                       "(its DataWriteGuid " +
                                       parent->data_write_guid().to_string() +
                                       " is not the parent_linkage " +
                                       m_locator.linkage->to_string() + ")");
        if (parent->info().logical_sector_size != m_info.logical_sector_size)
            return corrupt(m_file, "the parent " + candidate + " has another logical sector size");
        m_info.parent = candidate;
        m_parent = std::move(opened.value().image);
        return {};
    }
    return file_error(BlockErrorKind::NotFound, m_file.path(),
                      "the parent disk is not found (tried: " +
                          (tried.empty() ? std::string("no path in the locator") : tried) + ")");
}

VhdxImage::~VhdxImage()
{
    if (!m_session_started)
        return;
    // Everything logged is applied: flush it, then empty the log (2.3.3) so
    // tools that replay only read-write (qemu-img) open the image read-only.
    if (m_file.flush().is_error())
        return;
    Header next = m_header;
    next.log_guid = Guid{};
    (void)update_headers(next);
}

// --- metadata updates --------------------------------------------------------

// 2.2.2.1: a header changes by writing the non-current copy with the next
// sequence number and flushing; done twice so both copies hold it.
BlockStatus VhdxImage::update_headers(const Header& next)
{
    for (int round = 0; round < 2; ++round) {
        Header header = next;
        header.sequence_number = m_header.sequence_number + 1;
        header.checksum = 0;
        std::vector<u8> bytes(HEADER_SIZE, 0);
        header.encode(std::span(bytes).first<Header::SIZE>());
        store32(&bytes[4], checksum_with_hole(bytes, 4));
        header.checksum = load32(&bytes[4]);
        int slot = 1 - m_current_header;
        TRY(m_file.write_at(HEADER_OFFSETS[slot], bytes));
        TRY(m_file.flush());
        m_header = header;
        m_current_header = slot;
        m_header_copies_valid[slot] = true;
    }
    return {};
}

// 2.2.2: FileWriteGuid changes before the first change to the file after
// open, DataWriteGuid before the first change the guest can see; the log
// gets a new LogGuid at the same time.
BlockStatus VhdxImage::begin_writes(bool user_data)
{
    if (m_info.read_only)
        return file_error(BlockErrorKind::ReadOnly, m_file.path(), "opened read-only");
    if (m_session_started && (!user_data || m_data_guid_changed))
        return {};
    Header next = m_header;
    if (!m_session_started) {
        next.file_write_guid = Guid::random();
        next.log_guid = Guid::random();
    }
    if (user_data)
        next.data_write_guid = Guid::random();
    TRY(update_headers(next));
    if (!m_session_started)
        m_log = LogWriter(m_log_region, m_header.log_guid);
    m_session_started = true;
    m_data_guid_changed = m_data_guid_changed || user_data;
    return {};
}

// Everything logged so far is applied and flushed: a new LogGuid makes the
// old entries invalid for every reader, and the log starts again at its
// beginning.
BlockStatus VhdxImage::start_new_log()
{
    Header next = m_header;
    next.log_guid = Guid::random();
    TRY(update_headers(next));
    m_log = LogWriter(m_log_region, m_header.log_guid);
    return {};
}

BlockStatus VhdxImage::log_pages(std::span<const LogWriter::Page> pages, bool flush_data_first)
{
    if (!m_log.could_fit(pages.size()))
        return file_error(BlockErrorKind::NoSpace, m_file.path(),
                          "a metadata update does not fit in the VHDX log");
    // New payload and bitmap blocks reach the disk before the BAT entries
    // that point at them can. An entry that would lap the log (which also
    // covers one that no longer fits its free part) goes after a flush,
    // under a new LogGuid.
    const bool lap = m_log.would_lap(pages.size());
    if (flush_data_first || lap) {
        TRY(m_file.flush());
        m_flushed_size = m_file_size;
        m_log.all_applied();
    }
    if (lap)
        TRY(start_new_log());
    TRY(m_log.write_entry(m_file, pages, m_file_size, m_flushed_size));
    for (const LogWriter::Page& page : pages)
        TRY(m_file.write_at(page.file_offset, page.data));
    return {};
}

BlockResult<std::vector<u8>> VhdxImage::bat_page(u64 index) const
{
    const u64 page = index * 8 / LOG_SECTOR_SIZE;
    std::vector<u8> bytes(LOG_SECTOR_SIZE);
    TRY(read_file(m_bat_offset + page * LOG_SECTOR_SIZE, bytes));
    const u64 first = page * (LOG_SECTOR_SIZE / 8);
    for (u64 i = first; i < std::min<u64>(first + LOG_SECTOR_SIZE / 8, m_bat.size()); ++i)
        store64(&bytes[(i - first) * 8], m_bat[i]);
    return bytes;
}

// New blocks go at the end of the file, 1 MiB aligned (2.5.1).
BlockResult<u64> VhdxImage::allocate(u64 length)
{
    u64 offset = round_up(m_file_size, REGION_ALIGNMENT);
    if (offset + length > 256 * TiB) // what the log can replay (vhdx_log.cpp)
        return file_error(BlockErrorKind::NoSpace, m_file.path(), "the file cannot grow further");
    TRY(m_file.set_size(offset + length));
    m_file_size = offset + length;
    return offset;
}

// --- reads -----------------------------------------------------------------

BlockStatus VhdxImage::read_parent(u64 offset, std::span<u8> out)
{
    std::fill(out.begin(), out.end(), u8{0});
    if (!m_parent)
        return {};
    u64 parent_size = m_parent->info().virtual_size;
    if (offset >= parent_size)
        return {};
    u64 length = std::min<u64>(out.size(), parent_size - offset);
    return m_parent->read(offset, out.first(length));
}

// The bits of [in_block, in_block + length) of `block`'s sectors in its
// chunk's bitmap; `first_bit` is the bit of the first sector in the first byte.
BlockResult<std::vector<u8>> VhdxImage::read_bitmap(u64 block, u64 in_block, u64 length,
                                                    u64& first_bit)
{
    const Geometry& g = m_geometry;
    const u64 chunk = block / g.chunk_ratio;
    const u64 bitmap = bat_offset(m_bat[g.bitmap_index(chunk)]);
    const u64 sector = (block % g.chunk_ratio) * g.sectors_per_block() + in_block / g.logical_sector_size;
    const u64 sectors = length / g.logical_sector_size;
    std::vector<u8> bits((sector % 8 + sectors + 7) / 8);
    TRY(read_file(bitmap + sector / 8, bits));
    first_bit = sector % 8;
    return bits;
}

BlockStatus VhdxImage::read_block(u64 block, u64 in_block, std::span<u8> out)
{
    const Geometry& g = m_geometry;
    const u64 entry = m_bat[g.payload_index(block)];
    const u64 virtual_offset = block * g.block_size + in_block;
    switch (bat_state(entry)) {
    case BlockState::FullyPresent:
        return read_file(bat_offset(entry) + in_block, out);
    case BlockState::PartiallyPresent: {
        u64 first_bit = 0;
        std::vector<u8> bits = TRY(read_bitmap(block, in_block, out.size(), first_bit));
        const u64 sector = g.logical_sector_size;
        const u64 sectors = out.size() / sector;
        for (u64 i = 0; i < sectors;) {
            auto bit = [&](u64 k) { return (bits[(first_bit + k) / 8] >> ((first_bit + k) % 8)) & 1; };
            const int present = bit(i);
            u64 run = 1;
            while (i + run < sectors && bit(i + run) == present)
                ++run;
            auto part = out.subspan(i * sector, run * sector);
            if (present)
                TRY(read_file(bat_offset(entry) + in_block + i * sector, part));
            else
                TRY(read_parent(virtual_offset + i * sector, part));
            i += run;
        }
        return {};
    }
    case BlockState::Zero:
        std::fill(out.begin(), out.end(), u8{0});
        return {};
    default:
        // 2.5.1.1: not present, undefined and unmapped blocks of a
        // differencing disk come from the parent; zeros in any other disk.
        if (g.has_parent)
            return read_parent(virtual_offset, out);
        std::fill(out.begin(), out.end(), u8{0});
        return {};
    }
}

BlockStatus VhdxImage::read(u64 offset, std::span<u8> out)
{
    TRY(check_request(m_info, offset, out.size()));
    while (!out.empty()) {
        const u64 block = offset / m_geometry.block_size;
        const u64 in_block = offset % m_geometry.block_size;
        const u64 length = std::min<u64>(out.size(), m_geometry.block_size - in_block);
        TRY(read_block(block, in_block, out.first(length)));
        out = out.subspan(length);
        offset += length;
    }
    return {};
}

// --- writes ----------------------------------------------------------------

// Sets the bits of [in_block, in_block + length) in the chunk's bitmap at
// `bitmap_offset`, adding each changed 4 KiB page to `pages`.
BlockStatus VhdxImage::set_bitmap_pages(u64 block, u64 in_block, u64 length, u64 bitmap_offset,
                                        std::vector<std::vector<u8>>& pages,
                                        std::vector<u64>& page_offsets)
{
    const Geometry& g = m_geometry;
    const u64 first = (block % g.chunk_ratio) * g.sectors_per_block() + in_block / g.logical_sector_size;
    const u64 count = length / g.logical_sector_size;
    const u64 bits_per_page = LOG_SECTOR_SIZE * 8;
    for (u64 page = first / bits_per_page; page <= (first + count - 1) / bits_per_page; ++page) {
        std::vector<u8> bytes(LOG_SECTOR_SIZE);
        TRY(read_file(bitmap_offset + page * LOG_SECTOR_SIZE, bytes));
        bool changed = false;
        u64 from = std::max(first, page * bits_per_page);
        u64 to = std::min(first + count, (page + 1) * bits_per_page);
        for (u64 bit = from; bit < to; ++bit) {
            u8& byte = bytes[(bit - page * bits_per_page) / 8];
            u8 mask = static_cast<u8>(1u << (bit % 8));
            changed = changed || !(byte & mask);
            byte |= mask;
        }
        if (changed) {
            pages.push_back(std::move(bytes));
            page_offsets.push_back(bitmap_offset + page * LOG_SECTOR_SIZE);
        }
    }
    return {};
}

BlockStatus VhdxImage::write_block(u64 block, u64 in_block, std::span<const u8> data)
{
    const Geometry& g = m_geometry;
    const u64 index = g.payload_index(block);
    const u64 entry = m_bat[index];
    const BlockState state = bat_state(entry);
    if (state == BlockState::FullyPresent)
        return m_file.write_at(bat_offset(entry) + in_block, data);

    std::vector<std::vector<u8>> bitmap_pages;
    std::vector<u64> bitmap_offsets;
    std::vector<u64> changed_entries;
    const std::vector<u64> saved_bat = {m_bat[index],
                                        g.has_parent ? m_bat[g.bitmap_index(block / g.chunk_ratio)] : 0};
    bool new_blocks = false;

    if (state == BlockState::PartiallyPresent) {
        TRY(m_file.write_at(bat_offset(entry) + in_block, data));
        u64 bitmap = bat_offset(m_bat[g.bitmap_index(block / g.chunk_ratio)]);
        TRY(set_bitmap_pages(block, in_block, data.size(), bitmap, bitmap_pages, bitmap_offsets));
        if (bitmap_pages.empty())
            return {};
    } else {
        // A block that is not in the file: place a new one at the end.
        // Without a parent, or over a ZERO block, or written whole, the new
        // block holds all its sectors (the rest read as zeros, as before);
        // otherwise it is partially present and its sectors' bits say which.
        const bool whole = !g.has_parent || state == BlockState::Zero ||
                           (in_block == 0 && data.size() == g.block_size);
        const u64 block_bytes = std::min(g.block_size, round_up(g.virtual_size - block * g.block_size,
                                                                REGION_ALIGNMENT));
        u64 offset = TRY(allocate(block_bytes));
        new_blocks = true;
        TRY(m_file.write_at(offset + in_block, data));
        if (whole) {
            m_bat[index] = make_bat_entry(BlockState::FullyPresent, offset);
        } else {
            const u64 bitmap_index = g.bitmap_index(block / g.chunk_ratio);
            if (bat_state(m_bat[bitmap_index]) != BlockState::FullyPresent) {
                // A fresh bitmap block: the file's extension reads as zeros.
                u64 bitmap = TRY(allocate(SECTOR_BITMAP_BLOCK_SIZE));
                m_bat[bitmap_index] = make_bat_entry(BlockState::FullyPresent, bitmap);
                changed_entries.push_back(bitmap_index);
            }
            m_bat[index] = make_bat_entry(BlockState::PartiallyPresent, offset);
            TRY(set_bitmap_pages(block, in_block, data.size(), bat_offset(m_bat[bitmap_index]),
                                 bitmap_pages, bitmap_offsets));
        }
        changed_entries.push_back(index);
    }

    std::vector<std::vector<u8>> bat_pages;
    std::vector<u64> bat_page_offsets;
    for (u64 changed : changed_entries) {
        u64 page_offset = m_bat_offset + changed * 8 / LOG_SECTOR_SIZE * LOG_SECTOR_SIZE;
        if (std::find(bat_page_offsets.begin(), bat_page_offsets.end(), page_offset) !=
            bat_page_offsets.end())
            continue;
        auto page = bat_page(changed);
        if (page.is_error()) {
            m_bat[index] = saved_bat[0];
            if (g.has_parent)
                m_bat[g.bitmap_index(block / g.chunk_ratio)] = saved_bat[1];
            return page.release_error();
        }
        bat_pages.push_back(page.release_value());
        bat_page_offsets.push_back(page_offset);
    }
    std::vector<LogWriter::Page> pages;
    for (size_t i = 0; i < bitmap_pages.size(); ++i)
        pages.push_back({bitmap_offsets[i], bitmap_pages[i]});
    for (size_t i = 0; i < bat_pages.size(); ++i)
        pages.push_back({bat_page_offsets[i], bat_pages[i]});
    auto logged = log_pages(pages, new_blocks);
    if (logged.is_error()) {
        m_bat[index] = saved_bat[0];
        if (g.has_parent)
            m_bat[g.bitmap_index(block / g.chunk_ratio)] = saved_bat[1];
        return logged;
    }
    return {};
}

BlockStatus VhdxImage::write(u64 offset, std::span<const u8> data)
{
    TRY(check_request(m_info, offset, data.size()));
    TRY(begin_writes(true));
    while (!data.empty()) {
        const u64 block = offset / m_geometry.block_size;
        const u64 in_block = offset % m_geometry.block_size;
        const u64 length = std::min<u64>(data.size(), m_geometry.block_size - in_block);
        TRY(write_block(block, in_block, data.first(length)));
        data = data.subspan(length);
        offset += length;
    }
    return {};
}

BlockStatus VhdxImage::flush()
{
    if (m_info.read_only)
        return {};
    TRY(m_file.flush());
    // Everything logged so far is applied and on the disk: a replay after a
    // crash need not redo it.
    m_flushed_size = m_file_size;
    m_log.all_applied();
    return {};
}

// Advisory (BlockImage::discard allows it): the blocks stay as they are.
// Marking them UNMAPPED would let a later write reuse nothing (new blocks
// always go at the end of the file) and save no space in the file.
BlockStatus VhdxImage::discard(u64 offset, u64 length)
{
    return check_request(m_info, offset, length);
}

// --- map and check ---------------------------------------------------------

BlockResult<Extent> VhdxImage::map(u64 offset, u64 max_length)
{
    TRY(check_request(m_info, offset, 0));
    const Geometry& g = m_geometry;
    const u64 end = std::min(m_info.virtual_size, offset + std::min(max_length, m_info.virtual_size - offset));
    auto extent_at = [&](u64 at) -> BlockResult<Extent> {
        const u64 block = at / g.block_size;
        const u64 in_block = at % g.block_size;
        const u64 length = std::min(g.block_size - in_block, end - at);
        const u64 entry = m_bat[g.payload_index(block)];
        Extent extent{at, length, ExtentKind::Unallocated, std::nullopt};
        switch (bat_state(entry)) {
        case BlockState::FullyPresent:
            extent.kind = ExtentKind::Data;
            extent.host_offset = bat_offset(entry) + in_block;
            break;
        case BlockState::Zero:
            extent.kind = ExtentKind::Zero;
            break;
        case BlockState::PartiallyPresent: {
            u64 first_bit = 0;
            u64 sectors = length / g.logical_sector_size;
            std::vector<u8> bits = TRY(read_bitmap(block, in_block, length, first_bit));
            auto bit = [&](u64 k) { return (bits[(first_bit + k) / 8] >> ((first_bit + k) % 8)) & 1; };
            const int present = bit(0);
            u64 run = 1;
            while (run < sectors && bit(run) == present)
                ++run;
            extent.length = run * g.logical_sector_size;
            if (present) {
                extent.kind = ExtentKind::Data;
                extent.host_offset = bat_offset(entry) + in_block;
            }
            break;
        }
        default:
            break;
        }
        return extent;
    };
    Extent extent = TRY(extent_at(offset));
    // Whole blocks of one kind (and, for data, contiguous in the file) merge.
    while (offset + extent.length < end) {
        Extent next = TRY(extent_at(offset + extent.length));
        if (next.kind != extent.kind ||
            (extent.kind == ExtentKind::Data && next.host_offset != *extent.host_offset + extent.length))
            break;
        extent.length += next.length;
    }
    return extent;
}

BlockResult<CheckReport> VhdxImage::check(bool repair)
{
    CheckReport report;
    if (m_replayed_at_open)
        report.repaired.push_back("the log was replayed when the image was opened");
    if (!m_pending.empty()) {
        report.errors.push_back("the log holds " + std::to_string(m_pending.entries) +
                                " entries to replay (open the image read-write to replay it)");
    }
    for (int slot = 0; slot < 2; ++slot)
        if (!m_header_copies_valid[slot])
            report.errors.push_back("VHDX header " + std::to_string(slot + 1) + " is invalid");
    for (int copy = 0; copy < 2; ++copy)
        if (!m_region_copies_valid[copy])
            report.errors.push_back("VHDX region table " + std::to_string(copy + 1) +
                                    " is invalid");
    for (std::string& error : validate_bat())
        report.errors.push_back(std::move(error));
    const Geometry& g = m_geometry;
    for (u64 block = 0; block < g.payload_blocks; ++block) {
        BlockState state = bat_state(m_bat[g.payload_index(block)]);
        report.allocated_blocks +=
            state == BlockState::FullyPresent || state == BlockState::PartiallyPresent;
    }
    report.total_blocks = g.payload_blocks;
    if (!repair || m_info.read_only)
        return report;

    // A header that is not valid is written again from the current one; a
    // region table copy from the one in use.
    if (!m_header_copies_valid[0] || !m_header_copies_valid[1]) {
        TRY(begin_writes(false));
        Header next = m_header;
        TRY(update_headers(next));
        std::erase_if(report.errors, [](const std::string& e) { return e.starts_with("VHDX header"); });
        report.repaired.push_back("rewrote the invalid VHDX header");
    }
    if (m_region_copies_valid[0] != m_region_copies_valid[1]) {
        TRY(begin_writes(false));
        int good = m_region_copies_valid[0] ? 0 : 1;
        std::vector<u8> table(REGION_TABLE_SIZE);
        TRY(read_file(REGION_TABLE_OFFSETS[good], table));
        std::vector<LogWriter::Page> pages;
        for (u64 at = 0; at < REGION_TABLE_SIZE; at += LOG_SECTOR_SIZE)
            pages.push_back({REGION_TABLE_OFFSETS[1 - good] + at,
                             std::span<const u8>(table).subspan(at, LOG_SECTOR_SIZE)});
        TRY(log_pages(pages, false));
        TRY(flush());
        m_region_copies_valid[1 - good] = true;
        std::erase_if(report.errors, [](const std::string& e) { return e.starts_with("VHDX region"); });
        report.repaired.push_back("rewrote the invalid VHDX region table");
    }
    return report;
}

// --- the format --------------------------------------------------------------

bool probe_vhdx(std::span<const u8> head, std::span<const u8>, u64)
{
    return head.size() >= 8 && load64(head.data()) == FILE_SIGNATURE;
}

BlockResult<u64> parse_size(const std::string& name, const std::string& text)
{
    if (text.empty())
        return block_error(BlockErrorKind::InvalidArgument, "option " + name + " has no value");
    size_t used = 0;
    u64 value = 0;
    try {
        value = std::stoull(text, &used, 10);
    } catch (...) {
        return block_error(BlockErrorKind::InvalidArgument,
                           "option " + name + "=" + text + " is not a size");
    }
    std::string suffix = text.substr(used);
    int shift = 0;
    if (suffix == "" || suffix == "b" || suffix == "B")
        shift = 0;
    else if (suffix == "k" || suffix == "K")
        shift = 10;
    else if (suffix == "M")
        shift = 20;
    else if (suffix == "G")
        shift = 30;
    else if (suffix == "T")
        shift = 40;
    else
        return block_error(BlockErrorKind::InvalidArgument,
                           "option " + name + "=" + text + " is not a size");
    if (shift && value > (~u64{0} >> shift))
        return block_error(BlockErrorKind::InvalidArgument, "option " + name + " is too large");
    return value << shift;
}

BlockResult<bool> parse_bool(const std::string& name, const std::string& text)
{
    if (text == "on" || text == "true" || text == "yes")
        return true;
    if (text == "off" || text == "false" || text == "no")
        return false;
    return block_error(BlockErrorKind::InvalidArgument, "option " + name + " takes on or off");
}

std::vector<u8> parent_locator_item(const Guid& linkage, const std::string& relative,
                                    const std::string& absolute)
{
    std::vector<std::pair<std::string, std::string>> pairs = {
        {"parent_linkage", "{" + linkage.to_string() + "}"},
        {"relative_path", relative},
        {"absolute_win32_path", absolute},
    };
    std::vector<u8> item(ParentLocatorHeader::SIZE + pairs.size() * ParentLocatorEntry::SIZE);
    std::copy(VHDX_PARENT_LOCATOR_TYPE.bytes.begin(), VHDX_PARENT_LOCATOR_TYPE.bytes.end(), item.begin());
    store16(&item[18], static_cast<u16>(pairs.size()));
    for (size_t i = 0; i < pairs.size(); ++i) {
        std::vector<u8> key = utf8_to_utf16(pairs[i].first);
        std::vector<u8> value = utf8_to_utf16(pairs[i].second);
        u8* e = &item[ParentLocatorHeader::SIZE + i * ParentLocatorEntry::SIZE];
        store32(e, static_cast<u32>(item.size()));
        store16(e + 8, static_cast<u16>(key.size()));
        item.insert(item.end(), key.begin(), key.end());
        e = &item[ParentLocatorHeader::SIZE + i * ParentLocatorEntry::SIZE];
        store32(e + 4, static_cast<u32>(item.size()));
        store16(e + 10, static_cast<u16>(value.size()));
        item.insert(item.end(), value.begin(), value.end());
    }
    return item;
}

BlockStatus create_vhdx(const std::string& path, const CreateOptions& options)
{
    namespace fs = std::filesystem;
    bool fixed = false, block_state_zero = true;
    u64 block_size = 0, log_size = 1 * MiB;
    u32 logical = 512, physical = 4096;
    for (const auto& [name, value] : options.options) {
        if (name == "subformat") {
            if (value != "dynamic" && value != "fixed")
                return block_error(BlockErrorKind::InvalidArgument,
                                   "subformat must be dynamic or fixed, not '" + value + "'");
            fixed = value == "fixed";
        } else if (name == "block_size") {
            block_size = TRY(parse_size(name, value));
        } else if (name == "log_size") {
            log_size = TRY(parse_size(name, value));
        } else if (name == "block_state_zero") {
            block_state_zero = TRY(parse_bool(name, value));
        } else if (name == "logical_sector_size" || name == "physical_sector_size") {
            u64 size = TRY(parse_size(name, value));
            if (size != 512 && size != 4096)
                return block_error(BlockErrorKind::InvalidArgument, name + " must be 512 or 4096");
            (name == "logical_sector_size" ? logical : physical) = static_cast<u32>(size);
        } else {
            return block_error(BlockErrorKind::InvalidArgument,
                               "VHDX images take no option '" + name + "'");
        }
    }

    Geometry g;
    g.virtual_size = options.size;
    g.logical_sector_size = logical;
    g.physical_sector_size = physical;
    g.leave_blocks_allocated = fixed;
    Guid linkage;
    std::string relative, absolute;
    if (!options.parent.empty()) {
        if (fixed)
            return block_error(BlockErrorKind::InvalidArgument,
                               "a differencing disk cannot be fixed");
        OpenOptions parent_options;
        parent_options.format = "vhdx";
        parent_options.read_only = true;
        auto opened = open_image(options.parent, parent_options);
        if (opened.is_error())
            return opened.release_error();
        auto* parent = dynamic_cast<VhdxImage*>(opened.value().image.get());
        if (!parent)
            return block_error(BlockErrorKind::Unsupported, "the parent is not a VHDX image");
        linkage = parent->data_write_guid();
        if (g.virtual_size == 0)
            g.virtual_size = parent->info().virtual_size;
        g.logical_sector_size = parent->info().logical_sector_size;
        g.physical_sector_size = parent->info().physical_sector_size;
        g.has_parent = true;
        std::error_code error;
        fs::path parent_path = fs::absolute(options.parent, error);
        fs::path child_dir = fs::absolute(path, error).parent_path();
        std::string rel = parent_path.lexically_relative(child_dir).string();
        if (rel.empty())
            rel = parent_path.string();
        else if (!rel.starts_with(".."))
            rel = "./" + rel;
        std::replace(rel.begin(), rel.end(), '/', '\\');
        relative = rel;
        absolute = parent_path.lexically_normal().string();
        std::replace(absolute.begin(), absolute.end(), '/', '\\');
    }
    if (g.virtual_size % g.logical_sector_size != 0 || g.virtual_size > MAX_VIRTUAL_DISK_SIZE)
        return block_error(BlockErrorKind::InvalidArgument,
                           "a VHDX disk's size is a multiple of its " +
                               std::to_string(g.logical_sector_size) +
                               "-byte sectors, at most 64 TiB");
    if (block_size == 0) {
        // qemu-img's choice (block/vhdx.c): larger disks get larger blocks.
        block_size = g.virtual_size > 32 * TiB    ? 64 * MiB
                     : g.virtual_size > 100 * GiB ? 32 * MiB
                     : g.virtual_size > 1 * GiB   ? 16 * MiB
                                                  : 8 * MiB;
    }
    if (!is_power_of_two(block_size) || block_size < MIN_BLOCK_SIZE || block_size > MAX_BLOCK_SIZE)
        return block_error(BlockErrorKind::InvalidArgument,
                           "block_size must be a power of two from 1 MiB to 256 MiB");
    if (log_size < 1 * MiB || log_size % MiB != 0 || log_size > MAX_LOG_LENGTH)
        return block_error(BlockErrorKind::InvalidArgument,
                           "log_size must be a multiple of 1 MiB, at most 1 GiB");
    g.block_size = block_size;
    g.derive();

    // Layout: header area, log, metadata region (1 MiB), BAT, payload.
    const u64 log_offset = HEADER_AREA_SIZE;
    const u64 metadata_offset = log_offset + log_size;
    const u64 metadata_length = 1 * MiB;
    const u64 bat_offset_in_file = metadata_offset + metadata_length;
    const u64 bat_length = std::max<u64>(REGION_ALIGNMENT, round_up(g.bat_entries * 8, REGION_ALIGNMENT));
    const u64 payload_offset = bat_offset_in_file + bat_length;

    std::vector<u8> head(payload_offset - 0, 0);
    // 2.1: the file identifier, with the creator in UTF-16.
    store64(&head[0], FILE_SIGNATURE);
    std::vector<u8> creator = utf8_to_utf16("viridian");
    std::copy(creator.begin(), creator.end(), head.begin() + 8);
    // 2.2.2: both headers; the second current.
    Header header;
    header.file_write_guid = Guid::random();
    header.data_write_guid = Guid::random();
    header.log_length = static_cast<u32>(log_size);
    header.log_offset = log_offset;
    for (int slot = 0; slot < 2; ++slot) {
        header.sequence_number = static_cast<u64>(slot + 1);
        auto bytes = std::span(head).subspan(HEADER_OFFSETS[slot], HEADER_SIZE);
        header.encode(bytes.first<Header::SIZE>());
        store32(&bytes[4], checksum_with_hole(bytes, 4));
    }
    // 2.2.3: the region table, twice.
    for (int copy = 0; copy < 2; ++copy) {
        auto table = std::span(head).subspan(REGION_TABLE_OFFSETS[copy], REGION_TABLE_SIZE);
        store32(&table[0], REGION_SIGNATURE);
        store32(&table[8], 2);
        RegionTableEntry bat{BAT_REGION, bat_offset_in_file, static_cast<u32>(bat_length),
                             RegionTableEntry::REQUIRED};
        RegionTableEntry metadata{METADATA_REGION, metadata_offset,
                                  static_cast<u32>(metadata_length), RegionTableEntry::REQUIRED};
        bat.encode(table.subspan(16).first<RegionTableEntry::SIZE>());
        metadata.encode(table.subspan(48).first<RegionTableEntry::SIZE>());
        store32(&table[4], checksum_with_hole(table, 4));
    }
    // 2.6: the metadata table and its items after it.
    {
        auto region = std::span(head).subspan(metadata_offset, metadata_length);
        store64(&region[0], METADATA_SIGNATURE);
        std::vector<std::pair<MetadataTableEntry, std::vector<u8>>> items;
        auto add = [&](const Guid& id, u32 flags, std::vector<u8> data) {
            items.push_back({MetadataTableEntry{id, 0, static_cast<u32>(data.size()), flags, 0},
                             std::move(data)});
        };
        std::vector<u8> file_parameters(8), disk_size(8), logical_bytes(4), physical_bytes(4);
        store32(&file_parameters[0], static_cast<u32>(g.block_size));
        store32(&file_parameters[4], (fixed ? FileParameters::LEAVE_BLOCKS_ALLOCATED : 0) |
                                         (g.has_parent ? FileParameters::HAS_PARENT : 0));
        store64(&disk_size[0], g.virtual_size);
        store32(&logical_bytes[0], g.logical_sector_size);
        store32(&physical_bytes[0], g.physical_sector_size);
        Guid page83 = Guid::random();
        constexpr u32 required = MetadataTableEntry::IS_REQUIRED;
        constexpr u32 disk = MetadataTableEntry::IS_REQUIRED | MetadataTableEntry::IS_VIRTUAL_DISK;
        add(FILE_PARAMETERS_ITEM, required, file_parameters);
        add(VIRTUAL_DISK_SIZE_ITEM, disk, disk_size);
        add(LOGICAL_SECTOR_SIZE_ITEM, disk, logical_bytes);
        add(PHYSICAL_SECTOR_SIZE_ITEM, disk, physical_bytes);
        add(PAGE83_DATA_ITEM, disk, std::vector<u8>(page83.bytes.begin(), page83.bytes.end()));
        if (g.has_parent)
            add(PARENT_LOCATOR_ITEM, required, parent_locator_item(linkage, relative, absolute));
        store16(&region[10], static_cast<u16>(items.size()));
        u64 at = METADATA_TABLE_SIZE;
        for (size_t i = 0; i < items.size(); ++i) {
            auto& [entry, data] = items[i];
            entry.offset = static_cast<u32>(at);
            entry.encode(region.subspan(MetadataTableHeader::SIZE + i * MetadataTableEntry::SIZE)
                             .first<MetadataTableEntry::SIZE>());
            std::copy(data.begin(), data.end(), region.begin() + static_cast<std::ptrdiff_t>(at));
            at += round_up(data.size(), 8);
        }
    }
    // 2.5: the BAT. A fixed disk's blocks follow it in order; a dynamic
    // disk's are ZERO (block_state_zero, as qemu-img) or NOT_PRESENT; a
    // differencing disk's NOT_PRESENT, so they read from the parent.
    u64 file_size = payload_offset;
    for (u64 block = 0; block < g.payload_blocks; ++block) {
        u64 entry = 0;
        if (fixed) {
            u64 length = std::min(g.block_size, round_up(g.virtual_size - block * g.block_size,
                                                         REGION_ALIGNMENT));
            entry = make_bat_entry(BlockState::FullyPresent, file_size);
            file_size += length;
        } else if (!g.has_parent && block_state_zero) {
            entry = make_bat_entry(BlockState::Zero, 0);
        }
        store64(&head[bat_offset_in_file + g.payload_index(block) * 8], entry);
    }

    HostFile file = TRY(HostFile::create(path));
    TRY(file.write_at(0, head));
    TRY(file.set_size(file_size));
    return file.flush();
}

} // namespace

const ImageFormat vhdx_format{"vhdx", probe_vhdx, VhdxImage::open, create_vhdx};
