#include "platform/timers/hpet.h"

#include "mmu/base/state_visitor.h"

namespace {
// Register offsets (HPET spec 1.0a, 2.3.1).
constexpr u64 REG_CAPABILITIES = 0x000;
constexpr u64 REG_CONFIG = 0x010;
constexpr u64 REG_STATUS = 0x020;
constexpr u64 REG_COUNTER = 0x0F0;
constexpr u64 REG_TIMER0 = 0x100;
constexpr u64 TIMER_STRIDE = 0x20;
constexpr u64 TIMER_CONFIG = 0x00;
constexpr u64 TIMER_COMPARATOR = 0x08;
constexpr u64 TIMER_FSB_ROUTE = 0x10;

// Tn_CONF_CAP bits (2.3.8).
constexpr u64 TN_LEVEL = 1ull << 1;
constexpr u64 TN_INT_ENABLE = 1ull << 2;
constexpr u64 TN_PERIODIC = 1ull << 3;
constexpr u64 TN_PERIODIC_CAP = 1ull << 4;
constexpr u64 TN_SIZE_CAP = 1ull << 5;
constexpr u64 TN_VAL_SET = 1ull << 6;
constexpr u64 TN_32BIT = 1ull << 8;
constexpr u64 TN_ROUTE_MASK = 0x1Full << 9;
constexpr unsigned TN_ROUTE_SHIFT = 9;
constexpr u64 TN_WRITABLE =
    TN_LEVEL | TN_INT_ENABLE | TN_PERIODIC | TN_VAL_SET | TN_32BIT | TN_ROUTE_MASK;

constexpr u64 WRAP32 = 1ull << 32;
} // namespace

Hpet::Hpet(VirtualClock& clock) : m_clock(clock)
{
    for (unsigned n = 0; n < TIMERS; ++n)
        m_timers[n].clock = std::make_unique<ClockTimer>(clock, [this, n] { fire(n); });
    reset();
}

Hpet::~Hpet() = default;

void Hpet::reset()
{
    const bool was_legacy = legacy_replacement();
    for (unsigned n = 0; n < TIMERS; ++n) {
        set_line(n, false);
        Timer& t = m_timers[n];
        t.config = (u64(ROUTE_CAPABILITY) << 32) | TN_SIZE_CAP | (n == 0 ? TN_PERIODIC_CAP : 0);
        t.comparator = ~0ull;
        t.period = 0;
        t.clock->disarm();
    }
    m_config = 0;
    m_status = 0;
    m_counter_base = 0;
    m_base_ns = m_clock.now_ns();
    if (was_legacy && m_on_legacy)
        m_on_legacy(false);
}

u64 Hpet::main_counter() const
{
    if (!enabled())
        return m_counter_base;
    return m_counter_base + (m_clock.now_ns() - m_base_ns) / NS_PER_TICK;
}

u32 Hpet::route(unsigned n) const
{
    if (legacy_replacement() && n == 0)
        return LEGACY_TIMER0_GSI;
    if (legacy_replacement() && n == 1)
        return LEGACY_TIMER1_GSI;
    return static_cast<u32>((m_timers[n].config & TN_ROUTE_MASK) >> TN_ROUTE_SHIFT);
}

void Hpet::set_line(unsigned n, bool level)
{
    Timer& t = m_timers[n];
    if (level) {
        const u32 gsi = route(n);
        if (t.line && t.line_gsi == gsi)
            return;
        if (t.line && m_irq)
            m_irq(t.line_gsi, false);
        t.line = true;
        t.line_gsi = gsi;
        if (m_irq)
            m_irq(gsi, true);
    } else if (t.line) {
        t.line = false;
        if (m_irq)
            m_irq(t.line_gsi, false);
    }
}

void Hpet::update_all()
{
    for (unsigned n = 0; n < TIMERS; ++n) {
        const Timer& t = m_timers[n];
        set_line(n, enabled() && (t.config & TN_LEVEL) && (t.config & TN_INT_ENABLE) &&
                        (m_status & (1ull << n)));
    }
}

