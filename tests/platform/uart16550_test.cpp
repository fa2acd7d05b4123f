#include "platform/uart16550.h"

#include <doctest/doctest.h>

#include <string>

namespace {

struct Com1 {
    std::string out;
    std::vector<bool> irq_changes;
    Uart16550 uart{[this](u8 b) { out.push_back(static_cast<char>(b)); }};
    Com1()
    {
        uart.set_irq_line([this](bool level) { irq_changes.push_back(level); });
    }
    u8 in(unsigned reg) { return static_cast<u8>(uart.io_read(reg, 1)); }
    void out_byte(unsigned reg, u8 v) { uart.io_write(reg, 1, v); }
};

} // namespace

TEST_CASE("UART sends bytes written to THR to the sink")
{
    Com1 c;
    c.out_byte(0, 'h');
    c.out_byte(0, 'i');
    CHECK(c.out == "hi");
}

TEST_CASE("UART LSR reports THR empty and transmitter empty at all times")
{
    Com1 c;
    CHECK((c.in(5) & 0x60) == 0x60);
    c.out_byte(0, 'x');
    CHECK((c.in(5) & 0x60) == 0x60);
    CHECK((c.in(5) & 0x01) == 0);
}

TEST_CASE("UART with DLAB set reads and writes the divisor latch instead of THR and IER")
{
    Com1 c;
    c.out_byte(3, 0x80);
    c.out_byte(0, 0x01);
    c.out_byte(1, 0x02);
    CHECK(c.in(0) == 0x01);
    CHECK(c.in(1) == 0x02);
    CHECK(c.out.empty());
    c.out_byte(3, 0x03);
    CHECK(c.in(3) == 0x03);
    CHECK(c.in(1) == 0x00); // IER untouched by the divisor write
}

TEST_CASE("UART input sets DR and is read from RBR in order")
{
    Com1 c;
    c.uart.push_input("ab");
    CHECK((c.in(5) & 0x01) == 0x01);
    CHECK(c.in(0) == 'a');
    CHECK(c.in(0) == 'b');
    CHECK((c.in(5) & 0x01) == 0);
}

TEST_CASE("UART loopback returns transmitted bytes as input and mirrors MCR in MSR")
{
    Com1 c;
    c.out_byte(4, 0x10 | 0x0F);
    c.out_byte(0, 0x5A);
    CHECK(c.out.empty());
    CHECK(c.in(0) == 0x5A);
    CHECK((c.in(6) & 0xF0) == 0xF0);
    c.out_byte(4, 0x10 | 0x02); // RTS only
    CHECK((c.in(6) & 0xF0) == 0x10);
}

TEST_CASE("UART scratch register keeps its value")
{
    Com1 c;
    c.out_byte(7, 0xA5);
    CHECK(c.in(7) == 0xA5);
}

TEST_CASE("UART IIR reports no interrupt until one is enabled, and FIFO bits after FCR enable")
{
    Com1 c;
    CHECK(c.in(2) == 0x01);
    c.out_byte(2, 0x01);
    CHECK(c.in(2) == 0xC1);
}

TEST_CASE("UART raises a THR-empty interrupt when enabled and clears it on IIR read")
{
    Com1 c;
    c.out_byte(1, 0x02);
    CHECK(c.uart.interrupt_pending());
    CHECK(c.in(2) == 0x02);
    CHECK_FALSE(c.uart.interrupt_pending());
    CHECK(c.in(2) == 0x01);
    c.out_byte(0, 'x'); // transmission empties THR again
    CHECK(c.uart.interrupt_pending());
    REQUIRE(c.irq_changes.size() == 3);
    CHECK(c.irq_changes == std::vector<bool>{true, false, true});
}

TEST_CASE("UART received data interrupt takes priority over THR empty")
{
    Com1 c;
    c.out_byte(1, 0x03);
    c.uart.push_input('k');
    CHECK(c.in(2) == 0x04);
    CHECK(c.in(0) == 'k');
    CHECK(c.in(2) == 0x02);
}

TEST_CASE("UART FCR bit 1 clears the receive FIFO")
{
    Com1 c;
    c.uart.push_input("xyz");
    c.out_byte(2, 0x03);
    CHECK((c.in(5) & 0x01) == 0);
}

TEST_CASE("UART word access is split into byte accesses to consecutive ports")
{
    Com1 c;
    c.uart.io_write(6, 2, 0x7700); // MSR ignores writes, SCR gets 0x77
    CHECK(c.in(7) == 0x77);
    CHECK((c.uart.io_read(7, 2) & 0xFF) == 0x77);
}
