#include "platform/serial/uart16550.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

// Register offsets.
constexpr unsigned THR = 0, RBR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4,
                   LSR = 5, MSR = 6, SCR = 7;

// One UART on a deterministic clock whose time the test sets.
struct Com {
    u64 ns = 0;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    std::string out;
    std::vector<bool> irq_changes;
    Uart16550 uart{clock, [this](u8 b) { out.push_back(static_cast<char>(b)); }};
    Com()
    {
        clock.set_instruction_counter([this] { return ns; });
        uart.set_irq_line([this](bool level) { irq_changes.push_back(level); });
    }
    u8 in(unsigned reg) { return static_cast<u8>(uart.io_read(reg, 1)); }
    void out_byte(unsigned reg, u8 v) { uart.io_write(reg, 1, v); }
    // Advances virtual time, firing each timer at its own deadline.
    void advance(u64 delta)
    {
        const u64 target = ns + delta;
        while (clock.next_deadline() <= target) {
            ns = std::max(ns, clock.next_deadline());
            clock.run_due();
        }
        ns = target;
        clock.run_due();
    }
    // 8N1 at 115200 baud, FIFOs on with trigger level `trigger_bits` (FCR 7:6).
    void fifo_mode(u8 trigger_bits)
    {
        out_byte(LCR, 0x83);
        out_byte(DLL, 1);
        out_byte(DLM, 0);
        out_byte(LCR, 0x03);
        out_byte(FCR, static_cast<u8>(0x07 | trigger_bits << 6));
    }
};

} // namespace

TEST_CASE("UART sends bytes written to THR to the sink")
{
    Com c;
    c.out_byte(THR, 'h');
    c.out_byte(THR, 'i');
    CHECK(c.out == "hi");
}

TEST_CASE("UART LSR reports THR empty and transmitter empty at all times")
{
    Com c;
    CHECK((c.in(LSR) & 0x60) == 0x60);
    c.out_byte(THR, 'x');
    CHECK((c.in(LSR) & 0x60) == 0x60);
    CHECK((c.in(LSR) & 0x01) == 0);
}

TEST_CASE("UART with DLAB set reads and writes the divisor latch instead of THR and IER")
{
    Com c;
    c.out_byte(LCR, 0x80);
    c.out_byte(DLL, 0x01);
    c.out_byte(DLM, 0x02);
    CHECK(c.in(DLL) == 0x01);
    CHECK(c.in(DLM) == 0x02);
    CHECK(c.out.empty());
    c.out_byte(LCR, 0x03);
    CHECK(c.in(LCR) == 0x03);
    CHECK(c.in(IER) == 0x00); // IER untouched by the divisor write
}

TEST_CASE("UART character time follows the divisor and the frame format")
{
    Com c;
    c.out_byte(LCR, 0x83);
    c.out_byte(DLL, 1);
    c.out_byte(LCR, 0x03); // 8N1: 10 bits at 115200 baud
    CHECK(c.uart.character_time_ns() == 86805);
    c.out_byte(LCR, 0x0F); // 8 data, parity, 2 stop: 12 bits
    CHECK(c.uart.character_time_ns() == 104166);
    c.out_byte(LCR, 0x04); // 5 data, 1.5 stop: 7.5 bits
    CHECK(c.uart.character_time_ns() == 65104);
    c.out_byte(LCR, 0x83);
    c.out_byte(DLL, 12);
    c.out_byte(LCR, 0x03); // 9600 baud
    CHECK(c.uart.character_time_ns() == 1041666);
}

TEST_CASE("UART input sets DR and is read from RBR in order")
{
    Com c;
    c.uart.push_input("ab");
    CHECK((c.in(LSR) & 0x01) == 0x01);
    CHECK(c.in(RBR) == 'a');
    CHECK(c.in(RBR) == 'b');
    CHECK((c.in(LSR) & 0x01) == 0);
}

TEST_CASE("UART holds host input until the receiver has room, losing none")
{
    Com c;
    c.fifo_mode(0);
    std::string text;
    for (int i = 0; i < 40; ++i)
        text.push_back(static_cast<char>('A' + i % 26));
    c.uart.push_input(text);
    std::string got;
    while (c.in(LSR) & 0x01)
        got.push_back(static_cast<char>(c.in(RBR)));
    CHECK(got == text);
    CHECK((c.in(LSR) & 0x02) == 0); // no overrun
}

TEST_CASE("UART loopback returns transmitted bytes as input and mirrors MCR in MSR")
{
    Com c;
    c.out_byte(MCR, 0x10 | 0x0F);
    c.out_byte(THR, 0x5A);
    CHECK(c.out.empty());
    CHECK(c.in(RBR) == 0x5A);
    CHECK((c.in(MSR) & 0xF0) == 0xF0);
    c.out_byte(MCR, 0x10 | 0x02); // RTS only
    CHECK((c.in(MSR) & 0xF0) == 0x10);
}

