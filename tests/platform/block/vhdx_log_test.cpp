#include "platform/block/vhdx_log.h"

#include "tests/platform/block/temp_dir.h"

#include <doctest/doctest.h>
#include <vector>

using namespace vhdx;

namespace {

// A 4 MiB file with a 1 MiB log at 1 MiB.
struct LogFile {
    TempDir dir;
    HostFile file;
    LogRegion region{1 * MiB, static_cast<u32>(1 * MiB)};
    Guid guid = Guid::random();
    LogFile()
    {
        file = HostFile::create(dir.file("log.img")).release_value();
        REQUIRE(!file.set_size(4 * MiB).is_error());
    }
};

std::vector<u8> page_of(u8 value)
{
    std::vector<u8> page(LOG_SECTOR_SIZE, value);
    page[0] = static_cast<u8>(value + 1); // the leading and trailing bytes travel in the descriptor
    page[LOG_SECTOR_SIZE - 1] = static_cast<u8>(value + 2);
    return page;
}

std::vector<u8> read(const HostFile& file, u64 offset, size_t length)
{
    std::vector<u8> out(length);
    REQUIRE(!file.read_at(offset, out).is_error());
    return out;
}

} // namespace

TEST_CASE("A VHDX log entry written is found again and replays its pages in place")
{
    LogFile log;
    LogWriter writer(log.region, log.guid);
    auto a = page_of(0x11), b = page_of(0x22);
    std::vector<LogWriter::Page> pages = {{3 * MiB, a}, {3 * MiB + 8192, b}};
    REQUIRE(!writer.write_entry(log.file, pages, 4 * MiB, 4 * MiB).is_error());

    auto replay = find_active_sequence(log.file, log.region, log.guid);
    REQUIRE(!replay.is_error());
    CHECK(replay.value().entries == 1);
    REQUIRE(replay.value().updates.size() == 2);
    // Read-only view first: the file itself is untouched.
    std::vector<u8> view(3 * LOG_SECTOR_SIZE);
    REQUIRE(!read_replayed(log.file, replay.value(), 3 * MiB, view).is_error());
    CHECK(std::vector<u8>(view.begin(), view.begin() + 4096) == a);
    CHECK(std::vector<u8>(view.begin() + 8192, view.end()) == b);
    CHECK(read(log.file, 3 * MiB, 4096) == std::vector<u8>(4096, 0));

    REQUIRE(!apply_replay(log.file, replay.value()).is_error());
    CHECK(read(log.file, 3 * MiB, 4096) == a);
    CHECK(read(log.file, 3 * MiB + 8192, 4096) == b);
}

TEST_CASE("A VHDX log of another LogGuid or with a torn entry has nothing to replay")
{
    LogFile log;
    LogWriter writer(log.region, log.guid);
    auto a = page_of(0x33);
    std::vector<LogWriter::Page> pages = {{3 * MiB, a}};
    REQUIRE(!writer.write_entry(log.file, pages, 4 * MiB, 4 * MiB).is_error());
    CHECK(find_active_sequence(log.file, log.region, Guid::random()).value().empty());
    // One byte of the entry's data sector changed: the checksum fails.
    std::vector<u8> byte = {0x99};
    REQUIRE(!log.file.write_at(1 * MiB + 4096 + 100, byte).is_error());
    CHECK(find_active_sequence(log.file, log.region, log.guid).value().empty());
}

TEST_CASE("VHDX log replay redoes only the entries from the head entry's tail, in order")
{
    LogFile log;
    LogWriter writer(log.region, log.guid);
    auto first = page_of(0x01), second = page_of(0x02), third = page_of(0x03);
    std::vector<LogWriter::Page> one = {{3 * MiB, first}};
    REQUIRE(!writer.write_entry(log.file, one, 4 * MiB, 4 * MiB).is_error());
    writer.all_applied(); // the first entry is on the disk: the tail moves past it
    std::vector<LogWriter::Page> two = {{3 * MiB, second}};
    REQUIRE(!writer.write_entry(log.file, two, 4 * MiB, 4 * MiB).is_error());
    std::vector<LogWriter::Page> three = {{3 * MiB + 4096, third}};
    REQUIRE(!writer.write_entry(log.file, three, 4 * MiB, 4 * MiB).is_error());

    auto replay = find_active_sequence(log.file, log.region, log.guid).release_value();
    CHECK(replay.entries == 2);
    CHECK(replay.last_sequence == 3);
    REQUIRE(!apply_replay(log.file, replay).is_error());
    CHECK(read(log.file, 3 * MiB, 4096) == second);
    CHECK(read(log.file, 3 * MiB + 4096, 4096) == third);
}

TEST_CASE("VHDX log entries wrap round the end of the log and still replay")
{
    LogFile log;
    LogWriter writer(log.region, log.guid);
    std::vector<u8> page = page_of(0x40);
    // Three-sector entries in a 256-sector log: the 86th starts in the last
    // sector and ends at the start of the log.
    for (int i = 0; i < 87; ++i) {
        page[100] = static_cast<u8>(i);
        std::vector<LogWriter::Page> pages = {{3 * MiB, page}, {3 * MiB + 4096, page}};
        REQUIRE(writer.fits(2));
        REQUIRE(!writer.write_entry(log.file, pages, 4 * MiB, 4 * MiB).is_error());
        if (i < 85)
            writer.all_applied();
    }
    auto replay = find_active_sequence(log.file, log.region, log.guid).release_value();
    CHECK(replay.last_sequence == 87);
    CHECK(replay.entries == 2);
    REQUIRE(!apply_replay(log.file, replay).is_error());
    CHECK(read(log.file, 3 * MiB + 100, 1)[0] == 86);
    CHECK(read(log.file, 3 * MiB + 4096 + 100, 1)[0] == 86);
}

TEST_CASE("VHDX log replay extends the file to the entry's last file offset")
{
    LogFile log;
    LogWriter writer(log.region, log.guid);
    auto a = page_of(0x55);
    std::vector<LogWriter::Page> pages = {{3 * MiB, a}};
    REQUIRE(!writer.write_entry(log.file, pages, 6 * MiB, 4 * MiB).is_error());
    auto replay = find_active_sequence(log.file, log.region, log.guid).release_value();
    REQUIRE(!apply_replay(log.file, replay).is_error());
    CHECK(log.file.size().value() == 6 * MiB);
}

TEST_CASE("VHDX log replay refuses a file shorter than the log says was flushed")
{
    LogFile log;
    LogWriter writer(log.region, log.guid);
    auto a = page_of(0x66);
    std::vector<LogWriter::Page> pages = {{3 * MiB, a}};
    REQUIRE(!writer.write_entry(log.file, pages, 8 * MiB, 8 * MiB).is_error());
    auto replay = find_active_sequence(log.file, log.region, log.guid);
    REQUIRE(replay.is_error());
    CHECK(replay.error().kind == BlockErrorKind::Corrupt);
}
