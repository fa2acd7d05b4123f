// The interpreter's fast paths (cpu/core/fast_handlers.cpp, the TLB's direct
// stores, bulk REP MOVS/STOS) must behave exactly like the general ones in
// the cases where they are tempting to get wrong.
#include "cpu/core/fast_handlers.h"
#include "cpu/decoder/decoder.h"
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

TEST_CASE("a store through a write entry made before its page became code still invalidates it")
{
    CpuHarness h;
    h.enter_long64();
    // Writes "mov al, 1; ret" at 0x30000 (so the TLB holds a write entry for
    // that page), calls it (the page becomes code), patches the immediate
    // and calls it again: the second call must run the new byte.
    CHECK(h.run_code({
              0xC6, 0x04, 0x25, 0x00, 0x00, 0x03, 0x00, 0xB0, // mov byte [0x30000], 0xB0
              0xC6, 0x04, 0x25, 0x01, 0x00, 0x03, 0x00, 0x01, // mov byte [0x30001], 1
              0xC6, 0x04, 0x25, 0x02, 0x00, 0x03, 0x00, 0xC3, // mov byte [0x30002], 0xC3
              0xBB, 0x00, 0x00, 0x03, 0x00,                   // mov ebx, 0x30000
              0xFF, 0xD3,                                     // call rbx
              0x88, 0xC2,                                     // mov dl, al
              0xC6, 0x04, 0x25, 0x01, 0x00, 0x03, 0x00, 0x02, // mov byte [0x30001], 2
              0xFF, 0xD3,                                     // call rbx
          }) == RunExit::Halted);
    CHECK((h.state.gpr[RDX] & 0xFF) == 1);
    CHECK((h.state.gpr[RAX] & 0xFF) == 2);
}

TEST_CASE("REP MOVSB with the destination just after the source repeats the first byte")
{
    CpuHarness h;
    h.enter_long64();
    h.put(0x40000, {7, 1, 2, 3, 4, 5, 6, 8, 9});
    // mov esi, 0x40000 ; mov edi, 0x40001 ; mov ecx, 8 ; rep movsb
    CHECK(h.run_code({0xBE, 0, 0, 4, 0, 0xBF, 1, 0, 4, 0, 0xB9, 8, 0, 0, 0, 0xF3, 0xA4}) ==
          RunExit::Halted);
    u8 out[9];
    h.mem.read_bytes(0x40000, out, 9);
    for (u8 b : out)
        CHECK(b == 7);
    CHECK(h.state.gpr[RSI] == 0x40008);
    CHECK(h.state.gpr[RDI] == 0x40009);
}

TEST_CASE("REP STOSQ fills across a page boundary")
{
    CpuHarness h;
    h.enter_long64();
    // mov rax, 0x1122334455667788 ; mov edi, 0x40FF0 ; mov ecx, 4 ; rep stosq
    CHECK(h.run_code({0x48, 0xB8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xBF, 0xF0, 0x0F,
                      4, 0, 0xB9, 4, 0, 0, 0, 0xF3, 0x48, 0xAB}) == RunExit::Halted);
    for (u64 a = 0x40FF0; a < 0x41010; a += 8)
        CHECK(h.get64(a) == 0x1122334455667788ull);
    CHECK(h.get64(0x41010) == 0);
    CHECK(h.state.gpr[RDI] == 0x41010);
    CHECK(h.state.gpr[RCX] == 0);
}

TEST_CASE("REP MOVSB from the kernel to a user page between STAC and CLAC copies through host spans")
{
    // copy_to_user under SMAP: the destination is a user page the
    // supervisor may write only while EFLAGS.AC is set. Its translation is
    // cached for that case, so a copy's later pages need no page walk and
    // whole pages move at once (the bulk path) instead of byte by byte.
    CpuHarness h;
    h.enter_long64(); // the 1 GiB identity page is a user page
    h.state.cr4 |= cr::CR4_SMAP;
    for (u64 i = 0; i < 64; ++i)
        h.put(0x40000 + i, {static_cast<u8>(i + 1)});
    // stac ; mov esi, 0x40000 ; mov edi, 0x50000 ; mov ecx, 64 ; rep movsb ; clac
    CHECK(h.run_code({0x0F, 0x01, 0xCB, 0xBE, 0, 0, 4, 0, 0xBF, 0, 0, 5, 0, 0xB9, 64, 0, 0, 0, 0xF3,
                      0xA4, 0x0F, 0x01, 0xCA}) == RunExit::Halted);
    for (u64 i = 0; i < 64; ++i) {
        u8 b = 0;
        h.mem.read_bytes(0x50000 + i, &b, 1);
        CHECK(b == i + 1);
    }
    u64 len = 0;
    CHECK(h.cpu.fast_write_span(DS, 0x50000, 4096, len) == nullptr); // AC is clear again
    h.state.rflags |= rf::AC;
    CHECK(h.cpu.fast_write_span(DS, 0x50040, 4096, len) != nullptr);
    CHECK(len == 4096 - 0x40);
}

