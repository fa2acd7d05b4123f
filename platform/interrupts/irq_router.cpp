#include "platform/interrupts/irq_router.h"

#include <cassert>

IrqLine IsaIrqRouter::input(unsigned irq)
{
    assert(irq < LINE_COUNT);
    assert(m_input_count[irq] < MAX_INPUTS);
    unsigned input = m_input_count[irq]++;
    return [this, irq, input](bool level) { set(irq, input, level); };
}

void IsaIrqRouter::set(unsigned irq, unsigned input, bool level)
{
    const u32 bit = 1u << input;
    const bool was = m_asserted[irq] != 0;
    if (level)
        m_asserted[irq] |= bit;
    else
        m_asserted[irq] &= ~bit;
    const bool now = m_asserted[irq] != 0;
    if (now == was)
        return; // no change, or another input still holds the line
    for (const Sink& sink : m_sinks)
        sink(irq, now);
}

void IsaIrqRouter::visit_state(StateVisitor& v)
{
    v.section("isa-irq-router", 1);
    v.field("asserted", m_asserted);
}
