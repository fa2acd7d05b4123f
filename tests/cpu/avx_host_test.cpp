// Host comparison for the VEX (AVX/AVX2) forms the interpreter implements:
// each case runs one instruction on the host CPU (a JIT page) and in the
// interpreter from the same random YMM registers, GPRs, flags and memory,
// and compares all sixteen YMM registers, RAX/RCX/RDX, the arithmetic flags
// and the memory. Only cases that cannot fault are generated (aligned forms
// get aligned addresses). Seeded; forms the host lacks are skipped and counted.
#include "tests/cpu/cpu_harness.h"
#include "tests/cpu/random_fp.h"
#include "tests/host_cpu.h"

#include <doctest/doctest.h>

#if defined(__x86_64__)

#include <bit>
#include <cmath>
#include <cpuid.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <sys/mman.h>
#include <vector>

namespace {

struct AvxState {
    u64 ymm[16][4];
    u64 rax, rcx, rdx, rbx;
    u64 rflags;
    u32 mxcsr, pad;
};
static_assert(offsetof(AvxState, rax) == 512 && offsetof(AvxState, rflags) == 544 &&
              offsetof(AvxState, mxcsr) == 552);

} // namespace

// Loads an AvxState, calls the code (one instruction and RET), stores it back.
extern "C" void viridian_avx_host_run(AvxState* s, const void* code);
extern "C" {
u32 viridian_avx_host_mxcsr;
}

asm(R"(
    .text
    .p2align 4
    .type viridian_avx_host_run, @function
viridian_avx_host_run:
    push %rbx
    push %r12
    push %r13
    mov %rdi, %r12
    mov %rsi, %r13
    vmovdqu 0(%r12), %ymm0
    vmovdqu 32(%r12), %ymm1
    vmovdqu 64(%r12), %ymm2
    vmovdqu 96(%r12), %ymm3
    vmovdqu 128(%r12), %ymm4
    vmovdqu 160(%r12), %ymm5
    vmovdqu 192(%r12), %ymm6
    vmovdqu 224(%r12), %ymm7
    vmovdqu 256(%r12), %ymm8
    vmovdqu 288(%r12), %ymm9
    vmovdqu 320(%r12), %ymm10
    vmovdqu 352(%r12), %ymm11
    vmovdqu 384(%r12), %ymm12
    vmovdqu 416(%r12), %ymm13
    vmovdqu 448(%r12), %ymm14
    vmovdqu 480(%r12), %ymm15
    mov 512(%r12), %rax
    mov 520(%r12), %rcx
    mov 528(%r12), %rdx
    mov 536(%r12), %rbx
    stmxcsr viridian_avx_host_mxcsr(%rip)
    ldmxcsr 552(%r12)
    pushq 544(%r12)
    popfq
    call *%r13
    pushfq
    popq 544(%r12)
    stmxcsr 552(%r12)
    ldmxcsr viridian_avx_host_mxcsr(%rip)
    mov %rax, 512(%r12)
    mov %rcx, 520(%r12)
    mov %rdx, 528(%r12)
    mov %rbx, 536(%r12)
    vmovdqu %ymm0, 0(%r12)
    vmovdqu %ymm1, 32(%r12)
    vmovdqu %ymm2, 64(%r12)
    vmovdqu %ymm3, 96(%r12)
    vmovdqu %ymm4, 128(%r12)
    vmovdqu %ymm5, 160(%r12)
    vmovdqu %ymm6, 192(%r12)
    vmovdqu %ymm7, 224(%r12)
    vmovdqu %ymm8, 256(%r12)
    vmovdqu %ymm9, 288(%r12)
    vmovdqu %ymm10, 320(%r12)
    vmovdqu %ymm11, 352(%r12)
    vmovdqu %ymm12, 384(%r12)
    vmovdqu %ymm13, 416(%r12)
    vmovdqu %ymm14, 448(%r12)
    vmovdqu %ymm15, 480(%r12)
    vzeroupper
    pop %r13
    pop %r12
    pop %rbx
    ret
    .size viridian_avx_host_run, .-viridian_avx_host_run
)");

namespace {

constexpr unsigned DATA_SIZE = 128;

struct Interpreter {
    static constexpr u64 IDT = 0x40000, STUBS = 0x41000, DATA = 0x30000;
    CpuHarness h{host_cpu_vendor()};

    Interpreter()
    {
        h.enter_long64();
        h.state.cr4 |= cr::CR4_OSFXSR | cr::CR4_OSXMMEXCPT | cr::CR4_OSXSAVE;
        h.state.xcr0 = 7; // AVX state on, as XSETBV would set it
        for (u64 v = 0; v < 32; ++v) {
            const u64 target = STUBS + v * 16;
            h.put64(IDT + v * 16, (target & 0xFFFF) | (0x08ull << 16) | (0x8Eull << 40) |
                                      ((target >> 16) & 0xFFFF) << 48);
            h.put64(IDT + v * 16 + 8, target >> 32);
            h.put(target, {0xF4});
        }
        h.state.idtr = {IDT, 32 * 16 - 1};
    }

