// VHD (QEMU's "vpc"): Microsoft "Virtual Hard Disk Image Format
// Specification" v1.0 (2006), cited below as "VHD spec". Facts about what
// QEMU 7.2 (block/vpc.c) and qemu-img do are marked "QEMU".
//
// Layout. Every VHD ends in a 512-byte footer. A fixed disk (type 2) is the
// disk's bytes followed by the footer. A dynamic (3) or differencing (4)
// disk starts with a copy of the footer, then a 1024-byte dynamic header
// ("cxsparse") that points at the block allocation table (BAT): one
// big-endian u32 per block, the block's file offset in 512-byte sectors or
// 0xFFFFFFFF when the block is not allocated. An allocated block is a
// sector bitmap (one bit per sector, most significant bit first, 1 = the
// sector is stored here, padded to whole 512-byte sectors) followed by the
// block's data. A differencing disk reads the sectors whose bit is 0 from
// its parent, found through the parent locators in the header.
//
// Crash safety. New blocks go where the footer is; writes to a dynamic or
// differencing disk touch three things in this order:
//   1. on allocation, the footer is written at the file's new end first, so
//      the last 512 bytes of the file are a valid footer at every moment the
//      file is not in the middle of growing; then the new block's bitmap
//      (all zeros: nothing present yet) overwrites the old footer, and the
//      rest of the block reads as zeros (a hole);
//   2. the data, into the block;
//   3. at flush(): a sync makes steps 1-2 durable, then the bitmaps whose
//      bits changed and the BAT sectors with new entries are written, and a
//      second sync makes them durable.
// Nothing on disk points at a block (BAT entry) or a sector (bitmap bit)
// before what it points at is durable, so after a crash at any point the
// image opens, every write acknowledged by a completed flush() is there,
// and a write not yet flushed reads either as before or as written. A block
// whose BAT entry never reached the disk is only lost space: the next
// allocation reuses it, as it lies past the last block the BAT knows.
// If a crash leaves the file's end without a valid footer (the file grew
// but the footer did not reach the disk), the copy at offset 0 is used, as
// QEMU always does for these types; check(repair) writes the end footer again.
//
// Deferring the metadata to flush() costs nothing in safety (an unflushed
// write may be lost anyway) and spares a sync per allocation, which is how
// the spec leaves it to the implementation (VHD spec "Block Allocation
// Table and Data Blocks" only says what the structures mean).
#include "platform/block/vhd_image.h"

#include "mmu/base/utf16.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sys/stat.h>
#include <unordered_map>

