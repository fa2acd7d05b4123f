// QEMU's pc-testdev (`-device pc-testdev`), the ISA device kvm-unit-tests
// drive for what a bare-metal test cannot do alone: a 32-bit scratch
// register in I/O space (ports 0xE0-0xE3, and byte-wise at 0xE8-0xEB), a
// page-flush port (0xE4, a no-op here: it exists to make KVM re-fault a
// page, and viridian has no host page protection to reset), a write-only
// port per ISA IRQ line that sets the line's level (0x2000 + n, n < 16),
// and 64 KiB of memory-like MMIO at 0xFF000000 (accesses that reach a
// device model rather than RAM, for the instruction emulation tests).
// Behind `--pc-testdev`, as QEMU has it only on request.
#pragma once

#include "mmu/bus/io_device.h"
#include "mmu/physical_memory.h"
#include "mmu/bus/port_bus.h"
#include "platform/interrupts/irq_router.h"

#include <array>
#include <functional>
#include <vector>

class PcTestdev {
public:
    static constexpr u16 DATA_PORT = 0xE0;      // 0xE0-0xE3 data, 0xE4 flush, 0xE8-0xEB data
    static constexpr u32 DATA_PORT_COUNT = 12;
    static constexpr u16 IRQ_PORT = 0x2000;     // 0x2000 + n: ISA IRQ n's level
    static constexpr u32 IRQ_PORT_COUNT = 24;   // QEMU's window; lines 16-23 go nowhere
    static constexpr GuestPhys IOMEM_BASE = 0xFF000000;
    static constexpr u64 IOMEM_SIZE = 0x10000;

    // `line` gives the input of ISA IRQ n (0-15) the device drives.
    explicit PcTestdev(const std::function<IrqLine(unsigned irq)>& line);
    void attach(PortBus& ports, PhysicalMemory& memory);

    u32 data() const { return m_data; }

private:
    class DataPorts final : public IoDevice {
    public:
        explicit DataPorts(PcTestdev& d) : m_dev(d) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        PcTestdev& m_dev;
    };
    class IrqPorts final : public IoDevice {
    public:
        explicit IrqPorts(PcTestdev& d) : m_dev(d) {}
        u64 io_read(u64, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        PcTestdev& m_dev;
    };
    class IoMemory final : public IoDevice {
    public:
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        std::vector<u8> m_bytes = std::vector<u8>(IOMEM_SIZE, 0);
    };

    u32 m_data = 0;
    std::array<IrqLine, 16> m_lines;
    std::array<bool, 16> m_levels{};
    DataPorts m_data_ports{*this};
    IrqPorts m_irq_ports{*this};
    IoMemory m_iomem;
};