void Hpet::schedule(unsigned n, bool inclusive)
{
    Timer& t = m_timers[n];
    if (!enabled() || !(t.config & TN_INT_ENABLE)) {
        t.clock->disarm();
        return;
    }
    const u64 now_count = main_counter();
    u64 ticks;
    if (t.config & TN_32BIT) {
        const u64 low = now_count & 0xFFFFFFFF;
        u64 to_match = ((t.comparator & 0xFFFFFFFF) - low) & 0xFFFFFFFF;
        if (to_match == 0 && !inclusive)
            to_match = WRAP32;
        ticks = to_match;
        if (!(t.config & TN_PERIODIC)) {
            // A 32-bit one-shot timer also interrupts when the low half wraps.
            const u64 to_wrap = low == 0 && !inclusive ? WRAP32 : WRAP32 - low;
            if (to_wrap < ticks)
                ticks = to_wrap;
        }
    } else {
        if (t.comparator < now_count || (t.comparator == now_count && !inclusive)) {
            t.clock->disarm(); // the 64-bit counter will not come back around
            return;
        }
        ticks = t.comparator - now_count;
    }
    if (ticks > (~0ull / 4) / NS_PER_TICK) {
        t.clock->disarm();
        return;
    }
    // The counter reaches now_count + ticks at this instant.
    const u64 target = now_count + ticks - m_counter_base;
    t.clock->arm(m_base_ns + target * NS_PER_TICK);
}

void Hpet::fire(unsigned n)
{
    Timer& t = m_timers[n];
    if (!enabled() || !(t.config & TN_INT_ENABLE))
        return;
    const u64 now_count = main_counter();
    if (t.config & TN_LEVEL) {
        m_status |= 1ull << n;
        update_all();
    } else if (m_irq) {
        const u32 gsi = route(n);
        m_irq(gsi, true);
        m_irq(gsi, false);
    }
    if ((t.config & TN_PERIODIC) && t.period) {
        // Add the period until the comparator is ahead of the counter again
        // (several periods when the clock ran past them).
        if (t.config & TN_32BIT) {
            const u32 low = static_cast<u32>(now_count);
            u32 cmp = static_cast<u32>(t.comparator);
            const u32 period = static_cast<u32>(t.period);
            const u32 behind = low - cmp;
            if (static_cast<i32>(behind) >= 0)
                cmp += (behind / period + 1) * period;
            t.comparator = cmp;
        } else if (t.comparator <= now_count) {
            t.comparator += ((now_count - t.comparator) / t.period + 1) * t.period;
        }
    }
    schedule(n, false);
}

u64 Hpet::read_register(u64 reg) const
{
    switch (reg) {
    case REG_CAPABILITIES:
        return (PERIOD_FS << 32) | CAPABILITIES_ID;
    case REG_CONFIG:
        return m_config;
    case REG_STATUS:
        return m_status;
    case REG_COUNTER:
        return main_counter();
    default:
        break;
    }
    if (reg >= REG_TIMER0 && reg < REG_TIMER0 + TIMERS * TIMER_STRIDE) {
        const Timer& t = m_timers[(reg - REG_TIMER0) / TIMER_STRIDE];
        switch ((reg - REG_TIMER0) % TIMER_STRIDE) {
        case TIMER_CONFIG:
            return t.config;
        case TIMER_COMPARATOR:
            return (t.config & TN_32BIT) ? t.comparator & 0xFFFFFFFF : t.comparator;
        case TIMER_FSB_ROUTE:
            return 0;
        default:
            return 0;
        }
    }
    return 0;
}

void Hpet::write_timer_config(unsigned n, u64 value)
{
    Timer& t = m_timers[n];
    u64 writable = TN_WRITABLE;
    if (!(t.config & TN_PERIODIC_CAP))
        writable &= ~TN_PERIODIC;
    const u64 old = t.config;
    t.config = (old & ~writable) | (value & writable);
    if (t.config & TN_32BIT) {
        t.comparator &= 0xFFFFFFFF;
        t.period &= 0xFFFFFFFF;
    }
    // An edge-triggered or disabled timer holds no status-driven level.
    if (!(t.config & TN_LEVEL))
        m_status &= ~(1ull << n);
    update_all();
    if ((old ^ t.config) & (TN_INT_ENABLE | TN_PERIODIC | TN_32BIT))
        schedule(n, true);
}

