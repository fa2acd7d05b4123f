// The on-disk structures of VHDX ([MS-VHDX] v20160714, section 2). Every
// structure mirrors its layout (sizes static_assert'ed) and is read and
// written with explicit little-endian loads and stores through decode() and
// encode(), never by casting file bytes.
#pragma once

#include "mmu/base/types.h"

#include <array>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace vhdx {

constexpr u64 KiB = 1024;
constexpr u64 MiB = 1024 * KiB;
constexpr u64 GiB = 1024 * MiB;
constexpr u64 TiB = 1024 * GiB;

// --- little-endian access ---------------------------------------------------
inline u16 load16(const u8* p) { return static_cast<u16>(p[0] | p[1] << 8); }
inline u32 load32(const u8* p) { return load16(p) | static_cast<u32>(load16(p + 2)) << 16; }
inline u64 load64(const u8* p) { return load32(p) | static_cast<u64>(load32(p + 4)) << 32; }
inline void store16(u8* p, u16 v) { p[0] = static_cast<u8>(v); p[1] = static_cast<u8>(v >> 8); }
inline void store32(u8* p, u32 v) { store16(p, static_cast<u16>(v)); store16(p + 2, static_cast<u16>(v >> 16)); }
inline void store64(u8* p, u64 v) { store32(p, static_cast<u32>(v)); store32(p + 4, static_cast<u32>(v >> 32)); }
// Signatures are ASCII strings stored as they read ("head" is 68 65 61 64).
constexpr u32 sig32(const char (&s)[5])
{
    return static_cast<u32>(static_cast<u8>(s[0])) | static_cast<u32>(static_cast<u8>(s[1])) << 8 |
           static_cast<u32>(static_cast<u8>(s[2])) << 16 |
           static_cast<u32>(static_cast<u8>(s[3])) << 24;
}

// A GUID in its on-disk byte order (Data1..Data3 little-endian, Data4 as is).
struct Guid {
    std::array<u8, 16> bytes{};
    bool is_zero() const
    {
        for (u8 b : bytes)
            if (b)
                return false;
        return true;
    }
    bool operator==(const Guid&) const = default;
    // "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" in lower case.
    std::string to_string() const;
    // Parses the string form, with or without braces; false when malformed.
    static bool parse(std::string_view text, Guid& out);
    // A version 4 (random) GUID from the host's random source.
    static Guid random();
};
static_assert(sizeof(Guid) == 16);

// Constructs a GUID from its string form at compile time.
consteval Guid make_guid(const char (&s)[37])
{
    auto hex = [](char c) -> u8 {
        return static_cast<u8>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    };
    auto byte_at = [&](int i) -> u8 { return static_cast<u8>(hex(s[i]) << 4 | hex(s[i + 1])); };
    Guid g;
    // Data1 (4 bytes), Data2, Data3 little-endian; Data4 in string order.
    const int order[16] = {6, 4, 2, 0, 11, 9, 16, 14, 19, 21, 24, 26, 28, 30, 32, 34};
    for (int i = 0; i < 16; ++i)
        g.bytes[static_cast<size_t>(i)] = byte_at(order[i]);
    return g;
}

// --- layout (2.1, 2.2) ------------------------------------------------------
constexpr u64 FILE_IDENTIFIER_OFFSET = 0;
constexpr u64 HEADER_OFFSETS[2] = {64 * KiB, 128 * KiB};
constexpr u64 HEADER_SIZE = 4 * KiB; // the CRC covers all 4 KiB
constexpr u64 REGION_TABLE_OFFSETS[2] = {192 * KiB, 256 * KiB};
constexpr u64 REGION_TABLE_SIZE = 64 * KiB;
constexpr u64 HEADER_AREA_SIZE = 1 * MiB;
constexpr u64 REGION_ALIGNMENT = 1 * MiB; // 2.2.3.2: offsets and lengths of regions
constexpr u64 LOG_SECTOR_SIZE = 4 * KiB;
constexpr u64 METADATA_TABLE_SIZE = 64 * KiB;
constexpr u64 SECTOR_BITMAP_BLOCK_SIZE = 1 * MiB;
constexpr u64 MIN_BLOCK_SIZE = 1 * MiB; // 2.6.2.1
constexpr u64 MAX_BLOCK_SIZE = 256 * MiB;
constexpr u64 MAX_VIRTUAL_DISK_SIZE = 64 * TiB; // 2.6.2.2
constexpr u64 MAX_METADATA_ITEM_SIZE = 1 * MiB;
constexpr u32 MAX_LOG_LENGTH = 1 * GiB; // not in the spec: bounds a hostile header