namespace {

// A big-endian field of an on-disk structure (VHD spec: "All values in the
// file format ... are stored in big-endian format"), readable at any
// alignment.
template <class T> struct Big {
    u8 bytes[sizeof(T)];
    T get() const
    {
        u64 value = 0;
        for (u8 byte : bytes)
            value = (value << 8) | byte;
        return static_cast<T>(value);
    }
    void set(T value)
    {
        u64 v = value;
        for (size_t i = sizeof(T); i-- > 0; v >>= 8)
            bytes[i] = static_cast<u8>(v);
    }
};

// VHD spec "Hard Disk Footer Format".
struct VhdFooter {
    char cookie[8]; // "conectix"
    Big<u32> features;
    Big<u32> format_version; // 0x00010000
    Big<u64> data_offset;    // the dynamic header; all ones for a fixed disk
    Big<u32> timestamp;      // seconds since 2000-01-01 00:00:00 UTC
    char creator_application[4];
    Big<u32> creator_version;
    char creator_host_os[4];
    Big<u64> original_size;
    Big<u64> current_size;
    Big<u16> cylinders;
    u8 heads;
    u8 sectors_per_track;
    Big<u32> disk_type;
    Big<u32> checksum;
    u8 unique_id[16];
    u8 saved_state;
    u8 reserved[427];
};
static_assert(sizeof(VhdFooter) == 512);

// VHD spec "Dynamic Disk Header Format", "Parent Locator Entry".
struct VhdParentLocator {
    Big<u32> platform_code;
    Big<u32> data_space; // the spec says sectors; Hyper-V and QEMU's notes: bytes
    Big<u32> data_length;
    Big<u32> reserved;
    Big<u64> data_offset;
};
static_assert(sizeof(VhdParentLocator) == 24);

struct VhdDynamicHeader {
    char cookie[8];       // "cxsparse"
    Big<u64> data_offset; // unused, all ones
    Big<u64> table_offset;
    Big<u32> header_version; // 0x00010000
    Big<u32> max_table_entries;
    Big<u32> block_size;
    Big<u32> checksum;
    u8 parent_unique_id[16];
    Big<u32> parent_timestamp;
    Big<u32> reserved1;
    u8 parent_unicode_name[512]; // UTF-16BE
    VhdParentLocator locators[8];
    u8 reserved2[256];
};
static_assert(sizeof(VhdDynamicHeader) == 1024);

enum class DiskType : u32 { Fixed = 2, Dynamic = 3, Differencing = 4 };

constexpr u32 UNALLOCATED = 0xFFFFFFFF;
constexpr u64 SECTOR = 512;
constexpr u64 NO_DATA_OFFSET = ~u64{0};
// "W2ru" and "W2ku": Windows relative and absolute paths in UTF-16LE.
constexpr u32 PLATFORM_W2RU = 0x57327275;
constexpr u32 PLATFORM_W2KU = 0x57326B75;
// QEMU: the largest CHS geometry the spec's algorithm gives (65535 x 16 x
// 255) means "the size did not fit CHS: use current_size", and 2040 GiB is
// the largest disk it accepts.
constexpr u64 MAX_GEOMETRY_SECTORS = 65535ull * 16 * 255;
constexpr u64 MAX_SECTORS = 0xFF000000ull;
constexpr u64 DEFAULT_BLOCK_SIZE = 2 << 20;
constexpr u64 MAX_BLOCK_SIZE = 256 << 20;
// 2000-01-01 00:00:00 UTC in Unix time (VHD spec "Time Stamp").
constexpr u64 VHD_EPOCH = 946684800;
// Differencing chains deeper than this are refused: a chain that loops
// (A's parent is B, B's is A, ids crafted to match) must not recurse forever.
constexpr int MAX_CHAIN_DEPTH = 32;

template <class T> u32 checksum_of(const T& structure, const Big<u32>& field)
{
    // VHD spec: the one's complement of the sum of all bytes, the checksum
    // field taken as zero.
    const u8* bytes = reinterpret_cast<const u8*>(&structure);
    const u8* skip = field.bytes;
    u32 sum = 0;
    for (size_t i = 0; i < sizeof(T); ++i)
        if (bytes + i < skip || bytes + i >= skip + 4)
            sum += bytes[i];
    return ~sum;
}

bool footer_valid(const VhdFooter& footer)
{
    return std::memcmp(footer.cookie, "conectix", 8) == 0 &&
           checksum_of(footer, footer.checksum) == footer.checksum.get();
}

u64 round_up(u64 value, u64 unit)
{
    return (value + unit - 1) / unit * unit;
}

// QEMU's rule for the disk's size (vpc_open): Virtual PC and QEMU's own
// older images ("vpc ", "qemu") size the disk by its CHS geometry, which
// their current_size may exceed; Hyper-V ("win "), disk2vhd ("d2v "),
// XenServer ("tap\0"), XenConverter ("CTXS") and qemu-img with force_size
// ("qem2") use current_size, as does any image whose geometry is the
// maximum (its size did not fit CHS). Followed here so both read one size.
u64 footer_virtual_size(const VhdFooter& footer)
{
    u64 chs = u64{footer.cylinders.get()} * footer.heads * footer.sectors_per_track;
    static constexpr std::array<const char*, 5> CURRENT_SIZE_CREATORS{"win ", "qem2", "d2v ",
                                                                       "CTXS", "tap\0"};
    bool current = chs == MAX_GEOMETRY_SECTORS;
    for (const char* creator : CURRENT_SIZE_CREATORS)
        current = current || std::memcmp(footer.creator_application, creator, 4) == 0;
    return current ? footer.current_size.get() / SECTOR * SECTOR : chs * SECTOR;
}

// VHD spec appendix "CHS Calculation".
void geometry_for(u64 sectors, u16& cylinders, u8& heads, u8& sectors_per_track)
{
    sectors = std::min(sectors, MAX_GEOMETRY_SECTORS);
    u64 cylinder_times_heads = 0;
    if (sectors >= 65535ull * 16 * 63) {
        sectors_per_track = 255;
        heads = 16;
        cylinder_times_heads = sectors / sectors_per_track;
    } else {
        sectors_per_track = 17;
        cylinder_times_heads = sectors / sectors_per_track;
        u64 h = std::max<u64>((cylinder_times_heads + 1023) / 1024, 4);
        heads = static_cast<u8>(std::min<u64>(h, 255));
        if (cylinder_times_heads >= h * 1024 || h > 16) {
            sectors_per_track = 31;
            heads = 16;
            cylinder_times_heads = sectors / sectors_per_track;
        }
        if (cylinder_times_heads >= u64{heads} * 1024) {
            sectors_per_track = 63;
            heads = 16;
            cylinder_times_heads = sectors / sectors_per_track;
        }
    }
    cylinders = static_cast<u16>(cylinder_times_heads / heads);
}

std::string hex_id(const u8 (&id)[16])
{
    static const char* const DIGITS = "0123456789abcdef";
    std::string out;
    for (u8 byte : id) {
        out += DIGITS[byte >> 4];
        out += DIGITS[byte & 15];
    }
    return out;
}

// Which footer describes the image. The end footer of a fixed disk is the
// only one (its offset 0 is the guest's first sector, whatever it writes
// there). For a dynamic or differencing disk the copy at offset 0 comes
// first, as in QEMU: only it is out of the guest's reach in every crash
// state (the end of the file may briefly be a new block's data, step 1 of
// the order above); the end footer is used when the copy is damaged.
struct FooterChoice {
    VhdFooter footer{};
    bool end_valid = false;
    bool copy_valid = false;
};

BlockResult<FooterChoice> choose_footer(const HostFile& file, u64 file_size)
{
    const std::string& path = file.path();
    if (file_size < sizeof(VhdFooter))
        return file_error(BlockErrorKind::Corrupt, path, "too small to be a VHD image");
    FooterChoice choice;
    VhdFooter end{}, copy{};
    TRY(file.read_at(file_size - sizeof end, {reinterpret_cast<u8*>(&end), sizeof end}));
    TRY(file.read_at(0, {reinterpret_cast<u8*>(&copy), sizeof copy}));
    choice.end_valid = footer_valid(end);
    choice.copy_valid = footer_valid(copy) && copy.disk_type.get() != u32(DiskType::Fixed);
    if (choice.end_valid && end.disk_type.get() == u32(DiskType::Fixed)) {
        choice.footer = end;
    } else if (choice.copy_valid) {
        choice.footer = copy;
    } else if (choice.end_valid) {
        choice.footer = end;
    } else if (std::memcmp(end.cookie, "conectix", 8) == 0 ||
               std::memcmp(copy.cookie, "conectix", 8) == 0) {
        // QEMU: "Incorrect header checksum"
        return file_error(BlockErrorKind::Corrupt, path, "VHD footer checksum is incorrect");
    } else {
        return file_error(BlockErrorKind::Corrupt, path, "no VHD footer (\"conectix\") found");
    }
    return choice;
}

// RAII depth of the differencing chain being opened on this thread.
thread_local int t_chain_depth = 0;
struct ChainDepth {
    ChainDepth() { ++t_chain_depth; }
    ~ChainDepth() { --t_chain_depth; }
    ChainDepth(const ChainDepth&) = delete;
    ChainDepth& operator=(const ChainDepth&) = delete;
};

struct Region {
    u64 start = 0;
    u64 end = 0;
    const char* what = "";
};

class VhdImage final : public BlockImage {
public:
    VhdImage(HostFile file, VhdStepObserver observer)
        : m_file(std::move(file)), m_observer(std::move(observer))
    {
    }

