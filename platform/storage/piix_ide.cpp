#include "platform/storage/piix_ide.h"

#include "mmu/base/state_visitor.h"

PiixIde::PiixIde(GuestMemory memory)
    : PciDevice(VENDOR, DEVICE, 0x010180, 0x00), m_bus_masters{BusMasterDma(memory),
                                                                BusMasterDma(memory)}
{
    for (unsigned i = 0; i < 2; ++i) {
        m_channels[i] = std::make_unique<IdeChannel>(m_bus_masters[i]);
        m_bus_masters[i].set_master_enabled([this] { return command() & COMMAND_MASTER; });
    }
    define_bar(BMIBA_BAR, PciBarKind::Io, 16, &m_bus_master_ports);
    // IDETIM (primary, secondary), SIDETIM: timing registers the guest
    // programs; only IDETIM.IDE (bit 15) has an effect here.
    set_writable(IDETIM_PRIMARY, 2, 0xFFFF);
    set_writable(IDETIM_SECONDARY, 2, 0xFFFF);
    set_writable(0x44, 1, 0xFF);
    write_le(STATUS, 2, 0x0280); // medium DEVSEL, fast back-to-back
}

void PiixIde::attach_legacy_ports(PortBus& ports)
{
    ports.map(PRIMARY_PORTS, IdeChannel::COMMAND_PORTS, &m_legacy[0]);
    ports.map(PRIMARY_CONTROL, 1, &m_legacy[1]);
    ports.map(SECONDARY_PORTS, IdeChannel::COMMAND_PORTS, &m_legacy[2]);
    ports.map(SECONDARY_CONTROL, 1, &m_legacy[3]);
}

void PiixIde::program_as_firmware_does()
{
    const auto before = bar_addresses();
    write_le(IDETIM_PRIMARY, 2, IDETIM_DECODE_ENABLE);
    write_le(IDETIM_SECONDARY, 2, IDETIM_DECODE_ENABLE);
    write_le(BAR0 + 4 * BMIBA_BAR, 4, FIRMWARE_BMIBA | 1);
    write_le(COMMAND, 2, COMMAND_IO | COMMAND_MASTER);
    notify_bar_changes(before);
}

bool PiixIde::decoded(unsigned channel) const
{
    return read_le(channel ? IDETIM_SECONDARY : IDETIM_PRIMARY, 2) & IDETIM_DECODE_ENABLE;
}

u64 PiixIde::LegacyPorts::io_read(u64 offset, unsigned size)
{
    if (!m_ide.decoded(m_channel))
        return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1; // nobody answers
    IdeChannel& channel = *m_ide.m_channels[m_channel];
    return m_control ? channel.read_alt_status() : channel.read_command(offset, size);
}

void PiixIde::LegacyPorts::io_write(u64 offset, unsigned size, u64 value)
{
    if (!m_ide.decoded(m_channel))
        return;
    IdeChannel& channel = *m_ide.m_channels[m_channel];
    if (m_control)
        channel.write_device_control(static_cast<u8>(value));
    else
        channel.write_command(offset, size, value);
}

u64 PiixIde::BusMasterPorts::io_read(u64 offset, unsigned size)
{
    const unsigned channel = offset >= BusMasterDma::PORT_COUNT;
    return m_ide.m_bus_masters[channel].read(offset % BusMasterDma::PORT_COUNT, size);
}

void PiixIde::BusMasterPorts::io_write(u64 offset, unsigned size, u64 value)
{
    const unsigned channel = offset >= BusMasterDma::PORT_COUNT;
    m_ide.m_bus_masters[channel].write(offset % BusMasterDma::PORT_COUNT, size, value);
}

size_t PiixIde::in_flight() const
{
    return m_channels[0]->in_flight() + m_channels[1]->in_flight();
}

void PiixIde::drain()
{
    for (auto& channel : m_channels)
        channel->drain();
}

void PiixIde::visit_state(StateVisitor& v)
{
    PciDevice::visit_state(v);
    v.section("piix-ide", 1);
    for (unsigned i = 0; i < 2; ++i) {
        m_bus_masters[i].visit_state(v);
        m_channels[i]->visit_state(v);
    }
}
