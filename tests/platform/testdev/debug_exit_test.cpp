#include "platform/testdev/debug_exit.h"

#include <doctest/doctest.h>

#include <optional>

TEST_CASE("debug exit turns a written value v into exit status (v << 1) | 1")
{
    std::optional<u64> status;
    DebugExit dev([&](u64 s) { status = s; });
    dev.io_write(0, 1, 0);
    CHECK(status == 1u);
    dev.io_write(0, 1, 0x10);
    CHECK(status == 0x21u);
}

TEST_CASE("debug exit takes the whole value of a 32-bit write at any offset")
{
    std::optional<u64> status;
    DebugExit dev([&](u64 s) { status = s; });
    dev.io_write(2, 4, 0x12345678);
    CHECK(status == ((0x12345678ull << 1) | 1));
}

TEST_CASE("debug exit reads as zero like QEMU's device")
{
    DebugExit dev([](u64) {});
    CHECK(dev.io_read(0, 1) == 0);
    CHECK(dev.io_read(0, 4) == 0);
}