    ~VhdImage() override
    {
        // The metadata of writes never flushed: best effort, as a clean
        // shutdown of a guest that never flushed would expect.
        if (has_dirty_metadata())
            (void)flush();
    }

    BlockStatus open(const FooterChoice& choice, u64 file_size, const OpenOptions& options);

    const ImageInfo& info() const override { return m_info; }
    const VhdFooter& footer() const { return m_footer; }

    BlockStatus read(u64 offset, std::span<u8> out) override;
    BlockStatus write(u64 offset, std::span<const u8> data) override;
    BlockStatus flush() override;
    // Advisory (BlockImage::discard): VHD has no way to give back a sector
    // short of rewriting the file, and clearing bitmap bits of a
    // differencing disk would show the parent's data instead of zeros, so
    // discard does nothing.
    BlockStatus discard(u64 offset, u64 length) override
    {
        return check_request(m_info, offset, length);
    }
    BlockResult<Extent> map(u64 offset, u64 max_length) override;
    BlockResult<CheckReport> check(bool repair) override;

private:
    struct Run {
        u64 length = 0;
        bool present = false;         // stored in this file
        std::optional<u64> host;      // where, when present
    };

    bool sparse() const { return m_type != DiskType::Fixed; }
    bool has_dirty_metadata() const { return !m_dirty_bitmaps.empty() || !m_dirty_bat.empty(); }
    void step(const char* name)
    {
        if (m_observer)
            m_observer(name);
    }
    u64 block_start(u32 block) const { return u64{m_bat[block]} * SECTOR; }
    u64 block_bytes() const { return m_bitmap_size + u64{m_block_size}; }

    BlockStatus open_dynamic(u64 file_size);
    BlockStatus open_parent(const OpenOptions& options);
    std::vector<std::string> parent_candidates() const;
    BlockResult<std::vector<u8>*> bitmap(u32 block);
    Run run_at(u64 offset, u64 end, std::vector<u8>* bits) const;
    BlockResult<Run> run_at(u64 offset, u64 end);
    BlockStatus read_absent(u64 offset, std::span<u8> out);
    BlockResult<u64> allocate(u32 block);
    std::vector<std::string> check_blocks(u64 file_size) const;

