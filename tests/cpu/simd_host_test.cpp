// Host comparison for SSE-SSE4.2, MMX, POPCNT/LZCNT/TZCNT, BMI1/BMI2, ADX
// and MOVBE: each case runs one instruction on the host CPU (a JIT page) and
// in the interpreter from the same random registers, memory and MXCSR, and
// compares every XMM and MMX register, the GPRs, the arithmetic flags (less
// the ones the manuals leave undefined), MXCSR, the memory operand and the
// exception raised (#XM via SIGFPE, #GP via SIGSEGV). Seeded and repeatable;
// forms the host CPU lacks are skipped and counted.
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

#if defined(__x86_64__)

#include "tests/cpu/random_fp.h"
#include "tests/cpu/simd_host_runner.h"
#include "tests/host_cpu.h"

#include <cpuid.h>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace {

// ---- Interpreter side ----

struct Interpreter {
    static constexpr u64 IDT = 0x40000, STUBS = 0x41000, DATA = 0x30000;
    CpuHarness h{host_cpu_vendor()};

    Interpreter()
    {
        h.enter_long64();
        h.state.cr4 |= cr::CR4_OSFXSR | cr::CR4_OSXMMEXCPT;
        // Each exception vector lands on its own HLT, so RIP tells which fired.
        for (u64 v = 0; v < 32; ++v) {
            const u64 target = STUBS + v * 16;
            const u64 low = (target & 0xFFFF) | (0x08ull << 16) | (0x8Eull << 40) |
                            ((target >> 16) & 0xFFFF) << 48;
            h.put64(IDT + v * 16, low);
            h.put64(IDT + v * 16 + 8, target >> 32);
            h.put(target, {0xF4});
        }
        h.state.idtr = {IDT, 32 * 16 - 1};
    }

    int run(const std::vector<u8>& code, Machine& m)
    {
        CpuState& s = h.state;
        for (unsigned i = 0; i < 16; ++i)
            s.gpr[i] = m.gpr[i];
        s.gpr[RSP] = CpuHarness::STACK_TOP;
        s.rflags = m.rflags;
        s.rip = CpuHarness::CODE;
        s.events.halted = false;
        h.cpu.lf = LazyFlags{};
        FpuState& f = s.fpu;
        f.fsw = 0;
        f.ftw = 0xFFFF;
        f.mxcsr = m.mxcsr;
        for (unsigned i = 0; i < 8; ++i)
            f.st[i] = X87Register{m.mm[i], 0xFFFF};
        for (unsigned i = 0; i < 16; ++i)
            f.xmm[i] = {m.xmm[i][0], m.xmm[i][1]};
        std::vector<u8> bytes = code;
        bytes.push_back(0xF4);
        h.mem.write_bytes(CpuHarness::CODE, bytes.data(), bytes.size());
        h.cpu.run(100);

        for (unsigned i = 0; i < 16; ++i)
            if (i != RSP)
                m.gpr[i] = s.gpr[i];
        m.rflags = h.cpu.rflags();
        m.mxcsr = f.mxcsr;
        for (unsigned i = 0; i < 8; ++i)
            m.mm[i] = f.st[i].mantissa;
        for (unsigned i = 0; i < 16; ++i) {
            m.xmm[i][0] = f.xmm[i][0];
            m.xmm[i][1] = f.xmm[i][1];
        }
        if (s.rip >= STUBS && s.rip < STUBS + 32 * 16)
            return static_cast<int>((s.rip - STUBS) / 16);
        return s.rip == CpuHarness::CODE + bytes.size() ? -1 : 99;
    }
};

// ---- Instruction forms ----

enum class Arg : u8 { None, Xmm, Mmx, Gpr };
enum class Data : u8 { F32, F64, Int };
enum class Feature : u8 {
    Base,
    Sse3,
    Ssse3,
    Sse41,
    Sse42,
    Aes,
    Pclmul,
    Popcnt,
    Lzcnt,
    Bmi1,
    Bmi2,
    Adx,
    Movbe
};

struct Form {
    const char* name;
    std::vector<u8> opcode; // mandatory prefix (if any) then the opcode bytes
    Arg reg;                // ModRM.reg operand
    Arg rm;                 // ModRM.rm operand in register form
    bool imm = false;
    bool rex_w = false;
    unsigned mem = 1;     // 0: register form only, 1: both, 2: memory form only
    bool aligned = false; // the memory form needs 16-byte alignment
    Data data = Data::Int;
    Feature feature = Feature::Base;
    u64 undefined_flags = 0; // RFLAGS bits the manuals leave undefined
    Arg vvvv = Arg::None;    // VEX.vvvv operand (VEX forms only)
    bool vex = false;
    bool rdi_target = false; // MASKMOVQ/MASKMOVDQU store to [RDI]
};

constexpr u64 ARITH = rf::ARITH;

