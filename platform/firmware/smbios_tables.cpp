#include "platform/firmware/smbios_tables.h"

#include <algorithm>
#include <cassert>
#include <initializer_list>
#include <string>
#include <string_view>

namespace {

constexpr u32 ENTRY_POINT_SIZE = 0x18;
constexpr u32 TABLE_OFFSET = 0x20; // the structure table follows, 16-byte aligned

// One structure: the formatted area (type, length, handle, fields) and its
// string set, whose strings the fields refer to by number from 1.
class Structure {
public:
    Structure(u8 type, u16 handle) { m_bytes = {type, 0, u8(handle), u8(handle >> 8)}; }
    void u8_field(u8 v) { m_bytes.push_back(v); }
    void u16_field(u16 v) { append(v, 2); }
    void u32_field(u32 v) { append(v, 4); }
    void u64_field(u64 v) { append(v, 8); }
    void bytes_field(std::initializer_list<u8> v) { m_bytes.insert(m_bytes.end(), v); }
    // A string field: its number in the set, or 0 for "none" when empty.
    void string_field(std::string_view s)
    {
        if (s.empty()) {
            m_bytes.push_back(0);
            return;
        }
        m_strings.emplace_back(s);
        m_bytes.push_back(static_cast<u8>(m_strings.size()));
    }
    void append_to(std::vector<u8>& out) const
    {
        std::vector<u8> formatted = m_bytes;
        formatted[1] = static_cast<u8>(formatted.size()); // the length covers the formatted area
        out.insert(out.end(), formatted.begin(), formatted.end());
        for (const std::string& s : m_strings) {
            out.insert(out.end(), s.begin(), s.end());
            out.push_back(0);
        }
        if (m_strings.empty())
            out.push_back(0); // an empty string set is two NULs
        out.push_back(0);
    }

private:
    void append(u64 v, unsigned n)
    {
        for (unsigned i = 0; i < n; ++i)
            m_bytes.push_back(static_cast<u8>(v >> (8 * i)));
    }
    std::vector<u8> m_bytes;
    std::vector<std::string> m_strings;
};

enum Handle : u16 { BIOS = 0x0000, SYSTEM = 0x0100, CHASSIS = 0x0300, CPU0 = 0x0400,
                    MEMORY_ARRAY = 0x1000, MEMORY_DEVICE = 0x1100, MAPPED_RANGE = 0x1300,
                    BOOT_INFO = 0x2000, END = 0x7F00 };

Structure bios_information(const SmbiosConfig& c)
{
    Structure s(0, BIOS);
    s.string_field(c.manufacturer);   // vendor
    s.string_field(c.version);        // BIOS version
    s.u16_field(0xE800);              // starting address segment
    s.string_field(c.bios_date);      // release date
    s.u8_field(0);                    // ROM size: 64 KiB
    s.u64_field(1u << 3);             // characteristics: "not supported"
    s.u8_field(0);                    // extension byte 1
    s.u8_field(1u << 4);              // extension byte 2: a virtual machine
    s.bytes_field({0, 0, 0xFF, 0xFF}); // BIOS release 0.0; no embedded controller
    return s;
}

Structure system_information(const SmbiosConfig& c)
{
    Structure s(1, SYSTEM);
    s.string_field(c.manufacturer);
    s.string_field(c.product);
    s.string_field(c.version);
    s.string_field("");               // serial number
    for (u8 b : c.uuid)
        s.u8_field(b);
    s.u8_field(0x06);                 // wake-up type: power switch
    s.string_field("");               // SKU
    s.string_field(c.product);        // family
    return s;
}

Structure chassis(const SmbiosConfig& c)
{
    Structure s(3, CHASSIS);
    s.string_field(c.manufacturer);
    s.u8_field(0x01);                 // type: other
    s.string_field(c.version);
    s.string_field("");               // serial number
    s.string_field("");               // asset tag
    s.bytes_field({0x03, 0x03, 0x03, 0x02}); // boot-up, power, thermal: safe; security: unknown
    s.u32_field(0);                   // OEM-defined
    s.bytes_field({0, 0, 0, 0});      // height, power cords, no contained elements
    return s;
}

Structure processor(const SmbiosConfig& c, unsigned index)
{
    Structure s(4, static_cast<u16>(CPU0 + index));
    s.string_field("CPU " + std::to_string(index)); // socket designation
    s.u8_field(0x03);                 // central processor
    s.u8_field(0xFE);                 // family: see family 2
    s.string_field(c.manufacturer);
    s.u64_field(0);                   // processor ID: CPUID describes the vCPU
    s.string_field("viridian x86-64 interpreter");
    s.u8_field(0);                    // voltage: unknown
    s.u16_field(0);                   // external clock: unknown
    s.u16_field(0);                   // max speed: unknown
    s.u16_field(0);                   // current speed: unknown
    s.u8_field(0x41);                 // socket populated, CPU enabled
    s.u8_field(0x01);                 // upgrade: other
    s.u16_field(0xFFFF);              // no L1/L2/L3 cache structures
    s.u16_field(0xFFFF);
    s.u16_field(0xFFFF);
    s.string_field("");               // serial number
    s.string_field("");               // asset tag
    s.string_field("");               // part number
    s.bytes_field({1, 1, 1});         // one core, enabled, one thread (CPUID leaf 0xB)
    s.u16_field(1u << 2);             // characteristics: 64-bit capable
    s.u16_field(0x01);                // family 2: other
    return s;
}

// QEMU's split of RAM into DIMMs (hw/smbios/smbios.c, MAX_DIMM_SZ): each
// at most 16 GiB, which a type 17 size in MiB can always express.
constexpr u64 MAX_DIMM_BYTES = 16ull << 30;

u64 total_ram(const SmbiosConfig& c)
{
    u64 total = 0;
    for (const SmbiosConfig::RamRange& r : c.ram_ranges)
        total += r.size;
    return total;
}

u64 dimm_count(const SmbiosConfig& c)
{
    return (total_ram(c) + MAX_DIMM_BYTES - 1) / MAX_DIMM_BYTES;
}

Structure memory_array(const SmbiosConfig& c)
{
    // DSP0134 7.17: a capacity of 2 TiB or more goes in the extended field.
    const u64 kib = total_ram(c) >> 10;
    const bool extended = kib >= 0x80000000ull;
    Structure s(16, MEMORY_ARRAY);
    s.u8_field(0x03);                 // location: system board
    s.u8_field(0x03);                 // use: system memory
    s.u8_field(0x03);                 // error correction: none
    s.u32_field(extended ? 0x80000000u : static_cast<u32>(kib)); // maximum capacity, KiB
    s.u16_field(0xFFFE);              // no memory error information
    s.u16_field(static_cast<u16>(dimm_count(c))); // memory devices
    s.u64_field(extended ? total_ram(c) : 0); // extended maximum capacity, bytes
    return s;
}

Structure memory_device(const SmbiosConfig& c, unsigned index)
{
    const u64 total = total_ram(c);
    const u64 bytes = std::min(MAX_DIMM_BYTES, total - index * MAX_DIMM_BYTES);
    Structure s(17, static_cast<u16>(MEMORY_DEVICE + index));
    s.u16_field(MEMORY_ARRAY);
    s.u16_field(0xFFFE);              // no memory error information
    s.u16_field(0xFFFF);              // total width: unknown
    s.u16_field(0xFFFF);              // data width: unknown
    s.u16_field(static_cast<u16>(bytes >> 20)); // size in MiB (bit 15 clear: at most 16 GiB)
    s.u8_field(0x09);                 // form factor: DIMM
    s.u8_field(0);                    // not in a set
    s.string_field("DIMM " + std::to_string(index)); // device locator
    s.string_field("");               // bank locator
    s.u8_field(0x07);                 // memory type: RAM
    s.u16_field(1u << 1);             // type detail: other
    s.u16_field(0);                   // speed: unknown
    s.string_field(c.manufacturer);
    s.string_field("");               // serial number
    s.string_field("");               // asset tag
    s.string_field("");               // part number
    return s;
}

Structure mapped_range(const SmbiosConfig::RamRange& range, unsigned index)
{
    // DSP0134 7.20: addresses in KiB, or all ones there and the byte
    // addresses in the extended fields when they do not fit 32 bits.
    const u64 start_kib = range.base >> 10;
    const u64 end_kib = ((range.base + range.size) >> 10) - 1;
    const bool extended = end_kib >= 0xFFFFFFFFull;
    Structure s(19, static_cast<u16>(MAPPED_RANGE + index));
    s.u32_field(extended ? 0xFFFFFFFFu : static_cast<u32>(start_kib)); // start, KiB
    s.u32_field(extended ? 0xFFFFFFFFu : static_cast<u32>(end_kib));   // end (inclusive), KiB
    s.u16_field(MEMORY_ARRAY);
    s.u8_field(1);                                          // partition width
    s.u64_field(extended ? range.base : 0);                 // extended start, bytes
    s.u64_field(extended ? range.base + range.size - 1 : 0); // extended end (inclusive), bytes
    return s;
}

Structure boot_information()
{
    Structure s(32, BOOT_INFO);
    s.bytes_field({0, 0, 0, 0, 0, 0}); // reserved
    s.u8_field(0);                     // no errors detected
    return s;
}

u8 checksum_byte(const std::vector<u8>& bytes, size_t begin, size_t end)
{
    u8 sum = 0;
    for (size_t i = begin; i < end; ++i)
        sum = static_cast<u8>(sum + bytes[i]);
    return static_cast<u8>(-sum);
}

} // namespace

