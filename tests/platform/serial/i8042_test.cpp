#include "platform/serial/i8042.h"

#include <doctest/doctest.h>

#include <vector>

namespace {

using Bytes = std::vector<u8>;

struct Kbc {
    I8042 kbc;
    std::vector<bool> irq1;
    std::vector<bool> irq12;
    std::vector<bool> a20;
    int resets = 0;

    Kbc()
    {
        kbc.set_keyboard_irq_line([this](bool level) { irq1.push_back(level); });
        kbc.set_mouse_irq_line([this](bool level) { irq12.push_back(level); });
        kbc.set_a20_handler([this](bool on) { a20.push_back(on); });
        kbc.set_reset_handler([this] { ++resets; });
    }
    u8 status() { return static_cast<u8>(kbc.command_port().io_read(0, 1)); }
    u8 data() { return static_cast<u8>(kbc.data_port().io_read(0, 1)); }
    void command(u8 c) { kbc.command_port().io_write(0, 1, c); }
    void write(u8 v) { kbc.data_port().io_write(0, 1, v); }
    void command(u8 c, u8 v)
    {
        command(c);
        write(v);
    }
    // Reads the output buffer until it is empty.
    Bytes drain()
    {
        Bytes out;
        while (status() & 0x01)
            out.push_back(data());
        return out;
    }
    // Command byte with translation off and both interrupts on, aux enabled.
    void plain_mode() { command(0x60, 0x07); }
    // Aux port enabled with IRQ 12, and a command sent to the mouse.
    Bytes mouse(u8 byte)
    {
        command(0xD4, byte);
        return drain();
    }
};

} // namespace

TEST_CASE("i8042 starts as a BIOS leaves it: translation on, keyboard enabled, aux disabled")
{
    Kbc k;
    k.command(0x20);
    CHECK(k.drain() == Bytes{0x65});
    CHECK((k.status() & 0x04) == 0x04);
    CHECK(k.kbc.a20_enabled());
}

TEST_CASE("i8042 self-test answers 0x55 and sets the system flag")
{
    Kbc k;
    k.command(0x60, 0x00);
    CHECK((k.status() & 0x04) == 0);
    k.command(0xAA);
    CHECK(k.drain() == Bytes{0x55});
    CHECK((k.status() & 0x04) == 0x04);
}

TEST_CASE("i8042 keyboard and aux interface tests answer 0x00")
{
    Kbc k;
    k.command(0xAB);
    CHECK(k.drain() == Bytes{0x00});
    k.command(0xA9);
    CHECK(k.drain() == Bytes{0x00});
}

TEST_CASE("i8042 command byte and controller RAM read back what was written")
{
    Kbc k;
    k.command(0x60, 0x47);
    k.command(0x20);
    CHECK(k.drain() == Bytes{0x47});
    k.command(0x65, 0x99);
    k.command(0x25);
    CHECK(k.drain() == Bytes{0x99});
}

TEST_CASE("i8042 status bit 3 tells whether the last write went to the command port")
{
    Kbc k;
    k.command(0xAD);
    CHECK((k.status() & 0x08) == 0x08);
    k.write(0xF4);
    CHECK((k.status() & 0x08) == 0);
}

TEST_CASE("i8042 enable and disable commands set and clear the interface bits of the command byte")
{
    Kbc k;
    k.command(0xA8);
    k.command(0xAD);
    k.command(0x20);
    CHECK(k.drain() == Bytes{0x55});
    k.command(0xA7);
    k.command(0xAE);
    k.command(0x20);
    CHECK(k.drain() == Bytes{0x65});
}

TEST_CASE("i8042 raises IRQ 1 while keyboard data waits and drops it when read")
{
    Kbc k;
    k.write(0xEE);
    CHECK(k.irq1 == std::vector<bool>{true});
    CHECK(k.data() == 0xEE);
    CHECK(k.irq1 == std::vector<bool>{true, false});
}

TEST_CASE("i8042 keeps IRQ 1 low when the command byte disables it")
{
    Kbc k;
    k.command(0x60, 0x64);
    k.write(0xEE);
    CHECK((k.status() & 0x01) == 0x01);
    CHECK(k.irq1.empty());
}