std::vector<Form> forms()
{
    using enum Arg;
    using enum Data;
    using enum Feature;
    std::vector<Form> v;
    auto sse = [&](const char* name, std::vector<u8> op, Data d, bool aligned = true,
                   bool imm = false, Feature f = Base) {
        Form x{name, op, Xmm, Xmm};
        x.aligned = aligned;
        x.imm = imm;
        x.data = d;
        x.feature = f;
        v.push_back(x);
    };
    auto scalar = [&](const char* name, std::vector<u8> op, Data d, bool imm = false,
                      Feature f = Base) { sse(name, op, d, false, imm, f); };
    // Both the MMX (no prefix) and the SSE2 (66) forms of an integer op.
    // `map` is 0 for a one-byte opcode after 0F, else 0x38 or 0x3A.
    auto both = [&](const char* name, u8 map, u8 op, Feature f = Base, bool imm = false) {
        Form mm{name, {0x0F, op}, Mmx, Mmx};
        mm.feature = f;
        mm.imm = imm;
        if (map != 0)
            mm.opcode = {0x0F, map, op};
        v.push_back(mm);
        Form x = mm;
        x.reg = x.rm = Xmm;
        x.opcode.insert(x.opcode.begin(), 0x66);
        x.aligned = true;
        v.push_back(x);
    };
    auto sse41 = [&](const char* name, u8 map, u8 op, Data d = Int, bool imm = false,
                     Feature f = Sse41) {
        sse(name, {0x66, 0x0F, map, op}, d, true, imm, f);
    };

    // ---- SSE/SSE2 floating point ----
    const struct {
        const char* name;
        u8 op;
    } arith[] = {{"add", 0x58}, {"mul", 0x59}, {"sub", 0x5C}, {"min", 0x5D},
                 {"div", 0x5E}, {"max", 0x5F}, {"sqrt", 0x51}};
    for (auto a : arith) {
        sse(a.name, {0x0F, a.op}, F32);
        sse(a.name, {0x66, 0x0F, a.op}, F64);
        scalar(a.name, {0xF3, 0x0F, a.op}, F32);
        scalar(a.name, {0xF2, 0x0F, a.op}, F64);
    }
    // Both models compute Intel's approximations (cpu/simd/simd_approx.cpp):
    // compared with an Intel host only.
    if (host_cpu_vendor() == CpuVendor::Intel) {
        sse("rcpps", {0x0F, 0x53}, F32);
        scalar("rcpss", {0xF3, 0x0F, 0x53}, F32);
        sse("rsqrtps", {0x0F, 0x52}, F32);
        scalar("rsqrtss", {0xF3, 0x0F, 0x52}, F32);
    }
    sse("cmpps", {0x0F, 0xC2}, F32, true, true);
    sse("cmppd", {0x66, 0x0F, 0xC2}, F64, true, true);
    scalar("cmpss", {0xF3, 0x0F, 0xC2}, F32, true);
    scalar("cmpsd", {0xF2, 0x0F, 0xC2}, F64, true);
    scalar("ucomiss", {0x0F, 0x2E}, F32);
    scalar("comiss", {0x0F, 0x2F}, F32);
    scalar("ucomisd", {0x66, 0x0F, 0x2E}, F64);
    scalar("comisd", {0x66, 0x0F, 0x2F}, F64);
    for (u8 op : {0x54, 0x55, 0x56, 0x57}) { // and, andn, or, xor
        sse("logic ps", {0x0F, op}, F32);
        sse("logic pd", {0x66, 0x0F, op}, F64);
    }
    sse("shufps", {0x0F, 0xC6}, F32, true, true);
    sse("shufpd", {0x66, 0x0F, 0xC6}, F64, true, true);
    sse("unpcklps", {0x0F, 0x14}, F32);
    sse("unpckhps", {0x0F, 0x15}, F32);
    sse("unpcklpd", {0x66, 0x0F, 0x14}, F64);
    sse("unpckhpd", {0x66, 0x0F, 0x15}, F64);
    // Conversions.
    sse("cvtps2pd", {0x0F, 0x5A}, F32, false);
    sse("cvtpd2ps", {0x66, 0x0F, 0x5A}, F64);
    scalar("cvtss2sd", {0xF3, 0x0F, 0x5A}, F32);
    scalar("cvtsd2ss", {0xF2, 0x0F, 0x5A}, F64);
    sse("cvtdq2ps", {0x0F, 0x5B}, Int);
    sse("cvtps2dq", {0x66, 0x0F, 0x5B}, F32);
    sse("cvttps2dq", {0xF3, 0x0F, 0x5B}, F32);
    sse("cvtdq2pd", {0xF3, 0x0F, 0xE6}, Int, false);
    sse("cvtpd2dq", {0xF2, 0x0F, 0xE6}, F64);
    sse("cvttpd2dq", {0x66, 0x0F, 0xE6}, F64);
    for (bool w : {false, true}) {
        Form x{"cvtsi2ss", {0xF3, 0x0F, 0x2A}, Xmm, Gpr};
        x.rex_w = w;
        v.push_back(x);
        x.name = "cvtsi2sd";
        x.opcode = {0xF2, 0x0F, 0x2A};
        v.push_back(x);
        for (u8 op : {0x2C, 0x2D}) {
            Form y{"cvt(t)ss2si", {0xF3, 0x0F, op}, Gpr, Xmm};
            y.rex_w = w;
            y.data = F32;
            v.push_back(y);
            y.name = "cvt(t)sd2si";
            y.opcode = {0xF2, 0x0F, op};
            y.data = F64;
            v.push_back(y);
        }
    }
    {
        Form x{"cvtpi2ps", {0x0F, 0x2A}, Xmm, Mmx};
        v.push_back(x);
        x.name = "cvtpi2pd";
        x.opcode = {0x66, 0x0F, 0x2A};
        v.push_back(x);
        Form y{"cvt(t)ps2pi", {0x0F, 0x2D}, Mmx, Xmm};
        y.data = F32;
        v.push_back(y);
        y.opcode = {0x0F, 0x2C};
        v.push_back(y);
        y.name = "cvt(t)pd2pi";
        y.data = F64;
        y.aligned = true;
        y.opcode = {0x66, 0x0F, 0x2D};
        v.push_back(y);
        y.opcode = {0x66, 0x0F, 0x2C};
        v.push_back(y);
    }
    // ---- SSE3 ----
    sse("addsubps", {0xF2, 0x0F, 0xD0}, F32, true, false, Sse3);
    sse("addsubpd", {0x66, 0x0F, 0xD0}, F64, true, false, Sse3);
    sse("haddps", {0xF2, 0x0F, 0x7C}, F32, true, false, Sse3);
    sse("haddpd", {0x66, 0x0F, 0x7C}, F64, true, false, Sse3);
    sse("hsubps", {0xF2, 0x0F, 0x7D}, F32, true, false, Sse3);
    sse("hsubpd", {0x66, 0x0F, 0x7D}, F64, true, false, Sse3);
    sse("movsldup", {0xF3, 0x0F, 0x12}, F32, true, false, Sse3);
    sse("movshdup", {0xF3, 0x0F, 0x16}, F32, true, false, Sse3);
    sse("movddup", {0xF2, 0x0F, 0x12}, F64, false, false, Sse3);
    {
        Form x{"lddqu", {0xF2, 0x0F, 0xF0}, Xmm, Xmm};
        x.mem = 2;
        x.feature = Sse3;
        v.push_back(x);
    }
    // ---- SSE4.1 floating point ----
    sse41("roundps", 0x3A, 0x08, F32, true);
    sse41("roundpd", 0x3A, 0x09, F64, true);
    {
        Form x{"roundss", {0x66, 0x0F, 0x3A, 0x0A}, Xmm, Xmm, true};
        x.data = F32;
        x.feature = Sse41;
        v.push_back(x);
        x.name = "roundsd";
        x.opcode = {0x66, 0x0F, 0x3A, 0x0B};
        x.data = F64;
        v.push_back(x);
    }
    sse41("dpps", 0x3A, 0x40, F32, true);
    sse41("dppd", 0x3A, 0x41, F64, true);
    sse41("blendps", 0x3A, 0x0C, F32, true);
    sse41("blendpd", 0x3A, 0x0D, F64, true);
    sse41("blendvps", 0x38, 0x14, F32);
    sse41("blendvpd", 0x38, 0x15, F64);
    sse41("insertps", 0x3A, 0x21, F32, true);

    // ---- Moves ----
    sse("movaps", {0x0F, 0x28}, Int);
    sse("movups", {0x0F, 0x10}, Int, false);
    sse("movdqa", {0x66, 0x0F, 0x6F}, Int);
    sse("movdqu", {0xF3, 0x0F, 0x6F}, Int, false);
    scalar("movss", {0xF3, 0x0F, 0x10}, Int);
    scalar("movsd", {0xF2, 0x0F, 0x10}, Int);
    {
        // Stores: ModRM.reg is the source.
        for (auto op : std::vector<std::vector<u8>>{
                 {0x0F, 0x29}, {0x66, 0x0F, 0x7F}, {0x0F, 0x2B}, {0x66, 0x0F, 0xE7}}) {
            Form x{"store aligned", op, Xmm, Xmm};
            x.mem = 2;
            x.aligned = true;
            v.push_back(x);
        }
        for (auto op : std::vector<std::vector<u8>>{{0x0F, 0x11},
                                                    {0xF3, 0x0F, 0x7F},
                                                    {0xF3, 0x0F, 0x11},
                                                    {0xF2, 0x0F, 0x11},
                                                    {0x0F, 0x13},
                                                    {0x0F, 0x17},
                                                    {0x66, 0x0F, 0x13},
                                                    {0x66, 0x0F, 0x17},
                                                    {0x66, 0x0F, 0xD6}}) {
            Form x{"store", op, Xmm, Xmm};
            x.mem = 2;
            v.push_back(x);
        }
        Form m{"movq/movntq store", {0x0F, 0x7F}, Mmx, Mmx};
        m.mem = 2;
        v.push_back(m);
        m.opcode = {0x0F, 0xE7};
        v.push_back(m);
    }
    {
        Form x{"movlps/movhlps", {0x0F, 0x12}, Xmm, Xmm};
        v.push_back(x);
        x.opcode = {0x0F, 0x16};
        v.push_back(x);
        x.opcode = {0x66, 0x0F, 0x12};
        x.mem = 2;
        v.push_back(x);
        x.opcode = {0x66, 0x0F, 0x16};
        v.push_back(x);
        Form q{"movq xmm", {0xF3, 0x0F, 0x7E}, Xmm, Xmm};
        v.push_back(q);
        q.opcode = {0x66, 0x0F, 0xD6};
        q.mem = 0;
        v.push_back(q);
        Form mq{"movq mm", {0x0F, 0x6F}, Mmx, Mmx};
        v.push_back(mq);
        Form q2{"movq2dq", {0xF3, 0x0F, 0xD6}, Xmm, Mmx};
        q2.mem = 0;
        v.push_back(q2);
        Form q3{"movdq2q", {0xF2, 0x0F, 0xD6}, Mmx, Xmm};
        q3.mem = 0;
        v.push_back(q3);
        for (bool w : {false, true}) {
            Form d{"movd/q xmm<-r", {0x66, 0x0F, 0x6E}, Xmm, Gpr};
            d.rex_w = w;
            v.push_back(d);
            d.name = "movd/q r<-xmm";
            d.opcode = {0x66, 0x0F, 0x7E};
            d.reg = Xmm;
            v.push_back(d);
            Form e{"movd/q mm<-r", {0x0F, 0x6E}, Mmx, Gpr};
            e.rex_w = w;
            v.push_back(e);
            e.name = "movd/q r<-mm";
            e.opcode = {0x0F, 0x7E};
            v.push_back(e);
        }
        Form ni{"movnti", {0x0F, 0xC3}, Gpr, Gpr};
        ni.mem = 2;
        v.push_back(ni);
        ni.rex_w = true;
        v.push_back(ni);
    }
    {
        Form x{"movmskps", {0x0F, 0x50}, Gpr, Xmm};
        x.mem = 0;
        v.push_back(x);
        x.opcode = {0x66, 0x0F, 0x50};
        v.push_back(x);
        x.opcode = {0x66, 0x0F, 0xD7};
        v.push_back(x);
        x.rm = Mmx;
        x.opcode = {0x0F, 0xD7};
        v.push_back(x);
    }
    {
        Form x{"maskmovq", {0x0F, 0xF7}, Mmx, Mmx};
        x.mem = 0;
        x.rdi_target = true;
        v.push_back(x);
        x.name = "maskmovdqu";
        x.reg = x.rm = Xmm;
        x.opcode = {0x66, 0x0F, 0xF7};
        v.push_back(x);
    }

    // ---- MMX/SSE2 integer ----
    for (u8 op :
         {0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x74, 0x75,
          0x76, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD8, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF,
          0xE0, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE8, 0xE9, 0xEA, 0xEB, 0xEC, 0xED, 0xEE, 0xEF,
          0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE})
        both("mmx/sse2 int", 0, op);
    sse("punpcklqdq", {0x66, 0x0F, 0x6C}, Int);
    sse("punpckhqdq", {0x66, 0x0F, 0x6D}, Int);
    sse("pshufd", {0x66, 0x0F, 0x70}, Int, true, true);
    sse("pshufhw", {0xF3, 0x0F, 0x70}, Int, true, true);
    sse("pshuflw", {0xF2, 0x0F, 0x70}, Int, true, true);
    {
        Form x{"pshufw", {0x0F, 0x70}, Mmx, Mmx, true};
        v.push_back(x);
        // Shifts by immediate: ModRM.reg is the sub-opcode, so the "reg" operand is fixed.
        for (u8 op : {0x71, 0x72, 0x73}) {
            Form s{"shift imm mm", {0x0F, op}, None, Mmx, true};
            s.mem = 0;
            v.push_back(s);
            Form t = s;
            t.name = "shift imm xmm";
            t.rm = Xmm;
            t.opcode.insert(t.opcode.begin(), 0x66);
            v.push_back(t);
        }
        Form pe{"pextrw", {0x0F, 0xC5}, Gpr, Mmx, true};
        pe.mem = 0;
        v.push_back(pe);
        pe.rm = Xmm;
        pe.opcode = {0x66, 0x0F, 0xC5};
        v.push_back(pe);
        Form pi{"pinsrw", {0x0F, 0xC4}, Mmx, Gpr, true};
        v.push_back(pi);
        pi.reg = Xmm;
        pi.opcode = {0x66, 0x0F, 0xC4};
        v.push_back(pi);
    }
    // ---- SSSE3 ----
    for (u8 op :
         {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x1C, 0x1D, 0x1E})
        both("ssse3", 0x38, op, Ssse3);
    both("palignr", 0x3A, 0x0F, Ssse3, true);
    // ---- SSE4.1 integer ----
    for (u8 op :
         {0x10, 0x17, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x28, 0x29, 0x2B, 0x30, 0x31, 0x32,
          0x33, 0x34, 0x35, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x40, 0x41})
        sse41("sse4.1 int", 0x38, op);
    {
        Form x{"movntdqa", {0x66, 0x0F, 0x38, 0x2A}, Xmm, Xmm};
        x.mem = 2;
        x.aligned = true;
        x.feature = Sse41;
        v.push_back(x);
    }
    sse41("pblendw", 0x3A, 0x0E, Int, true);
    sse41("mpsadbw", 0x3A, 0x42, Int, true);
    for (u8 op : {0x14, 0x15, 0x16, 0x17}) { // pextrb/w/d, extractps
        for (bool w : {false, true}) {
            Form x{"pextr", {0x66, 0x0F, 0x3A, op}, Xmm, Gpr, true};
            x.rex_w = w;
            x.feature = Sse41;
            // ModRM.reg is the XMM source here; rm is the GPR or memory destination.
            v.push_back(x);
        }
    }
    for (u8 op : {0x20, 0x22}) { // pinsrb, pinsrd/q
        for (bool w : {false, true}) {
            Form x{"pinsr", {0x66, 0x0F, 0x3A, op}, Xmm, Gpr, true};
            x.rex_w = w;
            x.feature = Sse41;
            v.push_back(x);
        }
    }
    // ---- SSE4.2 ----
    sse41("pcmpgtq", 0x38, 0x37, Int, false, Sse42);
    for (u8 op : {0x60, 0x61, 0x62, 0x63}) {
        for (bool w : {false, true}) {
            Form x{"pcmpxstrx", {0x66, 0x0F, 0x3A, op}, Xmm, Xmm, true};
            x.rex_w = w;
            x.feature = Sse42;
            v.push_back(x);
        }
    }
    for (u8 op : {0xF0, 0xF1}) {
        for (bool w : {false, true}) {
            Form x{"crc32", {0xF2, 0x0F, 0x38, op}, Gpr, Gpr};
            x.rex_w = w;
            x.feature = Sse42;
            v.push_back(x);
        }
        Form x{"crc32 16", {0x66, 0xF2, 0x0F, 0x38, 0xF1}, Gpr, Gpr};
        x.feature = Sse42;
        if (op == 0xF1)
            v.push_back(x);
    }
    // ---- AES-NI and PCLMULQDQ ----
    for (u8 op : {0xDB, 0xDC, 0xDD, 0xDE, 0xDF})
        sse41("aes", 0x38, op, Int, false, Aes);
    sse41("aeskeygenassist", 0x3A, 0xDF, Int, true, Aes);
    sse41("pclmulqdq", 0x3A, 0x44, Int, true, Pclmul);
    // ---- General-register extensions ----
    for (bool w : {false, true}) {
        auto gpr2 = [&](const char* name, std::vector<u8> op, Feature f, u64 undefined, bool word) {
            Form x{name, op, Gpr, Gpr};
            x.rex_w = w;
            x.feature = f;
            x.undefined_flags = undefined;
            v.push_back(x);
            if (word && !w) { // the 16-bit operand size
                x.opcode.insert(x.opcode.begin(), 0x66);
                v.push_back(x);
            }
        };
        gpr2("popcnt", {0xF3, 0x0F, 0xB8}, Popcnt, 0, true);
        gpr2("lzcnt", {0xF3, 0x0F, 0xBD}, Lzcnt, rf::OF | rf::SF | rf::PF | rf::AF, true);
        gpr2("tzcnt", {0xF3, 0x0F, 0xBC}, Bmi1, rf::OF | rf::SF | rf::PF | rf::AF, true);
        gpr2("adcx", {0x66, 0x0F, 0x38, 0xF6}, Adx, 0, false);
        gpr2("adox", {0xF3, 0x0F, 0x38, 0xF6}, Adx, 0, false);
        Form mb{"movbe load", {0x0F, 0x38, 0xF0}, Gpr, Gpr};
        mb.mem = 2;
        mb.rex_w = w;
        mb.feature = Movbe;
        v.push_back(mb);
        mb.name = "movbe store";
        mb.opcode = {0x0F, 0x38, 0xF1};
        v.push_back(mb);
        if (!w) {
            mb.opcode = {0x66, 0x0F, 0x38, 0xF1};
            v.push_back(mb);
            mb.opcode = {0x66, 0x0F, 0x38, 0xF0};
            v.push_back(mb);
        }
        // VEX forms: opcode = {map (0x38/0x3A), pp (0 none, 1 66, 2 F3, 3 F2), opcode}.
        auto vex = [&](const char* name, u8 map, u8 pp, u8 op, Arg vvvv, Feature f, u64 undefined,
                       bool imm = false, u8 fixed_reg = 0xFF) {
            Form x{name, {map, pp, op, fixed_reg}, Gpr, Gpr, imm};
            x.vex = true;
            x.rex_w = w;
            x.vvvv = vvvv;
            x.feature = f;
            x.undefined_flags = undefined;
            v.push_back(x);
        };
        vex("andn", 0x38, 0, 0xF2, Gpr, Bmi1, rf::AF | rf::PF);
        vex("bextr", 0x38, 0, 0xF7, Gpr, Bmi1, rf::AF | rf::SF | rf::PF);
        vex("blsr", 0x38, 0, 0xF3, Gpr, Bmi1, rf::AF | rf::PF, false, 1);
        vex("blsmsk", 0x38, 0, 0xF3, Gpr, Bmi1, rf::AF | rf::PF, false, 2);
        vex("blsi", 0x38, 0, 0xF3, Gpr, Bmi1, rf::AF | rf::PF, false, 3);
        vex("bzhi", 0x38, 0, 0xF5, Gpr, Bmi2, rf::AF | rf::PF);
        vex("pdep", 0x38, 3, 0xF5, Gpr, Bmi2, 0);
        vex("pext", 0x38, 2, 0xF5, Gpr, Bmi2, 0);
        vex("mulx", 0x38, 3, 0xF6, Gpr, Bmi2, 0);
        vex("sarx", 0x38, 2, 0xF7, Gpr, Bmi2, 0);
        vex("shlx", 0x38, 1, 0xF7, Gpr, Bmi2, 0);
        vex("shrx", 0x38, 3, 0xF7, Gpr, Bmi2, 0);
        vex("rorx", 0x3A, 3, 0xF0, None, Bmi2, 0, true);
    }
    return v;
}

