#include "platform/block/vhdx_format.h"

#include "platform/block/crc32c.h"

#include <random>

namespace vhdx {

std::string Guid::to_string() const
{
    static const char digits[] = "0123456789abcdef";
    const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    std::string text;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            text += '-';
        u8 b = bytes[static_cast<size_t>(order[i])];
        text += digits[b >> 4];
        text += digits[b & 15];
    }
    return text;
}

bool Guid::parse(std::string_view text, Guid& out)
{
    if (text.size() == 38 && text.front() == '{' && text.back() == '}')
        text = text.substr(1, 36);
    if (text.size() != 36)
        return false;
    const int positions[16] = {6, 4, 2, 0, 11, 9, 16, 14, 19, 21, 24, 26, 28, 30, 32, 34};
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        c = static_cast<char>(c | 0x20);
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    for (size_t dash : {8u, 13u, 18u, 23u})
        if (text[dash] != '-')
            return false;
    Guid g;
    for (int i = 0; i < 16; ++i) {
        int hi = hex(text[static_cast<size_t>(positions[i])]);
        int lo = hex(text[static_cast<size_t>(positions[i]) + 1]);
        if (hi < 0 || lo < 0)
            return false;
        g.bytes[static_cast<size_t>(i)] = static_cast<u8>(hi << 4 | lo);
    }
    out = g;
    return true;
}

Guid Guid::random()
{
    std::random_device device;
    Guid g;
    for (size_t i = 0; i < 16; i += 4) {
        u32 word = device();
        std::memcpy(&g.bytes[i], &word, 4);
    }
    g.bytes[7] = static_cast<u8>((g.bytes[7] & 0x0F) | 0x40); // version 4 (Data3's high nibble)
    g.bytes[8] = static_cast<u8>((g.bytes[8] & 0x3F) | 0x80); // RFC 4122 variant
    return g;
}

namespace {
Guid load_guid(const u8* p)
{
    Guid g;
    std::memcpy(g.bytes.data(), p, 16);
    return g;
}
void store_guid(u8* p, const Guid& g)
{
    std::memcpy(p, g.bytes.data(), 16);
}
} // namespace

Header Header::decode(std::span<const u8, SIZE> in)
{
    const u8* p = in.data();
    Header h;
    h.signature = load32(p);
    h.checksum = load32(p + 4);
    h.sequence_number = load64(p + 8);
    h.file_write_guid = load_guid(p + 16);
    h.data_write_guid = load_guid(p + 32);
    h.log_guid = load_guid(p + 48);
    h.log_version = load16(p + 64);
    h.version = load16(p + 66);
    h.log_length = load32(p + 68);
    h.log_offset = load64(p + 72);
    return h;
}

void Header::encode(std::span<u8, SIZE> out) const
{
    u8* p = out.data();
    store32(p, signature);
    store32(p + 4, checksum);
    store64(p + 8, sequence_number);
    store_guid(p + 16, file_write_guid);
    store_guid(p + 32, data_write_guid);
    store_guid(p + 48, log_guid);
    store16(p + 64, log_version);
    store16(p + 66, version);
    store32(p + 68, log_length);
    store64(p + 72, log_offset);
}

RegionTableEntry RegionTableEntry::decode(std::span<const u8, SIZE> in)
{
    const u8* p = in.data();
    return {load_guid(p), load64(p + 16), load32(p + 24), load32(p + 28)};
}

void RegionTableEntry::encode(std::span<u8, SIZE> out) const
{
    u8* p = out.data();
    store_guid(p, guid);
    store64(p + 16, file_offset);
    store32(p + 24, length);
    store32(p + 28, flags);
}

MetadataTableEntry MetadataTableEntry::decode(std::span<const u8, SIZE> in)
{
    const u8* p = in.data();
    return {load_guid(p), load32(p + 16), load32(p + 20), load32(p + 24), load32(p + 28)};
}

void MetadataTableEntry::encode(std::span<u8, SIZE> out) const
{
    u8* p = out.data();
    store_guid(p, item_id);
    store32(p + 16, offset);
    store32(p + 20, length);
    store32(p + 24, flags);
    store32(p + 28, reserved);
}

LogEntryHeader LogEntryHeader::decode(std::span<const u8, SIZE> in)
{
    const u8* p = in.data();
    LogEntryHeader h;
    h.signature = load32(p);
    h.checksum = load32(p + 4);
    h.entry_length = load32(p + 8);
    h.tail = load32(p + 12);
    h.sequence_number = load64(p + 16);
    h.descriptor_count = load32(p + 24);
    h.reserved = load32(p + 28);
    h.log_guid = load_guid(p + 32);
    h.flushed_file_offset = load64(p + 48);
    h.last_file_offset = load64(p + 56);
    return h;
}

void LogEntryHeader::encode(std::span<u8, SIZE> out) const
{
    u8* p = out.data();
    store32(p, signature);
    store32(p + 4, checksum);
    store32(p + 8, entry_length);
    store32(p + 12, tail);
    store64(p + 16, sequence_number);
    store32(p + 24, descriptor_count);
    store32(p + 28, reserved);
    store_guid(p + 32, log_guid);
    store64(p + 48, flushed_file_offset);
    store64(p + 56, last_file_offset);
}

LogDescriptor LogDescriptor::decode(std::span<const u8, SIZE> in)
{
    const u8* p = in.data();
    return {load32(p), load32(p + 4), load64(p + 8), load64(p + 16), load64(p + 24)};
}

void LogDescriptor::encode(std::span<u8, SIZE> out) const
{
    u8* p = out.data();
    store32(p, signature);
    store32(p + 4, trailing_bytes);
    store64(p + 8, leading_bytes);
    store64(p + 16, file_offset);
    store64(p + 24, sequence_number);
}

u32 checksum_with_hole(std::span<const u8> data, size_t checksum_at)
{
    static const u8 zeros[4] = {};
    u32 crc = crc32c_append(0, data.first(checksum_at));
    crc = crc32c_append(crc, zeros);
    return crc32c_append(crc, data.subspan(checksum_at + 4));
}

} // namespace vhdx
