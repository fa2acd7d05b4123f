#include "platform/board/pc_board.h"

#include "mmu/guest_memory.h"
#include "platform/firmware/firmware_files.h"
#include "platform/firmware/smbios_tables.h"

#include <algorithm>
#include <cassert>

namespace {

// ISA IRQ 0 reaches IOAPIC pin 2 (the MADT's interrupt source override);
// every other ISA IRQ n reaches pin n.
unsigned ioapic_pin_of_isa_irq(unsigned irq) { return irq == 0 ? 2 : irq; }

constexpr unsigned PIRQ_GSI_BASE = 16; // PIRQA-D on IOAPIC pins 16-19 (the DSDT's _PRT)

} // namespace

PcBoard::PcBoard(const PcBoardConfig& config, PhysicalMemory& memory, PortBus& ports,
                 MsrBus& msrs, VirtualClock& clock, PcFirmware firmware)
    : m_config(config), m_firmware(std::move(firmware)), m_layout(pc_memory_map::ram_layout(config.ram_bytes)), m_memory(memory),
      m_clock(clock), m_pit(clock), m_rtc(clock, config.rtc_start_time),
      m_ioapic(m_apic_bus, 0), m_hpet(clock), m_ide(GuestMemory(memory)), m_pm(clock),
      m_fw_cfg(static_cast<u16>(config.cpu_count), config.ram_bytes)
{
    for (unsigned i = 0; i < config.cpu_count; ++i) {
        LocalApic::Config apic;
        apic.apic_id = i;
        apic.bsp = i == 0;
        m_lapics.push_back(std::make_unique<LocalApic>(m_apic_bus, clock, apic));
    }
    m_apic_bus.update_windows(memory);
    for (auto& lapic : m_lapics)
        lapic->set_base_change_handler([this, &memory](u64) { m_apic_bus.update_windows(memory); });
    memory.map_mmio(IoApic::DEFAULT_BASE, IoApic::MMIO_SIZE, &m_ioapic);
    memory.map_mmio(Hpet::DEFAULT_BASE, Hpet::MMIO_SIZE, &m_hpet);

    m_pic.attach(ports);
    m_pit.attach(ports);
    m_rtc.attach(ports);
    m_kbc.attach(ports);
    m_port92.attach(ports);
    m_post.attach(ports);
    m_coprocessor_error.attach(ports);
    ports.map(AcpiPm::DEFAULT_BASE, AcpiPm::PORT_COUNT, &m_pm);
    ports.map(FwCfg::DEFAULT_BASE, FwCfg::PORT_COUNT, &m_fw_cfg);

    m_rtc.set_memory_size(m_layout.below_4g, m_layout.above_4g);

    wire_interrupts();
    wire_pci(memory, ports);
    wire_msrs(msrs);
    if (m_firmware.bios.empty()) {
        write_acpi_tables(memory);
        write_smbios_tables(memory);
    } else {
        install_firmware(memory, ports);
    }

    // Resets and power-off all end up at the machine's handlers.
    auto reset = [this] {
        if (m_on_reset)
            m_on_reset();
    };
    m_kbc.set_reset_handler(reset);
    m_port92.set_reset_handler(reset);
    m_piix.set_reset_handler([reset](bool) { reset(); });
    m_pm.set_sleep_handler([this](u8 slp_typ) {
        if (slp_typ == AcpiPm::SLP_TYP_S5 && m_on_power_off)
            m_on_power_off();
        if (slp_typ == AcpiPm::SLP_TYP_S3 && m_on_suspend)
            m_on_suspend();
    });
    m_pm.set_wake_handler([this] {
        if (m_on_wake)
            m_on_wake();
    });
    m_kbc.set_a20_handler([this](bool on) { m_a20.set_keyboard_controller(on); });
    m_port92.set_a20_handler([this](bool on) { m_a20.set_port92(on); });
}