bool host_has(Feature f)
{
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    const unsigned ecx1 = c;
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned ebx7 = b;
    __cpuid(0x80000001, a, b, c, d);
    const unsigned ecx81 = c;
    switch (f) {
    case Feature::Base:
        return true;
    case Feature::Aes:
        return ecx1 & (1u << 25);
    case Feature::Pclmul:
        return ecx1 & (1u << 1);
    case Feature::Sse3:
        return ecx1 & (1u << 0);
    case Feature::Ssse3:
        return ecx1 & (1u << 9);
    case Feature::Sse41:
        return ecx1 & (1u << 19);
    case Feature::Sse42:
        return ecx1 & (1u << 20);
    case Feature::Popcnt:
        return ecx1 & (1u << 23);
    case Feature::Movbe:
        return ecx1 & (1u << 22);
    case Feature::Lzcnt:
        return ecx81 & (1u << 5);
    case Feature::Bmi1:
        return ebx7 & (1u << 3);
    case Feature::Bmi2:
        return ebx7 & (1u << 8);
    case Feature::Adx:
        return ebx7 & (1u << 19);
    }
    return false;
}

// ---- Random operands ----

struct Gen {
    std::mt19937_64 rng;
    explicit Gen(u64 seed) : rng(seed) {}
    u64 bits() { return rng(); }
    unsigned below(unsigned n) { return static_cast<unsigned>(rng() % n); }

