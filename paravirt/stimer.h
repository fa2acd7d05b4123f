// The four synthetic timers of one virtual processor (TLFS 12.5): one-shot
// (absolute expiration in reference time) or periodic (a period), each
// signalling a HV_MESSAGE_TYPE_TIMER_EXPIRED message to a SINT of the VP's
// SynIC or, in direct mode, a vector straight to its APIC (TLFS 12.2).
// Deadlines are ClockTimers on the VirtualClock, so deterministic runs stay
// deterministic.
#pragma once

#include "mmu/base/state_visitor.h"
#include "paravirt/apic_port.h"
#include "paravirt/reference_time.h"
#include "paravirt/synic.h"
#include "platform/clock/virtual_clock.h"

#include <array>
#include <memory>
#include <optional>

class SyntheticTimers {
public:
    SyntheticTimers(unsigned vp, VirtualClock& clock, const ReferenceTime& time, Synic& synic,
                    ApicPort& apic, bool direct_mode_available);

    // HV_X64_MSR_STIMER0_CONFIG .. HV_X64_MSR_STIMER3_COUNT; empty / false is #GP.
    std::optional<u64> read_msr(u32 index) const;
    bool write_msr(u32 index, u64 value);

    // The SynIC reports a slot that may have become free (EOM, EOI): a timer
    // whose message is waiting for it tries again.
    void slot_freed(unsigned sint);

    // Reference time of the next expiration (0 when none is scheduled) and
    // whether an expiration message waits for a free slot.
    u64 expiration(unsigned timer) const { return m_timers[timer].expiration; }
    bool message_pending(unsigned timer) const { return m_timers[timer].pending; }

    void reset();
    void visit_state(StateVisitor& v);

private:
    struct Timer {
        u64 config = 0;
        u64 count = 0;
        u64 expiration = 0;   // reference time of the current period's end
        bool pending = false; // expired, signal not yet delivered
        std::unique_ptr<ClockTimer> clock_timer;
    };

    void stop(Timer& t);
    bool loadable(const Timer& t) const;
    void start(unsigned index);
    void arm(Timer& t);
    void clock_fired(unsigned index);
    void expire(unsigned index, u64 now);
    bool signal(unsigned index, u64 now);
    void completed(unsigned index, u64 now);

    unsigned m_vp;
    const ReferenceTime& m_time;
    Synic& m_synic;
    ApicPort& m_apic;
    bool m_direct_mode_available;
    std::array<Timer, HV_STIMER_COUNT> m_timers;
};
