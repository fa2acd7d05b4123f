#include "platform/chipset/port92_reset.h"

#include "mmu/bus/port_bus.h"

namespace {

constexpr u8 PORT92_FAST_RESET = 1 << 0;
constexpr u8 PORT92_A20 = 1 << 1;

u64 ones(unsigned size)
{
    return size_mask(size);
}

} // namespace

// --- A20 -----------------------------------------------------------------------

void A20Gate::set(bool& input, bool value)
{
    const bool before = enabled();
    input = value;
    if (enabled() != before && m_sink)
        m_sink(enabled());
}

void A20Gate::visit_state(StateVisitor& v)
{
    v.section("a20-gate", 1);
    v.field("keyboard_controller", m_keyboard_controller);
    v.field("port92", m_port92);
}

// --- port 0x92 -------------------------------------------------------------------

void SystemControlPortA::attach(PortBus& bus)
{
    bus.map(PORT, 1, this);
}

u64 SystemControlPortA::io_read(u64 offset, unsigned size)
{
    // One byte register; the rest of a wider access is unclaimed bus.
    if (offset != 0)
        return ones(size);
    return (ones(size) & ~0xFFull) | m_value;
}

void SystemControlPortA::io_write(u64 offset, unsigned /*size*/, u64 value)
{
    if (offset != 0)
        return;
    const u8 old = m_value;
    m_value = static_cast<u8>(value);
    if ((old ^ m_value) & PORT92_A20 && m_a20)
        m_a20(m_value & PORT92_A20);
    // A 0 -> 1 transition of bit 0 pulses the CPU's reset.
    if (!(old & PORT92_FAST_RESET) && (m_value & PORT92_FAST_RESET) && m_reset)
        m_reset();
}

void SystemControlPortA::visit_state(StateVisitor& v)
{
    v.section("port92", 1);
    v.field("value", m_value);
}

// --- port 0x80 --------------------------------------------------------------------

void PostCodePort::attach(PortBus& bus)
{
    bus.map(PORT, 1, this);
}

u64 PostCodePort::io_read(u64 offset, unsigned size)
{
    if (offset != 0)
        return ones(size);
    return (ones(size) & ~0xFFull) | m_code;
}

void PostCodePort::io_write(u64 offset, unsigned /*size*/, u64 value)
{
    if (offset != 0)
        return;
    m_code = static_cast<u8>(value);
    if (m_sink)
        m_sink(m_code);
}

void PostCodePort::visit_state(StateVisitor& v)
{
    v.section("post-code-port", 1);
    v.field("code", m_code);
}
