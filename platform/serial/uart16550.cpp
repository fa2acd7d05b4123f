#include "platform/serial/uart16550.h"

#include <algorithm>

namespace {

// Register offsets (16550D datasheet, table 2). With LCR.DLAB=1, offsets 0
// and 1 address the divisor latch instead of RBR/THR and IER.
enum Reg : unsigned {
    RBR_THR = 0,
    IER = 1,
    IIR_FCR = 2,
    LCR = 3,
    MCR = 4,
    LSR = 5,
    MSR = 6,
    SCR = 7
};

constexpr u8 IER_RDA = 1 << 0;  // received data available (and character timeout)
constexpr u8 IER_THRE = 1 << 1; // transmitter holding register empty
constexpr u8 IER_RLS = 1 << 2;  // receiver line status
constexpr u8 IER_MSI = 1 << 3;  // modem status
constexpr u8 IER_MASK = 0x0F;   // the upper nibble reads as zero on a 16550A

// IIR interrupt identification codes (bits 3:0), highest priority first.
constexpr u8 IIR_LINE_STATUS = 0x06;
constexpr u8 IIR_RDA = 0x04;
constexpr u8 IIR_CHAR_TIMEOUT = 0x0C;
constexpr u8 IIR_THRE = 0x02;
constexpr u8 IIR_MODEM_STATUS = 0x00;
constexpr u8 IIR_NO_INT = 0x01;
constexpr u8 IIR_ID_MASK = 0x0F;
constexpr u8 IIR_FIFO_ENABLED = 0xC0;

constexpr u8 FCR_ENABLE = 1 << 0;
constexpr u8 FCR_CLEAR_RX = 1 << 1;
constexpr u8 FCR_CLEAR_TX = 1 << 2;
constexpr u8 FCR_SELF_CLEARING = FCR_CLEAR_RX | FCR_CLEAR_TX;

constexpr u8 LCR_WORD_LENGTH = 0x03; // 5 + this many data bits
constexpr u8 LCR_TWO_STOP = 1 << 2;  // 1.5 stop bits with 5 data bits
constexpr u8 LCR_PARITY = 1 << 3;
constexpr u8 LCR_DLAB = 1 << 7;

constexpr u8 MCR_DTR = 1 << 0, MCR_RTS = 1 << 1, MCR_OUT1 = 1 << 2, MCR_OUT2 = 1 << 3,
             MCR_LOOP = 1 << 4, MCR_MASK = 0x1F;

constexpr u8 LSR_DR = 1 << 0, LSR_OE = 1 << 1, LSR_THRE = 1 << 5, LSR_TEMT = 1 << 6;

constexpr u8 MSR_DCTS = 1 << 0, MSR_DDSR = 1 << 1, MSR_TERI = 1 << 2, MSR_DDCD = 1 << 3;
constexpr u8 MSR_CTS = 1 << 4, MSR_DSR = 1 << 5, MSR_RI = 1 << 6, MSR_DCD = 1 << 7;

// The timeout fires after this many character times without activity.
constexpr u64 TIMEOUT_CHARACTERS = 4;

} // namespace

Uart16550::Uart16550(VirtualClock& clock, Sink sink)
    : m_clock(clock), m_timeout_timer(clock, [this] { on_timeout(); }), m_sink(std::move(sink))
{
}

void Uart16550::push_input(u8 byte)
{
    m_input.push_back(byte);
    accept_input();
}

void Uart16550::push_input(std::string_view bytes)
{
    m_input.insert(m_input.end(), bytes.begin(), bytes.end());
    accept_input();
}

u64 Uart16550::io_read(u64 offset, unsigned size)
{
    u64 value = 0;
    for (unsigned i = 0; i < size; ++i) {
        u64 reg = offset + i;
        u8 byte = reg < PORT_COUNT ? read_register(static_cast<unsigned>(reg)) : 0xFF;
        value |= u64(byte) << (8 * i);
    }
    return value;
}

