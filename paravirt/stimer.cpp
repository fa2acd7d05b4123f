#include "paravirt/stimer.h"

#include <cstring>

namespace {
bool enabled(u64 config)
{
    return config & HV_STIMER_ENABLE;
}
bool periodic(u64 config)
{
    return config & HV_STIMER_PERIODIC;
}
bool direct(u64 config)
{
    return config & HV_STIMER_DIRECT_MODE;
}
unsigned sint_of(u64 config)
{
    return (config >> HV_STIMER_SINT_SHIFT) & 0xF;
}
u8 vector_of(u64 config)
{
    return static_cast<u8>(config >> HV_STIMER_VECTOR_SHIFT);
}
} // namespace

SyntheticTimers::SyntheticTimers(unsigned vp, VirtualClock& clock, const ReferenceTime& time,
                                 Synic& synic, ApicPort& apic, bool direct_mode_available)
    : m_vp(vp), m_time(time), m_synic(synic), m_apic(apic),
      m_direct_mode_available(direct_mode_available)
{
    for (unsigned i = 0; i < HV_STIMER_COUNT; ++i)
        m_timers[i].clock_timer =
            std::make_unique<ClockTimer>(clock, [this, i] { clock_fired(i); });
}

void SyntheticTimers::reset()
{
    // TLFS 12.5.1: every configuration and count register is zero.
    for (Timer& t : m_timers) {
        stop(t);
        t.config = 0;
        t.count = 0;
    }
}

std::optional<u64> SyntheticTimers::read_msr(u32 index) const
{
    if (index < HV_X64_MSR_STIMER0_CONFIG || index > HV_X64_MSR_STIMER3_COUNT)
        return std::nullopt;
    const Timer& t = m_timers[(index - HV_X64_MSR_STIMER0_CONFIG) / 2];
    return (index - HV_X64_MSR_STIMER0_CONFIG) % 2 ? t.count : t.config;
}

bool SyntheticTimers::write_msr(u32 index, u64 value)
{
    if (index < HV_X64_MSR_STIMER0_CONFIG || index > HV_X64_MSR_STIMER3_COUNT)
        return false;
    const unsigned i = (index - HV_X64_MSR_STIMER0_CONFIG) / 2;
    Timer& t = m_timers[i];
    if ((index - HV_X64_MSR_STIMER0_CONFIG) % 2) {
        // TLFS 12.5.2: zero stops the timer whatever AutoEnable says;
        // otherwise AutoEnable turns it on.
        stop(t);
        t.count = value;
        if (value == 0)
            t.config &= ~HV_STIMER_ENABLE;
        else if (t.config & HV_STIMER_AUTO_ENABLE)
            t.config |= HV_STIMER_ENABLE;
        if (enabled(t.config))
            start(i);
        return true;
    }
    if (value & HV_STIMER_RESERVED)
        return false;
    if (direct(value) && !m_direct_mode_available)
        return false;
    stop(t);
    // TLFS 12.5.1: an enabled message-mode timer with SINTx 0 is disabled at once.
    if (enabled(value) && !direct(value) && sint_of(value) == 0)
        value &= ~HV_STIMER_ENABLE;
    t.config = value;
    if (enabled(t.config))
        start(i);
    return true;
}

void SyntheticTimers::stop(Timer& t)
{
    t.clock_timer->disarm();
    t.expiration = 0;
    t.pending = false;
}

void SyntheticTimers::start(unsigned index)
{
    Timer& t = m_timers[index];
    if (t.count == 0)
        return;
    const u64 now = m_time.now();
    if (periodic(t.config)) {
        // The first period begins when the timer is enabled.
        t.expiration = now + t.count;
        arm(t);
        return;
    }
    t.expiration = t.count;
    // A one-shot whose time has passed expires immediately (TLFS 12.5.1).
    if (now >= t.count)
        expire(index, now);
    else
        arm(t);
}

