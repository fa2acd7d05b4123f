#include "platform/chipset/pci_host.h"

#include "mmu/base/state_visitor.h"

#include <cassert>

namespace {
constexpr u32 CONFIG_ENABLE = 1u << 31;
// CONFIG_ADDRESS bits that hold state: enable, bus, device, function,
// dword register (PCI Local Bus Spec 3.0, figure 3-2).
constexpr u32 CONFIG_ADDRESS_MASK = CONFIG_ENABLE | 0x00FFFFFC;

u32 all_ones(unsigned size)
{
    return size >= 4 ? 0xFFFFFFFF : (1u << (size * 8)) - 1;
}
} // namespace

I440fxHostBridge::I440fxHostBridge() : PciDevice(VENDOR, DEVICE, 0x060000, 0x02)
{
    // 82441FX datasheet: PMCCFG..DRB and SMRAM control live in 0x50-0x7F.
    for (u16 reg = 0x50; reg < 0x80; ++reg)
        set_writable(reg, 1, 0xFF);
    write_le(0x72, 1, 0x02); // SMRAM: C_BASE_SEG = 010 (A-segment)
    write_le(COMMAND, 2, COMMAND_MEMORY | COMMAND_MASTER);
    write_le(STATUS, 2, 0x0280); // fast back-to-back capable, medium DEVSEL
}

void I440fxHostBridge::set_shadow_memory(PhysicalMemory* memory)
{
    m_shadow_memory = memory;
    apply_pam();
}

void I440fxHostBridge::set_subsystem(u16 vendor, u16 id)
{
    write_le(SUBSYSTEM_VENDOR, 2, vendor);
    write_le(SUBSYSTEM_ID, 2, id);
}

void I440fxHostBridge::config_written(u16 offset, unsigned size)
{
    if (offset < PAM0 + PAM_COUNT && offset + size > PAM0)
        apply_pam();
}

void I440fxHostBridge::apply_pam()
{
    if (!m_shadow_memory)
        return;
    constexpr u64 BLOCK = PhysicalMemory::SHADOW_GRANULE;
    const auto apply = [this](GuestPhys base, u64 size, u8 field) {
        m_shadow_memory->set_shadow(base, size, field & 1, field & 2);
    };
    apply(0xF0000, 4 * BLOCK, static_cast<u8>(read_le(PAM0, 1) >> 4));
    for (u16 n = 1; n < PAM_COUNT; ++n) {
        const u8 pam = static_cast<u8>(read_le(static_cast<u16>(PAM0 + n), 1));
        const GuestPhys base = 0xC0000 + (n - 1) * 2 * BLOCK;
        apply(base, BLOCK, pam & 3);
        apply(base + BLOCK, BLOCK, (pam >> 4) & 3);
    }
}

void I440fxHostBridge::visit_state(StateVisitor& v)
{
    PciDevice::visit_state(v);
    if (v.loading())
        apply_pam();
}

PciHost::PciHost(Config config) : m_config(config)
{
    assert(config.ecam_buses >= 1 && config.ecam_buses <= 256);
    attach(0, 0, m_host_bridge);
}

void PciHost::attach(u8 slot, u8 function, PciDevice& device)
{
    assert(slot < SLOTS && function < FUNCTIONS && !m_devices[slot][function]);
    m_devices[slot][function] = &device;
    device.set_bar_listener([this](PciDevice& d, unsigned bar, std::optional<u64> old_base,
                                   std::optional<u64> new_base) {
        if (m_bar_listener)
            m_bar_listener(d, bar, old_base, new_base);
    });
    device.set_intx_listener([this] { update_pirqs(); });
}

PciDevice* PciHost::device(u8 bus, u8 slot, u8 function) const
{
    if (bus != 0 || slot >= SLOTS || function >= FUNCTIONS)
        return nullptr;
    // A function other than 0 exists only behind a multi-function device.
    if (function && m_devices[slot][0] &&
        !(m_devices[slot][0]->config_read(PciDevice::HEADER_TYPE, 1) & 0x80))
        return nullptr;
    return m_devices[slot][function];
}

u32 PciHost::read(u8 bus, u8 slot, u8 function, u16 reg, unsigned size) const
{
    PciDevice* d = device(bus, slot, function);
    if (!d || (reg & 3) + size > 4)
        return all_ones(size); // master abort: all ones
    return d->config_read(reg, size);
}

