#include "platform/firmware/firmware_files.h"

#include <cassert>
#include <cstring>

namespace {

void put_le(std::vector<u8>& out, u64 value, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; ++i)
        out.push_back(static_cast<u8>(value >> (8 * i)));
}

void put_name(std::vector<u8>& out, std::string_view name)
{
    assert(name.size() < BiosLinkerLoader::FILE_NAME_SIZE);
    const size_t at = out.size();
    out.resize(at + BiosLinkerLoader::FILE_NAME_SIZE, 0);
    std::memcpy(out.data() + at, name.data(), name.size());
}

u32 table_length(const AcpiTables& t, u32 offset)
{
    u32 length;
    std::memcpy(&length, t.tables.data() + offset + 4, 4);
    return length;
}

constexpr u32 E820_RAM = 1;
constexpr u32 ACPI_HEADER_SIZE = 36, ACPI_CHECKSUM_OFFSET = 9;

} // namespace

void BiosLinkerLoader::allocate(std::string_view file, u32 align, Zone zone)
{
    const size_t start = m_bytes.size();
    put_le(m_bytes, static_cast<u32>(Command::Allocate), 4);
    put_name(m_bytes, file);
    put_le(m_bytes, align, 4);
    m_bytes.push_back(static_cast<u8>(zone));
    m_bytes.resize(start + COMMAND_SIZE, 0);
}

void BiosLinkerLoader::add_pointer(std::string_view dest, std::string_view src, u32 offset, u8 size)
{
    const size_t start = m_bytes.size();
    put_le(m_bytes, static_cast<u32>(Command::AddPointer), 4);
    put_name(m_bytes, dest);
    put_name(m_bytes, src);
    put_le(m_bytes, offset, 4);
    m_bytes.push_back(size);
    m_bytes.resize(start + COMMAND_SIZE, 0);
}

void BiosLinkerLoader::add_checksum(std::string_view file, u32 offset, u32 start, u32 length)
{
    const size_t at = m_bytes.size();
    put_le(m_bytes, static_cast<u32>(Command::AddChecksum), 4);
    put_name(m_bytes, file);
    put_le(m_bytes, offset, 4);
    put_le(m_bytes, start, 4);
    put_le(m_bytes, length, 4);
    m_bytes.resize(at + COMMAND_SIZE, 0);
}

std::vector<u8> e820_file(const pc_memory_map::RamLayout& layout)
{
    // QEMU's pc lists RAM only (hw/i386/pc.c): SeaBIOS reserves the BIOS
    // area and the memory it allocates itself.
    std::vector<u8> out;
    const auto entry = [&out](u64 address, u64 length) {
        put_le(out, address, 8);
        put_le(out, length, 8);
        put_le(out, E820_RAM, 4);
    };
    entry(0, layout.below_4g);
    if (layout.above_4g)
        entry(pc_memory_map::RAM_ABOVE_4G_BASE, layout.above_4g);
    return out;
}

std::vector<FirmwareFile> acpi_firmware_files(const AcpiTables& t)
{
    assert(t.tables_address == 0);
    BiosLinkerLoader loader;
    // The FACS, first in the blob, must be 64-byte aligned (ACPI 6.x 5.2.10).
    loader.allocate(ACPI_TABLES_FILE, 64, BiosLinkerLoader::Zone::High);
    loader.allocate(ACPI_RSDP_FILE, 16, BiosLinkerLoader::Zone::FSeg);
    const auto pointer = [&](u32 offset, u8 size) {
        loader.add_pointer(ACPI_TABLES_FILE, ACPI_TABLES_FILE, offset, size);
    };
    for (const auto& [signature, offset] : t.index) {
        const u32 length = table_length(t, offset);
        if (signature == "FACP") {
            // FIRMWARE_CTRL, DSDT, X_FIRMWARE_CTRL, X_DSDT (ACPI 6.x table 5-34).
            pointer(offset + 36, 4);
            pointer(offset + 40, 4);
            pointer(offset + 132, 8);
            pointer(offset + 140, 8);
        } else if (signature == "XSDT" || signature == "RSDT") {
            const u8 entry = signature == "XSDT" ? 8 : 4;
            for (u32 at = ACPI_HEADER_SIZE; at + entry <= length; at += entry)
                pointer(offset + at, entry);
        }
        if (signature != "FACS") // the FACS has no checksum
            loader.add_checksum(ACPI_TABLES_FILE, offset + ACPI_CHECKSUM_OFFSET, offset, length);
    }
    // RSDP (ACPI 6.x 5.2.5.3): RsdtAddress, XsdtAddress, then the checksum of
    // the first 20 bytes and the extended checksum of all 36.
    loader.add_pointer(ACPI_RSDP_FILE, ACPI_TABLES_FILE, 16, 4);
    loader.add_pointer(ACPI_RSDP_FILE, ACPI_TABLES_FILE, 24, 8);
    loader.add_checksum(ACPI_RSDP_FILE, 8, 0, 20);
    loader.add_checksum(ACPI_RSDP_FILE, 32, 0, static_cast<u32>(t.rsdp.size()));

    std::vector<FirmwareFile> files;
    files.push_back({ACPI_TABLES_FILE, t.tables});
    files.push_back({ACPI_RSDP_FILE, t.rsdp});
    files.push_back({TABLE_LOADER_FILE, loader.bytes()});
    return files;
}

std::vector<FirmwareFile> smbios_firmware_files(const SmbiosImage& image)
{
    // The 3.0 entry point is 24 bytes (DSP0134 5.2.2).
    constexpr size_t ENTRY_POINT_30_SIZE = 24;
    assert(image.table_offset >= ENTRY_POINT_30_SIZE && image.bytes.size() >= image.table_offset);
    std::vector<FirmwareFile> files;
    files.push_back({"etc/smbios/smbios-anchor",
                     std::vector<u8>(image.bytes.begin(), image.bytes.begin() + ENTRY_POINT_30_SIZE)});
    files.push_back({"etc/smbios/smbios-tables",
                     std::vector<u8>(image.bytes.begin() + image.table_offset, image.bytes.end())});
    return files;
}