void Uart16550::io_write(u64 offset, unsigned size, u64 value)
{
    for (unsigned i = 0; i < size; ++i) {
        u64 reg = offset + i;
        if (reg < PORT_COUNT)
            write_register(static_cast<unsigned>(reg), static_cast<u8>(value >> (8 * i)));
    }
}

bool Uart16550::dlab() const
{
    return m_lcr & LCR_DLAB;
}
bool Uart16550::loopback() const
{
    return m_mcr & MCR_LOOP;
}
bool Uart16550::fifo_enabled() const
{
    return m_fcr & FCR_ENABLE;
}
unsigned Uart16550::rx_capacity() const
{
    return fifo_enabled() ? FIFO_SIZE : 1;
}
unsigned Uart16550::rx_trigger_level() const
{
    static constexpr unsigned LEVELS[4] = {1, 4, 8, 14};
    return fifo_enabled() ? LEVELS[m_fcr >> 6] : 1;
}

u64 Uart16550::character_time_ns() const
{
    // Counted in half bits so that 1.5 stop bits are exact.
    const u64 data_bits = 5 + (m_lcr & LCR_WORD_LENGTH);
    const u64 parity_bits = (m_lcr & LCR_PARITY) ? 1 : 0;
    u64 stop_half_bits = 2;
    if (m_lcr & LCR_TWO_STOP)
        stop_half_bits = data_bits == 5 ? 3 : 4;
    const u64 half_bits = 2 * (1 + data_bits + parity_bits) + stop_half_bits;
    // A divisor of 0 is undefined; the counter then wraps through 65536.
    const u64 divisor = m_divisor ? m_divisor : 0x10000;
    return half_bits * divisor * 16 * 1000000000ull / (2 * CLOCK_HZ);
}

u8 Uart16550::read_register(unsigned reg)
{
    switch (reg) {
    case RBR_THR:
        return dlab() ? static_cast<u8>(m_divisor) : read_rbr();
    case IER:
        return dlab() ? static_cast<u8>(m_divisor >> 8) : m_ier;
    case IIR_FCR: {
        u8 iir = interrupt_identification();
        // Reading IIR acknowledges a THR-empty interrupt it reports.
        if ((iir & IIR_ID_MASK) == IIR_THRE) {
            m_thr_interrupt = false;
            update_irq();
        }
        return iir;
    }
    case LCR:
        return m_lcr;
    case MCR:
        return m_mcr;
    case LSR:
        return read_lsr();
    case MSR:
        return read_msr();
    case SCR:
        return m_scr;
    }
    return 0xFF;
}

void Uart16550::write_register(unsigned reg, u8 value)
{
    switch (reg) {
    case RBR_THR:
        if (dlab()) {
            m_divisor = static_cast<u16>((m_divisor & 0xFF00) | value);
            arm_timeout();
        } else {
            transmit(value);
        }
        return;
    case IER:
        if (dlab()) {
            m_divisor = static_cast<u16>((m_divisor & 0x00FF) | (value << 8));
            arm_timeout();
            return;
        }
        // Enabling the THR-empty interrupt while THR is empty raises it at
        // once; drivers rely on this to start transmission.
        if ((value & IER_THRE) && !(m_ier & IER_THRE))
            m_thr_interrupt = true;
        m_ier = value & IER_MASK;
        update_irq();
        return;
    case IIR_FCR:
        write_fcr(value);
        return;
    case LCR:
        m_lcr = value;
        arm_timeout(); // the frame format sets the character time
        return;
    case MCR:
        write_mcr(value);
        return;
    case LSR:
        return; // factory test register: writes have no defined effect
    case MSR:
        return; // read-only
    case SCR:
        m_scr = value;
        return;
    }
}

