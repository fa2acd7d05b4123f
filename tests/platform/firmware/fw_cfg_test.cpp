#include "platform/firmware/fw_cfg.h"

#include "mmu/base/state_visitor.h"

#include <doctest/doctest.h>

#include <string>

namespace {

u64 read_item(FwCfg& f, u16 key, unsigned bytes)
{
    f.io_write(0, 2, key);
    u64 v = 0;
    for (unsigned i = 0; i < bytes; ++i)
        v |= f.io_read(1, 1) << (8 * i);
    return v;
}

} // namespace

TEST_CASE("fw_cfg signature item reads QEMU")
{
    FwCfg f(2, 512ull << 20);
    f.io_write(0, 2, FwCfg::KEY_SIGNATURE);
    std::string sig;
    for (int i = 0; i < 4; ++i)
        sig.push_back(static_cast<char>(f.io_read(1, 1)));
    CHECK(sig == "QEMU");
}

TEST_CASE("fw_cfg ID offers the traditional interface without DMA")
{
    FwCfg f(1, 0);
    CHECK(read_item(f, FwCfg::KEY_ID, 4) == 1);
}

TEST_CASE("fw_cfg CPU count is a 16-bit little-endian item at key 5")
{
    FwCfg f(3, 0);
    CHECK(read_item(f, 0x0005, 2) == 3);
    CHECK(read_item(f, FwCfg::KEY_MAX_CPUS, 2) == 3);
}

TEST_CASE("fw_cfg RAM size is a 64-bit item")
{
    FwCfg f(1, 512ull << 20);
    CHECK(read_item(f, FwCfg::KEY_RAM_SIZE, 8) == 512ull << 20);
}

TEST_CASE("fw_cfg reads past an item's end and of unknown keys return zero")
{
    FwCfg f(1, 0);
    CHECK(read_item(f, FwCfg::KEY_NB_CPUS, 4) == 1);
    CHECK(read_item(f, 0x1234, 4) == 0);
}

TEST_CASE("fw_cfg selecting an item again restarts it")
{
    FwCfg f(1, 0);
    f.io_write(0, 2, FwCfg::KEY_SIGNATURE);
    f.io_read(1, 1);
    f.io_write(0, 2, FwCfg::KEY_SIGNATURE);
    CHECK(f.io_read(1, 1) == 'Q');
}

TEST_CASE("fw_cfg file directory lists files big-endian with their keys")
{
    FwCfg f(1, 0);
    const u16 key = f.add_file("etc/viridian", {1, 2, 3});
    CHECK(key == 0x20);
    f.io_write(0, 2, FwCfg::KEY_FILE_DIR);
    std::vector<u8> dir;
    for (int i = 0; i < 4 + 64; ++i)
        dir.push_back(static_cast<u8>(f.io_read(1, 1)));
    CHECK(dir[3] == 1);                    // count
    CHECK(dir[7] == 3);                    // size
    CHECK((dir[8] << 8 | dir[9]) == 0x20); // select
    CHECK(std::string(reinterpret_cast<const char*>(&dir[12])) == "etc/viridian");
    CHECK(read_item(f, key, 3) == 0x030201);
}

TEST_CASE("fw_cfg state saves, loads and saves again to the same bytes")
{
    FwCfg f(2, 0);
    f.io_write(0, 2, FwCfg::KEY_SIGNATURE);
    f.io_read(1, 1);
    StateVisitor save = StateVisitor::saver();
    f.visit_state(save);
    FwCfg fresh(2, 0);
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.visit_state(again);
    CHECK(again.bytes() == save.bytes());
    CHECK(fresh.io_read(1, 1) == 'E');
}