TEST_CASE("i8042 keyboard reset answers ACK then self-test passed")
{
    Kbc k;
    k.write(0xFF);
    CHECK(k.drain() == Bytes{0xFA, 0xAA});
}

TEST_CASE("i8042 keyboard identify answers AB 41 through translation")
{
    Kbc k;
    k.write(0xF2);
    CHECK(k.drain() == Bytes{0xFA, 0xAB, 0x41});
}

TEST_CASE("i8042 keyboard identify answers AB 83 without translation")
{
    Kbc k;
    k.plain_mode();
    k.write(0xF2);
    CHECK(k.drain() == Bytes{0xFA, 0xAB, 0x83});
}

TEST_CASE("i8042 translates set 2 scancodes to set 1 with break codes")
{
    Kbc k;
    const u8 a_down[] = {0x1C};
    const u8 a_up[] = {0xF0, 0x1C};
    const u8 up_arrow[] = {0xE0, 0x75};
    const u8 up_arrow_release[] = {0xE0, 0xF0, 0x75};
    k.kbc.key_event(a_down);
    k.kbc.key_event(a_up);
    k.kbc.key_event(up_arrow);
    k.kbc.key_event(up_arrow_release);
    CHECK(k.drain() == Bytes{0x1E, 0x9E, 0xE0, 0x48, 0xE0, 0xC8});
}

TEST_CASE("i8042 passes set 2 scancodes through with translation off")
{
    Kbc k;
    k.plain_mode();
    const u8 a_up[] = {0xF0, 0x1C};
    k.kbc.key_event(a_up);
    CHECK(k.drain() == Bytes{0xF0, 0x1C});
}

TEST_CASE("i8042 keyboard in scancode set 1 sends set 1 codes itself")
{
    Kbc k;
    k.plain_mode();
    k.write(0xF0);
    k.write(0x01);
    CHECK(k.drain() == Bytes{0xFA, 0xFA});
    const u8 enter_up[] = {0xF0, 0x5A};
    k.kbc.key_event(enter_up);
    CHECK(k.drain() == Bytes{0x9C});
}

TEST_CASE("i8042 keyboard reports its scancode set")
{
    Kbc k;
    k.plain_mode();
    k.write(0xF0);
    k.write(0x00);
    CHECK(k.drain() == Bytes{0xFA, 0xFA, 0x02});
}

TEST_CASE("i8042 keyboard answers resend to scancode set 3")
{
    Kbc k;
    k.plain_mode();
    k.write(0xF0);
    k.write(0x03);
    CHECK(k.drain() == Bytes{0xFA, 0xFE});
}

TEST_CASE("i8042 keyboard takes its LEDs from the byte after 0xED")
{
    Kbc k;
    k.write(0xED);
    k.write(0x05);
    CHECK(k.drain() == Bytes{0xFA, 0xFA});
    CHECK(k.kbc.keyboard_leds() == 0x05);
}

TEST_CASE("i8042 keyboard echo answers 0xEE and resend repeats the last byte")
{
    Kbc k;
    k.write(0xEE);
    CHECK(k.drain() == Bytes{0xEE});
    k.write(0xFE);
    CHECK(k.drain() == Bytes{0xEE});
}

TEST_CASE("i8042 keyboard answers resend to an unknown command")
{
    Kbc k;
    k.write(0x42);
    CHECK(k.drain() == Bytes{0xFE});
}

TEST_CASE("i8042 keyboard drops keys while scanning is disabled")
{
    Kbc k;
    k.write(0xF5);
    CHECK(k.drain() == Bytes{0xFA});
    const u8 a_down[] = {0x1C};
    k.kbc.key_event(a_down);
    CHECK(k.drain().empty());
    k.write(0xF4);
    k.kbc.key_event(a_down);
    CHECK(k.drain() == Bytes{0xFA, 0x1E});
}

TEST_CASE("i8042 keyboard interface disable holds keyboard bytes until it is enabled")
{
    Kbc k;
    k.command(0xAD);
    const u8 a_down[] = {0x1C};
    k.kbc.key_event(a_down);
    CHECK((k.status() & 0x01) == 0);
    k.command(0xAE);
    CHECK(k.drain() == Bytes{0x1E});
}

