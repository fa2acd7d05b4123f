#include "platform/boot/multiboot.h"

#include "mmu/base/byte_order.h"
#include "mmu/guest_memory.h"
#include "mmu/page_walker.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using namespace multiboot;

std::string hex(u64 value)
{
    char buffer[24];
    std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(value));
    return buffer;
}

u64 page_align_up(u64 value)
{
    return (value + PAGE_SIZE - 1) & PAGE_MASK;
}

// The multiboot header (spec 3.1.1): magic, flags, checksum, then the
// a.out-kludge address fields that are valid when flag 16 is set.
struct Header {
    u32 offset = 0; // in the file
    u32 flags = 0;
    u32 header_addr = 0, load_addr = 0, load_end_addr = 0, bss_end_addr = 0, entry_addr = 0;
};

std::optional<Header> find_header(std::span<const u8> image)
{
    u64 limit = std::min<u64>(image.size(), SEARCH_LIMIT);
    // The header is 32-bit aligned and 12 bytes at least.
    for (u64 i = 0; i + 12 <= limit; i += 4) {
        if (load_le32(image, i) != HEADER_MAGIC)
            continue;
        u32 flags = load_le32(image, i + 4);
        if (u32(HEADER_MAGIC + flags + load_le32(image, i + 8)) != 0)
            continue;
        Header header;
        header.offset = static_cast<u32>(i);
        header.flags = flags;
        if (i + 32 <= image.size()) {
            header.header_addr = load_le32(image, i + 12);
            header.load_addr = load_le32(image, i + 16);
            header.load_end_addr = load_le32(image, i + 20);
            header.bss_end_addr = load_le32(image, i + 24);
            header.entry_addr = load_le32(image, i + 28);
        }
        return header;
    }
    return std::nullopt;
}

// Where the image went and where it starts.
struct Loaded {
    u32 start = 0xFFFFFFFF;
    u32 end = 0;
    u32 entry = 0;
};

ErrorOr<void> zero_fill(PhysicalMemory& memory, u64 addr, u64 len)
{
    static const std::vector<u8> zeros(64 * 1024, 0);
    while (len > 0) {
        u64 chunk = std::min<u64>(len, zeros.size());
        if (!GuestMemory(memory).write(addr, zeros.data(), chunk))
            return make_error("cannot zero " + hex(addr) + ": not RAM");
        addr += chunk;
        len -= chunk;
    }
    return {};
}

std::string outside_ram(const std::string& name, u64 start, u64 end, const PhysicalMemory& memory)
{
    return name + ": segment " + hex(start) + "-" + hex(end) +
           " lies outside RAM (RAM is 0x0-0x9ffff and 0x100000-" +
           hex(memory.layout().below_4g - 1) +
           "; try a larger --memory)";
}

// Copies [file, file+filesz) to paddr and zeroes up to memsz. Checks the
// whole range first so nothing partial is written for a bad segment.
ErrorOr<void> place_segment(PhysicalMemory& memory, const std::string& name, u64 paddr,
                            std::span<const u8> file, u64 memsz)
{
    u64 end = paddr + memsz;
    if (end > 0xFFFFFFFFull)
        return make_error(name + ": segment " + hex(paddr) + " + " + hex(memsz) +
                          " does not fit below 4 GiB");
    if (!GuestMemory(memory).write(paddr, file))
        return make_error(outside_ram(name, paddr, end - 1, memory));
    if (memsz > file.size()) {
        ErrorOr<void> zeroed = zero_fill(memory, paddr + file.size(), memsz - file.size());
        if (zeroed.is_error())
            return make_error(outside_ram(name, paddr, end - 1, memory));
    }
    return {};
}

// ELF32 little-endian i386 (System V ABI, "ELF header" and "Program header").
namespace elf {
constexpr u8 CLASS32 = 1, CLASS64 = 2, DATA_LSB = 1;
constexpr u16 EM_386 = 3, EM_X86_64 = 62;
constexpr u32 PT_LOAD = 1, PF_X = 1;
constexpr u64 EHDR_SIZE = 52, PHDR_SIZE = 32;
} // namespace elf

bool is_elf(std::span<const u8> image)
{
    return image.size() >= 4 && image[0] == 0x7F && image[1] == 'E' && image[2] == 'L' &&
           image[3] == 'F';
}

