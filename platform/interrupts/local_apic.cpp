#include "platform/interrupts/local_apic.h"

#include "mmu/base/state_visitor.h"

#include <bit>

namespace {

// Register offsets in the xAPIC page; the x2APIC MSR is 0x800 + offset / 16
// (SDM Vol 3A table 10-1 and table 10-6).
enum Reg : u32 {
    REG_ID = 0x20,
    REG_VERSION = 0x30,
    REG_TPR = 0x80,
    REG_APR = 0x90,
    REG_PPR = 0xA0,
    REG_EOI = 0xB0,
    REG_RRD = 0xC0,
    REG_LDR = 0xD0,
    REG_DFR = 0xE0,
    REG_SVR = 0xF0,
    REG_ISR = 0x100,
    REG_TMR = 0x180,
    REG_IRR = 0x200,
    REG_ESR = 0x280,
    REG_ICR_LOW = 0x300,
    REG_ICR_HIGH = 0x310,
    REG_LVT_TIMER = 0x320,
    REG_LVT_ERROR = 0x370,
    REG_TIMER_INITIAL = 0x380,
    REG_TIMER_CURRENT = 0x390,
    REG_TIMER_DIVIDE = 0x3E0,
    REG_SELF_IPI = 0x3F0,
};

// ESR bits (SDM Vol 3A 10.5.3).
constexpr u32 ESR_SEND_ILLEGAL_VECTOR = 1u << 5;
constexpr u32 ESR_RECEIVE_ILLEGAL_VECTOR = 1u << 6;
constexpr u32 ESR_ILLEGAL_REGISTER = 1u << 7;

constexpr u32 LVT_DELIVERY_STATUS = 1u << 12;
constexpr u32 LVT_REMOTE_IRR = 1u << 14;
constexpr u32 LVT_LEVEL = 1u << 15;
constexpr unsigned LVT_TIMER_MODE_SHIFT = 17;

// Bits software can write in each LVT entry (SDM Vol 3A figure 10-8).
constexpr std::array<u32, 6> LVT_WRITABLE = {
    0x000700FF, // timer: vector, mask, mode (bits 18:17)
    0x000107FF, // thermal: vector, delivery mode, mask
    0x000107FF, // performance counters
    0x0001A7FF, // LINT0: vector, delivery mode, polarity, trigger, mask
    0x0001A7FF, // LINT1
    0x000100FF, // error: vector, mask
};

// ICR bits software can write (low half): vector, delivery mode,
// destination mode, level, trigger, shorthand.
constexpr u32 ICR_WRITABLE = 0x000CCFFF;
// x2APIC ICR bits that must be zero (SDM Vol 3A 10.12.1.3, table 10-7).
constexpr u64 X2APIC_ICR_RESERVED = 0xFFF33000;

constexpr u32 DFR_FLAT = 0xF;

bool is_lvt(u32 offset)
{
    return offset >= REG_LVT_TIMER && offset <= REG_LVT_ERROR;
}

} // namespace

int LocalApic::VectorSet::highest() const
{
    for (int i = 7; i >= 0; --i)
        if (words[i])
            return i * 32 + 31 - std::countl_zero(words[i]);
    return -1;
}

LocalApic::LocalApic(ApicBus& bus, VirtualClock& clock, Config config)
    : m_bus(bus), m_clock(clock), m_timer(clock, [this] { timer_fired(); }),
      m_initial_id(config.apic_id), m_is_bsp(config.bsp), m_phys_bits(config.phys_addr_bits)
{
    reset();
    m_bus.attach(*this);
}

LocalApic::~LocalApic()
{
    m_bus.detach(*this);
}

void LocalApic::reset()
{
    m_apic_base = DEFAULT_BASE | BASE_ENABLE | (m_is_bsp ? BASE_BSP : 0);
    reset_registers(ResetKind::PowerOn);
    m_wait_for_sipi = !m_is_bsp;
    m_lint_level = {};
}

