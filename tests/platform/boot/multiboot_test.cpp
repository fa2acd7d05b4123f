#include "platform/boot/multiboot.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr u64 RAM = 32ull << 20;

void put32(std::vector<u8>& b, size_t at, u32 v)
{
    if (b.size() < at + 4)
        b.resize(at + 4);
    for (unsigned i = 0; i < 4; ++i)
        b[at + i] = static_cast<u8>(v >> (8 * i));
}

void put16(std::vector<u8>& b, size_t at, u16 v)
{
    if (b.size() < at + 2)
        b.resize(at + 2);
    b[at] = static_cast<u8>(v);
    b[at + 1] = static_cast<u8>(v >> 8);
}

void put_header(std::vector<u8>& b, size_t at, u32 flags)
{
    put32(b, at, multiboot::HEADER_MAGIC);
    put32(b, at + 4, flags);
    put32(b, at + 8, 0u - multiboot::HEADER_MAGIC - flags);
}

struct ElfSegment {
    u32 offset, vaddr, paddr, filesz, memsz, flags;
};

// A minimal ELF32 i386 executable: header, program headers, then whatever
// the caller placed at the segments' file offsets.
std::vector<u8> make_elf(u32 entry, const std::vector<ElfSegment>& segments, size_t file_size)
{
    std::vector<u8> b(file_size, 0);
    const u8 ident[] = {0x7F, 'E', 'L', 'F', 1, 1, 1};
    std::memcpy(b.data(), ident, sizeof ident);
    put16(b, 16, 2); // ET_EXEC
    put16(b, 18, 3); // EM_386
    put32(b, 20, 1); // EV_CURRENT
    put32(b, 24, entry);
    put32(b, 28, 52); // e_phoff
    put16(b, 40, 52); // e_ehsize
    put16(b, 42, 32); // e_phentsize
    put16(b, 44, static_cast<u16>(segments.size()));
    for (size_t i = 0; i < segments.size(); ++i) {
        size_t ph = 52 + i * 32;
        const ElfSegment& s = segments[i];
        put32(b, ph, 1); // PT_LOAD
        put32(b, ph + 4, s.offset);
        put32(b, ph + 8, s.vaddr);
        put32(b, ph + 12, s.paddr);
        put32(b, ph + 16, s.filesz);
        put32(b, ph + 20, s.memsz);
        put32(b, ph + 24, s.flags);
        put32(b, ph + 28, 0x1000);
    }
    return b;
}

// A kernel with one code segment at 1 MiB (header first) and a bss tail.
std::vector<u8> simple_kernel()
{
    std::vector<u8> elf =
        make_elf(0x10000C, {{0x1000, 0x100000, 0x100000, 0x20, 0x3000, 5}}, 0x1020);
    put_header(elf, 0x1000, 0x3);
    elf[0x100C] = 0xF4; // hlt
    for (size_t i = 0x100D; i < 0x1020; ++i)
        elf[i] = 0xAA;
    return elf;
}

MultibootParams params(std::string append = "")
{
    MultibootParams p;
    p.kernel_name = "kernel.elf";
    p.append = std::move(append);
    return p;
}

std::string read_cstring(PhysicalMemory& mem, u64 addr)
{
    std::string s;
    for (u8 c; (c = static_cast<u8>(mem.read(addr, 1))) != 0; ++addr)
        s.push_back(static_cast<char>(c));
    return s;
}

u32 rd32(PhysicalMemory& mem, u64 addr)
{
    return static_cast<u32>(mem.read(addr, 4));
}

MultibootBoot load_ok(PhysicalMemory& mem, const std::vector<u8>& image, const MultibootParams& p,
                      std::span<const u8> module = {})
{
    ErrorOr<MultibootBoot> boot = load_multiboot_image(mem, image, p, module);
    if (boot.is_error())
        FAIL("load failed: " << boot.error().message);
    return boot.value();
}

std::string load_error(PhysicalMemory& mem, const std::vector<u8>& image)
{
    ErrorOr<MultibootBoot> boot = load_multiboot_image(mem, image, params());
    REQUIRE(boot.is_error());
    return boot.error().message;
}

} // namespace