void SyntheticTimers::arm(Timer& t)
{
    t.clock_timer->arm(m_time.clock_ns_when(t.expiration));
}

void SyntheticTimers::clock_fired(unsigned index)
{
    Timer& t = m_timers[index];
    if (!enabled(t.config) || t.pending || t.expiration == 0)
        return;
    const u64 now = m_time.now();
    // Never early (TLFS 12.1): a deadline rounded to the clock fires again.
    if (now < t.expiration)
        return arm(t);
    expire(index, now);
}

void SyntheticTimers::expire(unsigned index, u64 now)
{
    Timer& t = m_timers[index];
    t.pending = true;
    if (signal(index, now))
        completed(index, now);
    // Otherwise the message waits for its slot (slot_freed). A periodic
    // timer is not rescheduled meanwhile: its missed periods are lost ticks.
}

bool SyntheticTimers::signal(unsigned index, u64 now)
{
    const Timer& t = m_timers[index];
    if (direct(t.config)) {
        m_apic.raise_vector(m_vp, vector_of(t.config), false);
        return true;
    }
    // HV_TIMER_MESSAGE_PAYLOAD (TLFS 13.3.1).
    HvMessage m;
    m.type = HV_MESSAGE_TYPE_TIMER_EXPIRED;
    m.payload_size = 24;
    const u32 timer_index = index;
    std::memcpy(m.payload.data(), &timer_index, 4);
    std::memcpy(m.payload.data() + 8, &t.expiration, 8);
    std::memcpy(m.payload.data() + 16, &now, 8);
    return m_synic.try_deliver(sint_of(t.config), m) == Synic::SlotResult::Delivered;
}

void SyntheticTimers::completed(unsigned index, u64 now)
{
    Timer& t = m_timers[index];
    t.pending = false;
    if (!periodic(t.config)) {
        // One-shot timers disable themselves on expiration (TLFS 12.5.1).
        t.config &= ~HV_STIMER_ENABLE;
        t.expiration = 0;
        return;
    }
    // Next period end strictly after now; periods missed while the VP or the
    // message slot was unavailable are skipped, not delivered in a burst.
    const u64 next = t.expiration + t.count;
    t.expiration = next > now ? next : now + t.count - (now - t.expiration) % t.count;
    arm(t);
}

void SyntheticTimers::slot_freed(unsigned sint)
{
    for (unsigned i = 0; i < HV_STIMER_COUNT; ++i) {
        const Timer& t = m_timers[i];
        if (t.pending && enabled(t.config) && !direct(t.config) && sint_of(t.config) == sint) {
            const u64 now = m_time.now();
            if (signal(i, now))
                completed(i, now);
        }
    }
}

// A timer as writes to its registers can leave it (a snapshot is input):
// no reserved bits, direct mode only where it is offered, an enabled
// message-mode timer on a SINT other than 0 (TLFS 12.5.1); an expiration or
// a message pending only for an enabled timer with a count (a periodic one
// would otherwise compute its next period modulo zero).
bool SyntheticTimers::loadable(const Timer& t) const
{
    if ((t.config & HV_STIMER_RESERVED) || (direct(t.config) && !m_direct_mode_available))
        return false;
    if (enabled(t.config) && !direct(t.config) && sint_of(t.config) == 0)
        return false;
    const bool running = t.expiration != 0 || t.pending;
    return !running || (enabled(t.config) && t.count != 0);
}

void SyntheticTimers::visit_state(StateVisitor& v)
{
    v.section("stimers", 1);
    for (Timer& t : m_timers) {
        v.field("config", t.config);
        v.field("count", t.count);
        v.field("expiration", t.expiration);
        v.field("pending", t.pending);
        if (v.loading() && v.ok() && !loadable(t))
            return v.fail("a synthetic timer's configuration, count or expiration is not one the "
                          "registers can give");
        if (v.loading()) {
            t.clock_timer->disarm();
            if (enabled(t.config) && !t.pending && t.expiration != 0)
                arm(t);
        }
    }
}