    u32 f32() { return random_fp::f32(*this); }
    u64 f64() { return random_fp::f64(*this); }

    void xmm(u64 out[2], Data d)
    {
        const unsigned pick = below(8);
        const Data kind = pick < 5 ? d : pick == 5 ? Data::F32 : pick == 6 ? Data::F64 : Data::Int;
        switch (kind) {
        case Data::F32:
            out[0] = f32() | u64{f32()} << 32;
            out[1] = f32() | u64{f32()} << 32;
            break;
        case Data::F64:
            out[0] = f64();
            out[1] = f64();
            break;
        case Data::Int:
            for (unsigned i = 0; i < 2; ++i) {
                switch (below(4)) {
                case 0:
                    out[i] = bits();
                    break;
                case 1:
                    out[i] = bits() & 0x00FF00FF00FF00FFull;
                    break; // string-like/small
                case 2:
                    out[i] = bits() & 0x7F7F7F7F7F7F7F7Full;
                    break;
                default:
                    out[i] = (bits() & 0x8080808080808080ull) | (bits() & 0x0707070707070707ull);
                    break;
                }
                if (below(8) == 0) // a NUL element for the implicit-length string compares
                    out[i] &= ~(0xFFFFull << (16 * below(4)));
            }
            break;
        }
    }

