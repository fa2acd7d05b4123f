// National Semiconductor PC16550D / 16550A UART, as a PC maps it at COM1
// (0x3F8, IRQ 4) and COM2 (0x2F8, IRQ 3); each instance is one port and the
// machine maps it at whichever base it likes (offsets are relative).
//
// From the 16550D datasheet:
// - 16-byte receive and transmit FIFOs (FCR: enable, clear, receive trigger
//   level 1/4/8/14; IIR bits 7:6 read 11 while enabled), or the 16450's
//   single holding registers with the FIFOs disabled.
// - Interrupt identification in priority order: receiver line status (an
//   overrun), received data available (trigger level reached), character
//   timeout, THR empty, modem status.
// - The character timeout: with the FIFOs enabled, data in the receive FIFO
//   and no character received or read for 4 character times, where a
//   character time follows from the divisor latch and the LCR frame format
//   (start, data, parity and stop bits at divisor x 16 clocks of 1.8432 MHz),
//   measured on the VirtualClock.
// - LSR (DR, OE, THRE, TEMT, and bit 7 never: no parity/framing errors or
//   breaks come from a host byte stream), MCR loopback with the modem outputs
//   wired back to the MSR inputs and their delta bits, the scratch register.
//
// The transmitter is infinitely fast: a byte written to THR goes to the sink
// (or, in loopback, to the receiver) at once, so the transmit FIFO is always
// empty again by the next instruction; THR empty is raised at that point.
// Host input (push_input) is flow-controlled into the receive FIFO: a byte
// moves in only while there is room, as a terminal with hardware flow
// control would send it, so none is lost; only loopback can overrun.
// The interrupt output is not gated by MCR.OUT2 (as in QEMU, whose guests
// this machine runs too).
#pragma once

#include "mmu/bus/io_device.h"
#include "mmu/base/state_visitor.h"
#include "platform/clock/virtual_clock.h"

#include <functional>
#include <string_view>
#include <vector>

class Uart16550 final : public IoDevice {
public:
    static constexpr u16 COM1_BASE = 0x3F8;
    static constexpr u16 COM2_BASE = 0x2F8;
    static constexpr unsigned COM1_IRQ = 4;
    static constexpr unsigned COM2_IRQ = 3;
    static constexpr u32 PORT_COUNT = 8;
    static constexpr unsigned FIFO_SIZE = 16;
    // The crystal a PC's UARTs run from; the baud rate is this / (16 x divisor).
    static constexpr u64 CLOCK_HZ = 1843200;

    // Receives every byte the guest transmits (not in loopback mode).
    using Sink = std::function<void(u8)>;
    // Called with the new level whenever the interrupt output changes.
    using IrqLine = std::function<void(bool level)>;

    explicit Uart16550(VirtualClock& clock, Sink sink = {});

    void set_sink(Sink sink) { m_sink = std::move(sink); }
    void set_irq_line(IrqLine line) { m_irq_line = std::move(line); }

    // Queues bytes as if they had arrived on the serial line.
    void push_input(u8 byte);
    void push_input(std::string_view bytes);

    bool interrupt_pending() const { return m_irq_level; }
    // Nanoseconds one character takes on the line with the current divisor
    // and frame format.
    u64 character_time_ns() const;

    // Byte-wide registers: a wider access is split into byte accesses to
    // consecutive ports, as the ISA bus does.
    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;

    void visit_state(StateVisitor& v);

private:
    u8 read_register(unsigned reg);
    void write_register(unsigned reg, u8 value);
    void write_fcr(u8 value);
    void write_mcr(u8 value);
    void transmit(u8 byte);
    // A character arriving at the receiver; false when it overran.
    bool receive(u8 byte);
    // Moves host input into the receiver while it has room.
    void accept_input();
    u8 read_rbr();
    u8 read_lsr();
    u8 read_msr();
    u8 line_status() const;
    u8 interrupt_identification() const;
    // The modem status inputs (CTS, DSR, RI, DCD in MSR bits 4-7) now.
    u8 modem_inputs() const;
    // Sets the MSR delta bits for a change of the inputs from `before`.
    void note_modem_change(u8 before);
    bool fifo_enabled() const;
    unsigned rx_capacity() const;
    unsigned rx_trigger_level() const;
    bool dlab() const;
    bool loopback() const;

    // Restarts the 4-character-time wait after receiver activity.
    void rx_activity();
    void arm_timeout();
    void on_timeout();
    void update_irq();

    VirtualClock& m_clock;
    ClockTimer m_timeout_timer;
    Sink m_sink;
    IrqLine m_irq_line;
    std::vector<u8> m_rx;    // receive FIFO (or holding register), oldest first
    std::vector<u8> m_input; // host bytes not yet on the line

    u16 m_divisor = 12; // 9600 baud, as after BIOS POST
    u8 m_ier = 0;
    u8 m_fcr = 0; // as written, minus the self-clearing bits 1 and 2
    u8 m_lcr = 0;
    u8 m_mcr = 0;
    u8 m_msr_deltas = 0; // MSR bits 0-3
    u8 m_scr = 0;
    bool m_overrun = false; // LSR.OE, until LSR is read
    // The THR-empty interrupt is an event, not a level: it is raised when THR
    // empties (or is enabled while empty) and cleared by reading IIR while it
    // is the reported source, or by writing THR (16550D datasheet, table 4).
    bool m_thr_interrupt = false;
    bool m_timeout = false;        // character timeout indicated
    u64 m_rx_activity_ns = 0;      // last character received or read
    bool m_irq_level = false;
};
