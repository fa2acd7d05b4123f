// Fuzz target: random bytes become guest code (and the data it touches) in
// one of the CPU modes, and the interpreter runs them for a bounded number of
// instructions. Whatever the bytes, the host must not crash, hang or trip an
// assertion: every outcome is an architectural event inside the guest.
// Each input runs twice, translating every block of 64-bit code at once and
// interpreting only; the two runs must end in the same state (registers,
// RIP, RFLAGS, CR2, retired count, memory), or the target aborts.
//
// Built two ways: with clang's libFuzzer (scripts/fuzz.sh), and with a plain
// driver (fuzz_driver.cpp) that feeds seeded random inputs, run in the tests.
#include "tests/cpu/cpu_harness.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace {

enum class FuzzMode : u8 { Real, Protected32, Long64, Long64User, Count };

void enter_mode(CpuHarness& h, FuzzMode mode)
{
    switch (mode) {
    case FuzzMode::Real:
        // Real mode at 0000:CODE is out of reach of 16-bit IP; run at 1000:0000.
        h.cpu.load_segment_real(CS, static_cast<u16>(CpuHarness::CODE >> 4));
        h.state.rip = 0;
        h.state.gpr[RSP] = 0xFFF0;
        break;
    case FuzzMode::Protected32:
        h.enter_protected32();
        break;
    case FuzzMode::Long64:
    case FuzzMode::Long64User:
        h.enter_long64();
        if (mode == FuzzMode::Long64User) {
            // Ring-3 code and stack selectors in the harness GDT.
            h.put64(CpuHarness::GDT + 24, 0x00AFFB000000FFFFull); // 0x18|3: code DPL3
            h.put64(CpuHarness::GDT + 32, 0x00CFF3000000FFFFull); // 0x20|3: data DPL3
            h.state.gdtr.limit = 0x3F;
            h.cpu.set_segment_from_descriptor(h.state.seg[CS], 0x1B, 0x00AFFB000000FFFFull);
            h.cpu.set_segment_from_descriptor(h.state.seg[SS], 0x23, 0x00CFF3000000FFFFull);
        }
        break;
    default:
        break;
    }
}

// Runs the input on a fresh machine; `translate` chooses the block
// translator (threshold 1) or the interpreter alone.
std::unique_ptr<CpuHarness> run_input(const uint8_t* data, size_t size, bool translate)
{
    auto h = std::make_unique<CpuHarness>();
    h->cpu.set_jit_enabled(translate);
    h->cpu.set_jit_threshold(1);
    const auto mode = static_cast<FuzzMode>(data[0] % static_cast<u8>(FuzzMode::Count));
    enter_mode(*h, mode);
    // The rest is code; a copy also lands in a data page and in the IDT area so
    // that loads, descriptor reads and gate fetches see fuzzer-chosen bytes.
    const u8* code = data + 1;
    const size_t len = size - 1 > 8192 ? 8192 : size - 1;
    h->mem.write_bytes(CpuHarness::CODE, code, len);
    h->mem.write_bytes(0x40000, code, len);
    h->mem.write_bytes(0x3000, code, len > 4096 ? 4096 : len);
    h->state.idtr = {0x3000, 0xFFF};
    for (unsigned r = 0; r < 16; ++r)
        h->state.gpr[r] = r == RSP ? h->state.gpr[RSP] : 0x40000 + r * 0x100;
    h->cpu.run(2000);
    return h;
}

bool same_outcome(CpuHarness& a, CpuHarness& b)
{
    if (a.state.gpr != b.state.gpr || a.state.rip != b.state.rip || a.state.cr2 != b.state.cr2 ||
        a.cpu.rflags() != b.cpu.rflags() || a.cpu.retired() != b.cpu.retired())
        return false;
    static u8 ma[CpuHarness::RAM], mb[CpuHarness::RAM];
    a.mem.read_bytes(0, ma, sizeof ma);
    b.mem.read_bytes(0, mb, sizeof mb);
    return std::memcmp(ma, mb, sizeof ma) == 0;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size < 2)
        return 0;
    auto translated = run_input(data, size, true);
    auto interpreted = run_input(data, size, false);
    if (!same_outcome(*translated, *interpreted))
        std::abort(); // the translator and the interpreter disagree
    return 0;
}
