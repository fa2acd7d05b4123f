#include "platform/interrupts/apic_bus.h"

#include "platform/interrupts/local_apic.h"

#include <algorithm>

class ApicBus::Window final : public IoDevice {
public:
    Window(ApicBus& bus, u64 base) : m_bus(bus), m_base(base) {}
    u64 base() const { return m_base; }
    bool mapped = false; // in the PhysicalMemory map (not if another range is there)

    // Only a vCPU reaches a local APIC through the window, and only its own;
    // anything else (device DMA) finds no device there.
    u64 io_read(u64, unsigned size) override { return size_mask(size); }
    void io_write(u64, unsigned, u64) override {}
    u64 io_read_by(unsigned vcpu, u64 offset, unsigned size) override
    {
        if (LocalApic* apic = target(vcpu))
            return apic->io_read(offset, size);
        return size_mask(size);
    }
    void io_write_by(unsigned vcpu, u64 offset, unsigned size, u64 value) override
    {
        if (LocalApic* apic = target(vcpu))
            apic->io_write(offset, size, value);
    }

private:
    LocalApic* target(unsigned vcpu)
    {
        if (vcpu >= m_bus.size())
            return nullptr;
        LocalApic& apic = m_bus.apic(vcpu);
        return apic.xapic_mode() && apic.base_address() == m_base ? &apic : nullptr;
    }

    ApicBus& m_bus;
    u64 m_base;
};

ApicBus::ApicBus() = default;
ApicBus::~ApicBus() = default;

void ApicBus::attach(LocalApic& apic)
{
    m_apics.push_back(&apic);
}

void ApicBus::detach(LocalApic& apic)
{
    std::erase(m_apics, &apic);
}

void ApicBus::update_windows(PhysicalMemory& memory)
{
    std::vector<u64> wanted{LocalApic::DEFAULT_BASE};
    for (const LocalApic* apic : m_apics)
        if (apic->xapic_mode())
            wanted.push_back(apic->base_address());
    std::erase_if(m_windows, [&](const std::unique_ptr<Window>& w) {
        if (std::find(wanted.begin(), wanted.end(), w->base()) != wanted.end())
            return false;
        if (w->mapped)
            memory.unmap_mmio(w->base(), w.get());
        return true;
    });
    for (u64 base : wanted) {
        auto it = std::find_if(m_windows.begin(), m_windows.end(),
                               [base](const std::unique_ptr<Window>& w) { return w->base() == base; });
        if (it == m_windows.end()) {
            m_windows.push_back(std::make_unique<Window>(*this, base));
            it = m_windows.end() - 1;
        }
        if (!(*it)->mapped)
            (*it)->mapped = memory.try_map_mmio(base, LocalApic::MMIO_SIZE, it->get());
    }
}

bool ApicBus::matches(const LocalApic& apic, const ApicMessage& m) const
{
    // The destination is read in the receiving APIC's own mode, with the
    // 8-bit broadcast ID standing for the x2APIC one (SDM Vol 3A 10.6.2,
    // 10.12.9).
    const bool broadcast =
        m.x2apic_destination ? m.destination == 0xFFFFFFFF : (m.destination & 0xFF) == 0xFF;
    if (apic.x2apic_mode()) {
        if (broadcast)
            return true;
        if (!m.logical)
            return m.destination == apic.apic_id();
        const u32 ldr = apic.logical_destination();
        return (m.destination >> 16) == (ldr >> 16) && (m.destination & ldr & 0xFFFF) != 0;
    }
    const u8 dest = static_cast<u8>(m.destination);
    if (broadcast)
        return true;
    if (m.x2apic_destination && m.destination > 0xFF)
        return false;
    if (!m.logical)
        return dest == static_cast<u8>(apic.apic_id());
    const u8 logical_id = static_cast<u8>(apic.logical_destination() >> 24);
    if ((apic.destination_format() >> 28) == 0xF) // flat model
        return (dest & logical_id) != 0;
    // Cluster model: bits 7:4 select the cluster, 3:0 the members.
    return (dest >> 4) == (logical_id >> 4) && (dest & logical_id & 0xF) != 0;
}

void ApicBus::send(const ApicMessage& message, LocalApic* source)
{
    std::vector<LocalApic*> targets;
    for (LocalApic* apic : m_apics) {
        if (!apic->hardware_enabled())
            continue;
        bool selected = false;
        switch (message.shorthand) {
        case ApicShorthand::None:
            selected = matches(*apic, message);
            break;
        case ApicShorthand::Self:
            selected = apic == source;
            break;
        case ApicShorthand::AllIncludingSelf:
            selected = true;
            break;
        case ApicShorthand::AllExcludingSelf:
            selected = apic != source;
            break;
        }
        if (selected)
            targets.push_back(apic);
    }
    if (message.mode == ApicDeliveryMode::LowestPriority && targets.size() > 1) {
        // Lowest arbitration priority wins; ties go to the lowest vCPU index
        // so that runs stay deterministic (SDM Vol 3A 10.6.2.4).
        LocalApic* best = nullptr;
        for (LocalApic* apic : targets)
            if (apic->software_enabled() &&
                (!best || apic->arbitration_priority() < best->arbitration_priority()))
                best = apic;
        if (!best)
            best = targets.front();
        best->accept(message);
        return;
    }
    for (LocalApic* apic : targets)
        apic->accept(message);
}

void ApicBus::send_msi(u64 address, u32 data)
{
    // Address: 0xFEE, destination ID 19:12, redirection hint 3, destination
    // mode 2. Data: vector 7:0, delivery mode 10:8, level 14, trigger 15.
    if ((address >> 20) != 0xFEE)
        return;
    ApicMessage m;
    m.destination = static_cast<u32>((address >> 12) & 0xFF);
    m.logical = address & (1u << 2);
    m.vector = static_cast<u8>(data & 0xFF);
    m.mode = static_cast<ApicDeliveryMode>((data >> 8) & 7);
    m.assert = data & (1u << 14);
    m.level_triggered = data & (1u << 15);
    send(m);
}

void ApicBus::broadcast_eoi(u8 vector)
{
    for (auto& listener : m_eoi_listeners)
        listener(vector);
}
