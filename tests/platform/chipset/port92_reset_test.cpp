#include "platform/chipset/port92_reset.h"

#include <doctest/doctest.h>

#include <vector>

TEST_CASE("Port 0x92 bit 1 switches A20 and reads back")
{
    SystemControlPortA port;
    std::vector<bool> a20;
    port.set_a20_handler([&](bool on) { a20.push_back(on); });
    port.io_write(0, 1, 0x02);
    CHECK(port.a20_enabled());
    CHECK(port.io_read(0, 1) == 0x02);
    port.io_write(0, 1, 0x00);
    CHECK(a20 == std::vector<bool>{true, false});
}

TEST_CASE("Port 0x92 bit 0 resets on a 0 to 1 transition only")
{
    SystemControlPortA port;
    int resets = 0;
    port.set_reset_handler([&] { ++resets; });
    port.io_write(0, 1, 0x03);
    CHECK(resets == 1);
    port.io_write(0, 1, 0x03); // still 1: no new pulse
    CHECK(resets == 1);
    port.io_write(0, 1, 0x02);
    port.io_write(0, 1, 0x03);
    CHECK(resets == 2);
}

TEST_CASE("Port 0x92 keeps the lock bit and the other bits as written")
{
    SystemControlPortA port;
    port.io_write(0, 1, 0x0A);
    CHECK(port.io_read(0, 1) == 0x0A);
}

TEST_CASE("A20 gate is the OR of the keyboard controller and port 0x92")
{
    std::vector<bool> changes;
    A20Gate gate([&](bool on) { changes.push_back(on); });
    CHECK(gate.enabled());
    gate.set_port92(true);
    gate.set_keyboard_controller(false);
    CHECK(gate.enabled());
    CHECK(changes.empty());
    gate.set_port92(false);
    CHECK_FALSE(gate.enabled());
    gate.set_keyboard_controller(true);
    CHECK(changes == std::vector<bool>{false, true});
}

TEST_CASE("POST code port keeps the last code written and hands it to its sink")
{
    PostCodePort port;
    std::vector<u8> codes;
    port.set_sink([&](u8 c) { codes.push_back(c); });
    port.io_write(0, 1, 0x12);
    port.io_write(0, 1, 0x34);
    CHECK(port.io_read(0, 1) == 0x34);
    CHECK(port.last_code() == 0x34);
    CHECK(codes == std::vector<u8>{0x12, 0x34});
}

TEST_CASE("POST code port reads the rest of a wide access as an empty bus")
{
    PostCodePort port;
    port.io_write(0, 1, 0x55);
    CHECK(port.io_read(0, 2) == 0xFF55);
}

TEST_CASE("Port 0x92, POST code port and A20 gate state save, load and save to the same bytes")
{
    SystemControlPortA port92;
    PostCodePort post;
    A20Gate gate;
    port92.io_write(0, 1, 0x0A);
    post.io_write(0, 1, 0xE3);
    gate.set_keyboard_controller(false);
    gate.set_port92(true);

    StateVisitor save = StateVisitor::saver();
    port92.visit_state(save);
    post.visit_state(save);
    gate.visit_state(save);

    SystemControlPortA port92b;
    PostCodePort postb;
    A20Gate gateb;
    StateVisitor load = StateVisitor::loader(save.bytes());
    port92b.visit_state(load);
    postb.visit_state(load);
    gateb.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    port92b.visit_state(again);
    postb.visit_state(again);
    gateb.visit_state(again);
    CHECK(again.bytes() == save.bytes());
    CHECK(port92b.io_read(0, 1) == 0x0A);
    CHECK(postb.last_code() == 0xE3);
    CHECK(gateb.enabled());
}
