// Whole-machine snapshot files (docs/snapshots.md): what load_snapshot
// refuses, and that it says why in one line.
#include "platform/machine/snapshot.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <unistd.h>
#include <string>
#include <vector>

namespace {

std::unique_ptr<Machine> small_machine(u64 memory_bytes = 16ull << 20)
{
    MachineConfig config;
    config.memory_bytes = memory_bytes;
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

#include "platform/machine/migration.h"

TEST_CASE("A live migration sends the pages written between rounds, and the target gets the final RAM and state")
{
    std::unique_ptr<Machine> source = small_machine();
    PhysicalMemory& memory = source->memory();
    REQUIRE(memory.write_bytes(0x200000, "before", 6));
    // A socket sink over a pipe: a thread reads what the sender writes.
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    ErrorOr<std::unique_ptr<SnapshotSink>> sink = SnapshotSink::socket(fds[1], "a pipe");
    REQUIRE_FALSE(sink.is_error());
    std::FILE* in = ::fdopen(fds[0], "rb");
    MigrationSender sender(*source, sink.release_value());
    std::vector<u8> stream;
    std::thread reader([&] {
        u8 chunk[4096];
        for (size_t got; (got = std::fread(chunk, 1, sizeof chunk, in)) > 0;)
            stream.insert(stream.end(), chunk, chunk + got);
    });
    u64 steps = 0;
    while (!sender.step(1'000'000)) {
        // The guest writes between rounds: a page dirtied again and again,
        // and one that becomes zero.
        REQUIRE(memory.write_bytes(0x200000, &steps, sizeof steps));
        if (steps == 1)
            REQUIRE(memory.write_bytes(0x200000 + 4096 * 3, "gone", 4));
        if (steps == 2)
            REQUIRE(memory.write_bytes(0x200000 + 4096 * 3, "\0\0\0\0", 4));
        ++steps;
        REQUIRE(steps < 1000);
    }
    reader.join();
    std::fclose(in);
    CHECK(sender.progress().status == MigrationProgress::Status::Completed);
    CHECK(sender.progress().dirty_sync_count >= 2);
    CHECK(sender.progress().transferred == stream.size());
    CHECK_FALSE(memory.dirty_logging());

    std::unique_ptr<Machine> target = small_machine();
    REQUIRE_FALSE(load(*target, stream).is_error());
    const u64 pages = memory.ram_page_count();
    for (u64 page = 0; page < pages; ++page)
        REQUIRE(std::memcmp(memory.ram_page_by_index(page), target->memory().ram_page_by_index(page), 4096) == 0);
}

TEST_CASE("A cancelled migration stops the dirty log and leaves no file")
{
    std::unique_ptr<Machine> source = small_machine();
    // Enough written pages that one short step cannot send them all.
    for (u64 page = 0; page < 1024; ++page)
        REQUIRE(source->memory().write_bytes(0x200000 + page * 4096, "data", 4));
    const std::string path = "/tmp/viridian-cancelled-" + std::to_string(::getpid()) + ".snap";
    ErrorOr<std::unique_ptr<SnapshotSink>> sink = SnapshotSink::file(path);
    REQUIRE_FALSE(sink.is_error());
    MigrationSender sender(*source, sink.release_value());
    sender.step(0);
    CHECK(source->memory().dirty_logging());
    sender.cancel();
    CHECK(sender.progress().status == MigrationProgress::Status::Cancelled);
    CHECK_FALSE(source->memory().dirty_logging());
    CHECK(::access((path + ".tmp").c_str(), F_OK) != 0);
    CHECK(::access(path.c_str(), F_OK) != 0);
}

TEST_CASE("A migration beside a running guest gets a slice as long as the guest ran since the last, within bounds")
{
    // A guest in long REP strings reaches the poll points tens of
    // milliseconds apart; a fixed 5 ms slice then gave the sender a tenth of
    // the thread (bench/snapshot.sh live-busy: 3.5x QEMU's time).
    CHECK(MigrationSender::running_slice_ns(0) == MigrationSender::MIN_RUNNING_SLICE_NS);
    CHECK(MigrationSender::running_slice_ns(1'000'000) == MigrationSender::MIN_RUNNING_SLICE_NS);
    CHECK(MigrationSender::running_slice_ns(43'000'000) == 43'000'000);
    CHECK(MigrationSender::running_slice_ns(2'000'000'000) == MigrationSender::MAX_RUNNING_SLICE_NS);
}

TEST_CASE("A migration slice in the guest's idle wait ends the guest's running time, so the next slice beside it is short")
{
    constexpr u64 MEMORY_BYTES = 64ull << 20;
    std::unique_ptr<Machine> source = small_machine(MEMORY_BYTES);
    // Enough written pages that the slices here do not send them all (a
    // page takes about a microsecond; the first slice is 5 ms).
    for (u64 address = 1ull << 20; address < MEMORY_BYTES; address += 4096)
        REQUIRE(source->memory().write_bytes(address, "data", 4));
    const std::string path = "/tmp/viridian-idle-slice-" + std::to_string(::getpid()) + ".snap";
    ErrorOr<std::unique_ptr<SnapshotSink>> sink = SnapshotSink::file(path);
    REQUIRE_FALSE(sink.is_error());
    MigrationSender sender(*source, sink.release_value());
    sender.step_beside_guest();
    // The guest halts and its wait goes to the migration (Machine's idle
    // work); then the guest runs on.
    constexpr u64 WAIT_NS = 200'000'000;
    std::this_thread::sleep_for(std::chrono::nanoseconds(WAIT_NS));
    sender.step(0);
    CHECK(sender.guest_ran_ns() < WAIT_NS);
    sender.cancel();
    ::unlink(path.c_str()); // there only if the migration completed
}
