#include "platform/boot/linux_boot.h"

#include "cpu/core/cpu.h"
#include "mmu/page_walker.h"
#include "platform/boot/multiboot.h" // read_whole_file

#include "mmu/base/byte_order.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr u64 RAM = 64ull << 20;

// The fields a fake bzImage is made from; the defaults are those of
// Debian's 6.1 kernel, with a smaller init_size.
struct FakeKernel {
    u8 setup_sects = 4;
    u16 protocol = 0x020F;
    u8 loadflags = 0x01;
    u16 xloadflags = 0x7F;
    u32 initrd_addr_max = 0x7FFFFFFF;
    u32 kernel_alignment = 0x200000;
    u8 relocatable = 1;
    u32 cmdline_size = 0x7FF;
    u64 pref_address = 0x1000000;
    u32 init_size = 0x800000;
    u32 protected_size = 0x3000; // bytes after the setup code
    u8 jump_offset = 0x6A;       // header ends at 0x202 + 0x6A = 0x26C
    std::vector<u8> startup_64;  // code at 0x200 into the protected-mode part

    std::vector<u8> build() const
    {
        u64 setup = (u64(setup_sects == 0 ? 4 : setup_sects) + 1) * 512;
        std::vector<u8> b(setup + protected_size, 0);
        b[0x1F1] = setup_sects;
        store_le(b, 0x1F4, protected_size / 16, 4);
        store_le(b, 0x1FE, 0xAA55, 2);
        b[0x200] = 0xEB;
        b[0x201] = jump_offset;
        store_le(b, 0x202, 0x53726448, 4); // "HdrS"
        store_le(b, 0x206, protocol, 2);
        store_le(b, 0x20E, 0x600 - 0x200, 2); // kernel_version string at 0x600
        std::memcpy(&b[0x600], "6.1.0-fake (test) #1", 21);
        b[0x211] = loadflags;
        store_le(b, 0x214, 0x100000, 4);
        store_le(b, 0x22C, initrd_addr_max, 4);
        store_le(b, 0x230, kernel_alignment, 4);
        b[0x234] = relocatable;
        b[0x235] = 21;
        store_le(b, 0x236, xloadflags, 2);
        store_le(b, 0x238, cmdline_size, 4);
        store_le(b, 0x258, pref_address, 8);
        store_le(b, 0x260, init_size, 4);
        // Recognizable protected-mode bytes, then the entry code.
        for (u64 i = setup; i < b.size(); ++i)
            b[i] = static_cast<u8>(i * 7 + 3);
        std::copy(startup_64.begin(), startup_64.end(), b.begin() + setup + 0x200);
        return b;
    }
};

std::vector<u8> read_memory(PhysicalMemory& memory, u64 address, u64 size)
{
    std::vector<u8> bytes(size);
    REQUIRE(memory.read_bytes(address, bytes.data(), size));
    return bytes;
}

LinuxBootInfo load_ok(PhysicalMemory& memory, const std::vector<u8>& image,
                      const LinuxBootParams& params = {},
                      std::optional<std::span<const u8>> initrd = std::nullopt)
{
    ErrorOr<LinuxBootInfo> boot = load_linux_image(memory, image, params, initrd);
    if (boot.is_error())
        FAIL(boot.error().message);
    return boot.release_value();
}

std::string load_error(const std::vector<u8>& image, const LinuxBootParams& params = {},
                       std::optional<std::span<const u8>> initrd = std::nullopt, u64 ram = RAM)
{
    PhysicalMemory memory(ram);
    ErrorOr<LinuxBootInfo> boot = load_linux_image(memory, image, params, initrd);
    REQUIRE(boot.is_error());
    return boot.error().message;
}

