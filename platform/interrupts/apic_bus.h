// The APIC message fabric of one machine: it knows every local APIC, carries
// interprocessor interrupts and I/O APIC / MSI messages to the local APICs a
// destination selects (SDM Vol 3A 10.6.2), and carries EOIs for
// level-triggered vectors back to the I/O APICs (SDM Vol 3A 10.8.5).
//
// It also owns the xAPIC MMIO windows: every vCPU sees its own local APIC at
// the same physical address, so one window per base address forwards an
// access to the local APIC of the vCPU that made it (the vCPU index the
// access carries, IoDevice::io_read_by).
#pragma once

#include "mmu/bus/io_device.h"
#include "mmu/physical_memory.h"

#include <functional>
#include <memory>
#include <vector>

class LocalApic;

// ICR / redirection-entry delivery modes (SDM Vol 3A 10.6.1).
enum class ApicDeliveryMode : u8 {
    Fixed = 0,
    LowestPriority = 1,
    Smi = 2,
    Nmi = 4,
    Init = 5,
    StartUp = 6,
    ExtInt = 7,
};

// ICR destination shorthand, bits 19:18.
enum class ApicShorthand : u8 { None = 0, Self = 1, AllIncludingSelf = 2, AllExcludingSelf = 3 };

struct ApicMessage {
    u8 vector = 0;
    ApicDeliveryMode mode = ApicDeliveryMode::Fixed;
    bool logical = false;         // destination mode: false = physical
    bool level_triggered = false; // trigger mode
    bool assert = true; // ICR level bit; INIT with level trigger and !assert is a de-assert
    ApicShorthand shorthand = ApicShorthand::None;
    // 8 bits (xAPIC ICR, I/O APIC, MSI) unless x2apic_destination, then 32 bits.
    u32 destination = 0;
    bool x2apic_destination = false;
};

class ApicBus {
public:
    ApicBus();
    ~ApicBus();
    ApicBus(const ApicBus&) = delete;
    ApicBus& operator=(const ApicBus&) = delete;

    // Local APICs attach themselves in vCPU order (and detach when destroyed).
    void attach(LocalApic& apic);
    void detach(LocalApic& apic);
    unsigned size() const { return static_cast<unsigned>(m_apics.size()); }
    LocalApic& apic(unsigned index) { return *m_apics[index]; }

    // The MMIO windows: one page at the default base and at every other base
    // an xAPIC-mode APIC is moved to (IA32_APIC_BASE), none elsewhere, so a
    // guest moving its APIC around cannot pile windows up. Call it at start
    // and whenever an APIC's base or mode changes. A base that overlaps
    // another device's range stays unmapped: that device answers there.
    // An access reaches the accessing vCPU's APIC only while that APIC is in
    // xAPIC mode at the window's base; otherwise reads return all ones and
    // writes are dropped, as with no device there.
    void update_windows(PhysicalMemory& memory);

    // Delivers a message to every APIC it selects. `source` is the sending
    // APIC for IPIs (shorthands need it), nullptr for I/O APIC and MSI.
    void send(const ApicMessage& message, LocalApic* source = nullptr);

    // An MSI write (address 0xFEExxxxx, data) as PCI devices and the HPET's
    // FSB delivery produce it (SDM Vol 3A 10.11).
    void send_msi(u64 address, u32 data);

    // EOI of a level-triggered vector: every I/O APIC listens.
    void add_eoi_listener(std::function<void(u8 vector)> listener)
    {
        m_eoi_listeners.push_back(std::move(listener));
    }
    void broadcast_eoi(u8 vector);

private:
    class Window;
    bool matches(const LocalApic& apic, const ApicMessage& message) const;

    std::vector<LocalApic*> m_apics;
    std::vector<std::unique_ptr<Window>> m_windows;
    std::vector<std::function<void(u8)>> m_eoi_listeners;
};