TEST_CASE("multiboot loads ELF segments at p_paddr and zeroes their bss")
{
    PhysicalMemory mem(RAM);
    mem.write(0x101000, 4, 0xDEADBEEF); // must be cleared as bss
    MultibootBoot boot = load_ok(mem, simple_kernel(), params());
    CHECK(boot.entry == 0x10000C);
    CHECK(rd32(mem, 0x100000) == multiboot::HEADER_MAGIC);
    CHECK(mem.read(0x10000C, 1) == 0xF4);
    CHECK(mem.read(0x10001F, 1) == 0xAA);
    CHECK(rd32(mem, 0x101000) == 0);
    CHECK(boot.kernel_start == 0x100000);
    CHECK(boot.kernel_end == 0x103000);
}

TEST_CASE("multiboot info has QEMU's flags, memory sizes, command line and loader name")
{
    PhysicalMemory mem(RAM);
    MultibootBoot boot = load_ok(mem, simple_kernel(), params("console=ttyS0 x=1"));
    u32 mbi = boot.info_address;
    CHECK(mbi == 0x9500);
    CHECK(rd32(mem, mbi + 0) == 0x24F);
    CHECK(rd32(mem, mbi + 4) == 640);
    CHECK(rd32(mem, mbi + 8) == (RAM - 0x100000) / 1024);
    CHECK(rd32(mem, mbi + 12) == 0x8000FFFF);
    CHECK(read_cstring(mem, rd32(mem, mbi + 16)) == "kernel.elf console=ttyS0 x=1");
    CHECK(rd32(mem, mbi + 20) == 0);
    CHECK(read_cstring(mem, rd32(mem, mbi + 64)) == "viridian");
}

TEST_CASE("multiboot memory map lists low RAM, the legacy hole and RAM above 1 MiB")
{
    PhysicalMemory mem(RAM);
    MultibootBoot boot = load_ok(mem, simple_kernel(), params());
    u32 length = rd32(mem, boot.info_address + 44);
    u32 addr = rd32(mem, boot.info_address + 48);
    REQUIRE(length == 3 * 24);
    struct E {
        u64 base, len;
        u32 type;
    };
    const E expected[] = {{0, 0xA0000, 1}, {0xA0000, 0x60000, 2}, {0x100000, RAM - 0x100000, 1}};
    for (const E& e : expected) {
        CHECK(rd32(mem, addr) == 20);
        CHECK(mem.read(addr + 4, 8) == e.base);
        CHECK(mem.read(addr + 12, 8) == e.len);
        CHECK(rd32(mem, addr + 20) == e.type);
        addr += 24;
    }
}

TEST_CASE("multiboot memory map and mem_upper of an 8 GiB machine give RAM below the hole and from 4 GiB")
{
    constexpr u64 GIB = 1ull << 30;
    PhysicalMemory mem(8 * GIB);
    MultibootBoot boot = load_ok(mem, simple_kernel(), params());
    // mem_upper: from 1 MiB up to the first hole.
    CHECK(rd32(mem, boot.info_address + 8) == (3 * GIB - 0x100000) / 1024);
    u32 length = rd32(mem, boot.info_address + 44);
    u32 addr = rd32(mem, boot.info_address + 48);
    REQUIRE(length == 4 * 24);
    struct E {
        u64 base, len;
        u32 type;
    };
    const E expected[] = {{0, 0xA0000, 1},
                          {0xA0000, 0x60000, 2},
                          {0x100000, 3 * GIB - 0x100000, 1},
                          {4 * GIB, 5 * GIB, 1}};
    for (const E& e : expected) {
        CHECK(mem.read(addr + 4, 8) == e.base);
        CHECK(mem.read(addr + 12, 8) == e.len);
        CHECK(rd32(mem, addr + 20) == e.type);
        addr += 24;
    }
}

TEST_CASE("multiboot enters at the physical address when a code segment's vaddr differs")
{
    std::vector<u8> elf =
        make_elf(0xC010000C, {{0x1000, 0xC0100000, 0x100000, 0x20, 0x20, 5}}, 0x1020);
    put_header(elf, 0x1000, 0x3);
    PhysicalMemory mem(RAM);
    CHECK(load_ok(mem, elf, params()).entry == 0x10000C);
}

