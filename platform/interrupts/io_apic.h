// Intel 82093AA I/O APIC: 24 interrupt input pins, each with a 64-bit
// redirection entry, reached through the IOREGSEL (offset 0x00) / IOWIN
// (offset 0x10) register pair at 0xFEC00000. Messages go to the local APICs
// over the ApicBus; EOIs of level-triggered vectors come back from it.
//
// Inputs are logical levels (true = the device asserts its interrupt); the
// polarity bit is kept for the guest to read but does not invert them, the
// board's wiring having done so already (QEMU models it the same way).
// Edge-triggered pins latch a rising edge in the IRR until it is sent; a
// rising edge on a masked pin is lost (82093AA datasheet 3.2.4). Level pins
// set Remote IRR when sent and are sent again after the EOI while the input
// is still asserted.
#pragma once

#include "mmu/bus/io_device.h"
#include "platform/interrupts/apic_bus.h"

#include <array>

class StateVisitor;

class IoApic final : public IoDevice {
public:
    static constexpr u64 DEFAULT_BASE = 0xFEC00000;
    static constexpr u64 MMIO_SIZE = 0x1000;
    static constexpr unsigned PINS = 24;
    // Version register: version 0x11 (82093AA), maximum redirection entry 23.
    static constexpr u32 VERSION = 0x00170011;

    // The I/O APIC registers itself as an EOI listener on the bus.
    explicit IoApic(ApicBus& bus, u8 id = 0);

    void reset();
    u8 id() const { return m_id; }

    // Input pin level (pin < PINS).
    void set_irq(unsigned pin, bool level);
    // EOI broadcast for `vector` from a local APIC.
    void eoi(u8 vector);

    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;

    void visit_state(StateVisitor& v);

    u64 redirection(unsigned pin) const { return m_redirection[pin]; }
    bool remote_irr(unsigned pin) const { return m_redirection[pin] & REMOTE_IRR; }

private:
    static constexpr u64 DELIVERY_STATUS = 1ull << 12;
    static constexpr u64 REMOTE_IRR = 1ull << 14;
    static constexpr u64 LEVEL = 1ull << 15;
    static constexpr u64 MASKED = 1ull << 16;
    // Vector, delivery mode, destination mode, polarity, trigger, mask, destination.
    static constexpr u64 WRITABLE = 0xFF00000000000000ull | 0x1AFFF;

    u32 read_register(u8 index) const;
    void write_register(u8 index, u32 value);
    void service(unsigned pin);

    ApicBus& m_bus;
    u8 m_id;
    u8 m_select = 0;
    u32 m_irr = 0;   // latched edges / asserted levels
    u32 m_lines = 0; // current input levels
    std::array<u64, PINS> m_redirection{};
};
