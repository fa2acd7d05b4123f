#include "platform/block/block_device.h"
#include "platform/block/image_format.h"

#include "tests/platform/block/fake_machine.h"
#include "tests/platform/block/temp_dir.h"

#include <doctest/doctest.h>
#include <functional>
#include <mutex>
#include <vector>

namespace {

std::unique_ptr<BlockImage> raw_disk(const TempDir& dir, u64 size)
{
    REQUIRE(!create_image(dir.file("disk.img"), {"raw", size, {}, ""}).is_error());
    auto opened = open_image(dir.file("disk.img"), {"raw"});
    REQUIRE(!opened.is_error());
    return std::move(opened.value().image);
}

} // namespace

TEST_CASE("An inline block device does the I/O at submit and calls back only when the machine delivers")
{
    TempDir dir;
    FakeMachine machine;
    BlockDevice disk(raw_disk(dir, 1 << 20), BlockDevice::Execution::Inline, machine.runner());
    std::vector<u8> data(512, 7);
    int completed = 0;
    disk.submit({BlockOp::Write, 512, 512, data.data()}, [&](BlockStatus status) {
        CHECK(!status.is_error());
        ++completed;
    });
    CHECK(completed == 0);
    CHECK(disk.in_flight() == 1);
    CHECK(machine.run_posted() == 1);
    CHECK(completed == 1);
    CHECK(disk.in_flight() == 0);
}

TEST_CASE("A threaded block device completes many requests in flight, in submission order")
{
    TempDir dir;
    FakeMachine machine;
    BlockDevice disk(raw_disk(dir, 1 << 20), BlockDevice::Execution::WorkerThread,
                     machine.runner());
    std::vector<std::vector<u8>> buffers;
    for (int i = 0; i < 32; ++i)
        buffers.emplace_back(4096, static_cast<u8>(i + 1));
    std::vector<int> order;
    for (int i = 0; i < 32; ++i)
        disk.submit({BlockOp::Write, u64(i) * 4096, 4096, buffers[i].data()},
                    [&order, i](BlockStatus status) {
                        CHECK(!status.is_error());
                        order.push_back(i);
                    });
    disk.submit({BlockOp::Flush, 0, 0, nullptr}, [&](BlockStatus status) {
        CHECK(!status.is_error());
        order.push_back(100);
    });
    disk.drain();
    REQUIRE(order.size() == 33);
    for (int i = 0; i < 32; ++i)
        CHECK(order[i] == i);
    CHECK(order[32] == 100);

    std::vector<u8> back(4096);
    bool read = false;
    disk.submit({BlockOp::Read, 5 * 4096, 4096, back.data()}, [&](BlockStatus status) {
        CHECK(!status.is_error());
        read = true;
    });
    disk.drain();
    CHECK(read);
    CHECK(back[0] == 6);
    machine.run_posted(); // late deliveries find nothing left
    CHECK(disk.in_flight() == 0);
}

TEST_CASE("A block device answers a request outside the disk with an error, not a crash")
{
    TempDir dir;
    FakeMachine machine;
    BlockDevice disk(raw_disk(dir, 1 << 20), BlockDevice::Execution::WorkerThread,
                     machine.runner());
    std::vector<u8> buffer(512);
    std::optional<BlockErrorKind> kind;
    disk.submit({BlockOp::Read, (1 << 20) - 256, 512, buffer.data()},
                [&](BlockStatus status) { kind = status.error().kind; });
    disk.drain();
    CHECK(kind == BlockErrorKind::OutOfRange);
}

TEST_CASE("A block device opened read-only refuses writes and discards but accepts flushes")
{
    TempDir dir;
    FakeMachine machine;
    REQUIRE(!create_image(dir.file("disk.img"), {"raw", 1 << 20, {}, ""}).is_error());
    auto opened = open_image(dir.file("disk.img"), {"raw", true});
    REQUIRE(!opened.is_error());
    BlockDevice disk(std::move(opened.value().image), BlockDevice::Execution::Inline,
                     machine.runner());
    std::vector<u8> buffer(512);
    std::vector<bool> failed;
    disk.submit({BlockOp::Write, 0, 512, buffer.data()},
                [&](BlockStatus status) { failed.push_back(status.is_error()); });
    disk.submit({BlockOp::Discard, 0, 512, nullptr},
                [&](BlockStatus status) { failed.push_back(status.is_error()); });
    disk.submit({BlockOp::Flush, 0, 0, nullptr},
                [&](BlockStatus status) { failed.push_back(status.is_error()); });
    disk.drain();
    CHECK(failed == std::vector<bool>{true, true, false});
}

TEST_CASE("A block device destroyed with requests queued stops cleanly and drops late deliveries")
{
    TempDir dir;
    FakeMachine machine;
    int called = 0;
    {
        BlockDevice disk(raw_disk(dir, 1 << 20), BlockDevice::Execution::WorkerThread,
                         machine.runner());
        static std::vector<u8> buffer(512);
        for (int i = 0; i < 100; ++i)
            disk.submit({BlockOp::Read, 0, 512, buffer.data()}, [&](BlockStatus) { ++called; });
    }
    machine.run_posted();
    CHECK(called == 0);
}