ErrorOr<Loaded> load_elf(PhysicalMemory& memory, std::span<const u8> image, const std::string& name)
{
    if (!is_elf(image))
        return make_error(name + ": multiboot header without the address fields (flag 16), "
                                 "and the file is not ELF");
    if (image.size() < elf::EHDR_SIZE)
        return make_error(name + ": truncated ELF header");
    if (image[4] == elf::CLASS64 || load_le16(image, 18) == elf::EM_X86_64)
        return make_error(name + ": a 64-bit ELF kernel cannot be loaded by multiboot v1; "
                                 "link it as ELF32 (ld -m elf_i386)");
    if (image[4] != elf::CLASS32 || image[5] != elf::DATA_LSB || load_le16(image, 18) != elf::EM_386)
        return make_error(name + ": not a 32-bit little-endian i386 ELF file");

    u32 entry = load_le32(image, 24);
    u64 phoff = load_le32(image, 28);
    u64 phentsize = load_le16(image, 42);
    u64 phnum = load_le16(image, 44);
    if (phentsize < elf::PHDR_SIZE || phoff + phnum * phentsize > image.size())
        return make_error(name + ": malformed ELF program header table");

    Loaded loaded;
    u32 translated_entry = entry;
    for (u64 i = 0; i < phnum; ++i) {
        u64 ph = phoff + i * phentsize;
        if (load_le32(image, ph) != elf::PT_LOAD)
            continue;
        u64 offset = load_le32(image, ph + 4);
        u64 vaddr = load_le32(image, ph + 8);
        u64 paddr = load_le32(image, ph + 12);
        u64 filesz = load_le32(image, ph + 16);
        u64 memsz = load_le32(image, ph + 20);
        u32 flags = load_le32(image, ph + 24);
        if (memsz == 0)
            continue;
        if (filesz > memsz || offset + filesz > image.size())
            return make_error(name + ": malformed ELF segment " + std::to_string(i) +
                              " (file data beyond the file or larger than its memory size)");
        ErrorOr<void> placed =
            place_segment(memory, name, paddr, image.subspan(offset, filesz), memsz);
        if (placed.is_error())
            return placed.error();
        loaded.start = std::min<u32>(loaded.start, static_cast<u32>(paddr));
        loaded.end = std::max<u32>(loaded.end, static_cast<u32>(paddr + memsz));
        // e_entry is a virtual address; when the code segment is linked at a
        // different physical address, enter at the physical one (as QEMU's
        // ELF loader and GRUB do).
        if ((flags & elf::PF_X) && vaddr != paddr && entry >= vaddr && entry < vaddr + filesz)
            translated_entry = static_cast<u32>(entry - vaddr + paddr);
    }
    if (loaded.end == 0)
        return make_error(name + ": ELF file has no loadable segment");
    loaded.entry = translated_entry;
    return loaded;
}

// Flag 16: the header's own address fields say where the file goes (spec 3.1.3).
ErrorOr<Loaded> load_aout_kludge(PhysicalMemory& memory, std::span<const u8> image,
                                 const Header& header, const std::string& name)
{
    if (header.offset + 32 > image.size())
        return make_error(name + ": multiboot header truncated before its address fields");
    if (header.header_addr < header.load_addr ||
        header.header_addr - header.load_addr > header.offset)
        return make_error(name + ": invalid multiboot load_addr " + hex(header.load_addr) +
                          " for header_addr " + hex(header.header_addr));
    u64 text_offset = header.offset - (header.header_addr - header.load_addr);
    u64 load_size;
    if (header.load_end_addr != 0) {
        if (header.load_end_addr < header.load_addr)
            return make_error(name + ": invalid multiboot load_end_addr " +
                              hex(header.load_end_addr));
        load_size = header.load_end_addr - header.load_addr;
    } else {
        load_size = image.size() - text_offset;
    }
    if (text_offset + load_size > image.size())
        return make_error(name + ": file is shorter than the multiboot header's load range");
    u64 memory_size = load_size;
    if (header.bss_end_addr != 0) {
        if (header.bss_end_addr < header.load_addr + load_size)
            return make_error(name + ": invalid multiboot bss_end_addr " +
                              hex(header.bss_end_addr));
        memory_size = header.bss_end_addr - header.load_addr;
    }
    ErrorOr<void> placed = place_segment(memory, name, header.load_addr,
                                         image.subspan(text_offset, load_size), memory_size);
    if (placed.is_error())
        return placed.error();
    Loaded loaded;
    loaded.start = header.load_addr;
    loaded.end = static_cast<u32>(header.load_addr + memory_size);
    loaded.entry = header.entry_addr;
    return loaded;
}