void PcBoard::program_as_firmware_leaves_it(PhysicalMemory& memory)
{
    // The real-mode IVT: the timer now ticks, and a kernel that runs in real
    // mode with IF=1 (kvm-unit-tests realmode) takes IRQ 0 at vector 0x08
    // through the IVT; SeaBIOS's handlers acknowledge the 8259s, and with an
    // empty IVT the CPU would run from 0000:0000 and never send the EOI that
    // lets the next tick in. Every vector gets a handler in the BIOS ROM
    // segment F000: the 8259 vectors 0x08-0x0F and 0x70-0x77 an EOI to the
    // chip(s) (keeping AX), every other vector an IRET.
    static constexpr u8 HANDLERS[] = {
        // +0x00 slave IRQ: push ax; mov al, 0x20; out 0xA0, al; out 0x20, al; pop ax; iret
        0x50, 0xB0, 0x20, 0xE6, 0xA0, 0xE6, 0x20, 0x58, 0xCF,
        // +0x09 master IRQ: push ax; mov al, 0x20; out 0x20, al; pop ax; iret
        0x50, 0xB0, 0x20, 0xE6, 0x20, 0x58, 0xCF,
        // +0x10 anything else: iret
        0xCF};
    constexpr u32 SLAVE_IRQ = 0x00, MASTER_IRQ = 0x09, IRET = 0x10;
    if (!m_firmware_handlers_mapped) {
        memory.map_rom(FIRMWARE_HANDLERS_ADDRESS, HANDLERS);
        m_firmware_handlers_mapped = true;
    }
    constexpr u32 segment = 0xF000;
    const u32 offset = static_cast<u32>(FIRMWARE_HANDLERS_ADDRESS - (segment << 4));
    for (u32 vector = 0; vector < 256; ++vector) {
        u32 handler = IRET;
        if (vector >= 0x08 && vector <= 0x0F)
            handler = MASTER_IRQ;
        else if (vector >= 0x70 && vector <= 0x77)
            handler = SLAVE_IRQ;
        memory.write(vector * 4, 4, (segment << 16) | (offset + handler));
    }

    // SeaBIOS (src/hw/pic.c pic_setup) initialises both 8259s with vector
    // bases 0x08/0x70 (the PIC's power-on state here already is that) and
    // masks everything but the cascade; its setup code then unmasks the lines
    // it installs handlers for (enable_hwirq): IRQ 0 timer (src/clock.c),
    // 1 and 12 PS/2 (src/hw/ps2port.c), 6 floppy (src/hw/floppy.c), 8 RTC
    // (src/clock.c, CONFIG_RTC_TIMER), 13 FPU (src/misc.c), 14 ATA
    // (src/hw/ata.c). QEMU 7.2's SeaBIOS leaves exactly these masks for a
    // -kernel multiboot image (ROM bios_timer checks them on both).
    // The vector bases stay: the power-on state already is SeaBIOS's.
    constexpr u8 BIOS_MASTER_MASK = 0xB8; // IRQ 0, 1, 2, 6 open
    constexpr u8 BIOS_SLAVE_MASK = 0x8E;  // IRQ 8, 12, 13, 14 open
    m_pic.master_ports().io_write(1, 1, BIOS_MASTER_MASK);
    m_pic.slave_ports().io_write(1, 1, BIOS_SLAVE_MASK);
    // SeaBIOS (src/hw/timer.c pit_setup): counter 0, LSB then MSB, mode 2,
    // binary, count 0 = 65536 (18.2 Hz).
    constexpr u8 COUNTER0_MODE2_LSB_MSB = 0x34;
    m_pit.counter_ports().io_write(3, 1, COUNTER0_MODE2_LSB_MSB);
    m_pit.counter_ports().io_write(0, 1, 0x00);
    m_pit.counter_ports().io_write(0, 1, 0x00);
}

u32 PcBoard::resume_as_firmware_does(PhysicalMemory& memory)
{
    // With real firmware the tables are where it put them; a resume through
    // it (the CMOS shutdown status) is not modelled: the machine resets.
    if (!m_firmware.bios.empty())
        return 0;
    // SeaBIOS pic_setup (src/hw/pic.c): ICW1-ICW4 to both chips, vector
    // bases 0x08/0x70, everything masked but the cascade.
    for (u8 v : {0x11, 0x08, 0x04, 0x01})
        m_pic.master_ports().io_write(v == 0x11 ? 0 : 1, 1, v);
    for (u8 v : {0x11, 0x70, 0x02, 0x01})
        m_pic.slave_ports().io_write(v == 0x11 ? 0 : 1, 1, v);
    m_pic.master_ports().io_write(1, 1, 0xFB);
    m_pic.slave_ports().io_write(1, 1, 0xFF);
    for (auto& lapic : m_lapics)
        lapic->reset();
    // The FACS the OS wrote its vector into: FACS offset 12, 32 bits.
    u32 vector = 0;
    for (const auto& [signature, offset] : m_acpi.index)
        if (signature == "FACS")
            vector = static_cast<u32>(memory.read(m_acpi.tables_address + offset + 12, 4));
    return vector;
}