void PciHost::write(u8 bus, u8 slot, u8 function, u16 reg, unsigned size, u32 value)
{
    PciDevice* d = device(bus, slot, function);
    if (!d || (reg & 3) + size > 4)
        return;
    d->config_write(reg, size, value & all_ones(size));
}

void PciHost::update_pirqs()
{
    std::array<bool, 4> levels{};
    for (unsigned slot = 0; slot < SLOTS; ++slot)
        for (PciDevice* d : m_devices[slot])
            if (d && d->interrupt_pin() >= 1 && d->interrupt_pin() <= 4 && d->intx_asserted())
                levels[pirq_of(static_cast<u8>(slot), d->interrupt_pin())] = true;
    for (unsigned pirq = 0; pirq < 4; ++pirq) {
        if (levels[pirq] == m_pirq_levels[pirq])
            continue;
        m_pirq_levels[pirq] = levels[pirq];
        if (m_pirq_line)
            m_pirq_line(pirq, levels[pirq]);
    }
}

// ---- Configuration mechanism #1 ----

u64 PciHost::ConfigPorts::io_read(u64 offset, unsigned size)
{
    if (offset < 4) {
        if (offset == 0 && size == 4)
            return m_host.m_address;
        if (offset == 1 && size == 1 && m_host.m_reset_control)
            return m_host.m_reset_control->io_read(0, 1);
        return all_ones(size);
    }
    const u32 a = m_host.m_address;
    const unsigned byte = static_cast<unsigned>(offset - 4);
    if (!(a & CONFIG_ENABLE) || byte + size > 4)
        return all_ones(size);
    return m_host.read(static_cast<u8>(a >> 16), (a >> 11) & 31, (a >> 8) & 7,
                       static_cast<u16>((a & 0xFC) + byte), size);
}

void PciHost::ConfigPorts::io_write(u64 offset, unsigned size, u64 value)
{
    if (offset < 4) {
        // Only a dword access reaches CONFIG_ADDRESS; others are I/O cycles
        // on the bus, where the PIIX decodes 0xCF9.
        if (offset == 0 && size == 4)
            m_host.m_address = static_cast<u32>(value) & CONFIG_ADDRESS_MASK;
        else if (offset == 1 && size == 1 && m_host.m_reset_control)
            m_host.m_reset_control->io_write(0, 1, value);
        return;
    }
    const u32 a = m_host.m_address;
    const unsigned byte = static_cast<unsigned>(offset - 4);
    if (!(a & CONFIG_ENABLE) || byte + size > 4)
        return;
    m_host.write(static_cast<u8>(a >> 16), (a >> 11) & 31, (a >> 8) & 7,
                 static_cast<u16>((a & 0xFC) + byte), size, static_cast<u32>(value));
}

// ---- ECAM ----

u64 PciHost::Ecam::io_read(u64 offset, unsigned size)
{
    if (offset >= m_host.ecam_size())
        return size >= 8 ? ~0ull : all_ones(size);
    const u8 bus = static_cast<u8>(offset >> 20), slot = (offset >> 15) & 31,
             fn = (offset >> 12) & 7;
    const u16 reg = offset & 0xFFF;
    if (size == 8) // two dword configuration reads
        return m_host.read(bus, slot, fn, reg, 4) |
               (u64(m_host.read(bus, slot, fn, static_cast<u16>(reg + 4), 4)) << 32);
    return m_host.read(bus, slot, fn, reg, size);
}

void PciHost::Ecam::io_write(u64 offset, unsigned size, u64 value)
{
    if (offset >= m_host.ecam_size())
        return;
    const u8 bus = static_cast<u8>(offset >> 20), slot = (offset >> 15) & 31,
             fn = (offset >> 12) & 7;
    const u16 reg = offset & 0xFFF;
    if (size == 8) {
        m_host.write(bus, slot, fn, reg, 4, static_cast<u32>(value));
        m_host.write(bus, slot, fn, static_cast<u16>(reg + 4), 4, static_cast<u32>(value >> 32));
        return;
    }
    m_host.write(bus, slot, fn, reg, size, static_cast<u32>(value));
}

// ---- State ----

void PciHost::visit_state(StateVisitor& v)
{
    v.section("pci_host", 1);
    v.field("config_address", m_address);
    for (auto& slot : m_devices)
        for (PciDevice* d : slot) {
            if (!d)
                continue;
            const auto before = d->bar_addresses();
            d->visit_state(v);
            if (v.loading())
                d->notify_bar_changes(before);
        }
    if (v.loading())
        update_pirqs();
}