TEST_CASE("UART loopback sets MSR delta bits, TERI on RI's trailing edge only, and reading MSR clears them")
{
    Com c;
    c.out_byte(MCR, 0x10);                 // loopback, all outputs off
    CHECK((c.in(MSR) & 0x0F) == 0x0B);     // CTS, DSR, DCD dropped from the idle terminal's lines
    CHECK((c.in(MSR) & 0x0F) == 0);        // cleared by the read
    c.out_byte(MCR, 0x10 | 0x04);          // OUT1 → RI rises
    CHECK(c.in(MSR) == 0x40);              // rising RI sets no delta
    c.out_byte(MCR, 0x10);                 // RI falls
    CHECK(c.in(MSR) == 0x04);              // TERI
    c.out_byte(MCR, 0x10 | 0x01);          // DTR → DSR
    CHECK(c.in(MSR) == (0x20 | 0x02));
}

TEST_CASE("UART modem status interrupt comes from MSR deltas and clears on an MSR read")
{
    Com c;
    c.out_byte(MCR, 0x10);
    c.in(MSR);
    c.out_byte(IER, 0x08);
    CHECK(c.in(IIR) == 0x01);
    c.out_byte(MCR, 0x10 | 0x02);
    CHECK(c.uart.interrupt_pending());
    CHECK(c.in(IIR) == 0x00);
    c.in(MSR);
    CHECK(c.in(IIR) == 0x01);
    CHECK_FALSE(c.uart.interrupt_pending());
}

TEST_CASE("UART scratch register keeps its value")
{
    Com c;
    c.out_byte(SCR, 0xA5);
    CHECK(c.in(SCR) == 0xA5);
}

TEST_CASE("UART IIR reports no interrupt until one is enabled, and FIFO bits after FCR enable")
{
    Com c;
    CHECK(c.in(IIR) == 0x01);
    c.out_byte(FCR, 0x01);
    CHECK(c.in(IIR) == 0xC1);
    c.out_byte(FCR, 0x00);
    CHECK(c.in(IIR) == 0x01);
}

TEST_CASE("UART raises a THR-empty interrupt when enabled and clears it on IIR read")
{
    Com c;
    c.out_byte(IER, 0x02);
    CHECK(c.uart.interrupt_pending());
    CHECK(c.in(IIR) == 0x02);
    CHECK_FALSE(c.uart.interrupt_pending());
    CHECK(c.in(IIR) == 0x01);
    c.out_byte(THR, 'x'); // transmission empties THR again
    CHECK(c.uart.interrupt_pending());
    CHECK(c.irq_changes == std::vector<bool>{true, false, true});
}

TEST_CASE("UART writing THR while THR empty is pending makes a fresh interrupt edge")
{
    Com c;
    c.out_byte(IER, 0x02);
    c.irq_changes.clear();
    c.out_byte(THR, 'a'); // pending, not acknowledged by IIR
    CHECK(c.irq_changes == std::vector<bool>{false, true});
}

TEST_CASE("UART does not raise THR empty again when IER is rewritten with ETBEI already set")
{
    Com c;
    c.out_byte(IER, 0x02);
    c.in(IIR);
    c.out_byte(IER, 0x02);
    CHECK_FALSE(c.uart.interrupt_pending());
    c.out_byte(IER, 0x00);
    c.out_byte(IER, 0x02); // 0 → 1 while empty raises it
    CHECK(c.uart.interrupt_pending());
}

TEST_CASE("UART received data interrupt takes priority over THR empty")
{
    Com c;
    c.out_byte(IER, 0x03);
    c.uart.push_input('k');
    CHECK(c.in(IIR) == 0x04);
    CHECK(c.in(RBR) == 'k');
    CHECK(c.in(IIR) == 0x02);
}

TEST_CASE("UART FIFO raises received data available at each trigger level")
{
    const unsigned levels[4] = {1, 4, 8, 14};
    for (u8 bits = 0; bits < 4; ++bits) {
        CAPTURE(bits);
        Com c;
        c.fifo_mode(bits);
        c.out_byte(IER, 0x01);
        for (unsigned i = 1; i < levels[bits]; ++i)
            c.uart.push_input('x');
        CHECK(c.in(IIR) == 0xC1);
        c.uart.push_input('y');
        CHECK(c.in(IIR) == 0xC4);
        CHECK(c.uart.interrupt_pending());
        c.in(RBR); // below the level again
        CHECK((c.in(IIR) & 0x0F) != 0x04);
    }
}

