#include "platform/timers/i8254_pit.h"

#include "mmu/bus/port_bus.h"

#include <algorithm>

namespace {

constexpr u64 NS_PER_SECOND = 1000000000ull;

// Control word (8254 datasheet, "Control Word Format").
constexpr u8 CONTROL_BCD = 1 << 0;
constexpr unsigned SELECT_READ_BACK = 3;
constexpr unsigned ACCESS_LATCH = 0;
constexpr unsigned ACCESS_LSB = 1;
constexpr unsigned ACCESS_MSB = 2;
constexpr unsigned ACCESS_WORD = 3;
// Read-back command: the bits are active low.
constexpr u8 READ_BACK_NO_COUNT = 1 << 5;
constexpr u8 READ_BACK_NO_STATUS = 1 << 4;
// Status byte.
constexpr u8 STATUS_OUT = 1 << 7;
constexpr u8 STATUS_NULL_COUNT = 1 << 6;

// Port 0x61 (system control port B): bits 0-3 are read/write, 4 toggles with
// each DRAM refresh request (counter 1), 5 is OUT 2; 6 and 7 (IOCHK and
// parity NMI sources) read 0: nothing here raises them.
constexpr u8 PORT_B_GATE2 = 1 << 0;
constexpr u8 PORT_B_WRITABLE = 0x0F;
constexpr u8 PORT_B_REFRESH = 1 << 4;
constexpr u8 PORT_B_OUT2 = 1 << 5;

u64 modulus(bool bcd)
{
    return bcd ? 10000 : 0x10000;
}

u32 decode_count(u16 raw, bool bcd)
{
    u32 value = raw;
    if (bcd)
        value =
            (raw >> 12 & 0xF) * 1000 + (raw >> 8 & 0xF) * 100 + (raw >> 4 & 0xF) * 10 + (raw & 0xF);
    // A count of 0 is the largest: 2^16 in binary, 10^4 in BCD.
    return value == 0 ? static_cast<u32>(modulus(bcd)) : value;
}

u16 encode_count(u64 value, bool bcd)
{
    value %= modulus(bcd);
    if (!bcd)
        return static_cast<u16>(value);
    return static_cast<u16>((value / 1000) << 12 | (value / 100 % 10) << 8 |
                            (value / 10 % 10) << 4 | (value % 10));
}

} // namespace

I8254Pit::I8254Pit(VirtualClock& clock) : m_clock(clock), m_timer(clock, [this] { on_timer(); })
{
    // What a BIOS programs (IBM AT BIOS and its descendants): counter 0 for
    // the 18.2 Hz tick, counter 1 for refresh, counter 2 for the beeper.
    Counter& c0 = m_counters[0];
    c0.mode = c0.control_mode = 3;
    c0.access = ACCESS_WORD;
    c0.count_register = c0.initial = 0x10000;
    c0.run = Run::Counting;
    c0.null_count = false;

    Counter& c1 = m_counters[1];
    c1.mode = c1.control_mode = 2;
    c1.access = ACCESS_LSB;
    c1.count_register = c1.initial = 18;
    c1.run = Run::Counting;
    c1.null_count = false;

    Counter& c2 = m_counters[2];
    c2.mode = c2.control_mode = 3;
    c2.access = ACCESS_WORD;
    c2.count_register = c2.initial = 0x10000;
    c2.gate = false;
    c2.run = Run::WaitTrigger;
    c2.null_count = false;

    arm_timer();
}

void I8254Pit::attach(PortBus& bus)
{
    bus.map(BASE, PORT_COUNT, &m_counter_ports);
    bus.map(PORT_B, 1, &m_port_b);
}

u64 I8254Pit::now_tick() const
{
    return static_cast<u64>(static_cast<unsigned __int128>(m_clock.now_ns()) * FREQUENCY_HZ /
                            NS_PER_SECOND);
}

u64 I8254Pit::tick_to_ns(u64 tick)
{
    // Round up: at the returned instant the tick has been reached.
    return static_cast<u64>(
        (static_cast<unsigned __int128>(tick) * NS_PER_SECOND + FREQUENCY_HZ - 1) / FREQUENCY_HZ);
}

bool I8254Pit::output(unsigned counter)
{
    const u64 tick = now_tick();
    if (counter == 0)
        update_irq(tick);
    Counter& c = m_counters[counter];
    settle(c, tick);
    return out_at(c, tick);
}

// --- the counting element, as a function of time -------------------------------