TEST_CASE("multiboot loads several segments and reports their whole extent")
{
    std::vector<u8> elf = make_elf(
        0x200000,
        {{0x1000, 0x200000, 0x200000, 0x10, 0x10, 5}, {0x2000, 0x300000, 0x300000, 0x8, 0x1000, 6}},
        0x2008);
    put_header(elf, 0x1000, 0x0);
    put32(elf, 0x2000, 0x11223344);
    PhysicalMemory mem(RAM);
    MultibootBoot boot = load_ok(mem, elf, params());
    CHECK(rd32(mem, 0x300000) == 0x11223344);
    CHECK(boot.kernel_start == 0x200000);
    CHECK(boot.kernel_end == 0x301000);
}

TEST_CASE("multiboot with flag 16 loads by the header's a.out-kludge addresses")
{
    // A flat binary: header at file offset 0x40, loaded so that file offset 0
    // lands at 0x200000; 0x100 bytes of file, bss to 0x202000.
    std::vector<u8> bin(0x100, 0x90);
    put_header(bin, 0x40, 0x10003);
    put32(bin, 0x4C, 0x200040); // header_addr
    put32(bin, 0x50, 0x200000); // load_addr
    put32(bin, 0x54, 0);        // load_end_addr: the whole file
    put32(bin, 0x58, 0x202000); // bss_end_addr
    put32(bin, 0x5C, 0x200080); // entry_addr
    PhysicalMemory mem(RAM);
    mem.write(0x201000, 4, 0xFFFFFFFF);
    MultibootBoot boot = load_ok(mem, bin, params());
    CHECK(boot.entry == 0x200080);
    CHECK(rd32(mem, 0x200040) == multiboot::HEADER_MAGIC);
    CHECK(mem.read(0x2000FF, 1) == 0x90);
    CHECK(rd32(mem, 0x201000) == 0);
    CHECK(boot.kernel_end == 0x202000);
}

TEST_CASE("multiboot rejects a file without a header in its first 8192 bytes")
{
    PhysicalMemory mem(RAM);
    CHECK(load_error(mem, std::vector<u8>(100, 0)).find("not a multiboot kernel") !=
          std::string::npos);
    std::vector<u8> late(9000, 0);
    put_header(late, 8192, 0);
    CHECK(load_error(mem, late).find("not a multiboot kernel") != std::string::npos);
}

TEST_CASE("multiboot rejects a header with a wrong checksum")
{
    std::vector<u8> elf = simple_kernel();
    put32(elf, 0x1008, 0);
    PhysicalMemory mem(RAM);
    CHECK_FALSE(is_multiboot_image(elf));
    CHECK(load_error(mem, elf).find("not a multiboot kernel") != std::string::npos);
}

TEST_CASE("multiboot rejects a 64-bit ELF kernel")
{
    std::vector<u8> elf = simple_kernel();
    elf[4] = 2;
    PhysicalMemory mem(RAM);
    CHECK(load_error(mem, elf).find("64-bit") != std::string::npos);
}

TEST_CASE("multiboot rejects a non-ELF file whose header lacks the address fields")
{
    std::vector<u8> bin(64, 0);
    put_header(bin, 0, 0x3);
    PhysicalMemory mem(RAM);
    CHECK(load_error(mem, bin).find("not ELF") != std::string::npos);
}

TEST_CASE("multiboot rejects program headers that point outside the file")
{
    std::vector<u8> elf = simple_kernel();
    put16(elf, 44, 200); // e_phnum far beyond the file
    PhysicalMemory mem(RAM);
    CHECK(load_error(mem, elf).find("malformed") != std::string::npos);

    std::vector<u8> elf2 = simple_kernel();
    put32(elf2, 52 + 16, 0x10000); // p_filesz beyond the end of the file
    put32(elf2, 52 + 20, 0x10000);
    CHECK(load_error(mem, elf2).find("malformed") != std::string::npos);
}

