#include "platform/boot/linux_boot.h"

#include "mmu/base/byte_order.h"
#include "mmu/guest_memory.h"
#include "mmu/page_walker.h"
#include "platform/boot/multiboot.h" // read_whole_file

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace {

using namespace linux_boot;

// Setup header field offsets (boot.rst "The Real-Mode Kernel Header").
constexpr u64 HDR_SETUP_SECTS = 0x1F1, HDR_SYSSIZE = 0x1F4, HDR_VID_MODE = 0x1FA,
              HDR_BOOT_FLAG = 0x1FE, HDR_JUMP = 0x200, HDR_HEADER = 0x202, HDR_VERSION = 0x206,
              HDR_KERNEL_VERSION = 0x20E, HDR_TYPE_OF_LOADER = 0x210, HDR_LOADFLAGS = 0x211,
              HDR_CODE32_START = 0x214, HDR_RAMDISK_IMAGE = 0x218, HDR_RAMDISK_SIZE = 0x21C,
              HDR_CMD_LINE_PTR = 0x228, HDR_INITRD_ADDR_MAX = 0x22C, HDR_KERNEL_ALIGNMENT = 0x230,
              HDR_RELOCATABLE = 0x234, HDR_XLOADFLAGS = 0x236, HDR_CMDLINE_SIZE = 0x238,
              HDR_PREF_ADDRESS = 0x258, HDR_INIT_SIZE = 0x260;
// The header must reach at least init_size (protocol 2.10+) for this loader.
constexpr u64 HDR_MIN_END = HDR_INIT_SIZE + 4;
// boot_params has room for the header up to 0x290 (edd_mbr_sig_buffer).
constexpr u64 HDR_MAX_END = 0x290;

// boot_params fields outside the setup header (zero-page.rst).
constexpr u64 BP_ACPI_RSDP_ADDR = 0x070, BP_EXT_RAMDISK_IMAGE = 0x0C0, BP_EXT_RAMDISK_SIZE = 0x0C4,
              BP_EXT_CMD_LINE_PTR = 0x0C8, BP_ALT_MEM_K = 0x1E0, BP_E820_ENTRIES = 0x1E8,
              BP_E820_TABLE = 0x2D0, BOOT_PARAMS_SIZE = 0x1000;
constexpr u64 E820_ENTRY_SIZE = 20;

constexpr u16 VID_MODE_NORMAL = 0xFFFF;             // "vga=normal"
constexpr u32 DEFAULT_INITRD_ADDR_MAX = 0x37FFFFFF; // protocols before 2.03
constexpr u32 OLD_CMDLINE_SIZE = 255;               // protocols before 2.06

// Page-table entry bits (SDM Vol 3A 4.5).
constexpr u64 PTE_PRESENT = 1u << 0, PTE_WRITABLE = 1u << 1, PTE_LARGE = 1u << 7;
constexpr u64 PAGE_2M = 2ull << 20;

// Flat descriptors for the loader's GDT (SDM Vol 3A 3.4.5): base 0, limit
// 4 GiB, accessed, as loading them would leave them.
constexpr u64 CODE64_DESCRIPTOR = 0x00AF9B000000FFFFull; // L=1, execute/read
constexpr u64 DATA_DESCRIPTOR = 0x00CF93000000FFFFull;   // D/B=1, read/write
constexpr u64 LOADER_GDT[] = {0, 0, CODE64_DESCRIPTOR, DATA_DESCRIPTOR};
static_assert(BOOT_CS == 2 * 8 && BOOT_DS == 3 * 8);

std::string hex(u64 value)
{
    char buffer[24];
    std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(value));
    return buffer;
}

std::string mib(u64 bytes)
{
    return std::to_string((bytes + (1ull << 20) - 1) >> 20) + " MiB";
}

std::string protocol_text(u16 protocol)
{
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "%u.%02u", protocol >> 8, protocol & 0xFF);
    return buffer;
}