void LocalApic::reset_registers(ResetKind kind)
{
    // SDM Vol 3A 10.4.7.1 (power-up, disable) and 10.4.7.3 (INIT keeps the
    // APIC ID and IA32_APIC_BASE).
    if (kind != ResetKind::Init)
        m_id = m_initial_id;
    m_tpr = 0;
    m_ldr = 0;
    m_dfr = 0xFFFFFFFF;
    m_svr = 0xFF;
    m_irr = {};
    m_isr = {};
    m_tmr = {};
    m_esr = 0;
    m_esr_pending = 0;
    m_icr = 0;
    m_lvt.fill(LVT_MASKED);
    if (kind == ResetKind::PowerOn && m_is_bsp)
        m_lvt[static_cast<unsigned>(Lvt::Lint0)] = static_cast<u32>(ApicDeliveryMode::ExtInt) << 8;
    m_timer_initial = 0;
    m_timer_dcr = 0;
    m_timer_start_ns = 0;
    m_timer_running = false;
    m_tsc_deadline = 0;
    m_timer.disarm();
    m_nmi_pending = false;
    m_extint_pending = false;
    if (x2apic_mode()) {
        m_id = m_initial_id;
        m_ldr = ((m_id >> 4) << 16) | (1u << (m_id & 0xF));
    }
    update_pending();
}

void LocalApic::do_init()
{
    reset_registers(ResetKind::Init);
    m_wait_for_sipi = !bsp();
    if (m_on_init)
        m_on_init();
    wake();
}

void LocalApic::set_tsc(std::function<u64()> read_tsc, u64 tsc_hz)
{
    m_read_tsc = std::move(read_tsc);
    m_tsc_hz = tsc_hz ? tsc_hz : 1;
    if (timer_mode() == TimerMode::TscDeadline && m_tsc_deadline)
        arm_tsc_deadline();
}

u64 LocalApic::read_tsc() const
{
    return m_read_tsc ? m_read_tsc() : m_clock.now_ns();
}

u64 LocalApic::base_address() const
{
    const u64 top = m_phys_bits >= 64 ? ~0ull : (1ull << m_phys_bits) - 1;
    return m_apic_base & top & ~0xFFFull;
}

// ---- Priorities (SDM Vol 3A 10.8.3) ----

u8 LocalApic::processor_priority() const
{
    const int isrv = m_isr.highest();
    const u8 isr_class = isrv < 0 ? 0 : static_cast<u8>(isrv & 0xF0);
    return (m_tpr & 0xF0) >= isr_class ? m_tpr : isr_class;
}

u8 LocalApic::arbitration_priority() const
{
    const int isrv = m_isr.highest();
    const int irrv = m_irr.highest();
    const u8 isr_class = isrv < 0 ? 0 : static_cast<u8>(isrv & 0xF0);
    const u8 irr_class = irrv < 0 ? 0 : static_cast<u8>(irrv & 0xF0);
    if ((m_tpr & 0xF0) >= irr_class && (m_tpr & 0xF0) > isr_class)
        return m_tpr;
    return std::max({static_cast<u8>(m_tpr & 0xF0), isr_class, irr_class});
}

void LocalApic::set_cr8(u64 value)
{
    m_tpr = static_cast<u8>((value & 0xF) << 4);
    update_pending();
}

void LocalApic::update_pending()
{
    const int v = m_irr.highest();
    m_fixed_pending = hardware_enabled() && v >= 0 && (v & 0xF0) > (processor_priority() & 0xF0);
}

void LocalApic::wake()
{
    if (m_on_wakeup)
        m_on_wakeup();
}

// ---- InterruptSource ----

bool LocalApic::interrupt_pending()
{
    if (m_fixed_pending)
        return true;
    if (!m_pic)
        return false;
    // A hardware-disabled APIC passes the 8259's INTR straight through
    // (SDM Vol 3A 10.4.3); otherwise LINT0 in ExtINT mode does.
    const u32 lint0 = m_lvt[static_cast<unsigned>(Lvt::Lint0)];
    const bool virtual_wire =
        !hardware_enabled() || m_extint_pending ||
        (!(lint0 & LVT_MASKED) && ((lint0 >> 8) & 7) == static_cast<u32>(ApicDeliveryMode::ExtInt));
    return virtual_wire && m_pic->interrupt_pending();
}