SmbiosImage build_smbios_tables(const SmbiosConfig& c, GuestPhys address)
{
    // Handles: up to 256 DIMMs (4 TiB) and 256 ranges in their blocks.
    assert((address & 15) == 0 && c.cpu_count >= 1 && dimm_count(c) <= 0x100 &&
           c.ram_ranges.size() <= 0x100);
    std::vector<Structure> structures{bios_information(c), system_information(c), chassis(c)};
    for (unsigned i = 0; i < c.cpu_count; ++i)
        structures.push_back(processor(c, i));
    structures.push_back(memory_array(c));
    for (unsigned i = 0; i < dimm_count(c); ++i)
        structures.push_back(memory_device(c, i));
    for (unsigned i = 0; i < c.ram_ranges.size(); ++i)
        structures.push_back(mapped_range(c.ram_ranges[i], i));
    structures.push_back(boot_information());
    structures.emplace_back(127, END);

    SmbiosImage image;
    image.address = address;
    image.table_offset = TABLE_OFFSET;
    image.structure_count = static_cast<unsigned>(structures.size());
    std::vector<u8>& out = image.bytes;
    out.assign(TABLE_OFFSET, 0);
    for (const Structure& s : structures)
        s.append_to(out);
    const u32 table_size = static_cast<u32>(out.size() - TABLE_OFFSET);
    const u64 table_address = address + TABLE_OFFSET;

    // The SMBIOS 3.0 entry point.
    const std::string_view anchor = "_SM3_";
    std::copy(anchor.begin(), anchor.end(), out.begin());
    out[6] = ENTRY_POINT_SIZE;
    out[7] = 3;  // SMBIOS 3.0.0
    out[8] = 0;
    out[9] = 0;
    out[10] = 1; // entry point revision: 3.0
    for (unsigned i = 0; i < 4; ++i)
        out[12 + i] = static_cast<u8>(table_size >> (8 * i));
    for (unsigned i = 0; i < 8; ++i)
        out[16 + i] = static_cast<u8>(table_address >> (8 * i));
    out[5] = checksum_byte(out, 0, ENTRY_POINT_SIZE);
    return image;
}
