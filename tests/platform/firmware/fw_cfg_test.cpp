#include "platform/firmware/fw_cfg.h"

#include "mmu/base/state_visitor.h"
#include "mmu/guest_memory.h"

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

// ---- The DMA interface ----

namespace {

struct DmaRig {
    PhysicalMemory memory{16ull << 20};
    FwCfg fw_cfg{1, 16ull << 20};
    static constexpr GuestPhys DESCRIPTOR = 0x1000, BUFFER = 0x2000;

    DmaRig() { fw_cfg.enable_dma(GuestMemory(memory)); }

    void put_descriptor(u32 control, u32 length, u64 address, GuestPhys at = DESCRIPTOR)
    {
        u8 d[16];
        for (int i = 0; i < 4; ++i) {
            d[i] = static_cast<u8>(control >> (24 - 8 * i));
            d[4 + i] = static_cast<u8>(length >> (24 - 8 * i));
        }
        for (int i = 0; i < 8; ++i)
            d[8 + i] = static_cast<u8>(address >> (56 - 8 * i));
        REQUIRE(GuestMemory(memory).write(at, d, sizeof d));
    }
    // What SeaBIOS does: a 32-bit OUT of the byte-swapped address to 0x518.
    void start(GuestPhys at = DESCRIPTOR)
    {
        fw_cfg.dma_ports().io_write(0, 4, __builtin_bswap32(static_cast<u32>(at >> 32)));
        fw_cfg.dma_ports().io_write(4, 4, __builtin_bswap32(static_cast<u32>(at)));
    }
    u32 control(GuestPhys at = DESCRIPTOR)
    {
        u8 c[4];
        REQUIRE(GuestMemory(memory).read(at, c, 4));
        return (u32(c[0]) << 24) | (u32(c[1]) << 16) | (u32(c[2]) << 8) | c[3];
    }
    std::string bytes_at(GuestPhys at, size_t n)
    {
        std::string s(n, '\0');
        REQUIRE(GuestMemory(memory).read(at, s.data(), n));
        return s;
    }
};

} // namespace

TEST_CASE("fw_cfg with DMA offers it in the ID item and signs its ports QEMU CFG")
{
    DmaRig r;
    CHECK(read_item(r.fw_cfg, FwCfg::KEY_ID, 4) == 3);
    std::string sig;
    for (u64 i = 0; i < 8; i += 4) {
        const u64 v = r.fw_cfg.dma_ports().io_read(i, 4);
        for (int b = 0; b < 4; ++b)
            sig.push_back(static_cast<char>(v >> (8 * b)));
    }
    CHECK(sig == "QEMU CFG");
}

TEST_CASE("fw_cfg DMA selects and reads an item into guest memory and clears control")
{
    DmaRig r;
    r.put_descriptor((u32(FwCfg::KEY_SIGNATURE) << 16) | FwCfg::DMA_CTL_SELECT | FwCfg::DMA_CTL_READ,
                     4, DmaRig::BUFFER);
    r.start();
    CHECK(r.bytes_at(DmaRig::BUFFER, 4) == "QEMU");
    CHECK(r.control() == 0);
}

TEST_CASE("fw_cfg DMA skip moves the read position and a read past the end gives zeros")
{
    DmaRig r;
    r.fw_cfg.add_file("etc/test", {'a', 'b', 'c', 'd', 'e'});
    const u16 key = FwCfg::KEY_FILE_FIRST;
    r.put_descriptor((u32(key) << 16) | FwCfg::DMA_CTL_SELECT | FwCfg::DMA_CTL_SKIP, 2, 0);
    r.start();
    CHECK(r.control() == 0);
    REQUIRE(GuestMemory(r.memory).write(DmaRig::BUFFER, "XXXXXX", 6));
    r.put_descriptor(FwCfg::DMA_CTL_READ, 6, DmaRig::BUFFER);
    r.start();
    CHECK(r.control() == 0);
    CHECK(r.bytes_at(DmaRig::BUFFER, 6) == std::string("cde\0\0\0", 6));
}

TEST_CASE("fw_cfg DMA into memory that is not RAM sets the error bit")
{
    DmaRig r;
    // The legacy hole, past the end of RAM, and the top of the address space.
    for (u64 target : {0xA0000ull, 16ull << 20, ~0ull - 1}) {
        r.put_descriptor((u32(FwCfg::KEY_SIGNATURE) << 16) | FwCfg::DMA_CTL_SELECT |
                             FwCfg::DMA_CTL_READ,
                         4, target);
        r.start();
        CHECK(r.control() == FwCfg::DMA_CTL_ERROR);
    }
}

TEST_CASE("fw_cfg DMA with a huge length fails at the end of RAM rather than allocating it")
{
    DmaRig r;
    r.put_descriptor((u32(FwCfg::KEY_SIGNATURE) << 16) | FwCfg::DMA_CTL_SELECT | FwCfg::DMA_CTL_READ,
                     0xFFFFFFFF, (16ull << 20) - 0x3000);
    r.start();
    CHECK(r.control() == FwCfg::DMA_CTL_ERROR);
    CHECK(r.bytes_at((16ull << 20) - 0x3000, 4) == "QEMU");
}

TEST_CASE("fw_cfg DMA writes are refused with the error bit: no item is writable")
{
    DmaRig r;
    r.put_descriptor((u32(FwCfg::KEY_SIGNATURE) << 16) | FwCfg::DMA_CTL_SELECT | FwCfg::DMA_CTL_WRITE,
                     4, DmaRig::BUFFER);
    r.start();
    CHECK(r.control() == FwCfg::DMA_CTL_ERROR);
    CHECK(read_item(r.fw_cfg, FwCfg::KEY_SIGNATURE, 4) == 0x554D4551); // unchanged
}

TEST_CASE("fw_cfg DMA with unknown control bits only does nothing and succeeds")
{
    DmaRig r;
    r.put_descriptor(0xFFE0, 4, DmaRig::BUFFER);
    r.start();
    CHECK(r.control() == 0);
}

TEST_CASE("fw_cfg DMA with a descriptor outside RAM is ignored without a crash")
{
    DmaRig r;
    r.start(0xFFFFFFFFFFFFFFF8ull);
    r.start(0xB8000);
    r.fw_cfg.dma_ports().io_write(0, 8, 0x1234); // an 8-byte start at an address outside RAM
    // Odd sizes and offsets are ignored.
    r.fw_cfg.dma_ports().io_write(1, 2, 0xFFFF);
    CHECK(read_item(r.fw_cfg, FwCfg::KEY_SIGNATURE, 4) == 0x554D4551);
}

TEST_CASE("fw_cfg without DMA ignores the DMA ports")
{
    FwCfg f(1, 16ull << 20);
    f.dma_ports().io_write(4, 4, __builtin_bswap32(static_cast<u32>(DmaRig::DESCRIPTOR)));
    CHECK(f.dma_ports().io_read(0, 4) == 0x554D4551); // the signature is there all the same
    CHECK(read_item(f, FwCfg::KEY_ID, 4) == 1);
}