u8 LocalApic::acknowledge_interrupt()
{
    if (m_fixed_pending) {
        const u8 v = static_cast<u8>(m_irr.highest());
        m_irr.clear(v);
        if (m_auto_eoi.test(v)) {
            update_pending();
            if (m_tmr.test(v))
                m_bus.broadcast_eoi(v);
            if (m_on_eoi)
                m_on_eoi(v);
            return v;
        }
        m_isr.set(v);
        update_pending();
        return v;
    }
    if (interrupt_pending()) {
        m_extint_pending = false;
        return m_pic->acknowledge_interrupt();
    }
    // The request went away between INTR and INTA (e.g. TPR raised): the
    // spurious vector, without touching the ISR (SDM Vol 3A 10.9).
    return static_cast<u8>(m_svr & 0xFF);
}

bool LocalApic::take_nmi()
{
    if (!m_nmi_pending)
        return false;
    m_nmi_pending = false;
    return true;
}

// ---- Accepting interrupts ----

void LocalApic::set_irr(u8 vector, bool level_triggered)
{
    m_irr.set(vector);
    if (level_triggered)
        m_tmr.set(vector);
    else
        m_tmr.clear(vector);
    update_pending();
    wake();
}

void LocalApic::raise_error(u32 bits)
{
    const bool fresh = (m_esr_pending & bits) != bits;
    m_esr_pending |= bits;
    const u32 lvt = m_lvt[static_cast<unsigned>(Lvt::Error)];
    if (!fresh || (lvt & LVT_MASKED))
        return;
    const u8 vector = static_cast<u8>(lvt & 0xFF);
    if (vector < 16) {
        // An illegal error vector is itself an error; do not recurse.
        m_esr_pending |= ESR_RECEIVE_ILLEGAL_VECTOR;
        return;
    }
    set_irr(vector, false);
}

void LocalApic::accept(const ApicMessage& message)
{
    if (!hardware_enabled())
        return;
    switch (message.mode) {
    case ApicDeliveryMode::Fixed:
    case ApicDeliveryMode::LowestPriority:
        // A software-disabled APIC does not accept fixed interrupts
        // (SDM Vol 3A 10.4.7.2).
        if (!software_enabled())
            return;
        if (message.vector < 16) {
            raise_error(ESR_RECEIVE_ILLEGAL_VECTOR);
            return;
        }
        set_irr(message.vector, message.level_triggered);
        return;
    case ApicDeliveryMode::Nmi:
        m_nmi_pending = true;
        wake();
        return;
    case ApicDeliveryMode::Init:
        // INIT level de-assert only synchronizes arbitration IDs (SDM Vol 3A 10.6.1).
        if (message.level_triggered && !message.assert)
            return;
        do_init();
        return;
    case ApicDeliveryMode::StartUp:
        if (!m_wait_for_sipi)
            return;
        m_wait_for_sipi = false;
        if (m_on_sipi)
            m_on_sipi(message.vector);
        wake();
        return;
    case ApicDeliveryMode::ExtInt:
        m_extint_pending = true;
        wake();
        return;
    case ApicDeliveryMode::Smi:
        // No SMM in this machine: the SMI is dropped.
        return;
    }
}

void LocalApic::deliver_lvt(Lvt which)
{
    const unsigned index = static_cast<unsigned>(which);
    const u32 lvt = m_lvt[index];
    if (lvt & LVT_MASKED)
        return;
    const u8 vector = static_cast<u8>(lvt & 0xFF);
    const auto mode = (which == Lvt::Timer || which == Lvt::Error)
                          ? ApicDeliveryMode::Fixed
                          : static_cast<ApicDeliveryMode>((lvt >> 8) & 7);
    switch (mode) {
    case ApicDeliveryMode::Fixed: {
        if (vector < 16) {
            raise_error(ESR_RECEIVE_ILLEGAL_VECTOR);
            return;
        }
        const bool level = (which == Lvt::Lint0 || which == Lvt::Lint1) && (lvt & LVT_LEVEL);
        if (level)
            m_lvt[index] |= LVT_REMOTE_IRR;
        set_irr(vector, level);
        return;
    }
    case ApicDeliveryMode::Nmi:
        m_nmi_pending = true;
        wake();
        return;
    case ApicDeliveryMode::Init:
        do_init();
        return;
    case ApicDeliveryMode::ExtInt:
        m_extint_pending = true;
        wake();
        return;
    default:
        return; // SMI and reserved modes
    }
}