    HostFile m_file;
    VhdStepObserver m_observer;
    ImageInfo m_info;
    VhdFooter m_footer{};
    DiskType m_type = DiskType::Fixed;
    VhdDynamicHeader m_header{};
    u64 m_header_offset = 0;
    u64 m_bat_offset = 0;
    std::vector<u32> m_bat;
    u32 m_block_size = 0;
    u32 m_bitmap_size = 0;
    std::vector<Region> m_metadata; // what blocks must not overlap
    u64 m_next_block = 0;           // where the next block goes; the end footer follows the last
    u64 m_file_size = 0;
    std::unique_ptr<BlockImage> m_parent;
    std::unordered_map<u32, std::vector<u8>> m_bitmaps; // cache, by block
    std::set<u32> m_dirty_bitmaps;                      // bits set since the last flush
    std::set<u64> m_dirty_bat;                          // BAT sectors with new entries
};

BlockStatus VhdImage::open(const FooterChoice& choice, u64 file_size, const OpenOptions& options)
{
    const std::string& path = m_file.path();
    m_footer = choice.footer;
    m_file_size = file_size;
    u32 type = m_footer.disk_type.get();
    if (type != u32(DiskType::Fixed) && type != u32(DiskType::Dynamic) &&
        type != u32(DiskType::Differencing))
        return file_error(BlockErrorKind::Unsupported, path,
                          "VHD disk type " + std::to_string(type) +
                              " is not fixed (2), dynamic (3) or differencing (4)");
    m_type = DiskType(type);
    m_info.format = "vpc";
    m_info.subformat = m_type == DiskType::Fixed     ? "fixed"
                       : m_type == DiskType::Dynamic ? "dynamic"
                                                     : "differencing";
    m_info.virtual_size = footer_virtual_size(m_footer);
    m_info.read_only = options.read_only || !m_file.writable();
    if (m_info.virtual_size > MAX_SECTORS * SECTOR)
        return file_error(BlockErrorKind::Unsupported, path,
                          "VHD disk of " + std::to_string(m_info.virtual_size) +
                              " bytes is larger than the format's 2040 GiB");
    if (m_type == DiskType::Fixed) {
        if (m_info.virtual_size > file_size - sizeof(VhdFooter))
            return file_error(BlockErrorKind::Corrupt, path,
                              "fixed VHD of " + std::to_string(m_info.virtual_size) +
                                  " bytes is truncated (the file holds " +
                                  std::to_string(file_size - sizeof(VhdFooter)) + ")");
        return {};
    }
    TRY(open_dynamic(file_size));
    if (m_type == DiskType::Differencing && !options.without_parent)
        TRY(open_parent(options));
    else if (m_type == DiskType::Differencing)
        m_info.parent = first_regular_file(parent_candidates());
    return {};
}

BlockStatus VhdImage::open_dynamic(u64 file_size)
{
    const std::string& path = m_file.path();
    auto corrupt = [&](const std::string& what) {
        return file_error(BlockErrorKind::Corrupt, path, what);
    };
    m_header_offset = m_footer.data_offset.get();
    if (m_header_offset > file_size || file_size - m_header_offset < sizeof m_header ||
        m_header_offset % SECTOR != 0)
        return corrupt("VHD dynamic header offset " + std::to_string(m_header_offset) +
                       " is outside the file");
    TRY(m_file.read_at(m_header_offset, {reinterpret_cast<u8*>(&m_header), sizeof m_header}));
    if (std::memcmp(m_header.cookie, "cxsparse", 8) != 0)
        return corrupt("VHD dynamic header has no \"cxsparse\" cookie");
    // QEMU does not check this checksum; the spec defines it, and a header
    // with a wrong one is as damaged as a footer with one.
    if (checksum_of(m_header, m_header.checksum) != m_header.checksum.get())
        return corrupt("VHD dynamic header checksum is incorrect");
    u64 block_size = m_header.block_size.get();
    if (block_size < SECTOR || block_size > MAX_BLOCK_SIZE || (block_size & (block_size - 1)))
        return corrupt("VHD block size " + std::to_string(block_size) +
                       " is not a power of two from 512 bytes to 256 MiB");
    m_block_size = static_cast<u32>(block_size);
    // One bit per sector, padded to whole sectors: never less than one sector.
    m_bitmap_size = static_cast<u32>(round_up((block_size / SECTOR + 7) / 8, SECTOR));
    m_info.block_size = block_size;
    u64 entries = m_header.max_table_entries.get();
    if (entries * block_size < m_info.virtual_size)
        return corrupt("VHD BAT of " + std::to_string(entries) + " entries is too small for " +
                       std::to_string(m_info.virtual_size) + " bytes");
    m_bat_offset = m_header.table_offset.get();
    if (m_bat_offset > file_size || file_size - m_bat_offset < entries * 4 ||
        m_bat_offset % SECTOR != 0)
        return corrupt("VHD BAT at " + std::to_string(m_bat_offset) + " (" +
                       std::to_string(entries) + " entries) is outside the file");
    std::vector<u8> raw(entries * 4);
    TRY(m_file.read_at(m_bat_offset, raw));
    m_bat.resize(entries);
    for (u64 i = 0; i < entries; ++i)
        m_bat[i] = (u32{raw[4 * i]} << 24) | (u32{raw[4 * i + 1]} << 16) |
                   (u32{raw[4 * i + 2]} << 8) | raw[4 * i + 3];

    m_metadata = {{0, sizeof(VhdFooter), "the footer copy"},
                  {m_header_offset, m_header_offset + sizeof m_header, "the dynamic header"},
                  {m_bat_offset, m_bat_offset + round_up(entries * 4, SECTOR), "the BAT"}};
    if (m_type == DiskType::Differencing) {
        for (const VhdParentLocator& locator : m_header.locators) {
            u64 offset = locator.data_offset.get();
            u64 space = std::max<u64>(locator.data_space.get(), locator.data_length.get());
            if (locator.platform_code.get() != 0 && offset < file_size && space > 0)
                m_metadata.push_back({offset, offset + std::min(space, file_size - offset),
                                      "a parent locator"});
        }
    }
    m_next_block = 0;
    for (const Region& region : m_metadata)
        m_next_block = std::max(m_next_block, round_up(region.end, SECTOR));
    for (u32 entry : m_bat)
        if (entry != UNALLOCATED)
            m_next_block = std::max(m_next_block, u64{entry} * SECTOR + block_bytes());
    std::vector<std::string> errors = check_blocks(file_size);
    if (!errors.empty())
        return corrupt(errors.front());
    return {};
}

// BAT entries that point past the end of the file (QEMU refuses these as
// "truncated"), into the metadata, or into each other: a write through such
// an entry would damage the image, so they are refused at open.
std::vector<std::string> VhdImage::check_blocks(u64 file_size) const
{
    std::vector<std::string> errors;
    std::vector<std::pair<u64, u32>> starts;
    for (u32 block = 0; block < m_bat.size(); ++block) {
        if (m_bat[block] == UNALLOCATED)
            continue;
        u64 start = block_start(block), end = start + block_bytes();
        std::string name = "VHD BAT entry " + std::to_string(block) + " (offset " +
                           std::to_string(start) + ")";
        if (end > file_size)
            errors.push_back(name + " points past the end of the file");
        for (const Region& region : m_metadata)
            if (start < region.end && region.start < end)
                errors.push_back(name + " overlaps " + region.what);
        starts.emplace_back(start, block);
    }
    std::sort(starts.begin(), starts.end());
    for (size_t i = 1; i < starts.size(); ++i)
        if (starts[i].first < starts[i - 1].first + block_bytes())
            errors.push_back("VHD BAT entries " + std::to_string(starts[i - 1].second) + " and " +
                             std::to_string(starts[i].second) + " overlap");
    return errors;
}

std::vector<std::string> VhdImage::parent_candidates() const
{
    namespace fs = std::filesystem;
    fs::path directory = fs::path(m_file.path()).parent_path();
    auto windows_to_host = [](std::string path) {
        std::replace(path.begin(), path.end(), '\\', '/');
        return path;
    };
    std::vector<std::string> candidates;
    // Relative locators first: they stay right when a parent and child are
    // moved together, the usual way images travel; then absolute ones; then
    // the parent's name beside the child as a last resort.
    for (u32 platform : {PLATFORM_W2RU, PLATFORM_W2KU}) {
        for (const VhdParentLocator& locator : m_header.locators) {
            if (locator.platform_code.get() != platform)
                continue;
            u64 offset = locator.data_offset.get(), length = locator.data_length.get();
            if (length == 0 || length > 64 * 1024 || offset > m_file_size ||
                m_file_size - offset < length)
                continue;
            std::vector<u8> bytes(length);
            if (m_file.read_at(offset, bytes).is_error())
                continue;
            std::string path = windows_to_host(utf16_to_utf8(bytes, false));
            if (path.empty())
                continue;
            if (platform == PLATFORM_W2RU)
                candidates.push_back((directory / path).lexically_normal().string());
            else if (path.front() == '/') // a drive letter ("C:/...") names no host path
                candidates.push_back(path);
        }
    }
    std::string name = windows_to_host(utf16_to_utf8(m_header.parent_unicode_name, true));
    if (!name.empty())
        candidates.push_back((directory / fs::path(name).filename()).string());
    return candidates;
}

BlockStatus VhdImage::open_parent(const OpenOptions& options)
{
    const std::string& path = m_file.path();
    if (t_chain_depth > MAX_CHAIN_DEPTH)
        return file_error(BlockErrorKind::Corrupt, path,
                          "differencing chain deeper than " + std::to_string(MAX_CHAIN_DEPTH) +
                              " images (does it loop?)");
    std::string expected = hex_id(m_header.parent_unique_id);
    std::string tried, mismatch;
    for (const std::string& candidate : parent_candidates()) {
        // Only regular files: a locator naming a FIFO or a device would
        // block the open or read something that is no image.
        std::error_code error;
        if (!std::filesystem::is_regular_file(candidate, error)) {
            tried += (tried.empty() ? "" : ", ") + candidate;
            continue;
        }
        OpenOptions parent_options;
        parent_options.format = "vpc";
        parent_options.read_only = true;
        parent_options.cache = options.cache;
        auto opened = open_image(candidate, parent_options);
        if (opened.is_error())
            return file_error(opened.error().kind, path,
                              "parent " + opened.error().message);
        auto* parent = dynamic_cast<VhdImage*>(opened.value().image.get());
        std::string id = parent ? hex_id(parent->footer().unique_id) : "";
        if (id != expected) {
            mismatch = candidate + " has unique id " + id + ", the differencing disk expects " +
                       expected;
            continue;
        }
        m_info.parent = candidate;
        m_parent = std::move(opened.value().image);
        return {};
    }
    if (!mismatch.empty())
        return file_error(BlockErrorKind::Corrupt, path,
                          "parent " + mismatch + " (the parent was replaced or modified)");
    return file_error(BlockErrorKind::NotFound, path,
                      "parent of the differencing disk not found (tried: " +
                          (tried.empty() ? std::string("no usable parent locator") : tried) + ")");
}

BlockResult<std::vector<u8>*> VhdImage::bitmap(u32 block)
{
    auto found = m_bitmaps.find(block);
    if (found != m_bitmaps.end())
        return &found->second;
    // A bounded cache: clean bitmaps are dropped when it fills up (8192
    // bitmaps of a 2 MiB-block disk cover 16 GiB).
    if (m_bitmaps.size() >= 8192)
        std::erase_if(m_bitmaps, [&](const auto& entry) { return !m_dirty_bitmaps.contains(entry.first); });
    std::vector<u8> bits(m_bitmap_size);
    TRY(m_file.read_at(block_start(block), bits));
    return &m_bitmaps.emplace(block, std::move(bits)).first->second;
}

// The longest run from `offset` (inside one block, before `end`) whose
// sectors are all present in this file or all absent from it.
VhdImage::Run VhdImage::run_at(u64 offset, u64 end, std::vector<u8>* bits) const
{
    u32 block = static_cast<u32>(offset / m_block_size);
    u64 block_end = std::min(end, (u64{block} + 1) * m_block_size);
    Run run;
    if (!bits) {
        run.length = block_end - offset;
        return run;
    }
    auto bit = [&](u64 at) {
        u64 sector = at % m_block_size / SECTOR;
        return ((*bits)[sector / 8] >> (7 - sector % 8)) & 1;
    };
    run.present = bit(offset);
    u64 at = offset + SECTOR;
    while (at < block_end && bit(at) == run.present)
        at += SECTOR;
    run.length = at - offset;
    if (run.present)
        run.host = block_start(block) + m_bitmap_size + offset % m_block_size;
    return run;
}

BlockResult<VhdImage::Run> VhdImage::run_at(u64 offset, u64 end)
{
    u32 block = static_cast<u32>(offset / m_block_size);
    std::vector<u8>* bits = m_bat[block] == UNALLOCATED ? nullptr : TRY(bitmap(block));
    return run_at(offset, end, bits);
}

// Sectors this file does not hold: the parent's, or zeros.
BlockStatus VhdImage::read_absent(u64 offset, std::span<u8> out)
{
    u64 below = 0;
    if (m_parent && offset < m_parent->info().virtual_size)
        below = std::min<u64>(out.size(), m_parent->info().virtual_size - offset);
    if (below > 0)
        TRY(m_parent->read(offset, out.first(below)));
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(below), out.end(), u8{0});
    return {};
}