    int run(const std::vector<u8>& code, AvxState& m)
    {
        CpuState& s = h.state;
        FpuState& f = s.fpu;
        for (unsigned i = 0; i < 16; ++i) {
            f.xmm[i] = {m.ymm[i][0], m.ymm[i][1]};
            f.ymm_high[i] = {m.ymm[i][2], m.ymm[i][3]};
        }
        s.gpr[RAX] = m.rax;
        s.gpr[RCX] = m.rcx;
        s.gpr[RDX] = m.rdx;
        s.gpr[RBX] = m.rbx;
        s.rflags = m.rflags;
        f.mxcsr = m.mxcsr;
        s.rip = CpuHarness::CODE;
        s.gpr[RSP] = CpuHarness::STACK_TOP;
        s.events.halted = false;
        h.cpu.lf = LazyFlags{};
        std::vector<u8> bytes = code;
        bytes.push_back(0xF4);
        h.mem.write_bytes(CpuHarness::CODE, bytes.data(), bytes.size());
        h.cpu.run(100);
        for (unsigned i = 0; i < 16; ++i) {
            m.ymm[i][0] = f.xmm[i][0];
            m.ymm[i][1] = f.xmm[i][1];
            m.ymm[i][2] = f.ymm_high[i][0];
            m.ymm[i][3] = f.ymm_high[i][1];
        }
        m.rax = s.gpr[RAX];
        m.rcx = s.gpr[RCX];
        m.rdx = s.gpr[RDX];
        m.rflags = h.cpu.rflags();
        m.mxcsr = f.mxcsr;
        if (s.rip >= STUBS && s.rip < STUBS + 32 * 16)
            return static_cast<int>((s.rip - STUBS) / 16);
        return s.rip == CpuHarness::CODE + bytes.size() ? -1 : 99;
    }
};

// ---- Forms ----

enum class Kind : u8 { None, Vec, Gpr };
enum class Len : u8 { L128, L256, Both };
enum class Data : u8 { Int, F32, F64, HalfRange };

struct Form {
    const char* name;
    u8 map; // 1: 0F, 2: 0F38, 3: 0F3A
    u8 pp;  // 0: none, 1: 66, 2: F3, 3: F2
    u8 opcode;
    Kind reg = Kind::Vec, vvvv = Kind::Vec, rm = Kind::Vec;
    Len len = Len::Both;
    bool imm = false;
    unsigned mem = 1; // 0: register only, 1: both, 2: memory only
    bool aligned = false;
    bool w = false;
    std::vector<u8> subops = {}; // ModRM.reg values for the VEX.vvvv-destination forms
    bool avx2_256 = true;        // the 256-bit form needs AVX2
    bool no_modrm = false;
    Data data = Data::Int;
    bool gather = false;
};

std::vector<Form> forms()
{
    using enum Kind;
    using enum Len;
    std::vector<Form> v;
    auto nds = [&](const char* name, u8 map, u8 op, bool imm = false) {
        v.push_back(Form{name, map, 1, op});
        v.back().imm = imm;
    };
    const struct {
        const char* name;
        u8 op;
    } map1[] = {{"vpaddb", 0xFC},    {"vpaddw", 0xFD},    {"vpaddd", 0xFE},    {"vpaddq", 0xD4},
                {"vpsubb", 0xF8},    {"vpsubw", 0xF9},    {"vpsubd", 0xFA},    {"vpsubq", 0xFB},
                {"vpaddsb", 0xEC},   {"vpaddsw", 0xED},   {"vpaddusb", 0xDC},  {"vpaddusw", 0xDD},
                {"vpsubsb", 0xE8},   {"vpsubsw", 0xE9},   {"vpsubusb", 0xD8},  {"vpsubusw", 0xD9},
                {"vpmullw", 0xD5},   {"vpmulhw", 0xE5},   {"vpmulhuw", 0xE4},  {"vpmuludq", 0xF4},
                {"vpmaddwd", 0xF5},  {"vpavgb", 0xE0},    {"vpavgw", 0xE3},    {"vpsadbw", 0xF6},
                {"vpminub", 0xDA},   {"vpmaxub", 0xDE},   {"vpminsw", 0xEA},   {"vpmaxsw", 0xEE},
                {"vpcmpeqb", 0x74},  {"vpcmpeqw", 0x75},  {"vpcmpeqd", 0x76},  {"vpcmpgtb", 0x64},
                {"vpcmpgtw", 0x65},  {"vpcmpgtd", 0x66},  {"vpand", 0xDB},     {"vpandn", 0xDF},
                {"vpor", 0xEB},      {"vpxor", 0xEF},     {"vpsllw", 0xF1},    {"vpslld", 0xF2},
                {"vpsllq", 0xF3},    {"vpsrlw", 0xD1},    {"vpsrld", 0xD2},    {"vpsrlq", 0xD3},
                {"vpsraw", 0xE1},    {"vpsrad", 0xE2},    {"vpacksswb", 0x63}, {"vpackssdw", 0x6B},
                {"vpackuswb", 0x67}, {"vpunpcklbw", 0x60}, {"vpunpcklwd", 0x61},
                {"vpunpckldq", 0x62}, {"vpunpcklqdq", 0x6C}, {"vpunpckhbw", 0x68},
                {"vpunpckhwd", 0x69}, {"vpunpckhdq", 0x6A}, {"vpunpckhqdq", 0x6D}};
    for (auto f : map1)
        nds(f.name, 1, f.op);
    const struct {
        const char* name;
        u8 op;
    } map2[] = {{"vpshufb", 0x00},  {"vphaddw", 0x01},   {"vphaddd", 0x02},  {"vphaddsw", 0x03},
                {"vpmaddubsw", 0x04}, {"vphsubw", 0x05}, {"vphsubd", 0x06},  {"vphsubsw", 0x07},
                {"vpsignb", 0x08},  {"vpsignw", 0x09},   {"vpsignd", 0x0A},  {"vpmulhrsw", 0x0B},
                {"vpmuldq", 0x28},  {"vpcmpeqq", 0x29},  {"vpackusdw", 0x2B}, {"vpcmpgtq", 0x37},
                {"vpminsb", 0x38},  {"vpminsd", 0x39},   {"vpminuw", 0x3A},  {"vpminud", 0x3B},
                {"vpmaxsb", 0x3C},  {"vpmaxsd", 0x3D},   {"vpmaxuw", 0x3E},  {"vpmaxud", 0x3F},
                {"vpmulld", 0x40}};
    for (auto f : map2)
        nds(f.name, 2, f.op);
    nds("vpalignr", 3, 0x0F, true);
    nds("vpblendw", 3, 0x0E, true);
    // Float logic and in-lane shuffles (AVX for both lengths).
    for (u8 op : {0x54, 0x55, 0x56, 0x57, 0x14, 0x15}) {
        for (u8 pp : {0, 1}) {
            Form f{"vlogic/unpck ps/pd", 1, pp, op};
            f.avx2_256 = false;
            v.push_back(f);
        }
    }
    {
        Form f{"vshufps", 1, 0, 0xC6};
        f.imm = true;
        f.avx2_256 = false;
        v.push_back(f);
    }
    // Float arithmetic (MXCSR: every exception masked, random rounding, DAZ, FTZ).
    auto fp = [&](const char* name, u8 op, bool packed_only = false, bool imm = false,
                  unsigned map = 1, bool two_operand = false) {
        const u8 pps[4] = {0, 1, 2, 3}; // ps, pd, ss, sd
        for (u8 pp : pps) {
            if (packed_only && pp >= 2)
                continue;
            Form f{name, static_cast<u8>(map), pp, op};
            f.data = (pp == 1 || pp == 3) ? Data::F64 : Data::F32;
            f.avx2_256 = false;
            f.imm = imm;
            if (pp >= 2)
                f.len = Len::L128;
            if (two_operand && pp < 2)
                f.vvvv = Kind::None;
            v.push_back(f);
        }
    };
    fp("vadd", 0x58);
    fp("vmul", 0x59);
    fp("vsub", 0x5C);
    fp("vmin", 0x5D);
    fp("vdiv", 0x5E);
    fp("vmax", 0x5F);
    fp("vsqrt", 0x51, false, false, 1, true);
    fp("vcmp", 0xC2, false, true);
    for (u8 pp : {1, 3}) { // vaddsubpd/ps, vhadd, vhsub
        for (u8 op : {0xD0, 0x7C, 0x7D}) {
            Form f{"vaddsub/vhadd/vhsub", 1, pp, op};
            f.data = pp == 1 ? Data::F64 : Data::F32;
            f.avx2_256 = false;
            v.push_back(f);
        }
    }
    for (u8 op : {0x08, 0x09}) { // vroundps/pd
        Form f{"vroundp", 3, 1, op};
        f.vvvv = Kind::None;
        f.imm = true;
        f.data = op == 0x08 ? Data::F32 : Data::F64;
        f.avx2_256 = false;
        v.push_back(f);
    }
    for (u8 op : {0x0A, 0x0B}) { // vroundss/sd
        Form f{"vrounds", 3, 1, op};
        f.imm = true;
        f.len = Len::L128;
        f.data = op == 0x0A ? Data::F32 : Data::F64;
        v.push_back(f);
    }
    {
        const struct {
            u8 pp, op;
            Data d;
        } cvt[] = {{0, 0x5B, Data::Int}, {1, 0x5B, Data::F32}, {2, 0x5B, Data::F32}};
        for (const auto& c : cvt) {
            Form f{"vcvtdq2ps/ps2dq/tps2dq", 1, c.pp, c.op};
            f.vvvv = Kind::None;
            f.data = c.d;
            f.avx2_256 = false;
            v.push_back(f);
        }
        for (u8 pp : {0, 1})
            for (u8 op : {0x2E, 0x2F}) {
                Form f{"v(u)comis", 1, pp, op};
                f.vvvv = Kind::None;
                f.len = Len::L128;
                f.data = pp ? Data::F64 : Data::F32;
                v.push_back(f);
            }
        for (u8 pp : {2, 3})
            for (u8 op : {0x2C, 0x2D})
                for (bool w : {false, true}) {
                    Form f{"vcvt(t)s2si", 1, pp, op};
                    f.vvvv = Kind::None;
                    f.reg = Kind::Gpr;
                    f.len = Len::L128;
                    f.w = w;
                    f.data = pp == 3 ? Data::F64 : Data::F32;
                    v.push_back(f);
                }
    }
    // vrcpps/ss and vrsqrtps/ss (ps forms two-operand): both models compute
    // Intel's approximations (cpu/simd/simd_approx.cpp), compared with an
    // Intel host only.
    if (host_cpu_vendor() == CpuVendor::Intel) {
        for (u8 op : {0x52, 0x53}) {
            Form f{"vrcp/vrsqrt ps", 1, 0, op};
            f.vvvv = Kind::None;
            f.data = Data::F32;
            f.avx2_256 = false;
            v.push_back(f);
            Form s{"vrcp/vrsqrt ss", 1, 2, op};
            s.len = Len::L128;
            s.data = Data::F32;
            v.push_back(s);
        }
    }
    // Scalar moves, blends, permutes, variable shifts, masks, conversions.
    auto add = [&](const char* name, u8 map, u8 pp, u8 op, auto&& tweak) {
        Form f{name, map, pp, op};
        tweak(f);
        v.push_back(f);
    };
    for (u8 pp : {2, 3})
        for (u8 op : {0x10, 0x11}) {
            add("vmovss/sd reg", 1, pp, op, [&](Form& f) {
                f.len = L128;
                f.mem = 0;
                f.data = pp == 2 ? Data::F32 : Data::F64;
            });
            add("vmovss/sd mem", 1, pp, op, [&](Form& f) {
                f.len = L128;
                f.mem = 2;
                f.vvvv = None;
            });
        }
    add("vblendps", 3, 1, 0x0C, [](Form& f) { f.imm = true; f.avx2_256 = false; });
    add("vblendpd", 3, 1, 0x0D, [](Form& f) { f.imm = true; f.avx2_256 = false; });
    add("vpblendd", 3, 1, 0x02, [](Form& f) { f.imm = true; });
    for (u8 op : {0x4A, 0x4B, 0x4C})
        add("vblendv", 3, 1, op, [op](Form& f) { f.imm = true; f.avx2_256 = op == 0x4C; });
    for (u8 op : {0x45, 0x46, 0x47})
        for (bool w : {false, true}) {
            if (op == 0x46 && w)
                continue; // VPSRAVQ is AVX-512
            add("vpsxxv", 2, 1, op, [w](Form& f) { f.w = w; });
        }
    for (u8 op : {0x0E, 0x0F})
        add("vtestps/pd", 2, 1, op, [](Form& f) { f.vvvv = None; f.avx2_256 = false; });
    for (u8 pp : {0, 1})
        add("vmovmskps/pd", 1, pp, 0x50, [](Form& f) {
            f.vvvv = None;
            f.reg = Gpr;
            f.mem = 0;
            f.avx2_256 = false;
        });
    add("vpinsrb", 3, 1, 0x20, [](Form& f) { f.rm = Gpr; f.imm = true; f.len = L128; });
    add("vpinsrw", 1, 1, 0xC4, [](Form& f) { f.rm = Gpr; f.imm = true; f.len = L128; });
    add("vpinsrd", 3, 1, 0x22, [](Form& f) { f.rm = Gpr; f.imm = true; f.len = L128; });
    add("vpinsrq", 3, 1, 0x22, [](Form& f) { f.rm = Gpr; f.imm = true; f.len = L128; f.w = true; });
    add("vextractps", 3, 1, 0x17, [](Form& f) {
        f.vvvv = None;
        f.rm = Gpr;
        f.imm = true;
        f.len = L128;
    });
    add("vstmxcsr", 1, 0, 0xAE, [](Form& f) {
        f.vvvv = None;
        f.reg = None;
        f.subops = {3};
        f.mem = 2;
        f.len = L128;
    });
    add("vshufpd", 1, 1, 0xC6, [](Form& f) { f.imm = true; f.avx2_256 = false; });
    for (u8 op : {0x04, 0x05})
        add("vpermilps/pd imm", 3, 1, op, [](Form& f) {
            f.vvvv = None;
            f.imm = true;
            f.avx2_256 = false;
        });
    for (u8 op : {0x0C, 0x0D})
        add("vpermilps/pd var", 2, 1, op, [](Form& f) { f.avx2_256 = false; });
    add("vmovddup", 1, 3, 0x12, [](Form& f) { f.vvvv = None; f.avx2_256 = false; });
    add("vmovsldup", 1, 2, 0x12, [](Form& f) { f.vvvv = None; f.avx2_256 = false; });
    add("vmovshdup", 1, 2, 0x16, [](Form& f) { f.vvvv = None; f.avx2_256 = false; });
    for (u8 pp : {0, 1})
        for (u8 op : {0x12, 0x16}) { // vmovlps/lpd, vmovhps/hpd: NDS loads
            add("vmovlp/hp load", 1, pp, op, [](Form& f) { f.len = L128; f.mem = 2; });
            add("vmovlp/hp store", 1, pp, static_cast<u8>(op + 1), [](Form& f) {
                f.len = L128;
                f.mem = 2;
                f.vvvv = None;
            });
        }
    add("vinsertps", 3, 1, 0x21, [](Form& f) { f.len = L128; f.imm = true; });
    add("vphminposuw", 2, 1, 0x41, [](Form& f) { f.len = L128; f.vvvv = None; });
    for (u8 op : {0xDC, 0xDD, 0xDE, 0xDF})
        add("vaesenc/dec", 2, 1, op, [](Form& f) { f.len = L128; });
    add("vaesimc", 2, 1, 0xDB, [](Form& f) { f.len = L128; f.vvvv = None; });
    add("vaeskeygenassist", 3, 1, 0xDF, [](Form& f) {
        f.len = L128;
        f.vvvv = None;
        f.imm = true;
    });
    add("vpclmulqdq", 3, 1, 0x44, [](Form& f) { f.len = L128; f.imm = true; });
    add("vdpps", 3, 1, 0x40, [](Form& f) { f.imm = true; f.avx2_256 = false; f.data = Data::F32; });
    add("vdppd", 3, 1, 0x41, [](Form& f) { f.imm = true; f.len = L128; f.data = Data::F64; });
    add("vmpsadbw", 3, 1, 0x42, [](Form& f) { f.imm = true; });
    for (u8 op : {0x2C, 0x2D}) // vmaskmovps/pd loads: VEX.vvvv is the mask
        add("vmaskmov load", 2, 1, op, [](Form& f) { f.mem = 2; f.avx2_256 = false; });
    for (u8 op : {0x2E, 0x2F})
        add("vmaskmov store", 2, 1, op, [](Form& f) { f.mem = 2; f.avx2_256 = false; });
    for (u8 op : {0x90, 0x91, 0x92, 0x93})
        for (bool w : {false, true})
            add("vgather", 2, 1, op, [w](Form& f) {
                f.gather = true;
                f.w = w;
            });
    // FMA3: 0x96-0x9F, 0xA6-0xAF, 0xB6-0xBF (132, 213, 231); W picks pd/sd.
    for (u8 base : {0x90, 0xA0, 0xB0})
        for (u8 low = 6; low <= 0xF; ++low)
            for (bool w : {false, true}) {
                const u8 op = static_cast<u8>(base + low);
                const bool scalar = (low & 1) && low >= 9;
                add("vfma", 2, 1, op, [w, scalar](Form& f) {
                    f.w = w;
                    f.data = w ? Data::F64 : Data::F32;
                    f.avx2_256 = false;
                    if (scalar)
                        f.len = L128;
                });
            }
    add("vcvtph2ps", 2, 1, 0x13, [](Form& f) { f.vvvv = None; f.avx2_256 = false; });
    add("vcvtps2ph", 3, 1, 0x1D, [](Form& f) {
        f.vvvv = None;
        f.imm = true;
        f.avx2_256 = false;
        f.data = Data::HalfRange;
    });
    for (bool w : {false, true}) {
        add("vpmaskmov load", 2, 1, 0x8C, [w](Form& f) { f.mem = 2; f.w = w; });
        add("vpmaskmov store", 2, 1, 0x8E, [w](Form& f) { f.mem = 2; f.w = w; });
    }
    add("vmovhlps", 1, 0, 0x12, [](Form& f) { f.len = L128; f.mem = 0; });
    add("vmovlhps", 1, 0, 0x16, [](Form& f) { f.len = L128; f.mem = 0; });
    add("vcvtss2sd", 1, 2, 0x5A, [](Form& f) { f.len = L128; f.data = Data::F32; });
    add("vcvtsd2ss", 1, 3, 0x5A, [](Form& f) { f.len = L128; f.data = Data::F64; });
    for (u8 pp : {2, 3})
        for (bool w : {false, true})
            add("vcvtsi2ss/sd", 1, pp, 0x2A, [w](Form& f) { f.len = L128; f.rm = Gpr; f.w = w; });
    add("vcvtps2pd", 1, 0, 0x5A, [](Form& f) { f.vvvv = None; f.data = Data::F32; f.avx2_256 = false; });
    add("vcvtpd2ps", 1, 1, 0x5A, [](Form& f) { f.vvvv = None; f.data = Data::F64; f.avx2_256 = false; });
    add("vcvtdq2pd", 1, 2, 0xE6, [](Form& f) { f.vvvv = None; f.avx2_256 = false; });
    add("vcvtpd2dq", 1, 3, 0xE6, [](Form& f) { f.vvvv = None; f.data = Data::F64; f.avx2_256 = false; });
    add("vcvttpd2dq", 1, 1, 0xE6, [](Form& f) { f.vvvv = None; f.data = Data::F64; f.avx2_256 = false; });

    // Two-operand forms.
    auto unary = [&](const char* name, u8 map, u8 pp, u8 op, bool imm = false) {
        Form f{name, map, pp, op};
        f.vvvv = None;
        f.imm = imm;
        v.push_back(f);
        return &v.back();
    };
    unary("vpabsb", 2, 1, 0x1C);
    unary("vpabsw", 2, 1, 0x1D);
    unary("vpabsd", 2, 1, 0x1E);
    unary("vptest", 2, 1, 0x17)->avx2_256 = false;
    unary("vpshufd", 1, 1, 0x70, true);
    unary("vpshufhw", 1, 2, 0x70, true);
    unary("vpshuflw", 1, 3, 0x70, true);
    for (u8 op : {0x78, 0x79, 0x58, 0x59, 0x18})
        unary("vpbroadcast/vbroadcastss", 2, 1, op);
    unary("vbroadcastsd", 2, 1, 0x19)->len = L256;
    for (u8 op = 0x20; op <= 0x25; ++op)
        unary("vpmovsx", 2, 1, op);
    for (u8 op = 0x30; op <= 0x35; ++op)
        unary("vpmovzx", 2, 1, op);
    {
        Form* f = unary("vbroadcasti128", 2, 1, 0x5A);
        f->len = L256;
        f->mem = 2;
        f = unary("vbroadcastf128", 2, 1, 0x1A);
        f->len = L256;
        f->mem = 2;
        f->avx2_256 = false;
    }
    for (u8 op : {0x36, 0x16}) { // vpermd, vpermps
        Form f{"vpermd/ps", 2, 1, op};
        f.len = L256;
        v.push_back(f);
    }
    for (u8 op : {0x46, 0x06}) { // vperm2i128, vperm2f128
        Form f{"vperm2x128", 3, 1, op};
        f.len = L256;
        f.imm = true;
        f.avx2_256 = op == 0x46;
        v.push_back(f);
    }
    for (u8 op : {0x38, 0x18}) { // vinserti128, vinsertf128
        Form f{"vinsertx128", 3, 1, op};
        f.len = L256;
        f.imm = true;
        f.avx2_256 = op == 0x38;
        v.push_back(f);
    }
    for (u8 op : {0x39, 0x19}) { // vextracti128, vextractf128
        Form* f = unary("vextractx128", 3, 1, op, true);
        f->len = L256;
        f->avx2_256 = op == 0x39;
    }
    for (u8 op : {0x00, 0x01}) { // vpermq, vpermpd
        Form* f = unary("vpermq/pd", 3, 1, op, true);
        f->len = L256;
        f->w = true;
    }
    // Shifts by immediate: VEX.vvvv is the destination, ModRM.reg the operation.
    const struct {
        u8 op;
        std::vector<u8> subops;
    } shifts[] = {{0x71, {2, 4, 6}}, {0x72, {2, 4, 6}}, {0x73, {2, 3, 6, 7}}};
    for (const auto& s : shifts) {
        Form f{"vpsxx imm", 1, 1, s.op};
        f.reg = None;
        f.imm = true;
        f.mem = 0;
        f.subops = s.subops;
        v.push_back(f);
    }
    {
        Form* f = unary("vpmovmskb", 1, 1, 0xD7);
        f->reg = Gpr;
        f->mem = 0;
    }
    // Moves.
    const struct {
        const char* name;
        u8 pp, op;
        bool aligned;
        unsigned mem;
        bool avx2;
    } moves[] = {{"vmovdqa", 1, 0x6F, true, 1, false},  {"vmovdqa st", 1, 0x7F, true, 1, false},
                 {"vmovdqu", 2, 0x6F, false, 1, false}, {"vmovdqu st", 2, 0x7F, false, 1, false},
                 {"vmovaps", 0, 0x28, true, 1, false},  {"vmovaps st", 0, 0x29, true, 1, false},
                 {"vmovapd", 1, 0x28, true, 1, false},  {"vmovups", 0, 0x10, false, 1, false},
                 {"vmovups st", 0, 0x11, false, 1, false}, {"vmovupd", 1, 0x10, false, 1, false},
                 {"vlddqu", 3, 0xF0, false, 2, false},  {"vmovntdq", 1, 0xE7, true, 2, false}};
    for (const auto& m : moves) {
        Form* f = unary(m.name, 1, m.pp, m.op);
        f->aligned = m.aligned;
        f->mem = m.mem;
        f->avx2_256 = m.avx2;
    }
    {
        Form* f = unary("vmovntdqa", 2, 1, 0x2A);
        f->aligned = true;
        f->mem = 2;
    }
    // VEX.128-only forms.
    auto only128 = [&](const char* name, u8 map, u8 pp, u8 op, Kind reg, Kind rm, bool imm,
                       bool w = false) {
        Form* f = unary(name, map, pp, op, imm);
        f->len = L128;
        f->reg = reg;
        f->rm = rm;
        f->w = w;
        return f;
    };
    only128("vmovd to xmm", 1, 1, 0x6E, Vec, Gpr, false);
    only128("vmovq to xmm", 1, 1, 0x6E, Vec, Gpr, false, true);
    only128("vmovd from xmm", 1, 1, 0x7E, Vec, Gpr, false);
    only128("vmovq from xmm", 1, 1, 0x7E, Vec, Gpr, false, true);
    only128("vmovq xmm", 1, 2, 0x7E, Vec, Vec, false);
    only128("vmovq xmm st", 1, 1, 0xD6, Vec, Vec, false);
    only128("vpextrb", 3, 1, 0x14, Vec, Gpr, true);
    only128("vpextrw", 3, 1, 0x15, Vec, Gpr, true);
    only128("vpextrd", 3, 1, 0x16, Vec, Gpr, true);
    only128("vpextrq", 3, 1, 0x16, Vec, Gpr, true, true);
    for (u8 op : {0x60, 0x61, 0x62, 0x63})
        only128("vpcmpxstrx", 3, 1, op, Vec, Vec, true);
    {
        Form f{"vzeroupper", 1, 0, 0x77};
        f.no_modrm = true;
        f.len = L128;
        f.vvvv = None;
        v.push_back(f);
        f.name = "vzeroall";
        f.len = L256;
        f.avx2_256 = false;
        v.push_back(f);
    }
    return v;
}

bool host_has_avx2()
{
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    return b & (1u << 5);
}

bool host_has_avx()
{
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    return (c & (1u << 28)) && (c & (1u << 27));
}

struct Gen {
    std::mt19937_64 rng;
    explicit Gen(u64 seed) : rng(seed) {}
    u64 bits() { return rng(); }
    unsigned below(unsigned n) { return static_cast<unsigned>(rng() % n); }
    u64 fp(unsigned exp_bits, unsigned frac_bits) { return random_fp::ieee(*this, exp_bits, frac_bits); }
    // A single whose exponent lies around binary16's range (denormal to overflow).
    u64 half_range_single()
    {
        if (below(4) == 0)
            return fp(8, 23);
        const u64 exp = 127 - 26 + below(44);
        return ((bits() & 1) << 31) | (exp << 23) | (bits() & 0x7FFFFF & (below(2) ? ~0ull : 0x7FE000));
    }
    u64 lane_of(Data d)
    {
        if (d == Data::HalfRange)
            return half_range_single() | half_range_single() << 32;
        if (d == Data::F32)
            return fp(8, 23) | fp(8, 23) << 32;
        if (d == Data::F64)
            return fp(11, 52);
        return lane();
    }
    // Byte patterns string routines meet: NULs, repeats, high bits.
    u64 lane()
    {
        switch (below(5)) {
        case 0:
            return bits() & 0x7F7F7F7F7F7F7F7Full;
        case 1:
            return (bits() & 0x0101010101010101ull) * 0x61;
        case 2:
            return bits() & ~(0xFFull << (8 * below(8)));
        default:
            return bits();
        }
    }
};

struct Case {
    std::vector<u8> code;
    bool memory = false;
    unsigned disp = 0;
    int gather_index = -1; // the VSIB index register of a gather
};

// VSIB gathers: dst (ModRM.reg), mask (VEX.vvvv) and index (SIB.index, VEX.X)
// are three different registers; base RBX, disp8 64. The index elements are
// set small (see fill_gather_index) so every address stays in the data area.
Case encode_gather(const Form& f, Gen& g, bool wide)
{
    Case c;
    c.memory = true;
    u8 reg, vvvv, index;
    do {
        reg = static_cast<u8>(g.below(16));
        vvvv = static_cast<u8>(g.below(16));
        index = static_cast<u8>(g.below(16));
    } while (reg == vvvv || reg == index || vvvv == index);
    c.gather_index = index;
    const u8 scale = static_cast<u8>(g.below(4));
    c.code = {0xC4,
              static_cast<u8>((reg >= 8 ? 0 : 0x80) | (index >= 8 ? 0 : 0x40) | 0x20 | f.map),
              static_cast<u8>((f.w ? 0x80 : 0) | ((~vvvv & 15) << 3) | (wide ? 4 : 0) | f.pp),
              f.opcode,
              static_cast<u8>(0x40 | ((reg & 7) << 3) | 4),
              static_cast<u8>((scale << 6) | ((index & 7) << 3) | RBX),
              64};
    return c;
}

// Index elements in [-8, 8): with scale ≤ 8 and disp 64 every element of up
// to 8 bytes lies in the 128-byte data area.
void fill_gather_index(AvxState& m, int reg, bool qword_index, Gen& g)
{
    for (unsigned q = 0; q < 4; ++q) {
        if (qword_index) {
            m.ymm[reg][q] = static_cast<u64>(static_cast<i64>(g.below(16)) - 8);
        } else {
            const u64 lo = static_cast<u32>(static_cast<i32>(g.below(16)) - 8);
            const u64 hi = static_cast<u32>(static_cast<i32>(g.below(16)) - 8);
            m.ymm[reg][q] = lo | hi << 32;
        }
    }
}

Case encode(const Form& f, Gen& g, bool wide)
{
    Case c;
    const bool memory = f.mem == 2 || (f.mem == 1 && g.below(2));
    c.memory = memory && !f.no_modrm;
    const auto pick = [&g](Kind k) -> u8 {
        return static_cast<u8>(k == Kind::Gpr ? g.below(3) : g.below(16));
    };
    u8 reg = f.subops.empty() ? pick(f.reg) : f.subops[g.below(static_cast<unsigned>(f.subops.size()))];
    const u8 vvvv = f.vvvv == Kind::None ? 0 : pick(Kind::Vec);
    const u8 rm = c.memory ? u8{RBX} : pick(f.rm);
    const bool r = reg >= 8, b = !c.memory && rm >= 8;
    c.code = {0xC4, static_cast<u8>((r ? 0 : 0x80) | 0x40 | (b ? 0 : 0x20) | f.map),
              static_cast<u8>((f.w ? 0x80 : 0) | ((~vvvv & 15) << 3) | (wide ? 4 : 0) | f.pp),
              f.opcode};
    if (f.no_modrm)
        return c;
    c.code.push_back(static_cast<u8>((c.memory ? 0x40 : 0xC0) | ((reg & 7) << 3) | (rm & 7)));
    if (c.memory) {
        c.disp = f.aligned ? 32 * g.below(2) : g.below(64);
        c.code.push_back(static_cast<u8>(c.disp));
    }
    if (f.imm)
        c.code.push_back(static_cast<u8>(g.bits()));
    return c;
}

std::string hex(const std::vector<u8>& bytes)
{
    std::string s;
    char buf[4];
    for (u8 x : bytes) {
        std::snprintf(buf, sizeof buf, "%02x", x);
        s += buf;
    }
    return s;
}

std::string compare(const AvxState& h, const AvxState& m, const u8* host_data, const u8* guest_data,
                    int host_vec, int interp_vec)
{
    std::string diff;
    char buf[160];
    if (host_vec != interp_vec) {
        std::snprintf(buf, sizeof buf, " vector host=%d interp=%d", host_vec, interp_vec);
        diff += buf;
    }
    for (unsigned i = 0; i < 16; ++i)
        if (std::memcmp(h.ymm[i], m.ymm[i], 32) != 0) {
            std::snprintf(buf, sizeof buf, " ymm%u host=%016llx%016llx%016llx%016llx interp=%016llx%016llx%016llx%016llx", i,
                          (unsigned long long)h.ymm[i][3], (unsigned long long)h.ymm[i][2],
                          (unsigned long long)h.ymm[i][1], (unsigned long long)h.ymm[i][0],
                          (unsigned long long)m.ymm[i][3], (unsigned long long)m.ymm[i][2],
                          (unsigned long long)m.ymm[i][1], (unsigned long long)m.ymm[i][0]);
            diff += buf;
        }
    const u64 gh[3] = {h.rax, h.rcx, h.rdx}, gm[3] = {m.rax, m.rcx, m.rdx};
    for (unsigned i = 0; i < 3; ++i)
        if (gh[i] != gm[i]) {
            std::snprintf(buf, sizeof buf, " gpr%u host=%016llx interp=%016llx", i,
                          (unsigned long long)gh[i], (unsigned long long)gm[i]);
            diff += buf;
        }
    if (h.mxcsr != m.mxcsr) {
        std::snprintf(buf, sizeof buf, " mxcsr host=%04x interp=%04x", h.mxcsr, m.mxcsr);
        diff += buf;
    }
    if ((h.rflags & rf::ARITH) != (m.rflags & rf::ARITH)) {
        std::snprintf(buf, sizeof buf, " rflags host=%03llx interp=%03llx",
                      (unsigned long long)(h.rflags & rf::ARITH),
                      (unsigned long long)(m.rflags & rf::ARITH));
        diff += buf;
    }
    if (std::memcmp(host_data, guest_data, DATA_SIZE) != 0)
        diff += " memory";
    return diff;
}

} // namespace