void LocalApic::set_lint(unsigned pin, bool level)
{
    if (pin > 1)
        return;
    const bool rising = level && !m_lint_level[pin];
    m_lint_level[pin] = level;
    const Lvt which = pin == 0 ? Lvt::Lint0 : Lvt::Lint1;
    const u32 lvt = m_lvt[static_cast<unsigned>(which)];
    if (!hardware_enabled()) {
        // The pins are the processor's INTR and NMI inputs (SDM Vol 3A 10.4.3).
        if (pin == 1 && rising) {
            m_nmi_pending = true;
            wake();
        } else if (pin == 0 && level) {
            wake();
        }
        return;
    }
    if (lvt & LVT_MASKED)
        return;
    const auto mode = static_cast<ApicDeliveryMode>((lvt >> 8) & 7);
    if (mode == ApicDeliveryMode::ExtInt) {
        if (level)
            wake(); // the 8259 is asked when the vCPU acknowledges
        return;
    }
    // NMI, INIT and ExtINT are edge-sensitive; fixed follows the trigger bit.
    const bool level_mode = mode == ApicDeliveryMode::Fixed && (lvt & LVT_LEVEL);
    if (level_mode ? (level && !(lvt & LVT_REMOTE_IRR)) : rising)
        deliver_lvt(which);
}

void LocalApic::eoi()
{
    const int v = m_isr.highest();
    if (v < 0)
        return;
    const u8 vector = static_cast<u8>(v);
    m_isr.clear(vector);
    update_pending();
    if (m_tmr.test(vector))
        m_bus.broadcast_eoi(vector);
    for (unsigned pin = 0; pin < 2; ++pin) {
        const Lvt which = pin == 0 ? Lvt::Lint0 : Lvt::Lint1;
        u32& lvt = m_lvt[static_cast<unsigned>(which)];
        if ((lvt & LVT_REMOTE_IRR) && (lvt & 0xFF) == vector) {
            lvt &= ~LVT_REMOTE_IRR;
            if (m_lint_level[pin])
                set_lint(pin, true);
        }
    }
    if (m_on_eoi)
        m_on_eoi(vector);
}

void LocalApic::write_icr(u64 value)
{
    if (x2apic_mode()) {
        m_icr = value & ~X2APIC_ICR_RESERVED;
    } else {
        m_icr = (value & 0xFF00000000000000ull) | (value & ICR_WRITABLE);
    }
    send_ipi(m_icr);
}

void LocalApic::set_task_priority(u8 tpr)
{
    m_tpr = tpr;
    update_pending();
}

void LocalApic::set_auto_eoi(u8 vector, bool enabled)
{
    if (enabled)
        m_auto_eoi.set(vector);
    else
        m_auto_eoi.clear(vector);
}

void LocalApic::send_ipi(u64 icr)
{
    ApicMessage m;
    m.vector = static_cast<u8>(icr & 0xFF);
    m.mode = static_cast<ApicDeliveryMode>((icr >> 8) & 7);
    m.logical = icr & (1u << 11);
    m.assert = icr & (1u << 14);
    m.level_triggered = icr & (1u << 15);
    m.shorthand = static_cast<ApicShorthand>((icr >> 18) & 3);
    m.x2apic_destination = x2apic_mode();
    m.destination = x2apic_mode() ? static_cast<u32>(icr >> 32) : static_cast<u32>(icr >> 56);
    if (static_cast<u8>(m.mode) == 3)
        return; // reserved delivery mode
    if ((m.mode == ApicDeliveryMode::Fixed || m.mode == ApicDeliveryMode::LowestPriority) &&
        m.vector < 16) {
        raise_error(ESR_SEND_ILLEGAL_VECTOR);
        return;
    }
    m_bus.send(m, this);
}

