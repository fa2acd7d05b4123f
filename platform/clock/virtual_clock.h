// The one clock every timer runs on (docs/architecture.md "Time"). In host mode virtual
// time follows the host's monotonic clock, minus the time the host did not
// let us run (see now_ns); in deterministic mode it is a pure function of
// retired instructions, so a run replays exactly.
// Devices own ClockTimers; the machine's run loop asks for the next deadline
// (to bound the vCPU quantum) and fires due timers between quanta.
#pragma once

#include "mmu/base/state_visitor.h"
#include "mmu/base/types.h"

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
    // Host mode: the most virtual time that may pass between two readings
    // while vCPUs run: a fixed allowance plus a generous per-instruction
    // budget (the interpreter retires one in ~10 ns). A larger gap means the
    // host preempted us; it is hidden, as a VM does not see time it was not
    // scheduled (Linux's PIT-based TSC calibration fails on such jumps).
    static constexpr u64 MAX_RUNNING_GAP_NS = 20'000;
    static constexpr u64 MAX_NS_PER_RUNNING_INSTRUCTION = 200;

    explicit VirtualClock(Mode mode = Mode::Host);
    Mode mode() const { return m_mode; }
    // Where retired instructions come from (all vCPUs together).
    void set_instruction_counter(std::function<u64()> counter) { m_instructions = std::move(counter); }
    // Tests: where host time comes from (default CLOCK_MONOTONIC).
    void set_host_time_source(std::function<u64()> source);

    // Monotonic: never less than a previous reading.
    u64 now_ns() const;
    // Host mode: the machine slept (every vCPU idle); the wall time that
    // passed until the next reading is real virtual time, not preemption.
    void note_idle_wait() { m_idle_wait = true; }
    // Deterministic mode: every vCPU is idle (HLT), so virtual time jumps to
    // `deadline_ns` instead of being waited for. No effect in host mode.
    void skip_to(u64 deadline_ns);
    // Earliest armed deadline, or UINT64_MAX.
    u64 next_deadline() const;
    // How many instructions the vCPUs may retire before the earliest armed
    // deadline passes, so that the run loop can stop a slice there and fire
    // the timer on time (UINT64_MAX when no timer is armed, 0 when one is
    // due). Deterministic mode: exact. Host mode: an upper bound, as the
    // interpreter retires well under one instruction per nanosecond.
    u64 instructions_until_next_deadline() const;
    // Fires every timer whose deadline has passed (a callback may re-arm its timer).
    void run_due();
    // Told of every deadline a timer is armed for: a run loop that sleeps
    // until the next deadline while vCPUs run on their own threads wakes
    // for an earlier one (Machine::run_parallel_round).
    void set_arm_listener(std::function<void(u64 deadline_ns)> listener) { m_arm_listener = std::move(listener); }

    // The clock's own state (the timers are their devices'). Load it after
    // the vCPUs' retired counts: in deterministic mode time is computed from
    // them; in host mode it goes on from the saved time.
    void visit_state(StateVisitor& v);

private:
    friend class ClockTimer;
    void add(ClockTimer* t) { m_timers.push_back(t); }
    void remove(ClockTimer* t);

    Mode m_mode;
    std::function<u64()> m_host_time;
    u64 m_host_start_ns;
    // Host mode bookkeeping (mutable: reading the clock records the reading).
    mutable u64 m_hidden_ns = 0;      // preemption time hidden so far
    mutable u64 m_last_ns = 0;        // the previous reading
    mutable u64 m_last_instructions = 0;
    mutable bool m_idle_wait = false;
    u64 m_idle_ns = 0; // deterministic mode: time skipped while all vCPUs were idle
    std::function<u64()> m_instructions;
    std::vector<ClockTimer*> m_timers;
    std::function<void(u64)> m_arm_listener;
};
