// The one clock every timer runs on (DESIGN.md "Time"). In host mode virtual
// time follows the host's monotonic clock; in deterministic mode it is a pure
// function of retired instructions, so a run replays exactly.
// Devices own ClockTimers; the machine's run loop asks for the next deadline
// (to bound the vCPU quantum) and fires due timers between quanta.
#pragma once

#include "mmu/types.h"

#include <functional>
#include <vector>

class VirtualClock;

class ClockTimer {
public:
    ClockTimer(VirtualClock& clock, std::function<void()> callback);
    ~ClockTimer();
    ClockTimer(const ClockTimer&) = delete;
    ClockTimer& operator=(const ClockTimer&) = delete;

    void arm(u64 deadline_ns); // absolute virtual time
    void disarm() { m_armed = false; }
    bool armed() const { return m_armed; }
    u64 deadline() const { return m_deadline; }

private:
    friend class VirtualClock;
    VirtualClock& m_clock;
    std::function<void()> m_callback;
    u64 m_deadline = 0;
    bool m_armed = false;
};

class VirtualClock {
public:
    enum class Mode { Host, Deterministic };
    // Deterministic mode: virtual nanoseconds per retired instruction.
    static constexpr u64 NS_PER_INSTRUCTION = 1;

    explicit VirtualClock(Mode mode = Mode::Host);
    Mode mode() const { return m_mode; }
    // Where retired instructions come from (all vCPUs together).
    void set_instruction_counter(std::function<u64()> counter) { m_instructions = std::move(counter); }

    u64 now_ns() const;
    // Deterministic mode: every vCPU is idle (HLT), so virtual time jumps to
    // `deadline_ns` instead of being waited for. No effect in host mode.
    void skip_to(u64 deadline_ns);
    // Earliest armed deadline, or UINT64_MAX.
    u64 next_deadline() const;
    // Fires every timer whose deadline has passed (a callback may re-arm its timer).
    void run_due();

private:
    friend class ClockTimer;
    void add(ClockTimer* t) { m_timers.push_back(t); }
    void remove(ClockTimer* t);

    Mode m_mode;
    u64 m_host_start_ns;
    u64 m_idle_ns = 0; // deterministic mode: time skipped while all vCPUs were idle
    std::function<u64()> m_instructions;
    std::vector<ClockTimer*> m_timers;
};