u64 align_up(u64 value, u64 alignment)
{
    return (value + alignment - 1) / alignment * alignment;
}

bool is_power_of_two(u64 value)
{
    return value != 0 && (value & (value - 1)) == 0;
}

// The NUL-terminated version string the header points at ("less 0x200",
// boot.rst "kernel_version"), if it lies inside the setup code.
std::string kernel_version_string(std::span<const u8> image, u64 setup_bytes)
{
    u16 pointer = load_le16(image, HDR_KERNEL_VERSION);
    if (pointer == 0)
        return {};
    u64 at = u64(pointer) + 0x200;
    u64 end = std::min<u64>(setup_bytes, image.size());
    std::string text;
    for (; at < end && image[at] != 0 && text.size() < 256; ++at)
        text += static_cast<char>(image[at]);
    return text;
}

// [start, end) ranges of RAM minus the ranges in `holes`.
struct Range {
    u64 start, end;
};

std::vector<Range> subtract(std::vector<Range> ram, const std::vector<Range>& holes)
{
    for (const Range& hole : holes) {
        std::vector<Range> next;
        for (const Range& r : ram) {
            if (hole.end <= r.start || hole.start >= r.end) {
                next.push_back(r);
                continue;
            }
            if (r.start < hole.start)
                next.push_back({r.start, hole.start});
            if (hole.end < r.end)
                next.push_back({hole.end, r.end});
        }
        ram = std::move(next);
    }
    return ram;
}

// The highest page-aligned place for `size` bytes inside one RAM entry of
// the map, at or above `lowest`, ending at or below `limit`.
std::optional<u64> place_high(const std::vector<E820Entry>& map, u64 size, u64 lowest, u64 limit)
{
    std::optional<u64> best;
    for (const E820Entry& e : map) {
        if (e.type != E820Type::Ram)
            continue;
        u64 end = std::min(e.address + e.size, limit);
        if (end < size)
            continue;
        u64 start = (end - size) & PAGE_MASK;
        if (start < e.address || start < lowest)
            continue;
        if (!best || start > *best)
            best = start;
    }
    return best;
}

// PML4 → one PDPT → four page directories of 2 MiB pages: the first 4 GiB,
// identity-mapped, writable, supervisor-only.
std::vector<u8> identity_page_tables(u64 base)
{
    constexpr u64 directories = IDENTITY_MAP_BYTES >> 30;
    std::vector<u8> tables((2 + directories) * PAGE_SIZE, 0);
    u64 pdpt = base + PAGE_SIZE;
    u64 first_pd = base + 2 * PAGE_SIZE;
    store_le64(tables, 0, pdpt | PTE_PRESENT | PTE_WRITABLE);
    for (u64 d = 0; d < directories; ++d) {
        store_le64(tables, PAGE_SIZE + d * 8,
                   (first_pd + d * PAGE_SIZE) | PTE_PRESENT | PTE_WRITABLE);
        for (u64 i = 0; i < 512; ++i) {
            u64 phys = (d << 30) + i * PAGE_2M;
            store_le64(tables, (2 + d) * PAGE_SIZE + i * 8,
                       phys | PTE_PRESENT | PTE_WRITABLE | PTE_LARGE);
        }
    }
    return tables;
}

ErrorOr<void> write(GuestMemory memory, u64 address, std::span<const u8> bytes,
                    const std::string& what)
{
    if (!memory.write(address, bytes))
        return make_error("cannot place " + what + " at " + hex(address) + "-" +
                          hex(address + bytes.size() - 1) + ": not RAM");
    return {};
}

} // namespace

bool is_linux_bzimage(std::span<const u8> image)
{
    return image.size() >= HDR_HEADER + 4 && load_le32(image, HDR_HEADER) == HDRS_MAGIC;
}