// The flat GDT the loader leaves behind, the same five descriptors as QEMU's
// multiboot option ROM (accessed bits set, as loading them would).
constexpr u64 LOADER_GDT[] = {
    0,
    0x00CF9B000000FFFFull, // 0x08: 32-bit code, base 0, limit 4 GiB
    0x00CF93000000FFFFull, // 0x10: 32-bit data, base 0, limit 4 GiB
    0x00009E000000FFFFull, // 0x18: 16-bit code, base 0, limit 64 KiB
    0x000092000000FFFFull, // 0x20: 16-bit data, base 0, limit 64 KiB
};

// Layout of the info block, offsets from its start. The memory map and the
// info structure sit where QEMU puts them relative to each other (0x9000 and
// 0x9500).
constexpr u32 MMAP_OFFSET = 0;
constexpr u32 INFO_SIZE = 88;
constexpr u32 GDT_OFFSET = 0x580;
constexpr u32 MODULE_LIST_OFFSET = GDT_OFFSET + sizeof LOADER_GDT;
constexpr u32 STRINGS_OFFSET = MODULE_LIST_OFFSET + 16;
constexpr u32 MMAP_ENTRY_SIZE = 24; // the 4-byte size field plus 20 bytes

// Info structure field offsets (spec 3.3).
constexpr u32 MBI_FLAGS = 0, MBI_MEM_LOWER = 4, MBI_MEM_UPPER = 8, MBI_BOOT_DEVICE = 12,
              MBI_CMDLINE = 16, MBI_MODS_COUNT = 20, MBI_MODS_ADDR = 24, MBI_MMAP_LENGTH = 44,
              MBI_MMAP_ADDR = 48, MBI_LOADER_NAME = 64;

constexpr u32 MMAP_AVAILABLE = 1, MMAP_RESERVED = 2;
using pc_memory_map::HIGH_RAM_START;
using pc_memory_map::LOW_RAM_END;

struct MapEntry {
    u64 base, length;
    u32 type;
};

// The memory map matches PhysicalMemory: RAM below 640 KiB, the legacy hole
// (VGA window and ROM area, never RAM here), RAM from 1 MiB to the PCI hole
// and from 4 GiB up (mmu/pc_memory_map.h).
std::vector<MapEntry> memory_map(const pc_memory_map::RamLayout& layout)
{
    const u64 low_top = layout.below_4g;
    std::vector<MapEntry> map;
    map.push_back({0, std::min(low_top, LOW_RAM_END), MMAP_AVAILABLE});
    map.push_back({LOW_RAM_END, HIGH_RAM_START - LOW_RAM_END, MMAP_RESERVED});
    if (low_top > HIGH_RAM_START)
        map.push_back({HIGH_RAM_START, low_top - HIGH_RAM_START, MMAP_AVAILABLE});
    if (layout.above_4g)
        map.push_back({pc_memory_map::RAM_ABOVE_4G_BASE, layout.above_4g, MMAP_AVAILABLE});
    return map;
}

bool overlaps(u64 a_start, u64 a_end, u64 b_start, u64 b_end)
{
    return a_start < b_end && b_start < a_end;
}

// Low memory where QEMU would put it, else the first free page-aligned spot
// above it in conventional memory, else just after the kernel.
std::optional<u32> place_info_block(u64 size, const Loaded& kernel, u64 ram_size)
{
    u64 low_end = std::min(ram_size, LOW_RAM_END);
    for (u64 base = DEFAULT_INFO_BLOCK; base + size <= low_end; base += PAGE_SIZE)
        if (!overlaps(base, base + size, kernel.start, kernel.end))
            return static_cast<u32>(base);
    u64 after = page_align_up(kernel.end);
    if (after + size <= ram_size && after + size <= 0xFFFFFFFFull &&
        !overlaps(after, after + size, LOW_RAM_END, HIGH_RAM_START))
        return static_cast<u32>(after);
    return std::nullopt;
}

struct InfoStrings {
    std::string cmdline;
    std::string loader_name;
    std::string module_cmdline;
};

