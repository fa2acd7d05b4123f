// National Semiconductor PC16550D / 16550A UART, as a PC maps it at COM1
// (0x3F8, 8 ports). Enough for polled console output and input now: the
// transmitter is infinitely fast (THR empty and TEMT always set), receive
// data comes from push_input(). Interrupt identification follows the
// datasheet's priority; the interrupt line is a callback that the platform
// issue will wire to the PIC/IOAPIC (until then nothing listens).
#pragma once

#include "mmu/io_device.h"

#include <deque>
#include <functional>
#include <string_view>

class Uart16550 final : public IoDevice {
public:
    static constexpr u16 COM1_BASE = 0x3F8;
    static constexpr u32 PORT_COUNT = 8;

    // Receives every byte the guest transmits (not in loopback mode).
    using Sink = std::function<void(u8)>;
    // Called with the new level whenever the interrupt output changes.
    using IrqLine = std::function<void(bool level)>;

    explicit Uart16550(Sink sink = {});

    void set_sink(Sink sink) { m_sink = std::move(sink); }
    void set_irq_line(IrqLine line) { m_irq_line = std::move(line); }

    // Queues bytes as if they had arrived on the serial line.
    void push_input(u8 byte);
    void push_input(std::string_view bytes);

    bool interrupt_pending() const { return m_irq_level; }

    // Byte-wide registers: a wider access is split into byte accesses to
    // consecutive ports, as the ISA bus does.
    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;

private:
    u8 read_register(unsigned reg);
    void write_register(unsigned reg, u8 value);
    void transmit(u8 byte);
    void receive(u8 byte);
    u8 read_rbr();
    u8 line_status() const;
    u8 modem_status();
    u8 interrupt_identification() const;
    void update_irq();
    bool dlab() const;
    bool loopback() const;

    Sink m_sink;
    IrqLine m_irq_line;
    std::deque<u8> m_rx;

    u16 m_divisor = 12; // 9600 baud from the 1.8432 MHz clock, as after BIOS POST
    u8 m_ier = 0;
    u8 m_fcr = 0;
    u8 m_lcr = 0;
    u8 m_mcr = 0;
    u8 m_msr = 0;
    u8 m_scr = 0;
    // The THR-empty interrupt is an event, not a level: it is raised when THR
    // empties (or is enabled while empty) and cleared by reading IIR while it
    // is the reported source, or by writing THR (16550D datasheet, table 4).
    bool m_thr_interrupt = false;
    bool m_irq_level = false;
};
