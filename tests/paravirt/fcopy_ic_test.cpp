// The file copy service against the guest's side as Linux's hv_fcopy.c and
// hv_fcopy_daemon answer: 1.1 negotiated, each request answered in its own
// buffer with the daemon's status, one at a time.
#include "mmu/base/utf16.h"
#include "paravirt/vmbus/fcopy_ic.h"
#include "tests/paravirt/ic_guest.h"

using namespace vmbus;

namespace {

struct FcopyGuest : IcGuest {
    FcopyIc fcopy{memory, signal};

    FcopyGuest()
    {
        open(fcopy);
        negotiate(fcopy, LINUX_FRAMEWORKS, {0x10001});
    }
    // The next request: its operation and bytes after the IC header, and
    // the whole message to answer with.
    struct Request {
        u64 transaction;
        std::vector<u8> message;
        u32 operation() const { return load_le32(message, ic::HEADER_END + fcopy::OPERATION); }
        std::span<const u8> body() const { return std::span(message).subspan(ic::HEADER_END); }
    };
    Request next_request()
    {
        auto [transaction, m] = next();
        REQUIRE(load_le16(m, ic::TYPE) == ic::TYPE_FCOPY);
        return {transaction, m};
    }
    void answer(const Request& r, u32 status)
    {
        std::vector<u8> m = r.message;
        store_le32(m, ic::STATUS, status);
        IcGuest::answer(fcopy, r.transaction, m);
    }
};

// A host file of `size` bytes with a pattern, as a reader.
std::vector<u8> pattern(size_t size)
{
    std::vector<u8> data(size);
    for (size_t i = 0; i < size; ++i)
        data[i] = static_cast<u8>(i * 7 + i / 251);
    return data;
}

FcopyIc::Copy copy_of(const std::vector<u8>& data, std::string destination)
{
    FcopyIc::Copy c;
    c.destination = std::move(destination);
    c.size = data.size();
    c.read = [&data](u64 offset, std::span<u8> out) {
        if (offset + out.size() > data.size())
            return false;
        std::copy_n(data.begin() + static_cast<long>(offset), out.size(), out.begin());
        return true;
    };
    return c;
}

} // namespace