std::vector<u8> build_info_block(u32 base, const InfoStrings& strings,
                                 const pc_memory_map::RamLayout& layout,
                                 const MultibootBoot& boot, bool has_module)
{
    u32 cmdline_offset = STRINGS_OFFSET;
    u32 loader_offset = cmdline_offset + static_cast<u32>(strings.cmdline.size()) + 1;
    u32 module_cmdline_offset = loader_offset + static_cast<u32>(strings.loader_name.size()) + 1;
    u32 end = module_cmdline_offset + static_cast<u32>(strings.module_cmdline.size()) + 1;
    std::vector<u8> block(end, 0);

    std::vector<MapEntry> map = memory_map(layout);
    for (size_t i = 0; i < map.size(); ++i) {
        u32 at = MMAP_OFFSET + static_cast<u32>(i) * MMAP_ENTRY_SIZE;
        store_le32(block, at, MMAP_ENTRY_SIZE - 4);
        store_le64(block, at + 4, map[i].base);
        store_le64(block, at + 12, map[i].length);
        store_le32(block, at + 20, map[i].type);
    }

    for (size_t i = 0; i < std::size(LOADER_GDT); ++i)
        store_le64(block, GDT_OFFSET + i * 8, LOADER_GDT[i]);

    if (has_module) {
        store_le32(block, MODULE_LIST_OFFSET, boot.module_start);
        store_le32(block, MODULE_LIST_OFFSET + 4, boot.module_end);
        store_le32(block, MODULE_LIST_OFFSET + 8, base + module_cmdline_offset);
    }

    std::memcpy(&block[cmdline_offset], strings.cmdline.data(), strings.cmdline.size());
    std::memcpy(&block[loader_offset], strings.loader_name.data(), strings.loader_name.size());
    std::memcpy(&block[module_cmdline_offset], strings.module_cmdline.data(),
                strings.module_cmdline.size());

    u32 info = INFO_OFFSET_IN_BLOCK;
    // mem_upper: the RAM from 1 MiB up to the first hole (spec 3.3).
    const u64 low_top = layout.below_4g;
    u64 low_kib = std::min(low_top, LOW_RAM_END) / 1024;
    u64 high_kib = low_top > HIGH_RAM_START ? (low_top - HIGH_RAM_START) / 1024 : 0;
    // The same flags QEMU sets (it also reports the boot device).
    store_le32(block, info + MBI_FLAGS,
              INFO_MEMORY | INFO_BOOT_DEVICE | INFO_CMDLINE | INFO_MODS | INFO_MMAP |
                  INFO_LOADER_NAME);
    store_le32(block, info + MBI_MEM_LOWER, static_cast<u32>(low_kib));
    store_le32(block, info + MBI_MEM_UPPER, static_cast<u32>(std::min<u64>(high_kib, 0xFFFFFFFF)));
    store_le32(block, info + MBI_BOOT_DEVICE, 0x8000FFFF); // "no BIOS drive", as QEMU
    store_le32(block, info + MBI_CMDLINE, base + cmdline_offset);
    store_le32(block, info + MBI_MODS_COUNT, has_module ? 1 : 0);
    store_le32(block, info + MBI_MODS_ADDR, base + MODULE_LIST_OFFSET);
    store_le32(block, info + MBI_MMAP_LENGTH, static_cast<u32>(map.size()) * MMAP_ENTRY_SIZE);
    store_le32(block, info + MBI_MMAP_ADDR, base + MMAP_OFFSET);
    store_le32(block, info + MBI_LOADER_NAME, base + loader_offset);
    return block;
}

// "FILE[ ARGS]" as QEMU's -initrd takes it for multiboot: the file name ends
// at the first space.
std::string module_file_name(const std::string& spec)
{
    return spec.substr(0, spec.find(' '));
}

} // namespace

bool is_multiboot_image(std::span<const u8> image)
{
    return find_header(image).has_value();
}

ErrorOr<std::vector<u8>> read_whole_file(const std::string& path)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return make_error("cannot open '" + path + "': " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return make_error("'" + path + "' is not a regular file");
    }
    std::vector<u8> bytes(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int saved = n < 0 ? errno : EIO;
            ::close(fd);
            return make_error("cannot read '" + path + "': " + std::strerror(saved));
        }
        done += static_cast<size_t>(n);
    }
    ::close(fd);
    return bytes;
}