TEST_CASE("UART FIFO holds 16 bytes; the 17th waits outside")
{
    Com c;
    c.fifo_mode(3);
    c.uart.push_input(std::string(20, 'z'));
    unsigned n = 0;
    c.out_byte(MCR, 0x10); // loopback disconnects the host line: count only what is inside
    while (c.in(LSR) & 0x01) {
        c.in(RBR);
        ++n;
    }
    CHECK(n == 16);
    c.out_byte(MCR, 0x00); // reconnected: the other 4 arrive
    n = 0;
    while (c.in(LSR) & 0x01) {
        c.in(RBR);
        ++n;
    }
    CHECK(n == 4);
}

TEST_CASE("UART character timeout fires after 4 character times of silence below the trigger level")
{
    Com c;
    c.fifo_mode(3); // trigger 14
    c.out_byte(IER, 0x01);
    const u64 t = c.uart.character_time_ns();
    c.uart.push_input("ab");
    CHECK(c.in(IIR) == 0xC1);
    c.advance(4 * t - 1);
    CHECK(c.in(IIR) == 0xC1);
    CHECK_FALSE(c.uart.interrupt_pending());
    c.advance(1);
    CHECK(c.in(IIR) == 0xCC);
    CHECK(c.uart.interrupt_pending());
    // A read clears it and restarts the wait for the byte that is left.
    CHECK(c.in(RBR) == 'a');
    CHECK(c.in(IIR) == 0xC1);
    c.advance(4 * t - 1);
    CHECK(c.in(IIR) == 0xC1);
    c.advance(1);
    CHECK(c.in(IIR) == 0xCC);
    CHECK(c.in(RBR) == 'b');
    c.advance(100 * t); // empty FIFO: no timeout
    CHECK(c.in(IIR) == 0xC1);
}

TEST_CASE("UART character timeout waits for the last character received, not the first")
{
    Com c;
    c.fifo_mode(3);
    c.out_byte(IER, 0x01);
    const u64 t = c.uart.character_time_ns();
    c.uart.push_input('a');
    c.advance(3 * t);
    c.uart.push_input('b');
    c.advance(3 * t);
    CHECK(c.in(IIR) == 0xC1);
    c.advance(t);
    CHECK(c.in(IIR) == 0xCC);
}

TEST_CASE("UART character timeout is measured at the programmed baud rate")
{
    Com c;
    c.out_byte(LCR, 0x80);
    c.out_byte(DLL, 12); // 9600 baud
    c.out_byte(LCR, 0x03);
    c.out_byte(FCR, 0xC7);
    c.out_byte(IER, 0x01);
    c.uart.push_input('q');
    c.advance(4 * 1041666 - 10);
    CHECK(c.in(IIR) == 0xC1);
    c.advance(10);
    CHECK(c.in(IIR) == 0xCC);
}

TEST_CASE("UART has no character timeout with the FIFOs disabled")
{
    Com c;
    c.out_byte(IER, 0x01);
    c.uart.push_input('a');
    CHECK(c.in(IIR) == 0x04);
    c.advance(100000000);
    CHECK(c.in(IIR) == 0x04);
}

TEST_CASE("UART FCR bit 1 clears the receive FIFO and with it a character timeout")
{
    Com c;
    c.fifo_mode(3);
    c.out_byte(IER, 0x01);
    c.uart.push_input("xyz");
    c.advance(10000000);
    CHECK(c.in(IIR) == 0xCC);
    c.out_byte(FCR, 0xC3);
    CHECK((c.in(LSR) & 0x01) == 0);
    CHECK(c.in(IIR) == 0xC1);
}

TEST_CASE("UART switching the FIFOs off and on empties the receiver")
{
    Com c;
    c.out_byte(FCR, 0x01);
    c.out_byte(MCR, 0x10);
    c.out_byte(THR, '1');
    c.out_byte(THR, '2');
    c.out_byte(FCR, 0x00);
    CHECK((c.in(LSR) & 0x01) == 0);
    c.out_byte(THR, '3');
    c.out_byte(FCR, 0x01);
    CHECK((c.in(LSR) & 0x01) == 0);
}

TEST_CASE("UART FCR writes without the enable bit leave the trigger level alone")
{
    Com c;
    c.out_byte(FCR, 0x41); // trigger 4
    c.out_byte(FCR, 0xC0); // enable bit clear: FIFOs off, nothing else programmed
    c.out_byte(FCR, 0x01); // back on, trigger bits 00 → 1
    c.out_byte(IER, 0x01);
    c.uart.push_input('a');
    CHECK(c.in(IIR) == 0xC4);
}