BlockStatus VhdImage::read(u64 offset, std::span<u8> out)
{
    TRY(check_request(m_info, offset, out.size()));
    if (!sparse())
        return m_file.read_at(offset, out);
    u64 end = offset + out.size();
    for (u64 at = offset; at < end;) {
        Run run = TRY(run_at(at, end));
        std::span<u8> part = out.subspan(at - offset, run.length);
        if (run.present)
            TRY(m_file.read_at(*run.host, part));
        else
            TRY(read_absent(at, part));
        at += run.length;
    }
    return {};
}

// Step 1 of the order at the top of this file.
BlockResult<u64> VhdImage::allocate(u32 block)
{
    u64 start = m_next_block;
    u64 end = start + block_bytes();
    if (start / SECTOR >= UNALLOCATED)
        return file_error(BlockErrorKind::NoSpace, m_file.path(),
                          "VHD file cannot grow past 2 TiB of blocks");
    TRY(m_file.write_at(end, {reinterpret_cast<const u8*>(&m_footer), sizeof m_footer}));
    // Blocks a crash left without a BAT entry, and whatever else lay past
    // the last block, must read as zeros in the new block and must not be
    // mistaken for the end footer.
    if (m_file_size > end + sizeof m_footer)
        TRY(m_file.set_size(end + sizeof m_footer));
    if (m_file_size > start + m_bitmap_size)
        TRY(m_file.zero_range(start + m_bitmap_size, std::min(m_file_size, end) - start - m_bitmap_size));
    m_file_size = end + sizeof m_footer;
    step("footer moved");
    std::vector<u8> bits(m_bitmap_size, 0);
    TRY(m_file.write_at(start, bits));
    m_bat[block] = static_cast<u32>(start / SECTOR);
    m_next_block = end;
    m_bitmaps[block] = std::move(bits);
    m_dirty_bat.insert(u64{block} * 4 / SECTOR);
    step("block allocated");
    return start;
}