void Uart16550::write_fcr(u8 value)
{
    const bool enable = value & FCR_ENABLE;
    // FCR0 must be set for the other bits to be written; switching between
    // FIFO and 16450 mode empties both FIFOs.
    if (enable != fifo_enabled()) {
        m_rx.clear();
        m_timeout = false;
    }
    if (!enable) {
        m_fcr = 0;
    } else {
        if (value & FCR_CLEAR_RX) {
            m_rx.clear();
            m_timeout = false;
        }
        // FCR_CLEAR_TX: the transmit FIFO is always empty already.
        m_fcr = value & static_cast<u8>(~FCR_SELF_CLEARING);
    }
    accept_input();
    arm_timeout();
    update_irq();
}

void Uart16550::write_mcr(u8 value)
{
    const u8 before = modem_inputs();
    m_mcr = value & MCR_MASK;
    note_modem_change(before);
    accept_input(); // leaving loopback reconnects the host's line
    update_irq();
}

void Uart16550::transmit(u8 byte)
{
    // Writing THR clears a THR-empty interrupt; the byte then leaves at once
    // and THR is empty again, which raises it anew: a fresh edge for an
    // edge-triggered interrupt controller, as after each real character.
    m_thr_interrupt = false;
    update_irq();
    if (loopback())
        receive(byte);
    else if (m_sink)
        m_sink(byte);
    m_thr_interrupt = true;
    update_irq();
}

bool Uart16550::receive(u8 byte)
{
    if (m_rx.size() >= rx_capacity()) {
        // FIFO mode keeps the FIFO and loses the new character; 16450 mode
        // overwrites the holding register.
        if (!fifo_enabled())
            m_rx.back() = byte;
        m_overrun = true;
        update_irq();
        return false;
    }
    m_rx.push_back(byte);
    rx_activity();
    update_irq();
    return true;
}

void Uart16550::accept_input()
{
    // In loopback the receiver hears the transmitter only.
    if (loopback())
        return;
    size_t room = m_rx.size() < rx_capacity() ? rx_capacity() - m_rx.size() : 0;
    size_t n = std::min(room, m_input.size());
    if (n == 0)
        return;
    m_rx.insert(m_rx.end(), m_input.begin(), m_input.begin() + static_cast<std::ptrdiff_t>(n));
    m_input.erase(m_input.begin(), m_input.begin() + static_cast<std::ptrdiff_t>(n));
    rx_activity();
    update_irq();
}

u8 Uart16550::read_rbr()
{
    if (m_rx.empty())
        return 0;
    u8 byte = m_rx.front();
    m_rx.erase(m_rx.begin());
    // A read clears the timeout indication and restarts its wait.
    m_timeout = false;
    rx_activity();
    accept_input();
    update_irq();
    return byte;
}

u8 Uart16550::line_status() const
{
    u8 lsr = LSR_THRE | LSR_TEMT;
    if (!m_rx.empty())
        lsr |= LSR_DR;
    if (m_overrun)
        lsr |= LSR_OE;
    return lsr;
}

u8 Uart16550::read_lsr()
{
    u8 lsr = line_status();
    // Reading LSR clears the error bits and the line status interrupt.
    if (m_overrun) {
        m_overrun = false;
        update_irq();
    }
    return lsr;
}

u8 Uart16550::modem_inputs() const
{
    if (loopback()) {
        // Loopback wires the modem control outputs back to the status inputs
        // (datasheet 8.6): RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD.
        u8 in = 0;
        if (m_mcr & MCR_RTS)
            in |= MSR_CTS;
        if (m_mcr & MCR_DTR)
            in |= MSR_DSR;
        if (m_mcr & MCR_OUT1)
            in |= MSR_RI;
        if (m_mcr & MCR_OUT2)
            in |= MSR_DCD;
        return in;
    }
    // A host terminal is "connected": carrier, data set ready and clear to
    // send, as QEMU reports for a chardev backend, so guests that wait for
    // CTS before sending do not hang.
    return MSR_DCD | MSR_DSR | MSR_CTS;
}

