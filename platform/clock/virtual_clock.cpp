#include "platform/clock/virtual_clock.h"

#include "mmu/base/host_time.h"

#include <algorithm>

ClockTimer::ClockTimer(VirtualClock& clock, std::function<void()> callback)
    : m_clock(clock), m_callback(std::move(callback))
{
    m_clock.add(this);
}

ClockTimer::~ClockTimer() { m_clock.remove(this); }

void ClockTimer::arm(u64 deadline_ns)
{
    m_deadline = deadline_ns;
    m_armed = true;
    if (m_clock.m_arm_listener)
        m_clock.m_arm_listener(deadline_ns);
}

VirtualClock::VirtualClock(Mode mode)
    : m_mode(mode), m_host_time(host_monotonic_ns), m_host_start_ns(m_host_time())
{
}

void VirtualClock::set_host_time_source(std::function<u64()> source)
{
    m_host_time = std::move(source);
    m_host_start_ns = m_host_time();
    m_hidden_ns = m_last_ns = m_last_instructions = 0;
}

u64 VirtualClock::now_ns() const
{
    if (m_mode == Mode::Deterministic)
        return (m_instructions ? m_instructions() * NS_PER_INSTRUCTION : 0) + m_idle_ns;
    u64 now = m_host_time() - m_host_start_ns - m_hidden_ns;
    if (now < m_last_ns)
        return m_last_ns;
    if (m_instructions) {
        const u64 instructions = m_instructions();
        const u64 allowed = MAX_RUNNING_GAP_NS + (instructions - m_last_instructions) *
                                                     MAX_NS_PER_RUNNING_INSTRUCTION;
        if (!m_idle_wait && now - m_last_ns > allowed) {
            m_hidden_ns += now - m_last_ns - allowed;
            now = m_last_ns + allowed;
        }
        m_last_instructions = instructions;
    }
    m_idle_wait = false;
    m_last_ns = now;
    return now;
}

void VirtualClock::skip_to(u64 deadline_ns)
{
    if (m_mode != Mode::Deterministic)
        return;
    const u64 now = now_ns();
    if (deadline_ns > now)
        m_idle_ns += deadline_ns - now;
}

u64 VirtualClock::next_deadline() const
{
    u64 next = ~0ull;
    for (const ClockTimer* t : m_timers)
        if (t->m_armed)
            next = std::min(next, t->m_deadline);
    return next;
}

u64 VirtualClock::instructions_until_next_deadline() const
{
    const u64 deadline = next_deadline();
    if (deadline == ~0ull)
        return ~0ull;
    const u64 now = now_ns();
    if (deadline <= now)
        return 0;
    // Host mode counts one instruction per nanosecond too: see the header.
    return (deadline - now + NS_PER_INSTRUCTION - 1) / NS_PER_INSTRUCTION;
}

void VirtualClock::run_due()
{
    const u64 now = now_ns();
    // Fire in deadline order; a timer fires at most once per call so that a
    // callback re-arming in the past cannot loop forever.
    std::vector<ClockTimer*> due;
    for (ClockTimer* t : m_timers)
        if (t->m_armed && t->m_deadline <= now)
            due.push_back(t);
    std::stable_sort(due.begin(), due.end(),
                     [](const ClockTimer* a, const ClockTimer* b) { return a->m_deadline < b->m_deadline; });
    for (ClockTimer* t : due) {
        t->m_armed = false;
        t->m_callback();
    }
}

void VirtualClock::remove(ClockTimer* t)
{
    m_timers.erase(std::remove(m_timers.begin(), m_timers.end(), t), m_timers.end());
}

void VirtualClock::visit_state(StateVisitor& v)
{
    v.section("virtual-clock", 1);
    u8 mode = static_cast<u8>(m_mode);
    v.field("mode", mode);
    if (v.loading() && mode != static_cast<u8>(m_mode))
        return v.fail("the snapshot's clock mode differs (--deterministic)");
    v.field("idle_ns", m_idle_ns);
    u64 now = m_mode == Mode::Host ? now_ns() : 0;
    v.field("host_mode_now_ns", now);
    if (v.loading() && m_mode == Mode::Host) {
        // Host time goes on from the saved reading: this process's elapsed
        // time so far is hidden, as preemption is.
        const u64 elapsed = m_host_time() - m_host_start_ns;
        m_host_start_ns = m_host_time() - std::max(now, elapsed);
        m_hidden_ns = std::max(now, elapsed) - now;
        m_last_ns = now;
        m_last_instructions = m_instructions ? m_instructions() : 0;
        m_idle_wait = true;
    }
}
