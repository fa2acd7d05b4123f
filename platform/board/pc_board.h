// The PC board: every emulated platform device, created and wired the way
// a PIIX3/i440FX PC with an IOAPIC, HPET and ACPI wires them (issue 5,
// "The board"). The board knows devices, not vCPUs: the machine connects
// each vCPU to lapic(i) as its interrupt source and routes its MSRs here.
#pragma once

#include "mmu/bus/msr_bus.h"
#include "mmu/physical_memory.h"
#include "mmu/bus/port_bus.h"
#include "platform/chipset/acpi_pm.h"
#include "platform/firmware/acpi_tables.h"
#include "platform/interrupts/apic_bus.h"
#include "platform/timers/cmos_rtc.h"
#include "platform/chipset/coprocessor_error.h"
#include "platform/firmware/fw_cfg.h"
#include "platform/firmware/smbios_tables.h"
#include "platform/timers/hpet.h"
#include "platform/serial/i8042.h"
#include "platform/timers/i8254_pit.h"
#include "platform/interrupts/i8259_pic.h"
#include "platform/interrupts/io_apic.h"
#include "platform/interrupts/irq_router.h"
#include "platform/interrupts/local_apic.h"
#include "platform/chipset/pci_host.h"
#include "platform/chipset/piix_isa_bridge.h"
#include "platform/chipset/port92_reset.h"
#include "platform/clock/virtual_clock.h"
#include "platform/storage/piix_ide.h"

#include <functional>
#include <memory>
#include <vector>

struct PcBoardConfig {
    unsigned cpu_count = 1;
    u64 ram_bytes = 512ull << 20;
    i64 rtc_start_time = 0; // seconds since the epoch the RTC starts at
    bool vmbus = false;     // the DSDT names a VMBus device (a Hyper-V partition)
};

// The system ROM a board boots through. Without one (a kernel loaded
// directly) the board writes its firmware tables into guest memory itself;
// with one it looks to the ROM like QEMU's i440FX PC (install_firmware).
struct PcFirmware {
    std::vector<u8> bios; // platform/boot/bios_image.h
    // SeaBIOS's wait before it resets after finding nothing to boot
    // ("etc/boot-fail-wait"), in milliseconds.
    u32 boot_fail_wait_ms = 5000;
};

class PcBoard {
public:
    // Where the firmware tables live: the RSDP in the BIOS area (scanned by
    // guests) and the other tables in the top 64 KiB of RAM below 4 GiB
    // (the guest-physical map is mmu/pc_memory_map.h).
    static constexpr GuestPhys RSDP_ADDRESS = 0xE0000;
    // The SMBIOS entry point and structures (smbios_tables.h), scanned for
    // in 0xF0000-0xFFFFF.
    static constexpr GuestPhys SMBIOS_ADDRESS = 0xF0000;
    static constexpr u64 ACPI_TABLES_SIZE = 64 * 1024;

    PcBoard(const PcBoardConfig& config, PhysicalMemory& memory, PortBus& ports, MsrBus& msrs,
            VirtualClock& clock, PcFirmware firmware = {});
    PcBoard(const PcBoard&) = delete;
    PcBoard& operator=(const PcBoard&) = delete;

    LocalApic& lapic(unsigned vcpu) { return *m_lapics[vcpu]; }
    // FERR#/IGNNE# of the boot vCPU (the chipset's pins reach one package).
    FpuErrorPins& fpu_error_pins() { return m_coprocessor_error; }
    // A fresh input on ISA IRQ line `irq` (COM ports and other ISA devices).
    IrqLine isa_irq_input(unsigned irq) { return m_irqs.input(irq); }

    // Called when the guest asks to power off (ACPI S5) or to reset
    // (0xCF9, port 0x92, the keyboard controller's reset pulse).
    void set_power_off_handler(std::function<void()> handler) { m_on_power_off = std::move(handler); }
    void set_reset_handler(std::function<void()> handler) { m_on_reset = std::move(handler); }
    // Called when the guest suspends to RAM (ACPI S3) and when a wake event
    // ends the sleep (acpi_pm.h). RAM and the devices keep their state.
    void set_suspend_handler(std::function<void()> handler) { m_on_suspend = std::move(handler); }
    void set_wake_handler(std::function<void()> handler) { m_on_wake = std::move(handler); }
    bool suspended() const { return m_pm.sleeping(); }
    // What firmware does on the way back from S3 before it jumps to the
    // OS: the 8259s initialised again (SeaBIOS src/resume.c s3_resume ->
    // pic_setup), the LAPICs as after a reset. Returns the FACS's real-mode
    // Firmware Waking Vector (ACPI 6.x 5.2.10), 0 if the OS set none.
    u32 resume_as_firmware_does(PhysicalMemory& memory);