void Uart16550::note_modem_change(u8 before)
{
    const u8 after = modem_inputs();
    const u8 changed = before ^ after;
    if (changed & MSR_CTS)
        m_msr_deltas |= MSR_DCTS;
    if (changed & MSR_DSR)
        m_msr_deltas |= MSR_DDSR;
    if ((before & MSR_RI) && !(after & MSR_RI)) // the trailing edge only
        m_msr_deltas |= MSR_TERI;
    if (changed & MSR_DCD)
        m_msr_deltas |= MSR_DDCD;
}

u8 Uart16550::read_msr()
{
    u8 msr = modem_inputs() | m_msr_deltas;
    // Reading MSR clears the delta bits and with them the modem status interrupt.
    if (m_msr_deltas) {
        m_msr_deltas = 0;
        update_irq();
    }
    return msr;
}

u8 Uart16550::interrupt_identification() const
{
    const u8 fifo_bits = fifo_enabled() ? IIR_FIFO_ENABLED : 0;
    // Priority order (datasheet table 4).
    if ((m_ier & IER_RLS) && m_overrun)
        return fifo_bits | IIR_LINE_STATUS;
    if ((m_ier & IER_RDA) && m_rx.size() >= rx_trigger_level())
        return fifo_bits | IIR_RDA;
    if ((m_ier & IER_RDA) && m_timeout)
        return fifo_bits | IIR_CHAR_TIMEOUT;
    if ((m_ier & IER_THRE) && m_thr_interrupt)
        return fifo_bits | IIR_THRE;
    if ((m_ier & IER_MSI) && m_msr_deltas)
        return fifo_bits | IIR_MODEM_STATUS;
    return fifo_bits | IIR_NO_INT;
}

void Uart16550::rx_activity()
{
    m_rx_activity_ns = m_clock.now_ns();
    arm_timeout();
}

void Uart16550::arm_timeout()
{
    // Only the FIFO mode has a timeout, and only for data waiting below the
    // trigger level matters, but the datasheet's condition is just "data in
    // the FIFO": the RDA interrupt outranks it otherwise.
    if (!fifo_enabled() || m_rx.empty() || m_timeout) {
        m_timeout_timer.disarm();
        return;
    }
    m_timeout_timer.arm(m_rx_activity_ns + TIMEOUT_CHARACTERS * character_time_ns());
}

void Uart16550::on_timeout()
{
    if (!fifo_enabled() || m_rx.empty())
        return;
    // The divisor may have grown since the timer was armed.
    const u64 due = m_rx_activity_ns + TIMEOUT_CHARACTERS * character_time_ns();
    if (m_clock.now_ns() < due) {
        m_timeout_timer.arm(due);
        return;
    }
    m_timeout = true;
    update_irq();
}

void Uart16550::update_irq()
{
    bool level = !(interrupt_identification() & IIR_NO_INT);
    if (level == m_irq_level)
        return;
    m_irq_level = level;
    if (m_irq_line)
        m_irq_line(level);
}

void Uart16550::visit_state(StateVisitor& v)
{
    v.section("uart16550", 1);
    v.field("rx", m_rx);
    v.field("input", m_input);
    v.field("divisor", m_divisor);
    v.field("ier", m_ier);
    v.field("fcr", m_fcr);
    v.field("lcr", m_lcr);
    v.field("mcr", m_mcr);
    v.field("msr_deltas", m_msr_deltas);
    v.field("scr", m_scr);
    v.field("overrun", m_overrun);
    v.field("thr_interrupt", m_thr_interrupt);
    v.field("timeout", m_timeout);
    v.field("rx_activity_ns", m_rx_activity_ns);
    v.field("irq_level", m_irq_level);
    if (v.loading()) {
        if (m_rx.size() > rx_capacity())
            m_rx.resize(rx_capacity()); // a snapshot is input too: keep the device's invariant
        arm_timeout();
    }
}
