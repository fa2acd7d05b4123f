#include "platform/uart16550.h"

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

constexpr u8 IER_RDA = 1 << 0;  // received data available
constexpr u8 IER_THRE = 1 << 1; // transmitter holding register empty
constexpr u8 IER_MASK = 0x0F;   // the upper nibble reads as zero on a 16550A

constexpr u8 IIR_NO_INT = 0x01;
constexpr u8 IIR_MODEM_STATUS = 0x00;
constexpr u8 IIR_THRE = 0x02;
constexpr u8 IIR_RDA = 0x04;
constexpr u8 IIR_FIFO_ENABLED = 0xC0;

constexpr u8 FCR_ENABLE = 1 << 0;
constexpr u8 FCR_CLEAR_RX = 1 << 1;

constexpr u8 LCR_DLAB = 1 << 7;

constexpr u8 MCR_DTR = 1 << 0, MCR_RTS = 1 << 1, MCR_OUT1 = 1 << 2, MCR_OUT2 = 1 << 3,
             MCR_LOOP = 1 << 4, MCR_MASK = 0x1F;

constexpr u8 LSR_DR = 1 << 0, LSR_THRE = 1 << 5, LSR_TEMT = 1 << 6;

constexpr u8 MSR_DELTA_MASK = 0x0F;
constexpr u8 MSR_CTS = 1 << 4, MSR_DSR = 1 << 5, MSR_RI = 1 << 6, MSR_DCD = 1 << 7;
constexpr u8 IER_MSI = 1 << 3;

} // namespace

Uart16550::Uart16550(Sink sink)
    : m_sink(std::move(sink)),
      // A host terminal is "connected": carrier, data set ready and clear to
      // send, as QEMU reports for a chardev backend, so guests that wait for
      // CTS before sending do not hang.
      m_msr(MSR_DCD | MSR_DSR | MSR_CTS)
{
}

void Uart16550::push_input(u8 byte)
{
    m_rx.push_back(byte);
    update_irq();
}

void Uart16550::push_input(std::string_view bytes)
{
    for (char c : bytes)
        m_rx.push_back(static_cast<u8>(c));
    update_irq();
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
        if ((iir & 0x0F) == IIR_THRE) {
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
        return line_status();
    case MSR:
        return modem_status();
    case SCR:
        return m_scr;
    }
    return 0xFF;
}

void Uart16550::write_register(unsigned reg, u8 value)
{
    switch (reg) {
    case RBR_THR:
        if (dlab())
            m_divisor = static_cast<u16>((m_divisor & 0xFF00) | value);
        else
            transmit(value);
        return;
    case IER:
        if (dlab()) {
            m_divisor = static_cast<u16>((m_divisor & 0x00FF) | (value << 8));
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
        if (value & FCR_CLEAR_RX)
            m_rx.clear();
        // Bits 1 and 2 self-clear; DMA mode (bit 3) has no effect here.
        m_fcr = value & static_cast<u8>(~0x06);
        update_irq();
        return;
    case LCR:
        m_lcr = value;
        return;
    case MCR:
        m_mcr = value & MCR_MASK;
        update_irq();
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

void Uart16550::transmit(u8 byte)
{
    if (loopback())
        receive(byte);
    else if (m_sink)
        m_sink(byte);
    // The byte leaves at once, so THR is empty again right after the write.
    m_thr_interrupt = true;
    update_irq();
}

void Uart16550::receive(u8 byte)
{
    m_rx.push_back(byte);
    update_irq();
}

u8 Uart16550::read_rbr()
{
    if (m_rx.empty())
        return 0;
    u8 byte = m_rx.front();
    m_rx.pop_front();
    update_irq();
    return byte;
}

u8 Uart16550::line_status() const
{
    u8 lsr = LSR_THRE | LSR_TEMT;
    if (!m_rx.empty())
        lsr |= LSR_DR;
    return lsr;
}

u8 Uart16550::modem_status()
{
    u8 msr = m_msr;
    if (loopback()) {
        // Loopback wires the modem control outputs back to the status inputs
        // (datasheet 8.6): RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD.
        msr = static_cast<u8>(msr & MSR_DELTA_MASK);
        if (m_mcr & MCR_RTS)
            msr |= MSR_CTS;
        if (m_mcr & MCR_DTR)
            msr |= MSR_DSR;
        if (m_mcr & MCR_OUT1)
            msr |= MSR_RI;
        if (m_mcr & MCR_OUT2)
            msr |= MSR_DCD;
    }
    // Reading MSR clears the delta bits.
    m_msr = static_cast<u8>(m_msr & ~MSR_DELTA_MASK);
    return msr;
}

u8 Uart16550::interrupt_identification() const
{
    u8 fifo_bits = (m_fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0;
    // Priority order (datasheet table 4): line status (never raised: no
    // errors are modelled), received data, THR empty, modem status.
    if ((m_ier & IER_RDA) && !m_rx.empty())
        return fifo_bits | IIR_RDA;
    if ((m_ier & IER_THRE) && m_thr_interrupt)
        return fifo_bits | IIR_THRE;
    if ((m_ier & IER_MSI) && (m_msr & MSR_DELTA_MASK))
        return fifo_bits | IIR_MODEM_STATUS;
    return fifo_bits | IIR_NO_INT;
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
