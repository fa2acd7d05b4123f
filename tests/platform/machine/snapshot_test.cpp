// Whole-machine snapshot files (docs/snapshots.md): what load_snapshot
// refuses, and that it says why in one line.
#include "platform/machine/snapshot.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

std::unique_ptr<Machine> small_machine()
{
    MachineConfig config;
    config.memory_bytes = 16ull << 20;
    config.deterministic = true;
    ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
    REQUIRE_FALSE(created.is_error());
    return created.release_value();
}

std::vector<u8> saved(Machine& machine)
{
    char* buffer = nullptr;
    size_t length = 0;
    std::FILE* out = ::open_memstream(&buffer, &length);
    REQUIRE(out);
    REQUIRE_FALSE(save_snapshot(machine, out).is_error());
    std::fclose(out);
    std::vector<u8> bytes(buffer, buffer + length);
    std::free(buffer);
    return bytes;
}

ErrorOr<void> load(Machine& machine, std::vector<u8> bytes)
{
    std::FILE* in = ::fmemopen(bytes.data(), bytes.size(), "rb");
    REQUIRE(in);
    ErrorOr<void> loaded = load_snapshot(machine, in);
    std::fclose(in);
    return loaded;
}

} // namespace

TEST_CASE("A snapshot loads into a fresh machine of the same configuration")
{
    std::unique_ptr<Machine> a = small_machine();
    std::unique_ptr<Machine> b = small_machine();
    CHECK_FALSE(load(*b, saved(*a)).is_error());
}

TEST_CASE("A snapshot whose build string is damaged is refused in one printable line")
{
    std::unique_ptr<Machine> a = small_machine();
    std::vector<u8> bytes = saved(*a);
    // MAGIC (8), version (4), the build string's length (4), then its text.
    bytes[16 + 3] = '\n';
    bytes[16 + 4] = 0x1B;
    std::unique_ptr<Machine> b = small_machine();
    ErrorOr<void> loaded = load(*b, bytes);
    REQUIRE(loaded.is_error());
    const std::string& why = loaded.error().message;
    CHECK(why.find("the snapshot was made by") == 0);
    for (char c : why)
        CHECK((c >= 0x20 && c <= 0x7E));
}