TEST_CASE("AVX/AVX2 integer, float, move and permute forms match the host CPU bit for bit")
{
    if (!host_has_avx()) {
        MESSAGE("host lacks AVX: skipped");
        return;
    }
    const bool avx2 = host_has_avx2();
    const char* seed_env = std::getenv("VIRIDIAN_AVX_SEED");
    const char* cases_env = std::getenv("VIRIDIAN_AVX_CASES");
    const u64 seed = seed_env ? std::strtoull(seed_env, nullptr, 0) : 0xA7C0001;
    const unsigned per_form = cases_env ? std::strtoul(cases_env, nullptr, 0) : 150;

    u8* page = static_cast<u8*>(
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(page != MAP_FAILED);
    alignas(64) static u8 host_data[DATA_SIZE];
    Interpreter interp;
    Gen g(seed);
    unsigned cases = 0, mismatches = 0, skipped = 0;
    for (const Form& f : forms()) {
        for (bool wide : {false, true}) {
            if ((wide && f.len == Len::L128) || (!wide && f.len == Len::L256))
                continue;
            if (wide && f.avx2_256 && !avx2) {
                ++skipped;
                continue;
            }
            for (unsigned n = 0; n < per_form; ++n) {
                const Case c = f.gather ? encode_gather(f, g, wide) : encode(f, g, wide);
                AvxState in{};
                for (auto& y : in.ymm)
                    for (u64& q : y)
                        q = g.lane_of(f.data);
                in.mxcsr = 0x1F80 | (g.below(4) << 13) | (g.below(2) ? 0x40 : 0) |
                           (g.below(2) ? 0x8000 : 0) | (g.below(4) == 0 ? g.below(64) : 0);
                in.rax = g.below(40);
                in.rdx = g.below(40) - 20;
                in.rcx = g.bits();
                in.rflags = 0x2 | (g.bits() & rf::ARITH);
                u8 data[DATA_SIZE];
                for (unsigned i = 0; i < DATA_SIZE; i += 8) {
                    const u64 q = g.lane_of(f.data);
                    std::memcpy(data + i, &q, 8);
                }
                if (c.gather_index >= 0) // opcodes 91 and 93 take qword indices
                    fill_gather_index(in, c.gather_index, f.opcode & 1, g);
                AvxState host_m = in, interp_m = in;
                std::memcpy(host_data, data, DATA_SIZE);
                interp.h.mem.write_bytes(Interpreter::DATA, data, DATA_SIZE);
                host_m.rbx = reinterpret_cast<u64>(host_data);
                interp_m.rbx = Interpreter::DATA;

                std::memcpy(page, c.code.data(), c.code.size());
                page[c.code.size()] = 0xC3;
                viridian_avx_host_run(&host_m, page);
                const int interp_vec = interp.run(c.code, interp_m);
                ++cases;
                u8 guest_data[DATA_SIZE];
                interp.h.mem.read_bytes(Interpreter::DATA, guest_data, DATA_SIZE);
                const std::string diff =
                    compare(host_m, interp_m, host_data, guest_data, -1, interp_vec);
                if (!diff.empty() && ++mismatches <= 30)
                    MESSAGE(std::string(f.name) << (wide ? " 256 " : " 128 ") << hex(c.code)
                                                << ":" << diff);
            }
        }
    }
    munmap(page, 4096);
    MESSAGE(cases << " cases, " << mismatches << " mismatches, " << skipped
                  << " forms skipped (host lacks them)");
    CHECK(mismatches == 0);
    CHECK(cases > 10000);
}

TEST_CASE("FMA with near-total cancellation and tiny results matches the host CPU")
{
    if (!host_has_avx()) {
        MESSAGE("host lacks AVX: skipped");
        return;
    }
    u8* page = static_cast<u8*>(
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(page != MAP_FAILED);
    Interpreter interp;
    std::mt19937_64 rng(0xF3A);
    unsigned mismatches = 0;
    for (unsigned n = 0; n < 40000; ++n) {
        const bool dbl = n & 1;
        // vfmadd231sd/ss xmm0, xmm1, xmm2: xmm0 = xmm1 * xmm2 + xmm0
        const std::vector<u8> code = {0xC4, 0xE2, static_cast<u8>(dbl ? 0xF1 : 0x71), 0xB9, 0xC2};
        AvxState in{};
        in.rflags = 2;
        in.mxcsr = 0x1F80 | static_cast<u32>((rng() & 3) << 13) | (rng() & 1 ? 0x8040 : 0);
        std::uniform_real_distribution<double> mant(1.0, 2.0);
        const int scale = static_cast<int>(rng() % 80) - 40 + (n % 4 == 0 ? (dbl ? -1000 : -120) : 0);
        const double a = std::ldexp(mant(rng), scale), b = std::ldexp(mant(rng), static_cast<int>(rng() % 20) - 10);
        const unsigned ulps = static_cast<unsigned>(rng() % 5);
        if (dbl) {
            u64 ab = std::bit_cast<u64>(-(a * b));
            ab += ulps;
            in.ymm[1][0] = std::bit_cast<u64>(a);
            in.ymm[2][0] = std::bit_cast<u64>(b);
            in.ymm[0][0] = ab;
        } else {
            const float fa = static_cast<float>(a), fb = static_cast<float>(b);
            u32 ab = std::bit_cast<u32>(-(fa * fb));
            ab += ulps;
            in.ymm[1][0] = std::bit_cast<u32>(fa);
            in.ymm[2][0] = std::bit_cast<u32>(fb);
            in.ymm[0][0] = ab;
        }
        AvxState host_m = in, interp_m = in;
        std::memcpy(page, code.data(), code.size());
        page[code.size()] = 0xC3;
        viridian_avx_host_run(&host_m, page);
        REQUIRE(interp.run(code, interp_m) == -1);
        if (host_m.ymm[0][0] != interp_m.ymm[0][0] || host_m.mxcsr != interp_m.mxcsr) {
            if (++mismatches <= 10)
                MESSAGE((dbl ? "sd" : "ss") << " mxcsr in " << std::hex << in.mxcsr << " a="
                                            << in.ymm[1][0] << " b=" << in.ymm[2][0] << " c="
                                            << in.ymm[0][0] << ": host " << host_m.ymm[0][0]
                                            << "/" << host_m.mxcsr << " interp "
                                            << interp_m.ymm[0][0] << "/" << interp_m.mxcsr);
        }
    }
    munmap(page, 4096);
    CHECK(mismatches == 0);
}

TEST_CASE("random VEX encodings with AVX enabled never crash or hang the interpreter")
{
    // The guest is untrusted: whatever bytes follow C4/C5, the interpreter
    // runs them or raises a fault.
    std::mt19937_64 rng(0xFEED);
    unsigned finished = 0, executed = 0;
    for (unsigned n = 0; n < 20000; ++n) {
        Interpreter m; // fresh, so a stray store cannot spoil later cases
        AvxState s{};
        for (auto& y : s.ymm)
            for (u64& q : y)
                q = rng();
        s.rax = rng();
        s.rcx = rng() & 0xFFFF;
        s.rdx = rng();
        s.rbx = Interpreter::DATA + (rng() & 0xFFF);
        s.rflags = 2;
        s.mxcsr = 0x1F80 | static_cast<u32>(rng() & 0x7F);
        std::vector<u8> code = {static_cast<u8>(rng() & 1 ? 0xC4 : 0xC5)};
        for (unsigned i = 0; i < 8; ++i)
            code.push_back(static_cast<u8>(rng()));
        const int vector = m.run(code, s);
        ++finished;
        executed += vector == -1 || vector == 99; // 99: ran on into the following bytes
    }
    MESSAGE(executed << " of " << finished << " ran without a fault");
    CHECK(finished == 20000);
    CHECK(executed > 100); // most random VEX bytes are AVX-512-only, unimplemented or fault
}

TEST_CASE("VEX instructions raise #UD without CR4.OSXSAVE or XCR0.AVX and #NM with CR0.TS")
{
    Interpreter m;
    AvxState s{};
    s.rflags = 2;
    s.mxcsr = 0x1F80;
    const std::vector<u8> vpxor = {0xC5, 0xF5, 0xEF, 0xC2}; // vpxor ymm0, ymm1, ymm2
    CHECK(m.run(vpxor, s) == -1);
    m.h.state.xcr0 = 3;
    CHECK(m.run(vpxor, s) == VEC_UD);
    m.h.state.xcr0 = 7;
    m.h.state.cr4 &= ~cr::CR4_OSXSAVE;
    CHECK(m.run(vpxor, s) == VEC_UD);
    m.h.state.cr4 |= cr::CR4_OSXSAVE;
    m.h.state.cr0 |= cr::CR0_TS;
    CHECK(m.run(vpxor, s) == VEC_NM);
    m.h.state.cr0 &= ~cr::CR0_TS;
    m.h.state.cr0 |= cr::CR0_EM; // does not matter for VEX
    CHECK(m.run(vpxor, s) == -1);
}

TEST_CASE("Legacy SSE writes keep YMM bits 255:128; VEX.128 writes clear them")
{
    Interpreter m;
    AvxState s{};
    s.rflags = 2;
    s.mxcsr = 0x1F80;
    s.ymm[0][2] = s.ymm[0][3] = 0x1234;
    s.ymm[1][0] = 5;
    CHECK(m.run({0x66, 0x0F, 0xEF, 0xC1}, s) == -1); // pxor xmm0, xmm1
    CHECK(s.ymm[0][0] == 5);
    CHECK(s.ymm[0][2] == 0x1234);
    CHECK(m.run({0xC5, 0xF9, 0xEF, 0xC1}, s) == -1); // vpxor xmm0, xmm0, xmm1
    CHECK(s.ymm[0][0] == 0);
    CHECK(s.ymm[0][2] == 0);
    CHECK(s.ymm[0][3] == 0);
}

TEST_CASE("A gather whose destination, index and mask registers are not distinct raises #UD")
{
    Interpreter m;
    AvxState s{};
    s.rflags = 2;
    s.mxcsr = 0x1F80;
    s.rbx = Interpreter::DATA;
    // vpgatherdd ymm0, [rbx + ymm1*1 + 64], ymm2 runs; with ymm0 as the mask too it is #UD.
    CHECK(m.run({0xC4, 0xE2, 0x6D, 0x90, 0x44, 0x0B, 0x40}, s) == -1);
    CHECK(m.run({0xC4, 0xE2, 0x7D, 0x90, 0x44, 0x0B, 0x40}, s) == VEC_UD);
    CHECK(m.run({0xC4, 0xE2, 0x6D, 0x90, 0x44, 0x03, 0x40}, s) == VEC_UD); // index = dst
}

TEST_CASE("VMOVDQA faults on a misaligned 32-byte operand; VMOVDQU does not")
{
    Interpreter m;
    AvxState s{};
    s.rflags = 2;
    s.mxcsr = 0x1F80;
    s.rbx = Interpreter::DATA + 16;
    CHECK(m.run({0xC5, 0xFD, 0x6F, 0x03}, s) == VEC_GP); // vmovdqa ymm0, [rbx]
    CHECK(m.run({0xC5, 0xF9, 0x6F, 0x03}, s) == -1);     // vmovdqa xmm0, [rbx]: 16 is enough
    CHECK(m.run({0xC5, 0xFE, 0x6F, 0x03}, s) == -1);     // vmovdqu ymm0, [rbx]
}

#endif
