// The time synchronization integration service (docs/vmbus.md "Integration
// services"): the host's UTC time for the guest's clock. After the
// negotiation (ic_service.h) the host sends a TIMESYNC message flagged SYNC
// (the guest sets its clock: Linux's hv_utils calls do_settimeofday64),
// then one flagged SAMPLE every period (Linux keeps it for its "hyperv" PTP
// clock), and SYNC again when asked (after a restore, when the guest's
// clock stood still while the host's went on). Times are in 100 ns units
// since 1601-01-01 UTC, as Windows counts them. From version 4.0 a message
// also carries the partition reference counter at the moment the time was
// taken, so the guest can add the delay until it reads the message.
#pragma once

#include "paravirt/vmbus/ic_service.h"

namespace ic {
inline constexpr const char* TIMESYNC_CLASS_GUID = "9527e630-d0ae-497b-adce-e80ab0175caf";
// Before 4.0 (struct ictimesync_data): u64 parent (host) time, u64 child
// time, u64 round-trip time, u8 flags. From 4.0 (struct
// ictimesync_ref_data): u64 parent time, u64 reference time, u8 flags, u8
// leap flags, u8 stratum, reserved bytes to 24.
constexpr unsigned TIMESYNC_PARENT_TIME = HEADER_END, TIMESYNC_REFERENCE_TIME = HEADER_END + 8;
constexpr unsigned TIMESYNC_V3_FLAGS = HEADER_END + 24, TIMESYNC_V3_BODY = 25;
constexpr unsigned TIMESYNC_V4_FLAGS = HEADER_END + 16, TIMESYNC_V4_BODY = 24;
// ICTIMESYNCFLAG_*.
constexpr u8 TIMESYNC_FLAG_SYNC = 1, TIMESYNC_FLAG_SAMPLE = 2;
// 100 ns units from 1601-01-01 to 1970-01-01 (Linux's WLTIMEDELTA).
constexpr u64 EPOCH_1601_TO_1970 = 116444736000000000ull;
} // namespace ic

class TimesyncIc final : public IcService {
public:
    // How often a SAMPLE goes (openvmm's timesync IC: 5 s).
    static constexpr u64 SAMPLE_PERIOD_NS = 5'000'000'000;

    // `unix_time_ns`: the host's UTC time in ns since 1970 (the machine's
    // choice: the host's clock, or a fixed start plus virtual time with
    // --deterministic); `reference_time`: the partition reference counter
    // (100 ns units) the guest reads.
    TimesyncIc(GuestMemory memory, std::function<void()> signal_guest, VirtualClock& clock,
               std::function<u64()> unix_time_ns, std::function<u64()> reference_time);

    // The next message, sent at once, is a SYNC (after a restore).
    void sync_soon();
    u64 syncs_sent() const { return m_syncs; }
    u64 samples_sent() const { return m_samples; }
    u64 answers() const { return m_answers; }

    void visit_state(StateVisitor& v);

private:
    void on_negotiated() override;
    void on_response(u16 type, std::span<const u8> message) override;
    void on_close() override;
    void send_time(bool sync);

    VirtualClock& m_clock;
    ClockTimer m_timer;
    std::function<u64()> m_unix_time_ns;
    std::function<u64()> m_reference_time;
    bool m_sync_pending = false;
    u64 m_syncs = 0, m_samples = 0, m_answers = 0;
};