ErrorOr<LinuxSetupHeader> parse_linux_header(std::span<const u8> image, const std::string& name)
{
    if (!is_linux_bzimage(image) || load_le16(image, HDR_BOOT_FLAG) != BOOT_FLAG)
        return make_error(name + ": not a Linux bzImage (no \"HdrS\" boot header at 0x202)");

    LinuxSetupHeader h;
    h.protocol = load_le16(image, HDR_VERSION);
    h.header_end = static_cast<u32>(HDR_JUMP + 2 + image[HDR_JUMP + 1]);
    if (h.protocol < MIN_PROTOCOL)
        return make_error(name + ": Linux boot protocol " + protocol_text(h.protocol) +
                          " is too old; booting in 64-bit mode needs 2.12 (Linux 3.8 or later)");
    if (image.size() < HDR_MIN_END || h.header_end < HDR_MIN_END)
        return make_error(name + ": truncated Linux boot header");

    h.setup_sects = image[HDR_SETUP_SECTS] == 0 ? 4 : image[HDR_SETUP_SECTS];
    h.syssize = load_le32(image, HDR_SYSSIZE);
    h.loadflags = image[HDR_LOADFLAGS];
    h.initrd_addr_max = load_le32(image, HDR_INITRD_ADDR_MAX);
    h.kernel_alignment = load_le32(image, HDR_KERNEL_ALIGNMENT);
    h.relocatable = image[HDR_RELOCATABLE] != 0;
    h.xloadflags = load_le16(image, HDR_XLOADFLAGS);
    h.cmdline_size = load_le32(image, HDR_CMDLINE_SIZE);
    h.pref_address = load_le64(image, HDR_PREF_ADDRESS);
    h.init_size = load_le32(image, HDR_INIT_SIZE);
    if (h.initrd_addr_max == 0)
        h.initrd_addr_max = DEFAULT_INITRD_ADDR_MAX;
    if (h.cmdline_size == 0)
        h.cmdline_size = OLD_CMDLINE_SIZE;

    if (!(h.loadflags & LOADED_HIGH))
        return make_error(name +
                          ": a zImage (loaded low) kernel; only bzImage kernels are supported");
    if (!(h.xloadflags & XLF_KERNEL_64))
        return make_error(name + ": a 32-bit kernel (no 64-bit entry point: xloadflags lacks "
                                 "XLF_KERNEL_64); viridian boots x86-64 kernels only");
    if (h.relocatable && !is_power_of_two(h.kernel_alignment))
        return make_error(name + ": invalid kernel_alignment " + hex(h.kernel_alignment) +
                          " (not a power of two)");
    if (!h.relocatable && h.pref_address < KERNEL_LOAD_ADDRESS)
        return make_error(name + ": a non-relocatable kernel with pref_address " +
                          hex(h.pref_address) + " below 1 MiB");

    u64 protected_size = u64(h.syssize) * 16;
    if (protected_size == 0)
        return make_error(name + ": the boot header gives no protected-mode code (syssize 0)");
    if (image.size() < h.setup_bytes() + protected_size)
        return make_error(name + ": truncated: the boot header promises " +
                          std::to_string(h.setup_bytes() + protected_size) +
                          " bytes, the file has " + std::to_string(image.size()));
    h.kernel_version = kernel_version_string(image, h.setup_bytes());
    return h;
}