void PcBoard::set_isa_irq(unsigned irq, bool level)
{
    m_pic.set_irq(irq, level);
    m_ioapic.set_irq(ioapic_pin_of_isa_irq(irq), level);
}

void PcBoard::wire_interrupts()
{
    // Every ISA line goes to both the 8259 pair and the IOAPIC; the guest
    // masks the one it does not use.
    m_irqs.add_sink([this](unsigned irq, bool level) { set_isa_irq(irq, level); });

    // The 8259's INTR reaches the BSP's LINT0 (ExtINT in virtual-wire mode).
    LocalApic& bsp = *m_lapics[0];
    bsp.set_pic(&m_pic);
    m_pic.set_output_line([&bsp](bool level) { bsp.set_lint(0, level); });

    // PIT IRQ0 and RTC IRQ8 are disconnected while the HPET's legacy
    // replacement route drives those lines instead (IA-PC HPET spec 2.4).
    m_pit_irq0 = m_irqs.input(0);
    m_rtc_irq8 = m_irqs.input(Mc146818Rtc::IRQ);
    m_hpet_irq0 = m_irqs.input(0);
    m_hpet_irq8 = m_irqs.input(Mc146818Rtc::IRQ);
    m_pit.set_irq_line([this](bool level) { m_pit_irq0(level && !m_hpet_legacy); });
    m_rtc.set_irq_line([this](bool level) {
        m_rtc_irq8(level && !m_hpet_legacy);
        m_pm.set_rtc_irq(level); // the RTC's alarm is an ACPI wake event
    });
    m_hpet.set_legacy_handler([this](bool on) {
        m_hpet_legacy = on;
        if (on) {
            m_pit_irq0(false);
            m_rtc_irq8(false);
        }
    });
    m_hpet.set_irq_line([this](u32 gsi, bool level) {
        if (gsi == Hpet::LEGACY_TIMER0_GSI)
            m_hpet_irq0(level);
        else if (gsi == Hpet::LEGACY_TIMER1_GSI)
            m_hpet_irq8(level);
        else
            m_ioapic.set_irq(gsi, level);
    });
    m_kbc.set_keyboard_irq_line(m_irqs.input(I8042::KEYBOARD_IRQ));
    m_kbc.set_mouse_irq_line(m_irqs.input(I8042::MOUSE_IRQ));
    m_coprocessor_error.set_irq_line(m_irqs.input(CoprocessorError::IRQ));
    m_sci_irq9 = m_irqs.input(9);
    m_pm.set_sci_line([this](bool level) { m_sci_irq9(level); });
}

void PcBoard::wire_pci(PhysicalMemory& memory, PortBus& ports)
{
    m_pci.attach(1, 0, m_piix);
    ports.map(PciHost::CONFIG_PORT_BASE, PciHost::CONFIG_PORT_COUNT, &m_pci.config_ports());
    // The ECAM window lies in the PCI hole, above any low RAM.
    memory.map_mmio(m_pci.ecam_base(), m_pci.ecam_size(), &m_pci.ecam());
    m_pci.set_reset_control(&m_piix.reset_control());
    m_pci.set_pirq_line([this](unsigned pirq, bool level) {
        m_ioapic.set_irq(PIRQ_GSI_BASE + pirq, level);
        m_piix.set_pirq(pirq, level);
    });
    m_piix.set_isa_irq_line([this](unsigned irq, bool level) { set_isa_irq(irq, level); });
    // PCI BARs decode where the guest puts them: I/O BARs on the port bus,
    // memory BARs as MMIO. A range that collides with another device's does
    // not decode (try_map), so no BAR value can break the host.
    m_pci.set_bar_listener([&memory, &ports](PciDevice& device, unsigned index,
                                             std::optional<u64> old_base,
                                             std::optional<u64> new_base) {
        const PciBar& bar = device.bar(index);
        if (!bar.handler)
            return;
        if (bar.kind == PciBarKind::Io) {
            if (old_base)
                ports.unmap(static_cast<u16>(*old_base), bar.handler);
            if (new_base)
                (void)ports.try_map(static_cast<u16>(*new_base), static_cast<u32>(bar.size),
                                    bar.handler);
        } else {
            if (old_base)
                memory.unmap_mmio(*old_base, bar.handler);
            if (new_base)
                (void)memory.try_map_mmio(*new_base, bar.size, bar.handler);
        }
    });
    // The IDE function, in compatibility mode on IRQ 14 and 15, set up as
    // firmware leaves it (its BAR reaches the port bus through the listener).
    m_pci.attach(1, 1, m_ide);
    m_ide.attach_legacy_ports(ports);
    m_ide.channel(0).set_irq_line(m_irqs.input(PiixIde::PRIMARY_IRQ));
    m_ide.channel(1).set_irq_line(m_irqs.input(PiixIde::SECONDARY_IRQ));
    m_ide.program_as_firmware_does();
    // Route PIRQs as firmware does and mark those lines level-triggered.
    const u16 elcr = m_piix.firmware_routing();
    m_pic.elcr_ports().io_write(0, 2, elcr);
}

