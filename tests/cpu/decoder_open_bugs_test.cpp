// Decoder bugs found by decoder-xcheck (tests/difftest/decoder_xcheck.cpp),
// confirmed on the host CPU and fixed in cpu/decoder/decoder.cpp: regression tests.
#include "cpu/decoder/decoder.h"
#include "cpu/decoder/handler_table.h"

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

TEST_CASE("F3 REX.B 90 is XCHG r8, rAX, not PAUSE")
{
    // The host CPU swaps RAX and R8 for F3 49 90; Zydis 4.0 decodes PAUSE.
    Insn insn;
    REQUIRE(runs(8, {0xF3, 0x49, 0x90}, insn));
    CHECK(std::strcmp(mnemonic_name(insn), "xchg") == 0);
}

TEST_CASE("VEX-encoded 0F B8/BC/BD raise #UD")
{
    // C5 7A BC CC raises #UD on the host CPU; Zydis 4.0 decodes TZCNT.
    Insn insn;
    CHECK_FALSE(runs(8, {0xC5, 0x7A, 0xBC, 0xCC}, insn)); // "tzcnt"
    CHECK_FALSE(runs(8, {0xC5, 0x7A, 0xBD, 0xCC}, insn)); // "lzcnt"
    CHECK_FALSE(runs(8, {0xC5, 0x7A, 0xB8, 0xCC}, insn)); // "popcnt"
}

TEST_CASE("EVEX and MVEX encodings raise #UD: the model has no AVX-512")
{
    // 62-prefixed encodings whose mnemonic also has a VEX form must not run
    // the VEX handler (the host raises #UD for this MVEX/EVEX form).
    Insn insn;
    CHECK_FALSE(runs(8, {0x67, 0x62, 0x82, 0x41, 0x80, 0x9A, 0x46, 0xF5}, insn));
    CHECK_FALSE(runs(8, {0x62, 0xF1, 0x7C, 0x48, 0x58, 0xC1}, insn)); // vaddps zmm0, zmm0, zmm1
}

TEST_CASE("F3 90 without REX.B stays PAUSE and F3 REX.B 90 keeps its length")
{
    Insn insn;
    REQUIRE(runs(8, {0xF3, 0x90}, insn));
    CHECK(std::strcmp(mnemonic_name(insn), "pause") == 0);
    REQUIRE(runs(8, {0xF3, 0x41, 0x90}, insn));
    CHECK(insn.length == 3);
}
