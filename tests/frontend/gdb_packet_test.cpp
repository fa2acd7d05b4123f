// The gdb remote protocol's framing (frontend/gdb/gdb_packet.h), against the
// gdb manual's "Overview" of the Remote Protocol.
#include "frontend/gdb/gdb_packet.h"

#include <doctest/doctest.h>

namespace {

std::vector<GdbInput> parse(GdbPacketParser& parser, std::string_view bytes)
{
    std::vector<GdbInput> out;
    parser.receive(bytes, out);
    return out;
}

} // namespace

TEST_CASE("A gdb packet with a good checksum is delivered whole, in pieces of any size")
{
    GdbPacketParser parser;
    const std::string framed = gdb_frame("qSupported:swbreak+");
    std::vector<GdbInput> all;
    for (char c : framed)
        parser.receive(std::string_view(&c, 1), all);
    REQUIRE(all.size() == 1);
    CHECK(all[0].kind == GdbInput::Kind::Packet);
    CHECK(all[0].payload == "qSupported:swbreak+");
}

TEST_CASE("A gdb packet with a wrong checksum is reported bad")
{
    GdbPacketParser parser;
    auto out = parse(parser, "$g#00");
    REQUIRE(out.size() == 1);
    CHECK(out[0].kind == GdbInput::Kind::Bad);
    out = parse(parser, "$g#67");
    REQUIRE(out.size() == 1);
    CHECK(out[0].kind == GdbInput::Kind::Packet);
}

TEST_CASE("Acks, nacks and Ctrl-C between gdb packets are events of their own")
{
    GdbPacketParser parser;
    const auto out = parse(parser, std::string("+-\x03\n") + "$?#3f");
    REQUIRE(out.size() == 4);
    CHECK(out[0].kind == GdbInput::Kind::Ack);
    CHECK(out[1].kind == GdbInput::Kind::Nack);
    CHECK(out[2].kind == GdbInput::Kind::Interrupt);
    CHECK(out[3].payload == "?");
}

TEST_CASE("Escaped bytes in a gdb packet are unescaped and counted raw in the checksum")
{
    GdbPacketParser parser;
    const std::string binary = std::string("X0,4:") + "$#}*";
    const std::string framed = gdb_frame(binary);
    CHECK(framed.find("}\x04") != std::string::npos); // '$' ^ 0x20
    const auto out = parse(parser, framed);
    REQUIRE(out.size() == 1);
    CHECK(out[0].kind == GdbInput::Kind::Packet);
    CHECK(out[0].payload == binary);
}

TEST_CASE("A gdb packet longer than the limit is dropped without growing the buffer")
{
    GdbPacketParser parser(16);
    std::vector<GdbInput> out;
    parser.receive("$", out);
    for (int i = 0; i < 1000; ++i)
        parser.receive("0123456789", out);
    CHECK(parser.buffered() <= 16);
    parser.receive("#00", out);
    REQUIRE(out.size() == 1);
    CHECK(out[0].kind == GdbInput::Kind::Bad);
    // The next packet is read normally.
    parser.receive("$g#67", out);
    REQUIRE(out.size() == 2);
    CHECK(out[1].payload == "g");
}

TEST_CASE("A new $ inside a gdb packet starts the packet again")
{
    GdbPacketParser parser;
    const auto out = parse(parser, "$garbage$g#67");
    REQUIRE(out.size() == 1);
    CHECK(out[0].payload == "g");
}

TEST_CASE("gdb hex encoding round-trips and refuses odd or non-hex text")
{
    std::string bytes;
    CHECK(gdb_hex(std::string("\x00\xff\x10", 3)) == "00ff10");
    CHECK(gdb_unhex("00FF10", bytes));
    CHECK(bytes == std::string("\x00\xff\x10", 3));
    CHECK_FALSE(gdb_unhex("0", bytes));
    CHECK_FALSE(gdb_unhex("zz", bytes));
}
