#include "platform/chipset/pci_device.h"

#include "mmu/base/state_visitor.h"

#include <algorithm>
#include <cassert>

namespace {
constexpr u32 BAR_IO_SPACE = 1u << 0;
constexpr u32 BAR_MEM_64 = 2u << 1;
constexpr u32 BAR_MEM_PREFETCH = 1u << 3;
} // namespace

PciDevice::PciDevice(u16 vendor, u16 device, u32 class_code, u8 revision, bool multifunction)
{
    write_le(VENDOR_ID, 2, vendor);
    write_le(DEVICE_ID, 2, device);
    write_le(REVISION, 1, revision);
    write_le(CLASS_CODE, 3, class_code & 0xFFFFFF);
    write_le(HEADER_TYPE, 1, multifunction ? 0x80 : 0x00);
    // COMMAND: I/O, memory, bus master, parity, SERR, INTx disable.
    set_writable(COMMAND, 2,
                 COMMAND_IO | COMMAND_MEMORY | COMMAND_MASTER | (1u << 6) | (1u << 8) |
                     COMMAND_INTX_DISABLE);
    // STATUS: the error bits 15:11 and 8 are write-1-to-clear.
    set_write_one_to_clear(STATUS, 2, 0xF900);
    set_writable(CACHE_LINE, 1, 0xFF);
    set_writable(LATENCY_TIMER, 1, 0xFF);
    set_writable(INTERRUPT_LINE, 1, 0xFF);
}

u32 PciDevice::read_le(u16 offset, unsigned size) const
{
    u32 v = 0;
    for (unsigned i = 0; i < size; ++i)
        v |= u32(m_config[offset + i]) << (8 * i);
    return v;
}

void PciDevice::write_le(u16 offset, unsigned size, u32 value)
{
    for (unsigned i = 0; i < size; ++i)
        m_config[offset + i] = static_cast<u8>(value >> (8 * i));
}

void PciDevice::set_writable(u16 offset, unsigned size, u32 mask)
{
    for (unsigned i = 0; i < size; ++i)
        m_writable[offset + i] = static_cast<u8>(mask >> (8 * i));
}

void PciDevice::set_write_one_to_clear(u16 offset, unsigned size, u32 mask)
{
    for (unsigned i = 0; i < size; ++i)
        m_w1c[offset + i] = static_cast<u8>(mask >> (8 * i));
}

u32 PciDevice::config_read(u16 offset, unsigned size)
{
    if (offset + size > CONFIG_SIZE)
        return size >= 4 ? 0xFFFFFFFF : (1u << (size * 8)) - 1;
    return read_le(offset, size);
}

void PciDevice::config_write(u16 offset, unsigned size, u32 value)
{
    if (offset + size > CONFIG_SIZE)
        return;
    const auto before = bar_addresses();
    const bool intx_before = intx_asserted();
    for (unsigned i = 0; i < size; ++i) {
        const unsigned o = offset + i;
        const u8 b = static_cast<u8>(value >> (8 * i));
        m_config[o] = static_cast<u8>((m_config[o] & ~m_writable[o]) | (b & m_writable[o]));
        m_config[o] &= static_cast<u8>(~(b & m_w1c[o]));
    }
    config_written(offset, size);
    notify_bar_changes(before);
    if (intx_before != intx_asserted() && m_intx_listener)
        m_intx_listener();
}

void PciDevice::define_bar(unsigned index, PciBarKind kind, u64 size, IoDevice* handler,
                           bool prefetchable)
{
    assert(index < BAR_COUNT && (kind != PciBarKind::Memory64 || index + 1 < BAR_COUNT));
    assert(size && (size & (size - 1)) == 0);
    const u16 reg = static_cast<u16>(BAR0 + 4 * index);
    m_bars[index] = PciBar{kind, size, prefetchable, handler};
    switch (kind) {
    case PciBarKind::None:
        write_le(reg, 4, 0);
        set_writable(reg, 4, 0);
        return;
    case PciBarKind::Io:
        size = std::max<u64>(size, 4);
        m_bars[index].size = size;
        write_le(reg, 4, BAR_IO_SPACE);
        set_writable(reg, 4, static_cast<u32>(~(size - 1)) & ~3u);
        return;
    case PciBarKind::Memory32:
        size = std::max<u64>(size, 16);
        m_bars[index].size = size;
        write_le(reg, 4, prefetchable ? BAR_MEM_PREFETCH : 0);
        set_writable(reg, 4, static_cast<u32>(~(size - 1)) & ~0xFu);
        return;
    case PciBarKind::Memory64:
        size = std::max<u64>(size, 16);
        m_bars[index].size = size;
        write_le(reg, 4, BAR_MEM_64 | (prefetchable ? BAR_MEM_PREFETCH : 0));
        set_writable(reg, 4, static_cast<u32>(~(size - 1)) & ~0xFu);
        write_le(reg + 4, 4, 0);
        set_writable(reg + 4, 4, static_cast<u32>(~(size - 1) >> 32));
        m_bars[index + 1] = PciBar{};
        return;
    }
}