void I8254Pit::settle(Counter& c, u64 tick)
{
    if (c.run != Run::Counting || !c.reload_pending || tick < c.reload_tick)
        return;
    c.initial = c.count_register;
    c.start_tick = c.reload_tick;
    c.phase = c.reload_phase;
    c.reload_pending = false;
    c.null_count = false;
}

void I8254Pit::trigger(Counter& c, u64 tick)
{
    c.initial = c.count_register;
    c.run = Run::Counting;
    c.start_tick = tick;
    c.phase = 0;
    c.reload_pending = false;
    c.null_count = false;
}

u64 I8254Pit::elapsed(const Counter& c, u64 tick)
{
    if (c.run == Run::Paused)
        return c.paused_elapsed;
    if (c.run != Run::Counting)
        return 0;
    return tick >= c.start_tick ? tick - c.start_tick + c.phase : c.phase;
}

bool I8254Pit::out_at(const Counter& c, u64 tick)
{
    switch (c.run) {
    case Run::Idle:
        return c.mode != 0; // mode 0 sets OUT low with the control word, the others high
    case Run::WaitTrigger:
        return true;
    case Run::Paused:
        if (c.mode == 2 || c.mode == 3)
            return true; // gate low forces OUT high at once
        break;
    case Run::Counting:
        break;
    }
    const u64 e = elapsed(c, tick);
    const u64 n = c.initial;
    switch (c.mode) {
    case 0: // interrupt on terminal count: low until the count reaches 0
    case 1: // hardware one-shot: low from the trigger until the count reaches 0
        return e >= n;
    case 2: // rate generator: low for the one clock before each reload
        return n < 2 || e % n != n - 1;
    case 3: // square wave: high for the first (n+1)/2 clocks of each period
        return n < 2 || e % n < (n + 1) / 2;
    default: // 4, 5: strobes: low for the one clock at which the count is 0
        return e != n;
    }
}

u16 I8254Pit::count_at(const Counter& c, u64 tick)
{
    const u64 n = c.initial;
    if (c.run == Run::Idle || c.run == Run::WaitTrigger)
        return encode_count(n, c.bcd);
    const u64 e = elapsed(c, tick);
    switch (c.mode) {
    case 2:
        return encode_count(n < 2 ? n : n - e % n, c.bcd);
    case 3: {
        // Counts down by two, twice per period (an odd count spends one
        // more clock in the high half).
        if (n < 2)
            return encode_count(n, c.bcd);
        const u64 p = e % n;
        const u64 half = (n + 1) / 2;
        return encode_count(p < half ? n - 2 * p : (n & ~1ull) - 2 * (p - half), c.bcd);
    }
    default: {
        // Modes 0, 1, 4, 5 keep counting down past 0 and wrap.
        const u64 m = modulus(c.bcd);
        return encode_count((n + m - e % m) % m, c.bcd);
    }
    }
}

bool I8254Pit::next_edge(const Counter& c, u64 tick, u64& edge)
{
    if (c.run != Run::Counting)
        return false;
    const u64 e = elapsed(c, tick);
    const u64 n = c.initial;
    u64 target;
    switch (c.mode) {
    case 0:
    case 1:
        if (e >= n)
            return false;
        target = n;
        break;
    case 2:
        if (n < 2)
            return false;
        target = e % n < n - 1 ? e + (n - 1 - e % n) : e + 1;
        break;
    case 3: {
        if (n < 2)
            return false;
        const u64 p = e % n;
        const u64 half = (n + 1) / 2;
        target = p < half ? e + (half - p) : e + (n - p);
        break;
    }
    default: // 4, 5
        if (e > n)
            return false;
        target = e < n ? n : n + 1;
        break;
    }
    edge = tick + (target - e);
    if (c.reload_pending && c.reload_tick > tick)
        edge = std::min(edge, c.reload_tick);
    return true;
}

bool I8254Pit::rose_between(const Counter& c, u64 from, u64 to)
{
    if (c.run != Run::Counting || to <= from || to < c.start_tick)
        return false;
    const u64 n = c.initial;
    const u64 et = elapsed(c, to);
    // A start after `from` can only be a mode 2/3 reload of a new count
    // (writes and gate edges update IRQ 0 at the instant they happen); a
    // reload at the end of a period is itself a rising edge.
    bool reload_rise = false;
    u64 ef;
    if (from < c.start_tick) {
        ef = c.phase;
        reload_rise = (c.mode == 2 || c.mode == 3) && c.phase == 0;
    } else {
        ef = elapsed(c, from);
    }
    switch (c.mode) {
    case 0:
    case 1:
        return ef < n && n <= et;
    case 2:
    case 3:
        return reload_rise || (n >= 2 && et / n > ef / n);
    default: // 4, 5: OUT comes back high one clock after the strobe
        return ef < n + 1 && n + 1 <= et;
    }
}

