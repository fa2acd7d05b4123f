#include "platform/firmware/smbios_tables.h"

#include "mmu/base/byte_order.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>

namespace {

constexpr GuestPhys ADDRESS = 0xF0000;


struct Parsed {
    u8 type;
    std::vector<u8> formatted;
    std::vector<std::string> strings;
};

// Walks the structure table as DSP0134 6.1 describes it: a formatted area
// of the length its header gives, then strings up to a double NUL.
std::vector<Parsed> walk(const SmbiosImage& image)
{
    std::vector<Parsed> out;
    size_t at = image.table_offset;
    while (at < image.bytes.size()) {
        Parsed p;
        p.type = image.bytes[at];
        const u8 length = image.bytes[at + 1];
        REQUIRE(length >= 4);
        p.formatted.assign(image.bytes.begin() + at, image.bytes.begin() + at + length);
        at += length;
        std::string current;
        for (;;) {
            REQUIRE(at < image.bytes.size());
            const u8 c = image.bytes[at++];
            if (c == 0 && current.empty())
                break;
            if (c == 0) {
                p.strings.push_back(current);
                current.clear();
                if (image.bytes[at] == 0) {
                    ++at;
                    break;
                }
            } else {
                current.push_back(static_cast<char>(c));
            }
        }
        if (p.strings.empty())
            ++at; // the second NUL of an empty string set
        out.push_back(p);
        if (p.type == 127)
            break;
    }
    CHECK(at == image.bytes.size());
    return out;
}

} // namespace

TEST_CASE("SMBIOS 3.0 entry point: anchor, length, checksum, version, table size and address")
{
    SmbiosConfig config;
    const SmbiosImage image = build_smbios_tables(config, ADDRESS);
    const std::vector<u8>& b = image.bytes;
    CHECK(std::string(b.begin(), b.begin() + 5) == "_SM3_");
    CHECK(b[6] == 0x18);
    u8 sum = 0;
    for (unsigned i = 0; i < 0x18; ++i)
        sum = static_cast<u8>(sum + b[i]);
    CHECK(sum == 0);
    CHECK(b[7] == 3);
    CHECK(b[8] == 0);
    CHECK(load_le(b, 12, 4) == b.size() - image.table_offset);
    CHECK(load_le(b, 16, 8) == ADDRESS + image.table_offset);
    CHECK(image.table_offset % 16 == 0);
}

TEST_CASE("SMBIOS structures: one processor per vCPU, RAM size, strings by number, end marker")
{
    SmbiosConfig config;
    config.cpu_count = 3;
    config.ram_ranges = {{0, 768ull << 20}};
    const SmbiosImage image = build_smbios_tables(config, ADDRESS);
    const std::vector<Parsed> s = walk(image);
    REQUIRE(s.size() == image.structure_count);
    std::map<u8, int> count;
    std::map<u16, bool> handles;
    for (const Parsed& p : s) {
        ++count[p.type];
        const u16 handle = static_cast<u16>(load_le(p.formatted, 2, 2));
        CHECK_FALSE(handles[handle]); // unique
        handles[handle] = true;
    }
    CHECK(count[0] == 1);
    CHECK(count[1] == 1);
    CHECK(count[4] == 3);
    CHECK(count[17] == 1);
    CHECK(s.back().type == 127);
    const Parsed& system = s[1];
    REQUIRE(system.type == 1);
    CHECK(system.strings.at(system.formatted[4] - 1) == "viridian");
    CHECK(system.strings.at(system.formatted[5] - 1) == "viridian Virtual Machine");
    CHECK(system.formatted[7] == 0); // no serial number
    const Parsed& bios = s[0];
    CHECK((bios.formatted[0x13] & 0x10) != 0); // "virtual machine"
    for (const Parsed& p : s)
        if (p.type == 17)
            CHECK(load_le(p.formatted, 0x0C, 2) == 768);
        else if (p.type == 19)
            CHECK(load_le(p.formatted, 8, 4) == (768u << 10) - 1);
}

