#include "platform/interrupts/io_apic.h"

#include "mmu/base/state_visitor.h"

namespace {
// Register indices behind IOREGSEL (82093AA datasheet 3.2).
constexpr u8 IOAPICID = 0x00;
constexpr u8 IOAPICVER = 0x01;
constexpr u8 IOAPICARB = 0x02;
constexpr u8 IOREDTBL = 0x10;

constexpr u64 IOREGSEL = 0x00;
constexpr u64 IOWIN = 0x10;
} // namespace

IoApic::IoApic(ApicBus& bus, u8 id) : m_bus(bus), m_id(id & 0xF)
{
    reset();
    m_bus.add_eoi_listener([this](u8 vector) { eoi(vector); });
}

void IoApic::reset()
{
    m_select = 0;
    m_irr = 0;
    m_redirection.fill(MASKED);
}

u32 IoApic::read_register(u8 index) const
{
    switch (index) {
    case IOAPICID:
    case IOAPICARB: // arbitration ID follows the ID on this model
        return u32(m_id) << 24;
    case IOAPICVER:
        return VERSION;
    default:
        break;
    }
    if (index >= IOREDTBL && index < IOREDTBL + 2 * PINS) {
        const u64 entry = m_redirection[(index - IOREDTBL) / 2];
        return (index & 1) ? static_cast<u32>(entry >> 32) : static_cast<u32>(entry);
    }
    return 0;
}

void IoApic::write_register(u8 index, u32 value)
{
    if (index == IOAPICID) {
        m_id = (value >> 24) & 0xF;
        return;
    }
    if (index < IOREDTBL || index >= IOREDTBL + 2 * PINS)
        return; // version, arbitration and unused indices are read-only
    const unsigned pin = (index - IOREDTBL) / 2;
    u64& entry = m_redirection[pin];
    const u64 incoming = (index & 1) ? (u64(value) << 32) | (entry & 0xFFFFFFFF)
                                     : (entry & 0xFFFFFFFF00000000ull) | value;
    entry = (incoming & WRITABLE) | (entry & REMOTE_IRR);
    const u32 bit = 1u << pin;
    if (entry & LEVEL) {
        // A level input is a state: an asserted line is pending whatever
        // the entry said before.
        m_irr = (m_lines & bit) ? (m_irr | bit) : (m_irr & ~bit);
    } else {
        // Remote IRR means nothing for an edge-triggered pin.
        entry &= ~REMOTE_IRR;
        m_irr &= ~bit;
    }
    service(pin);
}

void IoApic::set_irq(unsigned pin, bool level)
{
    if (pin >= PINS)
        return;
    const u32 bit = 1u << pin;
    const bool was = m_lines & bit;
    m_lines = level ? (m_lines | bit) : (m_lines & ~bit);
    const u64 entry = m_redirection[pin];
    if (entry & LEVEL) {
        m_irr = level ? (m_irr | bit) : (m_irr & ~bit);
        if (level)
            service(pin);
    } else if (level && !was && !(entry & MASKED)) {
        m_irr |= bit;
        service(pin);
    }
}

void IoApic::service(unsigned pin)
{
    const u32 bit = 1u << pin;
    u64& entry = m_redirection[pin];
    if (!(m_irr & bit) || (entry & MASKED))
        return;
    const bool level = entry & LEVEL;
    if (level) {
        if (entry & REMOTE_IRR)
            return;
        entry |= REMOTE_IRR;
    } else {
        m_irr &= ~bit;
    }
    ApicMessage m;
    m.vector = static_cast<u8>(entry & 0xFF);
    m.mode = static_cast<ApicDeliveryMode>((entry >> 8) & 7);
    m.logical = entry & (1ull << 11);
    m.level_triggered = level;
    m.destination = static_cast<u32>(entry >> 56);
    // Remote IRR only tracks fixed and lowest-priority level interrupts.
    if (level && m.mode != ApicDeliveryMode::Fixed && m.mode != ApicDeliveryMode::LowestPriority)
        entry &= ~REMOTE_IRR;
    m_bus.send(m);
}

void IoApic::eoi(u8 vector)
{
    for (unsigned pin = 0; pin < PINS; ++pin) {
        u64& entry = m_redirection[pin];
        if (!(entry & REMOTE_IRR) || (entry & 0xFF) != vector)
            continue;
        entry &= ~REMOTE_IRR;
        // Still asserted: send it again (82093AA datasheet 3.2.4).
        service(pin);
    }
}

u64 IoApic::io_read(u64 offset, unsigned size)
{
    u32 value = 0;
    if (offset == IOREGSEL)
        value = m_select;
    else if (offset == IOWIN)
        value = read_register(m_select);
    const u64 ones = size_mask(size);
    return value & ones;
}

void IoApic::io_write(u64 offset, unsigned size, u64 value)
{
    (void)size;
    if (offset == IOREGSEL)
        m_select = static_cast<u8>(value);
    else if (offset == IOWIN)
        write_register(m_select, static_cast<u32>(value));
}

void IoApic::visit_state(StateVisitor& v)
{
    v.section("io_apic", 1);
    v.field("id", m_id);
    v.field("select", m_select);
    v.field("irr", m_irr);
    v.field("lines", m_lines);
    v.field("redirection", m_redirection);
    if (v.loading() && v.ok() && m_id > 0xF)
        v.fail("the IOAPIC's ID " + std::to_string(m_id) + " is wider than its four bits");
}
