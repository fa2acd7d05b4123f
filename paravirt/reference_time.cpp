#include "paravirt/reference_time.h"

#include "platform/clock/virtual_clock.h"

#include <cassert>

namespace {
using u128 = unsigned __int128;
constexpr u64 NS_PER_SECOND = 1'000'000'000;
constexpr u64 REFERENCE_HZ = 10'000'000; // 100 ns ticks

u64 saturate(u128 v)
{
    return v > ~0ull ? ~0ull : static_cast<u64>(v);
}
} // namespace

ReferenceTime::ReferenceTime(const VirtualClock& clock, u64 tsc_hz)
    : m_clock(clock), m_tsc_hz(tsc_hz),
      // Rounded up, not down: then (tsc * scale) >> 64 is exactly
      // floor(tsc * 10^7 / tsc_hz) for the first years of a partition's life,
      // instead of one tick short at every multiple of 100 ns.
      m_scale(static_cast<u64>(((u128(REFERENCE_HZ) << 64) + tsc_hz - 1) / tsc_hz))
{
    assert(tsc_hz > REFERENCE_HZ); // the scale must stay below 2^64
}

u64 ReferenceTime::tsc_at(u64 clock_ns) const
{
    return saturate(u128(clock_ns) * m_tsc_hz / NS_PER_SECOND);
}

u64 ReferenceTime::tsc_now() const
{
    return tsc_at(m_clock.now_ns());
}

u64 ReferenceTime::from_tsc(u64 tsc) const
{
    return static_cast<u64>((u128(tsc) * m_scale) >> 64) + static_cast<u64>(m_offset);
}

u64 ReferenceTime::clock_ns_when(u64 reference) const
{
    if (m_offset > 0 && reference <= static_cast<u64>(m_offset))
        return 0;
    const u64 scaled = reference - static_cast<u64>(m_offset);
    // Smallest TSC with (tsc * scale) >> 64 >= scaled, then the smallest ns
    // whose TSC reaches it: both are exact ceilings of the floors above.
    const u128 tsc = ((u128(scaled) << 64) + m_scale - 1) / m_scale;
    const u128 ns = (tsc * NS_PER_SECOND + m_tsc_hz - 1) / m_tsc_hz;
    return saturate(ns);
}