TEST_CASE("i8042 keyboard buffer overflow ends in one overrun code")
{
    Kbc k;
    k.command(0xAD);
    const u8 a_down[] = {0x1C};
    for (int i = 0; i < 20; ++i)
        k.kbc.key_event(a_down);
    k.plain_mode();
    Bytes out = k.drain();
    REQUIRE(out.size() == 16);
    CHECK(out.back() == 0x00);
    CHECK(out[14] == 0x1C);
}

TEST_CASE("i8042 reading an empty output buffer returns the last byte again")
{
    Kbc k;
    k.write(0xEE);
    CHECK(k.data() == 0xEE);
    CHECK(k.data() == 0xEE);
    CHECK((k.status() & 0x01) == 0);
}

TEST_CASE("i8042 output port bit 1 switches A20")
{
    Kbc k;
    k.command(0xD1, 0xCD);
    CHECK_FALSE(k.kbc.a20_enabled());
    k.command(0xD1, 0xCF);
    CHECK(k.kbc.a20_enabled());
    CHECK(k.a20 == std::vector<bool>{false, true});
    CHECK(k.resets == 0);
}

TEST_CASE("i8042 output port bit 0 written low resets the machine")
{
    Kbc k;
    k.command(0xD1, 0xCE);
    CHECK(k.resets == 1);
}

TEST_CASE("i8042 command 0xFE pulses the reset line and 0xFF pulses nothing")
{
    Kbc k;
    k.command(0xFF);
    CHECK(k.resets == 0);
    k.command(0xFE);
    CHECK(k.resets == 1);
}

TEST_CASE("i8042 commands 0xDD and 0xDF turn A20 off and on")
{
    Kbc k;
    k.command(0xDD);
    CHECK_FALSE(k.kbc.a20_enabled());
    k.command(0xDF);
    CHECK(k.kbc.a20_enabled());
    CHECK(k.a20 == std::vector<bool>{false, true});
}

TEST_CASE("i8042 reads the output port and the input port")
{
    Kbc k;
    k.command(0xD0);
    CHECK(k.drain() == Bytes{0xCF});
    k.command(0xC0);
    CHECK(k.drain() == Bytes{0x80});
}

TEST_CASE("i8042 command 0xD2 returns a byte as keyboard data")
{
    Kbc k;
    k.command(0xD2, 0x5A);
    CHECK((k.status() & 0x21) == 0x01);
    CHECK(k.drain() == Bytes{0x5A});
}

TEST_CASE("i8042 aux loopback 0xD3 returns a byte as mouse data on IRQ 12")
{
    Kbc k;
    k.command(0x60, 0x47); // both interrupts, aux enabled
    k.command(0xD3, 0x5A);
    CHECK((k.status() & 0x21) == 0x21);
    CHECK(k.irq12 == std::vector<bool>{true});
    CHECK(k.irq1.empty());
    CHECK(k.data() == 0x5A);
    CHECK(k.irq12 == std::vector<bool>{true, false});
}

TEST_CASE("i8042 mouse reset answers ACK, self-test passed and ID 0")
{
    Kbc k;
    k.plain_mode();
    CHECK(k.mouse(0xFF) == Bytes{0xFA, 0xAA, 0x00});
}

TEST_CASE("i8042 mouse identifies as a standard PS/2 mouse")
{
    Kbc k;
    k.plain_mode();
    CHECK(k.mouse(0xF2) == Bytes{0xFA, 0x00});
}

TEST_CASE("i8042 aux interface disable holds mouse bytes")
{
    Kbc k; // aux disabled from power-on
    k.command(0xD4, 0xF2);
    CHECK((k.status() & 0x01) == 0);
    k.command(0xA8);
    CHECK(k.drain() == Bytes{0xFA, 0x00});
}

TEST_CASE("i8042 mouse in stream mode sends a 3-byte packet for motion")
{
    Kbc k;
    k.plain_mode();
    CHECK(k.mouse(0xF4) == Bytes{0xFA});
    k.kbc.mouse_event(5, -3, 0x01);
    CHECK(k.drain() == Bytes{0x29, 0x05, 0xFD});
    CHECK(k.irq12.size() >= 2);
}