TEST_CASE("UART loopback overrun sets LSR.OE and raises a line status interrupt above everything else")
{
    Com c;
    c.out_byte(FCR, 0x01 | 0xC0);
    c.out_byte(MCR, 0x10);
    c.out_byte(IER, 0x0F);
    for (int i = 0; i < 16; ++i)
        c.out_byte(THR, static_cast<u8>(i));
    CHECK(c.in(IIR) == 0xC4);     // 16 ≥ 14
    c.out_byte(THR, 0xEE);        // the 17th is lost
    CHECK(c.in(IIR) == 0xC6);
    CHECK(c.in(LSR) == 0x63);     // DR, OE, THRE, TEMT
    CHECK(c.in(LSR) == 0x61);     // OE cleared by the read
    CHECK(c.in(IIR) == 0xC4);
    for (int i = 0; i < 16; ++i)
        CHECK(c.in(RBR) == i);
    CHECK((c.in(LSR) & 0x01) == 0);
}

TEST_CASE("UART without FIFOs overwrites the holding register on overrun")
{
    Com c;
    c.out_byte(MCR, 0x10);
    c.out_byte(THR, 'a');
    c.out_byte(THR, 'b');
    CHECK(c.in(LSR) == 0x63);
    CHECK(c.in(RBR) == 'b');
}

TEST_CASE("UART interrupt identification priorities: line status, data, timeout, THRE, modem")
{
    Com c;
    c.fifo_mode(1); // trigger 4
    c.out_byte(MCR, 0x10);
    c.in(MSR);
    c.out_byte(IER, 0x0F);
    c.out_byte(MCR, 0x12);        // modem status change (CTS)
    c.out_byte(THR, 'a');         // THRE pending; one byte received
    CHECK(c.in(IIR) == 0xC2);     // THRE outranks modem status; acknowledged by this read
    CHECK(c.in(IIR) == 0xC0);     // modem status next
    c.advance(10 * c.uart.character_time_ns());
    CHECK(c.in(IIR) == 0xCC);     // the timeout outranks modem status
    for (int i = 0; i < 3; ++i)
        c.out_byte(THR, 'b');
    CHECK(c.in(IIR) == 0xC4);     // 4 bytes: data available outranks the timeout
    for (int i = 0; i < 13; ++i)
        c.out_byte(THR, 'c');
    CHECK(c.in(IIR) == 0xC6);     // overrun outranks everything
    c.in(LSR);
    CHECK(c.in(IIR) == 0xC4);
}

TEST_CASE("UART interrupt output follows the highest pending source")
{
    Com c;
    c.out_byte(IER, 0x01);
    c.uart.push_input('a');
    CHECK(c.irq_changes == std::vector<bool>{true});
    c.in(RBR);
    CHECK(c.irq_changes == std::vector<bool>{true, false});
}

TEST_CASE("UART word access is split into byte accesses to consecutive ports")
{
    Com c;
    c.uart.io_write(6, 2, 0x7700); // MSR ignores writes, SCR gets 0x77
    CHECK(c.in(SCR) == 0x77);
    CHECK((c.uart.io_read(7, 2) & 0xFF) == 0x77);
}

TEST_CASE("UART second instance is independent of the first")
{
    Com com1, com2;
    com2.out_byte(SCR, 0x22);
    com1.out_byte(SCR, 0x11);
    com2.out_byte(THR, 'b');
    CHECK(com1.out.empty());
    CHECK(com2.out == "b");
    CHECK(com2.in(SCR) == 0x22);
    CHECK(Uart16550::COM2_BASE == 0x2F8);
    CHECK(Uart16550::COM2_IRQ == 3);
}

TEST_CASE("UART state saves, loads and saves again to the same bytes")
{
    Com c;
    c.fifo_mode(2);
    c.out_byte(IER, 0x0B);
    c.out_byte(SCR, 0x5C);
    c.out_byte(MCR, 0x1B);
    c.out_byte(THR, 'L');
    c.out_byte(MCR, 0x0B);
    c.uart.push_input(std::string(20, 'h'));
    c.advance(1000);

    StateVisitor save = StateVisitor::saver();
    c.uart.visit_state(save);

    Com fresh;
    fresh.ns = c.ns;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.uart.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.uart.visit_state(again);
    CHECK(again.bytes() == save.bytes());

    CHECK(fresh.clock.next_deadline() == c.clock.next_deadline());
    CHECK(fresh.in(IIR) == c.in(IIR));
    CHECK(fresh.in(SCR) == 0x5C);
    std::string a, b;
    while (c.in(LSR) & 0x01)
        a.push_back(static_cast<char>(c.in(RBR)));
    while (fresh.in(LSR) & 0x01)
        b.push_back(static_cast<char>(fresh.in(RBR)));
    CHECK(a == b);
    CHECK(a.size() == 21); // the looped-back 'L' and all 20 host bytes
}
