#include "cpu/decoder/decoder.h"

#include <doctest/doctest.h>

#include <cstring>

namespace {
Insn decode(unsigned code_size, std::initializer_list<u8> bytes, DecodeStatus expect = DecodeStatus::Ok)
{
    u8 buf[16] = {};
    std::memcpy(buf, std::data(bytes), bytes.size());
    Insn insn;
    CHECK(decode_insn(code_size, buf, static_cast<unsigned>(bytes.size()), insn) == expect);
    return insn;
}
} // namespace

TEST_CASE("the decoder maps a 64-bit register-immediate ADD")
{
    Insn i = decode(8, {0x48, 0x83, 0xC0, 0xFF}); // add rax, -1
    CHECK(i.length == 4);
    CHECK(i.opsize == 8);
    CHECK(i.op[0].kind == OpKind::Gpr);
    CHECK(i.op[0].reg == RAX);
    CHECK(i.op[0].size == 8);
    CHECK(i.op[1].kind == OpKind::Imm);
    CHECK(i.imm == ~0ull); // sign-extended
}

TEST_CASE("the decoder maps high-byte and REX byte registers apart")
{
    Insn ah = decode(8, {0x88, 0xE0}); // mov al, ah
    CHECK(ah.op[1].kind == OpKind::GprHigh8);
    CHECK(ah.op[1].reg == RAX);
    Insn spl = decode(8, {0x40, 0x88, 0xE0}); // mov al, spl
    CHECK(spl.op[1].kind == OpKind::Gpr);
    CHECK(spl.op[1].reg == RSP);
    CHECK(spl.op[1].size == 1);
}

TEST_CASE("the decoder resolves memory operands with base, index, scale and segment")
{
    Insn i = decode(4, {0x64, 0x8B, 0x44, 0x8B, 0x10}); // mov eax, fs:[ebx+ecx*4+0x10]
    CHECK(i.op[1].kind == OpKind::Mem);
    CHECK(i.mem.seg == FS);
    CHECK(i.mem.base == RBX);
    CHECK(i.mem.index == RCX);
    CHECK(i.mem.scale == 4);
    CHECK(i.mem.disp == 0x10);
    Insn bp = decode(4, {0x8B, 0x45, 0x08}); // mov eax, [ebp+8] defaults to SS
    CHECK(bp.mem.seg == SS);
}

TEST_CASE("the decoder marks RIP-relative operands and relative branches")
{
    Insn lea = decode(8, {0x48, 0x8D, 0x05, 0x10, 0, 0, 0}); // lea rax, [rip+0x10]
    CHECK(lea.mem.base == REG_RIP);
    Insn jz = decode(8, {0x74, 0xFE}); // jz $
    CHECK(jz.op[0].kind == OpKind::Rel);
    CHECK(jz.imm == static_cast<u64>(-2));
    CHECK(jz.cc == 0x4);
}

TEST_CASE("the decoder reports truncated and invalid instructions")
{
    decode(8, {0x48, 0xB8, 1, 2}, DecodeStatus::NeedMoreBytes); // mov rax, imm64 cut short
    decode(8, {0x06}, DecodeStatus::Invalid);                    // push es is invalid in 64-bit mode
    Insn pushes = decode(4, {0x06});
    CHECK(pushes.op[0].kind == OpKind::Seg);
    CHECK(pushes.op[0].reg == ES);
}

TEST_CASE("the decoder records REP and LOCK prefixes")
{
    Insn rep = decode(8, {0xF3, 0x48, 0xA5}); // rep movsq
    CHECK((rep.prefixes & pfx::REP) != 0);
    CHECK(rep.opsize == 8);
    Insn lock = decode(8, {0xF0, 0x01, 0x03}); // lock add [rbx], eax
    CHECK((lock.prefixes & pfx::LOCK) != 0);
}