TEST_CASE("a user page the supervisor wrote between STAC and CLAC faults on the next access after CLAC")
{
    CpuHarness h;
    h.enter_long64(); // the 1 GiB identity page is a user page
    h.state.cr4 |= cr::CR4_SMAP;
    // stac ; mov byte [0x50000], 1 ; mov al, [0x50000] ; clac
    CHECK(h.run_code({0x0F, 0x01, 0xCB, 0xC6, 0x04, 0x25, 0, 0, 5, 0, 1, 0x8A, 0x04, 0x25, 0, 0, 5, 0,
                      0x0F, 0x01, 0xCA}) == RunExit::Halted);
    CHECK((h.state.gpr[RAX] & 0xFF) == 1);
    u64 value = 0;
    CHECK_FALSE(h.cpu.read_linear(0x50000, 1, value, false)); // #PF: SMAP, AC clear
    CHECK_FALSE(h.cpu.write_linear(0x50000, 1, 2, false));
    h.state.rflags |= rf::AC;
    CHECK(h.cpu.read_linear(0x50000, 1, value, false));
    CHECK(value == 1);
}

TEST_CASE("a kernel with CR0.AM and EFLAGS.AC set keeps the fast paths, since #AC needs CPL 3")
{
    // Linux sets CR0.AM, and STAC sets EFLAGS.AC around every user copy:
    // that must not send the copy down the checked path.
    CpuHarness h;
    h.enter_long64();
    h.state.cr0 |= cr::CR0_AM;
    h.state.rflags |= rf::AC;
    u64 value = 0;
    REQUIRE(h.cpu.read_linear(0x50000, 8, value, false)); // fills the TLB
    u64 len = 0;
    CHECK(h.cpu.fast_read_span(DS, 0x50000, 64, len) != nullptr);
    CHECK(len == 64);
}

TEST_CASE("MOV r/m64, imm32 takes the fast handlers and sign-extends its immediate")
{
    // mov rax, -2 (48 C7 C0 imm32) and mov qword [0x30000], -3 (48 C7 04 25
    // disp32 imm32): a 4-byte immediate into 8 bytes. They were left to the
    // generic MOV, a call from translated code each time.
    const std::vector<std::vector<u8>> forms = {
        {0x48, 0xC7, 0xC0, 0xFE, 0xFF, 0xFF, 0xFF},
        {0x48, 0xC7, 0x04, 0x25, 0x00, 0x00, 0x03, 0x00, 0xFD, 0xFF, 0xFF, 0xFF},
    };
    for (const std::vector<u8>& bytes : forms) {
        Insn insn;
        REQUIRE(decode_insn(8, bytes.data(), static_cast<unsigned>(bytes.size()), insn) == DecodeStatus::Ok);
        specialize_handler(insn, 8);
        const FastForm form = fast_form_of(insn);
        CHECK((form.kind == FastKind::MovRegImm || form.kind == FastKind::MovMemImm));
        CHECK(form.size == 8);
    }
    for (bool jit : {false, true}) {
        CAPTURE(jit);
        CpuHarness h;
        h.enter_long64();
        h.cpu.set_jit_enabled(jit);
        h.cpu.set_jit_threshold(1);
        // Twice round a loop, so that the translated block runs too.
        CHECK(h.run_code({
                  0xB9, 0x02, 0x00, 0x00, 0x00,                   // mov ecx, 2
                  0x48, 0xC7, 0xC0, 0xFE, 0xFF, 0xFF, 0xFF,       // mov rax, -2
                  0x48, 0xC7, 0x04, 0x25, 0x00, 0x00, 0x03, 0x00, // mov qword [0x30000], -3
                  0xFD, 0xFF, 0xFF, 0xFF,
                  0xFF, 0xC9,                                     // dec ecx
                  0x75, 0xE9,                                     // jnz to the first MOV
              }) == RunExit::Halted);
        CHECK(h.state.gpr[RAX] == ~u64{1});
        CHECK(h.get64(0x30000) == ~u64{2});
    }
}