BlockStatus VhdImage::write(u64 offset, std::span<const u8> data)
{
    TRY(check_request(m_info, offset, data.size()));
    if (m_info.read_only)
        return file_error(BlockErrorKind::ReadOnly, m_file.path(), "opened read-only");
    if (!sparse())
        return m_file.write_at(offset, data);
    u64 end = offset + data.size();
    for (u64 at = offset; at < end;) {
        u32 block = static_cast<u32>(at / m_block_size);
        u64 chunk = std::min(end, (u64{block} + 1) * m_block_size) - at;
        if (m_bat[block] == UNALLOCATED)
            TRY(allocate(block));
        u64 in_block = at % m_block_size;
        TRY(m_file.write_at(block_start(block) + m_bitmap_size + in_block,
                            data.subspan(at - offset, chunk)));
        step("data written");
        std::vector<u8>& bits = *TRY(bitmap(block));
        for (u64 sector = in_block / SECTOR; sector < (in_block + chunk) / SECTOR; ++sector) {
            u8 mask = static_cast<u8>(0x80 >> (sector % 8));
            if (!(bits[sector / 8] & mask)) {
                bits[sector / 8] |= mask;
                m_dirty_bitmaps.insert(block);
            }
        }
        at += chunk;
    }
    return {};
}

// Step 3 of the order at the top of this file.
BlockStatus VhdImage::flush()
{
    if (!has_dirty_metadata())
        return m_file.flush();
    TRY(m_file.flush());
    step("data synced");
    for (u32 block : m_dirty_bitmaps)
        TRY(m_file.write_at(block_start(block), m_bitmaps.at(block)));
    for (u64 sector : m_dirty_bat) {
        u64 first = sector * SECTOR / 4;
        u64 last = std::min<u64>(m_bat.size(), first + SECTOR / 4);
        std::vector<u8> bytes;
        for (u64 i = first; i < last; ++i)
            for (int shift = 24; shift >= 0; shift -= 8)
                bytes.push_back(static_cast<u8>(m_bat[i] >> shift));
        TRY(m_file.write_at(m_bat_offset + first * 4, bytes));
    }
    m_dirty_bitmaps.clear();
    m_dirty_bat.clear();
    step("metadata written");
    return m_file.flush();
}

BlockResult<Extent> VhdImage::map(u64 offset, u64 max_length)
{
    TRY(check_request(m_info, offset, 0));
    u64 end = offset + std::min(max_length, m_info.virtual_size - offset);
    if (!sparse() || offset == end)
        return Extent{offset, end - offset, ExtentKind::Data, offset};
    // A dynamic disk's absent sectors read as zeros; a differencing disk's
    // come from its parent (or read as zeros without it, `without_parent`).
    ExtentKind absent = m_type == DiskType::Dynamic ? ExtentKind::Zero : ExtentKind::Unallocated;
    Run first = TRY(run_at(offset, end));
    Extent extent{offset, first.length, first.present ? ExtentKind::Data : absent, first.host};
    while (offset + extent.length < end) {
        Run next = TRY(run_at(offset + extent.length, end));
        bool same = next.present == first.present &&
                    (!next.present || *next.host == *extent.host_offset + extent.length);
        if (!same)
            break;
        extent.length += next.length;
    }
    return extent;
}

BlockResult<CheckReport> VhdImage::check(bool repair)
{
    CheckReport report;
    u64 file_size = TRY(m_file.size());
    m_file_size = file_size;
    FooterChoice footers = TRY(choose_footer(m_file, file_size));
    if (!sparse()) {
        if (!footers.end_valid)
            report.errors.push_back("VHD footer at the end of the file is damaged");
        return report;
    }
    VhdFooter end{}, copy{};
    TRY(m_file.read_at(file_size - sizeof end, {reinterpret_cast<u8*>(&end), sizeof end}));
    TRY(m_file.read_at(0, {reinterpret_cast<u8*>(&copy), sizeof copy}));
    bool end_ok = footers.end_valid && std::memcmp(&end, &m_footer, sizeof end) == 0;
    bool copy_ok = footers.copy_valid && std::memcmp(&copy, &m_footer, sizeof copy) == 0;
    if (!end_ok || file_size - sizeof end < m_next_block) {
        if (repair) {
            // Past the last block nothing is referenced: the footer goes
            // right after it, and the file ends there.
            TRY(m_file.set_size(m_next_block + sizeof m_footer));
            TRY(m_file.write_at(m_next_block,
                                {reinterpret_cast<const u8*>(&m_footer), sizeof m_footer}));
            TRY(m_file.flush());
            m_file_size = m_next_block + sizeof m_footer;
            report.repaired.push_back("VHD footer at the end of the file rewritten from its copy");
        } else {
            report.errors.push_back(footers.end_valid
                                        ? "VHD footer at the end of the file differs from its copy"
                                        : "VHD footer at the end of the file is damaged");
        }
    }
    if (!copy_ok) {
        if (repair) {
            TRY(m_file.write_at(0, {reinterpret_cast<const u8*>(&m_footer), sizeof m_footer}));
            TRY(m_file.flush());
            report.repaired.push_back("VHD footer copy at offset 0 rewritten");
        } else {
            report.errors.push_back("VHD footer copy at offset 0 is damaged or differs");
        }
    }
    VhdDynamicHeader header{};
    TRY(m_file.read_at(m_header_offset, {reinterpret_cast<u8*>(&header), sizeof header}));
    if (checksum_of(header, header.checksum) != header.checksum.get())
        report.errors.push_back("VHD dynamic header checksum is incorrect");
    u64 needed = (m_info.virtual_size + m_block_size - 1) / m_block_size;
    if (m_bat.size() < needed)
        report.errors.push_back("VHD BAT has " + std::to_string(m_bat.size()) +
                                " entries, the disk needs " + std::to_string(needed));
    for (std::string& error : check_blocks(m_file_size))
        report.errors.push_back(std::move(error));
    report.total_blocks = needed;
    for (u32 entry : m_bat)
        report.allocated_blocks += entry != UNALLOCATED;
    return report;
}

