#include "platform/timers/cmos_rtc.h"

#include "mmu/bus/port_bus.h"

#include <algorithm>

namespace {

constexpr u64 NS_PER_SECOND = 1000000000ull;
constexpr u64 TIME_BASE_HZ = 32768;
// UIP rises 244 us (8 cycles of the 32.768 kHz time base) before an update.
constexpr u64 UIP_LEAD_NS = 8 * NS_PER_SECOND / TIME_BASE_HZ;
// After a divider reset is lifted, the first update comes half a second later.
constexpr u64 DIVIDER_RELEASE_NS = NS_PER_SECOND / 2;
constexpr i64 SECONDS_PER_DAY = 86400;

// Register map (MC146818A datasheet, figure 3).
enum Reg : u8 {
    SECONDS = 0x00,
    SECONDS_ALARM = 0x01,
    MINUTES = 0x02,
    MINUTES_ALARM = 0x03,
    HOURS = 0x04,
    HOURS_ALARM = 0x05,
    WEEKDAY = 0x06,
    DAY_OF_MONTH = 0x07,
    MONTH = 0x08,
    YEAR = 0x09,
    REG_A = 0x0A,
    REG_B = 0x0B,
    REG_C = 0x0C,
    REG_D = 0x0D,
};

constexpr u8 A_UIP = 0x80;
constexpr u8 A_RATE = 0x0F;

constexpr u8 B_SET = 0x80;
constexpr u8 B_PIE = 0x40;
constexpr u8 B_AIE = 0x20;
constexpr u8 B_UIE = 0x10;
constexpr u8 B_BINARY = 0x04; // DM: 1 = binary, 0 = BCD
constexpr u8 B_24H = 0x02;

constexpr u8 C_IRQF = 0x80;
constexpr u8 C_PF = 0x40;
constexpr u8 C_AF = 0x20;
constexpr u8 C_UF = 0x10;
constexpr u8 C_FLAGS = C_PF | C_AF | C_UF; // lined up with PIE, AIE, UIE

constexpr u8 D_VRT = 0x80;

constexpr u8 HOUR_PM = 0x80;
constexpr u8 ALARM_DONT_CARE = 0xC0;

constexpr u8 INDEX_NMI_MASK = 0x80;

bool is_time_register(u8 index)
{
    return index == SECONDS || index == MINUTES || index == HOURS || index == WEEKDAY ||
           index == DAY_OF_MONTH || index == MONTH || index == YEAR ||
           index == Mc146818Rtc::CENTURY_REGISTER;
}

i64 floor_div(i64 a, i64 b)
{
    i64 q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Days since 1970-01-01 of a proleptic Gregorian date, and back (the
// era-based civil calendar algorithms described by Howard Hinnant).
i64 days_from_civil(i64 y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const i64 era = floor_div(y, 400);
    const i64 yoe = y - era * 400;
    const i64 doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const i64 doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

struct Civil {
    i64 year;
    unsigned month;
    unsigned day;
};

Civil civil_from_days(i64 z)
{
    z += 719468;
    const i64 era = floor_div(z, 146097);
    const i64 doe = z - era * 146097;
    const i64 yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const i64 doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const i64 mp = (5 * doy + 2) / 153;
    const unsigned day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
    const unsigned month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
    return {yoe + era * 400 + (month <= 2), month, day};
}

// 0 = Sunday; 1970-01-01 was a Thursday.
unsigned weekday_of(i64 days)
{
    return static_cast<unsigned>(((days % 7) + 7 + 4) % 7);
}

} // namespace

Mc146818Rtc::Mc146818Rtc(VirtualClock& clock, i64 start_time)
    : m_clock(clock), m_timer(clock, [this] { on_timer(); })
{
    const u64 now = m_clock.now_ns();
    m_ram[REG_A] = 0x26; // 32.768 kHz divider, 1024 Hz periodic rate
    m_ram[REG_B] = B_24H;
    m_ram[REG_D] = D_VRT;
    m_phase_ns = now % NS_PER_SECOND;
    m_base_time = start_time - static_cast<i64>(update_index(now));
    m_flags_checked_ns = now;
    store_time(start_time);
}

void Mc146818Rtc::attach(PortBus& bus)
{
    bus.map(BASE, PORT_COUNT, this);
}

void Mc146818Rtc::set_nvram(u8 index, u8 value)
{
    m_ram[index & 0x7F] = value;
}

void Mc146818Rtc::set_memory_size(u64 below_4g, u64 above_4g)
{
    constexpr u64 KiB = 1024, MiB = 1024 * KiB;
    auto put16 = [this](u8 index, u64 value) {
        value = std::min<u64>(value, 0xFFFF);
        m_ram[index] = static_cast<u8>(value);
        m_ram[index + 1] = static_cast<u8>(value >> 8);
    };
    put16(0x15, std::min<u64>(below_4g / KiB, 640));
    const u64 extended = below_4g > MiB ? (below_4g - MiB) / KiB : 0;
    put16(0x17, extended);
    put16(0x30, extended);
    put16(0x34, below_4g > 16 * MiB ? (below_4g - 16 * MiB) / (64 * KiB) : 0);
    const u64 high = std::min<u64>(above_4g / (64 * KiB), 0xFFFFFF);
    m_ram[0x5B] = static_cast<u8>(high);
    m_ram[0x5C] = static_cast<u8>(high >> 8);
    m_ram[0x5D] = static_cast<u8>(high >> 16);
    // IBM AT checksum: the 16-bit sum of 0x10-0x2D, big-endian at 0x2E.
    u16 sum = 0;
    for (unsigned i = 0x10; i <= 0x2D; ++i)
        sum = static_cast<u16>(sum + m_ram[i]);
    m_ram[0x2E] = static_cast<u8>(sum >> 8);
    m_ram[0x2F] = static_cast<u8>(sum);
}

i64 Mc146818Rtc::current_time()
{
    if (running())
        return time_at(m_clock.now_ns());
    const u8 offset = m_weekday_offset;
    const i64 t = load_time();
    m_weekday_offset = offset;
    return t;
}

// --- time keeping ---------------------------------------------------------------

bool Mc146818Rtc::divider_running() const
{
    // DV = 010 is the 32.768 kHz time base; 000 and 001 (other crystals) are
    // taken as running too, the test and reset settings (011-111) are not.
    return ((m_ram[REG_A] >> 4) & 7) <= 2;
}

bool Mc146818Rtc::running() const
{
    return divider_running() && !(m_ram[REG_B] & B_SET);
}

u64 Mc146818Rtc::update_index(u64 ns) const
{
    // Updates happen at m_phase_ns + k seconds, k >= 0.
    return (ns + NS_PER_SECOND - m_phase_ns) / NS_PER_SECOND;
}

u64 Mc146818Rtc::next_update_ns(u64 ns) const
{
    return m_phase_ns + update_index(ns) * NS_PER_SECOND;
}

u64 Mc146818Rtc::periodic_cycles() const
{
    const unsigned rate = m_ram[REG_A] & A_RATE;
    if (rate == 0)
        return 0;
    // Datasheet table 5: rates 1 and 2 repeat rates 8 and 9 with this time base.
    const unsigned code = rate <= 2 ? rate + 7 : rate;
    return u64(1) << (code - 1);
}

u64 Mc146818Rtc::periodic_index(u64 ns) const
{
    // Periodic interrupts come from the same divider chain as the updates.
    const unsigned __int128 rel = ns + NS_PER_SECOND - m_phase_ns;
    return static_cast<u64>(rel * TIME_BASE_HZ / (NS_PER_SECOND * periodic_cycles()));
}

u64 Mc146818Rtc::next_periodic_ns(u64 ns) const
{
    const unsigned __int128 j = periodic_index(ns) + 1;
    const unsigned __int128 span = j * periodic_cycles() * NS_PER_SECOND;
    const u64 rel = static_cast<u64>((span + TIME_BASE_HZ - 1) / TIME_BASE_HZ);
    return rel - NS_PER_SECOND + m_phase_ns;
}

i64 Mc146818Rtc::time_at(u64 ns) const
{
    return m_base_time + static_cast<i64>(update_index(ns));
}

// --- register formats -------------------------------------------------------------

u8 Mc146818Rtc::to_register(unsigned value) const
{
    if (m_ram[REG_B] & B_BINARY)
        return static_cast<u8>(value);
    return static_cast<u8>((value / 10 % 10) << 4 | (value % 10));
}

std::optional<unsigned> Mc146818Rtc::from_register(u8 value) const
{
    if (m_ram[REG_B] & B_BINARY)
        return value;
    if ((value & 0x0F) > 9 || (value >> 4) > 9)
        return std::nullopt;
    return (value >> 4) * 10u + (value & 0x0F);
}

u8 Mc146818Rtc::hour_to_register(unsigned hour) const
{
    if (m_ram[REG_B] & B_24H)
        return to_register(hour);
    // 12-hour form: 12, 1, ..., 11 with bit 7 set after noon.
    const unsigned h12 = hour % 12 == 0 ? 12 : hour % 12;
    return static_cast<u8>(to_register(h12) | (hour >= 12 ? HOUR_PM : 0));
}

std::optional<unsigned> Mc146818Rtc::hour_from_register(u8 value) const
{
    if (m_ram[REG_B] & B_24H) {
        auto h = from_register(value);
        if (!h || *h > 23)
            return std::nullopt;
        return h;
    }
    auto h = from_register(value & static_cast<u8>(~HOUR_PM));
    if (!h || *h < 1 || *h > 12)
        return std::nullopt;
    return *h % 12 + ((value & HOUR_PM) ? 12 : 0);
}

void Mc146818Rtc::store_time(i64 time)
{
    const i64 days = floor_div(time, SECONDS_PER_DAY);
    const i64 second_of_day = time - days * SECONDS_PER_DAY;
    const Civil date = civil_from_days(days);
    m_ram[SECONDS] = to_register(static_cast<unsigned>(second_of_day % 60));
    m_ram[MINUTES] = to_register(static_cast<unsigned>(second_of_day / 60 % 60));
    m_ram[HOURS] = hour_to_register(static_cast<unsigned>(second_of_day / 3600));
    m_ram[WEEKDAY] = to_register((weekday_of(days) + m_weekday_offset) % 7 + 1); // 1 = Sunday
    m_ram[DAY_OF_MONTH] = to_register(date.day);
    m_ram[MONTH] = to_register(date.month);
    const i64 year = std::clamp<i64>(date.year, 0, 9999);
    m_ram[YEAR] = to_register(static_cast<unsigned>(year % 100));
    m_ram[CENTURY_REGISTER] = to_register(static_cast<unsigned>(year / 100));
}

i64 Mc146818Rtc::load_time()
{
    // Values the datasheet calls undefined are taken arithmetically (75
    // seconds is a minute and 15); unreadable ones count as their minimum.
    const unsigned second = from_register(m_ram[SECONDS]).value_or(0);
    const unsigned minute = from_register(m_ram[MINUTES]).value_or(0);
    const unsigned hour = hour_from_register(m_ram[HOURS]).value_or(0);
    const unsigned day = std::max(1u, from_register(m_ram[DAY_OF_MONTH]).value_or(1));
    const unsigned month = std::clamp(from_register(m_ram[MONTH]).value_or(1), 1u, 12u);
    const unsigned year2 = from_register(m_ram[YEAR]).value_or(0) % 100;
    const auto century = from_register(m_ram[CENTURY_REGISTER]);
    // Without a readable century, the usual 1970-2069 window.
    const i64 year =
        century && *century < 100 ? *century * 100 + year2 : (year2 < 70 ? 2000 : 1900) + year2;
    const i64 days = days_from_civil(year, month, 1) + (day - 1);
    const i64 time = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    // The day-of-week register is a counter of its own: keep what was set.
    const auto weekday = from_register(m_ram[WEEKDAY]);
    const i64 true_days = floor_div(time, SECONDS_PER_DAY);
    if (weekday && *weekday >= 1 && *weekday <= 7)
        m_weekday_offset = static_cast<u8>((*weekday - 1 + 7 - weekday_of(true_days)) % 7);
    return time;
}

std::optional<i64> Mc146818Rtc::next_alarm(i64 from) const
{
    // Each alarm byte is a value to match or "don't care" (top two bits set).
    constexpr int ANY = -1;
    int want[3];
    const u8 bytes[3] = {m_ram[HOURS_ALARM], m_ram[MINUTES_ALARM], m_ram[SECONDS_ALARM]};
    for (int i = 0; i < 3; ++i) {
        if ((bytes[i] & ALARM_DONT_CARE) == ALARM_DONT_CARE) {
            want[i] = ANY;
            continue;
        }
        auto v = i == 0 ? hour_from_register(bytes[i]) : from_register(bytes[i]);
        if (!v || *v >= (i == 0 ? 24u : 60u))
            return std::nullopt; // can never match
        want[i] = static_cast<int>(*v);
    }
    const i64 day = floor_div(from, SECONDS_PER_DAY);
    const i64 start = from - day * SECONDS_PER_DAY;
    // Any matchable alarm matches within a day of `from`.
    for (i64 d = 0; d < 2; ++d) {
        const i64 floor_second = d == 0 ? start : 0;
        for (int h = 0; h < 24; ++h) {
            if ((want[0] != ANY && h != want[0]) || (h + 1) * 3600 <= floor_second)
                continue;
            for (int m = 0; m < 60; ++m) {
                const i64 minute_start = h * 3600 + m * 60;
                if ((want[1] != ANY && m != want[1]) || minute_start + 59 < floor_second)
                    continue;
                i64 s;
                if (want[2] == ANY)
                    s = std::max<i64>(0, floor_second - minute_start);
                else if (minute_start + want[2] >= floor_second)
                    s = want[2];
                else
                    continue;
                return (day + d) * SECONDS_PER_DAY + minute_start + s;
            }
        }
    }
    return std::nullopt;
}

// --- flags and IRQ 8 -------------------------------------------------------------------

void Mc146818Rtc::update_flags(u64 ns)
{
    const u64 from = m_flags_checked_ns;
    ns = std::max(ns, from);
    u8 flags = 0;
    if (running() && update_index(ns) > update_index(from)) {
        flags |= C_UF;
        // The alarm is compared after each update with the new time.
        auto alarm = next_alarm(time_at(from) + 1);
        if (alarm && *alarm <= time_at(ns))
            flags |= C_AF;
    }
    if (divider_running() && periodic_cycles() && periodic_index(ns) > periodic_index(from))
        flags |= C_PF;
    m_ram[REG_C] |= flags;
    m_flags_checked_ns = ns;
    update_irq();
}

void Mc146818Rtc::update_irq()
{
    // Datasheet: IRQF = PF.PIE + AF.AIE + UF.UIE, and the IRQ pin follows it.
    const bool level = (m_ram[REG_C] & m_ram[REG_B] & C_FLAGS) != 0;
    m_ram[REG_C] = static_cast<u8>((m_ram[REG_C] & C_FLAGS) | (level ? C_IRQF : 0));
    if (level == m_irq_level)
        return;
    m_irq_level = level;
    if (m_irq_line)
        m_irq_line(level);
}

void Mc146818Rtc::arm_timer()
{
    // With IRQ 8 already asserted, nothing can change until register C is
    // read (the flags are caught up then), so no events are needed.
    if (m_irq_level) {
        m_timer.disarm();
        return;
    }
    const u64 now = m_flags_checked_ns;
    const u8 b = m_ram[REG_B];
    u64 deadline = ~0ull;
    if ((b & B_PIE) && divider_running() && periodic_cycles())
        deadline = std::min(deadline, next_periodic_ns(now));
    if (running()) {
        if (b & B_UIE)
            deadline = std::min(deadline, next_update_ns(now));
        if (b & B_AIE) {
            if (auto alarm = next_alarm(time_at(now) + 1)) {
                // The update that makes the time `alarm` is update number
                // alarm - base, and update k happens at phase + (k - 1) s.
                const u64 k = static_cast<u64>(*alarm - m_base_time);
                deadline = std::min(deadline, m_phase_ns + (k - 1) * NS_PER_SECOND);
            }
        }
    }
    if (deadline == ~0ull)
        m_timer.disarm();
    else
        m_timer.arm(deadline);
}

void Mc146818Rtc::on_timer()
{
    update_flags(m_clock.now_ns());
    arm_timer();
}

// --- registers ---------------------------------------------------------------------------

u8 Mc146818Rtc::read_register(u8 index)
{
    const u64 now = m_clock.now_ns();
    if (is_time_register(index)) {
        if (running())
            store_time(time_at(now));
        return m_ram[index];
    }
    switch (index) {
    case REG_A: {
        const bool uip = running() && next_update_ns(now) - now <= UIP_LEAD_NS;
        return static_cast<u8>((m_ram[REG_A] & ~A_UIP) | (uip ? A_UIP : 0));
    }
    case REG_C: {
        // Reading C returns the flags and clears them all, releasing IRQ 8.
        update_flags(now);
        const u8 value = m_ram[REG_C];
        m_ram[REG_C] = 0;
        update_irq();
        arm_timer();
        return value;
    }
    case REG_D:
        return D_VRT; // the battery is always good
    default:
        return m_ram[index];
    }
}

void Mc146818Rtc::write_register(u8 index, u8 value)
{
    const u64 now = m_clock.now_ns();
    if (is_time_register(index)) {
        if (!running()) {
            m_ram[index] = value; // SET (or a held divider): software sets the time
            return;
        }
        // Written while updates run: the clock continues from the new value,
        // keeping the divider's phase.
        update_flags(now);
        store_time(time_at(now));
        m_ram[index] = value;
        m_base_time = load_time() - static_cast<i64>(update_index(now));
        arm_timer();
        return;
    }
    switch (index) {
    case SECONDS_ALARM:
    case MINUTES_ALARM:
    case HOURS_ALARM:
        update_flags(now);
        m_ram[index] = value;
        arm_timer();
        return;
    case REG_A:
        write_register_a(value);
        return;
    case REG_B:
        write_register_b(value);
        return;
    case REG_C:
    case REG_D:
        return; // read-only
    default:
        m_ram[index] = value;
        return;
    }
}

void Mc146818Rtc::write_register_a(u8 value)
{
    const u64 now = m_clock.now_ns();
    update_flags(now);
    const bool was_running = running();
    const bool divider_was_running = divider_running();
    const i64 time = time_at(now);
    m_ram[REG_A] = value & static_cast<u8>(~A_UIP); // UIP is read-only
    if (!divider_was_running && divider_running())
        m_phase_ns = (now + DIVIDER_RELEASE_NS) % NS_PER_SECOND;
    if (was_running && !running())
        store_time(time); // held: the registers keep the time of the stop
    else if (!was_running && running())
        m_base_time = load_time() - static_cast<i64>(update_index(now));
    update_irq();
    arm_timer();
}

void Mc146818Rtc::write_register_b(u8 value)
{
    const u64 now = m_clock.now_ns();
    update_flags(now);
    const bool was_running = running();
    const i64 time = time_at(now);
    // Datasheet: setting SET clears UIE.
    if (value & B_SET)
        value &= static_cast<u8>(~B_UIE);
    m_ram[REG_B] = value;
    if (was_running && !running())
        store_time(time); // in the format just chosen
    else if (!was_running && running())
        m_base_time = load_time() - static_cast<i64>(update_index(now));
    update_irq();
    arm_timer();
}

// --- ports --------------------------------------------------------------------------------

u64 Mc146818Rtc::io_read(u64 offset, unsigned size)
{
    // Byte registers: a wider access reaches consecutive ports, as on ISA.
    u64 value = 0;
    for (unsigned i = 0; i < size; ++i) {
        u8 byte = 0xFF; // the index register is write-only
        if (offset + i == 1)
            byte = read_register(m_index);
        value |= u64(byte) << (8 * i);
    }
    return value;
}

void Mc146818Rtc::io_write(u64 offset, unsigned size, u64 value)
{
    for (unsigned i = 0; i < size; ++i) {
        const u8 byte = static_cast<u8>(value >> (8 * i));
        if (offset + i == 0) {
            m_index = byte & static_cast<u8>(~INDEX_NMI_MASK);
            m_nmi_masked = byte & INDEX_NMI_MASK;
        } else if (offset + i == 1) {
            write_register(m_index, byte);
        }
    }
}

void Mc146818Rtc::visit_state(StateVisitor& v)
{
    v.section("mc146818-rtc", 1);
    v.field("ram", m_ram);
    v.field("index", m_index);
    v.field("nmi_masked", m_nmi_masked);
    v.field("base_time", m_base_time);
    v.field("phase_ns", m_phase_ns);
    v.field("weekday_offset", m_weekday_offset);
    v.field("flags_checked_ns", m_flags_checked_ns);
    v.field("irq_level", m_irq_level);
    if (!v.loading() || !v.ok())
        return;
    // A snapshot is input: the index register selects one of 128 bytes (an
    // index past them would read and write beyond the RAM); the divider's
    // phase is within a second; the weekday offset is a day of the week.
    // The time stays within what the registers show (years 0-9999) with a
    // wide margin, so the calendar arithmetic cannot overflow.
    if (m_index >= m_ram.size())
        return v.fail("the RTC's register index " + std::to_string(m_index) + " is beyond its 128 bytes");
    if (m_phase_ns >= NS_PER_SECOND || m_weekday_offset >= 7)
        return v.fail("the RTC's divider phase or weekday offset is out of range");
    constexpr i64 MAX_SECONDS = i64{1} << 40; // about 35,000 years either side of 1970
    if (m_base_time > MAX_SECONDS || m_base_time < -MAX_SECONDS)
        return v.fail("the RTC's time is out of range");
    arm_timer();
}