ErrorOr<MultibootBoot> load_multiboot_image(PhysicalMemory& memory, std::span<const u8> kernel,
                                            const MultibootParams& params,
                                            std::span<const u8> module)
{
    const std::string& name = params.kernel_name;
    std::optional<Header> header = find_header(kernel);
    if (!header)
        return make_error(name + ": not a multiboot kernel (no multiboot v1 header in its first "
                                 "8192 bytes)");

    ErrorOr<Loaded> loaded_or = (header->flags & HEADER_FLAG_AOUT_KLUDGE)
                                    ? load_aout_kludge(memory, kernel, *header, name)
                                    : load_elf(memory, kernel, name);
    if (loaded_or.is_error())
        return loaded_or.error();
    Loaded loaded = loaded_or.value();

    MultibootBoot boot;
    boot.entry = loaded.entry;
    boot.kernel_start = loaded.start;
    boot.kernel_end = loaded.end;

    InfoStrings strings;
    strings.cmdline = params.kernel_name + " " + params.append; // QEMU's "%s %s"
    strings.loader_name = params.loader_name;
    bool has_module = params.module_spec.has_value();
    if (has_module)
        strings.module_cmdline = *params.module_spec;

    u64 block_size = page_align_up(STRINGS_OFFSET + strings.cmdline.size() +
                                   strings.loader_name.size() + strings.module_cmdline.size() + 3);
    // Everything goes below 4 GiB (the info block holds 32-bit addresses).
    const u64 low_top = memory.layout().below_4g;
    std::optional<u32> block_base = place_info_block(block_size, loaded, low_top);
    if (!block_base)
        return make_error(name + ": no free memory for the multiboot information");

    if (has_module) {
        // Page-aligned (header flag 0 asks for it; QEMU always does it) after
        // everything loaded so far.
        u64 start = page_align_up(std::max<u64>(loaded.end, *block_base + block_size));
        u64 end = start + module.size();
        if (end > low_top || !GuestMemory(memory).write(start, module))
            return make_error(
                "module '" + module_file_name(*params.module_spec) + "' (" +
                std::to_string(module.size()) +
                " bytes) does not fit in RAM after the kernel; try a larger --memory");
        boot.module_start = static_cast<u32>(start);
        boot.module_end = static_cast<u32>(end);
    }

    std::vector<u8> block =
        build_info_block(*block_base, strings, memory.layout(), boot, has_module);
    if (!GuestMemory(memory).write(*block_base, block))
        return make_error(name + ": cannot write the multiboot information at " + hex(*block_base));
    boot.info_address = *block_base + INFO_OFFSET_IN_BLOCK;
    boot.gdt_address = *block_base + GDT_OFFSET;
    return boot;
}

ErrorOr<MultibootBoot> load_multiboot(PhysicalMemory& memory, const std::string& kernel_path,
                                      const MultibootParams& params)
{
    ErrorOr<std::vector<u8>> kernel = read_whole_file(kernel_path);
    if (kernel.is_error())
        return make_error("kernel: " + kernel.error().message);
    std::vector<u8> module;
    if (params.module_spec) {
        ErrorOr<std::vector<u8>> bytes = read_whole_file(module_file_name(*params.module_spec));
        if (bytes.is_error())
            return make_error("initrd: " + bytes.error().message);
        module = bytes.release_value();
    }
    return load_multiboot_image(memory, kernel.value(), params, module);
}

void enter_multiboot(CpuState& state, const MultibootBoot& boot)
{
    state.gpr = {};
    state.gpr[RAX] = BOOTLOADER_MAGIC;
    state.gpr[RBX] = boot.info_address;
    state.gpr[RCX] = boot.entry; // QEMU's option ROM jumps through ECX
    // The spec leaves ESP undefined; give the kernel a usable one below the
    // info block, as QEMU's BIOS stack happens to be.
    state.gpr[RSP] = INITIAL_ESP;
    state.rip = boot.entry;
    state.rflags = rf::FIXED1;

    constexpr u32 flat = Segment::S | Segment::P | Segment::DB | Segment::G;
    for (unsigned i = 0; i < SEG_COUNT; ++i) {
        Segment& seg = state.seg[i];
        bool code = i == CS;
        seg.selector = code ? CODE32_SELECTOR : DATA32_SELECTOR;
        seg.base = 0;
        seg.limit = 0xFFFFFFFF;
        seg.attr = flat | (code ? 0xB : 0x3); // execute/read or read/write, accessed
    }
    state.ldtr = Segment{0, 0, 0xFFFF, 0x2 | Segment::P};
    state.tr = Segment{0, 0, 0xFFFF, 0xB | Segment::P}; // busy 32-bit TSS, as after reset
    state.gdtr = DescriptorTable{boot.gdt_address, static_cast<u16>(sizeof LOADER_GDT - 1)};
    state.idtr = DescriptorTable{0, 0x3FF}; // the real-mode IVT, as the BIOS leaves it

    state.cr0 = cr::CR0_PE | cr::CR0_ET; // caches on, paging off (QEMU: 0x11)
    state.cr2 = state.cr3 = state.cr4 = 0;
    state.msr.efer = 0;
    state.events = PendingEvents{};
}
