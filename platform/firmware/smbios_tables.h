// The SMBIOS tables of this board (DMTF DSP0134, version 3.0): what Linux's
// DMI layer (the "DMI:" boot line, /sys/class/dmi/id), dmidecode and other
// firmware-reading tools take the machine's identity from.
//
// Structures: BIOS (type 0, marked as describing a virtual machine), system
// (1), chassis (3), one processor per vCPU (4), the RAM as one physical
// memory array (16) of DIMMs of at most 16 GiB each (17), one mapped address
// range (19) per RAM range (below the PCI hole, above 4 GiB), as QEMU
// describes it (hw/smbios/smbios.c), system boot information (32) and the
// end-of-table marker (127).
//
// Where they go: a guest without EFI finds the 64-bit ("_SM3_") entry point
// by scanning 0xF0000-0xFFFFF on 16-byte boundaries; the image this builds
// is the entry point with the structure table right after it, to be mapped
// as ROM at that address, as a PC BIOS keeps them in its shadow ROM.
#pragma once

#include "mmu/base/types.h"

#include <array>
#include <string>
#include <vector>

struct SmbiosConfig {
    struct RamRange {
        GuestPhys base;
        u64 size;
    };
    unsigned cpu_count = 1;
    // Guest RAM as PhysicalMemory::ram_ranges() has it.
    std::vector<RamRange> ram_ranges = {{0, 512ull << 20}};
    std::string manufacturer = "viridian";
    std::string product = "viridian Virtual Machine";
    std::string version = "0.1";
    std::string bios_date = "01/01/2026"; // mm/dd/yyyy
    std::array<u8, 16> uuid{}; // all zero: no UUID (DSP0134 7.2.1)
};

struct SmbiosImage {
    GuestPhys address = 0;     // of the entry point (16-byte aligned)
    std::vector<u8> bytes;     // entry point, padding, structure table
    u32 table_offset = 0;      // where the structure table starts in `bytes`
    unsigned structure_count = 0;
};

SmbiosImage build_smbios_tables(const SmbiosConfig& config, GuestPhys address);