void PcBoard::wire_msrs(MsrBus& msrs)
{
    // IA32_APIC_BASE, IA32_TSC_DEADLINE and the x2APIC range belong to the
    // LAPIC of the vCPU that executes RDMSR/WRMSR.
    auto reader = [this](unsigned vcpu, u32 index) -> std::optional<u64> {
        return vcpu < m_apic_bus.size() ? m_apic_bus.apic(vcpu).read_msr(index) : std::nullopt;
    };
    auto writer = [this](unsigned vcpu, u32 index, u64 value) {
        return vcpu < m_apic_bus.size() && m_apic_bus.apic(vcpu).write_msr(index, value);
    };
    msrs.map(LocalApic::MSR_APIC_BASE, 1, reader, writer);
    msrs.map(LocalApic::MSR_TSC_DEADLINE, 1, reader, writer);
    msrs.map(LocalApic::MSR_X2APIC_FIRST, LocalApic::MSR_X2APIC_COUNT, reader, writer);
}

SmbiosConfig PcBoard::smbios_config() const
{
    SmbiosConfig smbios;
    smbios.cpu_count = m_config.cpu_count;
    smbios.ram_ranges.push_back({0, m_layout.below_4g});
    if (m_layout.above_4g)
        smbios.ram_ranges.push_back({pc_memory_map::RAM_ABOVE_4G_BASE, m_layout.above_4g});
    return smbios;
}

void PcBoard::write_smbios_tables(PhysicalMemory& memory)
{
    memory.map_rom(SMBIOS_ADDRESS, build_smbios_tables(smbios_config(), SMBIOS_ADDRESS).bytes);
}

AcpiConfig PcBoard::acpi_config() const
{
    AcpiConfig acpi;
    acpi.cpu_count = m_config.cpu_count;
    acpi.vmbus = m_config.vmbus;
    acpi.ecam_base = m_pci.ecam_base();
    acpi.ecam_buses = m_pci.ecam_buses();
    // The root bridge forwards the PCI hole (less the ECAM window, which is
    // the chipset's) and the 64-bit window above RAM, as QEMU's pc does.
    acpi.pci_mmio32.clear();
    const GuestPhys hole = pc_memory_map::pci_hole_start(m_layout);
    if (hole < acpi.ecam_base)
        acpi.pci_mmio32.push_back({static_cast<u32>(hole), static_cast<u32>(acpi.ecam_base - 1)});
    const GuestPhys after_ecam = std::max(hole, acpi.ecam_base + m_pci.ecam_size());
    acpi.pci_mmio32.push_back(
        {static_cast<u32>(after_ecam), static_cast<u32>(pc_memory_map::PCI_HOLE_END - 1)});
    acpi.pci_mmio64_base = pc_memory_map::pci_hole64_start(m_layout);
    acpi.pci_mmio64_size = pc_memory_map::PCI_HOLE64_SIZE;
    return acpi;
}

void PcBoard::write_acpi_tables(PhysicalMemory& memory)
{
    const AcpiConfig acpi = acpi_config();
    // The tables go at the top of RAM below 4 GiB.
    const GuestPhys tables_at = (m_layout.below_4g - ACPI_TABLES_SIZE) & ~0x3Full;
    m_acpi = build_acpi_tables(acpi, tables_at, RSDP_ADDRESS);
    // The board sizes RAM; a machine too small for the tables is a bug here.
    const bool written = GuestMemory(memory).write(m_acpi.tables_address, m_acpi.tables);
    assert(written);
    static_cast<void>(written);
    // The RSDP sits in the BIOS area, which is ROM on a PC.
    memory.map_rom(m_acpi.rsdp_address, m_acpi.rsdp);
}