    u64 gpr()
    {
        switch (below(6)) {
        case 0:
            return static_cast<u64>(static_cast<i64>(below(41)) - 20); // string lengths
        case 1:
            return bits() & 0xFFFFFFFF;
        case 2:
            return below(70) | (below(70) << 8); // BEXTR control, counts
        case 3: {
            const u64 specials[] = {0, 1, ~0ull, 0x80000000, 0x7FFFFFFF, 1ull << 63, 0xFFFFFFFF};
            return specials[below(7)];
        }
        default:
            return bits();
        }
    }

    u32 control() { return random_fp::mxcsr(*this); }
};

// ---- One case ----

struct Case {
    std::vector<u8> code;
    bool memory = false;
};

u8 pick_reg(Gen& g, Arg a, bool avoid_rbx)
{
    for (;;) {
        const unsigned r = a == Arg::Xmm ? g.below(16) : a == Arg::Mmx ? g.below(8) : g.below(16);
        if (a == Arg::Gpr && (r == RSP || (avoid_rbx && r == RBX) || r == RDI))
            continue;
        return static_cast<u8>(r);
    }
}

Case encode(const Form& f, Gen& g, bool memory, u8 disp)
{
    Case c;
    c.memory = memory;
    u8 reg = f.reg == Arg::None ? 0 : pick_reg(g, f.reg, memory);
    if (f.vex && f.opcode[3] != 0xFF)
        reg = f.opcode[3]; // BLSx: ModRM.reg is the sub-opcode
    if (f.reg == Arg::None) {
        // Shift by immediate, ModRM.reg selects: /2 logical right, /4 arithmetic
        // right, /6 left; group 0x73 has no /4 and adds /3, /7 (XMM byte shifts).
        static constexpr u8 word_dword[] = {2, 4, 6}, quad[] = {2, 6, 3, 7};
        reg = f.opcode.back() == 0x73 ? quad[g.below(f.rm == Arg::Xmm ? 4 : 2)]
                                      : word_dword[g.below(3)];
    }
    const u8 rm = memory ? u8{RBX} : pick_reg(g, f.rm, false);
    const bool rex_r = reg >= 8, rex_b = rm >= 8 && !memory;
    const u8 modrm = static_cast<u8>((memory ? 0x40 : 0xC0) | ((reg & 7) << 3) | (rm & 7));
    if (f.vex) {
        const u8 vvvv = f.vvvv == Arg::None ? 0 : pick_reg(g, Arg::Gpr, memory);
        c.code = {0xC4,
                  static_cast<u8>((rex_r ? 0 : 0x80) | 0x40 | (rex_b ? 0 : 0x20) |
                                  (f.opcode[0] == 0x38 ? 2 : 3)),
                  static_cast<u8>((f.rex_w ? 0x80 : 0) | ((~vvvv & 15) << 3) | f.opcode[1]),
                  f.opcode[2], modrm};
    } else {
        std::vector<u8> op = f.opcode;
        while (!op.empty() && (op[0] == 0x66 || op[0] == 0xF2 || op[0] == 0xF3)) {
            c.code.push_back(op[0]);
            op.erase(op.begin());
        }
        const u8 rex =
            static_cast<u8>(0x40 | (f.rex_w ? 8 : 0) | (rex_r ? 4 : 0) | (rex_b ? 1 : 0));
        if (rex != 0x40 || g.below(4) == 0)
            c.code.push_back(rex);
        c.code.insert(c.code.end(), op.begin(), op.end());
        c.code.push_back(modrm);
    }
    if (memory)
        c.code.push_back(disp);
    if (f.imm)
        c.code.push_back(static_cast<u8>(g.bits()));
    return c;
}

