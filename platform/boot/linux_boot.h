// The Linux/x86 boot protocol (Documentation/arch/x86/boot.rst and
// zero-page.rst in a Linux tree) for a bzImage, entered the way a 64-bit
// boot loader does ("64-bit Boot Protocol"): no real-mode setup code and no
// BIOS. The loader checks the setup header, puts the protected-mode kernel
// at 1 MiB as QEMU's -kernel does, the command line low, the initrd high,
// builds struct boot_params (the "zero page") with an e820 map, and leaves
// identity-mapping page tables and a GDT with __BOOT_CS/__BOOT_DS; the vCPU
// then starts at startup_64 in 64-bit mode.
//
// Guest physical layout it uses below 1 MiB (all RAM in its e820 map; the
// kernel reclaims it once it has its own GDT and page tables):
//   0x00500  GDT (null, null, __BOOT_CS 0x10, __BOOT_DS 0x18)
//   0x07000  boot_params (4 KiB)
//   0x08000  a stack page (RSP at entry points to its top)
//   0x09000  PML4, 0x0A000 PDPT, 0x0B000-0x0EFFF four page directories that
//            map the first 4 GiB with 2 MiB pages
//   0x20000  the command line (up to the kernel's cmdline_size)
// and the e820 map: RAM [0, 0x9FC00), reserved [0x9FC00, 0xA0000) (EBDA) and
// [0xE0000, 0x100000) (firmware: the ACPI tables and RSDP go there), RAM from
// 1 MiB to the PCI hole and from 4 GiB up (mmu/pc_memory_map.h), less what
// the caller reserves.
#pragma once

#include "cpu/state/cpu_state.h"
#include "mmu/physical_memory.h"
#include "mmu/base/error_or.h"

#include <optional>
#include <span>
#include <string>
#include <vector>

namespace linux_boot {
// Setup header (boot.rst "The Real-Mode Kernel Header"), offsets in the file
// and in boot_params alike.
constexpr u32 HDRS_MAGIC = 0x53726448; // "HdrS" at 0x202
constexpr u16 BOOT_FLAG = 0xAA55;      // at 0x1FE
constexpr u16 MIN_PROTOCOL = 0x020C;   // 2.12: xloadflags, the 64-bit entry point
constexpr u8 LOADED_HIGH = 1u << 0;    // loadflags: a bzImage
constexpr u16 XLF_KERNEL_64 = 1u << 0; // xloadflags: startup_64 at load address + 0x200
constexpr u16 XLF_CAN_BE_LOADED_ABOVE_4G = 1u << 1;
constexpr u8 LOADER_TYPE_UNDEFINED = 0xFF; // type_of_loader: no assigned id
constexpr u64 STARTUP_64_OFFSET = 0x200;

// Where the loader puts things (see the layout above).
constexpr u64 KERNEL_LOAD_ADDRESS = 0x100000;
constexpr u64 GDT_ADDRESS = 0x500;
constexpr u64 BOOT_PARAMS_ADDRESS = 0x7000;
constexpr u64 STACK_TOP = 0x9000;
constexpr u64 PML4_ADDRESS = 0x9000;
constexpr u64 IDENTITY_MAP_BYTES = 4ull << 30;
constexpr u64 CMDLINE_ADDRESS = 0x20000;

// Selectors the kernel expects at entry (boot.rst "64-bit Boot Protocol").
constexpr u16 BOOT_CS = 0x10, BOOT_DS = 0x18;

// The e820 map (ACPI 6.5 §15 "System Address Map Interfaces"); RAM as
// pc_memory_map lays it out.
constexpr u64 EBDA_START = 0x9FC00;
constexpr u64 LOW_RAM_END = pc_memory_map::LOW_RAM_END;
constexpr u64 FIRMWARE_START = 0xE0000;
constexpr u64 HIGH_RAM_START = pc_memory_map::HIGH_RAM_START;
constexpr unsigned E820_MAX_ENTRIES = 128; // what boot_params holds
} // namespace linux_boot

enum class E820Type : u32 { Ram = 1, Reserved = 2, Acpi = 3, Nvs = 4, Unusable = 5 };

struct E820Entry {
    u64 address = 0;
    u64 size = 0;
    E820Type type = E820Type::Ram;
    bool operator==(const E820Entry&) const = default;
};