void PcBoard::install_firmware(PhysicalMemory& memory, PortBus& ports)
{
    const std::vector<u8>& bios = m_firmware.bios;
    // The reset vector (0xFFFFFFF0) is in the image's last 16 bytes.
    memory.map_rom(pc_memory_map::RAM_ABOVE_4G_BASE - bios.size(), bios);
    // Its last 128 KiB again at 0xE0000-0xFFFFF (QEMU's "isa-bios"), read
    // there while the PAM registers send reads to the ROM side, as they do
    // from reset; SeaBIOS then copies itself into the RAM behind it.
    constexpr size_t ISA_BIOS_SIZE = 128 * 1024;
    const size_t low = std::min(bios.size(), ISA_BIOS_SIZE);
    memory.map_rom(pc_memory_map::HIGH_RAM_START - low,
                   std::span<const u8>(bios).subspan(bios.size() - low));
    I440fxHostBridge& bridge = m_pci.host_bridge();
    bridge.set_shadow_memory(&memory);
    // SeaBIOS takes its QEMU paths (fw_cfg, the table loader) only on a host
    // bridge with QEMU's subsystem IDs (src/fw/paravirt.c qemu_detect).
    constexpr u16 REDHAT_VENDOR = 0x1AF4, QEMU_SUBSYSTEM = 0x1100;
    bridge.set_subsystem(REDHAT_VENDOR, QEMU_SUBSYSTEM);
    // No SMM: SeaBIOS sets it up only with a PIIX4 power-management function
    // (8086:7113, src/fw/smm.c smm_device_setup), which this board has not.

    m_fw_cfg.enable_dma(GuestMemory(memory));
    ports.map(FwCfg::DMA_BASE, FwCfg::DMA_PORT_COUNT, &m_fw_cfg.dma_ports());
    m_fw_cfg.add_file("etc/e820", e820_file(m_layout));
    // The tables at address 0: every pointer between them is an offset the
    // table loader turns into an address.
    m_acpi = build_acpi_tables(acpi_config(), 0, 0);
    for (FirmwareFile& f : acpi_firmware_files(m_acpi))
        m_fw_cfg.add_file(f.name, std::move(f.data));
    for (FirmwareFile& f : smbios_firmware_files(build_smbios_tables(smbios_config(), 0)))
        m_fw_cfg.add_file(f.name, std::move(f.data));
    // With no VGA, SeaBIOS's serial console shows int 10h text on COM1
    // (src/sercon.c), which is how boot menus and loaders become visible.
    constexpr u16 COM1 = 0x3F8;
    m_fw_cfg.add_file("etc/sercon-port", {COM1 & 0xFF, COM1 >> 8});
    // Boot order, as QEMU's pc writes it for SeaBIOS (src/boot.c boot_init):
    // 0x3D bits 3:0 the first device, 7:4 the second, 0x38 bits 7:4 the
    // third (1 floppy, 2 hard disk, 3 CD-ROM); 0x38 bit 0 clear: check the
    // floppy boot signature. Hard disk, CD-ROM, then floppy.
    m_rtc.set_nvram(0x3D, 0x32);
    m_rtc.set_nvram(0x38, 0x10);
    const u32 wait = m_firmware.boot_fail_wait_ms;
    m_fw_cfg.add_file("etc/boot-fail-wait", {static_cast<u8>(wait), static_cast<u8>(wait >> 8),
                                             static_cast<u8>(wait >> 16), static_cast<u8>(wait >> 24)});
}

void PcBoard::visit_state(StateVisitor& v)
{
    v.section("pc-board", 1);
    v.field("hpet_legacy", m_hpet_legacy);
    m_irqs.visit_state(v);
    m_pic.visit_state(v);
    m_pit.visit_state(v);
    m_rtc.visit_state(v);
    m_kbc.visit_state(v);
    m_a20.visit_state(v);
    m_port92.visit_state(v);
    m_post.visit_state(v);
    m_coprocessor_error.visit_state(v);
    for (auto& lapic : m_lapics)
        lapic->visit_state(v);
    m_ioapic.visit_state(v);
    m_hpet.visit_state(v);
    m_pci.visit_state(v);
    m_piix.visit_state(v);
    m_pm.visit_state(v);
    m_fw_cfg.visit_state(v);
    if (v.loading())
        m_apic_bus.update_windows(m_memory);
}
