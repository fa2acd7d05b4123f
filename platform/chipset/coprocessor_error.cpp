#include "platform/chipset/coprocessor_error.h"

#include "mmu/bus/port_bus.h"

void CoprocessorError::attach(PortBus& bus)
{
    bus.map(PORT, 1, this);
}

void CoprocessorError::set_irq(bool level)
{
    m_irq = level;
    if (m_irq_line)
        m_irq_line(level);
}

void CoprocessorError::set_ferr(bool asserted)
{
    if (asserted == m_ferr)
        return;
    m_ferr = asserted;
    if (asserted)
        set_irq(true);
    else
        m_ignne = false;
}

u64 CoprocessorError::io_read(u64 /*offset*/, unsigned size)
{
    return size_mask(size);
}

void CoprocessorError::io_write(u64 offset, unsigned /*size*/, u64 /*value*/)
{
    if (offset != 0)
        return;
    set_irq(false);
    if (m_ferr)
        m_ignne = true;
}

void CoprocessorError::visit_state(StateVisitor& v)
{
    v.section("coprocessor-error", 1);
    v.field("ferr", m_ferr);
    v.field("irq", m_irq);
    v.field("ignne", m_ignne);
}