TEST_CASE("i8042 mouse splits large motion into several packets")
{
    Kbc k;
    k.plain_mode();
    k.mouse(0xF4);
    k.kbc.mouse_event(300, 0, 0);
    CHECK(k.drain() == Bytes{0x08, 0xFF, 0x00, 0x08, 0x2D, 0x00});
}

TEST_CASE("i8042 mouse sends nothing until reporting is enabled")
{
    Kbc k;
    k.plain_mode();
    k.kbc.mouse_event(5, 5, 0);
    CHECK(k.drain().empty());
}

TEST_CASE("i8042 mouse status request reports mode, scaling, buttons, resolution and rate")
{
    Kbc k;
    k.plain_mode();
    k.mouse(0xE7);
    CHECK(k.mouse(0xF3) == Bytes{0xFA});
    CHECK(k.mouse(40) == Bytes{0xFA});
    k.mouse(0xE8);
    k.mouse(0x01);
    k.kbc.mouse_event(0, 0, 0x01); // left button held
    CHECK(k.mouse(0xE9) == Bytes{0xFA, 0x14, 0x01, 40});
}

TEST_CASE("i8042 mouse remote mode sends motion only when data is read")
{
    Kbc k;
    k.plain_mode();
    k.mouse(0xF0);
    k.kbc.mouse_event(7, 2, 0);
    CHECK(k.drain().empty());
    CHECK(k.mouse(0xEB) == Bytes{0xFA, 0x08, 0x07, 0x02});
}

TEST_CASE("i8042 mouse wrap mode echoes bytes until wrap is reset")
{
    Kbc k;
    k.plain_mode();
    CHECK(k.mouse(0xEE) == Bytes{0xFA});
    CHECK(k.mouse(0x12) == Bytes{0x12});
    CHECK(k.mouse(0xEC) == Bytes{0xFA});
    CHECK(k.mouse(0xF2) == Bytes{0xFA, 0x00});
}

TEST_CASE("i8042 mouse 2:1 scaling maps small motion through the PS/2 table")
{
    Kbc k;
    k.plain_mode();
    k.mouse(0xE7);
    k.mouse(0xF4);
    k.kbc.mouse_event(4, 0, 0);
    CHECK(k.drain() == Bytes{0x08, 0x06, 0x00});
}

TEST_CASE("i8042 state saves, loads and saves again to the same bytes")
{
    Kbc k;
    k.plain_mode();
    k.mouse(0xF4);
    k.write(0xED);
    k.kbc.mouse_event(10, -10, 2);
    const u8 a_down[] = {0x1C};
    k.kbc.key_event(a_down);
    k.command(0xD1); // waiting for its data byte

    StateVisitor save = StateVisitor::saver();
    k.kbc.visit_state(save);
    Kbc fresh;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.kbc.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.kbc.visit_state(again);
    CHECK(again.bytes() == save.bytes());

    fresh.write(0xCF);
    k.write(0xCF);
    CHECK(fresh.drain() == k.drain());
}

// Linux's PS/2 driver waits for each byte of a multi-byte answer on an
// edge-triggered IOAPIC input: every byte needs a rising edge of its own. A
// line that stays high from one byte to the next makes atkbd time out, fail
// its probe and rescan forever.
TEST_CASE("i8042 gives each byte of a multi-byte answer its own IRQ 1 edge")
{
    Kbc k;
    k.plain_mode();
    k.irq1.clear();
    k.write(0xF2); // identify: FA AB 83
    CHECK(k.drain() == Bytes{0xFA, 0xAB, 0x83});
    CHECK(k.irq1 == std::vector<bool>{true, false, true, false, true, false});
}

TEST_CASE("i8042 gives each byte of a mouse answer its own IRQ 12 edge")
{
    Kbc k;
    k.plain_mode();
    k.irq12.clear();
    CHECK(k.mouse(0xFF) == Bytes{0xFA, 0xAA, 0x00}); // reset: ACK, BAT passed, ID
    CHECK(k.irq12 == std::vector<bool>{true, false, true, false, true, false});
}