void Hpet::write_register(u64 reg, u64 value, u64 mask)
{
    const auto merge = [&](u64 old) { return (old & ~mask) | (value & mask); };
    switch (reg) {
    case REG_CAPABILITIES:
        return;
    case REG_CONFIG: {
        const u64 old = m_config;
        const u64 now_count = main_counter();
        m_config = merge(m_config) & (CFG_ENABLE | CFG_LEGACY);
        if ((old ^ m_config) & CFG_ENABLE) {
            // Halting freezes the counter; starting resumes from that value.
            m_counter_base = now_count;
            m_base_ns = m_clock.now_ns();
        }
        update_all();
        if ((old ^ m_config) & CFG_LEGACY && m_on_legacy)
            m_on_legacy(legacy_replacement());
        if ((old ^ m_config) & CFG_ENABLE)
            for (unsigned n = 0; n < TIMERS; ++n)
                schedule(n, true);
        return;
    }
    case REG_STATUS:
        m_status &= ~(value & mask & ((1ull << TIMERS) - 1)); // write 1 to clear
        update_all();
        return;
    case REG_COUNTER:
        // The spec asks software to halt the counter first; a write while it
        // runs takes effect all the same.
        m_counter_base = merge(main_counter());
        m_base_ns = m_clock.now_ns();
        for (unsigned n = 0; n < TIMERS; ++n)
            schedule(n, true);
        return;
    default:
        break;
    }
    if (reg < REG_TIMER0 || reg >= REG_TIMER0 + TIMERS * TIMER_STRIDE)
        return;
    const unsigned n = static_cast<unsigned>((reg - REG_TIMER0) / TIMER_STRIDE);
    Timer& t = m_timers[n];
    switch ((reg - REG_TIMER0) % TIMER_STRIDE) {
    case TIMER_CONFIG:
        write_timer_config(n, merge(t.config));
        return;
    case TIMER_COMPARATOR: {
        const u64 limit = (t.config & TN_32BIT) ? 0xFFFFFFFF : ~0ull;
        const bool periodic = t.config & TN_PERIODIC;
        // One-shot, or periodic with Tn_VAL_SET: the comparator itself;
        // periodic: the period added at each match (2.3.9.2.2).
        if (!periodic || (t.config & TN_VAL_SET))
            t.comparator = merge(t.comparator) & limit;
        if (periodic)
            t.period = merge(t.period) & limit;
        t.config &= ~TN_VAL_SET;
        schedule(n, true);
        return;
    }
    default:
        return; // FSB route: no FSB delivery
    }
}

u64 Hpet::io_read(u64 offset, unsigned size)
{
    if (offset >= MMIO_SIZE || size == 0 || size > 8)
        return 0;
    const unsigned shift = (offset & 7) * 8;
    const u64 ones = size_mask(size);
    return (read_register(offset & ~7ull) >> shift) & ones;
}

void Hpet::io_write(u64 offset, unsigned size, u64 value)
{
    if (offset >= MMIO_SIZE || size == 0 || size > 8 || (offset & 7) + size > 8)
        return;
    const unsigned shift = (offset & 7) * 8;
    const u64 ones = size_mask(size);
    write_register(offset & ~7ull, (value & ones) << shift, ones << shift);
}

void Hpet::visit_state(StateVisitor& v)
{
    v.section("hpet", 1);
    v.field("config", m_config);
    v.field("status", m_status);
    v.field("counter_base", m_counter_base);
    v.field("base_ns", m_base_ns);
    if (v.loading() && v.ok() && ((m_config & ~(CFG_ENABLE | CFG_LEGACY)) || (m_status >> TIMERS)))
        return v.fail("the HPET's configuration or status has bits it does not have");
    for (Timer& t : m_timers) {
        const u64 fixed_config = t.config;
        v.field("timer_config", t.config);
        v.field("comparator", t.comparator);
        v.field("period", t.period);
        v.field("line", t.line);
        v.field("line_gsi", t.line_gsi);
        // As register writes leave a timer (a snapshot is input): its
        // capability bits, periodic mode only where it is capable, a 32-bit
        // timer's comparator and period within 32 bits (a period whose low
        // half is zero divided by zero at the next match), a level held on
        // one of the 32 routes.
        if (v.loading() && v.ok()) {
            const bool capable = fixed_config & TN_PERIODIC_CAP;
            const bool wide = (t.config & TN_32BIT) && ((t.comparator | t.period) >> 32);
            if (((t.config ^ fixed_config) & ~TN_WRITABLE) || (!capable && (t.config & TN_PERIODIC)) || wide ||
                (t.line && t.line_gsi > 31)) {
                t.config = fixed_config;
                return v.fail("an HPET timer's configuration, comparator or period is not one its registers "
                              "can hold");
            }
        }
        bool armed = t.clock->armed();
        u64 deadline = armed ? t.clock->deadline() : 0;
        v.field("armed", armed);
        v.field("deadline", deadline);
        if (v.loading()) {
            if (armed)
                t.clock->arm(deadline);
            else
                t.clock->disarm();
        }
    }
}
