#include "platform/firmware/firmware_files.h"

#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <string>

namespace {

u64 le(const u8* p, unsigned bytes)
{
    u64 v = 0;
    for (unsigned i = 0; i < bytes; ++i)
        v |= u64(p[i]) << (8 * i);
    return v;
}

std::string name_at(const u8* p)
{
    return std::string(reinterpret_cast<const char*>(p), strnlen(reinterpret_cast<const char*>(p), 56));
}

// SeaBIOS's romfile_loader (src/fw/romfile_loader.c) in a few lines: files
// placed at `bases`, pointers and checksums patched as the commands say.
std::map<std::string, std::vector<u8>> run_loader(const std::vector<FirmwareFile>& files,
                                                  const std::map<std::string, u64>& bases)
{
    std::map<std::string, std::vector<u8>> placed;
    std::vector<u8> loader;
    for (const FirmwareFile& f : files) {
        if (f.name == TABLE_LOADER_FILE)
            loader = f.data;
        else
            placed[std::string(f.name)] = f.data;
    }
    REQUIRE(loader.size() % BiosLinkerLoader::COMMAND_SIZE == 0);
    for (size_t at = 0; at < loader.size(); at += BiosLinkerLoader::COMMAND_SIZE) {
        const u8* c = loader.data() + at;
        switch (le(c, 4)) {
        case 1: // allocate
            CHECK(placed.count(name_at(c + 4)) == 1);
            CHECK(bases.at(name_at(c + 4)) % le(c + 60, 4) == 0);
            break;
        case 2: { // add pointer
            std::vector<u8>& dest = placed.at(name_at(c + 4));
            const u32 offset = static_cast<u32>(le(c + 116, 4));
            const u8 size = c[120];
            REQUIRE(offset + size <= dest.size());
            u64 v = le(dest.data() + offset, size) + bases.at(name_at(c + 60));
            for (unsigned i = 0; i < size; ++i)
                dest[offset + i] = static_cast<u8>(v >> (8 * i));
            break;
        }
        case 3: { // add checksum
            std::vector<u8>& file = placed.at(name_at(c + 4));
            const u32 offset = static_cast<u32>(le(c + 60, 4)), start = static_cast<u32>(le(c + 64, 4)),
                      length = static_cast<u32>(le(c + 68, 4));
            REQUIRE(start + length <= file.size());
            u8 sum = 0;
            for (u32 i = start; i < start + length; ++i)
                sum = static_cast<u8>(sum + file[i]);
            file[offset] = static_cast<u8>(file[offset] - sum);
            break;
        }
        default:
            FAIL("unknown loader command");
        }
    }
    return placed;
}

u8 sum(const u8* p, size_t n)
{
    u8 s = 0;
    for (size_t i = 0; i < n; ++i)
        s = static_cast<u8>(s + p[i]);
    return s;
}

} // namespace

TEST_CASE("the e820 file lists RAM below the PCI hole and above 4 GiB in 20-byte entries")
{
    const auto layout = pc_memory_map::ram_layout(8ull << 30);
    const std::vector<u8> f = e820_file(layout);
    REQUIRE(f.size() == 40);
    CHECK(le(f.data(), 8) == 0);
    CHECK(le(f.data() + 8, 8) == 0xC0000000);
    CHECK(le(f.data() + 16, 4) == 1);
    CHECK(le(f.data() + 20, 8) == 1ull << 32);
    CHECK(le(f.data() + 28, 8) == (8ull << 30) - 0xC0000000);
    CHECK(le(f.data() + 36, 4) == 1);
    CHECK(e820_file(pc_memory_map::ram_layout(512ull << 20)).size() == 20);
}

TEST_CASE("linker-loader commands are 128 bytes with QEMU's field offsets")
{
    BiosLinkerLoader l;
    l.allocate("etc/a", 64, BiosLinkerLoader::Zone::FSeg);
    l.add_pointer("etc/a", "etc/b", 0x24, 8);
    l.add_checksum("etc/a", 9, 0, 0x30);
    const std::vector<u8>& b = l.bytes();
    REQUIRE(b.size() == 3 * 128);
    CHECK(le(b.data(), 4) == 1);
    CHECK(name_at(b.data() + 4) == "etc/a");
    CHECK(le(b.data() + 60, 4) == 64);
    CHECK(b[64] == 2); // FSEG
    CHECK(le(b.data() + 128, 4) == 2);
    CHECK(name_at(b.data() + 128 + 4) == "etc/a");
    CHECK(name_at(b.data() + 128 + 60) == "etc/b");
    CHECK(le(b.data() + 128 + 116, 4) == 0x24);
    CHECK(b[128 + 120] == 8);
    CHECK(le(b.data() + 256, 4) == 3);
    CHECK(le(b.data() + 256 + 60, 4) == 9);
    CHECK(le(b.data() + 256 + 64, 4) == 0);
    CHECK(le(b.data() + 256 + 68, 4) == 0x30);
}

TEST_CASE("the ACPI files, loaded as SeaBIOS loads them, link RSDP, XSDT, RSDT, FADT, FACS and DSDT")
{
    AcpiConfig config;
    config.cpu_count = 2;
    const AcpiTables tables = build_acpi_tables(config, 0, 0);
    const u64 high = 0x1FFE0000, fseg = 0xF5A40;
    auto placed = run_loader(acpi_firmware_files(tables),
                             {{std::string(ACPI_TABLES_FILE), high}, {std::string(ACPI_RSDP_FILE), fseg}});
    const std::vector<u8>& blob = placed.at(std::string(ACPI_TABLES_FILE));
    const std::vector<u8>& rsdp = placed.at(std::string(ACPI_RSDP_FILE));
    CHECK(sum(rsdp.data(), 20) == 0);
    CHECK(sum(rsdp.data(), 36) == 0);
    const auto table_at = [&](u64 address, const char* signature) {
        REQUIRE(address >= high);
        const u8* t = blob.data() + (address - high);
        CHECK(std::string(reinterpret_cast<const char*>(t), 4) == signature);
        if (std::string(signature) != "FACS")
            CHECK(sum(t, le(t + 4, 4)) == 0);
        return t;
    };
    const u8* xsdt = table_at(le(rsdp.data() + 24, 8), "XSDT");
    const u8* rsdt = table_at(le(rsdp.data() + 16, 4), "RSDT");
    const u8* fadt = table_at(le(xsdt + 36, 8), "FACP");
    CHECK(le(rsdt + 36, 4) == le(xsdt + 36, 8));
    table_at(le(fadt + 36, 4), "FACS");
    table_at(le(fadt + 40, 4), "DSDT");
    table_at(le(fadt + 132, 8), "FACS");
    table_at(le(fadt + 140, 8), "DSDT");
    table_at(le(xsdt + 44, 8), "APIC");
    CHECK(le(fadt + 36, 4) % 64 == 0);
}

TEST_CASE("the SMBIOS files are the 3.0 entry point and a table of the size it announces")
{
    const SmbiosImage image = build_smbios_tables(SmbiosConfig{}, 0);
    const std::vector<FirmwareFile> files = smbios_firmware_files(image);
    REQUIRE(files.size() == 2);
    CHECK(files[0].name == "etc/smbios/smbios-anchor");
    REQUIRE(files[0].data.size() == 24);
    CHECK(std::string(files[0].data.begin(), files[0].data.begin() + 5) == "_SM3_");
    CHECK(files[1].name == "etc/smbios/smbios-tables");
    CHECK(le(files[0].data.data() + 12, 4) == files[1].data.size());
    CHECK(files[1].data[0] == 0); // type 0 first: SeaBIOS adds none of its own
}
