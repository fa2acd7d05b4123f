// IA-PC High Precision Event Timer (HPET spec 1.0a): a 64-bit main counter at
// 100 MHz (period 10 ns = 10,000,000 fs) on the VirtualClock and three
// comparators at 0xFED00000. Timer 0 can be periodic; all are 64-bit capable
// and can run in 32-bit mode; each is edge or level triggered, routed by
// Tn_INT_ROUTE_CNF to an I/O APIC input (capability: GSI 20-23), or by the
// legacy replacement route (timer 0 -> IRQ0, i.e. I/O APIC pin 2 and 8259
// IRQ0; timer 1 -> IRQ8, pin 8). FSB (MSI) delivery is not offered.
//
// A comparator fires when the main counter becomes equal to it (in 32-bit
// mode the low 32 bits, and also when those wrap to zero); a periodic timer
// then adds its period to the comparator. Level-triggered timers set their
// bit in the interrupt status register and hold the line until the guest
// writes 1 to that bit.
#pragma once

#include "mmu/bus/io_device.h"
#include "platform/clock/virtual_clock.h"

#include <array>
#include <functional>
#include <memory>

class StateVisitor;

class Hpet final : public IoDevice {
public:
    static constexpr u64 DEFAULT_BASE = 0xFED00000;
    static constexpr u64 MMIO_SIZE = 0x400;
    static constexpr unsigned TIMERS = 3;
    static constexpr u64 PERIOD_FS = 10'000'000; // 10 ns per tick
    static constexpr u64 NS_PER_TICK = PERIOD_FS / 1'000'000;
    // I/O APIC inputs Tn_INT_ROUTE_CNF may select (bit n = GSI n).
    static constexpr u32 ROUTE_CAPABILITY = 0x00F00000;
    // Legacy replacement routes, as GSIs: IRQ0 arrives on I/O APIC pin 2.
    static constexpr u32 LEGACY_TIMER0_GSI = 2;
    static constexpr u32 LEGACY_TIMER1_GSI = 8;

    // General capabilities low half, also the ACPI HPET table's Event Timer
    // Block ID: vendor 0x8086, legacy-route capable (15), 64-bit counter (13),
    // 3 timers (12:8 = 2), revision 1.
    static constexpr u32 CAPABILITIES_ID = 0x8086A201;

    // The interrupt output: (gsi, level). In legacy replacement mode timer 0
    // drives GSI 2 and timer 1 GSI 8; the machine sends those to the 8259 as
    // IRQ0 and IRQ8 as well.
    using IrqLine = std::function<void(u32 gsi, bool level)>;
    // Legacy replacement switched on or off: the machine disconnects the
    // PIT's IRQ0 and the RTC's IRQ8 while it is on (HPET spec 2.3.9.2.2).
    using LegacyHandler = std::function<void(bool enabled)>;

    explicit Hpet(VirtualClock& clock);
    ~Hpet() override;

    void set_irq_line(IrqLine line) { m_irq = std::move(line); }
    void set_legacy_handler(LegacyHandler handler) { m_on_legacy = std::move(handler); }

    void reset();
    bool enabled() const { return m_config & CFG_ENABLE; }
    bool legacy_replacement() const { return m_config & CFG_LEGACY; }
    u64 main_counter() const;

    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;

    void visit_state(StateVisitor& v);

private:
    static constexpr u64 CFG_ENABLE = 1;
    static constexpr u64 CFG_LEGACY = 2;

    struct Timer {
        u64 config = 0;
        u64 comparator = 0;
        u64 period = 0;
        bool line = false; // level output we hold up (level-triggered mode)
        u32 line_gsi = 0;  // where it is held up
        std::unique_ptr<ClockTimer> clock;
    };

    u64 read_register(u64 reg) const;
    void write_register(u64 reg, u64 value, u64 write_mask);
    void write_timer_config(unsigned n, u64 value);
    // Arms timer n for its next comparator match (or 32-bit wrap);
    // `inclusive` lets a match at the current count fire at once.
    void schedule(unsigned n, bool inclusive);
    void fire(unsigned n);
    void set_line(unsigned n, bool level);
    u32 route(unsigned n) const;
    void update_all();
    u64 ticks_at(u64 ns) const;

    VirtualClock& m_clock;
    IrqLine m_irq;
    LegacyHandler m_on_legacy;
    u64 m_config = 0;
    u64 m_status = 0;
    // Main counter = m_counter_base + (now - m_base_ns) / 10 while enabled.
    u64 m_counter_base = 0;
    u64 m_base_ns = 0;
    std::array<Timer, TIMERS> m_timers;
};
