#include "mmu/physical_memory.h"

#include <doctest/doctest.h>

#include <array>
#include <vector>

namespace {

constexpr u64 RAM = 16ull << 20;

// Records every access so a test can see exactly what reached the device.
class RecordingDevice : public IoDevice {
public:
    u64 io_read(u64 offset, unsigned size) override
    {
        reads.push_back({offset, size, 0});
        return read_value;
    }
    void io_write(u64 offset, unsigned size, u64 value) override
    {
        writes.push_back({offset, size, value});
    }

    struct Access {
        u64 offset;
        unsigned size;
        u64 value;
    };
    std::vector<Access> reads, writes;
    u64 read_value = 0;
};

} // namespace

TEST_CASE("RAM starts zeroed and round-trips little-endian values of every size")
{
    PhysicalMemory mem(RAM);
    CHECK(mem.ram_size() == RAM);
    CHECK(mem.read(0x1000, 8) == 0);
    CHECK(mem.read(RAM - 8, 8) == 0);

    mem.write(0x2000, 8, 0x1122'3344'5566'7788);
    CHECK(mem.read(0x2000, 8) == 0x1122'3344'5566'7788);
    CHECK(mem.read(0x2000, 4) == 0x5566'7788);
    CHECK(mem.read(0x2000, 2) == 0x7788);
    CHECK(mem.read(0x2000, 1) == 0x88);
    CHECK(mem.read(0x2007, 1) == 0x11);

    mem.write(0x2001, 2, 0xabcd);
    CHECK(mem.read(0x2000, 4) == 0x55ab'cd88);
    mem.write(0x2004, 4, 0xdead'beef);
    CHECK(mem.read(0x2000, 8) == 0xdead'beef'55ab'cd88);
}

TEST_CASE("The legacy hole reads all ones and drops writes even inside RAM")
{
    PhysicalMemory mem(RAM);
    CHECK(mem.read(0xa0000, 4) == 0xffff'ffff);
    CHECK(mem.read(0xfffff, 1) == 0xff);
    mem.write(0xb8000, 2, 0x0741);
    CHECK(mem.read(0xb8000, 2) == 0xffff);
    CHECK(mem.ram_page(0xa0000) == nullptr);
    CHECK(mem.ram_page(0xff000) == nullptr);
    CHECK(mem.ram_page(0x9f000) != nullptr);
    CHECK(mem.ram_page(0x100000) != nullptr);

    // An access straddling the hole's edge keeps its RAM bytes.
    mem.write(0x9fffe, 4, 0x4433'2211);
    CHECK(mem.read(0x9fffe, 2) == 0x2211);
    CHECK(mem.read(0x9fffe, 4) == 0xffff'2211);
}

TEST_CASE("Accesses beyond RAM read all ones and never touch the host")
{
    PhysicalMemory mem(RAM);
    const GuestPhys unbacked[] = {RAM,       RAM + 0x1000, 0xffff'ffff, 0x8000'0000'0000,
                                  ~0ull - 7, ~0ull};
    for (GuestPhys addr : unbacked) {
        CAPTURE(addr);
        CHECK(mem.read(addr, 8) == ~0ull);
        CHECK(mem.read(addr, 1) == 0xff);
        mem.write(addr, 8, 0);
        mem.write(addr, 4, 0);
        CHECK(mem.read(addr, 4) == 0xffff'ffff);
        CHECK(mem.ram_page(addr) == nullptr);
        CHECK(mem.readable_page(addr) == nullptr);
    }
    // The last RAM bytes stay readable in an access that runs past the end.
    mem.write(RAM - 2, 2, 0xbeef);
    CHECK(mem.read(RAM - 2, 4) == 0xffff'beef);
    CHECK(mem.read(RAM - 2, 2) == 0xbeef);
}

TEST_CASE("Invalid access sizes are refused without touching memory")
{
    PhysicalMemory mem(RAM);
    mem.write(0x1000, 0, 0x12);
    mem.write(0x1000, 9, 0x12);
    CHECK(mem.read(0x1000, 8) == 0);
    CHECK(mem.read(0x1000, 0) == ~0ull);
    CHECK(mem.read(0x1000, 16) == ~0ull);
}

TEST_CASE("A RAM size that is not a page multiple keeps its partial last page out of ram_page")
{
    PhysicalMemory mem(0x200800);
    CHECK(mem.ram_page(0x1ff000) != nullptr);
    CHECK(mem.ram_page(0x200000) == nullptr);
    mem.write(0x2007fc, 4, 0x1234'5678);
    CHECK(mem.read(0x2007fc, 4) == 0x1234'5678);
    mem.write(0x200800, 4, 0x1234'5678);
    CHECK(mem.read(0x200800, 4) == 0xffff'ffff);
}

TEST_CASE("A machine with no RAM answers every access as unclaimed")
{
    PhysicalMemory mem(0);
    CHECK(mem.read(0, 8) == ~0ull);
    mem.write(0, 8, 0);
    mem.mark_code(0);
    CHECK_FALSE(mem.is_code(0));
    mem.note_write(0, ~0ull);
    CHECK(mem.ram_page(0) == nullptr);
}

TEST_CASE("ram_page points into one host allocation at the page's offset")
{
    PhysicalMemory mem(RAM);
    u8* base = mem.ram_ranges()[0].host;
    REQUIRE(base != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(base) % PAGE_SIZE == 0);
    CHECK(mem.ram_page(0x0) == base);
    CHECK(mem.ram_page(0x123456) == base + 0x123000);
    mem.ram_page(0x5000)[0x10] = 0x5a;
    CHECK(mem.read(0x5010, 1) == 0x5a);
    CHECK(mem.readable_page(0x5000) == base + 0x5000);
}

TEST_CASE("MMIO accesses reach the device with offsets relative to its base")
{
    PhysicalMemory mem(RAM);
    RecordingDevice dev;
    dev.read_value = 0xcafe;
    mem.map_mmio(0xfee0'0000, 0x1000, &dev);

    CHECK(mem.read(0xfee0'0030, 4) == 0xcafe);
    REQUIRE(dev.reads.size() == 1);
    CHECK(dev.reads[0].offset == 0x30);
    CHECK(dev.reads[0].size == 4);

    mem.write(0xfee0'00b0, 8, 0x1234);
    REQUIRE(dev.writes.size() == 1);
    CHECK(dev.writes[0].offset == 0xb0);
    CHECK(dev.writes[0].size == 8);
    CHECK(dev.writes[0].value == 0x1234);

    CHECK(mem.ram_page(0xfee0'0000) == nullptr);
    CHECK(mem.readable_page(0xfee0'0000) == nullptr);
    // Just past the range the bus answers, not the device.
    CHECK(mem.read(0xfee0'1000, 4) == 0xffff'ffff);
    CHECK(dev.reads.size() == 1);
}

TEST_CASE("MMIO read values are cut to the access size")
{
    PhysicalMemory mem(RAM);
    RecordingDevice dev;
    dev.read_value = ~0ull;
    mem.map_mmio(0xa0000, 0x20000, &dev);
    CHECK(mem.read(0xa0010, 2) == 0xffff);
    CHECK(mem.read(0xa0010, 1) == 0xff);
}

TEST_CASE("MMIO mapped over RAM hides the RAM underneath")
{
    PhysicalMemory mem(RAM);
    mem.write(0x800000, 4, 0x1111'1111);
    RecordingDevice dev;
    dev.read_value = 0x2222'2222;
    mem.map_mmio(0x800000, 0x1000, &dev);
    CHECK(mem.read(0x800000, 4) == 0x2222'2222);
    mem.write(0x800000, 4, 0x3333'3333);
    CHECK(dev.writes.size() == 1);
    CHECK(mem.ram_page(0x800000) == nullptr);
    CHECK(mem.ram_page(0x801000) != nullptr);

    std::array<u8, 16> buf{};
    CHECK_FALSE(mem.read_bytes(0x7ffff8, buf.data(), buf.size()));
    CHECK_FALSE(mem.write_bytes(0x7ffff8, buf.data(), buf.size()));
}

TEST_CASE("ROM reads its image and drops guest writes")
{
    PhysicalMemory mem(RAM);
    std::vector<u8> image(0x10000);
    for (size_t i = 0; i < image.size(); ++i)
        image[i] = u8(i * 7);
    mem.map_rom(0xf0000, image);

    CHECK(mem.read(0xf0000, 1) == 0x00);
    CHECK(mem.read(0xf0001, 1) == 0x07);
    CHECK(mem.read(0xffff0, 4) == (u64(image[0xfff3]) << 24 | u64(image[0xfff2]) << 16 |
                                   u64(image[0xfff1]) << 8 | image[0xfff0]));
    mem.write(0xf0000, 4, 0xffff'ffff);
    CHECK(mem.read(0xf0000, 1) == 0x00);

    CHECK(mem.ram_page(0xf0000) == nullptr);
    const u8* page = mem.readable_page(0xf1234);
    REQUIRE(page != nullptr);
    CHECK(page[1] == image[0x1001]);
}

TEST_CASE("ROM above RAM works like the reset-vector BIOS alias")
{
    PhysicalMemory mem(RAM);
    std::vector<u8> image(0x1000, 0x90);
    image[0xff0] = 0xea;
    mem.map_rom(0xffff'f000, image);
    CHECK(mem.read(0xffff'fff0, 1) == 0xea);
    CHECK(mem.read(0xffff'fff1, 1) == 0x90);
    CHECK(mem.readable_page(0xffff'f000) != nullptr);
    // One byte past the image: unbacked.
    CHECK(mem.read(0x1'0000'0000, 1) == 0xff);
}

TEST_CASE("A ROM that covers part of a page gives no direct pointer to that page")
{
    PhysicalMemory mem(RAM);
    std::vector<u8> image(0x200, 0x55);
    mem.map_rom(0xc0000, image);
    CHECK(mem.readable_page(0xc0000) == nullptr);
    CHECK(mem.read(0xc01fe, 4) == 0xffff'5555);

    // Over RAM, the rest of the page stays RAM but the page is no longer plain RAM.
    mem.map_rom(0x400100, image);
    CHECK(mem.ram_page(0x400000) == nullptr);
    mem.write(0x400000, 4, 0x1234'5678);
    CHECK(mem.read(0x400000, 4) == 0x1234'5678);
    mem.write(0x400100, 4, 0);
    CHECK(mem.read(0x400100, 4) == 0x5555'5555);
}

TEST_CASE("Bulk copies succeed only when the whole range is RAM")
{
    PhysicalMemory mem(RAM);
    std::vector<u8> data(0x3000);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = u8(i);
    REQUIRE(mem.write_bytes(0x10'0800, data.data(), data.size()));
    std::vector<u8> back(data.size());
    REQUIRE(mem.read_bytes(0x10'0800, back.data(), back.size()));
    CHECK(back == data);
    CHECK(mem.read(0x10'0801, 1) == 1);

    std::array<u8, 8> buf{1, 2, 3, 4, 5, 6, 7, 8};
    // Into the hole, past the end, wrapping the address space: nothing copied.
    CHECK_FALSE(mem.write_bytes(0x9fffc, buf.data(), buf.size()));
    CHECK(mem.read(0x9fffc, 4) == 0);
    CHECK_FALSE(mem.write_bytes(RAM - 4, buf.data(), buf.size()));
    CHECK(mem.read(RAM - 4, 4) == 0);
    CHECK_FALSE(mem.write_bytes(~0ull - 3, buf.data(), buf.size()));
    CHECK_FALSE(mem.read_bytes(~0ull - 3, buf.data(), buf.size()));
    CHECK_FALSE(mem.read_bytes(0x1000, buf.data(), ~0ull));
    CHECK(buf[0] == 1);

    CHECK(mem.write_bytes(0x1000, buf.data(), 0));
    CHECK(mem.read_bytes(~0ull, buf.data(), 0));
}

TEST_CASE("A write to a code page calls the listener with the page base while still marked")
{
    PhysicalMemory mem(RAM);
    std::vector<GuestPhys> calls;
    std::vector<bool> marked_during_call;
    mem.set_code_write_listener([&](GuestPhys page) {
        calls.push_back(page);
        marked_during_call.push_back(mem.is_code(page));
    });

    mem.mark_code(0x3456);
    CHECK(mem.is_code(0x3000));
    CHECK(mem.is_code(0x3fff));
    CHECK_FALSE(mem.is_code(0x4000));

    mem.write(0x4000, 4, 1); // another page: no call
    CHECK(calls.empty());

    mem.write(0x3ffc, 4, 1);
    REQUIRE(calls.size() == 1);
    CHECK(calls[0] == 0x3000);
    CHECK(marked_during_call[0]);
    CHECK_FALSE(mem.is_code(0x3000));

    mem.write(0x3ffc, 4, 2); // mark already cleared
    CHECK(calls.size() == 1);
}

TEST_CASE("A write across a page boundary invalidates both code pages")
{
    PhysicalMemory mem(RAM);
    std::vector<GuestPhys> calls;
    mem.set_code_write_listener([&](GuestPhys page) { calls.push_back(page); });
    mem.mark_code(0x5000);
    mem.mark_code(0x6000);
    mem.write(0x5ffe, 4, 0xaabb'ccdd);
    CHECK(calls == std::vector<GuestPhys>{0x5000, 0x6000});
    CHECK(mem.read(0x5ffe, 4) == 0xaabb'ccdd);
}

TEST_CASE("Bulk writes and note_write invalidate every code page they overlap")
{
    PhysicalMemory mem(RAM);
    std::vector<GuestPhys> calls;
    mem.set_code_write_listener([&](GuestPhys page) { calls.push_back(page); });
    for (GuestPhys p : {0x10'0000ull, 0x10'2000ull, 0x10'3000ull, 0x10'5000ull})
        mem.mark_code(p);

    std::vector<u8> data(0x2001, 0xcc);
    REQUIRE(mem.write_bytes(0x10'1fff, data.data(), data.size()));
    CHECK(calls == std::vector<GuestPhys>{0x10'2000, 0x10'3000});

    calls.clear();
    mem.note_write(0xfffff, 2); // a DMA engine writing straight through ram_page
    CHECK(calls == std::vector<GuestPhys>{0x10'0000});

    calls.clear();
    mem.note_write(0x10'5000, 0);
    CHECK(calls.empty());
    mem.note_write(0x10'4fff, ~0ull); // runs off the top: clamped, no crash
    CHECK(calls == std::vector<GuestPhys>{0x10'5000});
}

TEST_CASE("Writes that change nothing in memory still invalidate code, dropped writes do not")
{
    PhysicalMemory mem(RAM);
    int calls = 0;
    mem.set_code_write_listener([&](GuestPhys) { ++calls; });
    std::vector<u8> image(0x1000, 0);
    mem.map_rom(0xc0000, image);
    mem.mark_code(0xc0000); // inside RAM's span, but ROM: never written
    mem.write(0xc0000, 4, 1);
    CHECK(calls == 0);

    mem.mark_code(0x7000);
    mem.write(0x7000, 4, 0); // same value as before
    CHECK(calls == 1);
}

TEST_CASE("Marking code outside RAM is ignored")
{
    PhysicalMemory mem(RAM);
    mem.mark_code(RAM);
    mem.mark_code(0xffff'fff0);
    mem.mark_code(~0ull);
    CHECK_FALSE(mem.is_code(RAM));
    CHECK_FALSE(mem.is_code(~0ull));
}

TEST_CASE("Code pages are tracked without a listener")
{
    PhysicalMemory mem(RAM);
    mem.mark_code(0x9000);
    mem.write(0x9000, 1, 1);
    CHECK_FALSE(mem.is_code(0x9000));
}

// ---- Shadow RAM behind the PAM registers ----

namespace {

struct ShadowRig {
    PhysicalMemory mem{RAM};
    std::vector<u8> rom = std::vector<u8>(0x20000, 0xAA); // at 0xE0000-0xFFFFF
    ShadowRig() { mem.map_rom(0xE0000, rom); }
};

} // namespace

TEST_CASE("shadow RAM off: the BIOS window reads the ROM and drops writes, as at power-on")
{
    ShadowRig r;
    r.mem.write(0xF0000, 1, 0x11);
    CHECK(r.mem.read(0xF0000, 1) == 0xAA);
    CHECK(r.mem.read(0xC0000, 1) == 0xFF); // nothing mapped: unclaimed
    CHECK(r.mem.ram_page(0xF0000) == nullptr);
}

TEST_CASE("shadow RAM write-only: writes reach the RAM while reads still come from the ROM")
{
    ShadowRig r;
    r.mem.set_shadow(0xF0000, 0x10000, false, true);
    r.mem.write(0xF1234, 1, 0x11);
    CHECK(r.mem.read(0xF1234, 1) == 0xAA);
    r.mem.set_shadow(0xF0000, 0x10000, true, false);
    CHECK(r.mem.read(0xF1234, 1) == 0x11); // what was copied is there
}

TEST_CASE("shadow RAM read-write is plain RAM, for DMA too; read-only drops writes")
{
    ShadowRig r;
    r.mem.set_shadow(0xE0000, 0x20000, true, true);
    r.mem.write(0xE8000, 4, 0x12345678);
    CHECK(r.mem.read(0xE8000, 4) == 0x12345678);
    CHECK(r.mem.ram_page(0xE8000) != nullptr);
    const u8 bytes[3] = {1, 2, 3};
    CHECK(r.mem.write_bytes(0xFFFF0, bytes, 3));
    CHECK_FALSE(r.mem.write_bytes(0xFFFFE, bytes, 3)); // runs past the window
    r.mem.set_shadow(0xE0000, 0x20000, true, false);
    r.mem.write(0xE8000, 4, 0);
    CHECK(r.mem.read(0xE8000, 4) == 0x12345678);
    CHECK(r.mem.ram_page(0xE8000) == nullptr);
    REQUIRE(r.mem.readable_page(0xE8000) != nullptr);
    CHECK(r.mem.readable_page(0xE8000)[0] == 0x78);
    CHECK_FALSE(r.mem.write_bytes(0xFFFF0, bytes, 3));
}

TEST_CASE("shadow RAM is decoded per 16 KiB block and never opens the VGA window")
{
    ShadowRig r;
    r.mem.set_shadow(0xC4000, 0x4000, true, true);
    r.mem.write(0xC4000, 1, 0x5A);
    r.mem.write(0xC0000, 1, 0x5A);
    r.mem.write(0xBFFFF, 1, 0x5A);
    CHECK(r.mem.read(0xC4000, 1) == 0x5A);
    CHECK(r.mem.read(0xC0000, 1) == 0xFF);
    CHECK(r.mem.read(0xBFFFF, 1) == 0xFF);
    CHECK_FALSE(r.mem.write_bytes(0xC3FFF, "ab", 2)); // half in a closed block
}

TEST_CASE("changing shadow RAM moves the layout generation and drops code decoded there")
{
    ShadowRig r;
    std::vector<GuestPhys> dropped;
    r.mem.set_code_write_listener([&](GuestPhys page) { dropped.push_back(page); });
    r.mem.mark_code(0xF0000);
    const u64 generation = r.mem.layout_generation();
    r.mem.set_shadow(0xF0000, 0x10000, true, true);
    CHECK(r.mem.layout_generation() != generation);
    CHECK(dropped == std::vector<GuestPhys>{0xF0000});
    const u64 again = r.mem.layout_generation();
    r.mem.set_shadow(0xF0000, 0x10000, true, true); // no change
    CHECK(r.mem.layout_generation() == again);
}

TEST_CASE("Accesses that reach an MMIO device are counted, RAM accesses are not")
{
    PhysicalMemory mem(RAM);
    RecordingDevice dev;
    mem.map_mmio(0xfee0'0000, 0x1000, &dev);
    mem.write(0x1000, 8, 1);
    (void)mem.read(0x1000, 8);
    CHECK(mem.mmio_accesses() == 0);
    mem.write(0xfee0'0080, 4, 0x10);
    (void)mem.read(0xfee0'0080, 4);
    (void)mem.read(0xfee0'0030, 4);
    CHECK(mem.mmio_accesses() == 3);
    CHECK(dev.reads.size() == 2);
}

TEST_CASE("a hardware backend sees the shadow granules, the ROMs and every layout change")
{
    ShadowRig r;
    unsigned changes = 0;
    r.mem.set_layout_listener([&] { ++changes; });
    CHECK_FALSE(r.mem.shadow_access(0xF0000).read_ram);
    CHECK_FALSE(r.mem.shadow_access(0xF0000).write_ram);
    r.mem.set_shadow(0xF0000, 0x4000, false, true);
    CHECK(changes == 1);
    CHECK_FALSE(r.mem.shadow_access(0xF0000).read_ram);
    CHECK(r.mem.shadow_access(0xF3FFF).write_ram);
    CHECK_FALSE(r.mem.shadow_access(0xF4000).write_ram); // the next granule kept its mode
    r.mem.set_shadow(0xF0000, 0x4000, false, true);
    CHECK(changes == 1); // no change, no call
    RecordingDevice device;
    CHECK(r.mem.try_map_mmio(0xFEE00000, 0x1000, &device));
    CHECK(changes == 2);
    CHECK(r.mem.has_mmio(0xFEE00FFF, 1));
    CHECK_FALSE(r.mem.has_mmio(0xFEE01000, 0x1000));
    r.mem.unmap_mmio(0xFEE00000, &device);
    CHECK(changes == 3);
    const std::vector<PhysicalMemory::RomImage> roms = r.mem.roms();
    REQUIRE(roms.size() == 1);
    CHECK(roms[0].base == 0xE0000);
    CHECK(roms[0].bytes.size() == 0x20000);
    CHECK(roms[0].bytes[0] == 0xAA);
}