bool probe_vpc(std::span<const u8> head, std::span<const u8> tail, u64)
{
    // QEMU probes only the start ("conectix" there is a dynamic disk's
    // footer copy), so it takes a fixed VHD for raw; its footer at the end
    // is recognized here too, when its checksum holds and it says fixed.
    if (head.size() >= 8 && std::memcmp(head.data(), "conectix", 8) == 0)
        return true;
    if (tail.size() != sizeof(VhdFooter))
        return false;
    VhdFooter footer{};
    std::memcpy(&footer, tail.data(), sizeof footer);
    return footer_valid(footer) && footer.disk_type.get() == u32(DiskType::Fixed);
}

BlockResult<std::unique_ptr<BlockImage>> open_vpc(HostFile file, const OpenOptions& options)
{
    return open_vhd_image(std::move(file), options, {});
}

// ---- create ----

struct VhdCreateParameters {
    bool fixed = false;
    bool force_size = false;
    u64 block_size = DEFAULT_BLOCK_SIZE;
};

BlockResult<u64> parse_size_option(const std::string& name, const std::string& value)
{
    size_t used = 0;
    u64 number = 0;
    try {
        number = std::stoull(value, &used);
    } catch (...) {
        used = 0;
    }
    std::string suffix = value.substr(used);
    u64 scale = suffix.empty() ? 1 : suffix == "K" || suffix == "k" ? 1 << 10 : suffix == "M" ? 1 << 20 : 0;
    if (used == 0 || scale == 0)
        return block_error(BlockErrorKind::InvalidArgument,
                           "VHD option " + name + "=" + value + " is not a size");
    return number * scale;
}

BlockResult<VhdCreateParameters> parse_create_options(const CreateOptions& options)
{
    VhdCreateParameters parameters;
    bool block_size_given = false;
    for (const auto& [name, value] : options.options) {
        auto invalid = [&, &name = name, &value = value] {
            return block_error(BlockErrorKind::InvalidArgument,
                               "VHD option " + name + "=" + value + " is not valid");
        };
        if (name == "subformat") {
            if (value != "fixed" && value != "dynamic")
                return invalid();
            parameters.fixed = value == "fixed";
        } else if (name == "force_size") {
            if (value != "on" && value != "off" && value != "true" && value != "false")
                return invalid();
            parameters.force_size = value == "on" || value == "true";
        } else if (name == "block_size") {
            parameters.block_size = TRY(parse_size_option(name, value));
            u64 size = parameters.block_size;
            if (size < SECTOR || size > MAX_BLOCK_SIZE || (size & (size - 1)))
                return block_error(BlockErrorKind::InvalidArgument,
                                   "VHD block_size must be a power of two from 512 bytes to 256 MiB");
            block_size_given = true;
        } else {
            return block_error(BlockErrorKind::InvalidArgument,
                               "VHD images take no option '" + name +
                                   "' (subformat, force_size, block_size)");
        }
    }
    if (parameters.fixed && (block_size_given || !options.parent.empty()))
        return block_error(BlockErrorKind::InvalidArgument,
                           parameters.fixed && !options.parent.empty()
                               ? "a fixed VHD cannot have a parent (-b)"
                               : "a fixed VHD has no block_size");
    return parameters;
}

void random_id(u8 (&id)[16])
{
    std::random_device random;
    for (u8& byte : id)
        byte = static_cast<u8>(random());
    id[6] = static_cast<u8>((id[6] & 0x0F) | 0x40); // RFC 4122 version 4
    id[8] = static_cast<u8>((id[8] & 0x3F) | 0x80);
}

u32 vhd_now()
{
    auto now = std::chrono::system_clock::now().time_since_epoch();
    return static_cast<u32>(std::chrono::duration_cast<std::chrono::seconds>(now).count() -
                            static_cast<long long>(VHD_EPOCH));
}

void seal(VhdFooter& footer)
{
    footer.checksum.set(0);
    footer.checksum.set(checksum_of(footer, footer.checksum));
}

struct ParentFacts {
    VhdFooter footer{};
    std::string absolute;
    u32 mtime = 0;
};

BlockResult<ParentFacts> read_parent(const std::string& parent)
{
    OpenOptions options;
    options.format = "vpc";
    options.read_only = true;
    OpenedImage opened = TRY(open_image(parent, options));
    auto* image = dynamic_cast<VhdImage*>(opened.image.get());
    if (!image)
        return block_error(BlockErrorKind::InvalidArgument, parent + ": not a VHD image");
    ParentFacts facts;
    facts.footer = image->footer();
    facts.footer.current_size.set(image->info().virtual_size);
    facts.absolute = std::filesystem::absolute(parent).lexically_normal().string();
    struct stat st {};
    if (::stat(parent.c_str(), &st) == 0 && static_cast<u64>(st.st_mtime) > VHD_EPOCH)
        facts.mtime = static_cast<u32>(static_cast<u64>(st.st_mtime) - VHD_EPOCH);
    return facts;
}