std::optional<u64> PciDevice::bar_address(unsigned index) const
{
    const PciBar& b = m_bars[index];
    const u16 reg = static_cast<u16>(BAR0 + 4 * index);
    const u32 low = read_le(reg, 4);
    switch (b.kind) {
    case PciBarKind::None:
        return std::nullopt;
    case PciBarKind::Io: {
        if (!(command() & COMMAND_IO))
            return std::nullopt;
        const u64 base = low & ~3u;
        if (base == 0 || base + b.size > 0x10000)
            return std::nullopt;
        return base;
    }
    case PciBarKind::Memory32: {
        if (!(command() & COMMAND_MEMORY))
            return std::nullopt;
        const u64 base = low & ~0xFu;
        if (base == 0 || base + b.size > (1ull << 32))
            return std::nullopt;
        return base;
    }
    case PciBarKind::Memory64: {
        if (!(command() & COMMAND_MEMORY))
            return std::nullopt;
        const u64 base = (u64(read_le(reg + 4, 4)) << 32) | (low & ~0xFu);
        // Beyond any physical address (e.g. all ones while sizing): unassigned.
        if (base == 0 || base + b.size > (1ull << 52))
            return std::nullopt;
        return base;
    }
    }
    return std::nullopt;
}

std::array<std::optional<u64>, PciDevice::BAR_COUNT> PciDevice::bar_addresses() const
{
    std::array<std::optional<u64>, BAR_COUNT> out;
    for (unsigned i = 0; i < BAR_COUNT; ++i)
        out[i] = bar_address(i);
    return out;
}

void PciDevice::notify_bar_changes(const std::array<std::optional<u64>, BAR_COUNT>& before)
{
    if (!m_bar_listener)
        return;
    for (unsigned i = 0; i < BAR_COUNT; ++i) {
        const auto now = bar_address(i);
        if (now != before[i])
            m_bar_listener(*this, i, before[i], now);
    }
}

void PciDevice::set_interrupt_pin(u8 pin)
{
    m_config[INTERRUPT_PIN] = pin;
}

void PciDevice::set_irq(bool level)
{
    const bool before = intx_asserted();
    m_irq_level = level;
    if (level)
        m_config[STATUS] |= STATUS_INTERRUPT;
    else
        m_config[STATUS] &= static_cast<u8>(~STATUS_INTERRUPT);
    if (before != intx_asserted() && m_intx_listener)
        m_intx_listener();
}

u8 PciDevice::add_capability(u8 id, std::span<const u8> body)
{
    const u8 offset = m_next_capability;
    assert(offset + 2 + body.size() <= 256);
    m_config[offset] = id;
    m_config[offset + 1] = 0;
    for (size_t i = 0; i < body.size(); ++i)
        m_config[offset + 2 + i] = body[i];
    // Link it at the end of the list.
    u16 link = CAPABILITIES;
    while (m_config[link])
        link = static_cast<u16>(m_config[link] + 1);
    m_config[link] = offset;
    m_config[STATUS] |= STATUS_CAPABILITIES;
    m_next_capability = static_cast<u8>((offset + 2 + body.size() + 3) & ~size_t(3));
    return offset;
}

void PciDevice::visit_state(StateVisitor& v)
{
    v.section("pci_device", 1);
    const std::array<u8, CONFIG_SIZE> before = m_config;
    v.field("config", m_config);
    v.field("irq_level", m_irq_level);
    if (!v.loading() || !v.ok())
        return;
    // A snapshot is input: the bits no config write can change (IDs, class,
    // header type, a BAR's kind and size bits, capabilities) stay the
    // device's, so a BAR cannot decode a size or a kind it was not defined
    // with. STATUS.Interrupt follows the loaded INTx level.
    for (unsigned i = 0; i < CONFIG_SIZE; ++i) {
        u8 fixed = static_cast<u8>(~(m_writable[i] | m_w1c[i]));
        if (i == STATUS)
            fixed &= static_cast<u8>(~STATUS_INTERRUPT);
        if ((m_config[i] ^ before[i]) & fixed) {
            m_config = before;
            return v.fail("a PCI device's read-only configuration byte " + std::to_string(i) +
                          " differs from this device's");
        }
    }
    if (m_irq_level)
        m_config[STATUS] |= STATUS_INTERRUPT;
    else
        m_config[STATUS] &= static_cast<u8>(~STATUS_INTERRUPT);
}