constexpr u64 FILE_SIGNATURE = 0x656C696678646876ull; // "vhdxfile"
constexpr u32 HEADER_SIGNATURE = sig32("head");
constexpr u32 REGION_SIGNATURE = sig32("regi");
constexpr u64 METADATA_SIGNATURE = 0x617461646174656Dull; // "metadata"
constexpr u32 LOG_ENTRY_SIGNATURE = sig32("loge");
constexpr u32 LOG_DATA_DESCRIPTOR_SIGNATURE = sig32("desc");
constexpr u32 LOG_ZERO_DESCRIPTOR_SIGNATURE = sig32("zero");
constexpr u32 LOG_DATA_SECTOR_SIGNATURE = sig32("data");

// 2.2.3.1 and 2.6.1: region and metadata item identifiers.
constexpr Guid BAT_REGION = make_guid("2dc27766-f623-4200-9d64-115e9bfd4a08");
constexpr Guid METADATA_REGION = make_guid("8b7ca206-4790-4b9a-b8fe-575f050f886e");
constexpr Guid FILE_PARAMETERS_ITEM = make_guid("caa16737-fa36-4d43-b3b6-33f0aa44e76b");
constexpr Guid VIRTUAL_DISK_SIZE_ITEM = make_guid("2fa54224-cd1b-4876-b211-5dbed83bf4b8");
constexpr Guid PAGE83_DATA_ITEM = make_guid("beca12ab-b2e6-4523-93ef-c309e000c746");
constexpr Guid LOGICAL_SECTOR_SIZE_ITEM = make_guid("8141bf1d-a96f-4709-ba47-f233a8faab5f");
constexpr Guid PHYSICAL_SECTOR_SIZE_ITEM = make_guid("cda348c7-445d-4471-9cc9-e9885251c556");
constexpr Guid PARENT_LOCATOR_ITEM = make_guid("a8d35f2d-b30b-454d-abf7-d3d84834ab0c");
constexpr Guid VHDX_PARENT_LOCATOR_TYPE = make_guid("b04aefb7-d19e-4a81-b789-25b8e9445913");

// 2.2.2: one of the two headers (the rest of its 4 KiB is reserved, zero).
struct Header {
    u32 signature = HEADER_SIGNATURE;
    u32 checksum = 0;
    u64 sequence_number = 0;
    Guid file_write_guid;
    Guid data_write_guid;
    Guid log_guid;
    u16 log_version = 0;
    u16 version = 1;
    u32 log_length = 0;
    u64 log_offset = 0;

    static constexpr size_t SIZE = 80;
    static Header decode(std::span<const u8, SIZE> in);
    void encode(std::span<u8, SIZE> out) const;
};
static_assert(sizeof(Header) == Header::SIZE);

// 2.2.3: the region table header and its entries.
struct RegionTableHeader {
    u32 signature = REGION_SIGNATURE;
    u32 checksum = 0;
    u32 entry_count = 0;
    u32 reserved = 0;
    static constexpr size_t SIZE = 16;
    static constexpr u32 MAX_ENTRIES = 2047;
};
static_assert(sizeof(RegionTableHeader) == RegionTableHeader::SIZE);

struct RegionTableEntry {
    Guid guid;
    u64 file_offset = 0;
    u32 length = 0;
    u32 flags = 0; // bit 0: Required
    static constexpr size_t SIZE = 32;
    static constexpr u32 REQUIRED = 1;
    static RegionTableEntry decode(std::span<const u8, SIZE> in);
    void encode(std::span<u8, SIZE> out) const;
};
static_assert(sizeof(RegionTableEntry) == RegionTableEntry::SIZE);

// 2.6.1: the metadata table at the start of the metadata region.
struct MetadataTableHeader {
    u64 signature = METADATA_SIGNATURE;
    u16 reserved = 0;
    u16 entry_count = 0;
    u32 reserved2[5] = {};
    static constexpr size_t SIZE = 32;
    static constexpr u16 MAX_ENTRIES = 2047;
};
static_assert(sizeof(MetadataTableHeader) == MetadataTableHeader::SIZE);

struct MetadataTableEntry {
    Guid item_id;
    u32 offset = 0; // from the start of the metadata region
    u32 length = 0;
    u32 flags = 0;
    u32 reserved = 0;
    static constexpr size_t SIZE = 32;
    static constexpr u32 IS_USER = 1, IS_VIRTUAL_DISK = 2, IS_REQUIRED = 4;
    static MetadataTableEntry decode(std::span<const u8, SIZE> in);
    void encode(std::span<u8, SIZE> out) const;
};
static_assert(sizeof(MetadataTableEntry) == MetadataTableEntry::SIZE);

