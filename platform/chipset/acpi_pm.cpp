#include "platform/chipset/acpi_pm.h"

#include "mmu/base/state_visitor.h"

namespace {
constexpr u16 STS_W1C = AcpiPm::TMR_STS | AcpiPm::BM_STS | AcpiPm::GBL_STS | AcpiPm::PWRBTN_STS |
                        AcpiPm::SLPBTN_STS | AcpiPm::RTC_STS | AcpiPm::PCIEXP_WAKE_STS |
                        AcpiPm::WAK_STS;
constexpr u16 EN_WRITABLE = AcpiPm::TMR_EN | AcpiPm::GBL_EN | AcpiPm::PWRBTN_EN |
                            AcpiPm::SLPBTN_EN | AcpiPm::RTC_EN | AcpiPm::PCIEXP_WAKE_DIS;
// Status bits that raise the SCI when enabled (the same bit in PM1_EN).
constexpr u16 SCI_SOURCES =
    AcpiPm::TMR_STS | AcpiPm::GBL_STS | AcpiPm::PWRBTN_STS | AcpiPm::SLPBTN_STS | AcpiPm::RTC_STS;
constexpr u16 CNT_WRITABLE = AcpiPm::SCI_EN | AcpiPm::BM_RLD | AcpiPm::SLP_TYP_MASK;
} // namespace

AcpiPm::AcpiPm(VirtualClock& clock) : m_clock(clock), m_timer(clock, [this] { timer_fired(); })
{
    reset();
}

void AcpiPm::reset()
{
    m_status = 0;
    m_enable = 0;
    m_control = SCI_EN;
    m_tmr_epoch = timer_period_index();
    m_timer.disarm();
    m_sleeping = false;
    update_sci();
}

u64 AcpiPm::ticks() const
{
    return static_cast<u64>(static_cast<unsigned __int128>(m_clock.now_ns()) * TIMER_HZ /
                            1'000'000'000u);
}

u32 AcpiPm::timer_value() const
{
    return static_cast<u32>(ticks());
}

u16 AcpiPm::status() const
{
    return m_status | (timer_period_index() != m_tmr_epoch ? TMR_STS : 0);
}

void AcpiPm::update_sci()
{
    const bool level = (m_control & SCI_EN) && (status() & m_enable & SCI_SOURCES);
    if (level != m_sci_level) {
        m_sci_level = level;
        if (m_sci)
            m_sci(level);
    }
    arm_timer();
}

void AcpiPm::arm_timer()
{
    // Only an enabled timer event needs a clock event; TMR_STS itself is
    // computed when read.
    if (!(m_enable & TMR_EN) || (status() & TMR_STS)) {
        m_timer.disarm();
        return;
    }
    const unsigned __int128 next_tick = (unsigned __int128)(timer_period_index() + 1) << 31;
    const u64 ns = static_cast<u64>((next_tick * 1'000'000'000u + TIMER_HZ - 1) / TIMER_HZ);
    m_timer.arm(ns);
}

void AcpiPm::timer_fired()
{
    update_sci();
}

void AcpiPm::press_power_button()
{
    m_status |= PWRBTN_STS;
    update_sci();
    // The power button wakes the system from any sleep state, enabled or
    // not (ACPI 6.x 4.8.3.1.1, PWRBTN_EN).
    if (m_sleeping)
        wake_from_sleep();
}

void AcpiPm::wake()
{
    m_status |= WAK_STS;
    update_sci();
}

void AcpiPm::set_rtc_irq(bool level)
{
    const bool rising = level && !m_rtc_irq;
    m_rtc_irq = level;
    if (!rising)
        return;
    m_status |= RTC_STS;
    update_sci();
    if (m_sleeping && (m_enable & RTC_EN))
        wake_from_sleep();
}

void AcpiPm::wake_from_sleep()
{
    m_sleeping = false;
    wake();
    if (m_on_wake)
        m_on_wake();
}

u8 AcpiPm::read_byte(unsigned offset) const
{
    switch (offset) {
    case 0:
        return static_cast<u8>(status());
    case 1:
        return static_cast<u8>(status() >> 8);
    case 2:
        return static_cast<u8>(m_enable);
    case 3:
        return static_cast<u8>(m_enable >> 8);
    case 4:
        return static_cast<u8>(m_control);
    case 5:
        return static_cast<u8>(m_control >> 8); // SLP_EN reads 0
    default:
        return 0;
    }
}

void AcpiPm::write_byte(unsigned offset, u8 value)
{
    const unsigned shift = (offset & 1) * 8;
    const u16 v = static_cast<u16>(value << shift);
    const u16 lane = static_cast<u16>(0xFF << shift);
    switch (offset) {
    case 0:
    case 1: {
        const u16 clear = v & STS_W1C;
        if (clear & TMR_STS)
            m_tmr_epoch = timer_period_index();
        m_status &= ~clear;
        break;
    }
    case 2:
    case 3:
        m_enable = static_cast<u16>((m_enable & ~(lane & EN_WRITABLE)) | (v & EN_WRITABLE));
        break;
    case 4:
    case 5:
        m_control = static_cast<u16>((m_control & ~(lane & CNT_WRITABLE)) | (v & CNT_WRITABLE));
        if (v & SLP_EN) {
            const u8 typ = static_cast<u8>((m_control & SLP_TYP_MASK) >> 10);
            if (typ == SLP_TYP_S3)
                m_sleeping = true;
            if (m_on_sleep)
                m_on_sleep(typ);
        }
        break;
    default:
        return; // PM timer: read-only
    }
    update_sci();
}

u64 AcpiPm::io_read(u64 offset, unsigned size)
{
    if (offset >= PM_TMR_OFFSET && offset < PM_TMR_OFFSET + PM_TMR_LEN) {
        const u64 t = timer_value() >> ((offset - PM_TMR_OFFSET) * 8);
        return size >= 4 ? t : t & ((1ull << (size * 8)) - 1);
    }
    u64 v = 0;
    for (unsigned i = 0; i < size && offset + i < PORT_COUNT; ++i)
        v |= u64(read_byte(static_cast<unsigned>(offset + i))) << (8 * i);
    return v;
}

void AcpiPm::io_write(u64 offset, unsigned size, u64 value)
{
    for (unsigned i = 0; i < size && offset + i < PORT_COUNT; ++i)
        write_byte(static_cast<unsigned>(offset + i), static_cast<u8>(value >> (8 * i)));
}

void AcpiPm::visit_state(StateVisitor& v)
{
    v.section("acpi_pm", 2);
    v.field("status", m_status);
    v.field("enable", m_enable);
    v.field("control", m_control);
    v.field("tmr_epoch", m_tmr_epoch);
    v.field("sci_level", m_sci_level);
    v.field("rtc_irq", m_rtc_irq);
    v.field("sleeping", m_sleeping);
    if (v.loading())
        arm_timer();
}
