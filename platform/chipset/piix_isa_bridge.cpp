#include "platform/chipset/piix_isa_bridge.h"

#include "mmu/base/state_visitor.h"

namespace {
constexpr u8 PIRQ_DISABLE = 0x80;
constexpr u8 RC_SYSTEM_RESET = 1u << 1;
constexpr u8 RC_RESET_CPU = 1u << 2;

// ISA IRQs a PIRQ may be routed to (82371SB datasheet, PIRQRC): 3-7, 9-12, 14, 15.
bool routable(u8 irq)
{
    return irq >= 3 && irq <= 15 && irq != 8 && irq != 13;
}
} // namespace

PiixIsaBridge::PiixIsaBridge() : PciDevice(VENDOR, DEVICE, 0x060100, 0x00, true)
{
    // Chipset registers software may write (82371SB datasheet, table 2):
    // IORT, XBCS, PIRQRC[A:D], TOM, MSTAT, MBIRQ0, MBDMA, PCSC, APICBASE,
    // DLC, SMI control/enable/request and the timers.
    set_writable(0x4C, 1, 0xFF);
    set_writable(0x4E, 2, 0xFFFF);
    set_writable(PIRQRC, 4, 0x8F8F8F8F);
    set_writable(0x69, 1, 0xFF);
    set_writable(0x6A, 2, 0xFFFF);
    set_writable(0x70, 1, 0xFF);
    set_writable(0x76, 2, 0xFFFF);
    set_writable(0x78, 2, 0xFFFF);
    set_writable(0x80, 1, 0xFF);
    set_writable(0x82, 1, 0xFF);
    set_writable(0xA0, 4, 0xFFFFFFFF);
    set_writable(0xA4, 4, 0xFFFFFFFF);
    set_writable(0xA8, 4, 0xFFFFFFFF);
    set_writable(0xAC, 4, 0xFFFFFFFF);
    reset();
}

void PiixIsaBridge::reset()
{
    // Reset values from the 82371SB datasheet.
    write_le(COMMAND, 2, COMMAND_IO | COMMAND_MEMORY | COMMAND_MASTER);
    write_le(STATUS, 2, 0x0200); // medium DEVSEL
    write_le(0x4C, 1, 0x4D);     // IORT
    write_le(0x4E, 2, 0x0003);   // XBCS: RTC and keyboard controller decoded
    write_le(PIRQRC, 4, 0x80808080);
    write_le(0x69, 1, 0x02);   // TOM
    write_le(0x6A, 2, 0x0000); // MSTAT
    write_le(0x70, 1, 0x80);   // MBIRQ0 disabled
    write_le(0x76, 2, 0x0C0C); // MBDMA0/1 disabled
    write_le(0x78, 2, 0x0002); // PCSC
    write_le(0x80, 1, 0x00);   // APICBASE
    write_le(0x82, 1, 0x00);   // DLC
    write_le(0xA0, 1, 0x08);   // SMICNTL
    write_le(0xA8, 1, 0x0F);   // FTMR
    m_rc = 0;
    update_isa_irqs();
}

std::optional<u8> PiixIsaBridge::pirq_route(unsigned pirq) const
{
    const u8 reg = static_cast<u8>(read_le(static_cast<u16>(PIRQRC + pirq), 1));
    const u8 irq = reg & 0x0F;
    if ((reg & PIRQ_DISABLE) || !routable(irq))
        return std::nullopt;
    return irq;
}

u16 PiixIsaBridge::firmware_routing(const std::array<u8, 4>& irqs)
{
    u16 elcr = 0;
    for (unsigned pirq = 0; pirq < 4; ++pirq) {
        write_le(static_cast<u16>(PIRQRC + pirq), 1, irqs[pirq] & 0x0F);
        if (auto irq = pirq_route(pirq))
            elcr |= static_cast<u16>(1u << *irq);
    }
    update_isa_irqs();
    return elcr;
}

void PiixIsaBridge::set_pirq(unsigned pirq, bool level)
{
    if (pirq >= 4)
        return;
    m_pirq_levels[pirq] = level;
    update_isa_irqs();
}

void PiixIsaBridge::update_isa_irqs()
{
    u16 levels = 0;
    for (unsigned pirq = 0; pirq < 4; ++pirq)
        if (m_pirq_levels[pirq])
            if (auto irq = pirq_route(pirq))
                levels |= static_cast<u16>(1u << *irq);
    const u16 changed = levels ^ m_isa_levels;
    m_isa_levels = levels;
    if (!m_isa_irq)
        return;
    for (unsigned irq = 0; irq < 16; ++irq)
        if (changed & (1u << irq))
            m_isa_irq(irq, levels & (1u << irq));
}

void PiixIsaBridge::config_written(u16 offset, unsigned size)
{
    if (offset < PIRQRC + 4 && offset + size > PIRQRC)
        update_isa_irqs();
}

u64 PiixIsaBridge::ResetControl::io_read(u64 offset, unsigned size)
{
    (void)offset;
    (void)size;
    return m_bridge.m_rc;
}

void PiixIsaBridge::ResetControl::io_write(u64 offset, unsigned size, u64 value)
{
    (void)offset;
    (void)size;
    m_bridge.m_rc = static_cast<u8>(value) & RC_SYSTEM_RESET;
    if ((value & RC_RESET_CPU) && m_bridge.m_on_reset)
        m_bridge.m_on_reset((value & RC_SYSTEM_RESET) != 0);
}

void PiixIsaBridge::visit_state(StateVisitor& v)
{
    PciDevice::visit_state(v);
    v.section("piix_isa_bridge", 1);
    v.field("pirq_levels", m_pirq_levels);
    v.field("isa_levels", m_isa_levels);
    v.field("reset_control", m_rc);
}
