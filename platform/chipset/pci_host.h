// The PCI host bridge of bus 0: configuration mechanism #1 at ports
// 0xCF8-0xCFF (CONFIG_ADDRESS dword at 0xCF8, CONFIG_DATA bytes at
// 0xCFC-0xCFF, any size and byte offset; PCI Local Bus Spec 3.0, 3.2.2.3.2)
// and the PCIe enhanced configuration mechanism (ECAM/MMCONFIG: 1 MiB per
// bus, 4 KiB per function; PCIe Base Spec 7.2.2) as an MMIO window. It holds
// the functions on bus 0, reports BAR moves to the machine, and ORs the INTx
// pins of its devices into the four PIRQ lines with the usual swizzle
// (PIRQ = (slot + pin - 1) mod 4).
//
// Device 0 is the i440FX-like host bridge itself (I440fxHostBridge below);
// device 1 the PIIX3-like ISA bridge (piix_isa_bridge.h). Later devices
// (IDE, NIC, VMBus) attach at free slots.
//
// 0xCF9 is not ours: a byte access there reaches the PIIX reset control
// register (set_reset_control), as on the real chipset.
#pragma once

#include "mmu/bus/io_device.h"
#include "mmu/pc_memory_map.h"
#include "mmu/physical_memory.h"
#include "platform/chipset/pci_device.h"

#include <array>
#include <functional>
#include <optional>

class StateVisitor;

// Intel 82441FX (i440FX) PCI and memory controller, function 0 of slot 0.
// Its chipset registers (PAM, DRAM rows, SMRAM) keep what the guest writes.
// The PAM registers decide where reads and writes of 0xC0000-0xFFFFF go
// (RAM or the ROM / PCI side) once a machine with firmware hands the host
// bridge its memory (set_shadow_memory): SeaBIOS copies itself into that
// RAM and write-protects it. Without it (a kernel booted directly) they
// have no effect. DRAM rows and SMRAM (0x72: no SMM here) never do.
class I440fxHostBridge final : public PciDevice {
public:
    static constexpr u16 VENDOR = 0x8086, DEVICE = 0x1237;
    // PAM0..PAM6 (82441FX datasheet 3.2.18): PAM0 bits 5:4 for
    // 0xF0000-0xFFFFF; PAMn (n = 1..6) bits 1:0 and 5:4 for the two 16 KiB
    // blocks from 0xC0000 + (n - 1) * 32 KiB. Per field, bit 0 sends reads
    // to RAM and bit 1 writes.
    static constexpr u16 PAM0 = 0x59, PAM_COUNT = 7;
    I440fxHostBridge();

    void set_shadow_memory(PhysicalMemory* memory);
    // Subsystem vendor and ID (config 0x2C/0x2E); SeaBIOS recognises QEMU's
    // board by Red Hat's 0x1AF4:0x1100 on the host bridge.
    void set_subsystem(u16 vendor, u16 id);
    void apply_pam();

    // A load applies the loaded PAM registers.
    void visit_state(StateVisitor& v) override;

protected:
    void config_written(u16 offset, unsigned size) override;

private:
    PhysicalMemory* m_shadow_memory = nullptr;
};

class PciHost {
public:
    static constexpr u16 CONFIG_PORT_BASE = 0xCF8;
    static constexpr u32 CONFIG_PORT_COUNT = 8;
    static constexpr u64 DEFAULT_ECAM_BASE = pc_memory_map::ECAM_BASE;
    static constexpr unsigned DEFAULT_ECAM_BUSES = pc_memory_map::ECAM_BUSES;
    static constexpr unsigned SLOTS = 32, FUNCTIONS = 8;

    struct Config {
        u64 ecam_base = DEFAULT_ECAM_BASE;
        unsigned ecam_buses = DEFAULT_ECAM_BUSES; // 1..256; the window is buses x 1 MiB
    };

    // (device, BAR index, old base, new base): unmap the old range, map
    // bar.handler at the new one (I/O port or MMIO per bar.kind).
    using BarListener = PciDevice::BarListener;
    // A PIRQ line (0 = PIRQA ... 3 = PIRQD) changed level.
    using PirqLine = std::function<void(unsigned pirq, bool level)>;

    explicit PciHost(Config config);
    PciHost() : PciHost(Config{}) {}
    PciHost(const PciHost&) = delete;
    PciHost& operator=(const PciHost&) = delete;

    void attach(u8 slot, u8 function, PciDevice& device);
    PciDevice* device(u8 bus, u8 slot, u8 function) const;
    I440fxHostBridge& host_bridge() { return m_host_bridge; }

    void set_bar_listener(BarListener listener) { m_bar_listener = std::move(listener); }
    void set_pirq_line(PirqLine line) { m_pirq_line = std::move(line); }
    void set_reset_control(IoDevice* port_cf9) { m_reset_control = port_cf9; }

    // Map at CONFIG_PORT_BASE (CONFIG_PORT_COUNT ports).
    IoDevice& config_ports() { return m_ports; }
    // Map at ecam_base(), ecam_size() bytes.
    IoDevice& ecam() { return m_ecam; }
    u64 ecam_base() const { return m_config.ecam_base; }
    u64 ecam_size() const { return u64(m_config.ecam_buses) << 20; }
    unsigned ecam_buses() const { return m_config.ecam_buses; }

    u32 config_address() const { return m_address; }
    bool pirq_level(unsigned pirq) const { return m_pirq_levels[pirq]; }
    static unsigned pirq_of(u8 slot, u8 pin) { return (slot + pin - 1) & 3; }

    // CONFIG_ADDRESS and every attached function's config space; after a
    // load, BAR listeners hear of every BAR that decodes differently and
    // PIRQ lines are driven to the loaded levels.
    void visit_state(StateVisitor& v);

private:
    class ConfigPorts final : public IoDevice {
    public:
        explicit ConfigPorts(PciHost& host) : m_host(host) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        PciHost& m_host;
    };
    class Ecam final : public IoDevice {
    public:
        explicit Ecam(PciHost& host) : m_host(host) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        PciHost& m_host;
    };

    u32 read(u8 bus, u8 slot, u8 function, u16 reg, unsigned size) const;
    void write(u8 bus, u8 slot, u8 function, u16 reg, unsigned size, u32 value);
    void update_pirqs();

    Config m_config;
    I440fxHostBridge m_host_bridge;
    std::array<std::array<PciDevice*, FUNCTIONS>, SLOTS> m_devices{};
    ConfigPorts m_ports{*this};
    Ecam m_ecam{*this};
    IoDevice* m_reset_control = nullptr;
    BarListener m_bar_listener;
    PirqLine m_pirq_line;
    u32 m_address = 0;
    std::array<bool, 4> m_pirq_levels{};
};
