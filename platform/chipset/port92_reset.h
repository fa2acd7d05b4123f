// Small PC board registers around reset and A20:
// - System control port A at 0x92 ("fast A20 and reset", PS/2 and every
//   PIIX/ICH since): bit 0 pulses a CPU reset when written 0 -> 1, bit 1
//   gates A20, bit 3 is the CMOS password lock (kept, no effect); the other
//   bits read back as written.
// - The POST code port 0x80: firmware and test programs write progress codes
//   there, Linux uses it as an I/O delay; the last byte reads back.
// - A20Gate: the A20 line is the OR of the i8042 output port's bit 1 and
//   port 0x92's bit 1 (PIIX3 datasheet, "A20M#"); the machine hands the
//   result to memory.
// The reset control register at 0xCF9 is part of the PIIX ISA bridge
// (platform/chipset/piix_isa_bridge.h), reached through the PCI host's 0xCF8 range.
#pragma once

#include "mmu/bus/io_device.h"
#include "mmu/base/state_visitor.h"

#include <functional>

class PortBus;

class A20Gate {
public:
    // Called whenever the combined line changes.
    using Sink = std::function<void(bool enabled)>;

    explicit A20Gate(Sink sink = {}) : m_sink(std::move(sink)) {}
    void set_sink(Sink sink) { m_sink = std::move(sink); }

    void set_keyboard_controller(bool enabled) { set(m_keyboard_controller, enabled); }
    void set_port92(bool enabled) { set(m_port92, enabled); }
    bool enabled() const { return m_keyboard_controller || m_port92; }

    void visit_state(StateVisitor& v);

private:
    void set(bool& input, bool value);

    Sink m_sink;
    // As the devices start: the i8042 with A20 on, port 0x92 with it off.
    bool m_keyboard_controller = true;
    bool m_port92 = false;
};

class SystemControlPortA final : public IoDevice {
public:
    static constexpr u16 PORT = 0x92;

    using ResetHandler = std::function<void()>;
    using A20Handler = std::function<void(bool enabled)>;

    void attach(PortBus& bus);
    void set_reset_handler(ResetHandler handler) { m_reset = std::move(handler); }
    void set_a20_handler(A20Handler handler) { m_a20 = std::move(handler); }
    bool a20_enabled() const { return m_value & 0x02; }

    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;

    void visit_state(StateVisitor& v);

private:
    ResetHandler m_reset;
    A20Handler m_a20;
    u8 m_value = 0;
};

class PostCodePort final : public IoDevice {
public:
    static constexpr u16 PORT = 0x80;

    // Optional: sees every code written (a trace or a test harness).
    using Sink = std::function<void(u8 code)>;

    void attach(PortBus& bus);
    void set_sink(Sink sink) { m_sink = std::move(sink); }
    u8 last_code() const { return m_code; }

    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;

    void visit_state(StateVisitor& v);

private:
    Sink m_sink;
    u8 m_code = 0;
};