// ---- Timer (SDM Vol 3A 10.5.4) ----

LocalApic::TimerMode LocalApic::timer_mode() const
{
    const u32 mode = (m_lvt[static_cast<unsigned>(Lvt::Timer)] >> LVT_TIMER_MODE_SHIFT) & 3;
    return mode == 1   ? TimerMode::Periodic
           : mode == 2 ? TimerMode::TscDeadline
                       : TimerMode::OneShot;
}

unsigned LocalApic::timer_shift() const
{
    // DCR bits 3, 1:0: 000 = /2 ... 110 = /128, 111 = /1.
    const unsigned code = ((m_timer_dcr & 8) >> 1) | (m_timer_dcr & 3);
    return (code + 1) & 7;
}

u32 LocalApic::timer_current_count() const
{
    if (!m_timer_running || timer_mode() == TimerMode::TscDeadline || m_timer_initial == 0)
        return 0;
    const u64 elapsed = (m_clock.now_ns() - m_timer_start_ns) >> timer_shift();
    if (timer_mode() == TimerMode::Periodic)
        return static_cast<u32>(m_timer_initial - elapsed % m_timer_initial);
    return elapsed >= m_timer_initial ? 0 : static_cast<u32>(m_timer_initial - elapsed);
}

void LocalApic::start_timer(u32 initial)
{
    m_timer_initial = initial;
    if (initial == 0) {
        stop_timer();
        return;
    }
    m_timer_start_ns = m_clock.now_ns();
    m_timer_running = true;
    m_timer.arm(m_timer_start_ns + (u64(initial) << timer_shift()));
}

void LocalApic::stop_timer()
{
    m_timer_running = false;
    m_timer.disarm();
}

void LocalApic::timer_fired()
{
    if (timer_mode() == TimerMode::TscDeadline) {
        if (m_tsc_deadline)
            arm_tsc_deadline();
        return;
    }
    if (!m_timer_running || m_timer_initial == 0)
        return;
    const u64 now = m_clock.now_ns();
    const u64 period = u64(m_timer_initial) << timer_shift();
    if (now < m_timer_start_ns + period) {
        m_timer.arm(m_timer_start_ns + period);
        return;
    }
    deliver_lvt(Lvt::Timer);
    if (timer_mode() == TimerMode::Periodic) {
        // Ticks missed while the clock ran ahead collapse into this one.
        m_timer_start_ns += (now - m_timer_start_ns) / period * period;
        m_timer.arm(m_timer_start_ns + period);
    } else {
        m_timer_running = false;
    }
}

