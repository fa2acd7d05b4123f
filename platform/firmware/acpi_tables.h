// The ACPI tables of this board (ACPI 6.0): RSDP, XSDT and RSDT, FADT
// (revision 6, HW_REDUCED_ACPI = 0, PM1a event/control and PM timer blocks,
// SCI on IRQ 9, reset register 0xCF9 <- 0x06), FACS, DSDT, MADT (a local
// APIC per CPU, the I/O APIC, overrides IRQ0 -> GSI 2 and IRQ9 level/high,
// LINT1 as NMI), HPET and MCFG (the ECAM window).
//
// The DSDT (AML from aml_builder.h) describes \_SB.PCI0 (PNP0A03: bus,
// I/O and memory windows in _CRS; _PRT with PIRQA-D on GSI 16-19 in APIC
// mode, or on the link devices LNKA-LNKD (fixed IRQs matching
// PiixIsaBridge::firmware_routing) in PIC mode, chosen by \_PIC), its ISA
// bridge with keyboard (PNP0303), mouse (PNP0F13), RTC (PNP0B00), COM1/COM2
// (PNP0501), the HPET (PNP0103), a motherboard-resources device (PNP0C02)
// reserving the ECAM window and fw_cfg ports, processor devices (ACPI0007,
// _UID = MADT processor UID) and the \_S5 sleep object (SLP_TYP 0).
//
// Where the tables go: the RSDP must be found by a scan of 0xE0000-0xFFFFF
// (map it as ROM, 16-byte aligned) or be handed over in boot_params; the
// rest is one blob in RAM at a 64-byte aligned address that the e820 map
// marks ACPI NVS (it contains the FACS, which the OS may write).
#pragma once

#include "mmu/base/types.h"
#include "mmu/pc_memory_map.h"

#include <array>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct AcpiConfig {
    unsigned cpu_count = 1; // APIC IDs and processor UIDs 0 .. cpu_count - 1
    u64 lapic_base = 0xFEE00000;
    u8 ioapic_id = 0;
    u64 ioapic_base = 0xFEC00000;
    bool hpet = true;
    u64 hpet_base = 0xFED00000;
    u32 hpet_block_id = 0x8086A201; // Hpet::CAPABILITIES_ID
    u64 ecam_base = pc_memory_map::ECAM_BASE;
    unsigned ecam_buses = pc_memory_map::ECAM_BUSES;
    u16 pm_base = 0x600; // AcpiPm::DEFAULT_BASE
    u8 sci_irq = 9;
    u8 s5_slp_typ = 0; // AcpiPm::SLP_TYP_S5
    u16 reset_port = 0xCF9;
    u8 reset_value = 0x06;
    u16 fw_cfg_port = 0x510;
    u8 rtc_century = 0x32; // CMOS index of the century byte
    bool vmbus = false;    // \_SB.VMBS, _HID "VMBus", for Linux's hv_vmbus
    // PCI memory windows the root bridge forwards (_CRS): below 4 GiB the
    // PCI hole, which may be in two pieces around the ECAM window; above,
    // an optional 64-bit window past the end of RAM.
    struct Window32 {
        u32 base;
        u32 limit; // inclusive
    };
    std::vector<Window32> pci_mmio32 = {{0xF0000000, 0xFEBFFFFF}};
    u64 pci_mmio64_base = 0;
    u64 pci_mmio64_size = 0;
    // APIC mode: PIRQA..D arrive on GSI base .. base + 3.
    u32 pirq_gsi_base = 16;
    // PIC mode: the ISA IRQ of each PIRQ (PiixIsaBridge::firmware_routing).
    std::array<u8, 4> pirq_irqs = {10, 10, 11, 11};
};

struct AcpiTables {
    GuestPhys rsdp_address = 0;
    std::vector<u8> rsdp; // 36 bytes
    GuestPhys tables_address = 0;
    std::vector<u8> tables; // FACS, DSDT, FADT, MADT, HPET, MCFG, XSDT, RSDT
    // Where each table starts in `tables`, by signature.
    std::vector<std::pair<std::string, u32>> index;

    // One table's bytes (empty when absent).
    std::span<const u8> table(std::string_view signature) const;
};

// rsdp_address: 16-byte aligned, below 1 MiB for the scan (default: the
// start of the BIOS area 0xE0000). tables_address: 64-byte aligned RAM.
AcpiTables build_acpi_tables(const AcpiConfig& config, GuestPhys tables_address,
                             GuestPhys rsdp_address = 0xE0000);

// The DSDT's AML body alone (after the table header), for tests.
std::vector<u8> build_dsdt_aml(const AcpiConfig& config);

// 8-bit sum of bytes (a correct table sums to 0).
u8 acpi_checksum(std::span<const u8> bytes);