bool contains(const std::string& text, const std::string& part)
{
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("a bzImage is recognized by its HdrS header")
{
    CHECK(is_linux_bzimage(FakeKernel{}.build()));
    std::vector<u8> not_linux(4096, 0);
    CHECK_FALSE(is_linux_bzimage(not_linux));
    CHECK_FALSE(is_linux_bzimage(std::vector<u8>(100, 0)));
}

TEST_CASE("the setup header's fields are read")
{
    ErrorOr<LinuxSetupHeader> parsed = parse_linux_header(FakeKernel{}.build(), "k");
    REQUIRE_FALSE(parsed.is_error());
    const LinuxSetupHeader& h = parsed.value();
    CHECK(h.protocol == 0x020F);
    CHECK(h.setup_sects == 4);
    CHECK(h.setup_bytes() == 5 * 512);
    CHECK(h.syssize == 0x300);
    CHECK(h.initrd_addr_max == 0x7FFFFFFF);
    CHECK(h.kernel_alignment == 0x200000);
    CHECK(h.relocatable);
    CHECK(h.xloadflags == 0x7F);
    CHECK(h.cmdline_size == 0x7FF);
    CHECK(h.pref_address == 0x1000000);
    CHECK(h.init_size == 0x800000);
    CHECK(h.header_end == 0x26C);
    CHECK(h.kernel_version == "6.1.0-fake (test) #1");
}

TEST_CASE("setup_sects 0 means 4 sectors of setup code")
{
    FakeKernel fake;
    fake.setup_sects = 0;
    ErrorOr<LinuxSetupHeader> parsed = parse_linux_header(fake.build(), "k");
    REQUIRE_FALSE(parsed.is_error());
    CHECK(parsed.value().setup_sects == 4);
}

TEST_CASE("the protected-mode kernel is loaded at 1 MiB and entered at startup_64")
{
    PhysicalMemory memory(RAM);
    std::vector<u8> image = FakeKernel{}.build();
    LinuxBootInfo boot = load_ok(memory, image);
    u64 setup = 5 * 512;
    CHECK(boot.kernel_start == 0x100000);
    CHECK(boot.kernel_end == 0x100000 + image.size() - setup);
    CHECK(boot.entry == 0x100200);
    CHECK(read_memory(memory, 0x100000, image.size() - setup) ==
          std::vector<u8>(image.begin() + setup, image.end()));
    // A relocatable kernel runs at its kernel_alignment, never below pref_address.
    CHECK(boot.runtime_start == 0x1000000);
    CHECK(boot.runtime_end == 0x1800000);
}

TEST_CASE("a non-relocatable kernel runs at pref_address")
{
    FakeKernel fake;
    fake.relocatable = 0;
    fake.pref_address = 0x2000000;
    PhysicalMemory memory(RAM);
    LinuxBootInfo boot = load_ok(memory, fake.build());
    CHECK(boot.kernel_start == 0x100000);
    CHECK(boot.runtime_start == 0x2000000);
    CHECK(boot.runtime_end == 0x2800000);
}

TEST_CASE("boot_params holds the kernel's setup header with the loader's fields")
{
    PhysicalMemory memory(RAM);
    std::vector<u8> image = FakeKernel{}.build();
    std::vector<u8> initrd(10000, 0x5A);
    LinuxBootParams params;
    params.cmdline = "console=ttyS0";
    params.acpi_rsdp_address = 0xF0000;
    LinuxBootInfo boot = load_ok(memory, image, params, std::span<const u8>(initrd));
    CHECK(boot.boot_params_address == 0x7000);
    std::vector<u8> bp = read_memory(memory, 0x7000, 4096);

    // Untouched header bytes are the kernel's own, up to the header's end.
    for (size_t at :
         {0x1F1, 0x1F4, 0x202, 0x206, 0x20E, 0x22C, 0x230, 0x234, 0x236, 0x238, 0x258, 0x260})
        CHECK(bp[at] == image[at]);
    CHECK(load_le(bp, 0x26C, 4) == 0); // nothing copied past the header's end

    CHECK(bp[0x210] == 0xFF);             // type_of_loader: undefined
    CHECK(bp[0x211] == 0x01);             // loadflags: LOADED_HIGH only
    CHECK(load_le(bp, 0x1FA, 2) == 0xFFFF);   // vid_mode: normal
    CHECK(load_le(bp, 0x214, 4) == 0x100000); // code32_start
    CHECK(load_le(bp, 0x228, 4) == 0x20000);  // cmd_line_ptr
    CHECK(load_le(bp, 0x0C8, 4) == 0);        // ext_cmd_line_ptr
    CHECK(load_le(bp, 0x218, 4) == boot.initrd_address);
    CHECK(load_le(bp, 0x21C, 4) == 10000);
    CHECK(load_le(bp, 0x0C0, 4) == 0);                      // ext_ramdisk_image
    CHECK(load_le(bp, 0x0C4, 4) == 0);                      // ext_ramdisk_size
    CHECK(load_le(bp, 0x070, 8) == 0xF0000);                // acpi_rsdp_addr
    CHECK(load_le(bp, 0x1E0, 4) == (RAM - 0x100000) >> 10); // alt_mem_k
    CHECK(bp[0x1EF] == 0);                              // sentinel: a clean page
    CHECK(load_le(bp, 0x250, 8) == 0);                      // setup_data: none
}

TEST_CASE("boot_params carries the e820 map")
{
    PhysicalMemory memory(RAM);
    LinuxBootInfo boot = load_ok(memory, FakeKernel{}.build());
    std::vector<u8> bp = read_memory(memory, 0x7000, 4096);
    REQUIRE(bp[0x1E8] == boot.e820.size());
    for (size_t i = 0; i < boot.e820.size(); ++i) {
        size_t at = 0x2D0 + i * 20;
        CHECK(load_le(bp, at, 8) == boot.e820[i].address);
        CHECK(load_le(bp, at + 8, 8) == boot.e820[i].size);
        CHECK(load_le(bp, at + 16, 4) == static_cast<u32>(boot.e820[i].type));
    }
}

TEST_CASE("the e820 map has low RAM, the EBDA, the firmware area and RAM above 1 MiB")
{
    std::vector<E820Entry> map = linux_e820_map(RAM, {});
    std::vector<E820Entry> expected = {
        {0, 0x9FC00, E820Type::Ram},
        {0x9FC00, 0x400, E820Type::Reserved},
        {0xE0000, 0x20000, E820Type::Reserved},
        {0x100000, RAM - 0x100000, E820Type::Ram},
    };
    CHECK(map == expected);
}

TEST_CASE("the e820 map reports ACPI tables at the top of RAM and extra reserved ranges")
{
    LinuxBootParams params;
    params.acpi_reserved_top = 0x20000;
    params.extra_reserved.push_back({0x2000000, 0x100000, E820Type::Reserved});
    params.extra_reserved.push_back({0xE0000000, 0x10000000, E820Type::Reserved});
    std::vector<E820Entry> map = linux_e820_map(RAM, params);
    std::vector<E820Entry> expected = {
        {0, 0x9FC00, E820Type::Ram},
        {0x9FC00, 0x400, E820Type::Reserved},
        {0xE0000, 0x20000, E820Type::Reserved},
        {0x100000, 0x1F00000, E820Type::Ram},
        {0x2000000, 0x100000, E820Type::Reserved},
        {0x2100000, RAM - 0x20000 - 0x2100000, E820Type::Ram},
        {RAM - 0x20000, 0x20000, E820Type::Acpi},
        {0xE0000000, 0x10000000, E820Type::Reserved},
    };
    CHECK(map == expected);
}

TEST_CASE("the e820 map splits RAM around the PCI hole as QEMU's pc machine does")
{
    constexpr u64 MIB = 1ull << 20, GIB = 1ull << 30, FOUR_GIB = 4 * GIB;
    LinuxBootParams params;
    params.acpi_reserved_top = 0x10000; // what the board reserves for its tables
    const auto map_for = [&](u64 ram) { return linux_e820_map(ram, params); };
    const auto low = [](u64 below_4g) {
        return std::vector<E820Entry>{
            {0, 0x9FC00, E820Type::Ram},
            {0x9FC00, 0x400, E820Type::Reserved},
            {0xE0000, 0x20000, E820Type::Reserved},
            {0x100000, below_4g - 0x10000 - 0x100000, E820Type::Ram},
            {below_4g - 0x10000, 0x10000, E820Type::Acpi},
        };
    };
    const auto with_high = [](std::vector<E820Entry> map, u64 above_4g) {
        map.push_back({FOUR_GIB, above_4g, E820Type::Ram});
        return map;
    };
    CHECK(map_for(512 * MIB) == low(512 * MIB));
    // Just below QEMU's max-ram-below-4g (3.5 GiB): still all low.
    CHECK(map_for(3 * GIB + 511 * MIB) == low(3 * GIB + 511 * MIB));
    // From 3.5 GiB on, 3 GiB stay low and the rest moves above 4 GiB.
    CHECK(map_for(3 * GIB + 512 * MIB) == with_high(low(3 * GIB), 512 * MIB));
    CHECK(map_for(4 * GIB) == with_high(low(3 * GIB), 1 * GIB));
    CHECK(map_for(8 * GIB) == with_high(low(3 * GIB), 5 * GIB));
    CHECK(map_for(64 * GIB) == with_high(low(3 * GIB), 61 * GIB));
}

TEST_CASE("an 8 GiB machine's boot_params carry RAM above 4 GiB and the kernel stays low")
{
    PhysicalMemory memory(8ull << 30);
    LinuxBootParams params;
    params.acpi_reserved_top = 0x10000;
    LinuxBootInfo boot = load_ok(memory, FakeKernel{}.build(), params);
    REQUIRE(!boot.e820.empty());
    CHECK(boot.e820.back() == E820Entry{4ull << 30, 5ull << 30, E820Type::Ram});
    CHECK(boot.runtime_end < 3ull << 30);
    std::vector<u8> bp = read_memory(memory, 0x7000, 4096);
    const size_t last = 0x2D0 + (boot.e820.size() - 1) * 20;
    CHECK(load_le(bp, last, 8) == 4ull << 30);
    CHECK(load_le(bp, last + 8, 8) == 5ull << 30);
}

TEST_CASE("the command line is placed low and NUL-terminated")
{
    PhysicalMemory memory(RAM);
    LinuxBootParams params;
    params.cmdline = "console=ttyS0 viridian.run=\"cat /proc/cpuinfo\"";
    LinuxBootInfo boot = load_ok(memory, FakeKernel{}.build(), params);
    CHECK(boot.cmdline_address == 0x20000);
    std::vector<u8> text = read_memory(memory, 0x20000, params.cmdline.size() + 1);
    CHECK(std::string(text.begin(), text.end() - 1) == params.cmdline);
    CHECK(text.back() == 0);
}

TEST_CASE("the initrd goes to the top of RAM, page-aligned")
{
    PhysicalMemory memory(RAM);
    std::vector<u8> initrd(10000);
    for (size_t i = 0; i < initrd.size(); ++i)
        initrd[i] = static_cast<u8>(i * 13);
    LinuxBootInfo boot = load_ok(memory, FakeKernel{}.build(), {}, std::span<const u8>(initrd));
    CHECK(boot.initrd_address == ((RAM - 10000) & ~0xFFFull));
    CHECK(boot.initrd_size == 10000);
    CHECK(read_memory(memory, boot.initrd_address, initrd.size()) == initrd);
}

TEST_CASE("the initrd stays below initrd_addr_max and below ACPI tables at the top")
{
    FakeKernel fake;
    fake.initrd_addr_max = 0x1FFFFFF; // 32 MiB - 1
    PhysicalMemory memory(RAM);
    std::vector<u8> initrd(0x1800);
    LinuxBootInfo boot = load_ok(memory, fake.build(), {}, std::span<const u8>(initrd));
    CHECK(boot.initrd_address == 0x2000000 - 0x2000);

    PhysicalMemory memory2(RAM);
    LinuxBootParams params;
    params.acpi_reserved_top = 0x10000;
    LinuxBootInfo boot2 =
        load_ok(memory2, FakeKernel{}.build(), params, std::span<const u8>(initrd));
    CHECK(boot2.initrd_address == RAM - 0x10000 - 0x2000);
}

TEST_CASE("an empty initrd is still passed to the kernel")
{
    PhysicalMemory memory(RAM);
    std::vector<u8> initrd;
    LinuxBootInfo boot = load_ok(memory, FakeKernel{}.build(), {}, std::span<const u8>(initrd));
    CHECK(boot.initrd_address != 0);
    CHECK(boot.initrd_size == 0);
}

TEST_CASE("the page tables identity-map the first 4 GiB with 2 MiB pages")
{
    PhysicalMemory memory(RAM);
    LinuxBootInfo boot = load_ok(memory, FakeKernel{}.build());
    CpuState state;
    enter_linux64(state, boot);
    PagingRegs regs{state.cr0, state.cr3, state.cr4, state.msr.efer};
    for (u64 address : {0x0ull, 0x7000ull, 0x100200ull, 0x1234567ull, 0x3FFFFFFFull, 0x80000000ull,
                        0xFEE00000ull, 0xFFFFF000ull}) {
        Translation t;
        std::optional<Fault> fault =
            walk_page_tables(memory, regs, WalkRequest{address, Access::Execute, false, false}, t);
        CAPTURE(address);
        REQUIRE_FALSE(fault.has_value());
        CHECK(t.phys == address);
        CHECK(t.page_size == (2ull << 20));
        CHECK(t.writable);
    }
    Translation t;
    CHECK(walk_page_tables(memory, regs, WalkRequest{4ull << 30, Access::Read, false, false}, t)
              .has_value());
}

TEST_CASE("enter_linux64 leaves 64-bit mode with __BOOT_CS, __BOOT_DS and RSI = boot_params")
{
    PhysicalMemory memory(RAM);
    LinuxBootInfo boot = load_ok(memory, FakeKernel{}.build());
    CpuState state;
    state.gpr[RAX] = 0x1234;
    state.rflags |= rf::IF;
    enter_linux64(state, boot);
    CHECK(state.rip == 0x100200);
    CHECK(state.gpr[RSI] == 0x7000);
    CHECK(state.gpr[RAX] == 0);
    CHECK(state.gpr[RBP] == 0);
    CHECK((state.rflags & rf::IF) == 0);
    CHECK(state.long_mode_active());
    CHECK(state.in_64bit_code());
    CHECK((state.cr0 & (cr::CR0_PE | cr::CR0_PG)) == (cr::CR0_PE | cr::CR0_PG));
    CHECK((state.cr4 & cr::CR4_PAE) != 0);
    CHECK((state.msr.efer & (cr::EFER_LME | cr::EFER_LMA)) == (cr::EFER_LME | cr::EFER_LMA));
    CHECK(state.cr3 == boot.page_table_address);
    CHECK(state.seg[CS].selector == 0x10);
    for (unsigned s : {DS, ES, SS, FS, GS})
        CHECK(state.seg[s].selector == 0x18);
}

TEST_CASE("the loaded segment state matches the GDT the loader left in memory")
{
    PhysicalMemory memory(RAM);
    LinuxBootInfo boot = load_ok(memory, FakeKernel{}.build());
    CpuState state;
    enter_linux64(state, boot);
    CHECK(state.gdtr.base == boot.gdt_address);
    CHECK(state.gdtr.limit == 0x1F);

    PortBus ports;
    MsrBus msrs;
    CpuidModel cpuid(1);
    CpuState scratch;
    Cpu cpu(scratch, memory, ports, msrs, cpuid);
    std::vector<u8> gdt = read_memory(memory, boot.gdt_address, 32);
    Segment code, data;
    cpu.set_segment_from_descriptor(code, 0x10, load_le(gdt, 0x10, 8));
    cpu.set_segment_from_descriptor(data, 0x18, load_le(gdt, 0x18, 8));
    CHECK(state.seg[CS].attr == code.attr);
    CHECK(state.seg[CS].limit == code.limit);
    CHECK(state.seg[SS].attr == data.attr);
    CHECK(state.seg[DS].limit == data.limit);
}

TEST_CASE("a fake kernel's startup_64 runs in 64-bit mode and reads boot_params through RSI")
{
    FakeKernel fake;
    fake.startup_64 = {
        0x8B, 0x86, 0x28, 0x02, 0x00, 0x00,       // mov eax, [rsi+0x228]  (cmd_line_ptr)
        0x48, 0x8B, 0x9E, 0xE4, 0x02, 0x00, 0x00, // mov rbx, [rsi+0x2E4]  (e820[1].addr)
        0x50, 0x5A,                               // push rax; pop rdx     (the stack works)
        0x4C, 0x8D, 0x05, 0x00, 0x00, 0x00, 0x00, // lea r8, [rip]         (64-bit only)
        0xF4,                                     // hlt
    };
    PhysicalMemory memory(RAM);
    LinuxBootInfo boot = load_ok(memory, fake.build());
    PortBus ports;
    MsrBus msrs;
    CpuidModel cpuid(1);
    CpuState state;
    Cpu cpu(state, memory, ports, msrs, cpuid);
    cpu.reset();
    enter_linux64(state, boot);
    CHECK(cpu.run(100) == RunExit::Halted);
    CHECK(state.gpr[RAX] == 0x20000);
    CHECK(state.gpr[RBX] == 0x9FC00);
    CHECK(state.gpr[RDX] == 0x20000);
    CHECK(state.gpr[R8] == 0x100200 + 22);
}

TEST_CASE("a file without a Linux boot header is rejected")
{
    std::vector<u8> image(8192, 0);
    CHECK(contains(load_error(image), "not a Linux bzImage"));
    std::vector<u8> no_boot_flag = FakeKernel{}.build();
    store_le(no_boot_flag, 0x1FE, 0, 2);
    CHECK(contains(load_error(no_boot_flag), "not a Linux bzImage"));
}

TEST_CASE("a boot protocol older than 2.12 is rejected")
{
    FakeKernel fake;
    fake.protocol = 0x020A;
    std::string message = load_error(fake.build());
    CHECK(contains(message, "protocol 2.10 is too old"));
    CHECK(contains(message, "2.12"));
}

TEST_CASE("a zImage is rejected")
{
    FakeKernel fake;
    fake.loadflags = 0;
    CHECK(contains(load_error(fake.build()), "zImage"));
}

TEST_CASE("a kernel without the 64-bit entry point is rejected")
{
    FakeKernel fake;
    fake.xloadflags = 0;
    CHECK(contains(load_error(fake.build()), "32-bit kernel"));
}

TEST_CASE("a truncated kernel is rejected")
{
    std::vector<u8> image = FakeKernel{}.build();
    image.resize(image.size() - 100);
    CHECK(contains(load_error(image), "truncated"));
    std::vector<u8> header_only(image.begin(), image.begin() + 0x240);
    CHECK(contains(load_error(header_only), "truncated"));
}

TEST_CASE("a relocatable kernel with a bad alignment is rejected")
{
    FakeKernel fake;
    fake.kernel_alignment = 0x180000;
    CHECK(contains(load_error(fake.build()), "kernel_alignment"));
}

TEST_CASE("a kernel that does not fit in RAM names the memory it needs")
{
    FakeKernel fake;
    fake.init_size = 0x4000000; // 64 MiB from 16 MiB
    std::string message = load_error(fake.build());
    CHECK(contains(message, "80 MiB"));
    CHECK(contains(message, "--memory"));
}

TEST_CASE("an initrd that does not fit in RAM is rejected")
{
    std::vector<u8> initrd(48ull << 20);
    LinuxBootParams params;
    params.initrd_name = "initrd 'big.img'";
    std::string message = load_error(FakeKernel{}.build(), params, std::span<const u8>(initrd));
    CHECK(contains(message, "initrd 'big.img'"));
    CHECK(contains(message, "does not fit"));
}

TEST_CASE("a command line longer than cmdline_size is rejected")
{
    FakeKernel fake;
    fake.cmdline_size = 16;
    LinuxBootParams params;
    params.cmdline = std::string(17, 'x');
    CHECK(contains(load_error(fake.build(), params), "at most 16"));
    params.cmdline = std::string(16, 'x');
    PhysicalMemory memory(RAM);
    load_ok(memory, fake.build(), params);
}

TEST_CASE("missing kernel and initrd files are reported by name")
{
    PhysicalMemory memory(RAM);
    ErrorOr<LinuxBootInfo> boot = load_linux(memory, "/nonexistent/vmlinuz", std::nullopt, {});
    REQUIRE(boot.is_error());
    CHECK(contains(boot.error().message, "/nonexistent/vmlinuz"));
}

// Run by tests/platform/debian_kernel_test.sh with the kernel that
// scripts/fetch-guest.sh fetched; skipped in the plain unit-test run.
TEST_CASE("the Debian kernel's header is accepted and it loads into 512 MiB" *
          doctest::skip(std::getenv("VIRIDIAN_GUEST_KERNEL") == nullptr))
{
    const char* path = std::getenv("VIRIDIAN_GUEST_KERNEL");
    REQUIRE(path != nullptr);
    ErrorOr<std::vector<u8>> image = read_whole_file(path);
    REQUIRE_FALSE(image.is_error());
    ErrorOr<LinuxSetupHeader> parsed = parse_linux_header(image.value(), path);
    if (parsed.is_error())
        FAIL(parsed.error().message);
    const LinuxSetupHeader& h = parsed.value();
    std::string summary = "protocol " + std::to_string(h.protocol >> 8) + "." +
                          std::to_string(h.protocol & 0xFF) + ", init_size " +
                          std::to_string(h.init_size) + ", " + h.kernel_version;
    MESSAGE(summary);
    CHECK(h.protocol >= 0x020C);
    CHECK(h.relocatable);
    CHECK((h.xloadflags & linux_boot::XLF_KERNEL_64) != 0);
    CHECK(contains(h.kernel_version, "amd64"));

    PhysicalMemory memory(512ull << 20);
    std::vector<u8> initrd(4ull << 20, 0);
    LinuxBootParams params;
    params.cmdline = "console=ttyS0";
    LinuxBootInfo boot = load_ok(memory, image.value(), params, std::span<const u8>(initrd));
    CHECK(boot.entry == 0x100200);
    CHECK(boot.runtime_start == h.pref_address);
    CHECK(boot.initrd_address >= boot.runtime_end);
    // startup_64 starts with CLD; CLI (FC FA) in every x86-64 kernel since 2.6.
    std::vector<u8> entry = read_memory(memory, boot.entry, 2);
    CHECK(entry == std::vector<u8>{0xFC, 0xFA});

    PhysicalMemory small(64ull << 20);
    ErrorOr<LinuxBootInfo> too_small = load_linux_image(small, image.value(), params);
    REQUIRE(too_small.is_error());
    CHECK(contains(too_small.error().message, "--memory"));
}