std::string hex(const std::vector<u8>& bytes)
{
    std::string s;
    char buf[4];
    for (u8 b : bytes) {
        std::snprintf(buf, sizeof buf, "%02x", b);
        s += buf;
    }
    return s;
}

struct Stats {
    unsigned cases = 0, mismatches = 0, faults = 0, skipped_forms = 0;
};

[[gnu::format(printf, 2, 3)]] void appendf(std::string& out, const char* format, ...)
{
    char buf[128];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    out += buf;
}

using ull = unsigned long long;

// What differs between the host's and the interpreter's outcome ("" if nothing).
std::string compare(const Form& f, const Case& c, int host_vec, int interp_vec, const Machine& h,
                    const Machine& m, const u8* host_data, const u8* guest_data)
{
    std::string diff;
    if (host_vec != interp_vec)
        appendf(diff, " vector host=%d interp=%d", host_vec, interp_vec);
    if (h.mxcsr != m.mxcsr)
        appendf(diff, " mxcsr host=%04x interp=%04x", h.mxcsr, m.mxcsr);
    for (unsigned i = 0; i < 16; ++i)
        if (h.xmm[i][0] != m.xmm[i][0] || h.xmm[i][1] != m.xmm[i][1])
            appendf(diff, " xmm%u host=%016llx%016llx interp=%016llx%016llx", i, ull(h.xmm[i][1]),
                    ull(h.xmm[i][0]), ull(m.xmm[i][1]), ull(m.xmm[i][0]));
    if (host_vec >= 0 || interp_vec >= 0)
        return diff; // after a fault only MXCSR and XMM come back from the host
    for (unsigned i = 0; i < 8; ++i)
        if (h.mm[i] != m.mm[i])
            appendf(diff, " mm%u host=%016llx interp=%016llx", i, ull(h.mm[i]), ull(m.mm[i]));
    for (unsigned i = 0; i < 16; ++i) {
        if (i == RSP || (c.memory && i == RBX) || (f.rdi_target && i == RDI))
            continue; // the stack, and the base registers that hold different addresses
        if (h.gpr[i] != m.gpr[i])
            appendf(diff, " r%u host=%016llx interp=%016llx", i, ull(h.gpr[i]), ull(m.gpr[i]));
    }
    const u64 flags = ARITH & ~f.undefined_flags;
    if ((h.rflags & flags) != (m.rflags & flags))
        appendf(diff, " rflags host=%03llx interp=%03llx", ull(h.rflags & flags),
                ull(m.rflags & flags));
    if (std::memcmp(guest_data, host_data, 64) != 0)
        diff += " memory";
    return diff;
}

