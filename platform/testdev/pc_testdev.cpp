#include "platform/testdev/pc_testdev.h"

namespace {

constexpr u64 FLUSH_OFFSET = 4; // 0xE4-0xE7 within the data ports
constexpr unsigned DATA_BYTES = 4;

} // namespace

PcTestdev::PcTestdev(const std::function<IrqLine(unsigned irq)>& line)
{
    for (unsigned irq = 0; irq < m_lines.size(); ++irq)
        m_lines[irq] = line(irq);
}

void PcTestdev::attach(PortBus& ports, PhysicalMemory& memory)
{
    ports.map(DATA_PORT, DATA_PORT_COUNT, &m_data_ports);
    ports.map(IRQ_PORT, IRQ_PORT_COUNT, &m_irq_ports);
    memory.map_mmio(IOMEM_BASE, IOMEM_SIZE, &m_iomem);
}

// The data register's bytes are lanes 0-3 at ports 0xE0-0xE3 (and again at
// 0xE8-0xEB); bytes of an access that fall past lane 3 are dropped, and read
// as zero, as in QEMU.
u64 PcTestdev::DataPorts::io_read(u64 offset, unsigned size)
{
    if (offset / DATA_BYTES == FLUSH_OFFSET / DATA_BYTES)
        return size_mask(size); // the flush port is write-only
    const unsigned lane = offset % DATA_BYTES;
    u64 value = 0;
    for (unsigned i = 0; i < size && lane + i < DATA_BYTES; ++i)
        value |= u64((m_dev.m_data >> (8 * (lane + i))) & 0xFF) << (8 * i);
    return value;
}

void PcTestdev::DataPorts::io_write(u64 offset, unsigned size, u64 value)
{
    if (offset / DATA_BYTES == FLUSH_OFFSET / DATA_BYTES)
        return; // flush page: nothing to flush (see the header)
    const unsigned lane = offset % DATA_BYTES;
    for (unsigned i = 0; i < size && lane + i < DATA_BYTES; ++i) {
        const unsigned shift = 8 * (lane + i);
        m_dev.m_data = (m_dev.m_data & ~(0xFFu << shift)) | u32((value >> (8 * i)) & 0xFF) << shift;
    }
}

u64 PcTestdev::IrqPorts::io_read(u64, unsigned size) { return size_mask(size); }

void PcTestdev::IrqPorts::io_write(u64 offset, unsigned size, u64 value)
{
    (void)size; // QEMU takes byte writes; any width sets the line from its value
    if (offset >= m_dev.m_lines.size())
        return;
    const bool level = value != 0;
    if (m_dev.m_levels[offset] == level)
        return; // lines are driven on changes only
    m_dev.m_levels[offset] = level;
    m_dev.m_lines[offset](level);
}

u64 PcTestdev::IoMemory::io_read(u64 offset, unsigned size)
{
    u64 value = 0;
    for (unsigned i = 0; i < size && offset + i < m_bytes.size(); ++i)
        value |= u64(m_bytes[offset + i]) << (8 * i);
    return value;
}

void PcTestdev::IoMemory::io_write(u64 offset, unsigned size, u64 value)
{
    for (unsigned i = 0; i < size && offset + i < m_bytes.size(); ++i)
        m_bytes[offset + i] = static_cast<u8>(value >> (8 * i));
}
