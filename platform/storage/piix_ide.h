// The PIIX3 IDE controller (Intel 82371SB, function 1 of the PIIX at 00:01,
// 8086:7010; datasheet section 2.4), as a Hyper-V Generation 1 machine and
// QEMU's pc have it: two channels in compatibility mode at the legacy ports
// (primary 0x1F0-0x1F7 and 0x3F6 on IRQ 14, secondary 0x170-0x177 and
// 0x376 on IRQ 15), each decoded while its IDETIM register's IDE Decode
// Enable bit is set, and the bus-master registers in the I/O BAR at 0x20
// (BMIBA, 16 bytes: primary at +0, secondary at +8). Class 01 01 80: mass
// storage, IDE, bus-master capable, both channels in legacy mode (so no
// BARs 0-3 and no PCI interrupt pin).
#pragma once

#include "mmu/bus/port_bus.h"
#include "platform/chipset/pci_device.h"
#include "platform/storage/ide_channel.h"

#include <array>

class StateVisitor;

class PiixIde final : public PciDevice {
public:
    static constexpr u16 VENDOR = 0x8086, DEVICE = 0x7010;
    static constexpr unsigned BMIBA_BAR = 4; // config 0x20
    static constexpr u16 IDETIM_PRIMARY = 0x40, IDETIM_SECONDARY = 0x42;
    static constexpr u16 IDETIM_DECODE_ENABLE = 0x8000;
    static constexpr u16 PRIMARY_PORTS = 0x1F0, PRIMARY_CONTROL = 0x3F6;
    static constexpr u16 SECONDARY_PORTS = 0x170, SECONDARY_CONTROL = 0x376;
    static constexpr unsigned PRIMARY_IRQ = 14, SECONDARY_IRQ = 15;
    // Where firmware puts BMIBA (SeaBIOS's first PCI I/O address).
    static constexpr u16 FIRMWARE_BMIBA = 0xC000;

    explicit PiixIde(GuestMemory memory);

    IdeChannel& channel(unsigned index) { return *m_channels[index]; }
    // Claims the legacy command and control block ports.
    void attach_legacy_ports(PortBus& ports);
    // What firmware (SeaBIOS pciinit.c piix_ide_setup) leaves: both
    // channels decoded, BMIBA assigned, I/O and bus mastering on.
    void program_as_firmware_does();

    size_t in_flight() const;
    void drain();
    void visit_state(StateVisitor& v) override;

private:
    // The command block (8 ports) or the control block (1 port) of a channel.
    class LegacyPorts final : public IoDevice {
    public:
        LegacyPorts(PiixIde& ide, unsigned channel, bool control)
            : m_ide(ide), m_channel(channel), m_control(control)
        {
        }
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        PiixIde& m_ide;
        unsigned m_channel;
        bool m_control;
    };
    class BusMasterPorts final : public IoDevice {
    public:
        explicit BusMasterPorts(PiixIde& ide) : m_ide(ide) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        PiixIde& m_ide;
    };

    bool decoded(unsigned channel) const;

    std::array<BusMasterDma, 2> m_bus_masters;
    std::array<std::unique_ptr<IdeChannel>, 2> m_channels;
    std::array<LegacyPorts, 4> m_legacy{LegacyPorts{*this, 0, false}, LegacyPorts{*this, 0, true},
                                        LegacyPorts{*this, 1, false}, LegacyPorts{*this, 1, true}};
    BusMasterPorts m_bus_master_ports{*this};
};
