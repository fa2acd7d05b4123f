#include "platform/firmware/acpi_tables.h"

#include "platform/firmware/aml_builder.h"

#include "mmu/base/byte_order.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

namespace {

constexpr GuestPhys TABLES = 0x1FFF0000;


AcpiTables tables_for(unsigned cpus)
{
    AcpiConfig c;
    c.cpu_count = cpus;
    return build_acpi_tables(c, TABLES);
}

// MADT entries of one type, as (offset) list.
std::vector<size_t> madt_entries(std::span<const u8> madt, u8 type)
{
    std::vector<size_t> out;
    for (size_t o = 44; o + 2 <= madt.size(); o += madt[o + 1]) {
        if (madt[o] == type)
            out.push_back(o);
        if (madt[o + 1] == 0)
            break;
    }
    return out;
}

bool contains(const std::vector<u8>& hay, const std::vector<u8>& needle)
{
    return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

} // namespace

// ---- AML encoder ----

TEST_CASE("AML package length uses one byte up to 63 and the multi-byte form above")
{
    CHECK(aml::pkg_length(0) == aml::Bytes{0x01});
    CHECK(aml::pkg_length(62) == aml::Bytes{0x3F});
    // 63 bytes of body + 2 bytes of length = 65 = 0x41: lead 0x41, then 0x04.
    CHECK(aml::pkg_length(63) == aml::Bytes{0x41, 0x04});
    CHECK(aml::pkg_length(1000) == aml::Bytes{0x4A, 0x3E}); // 1002 = 0x3EA
    // 5000 + 3 = 0x138B needs 12 + 8 bits: lead 0x8B, then 0x38, 0x01.
    CHECK(aml::pkg_length(5000) == aml::Bytes{0x8B, 0x38, 0x01});
    CHECK(aml::pkg_length(0x100000).size() == 4);
}

TEST_CASE("AML name strings pad segments and use root, dual and multi prefixes")
{
    CHECK(aml::name_string("_HID") == aml::Bytes{'_', 'H', 'I', 'D'});
    CHECK(aml::name_string("S5") == aml::Bytes{'S', '5', '_', '_'});
    CHECK(aml::name_string("\\_SB") == aml::Bytes{'\\', '_', 'S', 'B', '_'});
    CHECK(aml::name_string("\\_SB.PCI0") ==
          aml::Bytes{'\\', 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'});
    CHECK(aml::name_string("A.B.C")[0] == 0x2F);
    CHECK(aml::name_string("A.B.C")[1] == 3);
    CHECK(aml::name_string("^LNK")[0] == '^');
}

TEST_CASE("AML integers use Zero, One and the shortest prefix")
{
    CHECK(aml::integer(0) == aml::Bytes{0x00});
    CHECK(aml::integer(1) == aml::Bytes{0x01});
    CHECK(aml::integer(0x12) == aml::Bytes{0x0A, 0x12});
    CHECK(aml::integer(0x1234) == aml::Bytes{0x0B, 0x34, 0x12});
    CHECK(aml::integer(0x12345678) == aml::Bytes{0x0C, 0x78, 0x56, 0x34, 0x12});
    CHECK(aml::integer(0x100000000ull).size() == 9);
}

TEST_CASE("AML EISA ID compresses PNP0A03 to 0x030AD041")
{
    CHECK(aml::eisa_id_value("PNP0A03") == 0x030AD041);
    CHECK(aml::eisa_id_value("PNP0501") == 0x0105D041);
}

TEST_CASE("AML resource template ends with the end tag and wraps in a buffer")
{
    const aml::Bytes d =
        aml::ResourceTemplate().io(0x3F8, 0x3F8, 1, 8).irq_no_flags(1u << 4).descriptors();
    CHECK(d ==
          aml::Bytes{0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00});
    const aml::Bytes b = aml::ResourceTemplate().irq_no_flags(2).build();
    CHECK(b == aml::Bytes{0x11, 0x08, 0x0A, 0x05, 0x22, 0x02, 0x00, 0x79, 0x00});
}

TEST_CASE("AML method encodes flags with the argument count and body")
{
    const aml::Bytes m = aml::method("_PIC", 1, false, {aml::store(aml::arg(0), aml::ref("PICF"))});
    CHECK(m == aml::Bytes{0x14, 0x0C, '_', 'P', 'I', 'C', 0x01, 0x70, 0x68, 'P', 'I', 'C', 'F'});
}

// ---- Tables ----

TEST_CASE("ACPI tables all carry correct checksums and lengths")
{
    const AcpiTables t = tables_for(2);
    for (const char* sig : {"DSDT", "FACP", "APIC", "HPET", "MCFG", "XSDT", "RSDT"}) {
        CAPTURE(sig);
        const auto table = t.table(sig);
        REQUIRE(table.size() >= 36);
        CHECK(std::memcmp(table.data(), sig, 4) == 0);
        CHECK(acpi_checksum(table) == 0);
    }
    CHECK(t.table("FACS").size() == 64);
}

TEST_CASE("ACPI RSDP has both checksums right and points at RSDT and XSDT")
{
    const AcpiTables t = tables_for(1);
    REQUIRE(t.rsdp.size() == 36);
    CHECK(std::memcmp(t.rsdp.data(), "RSD PTR ", 8) == 0);
    CHECK(acpi_checksum(std::span<const u8>(t.rsdp.data(), 20)) == 0);
    CHECK(acpi_checksum(t.rsdp) == 0);
    CHECK(t.rsdp[15] == 2);
    const u64 rsdt = load_le(t.rsdp, 16, 4), xsdt = load_le(t.rsdp, 24, 8);
    CHECK(std::memcmp(t.tables.data() + (rsdt - TABLES), "RSDT", 4) == 0);
    CHECK(std::memcmp(t.tables.data() + (xsdt - TABLES), "XSDT", 4) == 0);
    CHECK(t.rsdp_address == 0xE0000);
}

TEST_CASE("ACPI XSDT lists FADT, MADT, HPET and MCFG by address")
{
    const AcpiTables t = tables_for(1);
    const auto x = t.table("XSDT");
    REQUIRE(x.size() == 36 + 4 * 8);
    const char* expected[] = {"FACP", "APIC", "HPET", "MCFG"};
    for (unsigned i = 0; i < 4; ++i) {
        const u64 addr = load_le(x, 36 + 8 * i, 8);
        CHECK(std::memcmp(t.tables.data() + (addr - TABLES), expected[i], 4) == 0);
    }
    const auto r = t.table("RSDT");
    CHECK(load_le(r, 36, 4) == load_le(x, 36, 8));
}

TEST_CASE("ACPI FADT is revision 6 with PM blocks, SCI 9, reset register and no HW-reduced flag")
{
    const AcpiTables t = tables_for(1);
    const auto f = t.table("FACP");
    REQUIRE(f.size() == 276);
    CHECK(f[8] == 6);
    CHECK(load_le(f, 46, 2) == 9);     // SCI_INT
    CHECK(load_le(f, 48, 4) == 0);     // no SMI_CMD
    CHECK(load_le(f, 56, 4) == 0x600); // PM1a_EVT_BLK
    CHECK(load_le(f, 64, 4) == 0x604); // PM1a_CNT_BLK
    CHECK(load_le(f, 76, 4) == 0x608); // PM_TMR_BLK
    CHECK(f[88] == 4);
    CHECK(f[89] == 2);
    CHECK(f[91] == 4);
    const u32 flags = static_cast<u32>(load_le(f, 112, 4));
    CHECK((flags & (1u << 20)) == 0); // HW_REDUCED_ACPI
    CHECK((flags & (1u << 10)) != 0); // RESET_REG_SUP
    CHECK((flags & (1u << 8)) != 0);  // TMR_VAL_EXT
    CHECK(f[116] == 1);               // reset register in I/O space
    CHECK(load_le(f, 120, 8) == 0xCF9);
    CHECK(f[128] == 0x06);
    CHECK(load_le(f, 140, 8) == load_le(f, 40, 4)); // X_DSDT == DSDT
    CHECK(load_le(f, 132, 8) == load_le(f, 36, 4)); // X_FIRMWARE_CTRL == FIRMWARE_CTRL
    CHECK(load_le(f, 208 + 4, 8) == 0x608);    // X_PM_TMR_BLK
    CHECK(std::memcmp(t.tables.data() + (load_le(f, 40, 4) - TABLES), "DSDT", 4) == 0);
    CHECK(std::memcmp(t.tables.data() + (load_le(f, 36, 4) - TABLES), "FACS", 4) == 0);
}

TEST_CASE("ACPI FACS sits on a 64-byte boundary")
{
    const AcpiTables t = tables_for(1);
    const auto f = t.table("FACP");
    CHECK(load_le(f, 36, 4) % 64 == 0);
}

TEST_CASE("ACPI MADT has one enabled local APIC per CPU, the IOAPIC and the ISA overrides")
{
    const AcpiTables t = tables_for(3);
    const auto m = t.table("APIC");
    CHECK(load_le(m, 36, 4) == 0xFEE00000);
    CHECK(load_le(m, 40, 4) == 1); // PCAT_COMPAT
    const auto lapics = madt_entries(m, 0);
    REQUIRE(lapics.size() == 3);
    for (unsigned i = 0; i < 3; ++i) {
        CHECK(m[lapics[i] + 2] == i); // UID
        CHECK(m[lapics[i] + 3] == i); // APIC ID
        CHECK(load_le(m, lapics[i] + 4, 4) == 1);
    }
    const auto ioapics = madt_entries(m, 1);
    REQUIRE(ioapics.size() == 1);
    CHECK(load_le(m, ioapics[0] + 4, 4) == 0xFEC00000);
    CHECK(load_le(m, ioapics[0] + 8, 4) == 0);
    const auto overrides = madt_entries(m, 2);
    REQUIRE(overrides.size() == 2);
    CHECK(m[overrides[0] + 3] == 0);
    CHECK(load_le(m, overrides[0] + 4, 4) == 2);
    CHECK(m[overrides[1] + 3] == 9);
    CHECK(load_le(m, overrides[1] + 4, 4) == 9);
    CHECK(load_le(m, overrides[1] + 8, 2) == 0x000D); // active high, level
    const auto nmis = madt_entries(m, 4);
    REQUIRE(nmis.size() == 1);
    CHECK(m[nmis[0] + 5] == 1); // LINT1
}

TEST_CASE("ACPI HPET table carries the block ID and the MMIO base")
{
    const AcpiTables t = tables_for(1);
    const auto h = t.table("HPET");
    REQUIRE(h.size() == 56);
    CHECK(load_le(h, 36, 4) == 0x8086A201);
    CHECK(h[40] == 0); // system memory
    CHECK(load_le(h, 44, 8) == 0xFED00000);
}

TEST_CASE("ACPI MCFG describes the ECAM window for buses 0-255")
{
    const AcpiTables t = tables_for(1);
    const auto m = t.table("MCFG");
    REQUIRE(m.size() == 60);
    CHECK(load_le(m, 44, 8) == pc_memory_map::ECAM_BASE);
    CHECK(m[54] == 0);
    CHECK(m[55] == 255);
}

TEST_CASE("ACPI DSDT declares the devices the board has")
{
    const std::vector<u8> aml = build_dsdt_aml(AcpiConfig{});
    const auto eisa = [](const char* id) {
        const u32 v = aml::eisa_id_value(id);
        return std::vector<u8>{0x0C, u8(v), u8(v >> 8), u8(v >> 16), u8(v >> 24)};
    };
    for (const char* id :
         {"PNP0A03", "PNP0303", "PNP0F13", "PNP0B00", "PNP0501", "PNP0103", "PNP0C02", "PNP0C0F"}) {
        CAPTURE(id);
        CHECK(contains(aml, eisa(id)));
    }
    CHECK(contains(aml, {'_', 'S', '5', '_'}));
    CHECK(contains(aml, {'_', 'P', 'R', 'T'}));
    CHECK(contains(aml, {'A', 'C', 'P', 'I', '0', '0', '0', '7'}));
}

TEST_CASE("ACPI DSDT routes slot 3 INTA to GSI 19 in APIC mode")
{
    const std::vector<u8> aml = build_dsdt_aml(AcpiConfig{});
    // Package(4){0x0003FFFF, Zero, Zero, 19}
    CHECK(contains(aml, {0x12, 0x0B, 0x04, 0x0C, 0xFF, 0xFF, 0x03, 0x00, 0x00, 0x00, 0x0A, 19}));
}

// iasl (Debian acpica-tools) is the independent check: every table must
// disassemble without errors or warnings, and the disassembled DSDT must
// compile again with neither. (iasl 20200925 cannot read a bare RSDP; its
// checksums are checked above.)
TEST_CASE("ACPI tables disassemble with iasl without errors (skipped without acpica-tools)")
{
    if (std::system("command -v iasl >/dev/null 2>&1") != 0) {
        MESSAGE("iasl not installed: skipped");
        return;
    }
    char dir[] = "/tmp/viridian-acpi-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const AcpiTables t = tables_for(2);
    const auto dump = [&](const std::string& name, std::span<const u8> bytes) {
        std::ofstream(std::string(dir) + "/" + name, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()),
                   static_cast<std::streamsize>(bytes.size()));
    };
    for (const char* sig : {"FACS", "DSDT", "FACP", "APIC", "HPET", "MCFG", "XSDT", "RSDT"})
        dump(std::string(sig) + ".dat", t.table(sig));
    const std::string d(dir);
    for (const char* name : {"FACS", "DSDT", "FACP", "APIC", "HPET", "MCFG", "XSDT", "RSDT"}) {
        CAPTURE(name);
        const std::string log = d + "/" + name + ".log";
        const int rc =
            std::system(("cd " + d + " && iasl -d " + name + ".dat >" + log + " 2>&1").c_str());
        std::stringstream text;
        text << std::ifstream(log).rdbuf();
        CAPTURE(text.str());
        CHECK(rc == 0);
        CHECK(text.str().find("Error") == std::string::npos);
        CHECK(text.str().find("Warning") == std::string::npos);
    }
    // Compile the disassembled DSDT back to AML: any AML the disassembler
    // could not make sense of fails here.
    const std::string log = d + "/compile.log";
    const int rc =
        std::system(("cd " + d + " && iasl -p recompiled DSDT.dsl >" + log + " 2>&1").c_str());
    std::stringstream text;
    text << std::ifstream(log).rdbuf();
    CAPTURE(text.str());
    CHECK(rc == 0);
    CHECK(text.str().find("0 Errors, 0 Warnings") != std::string::npos);
    std::system(("rm -rf " + d).c_str());
}