TEST_CASE("multiboot rejects a segment outside RAM or in the legacy hole")
{
    std::vector<u8> high =
        make_elf(0x4000000, {{0x1000, 0x4000000, 0x4000000, 0x10, 0x10, 5}}, 0x1010);
    put_header(high, 0x1000, 0);
    PhysicalMemory mem(RAM);
    CHECK(load_error(mem, high).find("outside RAM") != std::string::npos);

    std::vector<u8> hole = make_elf(0xB8000, {{0x1000, 0xB8000, 0xB8000, 0x10, 0x10, 5}}, 0x1010);
    put_header(hole, 0x1000, 0);
    CHECK(load_error(mem, hole).find("outside RAM") != std::string::npos);
}

TEST_CASE("multiboot places the module page-aligned after the kernel")
{
    MultibootParams p = params();
    p.module_spec = "initrd.img root=x";
    std::vector<u8> module(5000, 0x5C);
    PhysicalMemory mem(RAM);
    MultibootBoot boot = load_ok(mem, simple_kernel(), p, module);
    CHECK(boot.module_start == 0x103000);
    CHECK(boot.module_end == 0x103000 + 5000);
    u32 mbi = boot.info_address;
    CHECK(rd32(mem, mbi + 20) == 1);
    u32 mods = rd32(mem, mbi + 24);
    CHECK(rd32(mem, mods) == boot.module_start);
    CHECK(rd32(mem, mods + 4) == boot.module_end);
    CHECK(read_cstring(mem, rd32(mem, mods + 8)) == "initrd.img root=x");
    CHECK(mem.read(boot.module_start + 4999, 1) == 0x5C);
}

TEST_CASE("multiboot moves the info block when the kernel occupies 0x9000")
{
    std::vector<u8> elf = make_elf(0x8000, {{0x1000, 0x8000, 0x8000, 0x10, 0x2000, 5}}, 0x1010);
    put_header(elf, 0x1000, 0);
    PhysicalMemory mem(RAM);
    MultibootBoot boot = load_ok(mem, elf, params());
    CHECK(boot.info_address >= 0xA000);
    CHECK(boot.info_address < 0xA0000);
    CHECK(mem.read(0x8000, 4) == multiboot::HEADER_MAGIC);
}

TEST_CASE("multiboot reports a missing kernel file as an error")
{
    PhysicalMemory mem(RAM);
    ErrorOr<MultibootBoot> boot = load_multiboot(mem, "/nonexistent/kernel.elf", params());
    REQUIRE(boot.is_error());
    CHECK(boot.error().message.find("cannot open '/nonexistent/kernel.elf'") != std::string::npos);
}

TEST_CASE("multiboot entry state is flat 32-bit protected mode with the magic in EAX")
{
    PhysicalMemory mem(RAM);
    MultibootBoot boot = load_ok(mem, simple_kernel(), params());
    CpuState s;
    s.gpr[RDI] = 123;
    enter_multiboot(s, boot);
    CHECK(s.gpr[RAX] == 0x2BADB002);
    CHECK(s.gpr[RBX] == boot.info_address);
    CHECK(s.gpr[RDI] == 0);
    CHECK(s.rip == 0x10000C);
    CHECK(s.rflags == 0x2);
    CHECK(s.cr0 == 0x11);
    CHECK(s.msr.efer == 0);
    CHECK(s.protected_mode());
    CHECK_FALSE(s.long_mode_active());
    CHECK(s.seg[CS].selector == 0x08);
    CHECK(s.seg[CS].base == 0);
    CHECK(s.seg[CS].limit == 0xFFFFFFFF);
    CHECK((s.seg[CS].attr & Segment::DB) != 0);
    CHECK(s.seg[CS].type() == 0xB);
    for (unsigned seg : {ES, SS, DS, FS, GS}) {
        CHECK(s.seg[seg].selector == 0x10);
        CHECK(s.seg[seg].limit == 0xFFFFFFFF);
        CHECK(s.seg[seg].type() == 0x3);
    }
    // The GDT in memory holds the descriptors the selectors name.
    CHECK(s.gdtr.base == boot.gdt_address);
    CHECK(s.gdtr.limit == 0x27);
    CHECK(mem.read(s.gdtr.base + 8, 8) == 0x00CF9B000000FFFFull);
    CHECK(mem.read(s.gdtr.base + 16, 8) == 0x00CF93000000FFFFull);
}