// What the setup header says (the fields a loader reads).
struct LinuxSetupHeader {
    u16 protocol = 0;   // (major << 8) | minor
    u8 setup_sects = 0; // 0 already replaced by 4
    u32 syssize = 0;    // protected-mode code, in 16-byte paragraphs
    u8 loadflags = 0;
    u32 initrd_addr_max = 0; // highest byte an initrd may occupy
    u32 kernel_alignment = 0;
    bool relocatable = false;
    u16 xloadflags = 0;
    u32 cmdline_size = 0; // longest command line without its NUL
    u64 pref_address = 0;
    u32 init_size = 0;          // bytes the kernel needs from its runtime start
    u32 header_end = 0;         // one past the header's last byte (0x202 + the jump's offset byte)
    std::string kernel_version; // "6.1.0-… (…) #1 SMP …" when the header points at it

    u64 setup_bytes() const { return (u64(setup_sects) + 1) * 512; }
};

struct LinuxBootParams {
    // Shown in error messages.
    std::string kernel_name = "kernel";
    std::string initrd_name = "initrd";
    std::string cmdline;
    // boot_params.acpi_rsdp_addr: where the RSDP is, so that Linux need not
    // scan for it; 0 leaves the scan (EBDA, 0xE0000-0xFFFFF) to Linux.
    u64 acpi_rsdp_address = 0;
    // Bytes at the top of RAM below 4 GiB reported as ACPI tables (type 3)
    // instead of RAM, for firmware tables too large for [0xE0000, 0x100000).
    u64 acpi_reserved_top = 0;
    // Further ranges reported as reserved, e.g. the PCI ECAM window, which
    // Linux uses only when e820 or ACPI reserves it.
    std::vector<E820Entry> extra_reserved;
};

struct LinuxBootInfo {
    LinuxSetupHeader header;
    u64 entry = 0;               // startup_64
    u64 boot_params_address = 0; // what RSI receives
    u64 kernel_start = 0;        // where the protected-mode image went
    u64 kernel_end = 0;          // one past its last byte
    u64 runtime_start = 0;       // where the kernel decompresses itself and runs
    u64 runtime_end = 0;         // runtime_start + init_size
    u64 cmdline_address = 0;
    u64 initrd_address = 0; // 0 when there is no initrd
    u64 initrd_size = 0;
    u64 page_table_address = 0; // what CR3 receives
    u64 gdt_address = 0;
    u16 gdt_limit = 0;
    u64 stack_pointer = 0;
    std::vector<E820Entry> e820;
};

// True when the image has a Linux boot header ("HdrS" at 0x202): callers
// choose the Linux loader over multiboot with it.
bool is_linux_bzimage(std::span<const u8> image);

// Reads and checks the setup header: a bzImage (protocol >= 2.00 with
// LOADED_HIGH) that has the 64-bit entry point (protocol >= 2.12 and
// XLF_KERNEL_64), not truncated, with a sane alignment.
ErrorOr<LinuxSetupHeader> parse_linux_header(std::span<const u8> image, const std::string& name);

// The e820 map the loader reports for RAM of ram_size bytes (laid out by
// pc_memory_map::ram_layout, as PhysicalMemory lays it out).
std::vector<E820Entry> linux_e820_map(u64 ram_size, const LinuxBootParams& params);

// Loads an image already in memory (used by load_linux and by tests).
ErrorOr<LinuxBootInfo> load_linux_image(PhysicalMemory& memory, std::span<const u8> kernel,
                                        const LinuxBootParams& params,
                                        std::optional<std::span<const u8>> initrd = std::nullopt);

// Loads from files: the kernel and, if given, the initrd.
ErrorOr<LinuxBootInfo> load_linux(PhysicalMemory& memory, const std::string& kernel_path,
                                  const std::optional<std::string>& initrd_path,
                                  LinuxBootParams params);

// The state at startup_64 (boot.rst "64-bit Boot Protocol"): long mode,
// paging on with the loader's identity map, CS = __BOOT_CS (64-bit code),
// DS = ES = SS = FS = GS = __BOOT_DS, interrupts off, RSI = boot_params, every
// other GPR zero.
void enter_linux64(CpuState& state, const LinuxBootInfo& boot);