void LocalApic::arm_tsc_deadline()
{
    const u64 tsc = read_tsc();
    if (tsc >= m_tsc_deadline) {
        // Expired: the interrupt is raised and the MSR reads zero (SDM Vol 3A 10.5.4.1).
        m_tsc_deadline = 0;
        m_timer.disarm();
        deliver_lvt(Lvt::Timer);
        return;
    }
    const unsigned __int128 ticks = m_tsc_deadline - tsc;
    const u64 ns = static_cast<u64>((ticks * 1'000'000'000u + m_tsc_hz - 1) / m_tsc_hz);
    m_timer.arm(m_clock.now_ns() + (ns ? ns : 1));
}

void LocalApic::write_lvt(Lvt which, u32 value)
{
    const unsigned index = static_cast<unsigned>(which);
    if (!software_enabled())
        value |= LVT_MASKED;
    const u32 writable = LVT_WRITABLE[index];
    // A one-shot count that has reached zero has stopped, whether or not the
    // clock has run our callback yet: settle it under the old LVT before a
    // new mode could read the stale start time as a running period.
    if (which == Lvt::Timer && timer_mode() == TimerMode::OneShot && m_timer_running &&
        m_timer_initial != 0 &&
        m_clock.now_ns() >= m_timer_start_ns + (u64(m_timer_initial) << timer_shift()))
        timer_fired();
    const u32 old = m_lvt[index];
    const TimerMode old_mode = timer_mode();
    m_lvt[index] = (value & writable) | (old & ~writable & LVT_REMOTE_IRR);
    if (which == Lvt::Timer) {
        const TimerMode mode = timer_mode();
        // Entering or leaving TSC-deadline mode disarms the timer (SDM Vol 3A 10.5.4.1).
        if ((old_mode == TimerMode::TscDeadline) != (mode == TimerMode::TscDeadline)) {
            stop_timer();
            m_timer_initial = 0;
            m_tsc_deadline = 0;
        }
    }
    if ((which == Lvt::Lint0 || which == Lvt::Lint1) && !(m_lvt[index] & LVT_LEVEL))
        m_lvt[index] &= ~LVT_REMOTE_IRR;
}

// ---- Registers ----

std::optional<u32> LocalApic::read_register(u32 offset) const
{
    const bool x2 = x2apic_mode();
    switch (offset) {
    case REG_ID:
        return x2 ? m_id : m_id << 24;
    case REG_VERSION:
        return VERSION;
    case REG_TPR:
        return m_tpr;
    case REG_APR:
        if (x2)
            return std::nullopt;
        return arbitration_priority();
    case REG_PPR:
        return processor_priority();
    case REG_EOI:
        if (x2)
            return std::nullopt; // write-only
        return 0;
    case REG_RRD:
        if (x2)
            return std::nullopt;
        return 0;
    case REG_LDR:
        return m_ldr;
    case REG_DFR:
        if (x2)
            return std::nullopt;
        return m_dfr;
    case REG_SVR:
        return m_svr;
    case REG_ESR:
        return m_esr;
    case REG_ICR_LOW:
        return static_cast<u32>(m_icr); // delivery status: always idle
    case REG_ICR_HIGH:
        if (x2)
            return std::nullopt;
        return static_cast<u32>(m_icr >> 32);
    case REG_TIMER_INITIAL:
        return m_timer_initial;
    case REG_TIMER_CURRENT:
        return timer_current_count();
    case REG_TIMER_DIVIDE:
        return m_timer_dcr;
    default:
        break;
    }
    if (offset >= REG_ISR && offset < REG_ISR + 0x80)
        return m_isr.words[(offset - REG_ISR) >> 4];
    if (offset >= REG_TMR && offset < REG_TMR + 0x80)
        return m_tmr.words[(offset - REG_TMR) >> 4];
    if (offset >= REG_IRR && offset < REG_IRR + 0x80)
        return m_irr.words[(offset - REG_IRR) >> 4];
    if (is_lvt(offset))
        return m_lvt[(offset - REG_LVT_TIMER) >> 4];
    return std::nullopt;
}

void LocalApic::write_register(u32 offset, u32 value)
{
    switch (offset) {
    case REG_ID:
        if (!x2apic_mode())
            m_id = value >> 24;
        return;
    case REG_TPR:
        m_tpr = static_cast<u8>(value);
        update_pending();
        return;
    case REG_EOI:
        eoi();
        return;
    case REG_LDR:
        if (!x2apic_mode())
            m_ldr = value & 0xFF000000;
        return;
    case REG_DFR:
        if (!x2apic_mode())
            m_dfr = value | 0x0FFFFFFF;
        return;
    case REG_SVR:
        m_svr = value & 0x3FF;
        if (!software_enabled())
            for (u32& lvt : m_lvt)
                lvt |= LVT_MASKED;
        return;
    case REG_ESR:
        m_esr = m_esr_pending;
        m_esr_pending = 0;
        return;
    case REG_ICR_LOW:
        m_icr = (m_icr & 0xFFFFFFFF00000000ull) | (value & ICR_WRITABLE);
        send_ipi(m_icr);
        return;
    case REG_ICR_HIGH:
        m_icr = (m_icr & 0xFFFFFFFF) | (u64(value & 0xFF000000) << 32);
        return;
    case REG_TIMER_INITIAL:
        if (timer_mode() != TimerMode::TscDeadline)
            start_timer(value);
        return;
    case REG_TIMER_DIVIDE: {
        const u32 count = timer_current_count();
        const bool running = m_timer_running && count != 0;
        m_timer_dcr = value & 0xB;
        if (running) {
            // Keep the current count; it now falls at the new rate.
            const u64 now = m_clock.now_ns();
            const u64 done = u64(m_timer_initial - count) << timer_shift();
            m_timer_start_ns = now - done;
            m_timer.arm(m_timer_start_ns + (u64(m_timer_initial) << timer_shift()));
        }
        return;
    }
    default:
        break;
    }
    if (is_lvt(offset))
        write_lvt(static_cast<Lvt>((offset - REG_LVT_TIMER) >> 4), value);
    // Everything else is read-only: the write is ignored.
}

u64 LocalApic::io_read(u64 offset, unsigned size)
{
    const u64 ones = size_mask(size);
    if (!xapic_mode() || offset >= MMIO_SIZE)
        return ones;
    const u32 reg = static_cast<u32>(offset & 0xFF0);
    const unsigned byte = offset & 0xF;
    std::optional<u32> value = reg == REG_SELF_IPI ? std::nullopt : read_register(reg);
    if (!value) {
        raise_error(ESR_ILLEGAL_REGISTER);
        return 0;
    }
    // A register fills the first 4 bytes of its 16-byte slot; the rest reads 0.
    return byte >= 4 ? 0 : (u64(*value) >> (byte * 8)) & ones;
}

void LocalApic::io_write(u64 offset, unsigned size, u64 value)
{
    (void)size;
    if (!xapic_mode() || offset >= MMIO_SIZE)
        return;
    const u32 reg = static_cast<u32>(offset & 0xFF0);
    if (offset & 0xF)
        return; // registers are written as aligned dwords (SDM Vol 3A 10.4.1)
    if (reg == REG_SELF_IPI || !read_register(reg)) {
        raise_error(ESR_ILLEGAL_REGISTER);
        return;
    }
    write_register(reg, static_cast<u32>(value));
}

// ---- MSRs ----

bool LocalApic::write_apic_base(u64 value)
{
    const u64 top = m_phys_bits >= 64 ? ~0ull : (1ull << m_phys_bits) - 1;
    const u64 allowed =
        (top & ~0xFFFull) | BASE_ENABLE | (m_x2apic_supported ? BASE_EXTD : 0) | BASE_BSP;
    if (value & ~allowed)
        return false;
    const bool en = value & BASE_ENABLE, extd = value & BASE_EXTD;
    const bool was_en = hardware_enabled(), was_x2 = x2apic_mode();
    // Mode transitions (SDM Vol 3A 10.12.5, figure 10-27).
    if (!en && extd)
        return false; // invalid state
    if (was_x2 && en && !extd)
        return false; // x2APIC -> xAPIC must pass through disabled
    if (!was_en && en && extd)
        return false; // disabled -> x2APIC must pass through xAPIC
    const u64 old_base = base_address();
    m_apic_base = (value & ~BASE_BSP) | (m_apic_base & BASE_BSP);
    if (was_en && !en) {
        reset_registers(ResetKind::HardwareDisable);
    } else if (!was_x2 && x2apic_mode()) {
        // The x2APIC ID is the initial APIC ID and LDR is derived from it
        // (SDM Vol 3A 10.12.10.2).
        m_id = m_initial_id;
        m_ldr = ((m_id >> 4) << 16) | (1u << (m_id & 0xF));
    }
    update_pending();
    if (m_on_base_change && (old_base != base_address() || was_en != en || was_x2 != x2apic_mode()))
        m_on_base_change(base_address());
    return true;
}

std::optional<u64> LocalApic::read_msr(u32 index)
{
    if (index == MSR_APIC_BASE)
        return m_apic_base;
    if (index == MSR_TSC_DEADLINE)
        return timer_mode() == TimerMode::TscDeadline ? m_tsc_deadline : 0;
    if (index - MSR_X2APIC_FIRST >= MSR_X2APIC_COUNT || !x2apic_mode())
        return std::nullopt;
    const u32 offset = (index - MSR_X2APIC_FIRST) << 4;
    if (offset == REG_ICR_LOW)
        return m_icr;
    if (auto v = read_register(offset))
        return *v;
    return std::nullopt;
}

bool LocalApic::write_msr(u32 index, u64 value)
{
    if (index == MSR_APIC_BASE)
        return write_apic_base(value);
    if (index == MSR_TSC_DEADLINE) {
        // Outside TSC-deadline mode writes are ignored (SDM Vol 3A 10.5.4.1).
        if (timer_mode() != TimerMode::TscDeadline)
            return true;
        m_tsc_deadline = value;
        if (value == 0)
            m_timer.disarm();
        else
            arm_tsc_deadline();
        return true;
    }
    if (index - MSR_X2APIC_FIRST >= MSR_X2APIC_COUNT || !x2apic_mode())
        return false;
    return x2apic_write((index - MSR_X2APIC_FIRST) << 4, value);
}

bool LocalApic::x2apic_write(u32 offset, u64 value)
{
    // Reserved-bit checking (SDM Vol 3A 10.12.1.3, table 10-7).
    if (offset != REG_ICR_LOW && (value >> 32))
        return false;
    const u32 v = static_cast<u32>(value);
    switch (offset) {
    case REG_TPR:
        if (v & ~0xFFu)
            return false;
        break;
    case REG_EOI:
    case REG_ESR:
        if (v)
            return false;
        break;
    case REG_SVR:
        if (v & ~0x3FFu)
            return false;
        break;
    case REG_ICR_LOW:
        if (value & X2APIC_ICR_RESERVED)
            return false;
        m_icr = value;
        send_ipi(value);
        return true;
    case REG_TIMER_INITIAL:
        break;
    case REG_TIMER_DIVIDE:
        if (v & ~0xBu)
            return false;
        break;
    case REG_SELF_IPI: {
        if (v & ~0xFFu)
            return false;
        ApicMessage m;
        m.vector = static_cast<u8>(v);
        m.shorthand = ApicShorthand::Self;
        if (m.vector < 16)
            raise_error(ESR_SEND_ILLEGAL_VECTOR);
        else
            m_bus.send(m, this);
        return true;
    }
    default:
        if (is_lvt(offset)) {
            const u32 writable = LVT_WRITABLE[(offset - REG_LVT_TIMER) >> 4];
            if (v & ~(writable | LVT_DELIVERY_STATUS | LVT_REMOTE_IRR))
                return false;
            break;
        }
        return false; // read-only or absent in x2APIC mode
    }
    write_register(offset, v);
    return true;
}

// ---- State ----

void LocalApic::visit_state(StateVisitor& v)
{
    v.section("local_apic", 1);
    v.field("apic_base", m_apic_base);
    v.field("id", m_id);
    v.field("tpr", m_tpr);
    v.field("ldr", m_ldr);
    v.field("dfr", m_dfr);
    v.field("svr", m_svr);
    v.field("irr", m_irr.words);
    v.field("isr", m_isr.words);
    v.field("tmr", m_tmr.words);
    v.field("esr", m_esr);
    v.field("esr_pending", m_esr_pending);
    v.field("icr", m_icr);
    v.field("lvt", m_lvt);
    v.field("timer_initial", m_timer_initial);
    v.field("timer_dcr", m_timer_dcr);
    v.field("timer_start_ns", m_timer_start_ns);
    v.field("timer_running", m_timer_running);
    v.field("tsc_deadline", m_tsc_deadline);
    v.field("nmi_pending", m_nmi_pending);
    v.field("extint_pending", m_extint_pending);
    v.field("wait_for_sipi", m_wait_for_sipi);
    v.field("lint_level", m_lint_level);
    bool armed = m_timer.armed();
    u64 deadline = armed ? m_timer.deadline() : 0;
    v.field("timer_armed", armed);
    v.field("timer_deadline", deadline);
    if (v.loading()) {
        if (armed)
            m_timer.arm(deadline);
        else
            m_timer.disarm();
        update_pending();
    }
}