TEST_CASE("SMBIOS describes RAM above 4 GiB: 16 GiB DIMMs and one mapped range per RAM range")
{
    constexpr u64 GIB = 1ull << 30;
    SmbiosConfig config;
    config.ram_ranges = {{0, 3 * GIB}, {4 * GIB, 61 * GIB}}; // a 64 GiB machine
    const std::vector<Parsed> s = walk(build_smbios_tables(config, ADDRESS));
    std::vector<u64> dimm_mib;
    std::vector<std::pair<u64, u64>> ranges_kib;
    for (const Parsed& p : s) {
        if (p.type == 16) {
            CHECK(load_le(p.formatted, 0x07, 4) == (64 * GIB) >> 10); // maximum capacity, KiB
            CHECK(load_le(p.formatted, 0x0D, 2) == 4);                // devices
        } else if (p.type == 17) {
            dimm_mib.push_back(load_le(p.formatted, 0x0C, 2));
            CHECK(p.strings.at(p.formatted[0x10] - 1) ==
                  "DIMM " + std::to_string(dimm_mib.size() - 1));
        } else if (p.type == 19) {
            REQUIRE(p.formatted.size() == 0x1F);
            ranges_kib.emplace_back(load_le(p.formatted, 4, 4), load_le(p.formatted, 8, 4));
        }
    }
    CHECK(dimm_mib == std::vector<u64>{16384, 16384, 16384, 16384});
    CHECK(ranges_kib == std::vector<std::pair<u64, u64>>{{0, (3 * GIB >> 10) - 1},
                                                          {4 * GIB >> 10, (65 * GIB >> 10) - 1}});
}

TEST_CASE("SMBIOS type 19 gives RAM at 4 TiB and above in its extended address fields")
{
    SmbiosConfig config;
    config.ram_ranges = {{0, 1ull << 30}, {1ull << 42, 1ull << 32}}; // 4 GiB at 4 TiB
    const std::vector<Parsed> s = walk(build_smbios_tables(config, ADDRESS));
    bool found = false;
    for (const Parsed& p : s)
        if (p.type == 19 && load_le(p.formatted, 4, 4) == 0xFFFFFFFF) {
            found = true;
            CHECK(load_le(p.formatted, 8, 4) == 0xFFFFFFFF);
            CHECK(load_le(p.formatted, 0x0F, 8) == 1ull << 42);
            CHECK(load_le(p.formatted, 0x17, 8) == (1ull << 42) + (1ull << 32) - 1);
        }
    CHECK(found);
}

// dmidecode (Debian's dmidecode package) is the independent check: it reads
// a dump in its own file format (the entry point at offset 0 pointing at
// the table at offset 32) and must decode every structure without complaint.
TEST_CASE("dmidecode decodes the SMBIOS tables without errors (skipped without dmidecode)")
{
    const char* dmidecode = "/usr/sbin/dmidecode";
    if (access(dmidecode, X_OK) != 0) {
        MESSAGE("dmidecode not installed: skipped");
        return;
    }
    SmbiosConfig config;
    config.cpu_count = 2;
    SmbiosImage image = build_smbios_tables(config, 0);
    // dmidecode's dump format: the table address in the entry point is the
    // table's offset in the file (it is already: the image was built at 0).
    char path[] = "/tmp/viridian-smbios-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(image.bytes.data()),
               static_cast<std::streamsize>(image.bytes.size()));
    const std::string log = std::string(path) + ".log";
    const int rc = std::system((std::string(dmidecode) + " --from-dump " + path + " >" + log + " 2>&1").c_str());
    std::stringstream text;
    text << std::ifstream(log).rdbuf();
    const std::string out = text.str();
    CAPTURE(out);
    CHECK(rc == 0);
    CHECK(out.find("SMBIOS 3.0.0 present.") != std::string::npos);
    CHECK(out.find("Manufacturer: viridian") != std::string::npos);
    CHECK(out.find("Product Name: viridian Virtual Machine") != std::string::npos);
    CHECK(out.find("System is a virtual machine") != std::string::npos);
    CHECK(out.find("Socket Designation: CPU 1") != std::string::npos);
    CHECK(out.find("Size: 512 MB") != std::string::npos);
    CHECK(out.find("End Of Table") != std::string::npos);
    for (const char* bad : {"Invalid", "invalid", "Wrong", "wrong", "Truncated", "<OUT OF SPEC>", "Bad"})
        CHECK_MESSAGE(out.find(bad) == std::string::npos, bad);
    std::remove(path);
    std::remove(log.c_str());
}