// --- IRQ 0 ----------------------------------------------------------------------

void I8254Pit::update_irq(u64 tick)
{
    Counter& c = m_counters[0];
    if (tick < m_irq_checked_tick)
        tick = m_irq_checked_tick;
    settle(c, tick);
    const bool rose = rose_between(c, m_irq_checked_tick, tick);
    const bool level = out_at(c, tick);
    m_irq_checked_tick = tick;
    if (rose) {
        // A rising edge is a request to the PIC even if we only notice it
        // after OUT fell again (the timer fired late): lower and raise the
        // line so the PIC latches it, and leave it high until the next edge.
        if (m_irq_level)
            drive_irq(false);
        drive_irq(true);
    } else if (level != m_irq_level) {
        drive_irq(level);
    }
    arm_timer();
}

void I8254Pit::drive_irq(bool level)
{
    m_irq_level = level;
    if (m_irq_line)
        m_irq_line(level);
}

void I8254Pit::arm_timer()
{
    u64 edge;
    if (next_edge(m_counters[0], m_irq_checked_tick, edge))
        m_timer.arm(tick_to_ns(edge));
    else
        m_timer.disarm();
}

void I8254Pit::on_timer()
{
    update_irq(now_tick());
}

// --- programming interface --------------------------------------------------------

void I8254Pit::write_control(u8 value)
{
    const unsigned select = value >> 6;
    const unsigned access = (value >> 4) & 3;
    const u64 tick = now_tick();
    update_irq(tick); // counter 0's edges so far happened under the old programming

    if (select == SELECT_READ_BACK) {
        for (unsigned i = 0; i < 3; ++i) {
            if (!(value & (2u << i)))
                continue;
            if (!(value & READ_BACK_NO_COUNT))
                latch_count(m_counters[i], tick);
            if (!(value & READ_BACK_NO_STATUS))
                latch_status(m_counters[i], tick);
        }
        return;
    }
    Counter& c = m_counters[select];
    if (access == ACCESS_LATCH) {
        latch_count(c, tick);
        return;
    }
    // Datasheet: writing a control word resets the counter's control logic
    // and sets OUT to the mode's initial level; the counter waits for a count.
    c.control_mode = (value >> 1) & 7;
    c.mode = c.control_mode >= 6 ? c.control_mode - 4 : c.control_mode;
    c.access = static_cast<u8>(access);
    c.bcd = value & CONTROL_BCD;
    c.run = Run::Idle;
    c.null_count = true;
    c.reload_pending = false;
    c.write_msb_next = false;
    c.read_msb_next = false;
    c.count_latched = false;
    c.latch_msb_next = false;
    c.status_latched = false;
    if (select == 0)
        update_irq(tick);
}

void I8254Pit::write_counter(unsigned index, u8 value)
{
    Counter& c = m_counters[index];
    switch (c.access) {
    case ACCESS_LSB:
        load_count(index, value);
        return;
    case ACCESS_MSB:
        load_count(index, static_cast<u16>(value << 8));
        return;
    default:
        if (!c.write_msb_next) {
            c.write_lsb = value;
            c.write_msb_next = true;
            if (c.mode == 0) {
                // Mode 0: the first byte of a new count stops counting and
                // sets OUT low at once; the second byte starts the new count.
                const u64 tick = now_tick();
                if (index == 0)
                    update_irq(tick);
                c.run = Run::Idle;
                c.reload_pending = false;
                c.null_count = true;
                if (index == 0)
                    update_irq(tick);
            }
            return;
        }
        c.write_msb_next = false;
        load_count(index, static_cast<u16>(c.write_lsb | value << 8));
        return;
    }
}

