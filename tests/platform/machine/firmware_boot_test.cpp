// The machine booted through Debian's SeaBIOS (the seabios package, which
// scripts/setup.sh installs; skipped without it): what the firmware finds
// and builds from what the board gives it through fw_cfg.
#include "platform/machine/machine.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>

namespace {

struct FirmwareMachine {
    std::string com1;
    std::unique_ptr<Machine> machine;
    RunOutcome outcome;

    // Runs until SeaBIOS gives up booting (before it resets).
    explicit FirmwareMachine(std::vector<u8> bios)
    {
        MachineConfig config;
        config.memory_bytes = 64ull << 20;
        config.deterministic = true;
        config.bios = std::move(bios);
        config.com1_output = [this](u8 byte) { com1.push_back(static_cast<char>(byte)); };
        ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
        REQUIRE_FALSE(created.is_error());
        machine = created.release_value();
        machine->start_firmware();
        outcome = machine->run(
            [this]() -> std::optional<int> {
                if (com1.find("No bootable device") != std::string::npos)
                    return 0;
                return std::nullopt;
            },
            200'000'000);
    }

    u64 read(GuestPhys address, unsigned size) { return machine->memory().read(address, size); }
    u8 checksum(GuestPhys address, u64 length)
    {
        u8 sum = 0;
        for (u64 i = 0; i < length; ++i)
            sum = static_cast<u8>(sum + read(address + i, 1));
        return sum;
    }
    std::string signature(GuestPhys address, unsigned length = 4)
    {
        std::string s;
        for (unsigned i = 0; i < length; ++i)
            s.push_back(static_cast<char>(read(address + i, 1)));
        return s;
    }
};

std::optional<std::vector<u8>> debian_seabios()
{
    ErrorOr<std::vector<u8>> image = read_bios_image(DEFAULT_BIOS_PATH);
    if (image.is_error())
        return std::nullopt;
    return image.release_value();
}

} // namespace

TEST_CASE("SeaBIOS boots on the board, prints its banner on COM1 and finds nothing to boot")
{
    std::optional<std::vector<u8>> bios = debian_seabios();
    if (!bios) {
        MESSAGE("skipped: no ", DEFAULT_BIOS_PATH, " (Debian's seabios package)");
        return;
    }
    FirmwareMachine m(std::move(*bios));
    CHECK(m.outcome.kind == RunOutcome::Kind::HostStop);
    CHECK(m.com1.find("SeaBIOS (version") != std::string::npos);
    CHECK(m.com1.find("No bootable device") != std::string::npos);
}

TEST_CASE("SeaBIOS places the board's ACPI tables through the table loader with valid links")
{
    std::optional<std::vector<u8>> bios = debian_seabios();
    if (!bios)
        return;
    FirmwareMachine m(std::move(*bios));
    // The RSDP, where OSes scan for it: 16-byte aligned in the F segment.
    GuestPhys rsdp = 0;
    for (GuestPhys a = 0xF0000; a < 0x100000 && !rsdp; a += 16)
        if (m.signature(a, 8) == "RSD PTR ")
            rsdp = a;
    REQUIRE(rsdp != 0);
    CHECK(m.checksum(rsdp, 20) == 0);
    CHECK(m.checksum(rsdp, 36) == 0);
    const GuestPhys xsdt = m.read(rsdp + 24, 8);
    REQUIRE(m.signature(xsdt) == "XSDT");
    CHECK(m.checksum(xsdt, m.read(xsdt + 4, 4)) == 0);
    const GuestPhys fadt = m.read(xsdt + 36, 8);
    REQUIRE(m.signature(fadt) == "FACP");
    CHECK(m.checksum(fadt, m.read(fadt + 4, 4)) == 0);
    const GuestPhys dsdt = m.read(fadt + 140, 8);
    CHECK(m.signature(dsdt) == "DSDT");
    CHECK(m.checksum(dsdt, m.read(dsdt + 4, 4)) == 0);
    CHECK(m.signature(m.read(fadt + 36, 4)) == "FACS");
}

TEST_CASE("SeaBIOS places the board's SMBIOS tables with its own strings kept")
{
    std::optional<std::vector<u8>> bios = debian_seabios();
    if (!bios)
        return;
    FirmwareMachine m(std::move(*bios));
    GuestPhys entry = 0;
    for (GuestPhys a = 0xF0000; a < 0x100000 && !entry; a += 16)
        if (m.signature(a, 5) == "_SM3_")
            entry = a;
    REQUIRE(entry != 0);
    CHECK(m.checksum(entry, 24) == 0);
    const GuestPhys table = m.read(entry + 16, 8);
    const u64 length = m.read(entry + 12, 4);
    std::string text;
    for (u64 i = 0; i < length; ++i)
        text.push_back(static_cast<char>(m.read(table + i, 1)));
    CHECK(text.find("viridian Virtual Machine") != std::string::npos);
}

TEST_CASE("SeaBIOS write-protects its shadow copy in the F segment through the PAM registers")
{
    std::optional<std::vector<u8>> bios = debian_seabios();
    if (!bios)
        return;
    FirmwareMachine m(std::move(*bios));
    // make_bios_readonly (src/fw/shadow.c): reads from RAM, writes dropped.
    const u8 before = static_cast<u8>(m.read(0xFFFF0, 1));
    m.machine->memory().write(0xFFFF0, 1, static_cast<u8>(~before));
    CHECK(m.read(0xFFFF0, 1) == before);
    CHECK(m.machine->memory().ram_page(0xF0000) == nullptr);
    CHECK(m.machine->memory().readable_page(0xF0000) != nullptr);
}