std::vector<E820Entry> linux_e820_map(u64 ram_size, const LinuxBootParams& params)
{
    // Reserved: the EBDA and the firmware area (what SeaBIOS reports), the
    // ACPI tables at the top of RAM, and whatever the caller adds. The VGA
    // window and option ROM area between them is not RAM and not listed.
    // RAM is where PhysicalMemory puts it: below the PCI hole and from 4 GiB.
    const pc_memory_map::RamLayout layout = pc_memory_map::ram_layout(ram_size);
    const u64 low_top = layout.below_4g;
    std::vector<E820Entry> reserved;
    reserved.push_back({EBDA_START, LOW_RAM_END - EBDA_START, E820Type::Reserved});
    reserved.push_back({FIRMWARE_START, HIGH_RAM_START - FIRMWARE_START, E820Type::Reserved});
    if (params.acpi_reserved_top > 0 && low_top > HIGH_RAM_START &&
        params.acpi_reserved_top < low_top - HIGH_RAM_START)
        reserved.push_back(
            {low_top - params.acpi_reserved_top, params.acpi_reserved_top, E820Type::Acpi});
    for (const E820Entry& e : params.extra_reserved)
        if (e.size > 0)
            reserved.push_back(e);

    std::vector<Range> holes;
    holes.push_back({LOW_RAM_END, HIGH_RAM_START}); // never RAM in PhysicalMemory
    for (const E820Entry& e : reserved)
        holes.push_back({e.address, e.address + e.size});
    std::vector<Range> ranges{{0, low_top}};
    if (layout.above_4g)
        ranges.push_back({pc_memory_map::RAM_ABOVE_4G_BASE, layout.above_4g_end()});
    std::vector<Range> ram = subtract(ranges, holes);

    std::vector<E820Entry> map = reserved;
    for (const Range& r : ram)
        map.push_back({r.start, r.end - r.start, E820Type::Ram});
    std::sort(map.begin(), map.end(),
              [](const E820Entry& a, const E820Entry& b) { return a.address < b.address; });
    return map;
}

