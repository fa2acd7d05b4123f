// Motorola MC146818A real-time clock and its CMOS RAM, as a PC maps it at
// 0x70 (index, with the NMI mask in bit 7) and 0x71 (data), on IRQ 8.
//
// From the MC146818A datasheet: the ten time, alarm and date registers in
// BCD or binary and in 12- or 24-hour form (register B), the SET bit that
// stops updates so software can set the time, the divider control in
// register A (reset holds the chain; the first update comes 500 ms after the
// reset is lifted), UIP set for the 244 us before each update, register C's
// interrupt flags (PF periodic, AF alarm, UF update-ended, IRQF) cleared by
// reading it, alarms with "don't care" bytes (0xC0-0xFF), periodic rates from
// register A, VRT in register D, and the rest of the 128 bytes as NVRAM. The
// century is kept at 0x32 (the ACPI FADT's CENTURY field names it).
//
// Time is not ticked: the clock keeps the guest's time as seconds at a
// virtual instant and derives registers, flags and UIP from the VirtualClock
// when read; a ClockTimer fires only for the interrupts the guest enabled.
// The time base is always taken as 32.768 kHz (divider values 000 and 001,
// meant for other crystals, run at that rate); the square-wave pin and the
// daylight-saving bit are stored but have no effect.
#pragma once

#include "mmu/bus/io_device.h"
#include "mmu/base/state_visitor.h"
#include "platform/interrupts/irq_router.h"
#include "platform/clock/virtual_clock.h"

#include <array>
#include <optional>

class PortBus;

class Mc146818Rtc final : public IoDevice {
public:
    static constexpr u16 BASE = 0x70;
    static constexpr u32 PORT_COUNT = 2;
    static constexpr unsigned IRQ = 8;
    static constexpr u8 CENTURY_REGISTER = 0x32;

    // `start_time` is the guest's wall-clock time at virtual time 0, in
    // seconds since 1970-01-01 00:00:00 as the RTC shows it (the host's time
    // in host mode; a fixed epoch in deterministic mode, so runs repeat).
    // Registers A-D start as a BIOS leaves them: 32.768 kHz divider with the
    // 1024 Hz rate selected, 24-hour BCD, no interrupts enabled, VRT set.
    Mc146818Rtc(VirtualClock& clock, i64 start_time);

    void attach(PortBus& bus);
    void set_irq_line(IrqLine line) { m_irq_line = std::move(line); }

    // Port 0x70 bit 7: set means NMIs are masked. The machine gates NMIs on it.
    bool nmi_masked() const { return m_nmi_masked; }

    // What a BIOS records about memory (QEMU's and SeaBIOS's layout): 0x15-16
    // base memory in KiB, 0x17-18 and 0x30-31 KiB above 1 MiB (at most
    // 65535), 0x34-35 64 KiB blocks between 16 MiB and 4 GiB, 0x5B-5D 64 KiB
    // blocks above 4 GiB; the standard checksum over 0x10-0x2D at 0x2E-0x2F.
    void set_memory_size(u64 below_4g_bytes, u64 above_4g_bytes);
    // Any other NVRAM byte the machine wants to provide (0x0E and up).
    void set_nvram(u8 index, u8 value);
    u8 nvram(u8 index) const { return m_ram[index & 0x7F]; }

    // The time the clock shows now, in seconds since 1970 (for tests and a
    // monitor); while updates are stopped, the time the registers hold.
    i64 current_time();

    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;

    void visit_state(StateVisitor& v);

private:
    u8 read_register(u8 index);
    void write_register(u8 index, u8 value);
    void write_register_a(u8 value);
    void write_register_b(u8 value);

    // Updates run (time advances, UF and AF can be set).
    bool running() const;
    // The divider chain runs (periodic interrupts possible).
    bool divider_running() const;
    // Number of update instants (second boundaries) at or before `ns`.
    u64 update_index(u64 ns) const;
    u64 next_update_ns(u64 ns) const;
    u64 periodic_index(u64 ns) const;
    u64 next_periodic_ns(u64 ns) const;
    u64 periodic_cycles() const; // 32.768 kHz cycles per periodic interrupt, 0 if off
    i64 time_at(u64 ns) const;

    // Writes the time registers from a time value in the current format.
    void store_time(i64 time);
    // Reads the time registers back as seconds since 1970 (and takes the
    // day-of-week register's offset from the true weekday).
    i64 load_time();
    // The earliest time value >= `from` that matches the alarm, if any can.
    std::optional<i64> next_alarm(i64 from) const;

    u8 to_register(unsigned value) const;
    std::optional<unsigned> from_register(u8 value) const;
    u8 hour_to_register(unsigned hour) const;
    std::optional<unsigned> hour_from_register(u8 value) const;

    // Sets PF/UF/AF for whatever happened up to `ns`, drives IRQ 8, and arms
    // the timer for the next enabled interrupt.
    void update_flags(u64 ns);
    void update_irq();
    void arm_timer();
    void on_timer();

    VirtualClock& m_clock;
    ClockTimer m_timer;
    IrqLine m_irq_line;
    std::array<u8, 128> m_ram{};
    u8 m_index = 0;
    bool m_nmi_masked = false;
    // While running: time = m_base_time + update_index(now). m_phase_ns puts
    // the update instants at phase, phase + 1 s, ... (the divider's phase).
    i64 m_base_time = 0;
    u64 m_phase_ns = 0;
    // Day-of-week register as the guest set it, relative to the true weekday.
    u8 m_weekday_offset = 0;
    u64 m_flags_checked_ns = 0;
    bool m_irq_level = false;
};