void I8254Pit::load_count(unsigned index, u32 raw)
{
    Counter& c = m_counters[index];
    const u64 tick = now_tick();
    if (index == 0)
        update_irq(tick);
    settle(c, tick);
    c.count_register = decode_count(static_cast<u16>(raw), c.bcd);
    c.null_count = true;

    switch (c.mode) {
    case 0:
    case 4:
        // The new count takes over at once and counting restarts.
        if (c.gate) {
            trigger(c, tick);
        } else {
            c.initial = c.count_register;
            c.run = Run::Paused;
            c.paused_elapsed = 0;
            c.reload_pending = false;
            c.null_count = false;
        }
        break;
    case 1:
    case 5:
        // Loaded by the next gate trigger; a running one-shot is not disturbed.
        if (c.run == Run::Idle)
            c.run = Run::WaitTrigger;
        break;
    default: // 2, 3
        if (c.run == Run::Counting) {
            // The current period (mode 2) or half-period (mode 3) runs out
            // with the old count; the new one is loaded at its end.
            const u64 n = c.initial;
            const u64 e = elapsed(c, tick);
            c.reload_pending = true;
            c.reload_phase = 0;
            if (n < 2) {
                c.reload_tick = tick + 1;
            } else if (c.mode == 2) {
                c.reload_tick = tick + (n - e % n);
            } else if (e % n < (n + 1) / 2) {
                c.reload_tick = tick + ((n + 1) / 2 - e % n);
                c.reload_phase = (c.count_register + 1) / 2; // continue in the low half
            } else {
                c.reload_tick = tick + (n - e % n);
            }
        } else if (c.run == Run::Paused) {
            // Gate low: the count register waits for the gate's rising edge.
        } else if (c.gate) {
            trigger(c, tick);
        } else {
            c.initial = c.count_register;
            c.run = Run::WaitTrigger;
            c.null_count = false;
        }
        break;
    }
    if (index == 0)
        update_irq(tick);
}

void I8254Pit::set_gate(unsigned counter, bool level)
{
    Counter& c = m_counters[counter];
    if (c.gate == level)
        return;
    const u64 tick = now_tick();
    if (counter == 0)
        update_irq(tick);
    settle(c, tick);
    c.gate = level;
    switch (c.mode) {
    case 0:
    case 4:
        // The gate enables counting.
        if (!level && c.run == Run::Counting) {
            c.paused_elapsed = elapsed(c, tick);
            c.run = Run::Paused;
        } else if (level && c.run == Run::Paused) {
            c.run = Run::Counting;
            c.start_tick = tick;
            c.phase = c.paused_elapsed;
        }
        break;
    case 2:
    case 3:
        // Gate low stops counting with OUT high; its rising edge reloads.
        if (!level && c.run == Run::Counting) {
            c.paused_elapsed = elapsed(c, tick);
            c.reload_pending = false;
            c.run = Run::Paused;
        } else if (level && c.run != Run::Idle) {
            trigger(c, tick);
        }
        break;
    default: // 1, 5: the rising edge triggers (or retriggers) the count
        if (level && c.run != Run::Idle)
            trigger(c, tick);
        break;
    }
    if (counter == 0)
        update_irq(tick);
}

void I8254Pit::latch_count(Counter& c, u64 tick)
{
    // A second latch before the first is read is ignored.
    if (c.count_latched)
        return;
    settle(c, tick);
    c.latched_count = count_at(c, tick);
    c.count_latched = true;
    c.latch_msb_next = false;
}

void I8254Pit::latch_status(Counter& c, u64 tick)
{
    if (c.status_latched)
        return;
    settle(c, tick);
    c.status = static_cast<u8>((out_at(c, tick) ? STATUS_OUT : 0) |
                               (c.null_count ? STATUS_NULL_COUNT : 0) | c.access << 4 |
                               c.control_mode << 1 | (c.bcd ? CONTROL_BCD : 0));
    c.status_latched = true;
}

u8 I8254Pit::read_counter(unsigned index)
{
    Counter& c = m_counters[index];
    // A latched status is read first, then a latched count.
    if (c.status_latched) {
        c.status_latched = false;
        return c.status;
    }
    if (c.count_latched) {
        const u16 v = c.latched_count;
        switch (c.access) {
        case ACCESS_LSB:
            c.count_latched = false;
            return static_cast<u8>(v);
        case ACCESS_MSB:
            c.count_latched = false;
            return static_cast<u8>(v >> 8);
        default:
            if (!c.latch_msb_next) {
                c.latch_msb_next = true;
                return static_cast<u8>(v);
            }
            c.latch_msb_next = false;
            c.count_latched = false;
            return static_cast<u8>(v >> 8);
        }
    }
    const u64 tick = now_tick();
    settle(c, tick);
    const u16 v = count_at(c, tick);
    switch (c.access) {
    case ACCESS_LSB:
        return static_cast<u8>(v);
    case ACCESS_MSB:
        return static_cast<u8>(v >> 8);
    default:
        c.read_msb_next = !c.read_msb_next;
        return static_cast<u8>(c.read_msb_next ? v : v >> 8);
    }
}

