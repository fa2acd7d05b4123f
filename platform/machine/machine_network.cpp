// The machine's network adapters: --nic's (an e1000 at 00:03.0 or a
// synthetic adapter on VMBus) and the synthetic adapters added and removed
// while the guest runs (QMP device_add/device_del; docs/network.md
// "Adapters added at run time").
#include "platform/machine/machine.h"

#include <algorithm>

namespace {

// Fixed, so that a guest sees the same adapter on every boot; an added
// adapter's differs in its last bytes by its tag (Linux takes a second
// offer with the same instance for a duplicate and ignores it).
vmbus::Guid netvsc_instance(u32 tag)
{
    vmbus::Guid instance = vmbus::parse_guid("3c9d6a1e-5b27-4f80-9e41-d2a7b8c05f14");
    instance[14] ^= static_cast<u8>(tag >> 8);
    instance[15] ^= static_cast<u8>(tag);
    return instance;
}

} // namespace

void Machine::attach_nic()
{
    attach_boot_nic();
    // Then those added at run time before the last reboot, in their order.
    for (const MachineNic& added : m_config.added_nics) {
        m_netvsc.push_back(make_netvsc(added, m_next_nic_tag));
        route_frames(*added.backend, m_next_nic_tag++);
    }
}

void Machine::attach_boot_nic()
{
    if (!m_config.nic)
        return;
    // QEMU's pc puts the first NIC at 00:03.0 and SeaBIOS its BARs here;
    // a kernel booted without firmware finds them assigned the same way.
    constexpr u8 NIC_SLOT = 3;
    constexpr u32 NIC_MMIO = 0xFEBC0000;
    constexpr u16 NIC_IO = 0xC040;
    std::shared_ptr<NetBackend> backend = m_config.nic->backend;
    if (m_config.nic->model == MachineNic::Model::Netvsc) {
        // Offered before the added ones (Machine::create refused it without
        // the enlightenments), so that its relid does not depend on them.
        m_netvsc.push_back(make_netvsc(*m_config.nic, 0));
    } else {
        m_nic = std::make_shared<E1000>(GuestMemory(m_memory), m_clock, m_config.nic->mac);
        m_board->attach_pci_device(NIC_SLOT, *m_nic);
        m_nic->program_as_firmware_does(NIC_MMIO, NIC_IO);
        m_nic->set_link_up(backend->link_up()); // the cable as the backend has it at power-on
        m_nic->set_transmit([backend](std::span<const u8> frame) { backend->send(frame); });
    }
    route_frames(*backend, 0);
}

std::unique_ptr<Machine::SyntheticNic> Machine::make_netvsc(const MachineNic& nic, u32 tag)
{
    auto adapter = std::make_unique<SyntheticNic>();
    SyntheticNic* const self = adapter.get(); // the device's links outlive no adapter
    adapter->nic = nic;
    adapter->tag = tag;
    // Its GPADLs are the server's; one sub-channel per further vCPU for
    // vRSS, as Hyper-V offers them.
    Netvsp::Links links{[this](u32 relid) { m_vmbus->signal_guest(relid); },
                        [this](u32 primary, u16 count) { return m_vmbus->offer_sub_channels(primary, count); }};
    adapter->device = std::make_unique<Netvsp>(
        m_memory, nic.mac, [this, self](u32 handle) { return m_vmbus->gpadl_pages(self->relid, handle); },
        std::move(links), static_cast<u16>(m_config.cpu_count - 1));
    std::shared_ptr<NetBackend> backend = nic.backend;
    adapter->device->set_link_up(backend->link_up());
    adapter->device->set_transmit([backend](std::span<const u8> frame) { backend->send(frame); });
    VmbusServer::Offer offer;
    offer.type = vmbus::parse_guid(nvsp::NIC_CLASS_GUID);
    offer.instance = netvsc_instance(tag);
    adapter->relid = m_vmbus->add_channel(offer, *adapter->device);
    return adapter;
}

void Machine::route_frames(NetBackend& backend, u32 tag)
{
    // Frames arrive on the backend's thread and are taken to this one.
    // The receiver keeps the machine's own queue alive: a copy of it may
    // still be called after this machine ended (the host's queue outlives
    // every machine). What it posts then is never run.
    backend.set_receiver([queue = m_commands, keep = m_own_commands, tag,
                          machine = std::weak_ptr<Machine*>(m_alive)](std::vector<u8> frame) {
        queue->post_device_work([machine, tag, frame = std::move(frame)]() mutable {
            if (std::shared_ptr<Machine*> alive = machine.lock())
                (*alive)->host_input({HostInput::Kind::NetFrame, tag, std::move(frame)});
        });
    });
}

Netvsp* Machine::netvsc(u32 tag) const
{
    for (const auto& adapter : m_netvsc)
        if (adapter->tag == tag)
            return adapter->device.get();
    return nullptr;
}

std::optional<RxFilter> Machine::nic_rx_filter() const
{
    if (const Netvsp* adapter = netvsc(0))
        return adapter->rx_filter();
    if (m_nic)
        return m_nic->rx_filter();
    return std::nullopt;
}

std::optional<std::string> Machine::hot_add_nic(const MachineNic& nic)
{
    if (!m_vmbus)
        return "a synthetic network adapter needs the enlightenments";
    if (nic.model != MachineNic::Model::Netvsc || !nic.backend || nic.id.empty())
        return "only a synthetic adapter with an id can be added";
    if (!m_commands)
        return "the machine has no queue for network frames"; // the frontend always gives one
    const bool taken = std::any_of(m_config.added_nics.begin(), m_config.added_nics.end(),
                                   [&nic](const MachineNic& n) { return n.id == nic.id; });
    if (taken)
        return "Duplicate device ID '" + nic.id + "'";
    const u32 tag = m_next_nic_tag++;
    std::unique_ptr<SyntheticNic> adapter = make_netvsc(nic, tag);
    if (adapter->relid == 0)
        return "no VMBus channel is free for another adapter";
    m_netvsc.push_back(std::move(adapter));
    m_config.added_nics.push_back(nic);
    route_frames(*nic.backend, tag);
    return {};
}

std::optional<std::string> Machine::hot_remove_nic(const std::string& id)
{
    auto adapter = std::find_if(m_netvsc.begin(), m_netvsc.end(),
                                [&id](const auto& a) { return a->tag != 0 && a->nic.id == id; });
    if (adapter == m_netvsc.end())
        return "Device '" + id + "' not found";
    // No frame reaches it from now on (those already posted find no tag);
    // the guest is told the channel is gone and lets go of its buffers.
    (*adapter)->nic.backend->set_receiver({});
    m_vmbus->remove_channel((*adapter)->relid);
    m_netvsc.erase(adapter);
    std::erase_if(m_config.added_nics, [&id](const MachineNic& n) { return n.id == id; });
    return {};
}