TEST_CASE("File copy service: a file goes to the guest as a start, 6 KiB writes and a completion")
{
    FcopyGuest g;
    CHECK(g.fcopy.service_version() == 0x10001);
    const std::vector<u8> data = pattern(13'000);
    FcopyIc::Copy c = copy_of(data, "/tmp/dir/f\u00e9.bin");
    c.create_path = true;
    REQUIRE(g.fcopy.start(c).empty());
    CHECK(g.fcopy.state() == FcopyIc::State::Starting);
    CHECK_FALSE(g.fcopy.start(c).empty()); // one copy at a time

    FcopyGuest::Request start = g.next_request();
    REQUIRE(start.message.size() >= ic::HEADER_END + fcopy::START_SIZE); // the ring pads to 8 bytes
    CHECK(start.operation() == fcopy::START_FILE_COPY);
    CHECK(utf16_to_utf8(start.body().subspan(fcopy::PATH_NAME, 2 * fcopy::MAX_PATH)) == "/tmp/dir/");
    CHECK(utf16_to_utf8(start.body().subspan(fcopy::FILE_NAME, 2 * fcopy::MAX_PATH)) == "f\u00e9.bin");
    CHECK(load_le32(start.body(), fcopy::COPY_FLAGS) == fcopy::CREATE_PATH);
    CHECK(load_le64(start.body(), fcopy::FILE_SIZE) == 13'000);
    g.answer(start, 0);

    std::vector<u8> received;
    for (u32 expected : {6144u, 6144u, 712u}) {
        FcopyGuest::Request write = g.next_request();
        REQUIRE(write.message.size() == ic::HEADER_END + fcopy::WRITE_SIZE);
        CHECK(write.operation() == fcopy::WRITE_TO_FILE);
        CHECK(load_le64(write.body(), fcopy::OFFSET) == received.size());
        REQUIRE(load_le32(write.body(), fcopy::DATA_SIZE) == expected);
        auto bytes = write.body().subspan(fcopy::DATA, expected);
        received.insert(received.end(), bytes.begin(), bytes.end());
        CHECK(g.fcopy.state() == FcopyIc::State::Writing);
        CHECK(g.empty()); // the next waits for the answer
        g.answer(write, 0);
    }
    CHECK(received == data);
    CHECK(g.fcopy.bytes_written() == 13'000);
    FcopyGuest::Request complete = g.next_request();
    CHECK(complete.operation() == fcopy::COMPLETE_FCOPY);
    CHECK(g.fcopy.state() == FcopyIc::State::Completing);
    g.answer(complete, 0);
    CHECK(g.fcopy.state() == FcopyIc::State::Completed);
    CHECK(g.fcopy.failure() == FcopyIc::Failure::None);
    CHECK(g.empty());

    // An empty file: the start, then the completion.
    const std::vector<u8> none;
    FcopyIc::Copy empty = copy_of(none, "/empty");
    empty.overwrite = true;
    REQUIRE(g.fcopy.start(empty).empty());
    start = g.next_request();
    CHECK(utf16_to_utf8(start.body().subspan(fcopy::PATH_NAME, 2 * fcopy::MAX_PATH)) == "/");
    CHECK(load_le32(start.body(), fcopy::COPY_FLAGS) == fcopy::OVER_WRITE);
    g.answer(start, 0);
    complete = g.next_request();
    CHECK(complete.operation() == fcopy::COMPLETE_FCOPY);
    g.answer(complete, 0);
    CHECK(g.fcopy.state() == FcopyIc::State::Completed);
}

TEST_CASE("File copy service: a refused start ends the copy; a refused write is cancelled")
{
    FcopyGuest g;
    const std::vector<u8> data = pattern(10'000);
    REQUIRE(g.fcopy.start(copy_of(data, "/tmp/f")).empty());
    g.answer(g.next_request(), fcopy::ERROR_ALREADY_EXISTS);
    CHECK(g.fcopy.state() == FcopyIc::State::Failed);
    CHECK(g.fcopy.failure() == FcopyIc::Failure::Guest);
    CHECK(FcopyIc::failure_text(g.fcopy.failure(), g.fcopy.last_status()).find("exists") != std::string::npos);
    CHECK(g.empty()); // nothing was opened in the guest: no cancel

    REQUIRE(g.fcopy.start(copy_of(data, "/tmp/f")).empty());
    g.answer(g.next_request(), 0);
    g.answer(g.next_request(), fcopy::ERROR_DISK_FULL);
    FcopyGuest::Request cancel = g.next_request();
    CHECK(cancel.operation() == fcopy::CANCEL_FCOPY);
    CHECK(cancel.message.size() < ic::HEADER_END + fcopy::HEADER_SIZE + 8);
    CHECK(g.fcopy.state() == FcopyIc::State::Cancelling);
    g.answer(cancel, 0);
    CHECK(g.fcopy.state() == FcopyIc::State::Failed);
    CHECK(g.fcopy.last_status() == fcopy::ERROR_DISK_FULL);
    CHECK(g.fcopy.bytes_written() == 0);
}

TEST_CASE("File copy service: a host file that cannot be read, and a cancel, end in a CANCEL_FCOPY")
{
    FcopyGuest g;
    std::vector<u8> data = pattern(10'000);
    FcopyIc::Copy c = copy_of(data, "/f");
    c.size = 20'000; // the file shrank after it was measured
    REQUIRE(g.fcopy.start(c).empty());
    g.answer(g.next_request(), 0);
    g.answer(g.next_request(), 0); // the first 6 KiB
    FcopyGuest::Request cancel = g.next_request();
    CHECK(cancel.operation() == fcopy::CANCEL_FCOPY);
    g.answer(cancel, 0);
    CHECK(g.fcopy.state() == FcopyIc::State::Failed);
    CHECK(g.fcopy.failure() == FcopyIc::Failure::HostRead);

    CHECK_FALSE(g.fcopy.cancel()); // nothing under way
    REQUIRE(g.fcopy.start(copy_of(data, "/f")).empty());
    g.answer(g.next_request(), 0);
    FcopyGuest::Request write = g.next_request();
    REQUIRE(g.fcopy.cancel());
    g.answer(write, 0);
    cancel = g.next_request();
    CHECK(cancel.operation() == fcopy::CANCEL_FCOPY);
    CHECK_FALSE(g.fcopy.cancel()); // already cancelling
    g.answer(cancel, 0);
    CHECK(g.fcopy.state() == FcopyIc::State::Cancelled);
}

TEST_CASE("File copy service: answers that are not the request's are ignored")
{
    FcopyGuest g;
    const std::vector<u8> data = pattern(100);
    REQUIRE(g.fcopy.start(copy_of(data, "/f")).empty());
    FcopyGuest::Request start = g.next_request();
    FcopyGuest::Request wrong = start;
    wrong.message[ic::TRANSACTION] ^= 1;
    g.answer(wrong, 0);
    wrong = start;
    store_le32(wrong.message, ic::HEADER_END + fcopy::OPERATION, fcopy::COMPLETE_FCOPY);
    g.answer(wrong, 0);
    wrong = start;
    store_le16(wrong.message, ic::TYPE, ic::TYPE_KVP_EXCHANGE);
    g.answer(wrong, 0);
    CHECK(g.fcopy.state() == FcopyIc::State::Starting);
    CHECK(g.empty());
    g.answer(start, 0);
    CHECK(g.fcopy.state() == FcopyIc::State::Writing);
}

TEST_CASE("File copy service: destinations are split as the daemon joins them and checked")
{
    std::string error;
    auto parts = FcopyIc::split_destination("/var/tmp/x.txt", error);
    REQUIRE(parts);
    CHECK(parts->first == "/var/tmp/");
    CHECK(parts->second == "x.txt");
    parts = FcopyIc::split_destination("/x", error);
    // 130 UTF-16 units, but 260 bytes once the kernel makes it UTF-8.
    std::string long_in_utf8 = "/";
    for (int i = 0; i < 130; ++i)
        long_in_utf8 += "\u00e9";
    REQUIRE(parts);
    CHECK(parts->first == "/");
    for (const std::string& bad : std::initializer_list<std::string>{"", "relative/x", "/dir/", std::string("/a\0b", 4), std::string("/\xff"),
                                  "/" + std::string(260, 'a'), long_in_utf8})
        CHECK_FALSE(FcopyIc::split_destination(bad, error));
    CHECK(FcopyIc::split_destination("/" + std::string(259, 'a'), error));
    CHECK(FcopyIc::split_destination(std::string(257, 'a').insert(0, "/") + "/x", error));
    CHECK_FALSE(FcopyIc::split_destination(std::string(258, 'a').insert(0, "/") + "/x", error));
    FcopyGuest g;
    const std::vector<u8> data = pattern(1);
    CHECK_FALSE(g.fcopy.start(copy_of(data, "not/absolute")).empty());
    CHECK(g.fcopy.state() == FcopyIc::State::Idle);
    CHECK(g.empty());
}

TEST_CASE("File copy service: a copy saved under way is cancelled after the load; a close fails it")
{
    FcopyGuest g;
    const std::vector<u8> data = pattern(20'000);
    REQUIRE(g.fcopy.start(copy_of(data, "/f")).empty());
    g.answer(g.next_request(), 0);
    FcopyGuest::Request write = g.next_request();
    FcopyIc copy(g.memory, g.signal);
    check_round_trip(g.fcopy, copy);
    CHECK(copy.state() == FcopyIc::State::Writing);
    store_le32(write.message, ic::STATUS, 0);
    g.IcGuest::answer(copy, write.transaction, write.message);
    FcopyGuest::Request cancel = g.next_request();
    CHECK(cancel.operation() == fcopy::CANCEL_FCOPY);
    store_le32(cancel.message, ic::STATUS, 0);
    g.IcGuest::answer(copy, cancel.transaction, cancel.message);
    CHECK(copy.state() == FcopyIc::State::Failed);
    CHECK(copy.failure() == FcopyIc::Failure::Restored);

    // The original's channel closes with its write unanswered.
    g.fcopy.close();
    CHECK(g.fcopy.state() == FcopyIc::State::Failed);
    CHECK(g.fcopy.failure() == FcopyIc::Failure::ChannelClosed);
    CHECK_FALSE(g.fcopy.start(copy_of(data, "/f")).empty()); // not open
}

TEST_CASE("File copy service: a request that finds the ring full goes when the guest has made room")
{
    FcopyGuest g;
    const std::vector<u8> data = pattern(20'000);
    REQUIRE(g.fcopy.start(copy_of(data, "/f")).empty());
    FcopyGuest::Request start = g.next_request();
    // The guest's reader stands just past where the host writes: no room.
    constexpr u32 WRITE_INDEX = 0, READ_INDEX = 4;
    const u32 write_index = g.get(false, WRITE_INDEX);
    g.set(false, READ_INDEX, (write_index + 64) % GuestRings::DATA);
    g.answer(start, 0);
    CHECK(g.fcopy.state() == FcopyIc::State::Writing);
    CHECK(g.get(false, WRITE_INDEX) == write_index); // nothing written
    // Saved while it waits, the request is in the snapshot.
    FcopyIc copy(g.memory, g.signal);
    check_round_trip(g.fcopy, copy);
    // The guest catches up and signals: the write goes.
    g.set(false, READ_INDEX, write_index);
    g.fcopy.signaled();
    FcopyGuest::Request write = g.next_request();
    CHECK(write.operation() == fcopy::WRITE_TO_FILE);
    CHECK(load_le64(write.body(), fcopy::OFFSET) == 0);
    g.answer(write, 0);
    CHECK(g.next_request().operation() == fcopy::WRITE_TO_FILE);
}
