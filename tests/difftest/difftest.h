// Differential tester of the interpreter's user-mode instructions (integer,
// x87, MMX, SSE-SSE4.2, AES/PCLMUL, AVX/AVX2/FMA/F16C) against the host CPU.
// Both worlds see the same code and data pages at the same linear addresses;
// each test case is one instruction with random registers, flags, data and,
// for the floating-point and vector families, x87/SSE/AVX state.
#pragma once

#include "mmu/base/types.h"

#include <array>
#include <string>

namespace difftest {

// Linear layout shared by the host process and the interpreter. The window
// is reserved (PROT_NONE) on the host so that nothing else lands next to the
// pages under test; in the interpreter the rest of the window is not mapped.
constexpr u64 WINDOW_VA = 0x10000000;
constexpr u64 WINDOW_SIZE = 0x40000;
constexpr u64 CODE_VA = 0x10010000;
constexpr u64 DATA_VA = 0x10020000;
constexpr u64 DATA_SIZE = 4096;

// Inside the code page: the host prologue at 0, the register block it loads
// at STATE_OFFSET, the instruction under test at INSN_OFFSET; everything else
// is INT3, so that any landing point (fall-through or branch target) traps.
constexpr u64 STATE_OFFSET = 0x48;
constexpr u64 FAR_POINTER_OFFSET = 0xD0; // m16:32 the prologue jumps through in 32-bit cases
constexpr u64 INSN_OFFSET = 0x200;
// The x87/SSE/AVX image the prologue loads with XRSTOR (64-byte aligned).
// In the code page, so that no memory operand can reach it (see
// near_code_page in generator.cpp) and both worlds map the same pages.
constexpr u64 FP_IMAGE_OFFSET = 0x800;
constexpr u64 INSN_VA = CODE_VA + INSN_OFFSET;
constexpr unsigned MAX_INSN = 15;

// Linux's user selectors: 32-bit code (compatibility mode), data, 64-bit code.
constexpr u16 USER_CS32 = 0x23, USER_DS = 0x2B, USER_CS64 = 0x33;

// RFLAGS bits compared after every instruction; the arithmetic ones are
// further masked by the undefined-flag table (flag_rules.h).
constexpr u64 FLAG_CF = 1u << 0, FLAG_PF = 1u << 2, FLAG_AF = 1u << 4, FLAG_ZF = 1u << 6,
              FLAG_SF = 1u << 7, FLAG_TF = 1u << 8, FLAG_IF = 1u << 9, FLAG_DF = 1u << 10,
              FLAG_OF = 1u << 11, FLAG_IOPL = 3u << 12, FLAG_NT = 1u << 14, FLAG_AC = 1u << 18,
              FLAG_ID = 1u << 21;
constexpr u64 FLAGS_ARITH = FLAG_CF | FLAG_PF | FLAG_AF | FLAG_ZF | FLAG_SF | FLAG_OF;
constexpr u64 FLAGS_COMPARED =
    FLAGS_ARITH | FLAG_TF | FLAG_IF | FLAG_DF | FLAG_IOPL | FLAG_NT | FLAG_AC | FLAG_ID;

struct Regs {
    std::array<u64, 16> gpr{}; // architectural order: RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8..
    u64 rflags = 0x202;
    u64 rip = INSN_VA;
};

// x87, SSE and AVX state as the XSAVE standard format lays it out (SDM Vol 1
// 13.4-13.5): the FXSAVE legacy region in its 64-bit form (FIP and FDP 64 bits
// wide), the XSAVE header, then the upper halves of YMM0-15.
namespace fpimg {
constexpr unsigned FCW = 0, FSW = 2, FTW = 4, FOP = 6, FIP = 8, FDP = 16, MXCSR = 24, ST = 32,
                   XMM = 160, XSTATE_BV = 512, YMM_HI = 576, SIZE = 832;
constexpr u16 FSW_ES = 1u << 7;
} // namespace fpimg
struct FpImage {
    alignas(64) std::array<u8, fpimg::SIZE> b{};
};

struct TestCase {
    std::array<u8, MAX_INSN> bytes{};
    unsigned length = 0;
    Regs init;
    std::array<u8, DATA_SIZE> data{};
    const char* family = ""; // template name, or "raw"
    bool raw = false;        // random bytes: only compared when both sides accept them
    bool mode32 = false;     // runs in a 32-bit code segment (compatibility mode)
    // An instruction the interpreter need not implement: when it raises #UD
    // and the host does not, the case is skipped rather than a mismatch.
    bool may_be_unimplemented = false;
    // x87/SSE/AVX state: loaded on both sides and compared after the instruction.
    bool fp = false;
    FpImage fp_init;
    // The host CPU lacks the instruction's extension: not run, counted as skipped.
    bool host_lacks = false;
};

// What one side did with a test case.
struct Result {
    bool ok = true; // false: the harness itself failed (see `error`)
    std::string error;
    bool faulted = false;
    u8 vector = 0; // exception vector when faulted
    u32 error_code = 0;
    u64 fault_address = 0; // CR2 for #PF
    Regs regs;             // after the instruction, or at the fault
    std::array<u8, DATA_SIZE> data{};
    FpImage fp; // when the case has FP state: the state after the instruction, or at the fault
};

// The code page both sides run: host prologue (which first loads the FP image
// at FP_IMAGE_OFFSET when the case has one), register block, instruction,
// INT3 fill.
void build_code_page(const TestCase& tc, u8* page);

const char* vector_name(u8 vector);
const char* gpr_name(unsigned r);

} // namespace difftest