// --- ports ----------------------------------------------------------------------------

u64 I8254Pit::CounterPorts::io_read(u64 offset, unsigned size)
{
    // Byte registers: a wider access reaches consecutive ports, as on ISA.
    u64 value = 0;
    for (unsigned i = 0; i < size; ++i) {
        const u64 port = offset + i;
        u8 byte = 0xFF;
        if (port < 3)
            byte = m_pit.read_counter(static_cast<unsigned>(port));
        else if (port == 3)
            byte = 0; // the control word register cannot be read (QEMU answers 0 too)
        value |= u64(byte) << (8 * i);
    }
    return value;
}

void I8254Pit::CounterPorts::io_write(u64 offset, unsigned size, u64 value)
{
    for (unsigned i = 0; i < size; ++i) {
        const u64 port = offset + i;
        const u8 byte = static_cast<u8>(value >> (8 * i));
        if (port < 3)
            m_pit.write_counter(static_cast<unsigned>(port), byte);
        else if (port == 3)
            m_pit.write_control(byte);
    }
}

u64 I8254Pit::PortB::io_read(u64 offset, unsigned size)
{
    u64 value = 0;
    for (unsigned i = 0; i < size; ++i) {
        u8 byte = 0xFF;
        if (offset + i == 0) {
            const u64 tick = m_pit.now_tick();
            // Bit 4 flips on each refresh request, i.e. each period of counter 1.
            Counter& refresh = m_pit.m_counters[1];
            settle(refresh, tick);
            bool toggle = false;
            if (refresh.run == Run::Counting && refresh.initial > 0)
                toggle = (elapsed(refresh, tick) / refresh.initial) & 1;
            byte = static_cast<u8>((m_pit.m_port_b_value & PORT_B_WRITABLE) |
                                   (toggle ? PORT_B_REFRESH : 0) |
                                   (m_pit.output(2) ? PORT_B_OUT2 : 0));
        }
        value |= u64(byte) << (8 * i);
    }
    return value;
}

void I8254Pit::PortB::io_write(u64 offset, unsigned /*size*/, u64 value)
{
    if (offset != 0)
        return;
    m_pit.m_port_b_value = static_cast<u8>(value) & PORT_B_WRITABLE;
    m_pit.set_gate(2, value & PORT_B_GATE2);
}

// --- state ------------------------------------------------------------------------------

void I8254Pit::Counter::visit_state(StateVisitor& v)
{
    v.field("mode", mode);
    v.field("control_mode", control_mode);
    v.field("access", access);
    v.field("bcd", bcd);
    v.field("gate", gate);
    v.field("run", run);
    v.field("count_register", count_register);
    v.field("initial", initial);
    v.field("null_count", null_count);
    v.field("start_tick", start_tick);
    v.field("phase", phase);
    v.field("paused_elapsed", paused_elapsed);
    v.field("reload_pending", reload_pending);
    v.field("reload_tick", reload_tick);
    v.field("reload_phase", reload_phase);
    v.field("write_lsb", write_lsb);
    v.field("write_msb_next", write_msb_next);
    v.field("read_msb_next", read_msb_next);
    v.field("count_latched", count_latched);
    v.field("latch_msb_next", latch_msb_next);
    v.field("latched_count", latched_count);
    v.field("status_latched", status_latched);
    v.field("status", status);
}

// A counter as the control word and count writes can leave it (a snapshot
// is input): a mode 0-5 that is the written mode folded, an access mode of
// LSB, MSB or both, a run state, counts of 1 to 0x10000.
bool I8254Pit::Counter::valid() const
{
    const u8 folded = control_mode >= 6 ? control_mode - 4 : control_mode;
    return control_mode <= 7 && mode == folded && access >= ACCESS_LSB && access <= ACCESS_WORD &&
           static_cast<u8>(run) <= static_cast<u8>(Run::Paused) && count_register >= 1 &&
           count_register <= 0x10000 && initial >= 1 && initial <= 0x10000;
}

void I8254Pit::visit_state(StateVisitor& v)
{
    v.section("i8254-pit", 1);
    for (Counter& c : m_counters) {
        c.visit_state(v);
        if (v.loading() && v.ok() && !c.valid())
            return v.fail("a PIT counter's mode, access, run state or count is out of range");
    }
    v.field("irq_level", m_irq_level);
    v.field("irq_checked_tick", m_irq_checked_tick);
    v.field("port_b", m_port_b_value);
    // The timer is not state of its own: it follows from counter 0.
    if (v.loading())
        arm_timer();
}
