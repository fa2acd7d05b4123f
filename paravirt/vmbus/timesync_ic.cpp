#include "paravirt/vmbus/timesync_ic.h"

#include <utility>

using namespace vmbus;

// Linux 6.1 takes timesync 4.0, else 3.0, else 1.0 (ts_versions in hv_util.c).
TimesyncIc::TimesyncIc(GuestMemory memory, std::function<void()> signal_guest, VirtualClock& clock,
                       std::function<u64()> unix_time_ns, std::function<u64()> reference_time)
    : IcService(memory, std::move(signal_guest), {0x40000, 0x30000, 0x10000}), m_clock(clock),
      m_timer(clock, [this] { send_time(std::exchange(m_sync_pending, false)); }),
      m_unix_time_ns(std::move(unix_time_ns)), m_reference_time(std::move(reference_time))
{
}

void TimesyncIc::on_negotiated()
{
    // The guest's clock starts from the host's, as after a boot on Hyper-V.
    send_time(true);
}

void TimesyncIc::sync_soon()
{
    if (!negotiated())
        return;
    m_sync_pending = true;
    m_timer.arm(m_clock.now_ns());
}

void TimesyncIc::send_time(bool sync)
{
    if (!negotiated())
        return;
    const bool v4 = service_version() >= 0x40000;
    std::vector<u8> m =
        request(ic::TYPE_TIMESYNC, v4 ? ic::TIMESYNC_V4_BODY : ic::TIMESYNC_V3_BODY);
    // Both clocks read together, so the guest's correction is right.
    store_le64(m, ic::TIMESYNC_PARENT_TIME, m_unix_time_ns() / 100 + ic::EPOCH_1601_TO_1970);
    const u8 flags = sync ? ic::TIMESYNC_FLAG_SYNC : ic::TIMESYNC_FLAG_SAMPLE;
    if (v4) {
        store_le64(m, ic::TIMESYNC_REFERENCE_TIME, m_reference_time());
        m[ic::TIMESYNC_V4_FLAGS] = flags;
    } else {
        m[ic::TIMESYNC_V3_FLAGS] = flags;
    }
    if (send(m))
        ++(sync ? m_syncs : m_samples);
    else if (sync)
        m_sync_pending = true; // a full ring: the next message is the SYNC
    m_timer.arm(m_clock.now_ns() + SAMPLE_PERIOD_NS);
}

void TimesyncIc::on_response(u16 type, std::span<const u8>)
{
    if (type == ic::TYPE_TIMESYNC)
        ++m_answers;
}

void TimesyncIc::on_close()
{
    m_timer.disarm();
    m_sync_pending = false;
}

void TimesyncIc::visit_state(StateVisitor& v)
{
    v.section("timesync-ic", 1);
    visit_channel_state(v);
    v.field("sync_pending", m_sync_pending);
    v.field("syncs", m_syncs);
    v.field("samples", m_samples);
    v.field("answers", m_answers);
    ic::visit_timer(v, m_timer);
}
