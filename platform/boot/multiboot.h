// Multiboot v1 boot loader (Multiboot Specification 0.6.96), behaving like
// QEMU's `-kernel` for a multiboot image (hw/i386/multiboot.c plus its
// option ROM): finds the header in the first 8192 bytes, loads an ELF32
// kernel by its program headers (p_paddr) or, with header flag 16, by the
// a.out-kludge address fields, places the boot information structure in
// low memory and leaves the CPU in flat 32-bit protected mode.
#pragma once

#include "cpu/state/cpu_state.h"
#include "mmu/physical_memory.h"
#include "mmu/base/error_or.h"

#include <optional>
#include <span>
#include <string>
#include <vector>

struct MultibootParams {
    // Shown in error messages and, as QEMU does, put in front of the
    // command line the kernel sees ("<kernel> <append>").
    std::string kernel_name;
    std::string append;
    // The one optional module (--initrd): QEMU's form "FILE[ ARGS]"; its
    // whole text becomes the module's command line.
    std::optional<std::string> module_spec;
    std::string loader_name = "viridian";
};

struct MultibootBoot {
    u32 entry = 0;
    u32 info_address = 0; // what EBX receives
    u32 gdt_address = 0;  // the flat GDT the loader left for the kernel
    u32 kernel_start = 0; // lowest loaded byte
    u32 kernel_end = 0;   // one past the highest loaded (or zeroed) byte
    u32 module_start = 0; // 0 when there is no module
    u32 module_end = 0;
};

// Multiboot info and header constants (spec 3.1 and 3.3).
namespace multiboot {
constexpr u32 HEADER_MAGIC = 0x1BADB002;
constexpr u32 BOOTLOADER_MAGIC = 0x2BADB002;
constexpr u32 SEARCH_LIMIT = 8192;
constexpr u32 HEADER_FLAG_AOUT_KLUDGE = 1u << 16;

constexpr u32 INFO_MEMORY = 1u << 0, INFO_BOOT_DEVICE = 1u << 1, INFO_CMDLINE = 1u << 2,
              INFO_MODS = 1u << 3, INFO_MMAP = 1u << 6, INFO_LOADER_NAME = 1u << 9;

// Where QEMU's option ROM leaves the memory map and the info structure; the
// loader uses the same place unless the kernel occupies it.
constexpr u32 DEFAULT_INFO_BLOCK = 0x9000;
constexpr u32 INFO_OFFSET_IN_BLOCK = 0x500;
constexpr u32 INITIAL_ESP = 0x7000;

// Segment selectors of the loader's GDT (the same layout as QEMU's
// multiboot option ROM: null, 32-bit code, 32-bit data, 16-bit code, 16-bit data).
constexpr u16 CODE32_SELECTOR = 0x08, DATA32_SELECTOR = 0x10;
} // namespace multiboot

// Loads from files (the kernel and, if given, the module).
ErrorOr<MultibootBoot> load_multiboot(PhysicalMemory& memory, const std::string& kernel_path,
                                      const MultibootParams& params);

// Loads an image already in memory; `module` holds the module's bytes when
// params.module_spec is set. Used by load_multiboot and by tests.
ErrorOr<MultibootBoot> load_multiboot_image(PhysicalMemory& memory, std::span<const u8> kernel,
                                            const MultibootParams& params,
                                            std::span<const u8> module = {});

// The machine state at the kernel's entry (spec 3.2): flat 32-bit protected
// mode, paging off, EAX = 0x2BADB002, EBX = the info structure.
void enter_multiboot(CpuState& state, const MultibootBoot& boot);

// True when the image carries a valid multiboot v1 header (callers pick a
// loader with it: multiboot now, the Linux boot protocol later).
bool is_multiboot_image(std::span<const u8> image);

ErrorOr<std::vector<u8>> read_whole_file(const std::string& path);