void run_cases(u64 seed, unsigned per_form, Stats& stats)
{
    SimdHostRunner host;
    Interpreter interp;
    Gen g(seed);
    alignas(64) static u8 host_data[64];
    const char* only = std::getenv("VIRIDIAN_SIMD_FORM"); // a form name, for a focused run
    for (const Form& f : forms()) {
        if (only && std::strcmp(only, f.name) != 0)
            continue;
        if (!host_has(f.feature)) {
            ++stats.skipped_forms;
            continue;
        }
        for (unsigned n = 0; n < per_form; ++n) {
            const bool memory = f.mem == 2 || (f.mem == 1 && g.below(2));
            // Mostly aligned; sometimes off by a few bytes to check the #GP rule.
            const unsigned disp = g.below(4) == 0 ? g.below(4) * 4 + g.below(2) : 16 * g.below(2);
            const Case c = encode(f, g, memory, static_cast<u8>(disp));

            Machine in{};
            for (unsigned i = 0; i < 16; ++i)
                in.gpr[i] = g.gpr();
            for (unsigned i = 0; i < 16; ++i)
                g.xmm(in.xmm[i], f.data);
            for (unsigned i = 0; i < 8; ++i)
                in.mm[i] = g.bits();
            in.rflags = 0x2 | (g.bits() & ARITH);
            in.mxcsr = g.control();
            u8 data[64];
            for (unsigned i = 0; i < 64; i += 16) {
                u64 lanes[2];
                g.xmm(lanes, f.data);
                std::memcpy(data + i, lanes, 16);
            }

            Machine host_m = in, interp_m = in;
            std::memcpy(host_data, data, 64);
            interp.h.mem.write_bytes(Interpreter::DATA, data, 64);
            if (c.memory) {
                host_m.gpr[RBX] = reinterpret_cast<u64>(host_data);
                interp_m.gpr[RBX] = Interpreter::DATA;
            }
            if (f.rdi_target) {
                const u64 offset = g.bits() & 31;
                host_m.gpr[RDI] = reinterpret_cast<u64>(host_data) + offset;
                interp_m.gpr[RDI] = Interpreter::DATA + offset;
            }
            const int host_vec = host.run(c.code, host_m);
            const int interp_vec = interp.run(c.code, interp_m);
            ++stats.cases;
            if (host_vec >= 0)
                ++stats.faults;
            u8 guest_data[64];
            interp.h.mem.read_bytes(Interpreter::DATA, guest_data, 64);
            const std::string diff =
                compare(f, c, host_vec, interp_vec, host_m, interp_m, host_data, guest_data);
            if (!diff.empty() && ++stats.mismatches <= 40)
                MESSAGE(std::string(f.name)
                        << " " << hex(c.code) << " (seed " << seed << ", case " << n << "):" << diff
                        << " | mxcsr in " << std::hex << in.mxcsr);
        }
    }
}

} // namespace

TEST_CASE("SSE, MMX and bit-manipulation instructions match the host CPU bit for bit")
{
    // VIRIDIAN_SIMD_SEED, VIRIDIAN_SIMD_CASES (per form) and VIRIDIAN_SIMD_FORM
    // widen or focus a run by hand.
    const char* seed_env = std::getenv("VIRIDIAN_SIMD_SEED");
    const char* cases_env = std::getenv("VIRIDIAN_SIMD_CASES");
    const u64 seed = seed_env ? std::strtoull(seed_env, nullptr, 0) : 0x5EED0001;
    const unsigned per_form = cases_env ? std::strtoul(cases_env, nullptr, 0) : 200;
    Stats stats;
    run_cases(seed, per_form, stats);
    MESSAGE(stats.cases << " cases, " << stats.mismatches << " mismatches, " << stats.faults
                        << " faulting, " << stats.skipped_forms
                        << " forms skipped (host lacks them)");
    CHECK(stats.mismatches == 0);
    CHECK(stats.cases > 10000);
}

#endif
