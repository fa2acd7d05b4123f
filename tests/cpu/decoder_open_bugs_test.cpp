// Decoder bugs found by decoder-xcheck (tests/difftest/decoder_xcheck.cpp)
// and confirmed on the host CPU, not fixed yet. Each test states the correct
// behaviour and is marked should_fail while the bug is open: once the decoder
// is fixed it "unexpectedly passes", and the marker (and the matching
// OPEN PROJECT BUG row of decoder-xcheck) must go.
#include "cpu/decoder.h"
#include "cpu/handler_table.h"

#include <doctest/doctest.h>

#include <cstring>

namespace {
bool runs(unsigned code_size, std::initializer_list<u8> bytes, Insn& insn)
{
    u8 buf[16] = {};
    std::memcpy(buf, std::data(bytes), bytes.size());
    return decode_insn(code_size, buf, static_cast<unsigned>(bytes.size()), insn) == DecodeStatus::Ok &&
           insn.handler != op_unimplemented && insn.handler != op_unimplemented_decode;
}
} // namespace

TEST_CASE("F3 REX.B 90 is XCHG r8, rAX, not PAUSE" * doctest::should_fail())
{
    // The host CPU swaps RAX and R8 for F3 49 90; Zydis 4.0 decodes PAUSE.
    Insn insn;
    REQUIRE(runs(8, {0xF3, 0x49, 0x90}, insn));
    CHECK(std::strcmp(mnemonic_name(insn), "xchg") == 0);
}

TEST_CASE("VEX-encoded 0F B8/BC/BD raise #UD" * doctest::should_fail())
{
    // C5 7A BC CC raises #UD on the host CPU; Zydis 4.0 decodes TZCNT.
    Insn insn;
    CHECK_FALSE(runs(8, {0xC5, 0x7A, 0xBC, 0xCC}, insn)); // "tzcnt"
    CHECK_FALSE(runs(8, {0xC5, 0x7A, 0xBD, 0xCC}, insn)); // "lzcnt"
    CHECK_FALSE(runs(8, {0xC5, 0x7A, 0xB8, 0xCC}, insn)); // "popcnt"
}