ErrorOr<LinuxBootInfo> load_linux_image(PhysicalMemory& memory, std::span<const u8> kernel,
                                        const LinuxBootParams& params,
                                        std::optional<std::span<const u8>> initrd)
{
    const std::string& name = params.kernel_name;
    ErrorOr<LinuxSetupHeader> parsed = parse_linux_header(kernel, name);
    if (parsed.is_error())
        return parsed.error();
    LinuxBootInfo boot;
    boot.header = parsed.release_value();
    const LinuxSetupHeader& h = boot.header;
    u64 ram_size = memory.ram_size();
    std::string more_memory = " (the machine has " + mib(ram_size) + "; try a larger --memory)";

    // The protected-mode image: everything after the setup code (as QEMU
    // loads it; the file may have a few bytes past syssize), at 1 MiB.
    std::span<const u8> protected_mode = kernel.subspan(h.setup_bytes());
    boot.kernel_start = KERNEL_LOAD_ADDRESS;
    boot.kernel_end = boot.kernel_start + protected_mode.size();
    boot.entry = boot.kernel_start + STARTUP_64_OFFSET;

    // Where it decompresses itself and runs (boot.rst "init_size"; for a
    // relocatable kernel, head_64.S never runs below pref_address either).
    boot.runtime_start =
        h.relocatable ? std::max(align_up(boot.kernel_start, h.kernel_alignment), h.pref_address)
                      : h.pref_address;
    boot.runtime_end = boot.runtime_start + std::max<u64>(h.init_size, protected_mode.size());

    std::vector<E820Entry> map = linux_e820_map(ram_size, params);
    if (map.size() > E820_MAX_ENTRIES)
        return make_error(name + ": the memory map has " + std::to_string(map.size()) +
                          " entries; boot_params holds " + std::to_string(E820_MAX_ENTRIES));
    u64 ram_top = 0; // end of the highest RAM entry below 4 GiB, where the kernel runs
    for (const E820Entry& e : map)
        if (e.type == E820Type::Ram && e.address < pc_memory_map::RAM_ABOVE_4G_BASE)
            ram_top = std::max(ram_top, e.address + e.size);
    if (boot.kernel_end > ram_top || boot.runtime_end > ram_top)
        return make_error(name + ": the kernel needs RAM up to " + hex(boot.runtime_end) + " (" +
                          mib(boot.runtime_end) + ": it runs at " + hex(boot.runtime_start) +
                          " and needs init_size " + hex(h.init_size) + " bytes there)" +
                          more_memory);

    // The command line, low (boot.rst: not below the setup code, not high).
    if (params.cmdline.size() > h.cmdline_size)
        return make_error(name + ": the command line is " + std::to_string(params.cmdline.size()) +
                          " bytes; this kernel takes at most " + std::to_string(h.cmdline_size));
    boot.cmdline_address = CMDLINE_ADDRESS;
    std::vector<u8> cmdline(params.cmdline.begin(), params.cmdline.end());
    cmdline.push_back(0);
    if (boot.cmdline_address + cmdline.size() > EBDA_START)
        return make_error(name + ": the command line does not fit below the EBDA");

    // The initrd, as high as the kernel allows, above everything the kernel
    // occupies while it starts (QEMU places it the same way).
    if (initrd) {
        u64 size = initrd->size();
        // initrd_addr_max is inclusive; QEMU keeps below it even when
        // XLF_CAN_BE_LOADED_ABOVE_4G would allow more.
        u64 limit = u64(h.initrd_addr_max) + 1;
        u64 lowest = align_up(std::max(boot.kernel_end, boot.runtime_end), PAGE_SIZE);
        std::optional<u64> at = place_high(map, std::max<u64>(size, 1), lowest, limit);
        if (!at)
            return make_error(params.initrd_name + " (" + mib(size) +
                              ") does not fit in RAM between the kernel's end at " + hex(lowest) +
                              " and " + hex(std::min(limit, ram_top)) + more_memory);
        boot.initrd_address = *at;
        boot.initrd_size = size;
    }

    // boot_params: zeroed, then the kernel's own setup header, then the
    // fields a loader writes (boot.rst "64-bit Boot Protocol", zero-page.rst).
    std::vector<u8> bp(BOOT_PARAMS_SIZE, 0);
    u64 header_end = std::min<u64>({h.header_end, HDR_MAX_END, kernel.size()});
    std::memcpy(&bp[HDR_SETUP_SECTS], &kernel[HDR_SETUP_SECTS], header_end - HDR_SETUP_SECTS);
    store_le16(bp, HDR_VID_MODE, VID_MODE_NORMAL);
    bp[HDR_TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
    // No real-mode code runs, so no heap (CAN_USE_HEAP) and no QUIET_FLAG.
    bp[HDR_LOADFLAGS] = LOADED_HIGH;
    store_le32(bp, HDR_CODE32_START, static_cast<u32>(boot.kernel_start));
    store_le32(bp, HDR_CMD_LINE_PTR, static_cast<u32>(boot.cmdline_address));
    store_le32(bp, BP_EXT_CMD_LINE_PTR, static_cast<u32>(boot.cmdline_address >> 32));
    store_le32(bp, HDR_RAMDISK_IMAGE, static_cast<u32>(boot.initrd_address));
    store_le32(bp, BP_EXT_RAMDISK_IMAGE, static_cast<u32>(boot.initrd_address >> 32));
    store_le32(bp, HDR_RAMDISK_SIZE, static_cast<u32>(boot.initrd_size));
    store_le32(bp, BP_EXT_RAMDISK_SIZE, static_cast<u32>(boot.initrd_size >> 32));
    store_le64(bp, BP_ACPI_RSDP_ADDR, params.acpi_rsdp_address);
    // Extended memory in KiB above 1 MiB, for code that predates e820.
    store_le32(bp, BP_ALT_MEM_K,
               static_cast<u32>(std::min<u64>((ram_top - HIGH_RAM_START) >> 10, 0xFFFFFFFF)));
    bp[BP_E820_ENTRIES] = static_cast<u8>(map.size());
    for (size_t i = 0; i < map.size(); ++i) {
        u64 at = BP_E820_TABLE + i * E820_ENTRY_SIZE;
        store_le64(bp, at, map[i].address);
        store_le64(bp, at + 8, map[i].size);
        store_le32(bp, at + 16, static_cast<u32>(map[i].type));
    }

    std::vector<u8> gdt(sizeof LOADER_GDT);
    for (size_t i = 0; i < std::size(LOADER_GDT); ++i)
        store_le64(gdt, i * 8, LOADER_GDT[i]);

    boot.boot_params_address = BOOT_PARAMS_ADDRESS;
    boot.page_table_address = PML4_ADDRESS;
    boot.gdt_address = GDT_ADDRESS;
    boot.gdt_limit = static_cast<u16>(gdt.size() - 1);
    boot.stack_pointer = STACK_TOP;
    boot.e820 = map;

    // Everything is checked; now write it all.
    ErrorOr<void> written = write(memory, boot.kernel_start, protected_mode, name);
    if (!written.is_error() && initrd)
        written = write(memory, boot.initrd_address, *initrd, params.initrd_name);
    if (!written.is_error())
        written = write(memory, boot.cmdline_address, cmdline, "the command line");
    if (!written.is_error())
        written = write(memory, boot.boot_params_address, bp, "boot_params");
    if (!written.is_error())
        written = write(memory, boot.gdt_address, gdt, "the GDT");
    if (!written.is_error())
        written = write(memory, boot.page_table_address,
                        identity_page_tables(boot.page_table_address), "the page tables");
    if (written.is_error())
        return make_error(name + ": " + written.error().message);
    return boot;
}

ErrorOr<LinuxBootInfo> load_linux(PhysicalMemory& memory, const std::string& kernel_path,
                                  const std::optional<std::string>& initrd_path,
                                  LinuxBootParams params)
{
    ErrorOr<std::vector<u8>> kernel = read_whole_file(kernel_path);
    if (kernel.is_error())
        return make_error("kernel: " + kernel.error().message);
    std::optional<std::vector<u8>> initrd;
    if (initrd_path) {
        ErrorOr<std::vector<u8>> bytes = read_whole_file(*initrd_path);
        if (bytes.is_error())
            return make_error("initrd: " + bytes.error().message);
        initrd = bytes.release_value();
        params.initrd_name = "initrd '" + *initrd_path + "'";
    }
    std::optional<std::span<const u8>> initrd_span;
    if (initrd)
        initrd_span = std::span<const u8>(*initrd);
    return load_linux_image(memory, kernel.value(), params, initrd_span);
}

void enter_linux64(CpuState& state, const LinuxBootInfo& boot)
{
    state.gpr = {};
    state.gpr[RSI] = boot.boot_params_address;
    state.gpr[RSP] = boot.stack_pointer;
    state.rip = boot.entry;
    state.rflags = rf::FIXED1; // interrupts off

    constexpr u32 flat = Segment::S | Segment::P | Segment::G;
    for (unsigned i = 0; i < SEG_COUNT; ++i) {
        Segment& seg = state.seg[i];
        bool code = i == CS;
        seg.selector = code ? BOOT_CS : BOOT_DS;
        seg.base = 0;
        seg.limit = 0xFFFFFFFF;
        // The attributes of CODE64_DESCRIPTOR and DATA_DESCRIPTOR.
        seg.attr = code ? flat | Segment::L | 0xB : flat | Segment::DB | 0x3;
    }
    state.ldtr = Segment{0, 0, 0xFFFF, 0x2 | Segment::P};
    state.tr = Segment{0, 0, 0xFFFF, 0xB | Segment::P}; // busy TSS, as after reset
    state.gdtr = DescriptorTable{boot.gdt_address, boot.gdt_limit};
    // No IDT: any exception before the kernel loads its own is a triple
    // fault, which viridian reports with the state.
    state.idtr = DescriptorTable{0, 0};

    state.cr0 = cr::CR0_PE | cr::CR0_ET | cr::CR0_PG;
    state.cr2 = 0;
    state.cr3 = boot.page_table_address;
    state.cr4 = cr::CR4_PAE;
    state.msr.efer = cr::EFER_LME | cr::EFER_LMA;
    state.events = PendingEvents{};
}
