// The fw_cfg files a SeaBIOS built for QEMU reads to learn the machine
// (SeaBIOS src/fw/paravirt.c, romfile_loader.c, biostables.c; QEMU
// hw/i386/fw_cfg.c and hw/acpi/bios-linker-loader.c for their formats):
//
//  - "etc/e820": the RAM map, 20-byte little-endian entries {u64 address,
//    u64 length, u32 type}; SeaBIOS takes its RAM size from it and adds its
//    own reservations (the BIOS area, what it allocates).
//  - "etc/table-loader": BIOS linker-loader commands, 128 bytes each
//    (BiosLinkerLoader): allocate a file in guest memory, add one allocated
//    file's address to a pointer field of another, fix a checksum. The ACPI
//    tables ("etc/acpi/tables", built at address 0 so every pointer between
//    them is an offset) and the RSDP ("etc/acpi/rsdp", in the F segment
//    where OSes scan for it) go through it; SeaBIOS places and patches them.
//  - "etc/smbios/smbios-anchor" and "etc/smbios/smbios-tables": the SMBIOS
//    3.0 entry point and structure table; SeaBIOS places the table, fills
//    in its address and the entry point's checksum.
#pragma once

#include "mmu/base/types.h"
#include "mmu/pc_memory_map.h"
#include "platform/firmware/acpi_tables.h"
#include "platform/firmware/smbios_tables.h"

#include <string_view>
#include <vector>

class BiosLinkerLoader {
public:
    static constexpr unsigned COMMAND_SIZE = 128;
    static constexpr unsigned FILE_NAME_SIZE = 56; // with its NUL
    enum class Command : u32 { Allocate = 1, AddPointer = 2, AddChecksum = 3 };
    enum class Zone : u8 { High = 1, FSeg = 2 };

    // `file` is allocated `align`-aligned (a power of two) in `zone`.
    void allocate(std::string_view file, u32 align, Zone zone);
    // Adds the address of `src` to the `size`-byte (1, 2, 4, 8) little-endian
    // field at `offset` of `dest`.
    void add_pointer(std::string_view dest, std::string_view src, u32 offset, u8 size);
    // Makes the bytes [start, start + length) of `file` sum to zero by
    // adjusting the byte at `offset`.
    void add_checksum(std::string_view file, u32 offset, u32 start, u32 length);

    const std::vector<u8>& bytes() const { return m_bytes; }

private:
    std::vector<u8> m_bytes;
};

struct FirmwareFile {
    std::string_view name;
    std::vector<u8> data;
};

constexpr std::string_view ACPI_TABLES_FILE = "etc/acpi/tables";
constexpr std::string_view ACPI_RSDP_FILE = "etc/acpi/rsdp";
constexpr std::string_view TABLE_LOADER_FILE = "etc/table-loader";

// The e820 file: RAM below the PCI hole and above 4 GiB.
std::vector<u8> e820_file(const pc_memory_map::RamLayout& layout);

// "etc/acpi/tables", "etc/acpi/rsdp" and "etc/table-loader" from tables
// built by build_acpi_tables at tables address 0 (any RSDP address).
std::vector<FirmwareFile> acpi_firmware_files(const AcpiTables& tables);

// "etc/smbios/smbios-anchor" and "etc/smbios/smbios-tables" from an image
// built by build_smbios_tables.
std::vector<FirmwareFile> smbios_firmware_files(const SmbiosImage& image);