// 2.6.2.1
struct FileParameters {
    u32 block_size = 0;
    u32 flags = 0;
    static constexpr u32 LEAVE_BLOCKS_ALLOCATED = 1, HAS_PARENT = 2;
};
static_assert(sizeof(FileParameters) == 8);

// 2.6.2.6: the parent locator's header and key/value entries.
struct ParentLocatorHeader {
    Guid locator_type;
    u16 reserved = 0;
    u16 key_value_count = 0;
    static constexpr size_t SIZE = 20;
};
static_assert(sizeof(ParentLocatorHeader) == ParentLocatorHeader::SIZE);

struct ParentLocatorEntry {
    u32 key_offset = 0; // from the start of the locator item
    u32 value_offset = 0;
    u16 key_length = 0; // bytes of UTF-16LE
    u16 value_length = 0;
    static constexpr size_t SIZE = 12;
};
static_assert(sizeof(ParentLocatorEntry) == ParentLocatorEntry::SIZE);

// 2.5.1: a BAT entry: the state in bits 0-2, the file offset in MiB in
// bits 20-63.
enum class BlockState : u8 {
    NotPresent = 0,   // PAYLOAD_BLOCK_NOT_PRESENT; SB_BLOCK_NOT_PRESENT
    Undefined = 1,    // PAYLOAD_BLOCK_UNDEFINED
    Zero = 2,         // PAYLOAD_BLOCK_ZERO
    Unmapped = 3,     // PAYLOAD_BLOCK_UNMAPPED
    FullyPresent = 6, // PAYLOAD_BLOCK_FULLY_PRESENT; SB_BLOCK_PRESENT
    PartiallyPresent = 7,
};
inline BlockState bat_state(u64 entry) { return static_cast<BlockState>(entry & 7); }
inline u64 bat_offset(u64 entry) { return (entry >> 20) << 20; }
inline u64 make_bat_entry(BlockState state, u64 file_offset)
{
    return static_cast<u64>(state) | ((file_offset >> 20) << 20);
}

// 2.3.1.1: a log entry header, followed in its first sector by descriptors.
struct LogEntryHeader {
    u32 signature = LOG_ENTRY_SIGNATURE;
    u32 checksum = 0; // CRC-32C of the whole entry with this field zero
    u32 entry_length = 0;
    u32 tail = 0;
    u64 sequence_number = 0;
    u32 descriptor_count = 0;
    u32 reserved = 0;
    Guid log_guid;
    u64 flushed_file_offset = 0;
    u64 last_file_offset = 0;
    static constexpr size_t SIZE = 64;
    static LogEntryHeader decode(std::span<const u8, SIZE> in);
    void encode(std::span<u8, SIZE> out) const;
};
static_assert(sizeof(LogEntryHeader) == LogEntryHeader::SIZE);

// 2.3.1.2 (zero: 'zero', reserved, length, offset, sequence) and 2.3.1.3
// (data: 'desc', trailing 4 bytes, leading 8 bytes, offset, sequence).
struct LogDescriptor {
    u32 signature = 0;
    u32 trailing_bytes = 0; // data; reserved for zero
    u64 leading_bytes = 0;  // data; the zero length for zero
    u64 file_offset = 0;
    u64 sequence_number = 0;
    static constexpr size_t SIZE = 32;
    static LogDescriptor decode(std::span<const u8, SIZE> in);
    void encode(std::span<u8, SIZE> out) const;
};
static_assert(sizeof(LogDescriptor) == LogDescriptor::SIZE);

// 2.3.1.4: a data sector is 'data', sequence high, 4084 bytes, sequence low;
// the 4096-byte update is the descriptor's 8 leading bytes, the 4084 and the
// descriptor's 4 trailing bytes.
constexpr size_t LOG_DATA_SECTOR_PAYLOAD = 4084;

// CRC-32C of `data` with the 4-byte checksum field at `checksum_at` taken as
// zero (2.2.2, 2.2.3, 2.3.1.1).
u32 checksum_with_hole(std::span<const u8> data, size_t checksum_at);

// Chunk ratio (2.5): payload blocks per sector bitmap block.
inline u64 chunk_ratio(u64 logical_sector_size, u64 block_size)
{
    return (u64{1} << 23) * logical_sector_size / block_size;
}

} // namespace vhdx