BlockStatus create_vpc(const std::string& path, const CreateOptions& options)
{
    VhdCreateParameters parameters = TRY(parse_create_options(options));
    VhdFooter footer{};
    std::memcpy(footer.cookie, "conectix", 8);
    footer.features.set(2); // "reserved, must always be set"
    footer.format_version.set(0x00010000);
    footer.timestamp.set(vhd_now());
    footer.creator_version.set(0x00050003); // what qemu-img writes (Virtual PC 2007)
    std::memcpy(footer.creator_host_os, "Wi2k", 4);
    random_id(footer.unique_id);

    std::optional<ParentFacts> parent;
    u64 size = round_up(options.size, SECTOR);
    if (!options.parent.empty()) {
        parent = TRY(read_parent(options.parent));
        u64 parent_size = parent->footer.current_size.get();
        if (size != 0 && size != parent_size)
            return block_error(BlockErrorKind::InvalidArgument,
                               "a differencing VHD has its parent's size (" +
                                   std::to_string(parent_size) + " bytes)");
        size = parent_size;
        footer.cylinders = parent->footer.cylinders;
        footer.heads = parent->footer.heads;
        footer.sectors_per_track = parent->footer.sectors_per_track;
    } else if (parameters.force_size) {
        // qemu-img: the maximum geometry, so the size is current_size.
        footer.cylinders.set(65535);
        footer.heads = 16;
        footer.sectors_per_track = 255;
    } else {
        // qemu-img: the smallest CHS geometry that holds the size, and the
        // disk is exactly that big (1 GiB becomes 1,073,995,776 bytes).
        u64 sectors = std::min(MAX_GEOMETRY_SECTORS, size / SECTOR);
        u16 cylinders = 0;
        u8 heads = 0, sectors_per_track = 0;
        for (u64 extra = 0; sectors > u64{cylinders} * heads * sectors_per_track; ++extra)
            geometry_for(sectors + extra, cylinders, heads, sectors_per_track);
        footer.cylinders.set(cylinders);
        footer.heads = heads;
        footer.sectors_per_track = sectors_per_track;
        u64 chs = u64{cylinders} * heads * sectors_per_track;
        if (chs != MAX_GEOMETRY_SECTORS)
            size = chs * SECTOR;
    }
    if (size > MAX_SECTORS * SECTOR)
        return block_error(BlockErrorKind::InvalidArgument,
                           "a VHD holds at most 2040 GiB (" + std::to_string(MAX_SECTORS * SECTOR) +
                               " bytes)");
    footer.original_size.set(size);
    footer.current_size.set(size);
    // qemu-img's creator names: "qemu" when the geometry gives the size,
    // "qem2" when current_size does; QEMU and footer_virtual_size() then
    // read the same size back.
    u64 chs = u64{footer.cylinders.get()} * footer.heads * footer.sectors_per_track;
    std::memcpy(footer.creator_application, chs * SECTOR == size ? "qemu" : "qem2", 4);

    HostFile file = TRY(HostFile::create(path));
    if (parameters.fixed) {
        footer.disk_type.set(u32(DiskType::Fixed));
        footer.data_offset.set(NO_DATA_OFFSET);
        seal(footer);
        TRY(file.set_size(size));
        TRY(file.write_at(size, {reinterpret_cast<const u8*>(&footer), sizeof footer}));
        return file.flush();
    }

    // Footer copy, dynamic header, the parent locators' data (before the
    // BAT, so that QEMU, which puts new blocks after the BAT and knows
    // nothing of locators, cannot allocate over them), the BAT, the footer.
    footer.disk_type.set(u32(parent ? DiskType::Differencing : DiskType::Dynamic));
    footer.data_offset.set(sizeof footer);
    seal(footer);
    VhdDynamicHeader header{};
    std::memcpy(header.cookie, "cxsparse", 8);
    header.data_offset.set(NO_DATA_OFFSET);
    header.header_version.set(0x00010000);
    header.block_size.set(static_cast<u32>(parameters.block_size));
    u64 entries = (size + parameters.block_size - 1) / parameters.block_size;
    header.max_table_entries.set(static_cast<u32>(entries));
    u64 offset = sizeof footer + sizeof header;
    std::vector<std::pair<u64, std::vector<u8>>> locator_data;
    if (parent) {
        std::memcpy(header.parent_unique_id, parent->footer.unique_id, 16);
        header.parent_timestamp.set(parent->mtime);
        std::string name = std::filesystem::path(parent->absolute).filename().string();
        std::vector<u8> unicode = utf8_to_utf16(name, true);
        std::memcpy(header.parent_unicode_name, unicode.data(),
                    std::min(unicode.size(), sizeof header.parent_unicode_name));
        // Hyper-V writes an absolute (W2ku) and a relative (W2ru) locator.
        namespace fs = std::filesystem;
        fs::path child_dir = fs::absolute(path).lexically_normal().parent_path();
        std::string relative = fs::path(parent->absolute).lexically_relative(child_dir).string();
        if (relative.rfind("..", 0) != 0)
            relative = "./" + relative;
        std::replace(relative.begin(), relative.end(), '/', '\\');
        int index = 0;
        for (auto [platform, text] : {std::pair{PLATFORM_W2KU, parent->absolute},
                                      std::pair{PLATFORM_W2RU, relative}}) {
            std::vector<u8> bytes = utf8_to_utf16(text, false);
            u64 space = round_up(std::max<u64>(bytes.size(), 1), SECTOR);
            VhdParentLocator& locator = header.locators[index++];
            locator.platform_code.set(platform);
            locator.data_space.set(static_cast<u32>(space));
            locator.data_length.set(static_cast<u32>(bytes.size()));
            locator.data_offset.set(offset);
            bytes.resize(space, 0);
            locator_data.emplace_back(offset, std::move(bytes));
            offset += space;
        }
    }
    header.table_offset.set(offset);
    header.checksum.set(checksum_of(header, header.checksum));
    std::vector<u8> bat(round_up(entries * 4, SECTOR), 0xFF);
    TRY(file.write_at(offset, bat));
    for (const auto& [at, bytes] : locator_data)
        TRY(file.write_at(at, bytes));
    TRY(file.write_at(sizeof footer, {reinterpret_cast<const u8*>(&header), sizeof header}));
    TRY(file.write_at(offset + bat.size(), {reinterpret_cast<const u8*>(&footer), sizeof footer}));
    TRY(file.write_at(0, {reinterpret_cast<const u8*>(&footer), sizeof footer}));
    return file.flush();
}

} // namespace

BlockResult<std::unique_ptr<BlockImage>> open_vhd_image(HostFile file, const OpenOptions& options,
                                                        VhdStepObserver observer)
{
    ChainDepth depth;
    u64 size = TRY(file.size());
    FooterChoice choice = TRY(choose_footer(file, size));
    auto image = std::make_unique<VhdImage>(std::move(file), std::move(observer));
    TRY(image->open(choice, size, options));
    return std::unique_ptr<BlockImage>(std::move(image));
}

const ImageFormat vpc_format{"vpc", probe_vpc, open_vpc, create_vpc};