    // Leaves the 8259s, PIT counter 0 and the real-mode interrupt vector
    // table the way SeaBIOS hands them to a kernel it boots: for a kernel
    // loaded without firmware (multiboot), which may sleep in HLT with IF=1
    // and wait for the 18.2 Hz timer tick, or take that tick in real mode.
    // Not for the Linux boot protocol, whose kernels program all of it.
    void program_as_firmware_leaves_it(PhysicalMemory& memory);
    // Where the interrupt handlers of that vector table live (BIOS ROM).
    static constexpr GuestPhys FIRMWARE_HANDLERS_ADDRESS = 0xFFF40;

    // The fixed-feature power button (ACPI 6.x 4.8.3.1.1): PWRBTN_STS and
    // the SCI if the OS enabled it.
    void press_power_button() { m_pm.press_power_button(); }

    // The PIIX3 IDE function (00:01.1); the machine attaches the drives.
    PiixIde& ide() { return m_ide; }
    // Plugs a device the machine made (a network adapter) into `slot` as
    // function 0: its BARs decode where the guest puts them and its INTA#
    // reaches the PIRQ the swizzle picks (pci_host.h).
    void attach_pci_device(u8 slot, PciDevice& device) { m_pci.attach(slot, 0, device); }

    // The ACPI tables, already written to guest memory.
    const AcpiTables& acpi() const { return m_acpi; }
    // RAM reserved for the tables at the top of RAM below 4 GiB (for e820).
    u64 acpi_reserved_bytes() const { return ACPI_TABLES_SIZE; }

    // Every device's state, in a fixed order (the firmware tables are ROM,
    // rebuilt from the configuration). Loading also re-maps what the state
    // moved (the local APICs' MMIO windows).
    void visit_state(StateVisitor& v);

private:
    void wire_interrupts();
    void wire_pci(PhysicalMemory& memory, PortBus& ports);
    void wire_msrs(MsrBus& msrs);
    AcpiConfig acpi_config() const;
    SmbiosConfig smbios_config() const;
    void write_acpi_tables(PhysicalMemory& memory);
    // The ROM at the top of 4 GiB and in the BIOS window behind the PAM
    // registers, fw_cfg's DMA interface and the files SeaBIOS reads.
    void install_firmware(PhysicalMemory& memory, PortBus& ports);
    void write_smbios_tables(PhysicalMemory& memory);
    void set_isa_irq(unsigned irq, bool level);

    PcBoardConfig m_config;
    PcFirmware m_firmware;
    pc_memory_map::RamLayout m_layout;
    PhysicalMemory& m_memory;
    VirtualClock& m_clock;
    IsaIrqRouter m_irqs;
    I8259Pic m_pic;
    I8254Pit m_pit;
    Mc146818Rtc m_rtc;
    I8042 m_kbc;
    A20Gate m_a20;
    SystemControlPortA m_port92;
    PostCodePort m_post;
    CoprocessorError m_coprocessor_error;
    ApicBus m_apic_bus;
    std::vector<std::unique_ptr<LocalApic>> m_lapics;
    IoApic m_ioapic;
    Hpet m_hpet;
    PciHost m_pci;
    PiixIsaBridge m_piix;
    PiixIde m_ide;
    AcpiPm m_pm;
    FwCfg m_fw_cfg;
    AcpiTables m_acpi;
    IrqLine m_pit_irq0, m_rtc_irq8, m_hpet_irq0, m_hpet_irq8, m_sci_irq9;
    bool m_hpet_legacy = false;
    bool m_firmware_handlers_mapped = false;
    std::function<void()> m_on_power_off;
    std::function<void()> m_on_reset;
    std::function<void()> m_on_suspend;
    std::function<void()> m_on_wake;
};
