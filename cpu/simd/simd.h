// What the SSE/MMX handler files (cpu/simd_*.cpp) share: a 128-bit lane
// view of XMM/MMX values, register and memory operand access with the
// legacy-SSE alignment rule, the MMX/x87 register aliasing, and MXCSR.
#pragma once

#include "cpu/core/handlers.h"

#include <cstring>

// A 128-bit SIMD value in little-endian lanes; an MMX value uses the low 8 bytes.
struct Vec {
    u64 q[2] = {0, 0};

    template <class T>
    T get(unsigned i) const
    {
        T v;
        std::memcpy(&v, reinterpret_cast<const u8*>(q) + i * sizeof(T), sizeof(T));
        return v;
    }
    template <class T>
    void set(unsigned i, T v)
    {
        std::memcpy(reinterpret_cast<u8*>(q) + i * sizeof(T), &v, sizeof(T));
    }
    u8 byte(unsigned i) const { return get<u8>(i); }
    bool operator==(const Vec&) const = default;
};

// MXCSR fields (SDM Vol 1 10.2.3).
namespace mxcsr {
constexpr u32 IE = 1u << 0, DE = 1u << 1, ZE = 1u << 2, OE = 1u << 3, UE = 1u << 4,
              PE = 1u << 5, DAZ = 1u << 6, IM = 1u << 7, DM = 1u << 8, ZM = 1u << 9,
              OM = 1u << 10, UM = 1u << 11, PM = 1u << 12, RC = 3u << 13, FTZ = 1u << 15;
constexpr u32 FLAGS = 0x3F;
constexpr u32 MASKS = FLAGS << 7;
constexpr unsigned MASK_SHIFT = 7, RC_SHIFT = 13;
// Bits LDMXCSR/FXRSTOR accept; the rest raise #GP(0). Reported as MXCSR_MASK by FXSAVE.
constexpr u32 WRITABLE = 0xFFFF;
} // namespace mxcsr

namespace simd {

// Whether a legacy-SSE 16-byte memory operand must be 16-byte aligned (#GP(0)).
enum class Align : u8 { Required, Any };

inline Vec xmm(const Cpu& cpu, unsigned r)
{
    return Vec{{cpu.s.fpu.xmm[r][0], cpu.s.fpu.xmm[r][1]}};
}
inline void set_xmm(Cpu& cpu, unsigned r, const Vec& v)
{
    cpu.s.fpu.xmm[r] = {v.q[0], v.q[1]};
}

// MMX registers MM0..MM7 are the mantissas of the x87 data registers R0..R7
// (SDM Vol 1 9.5), which FpuState.st holds in physical order.
inline u64 mmx(const Cpu& cpu, unsigned r) { return cpu.s.fpu.st[r].mantissa; }
void set_mmx(Cpu& cpu, unsigned r, u64 v);

// The x87-to-MMX transition every MMX instruction makes (SDM Vol 1 9.5.1):
// TOP = 0 and every tag valid.
void enter_mmx(Cpu& cpu);

// Device-availability checks for an instruction with an MMX or XMM operand,
// then the MMX transition when it names an MMX register. Every SIMD handler
// starts with it. XMM forms follow check_fpu_available's SSE rules;
// instructions on MMX registers alone need no CR4.OSFXSR (SDM Vol 3A 2.5,
// 13.1): #UD on CR0.EM, #NM on CR0.TS. Both #MF on a pending x87 exception
// when an MMX register is involved.
bool begin(Cpu& cpu, const Insn& insn);
bool uses_mmx(const Insn& insn);

// 16-byte memory access through segmentation and paging; a store checks
// both halves before writing either.
bool read_mem128(Cpu& cpu, const Insn& insn, Vec& v, Align align);
bool write_mem128(Cpu& cpu, const Insn& insn, const Vec& v, Align align);

bool read_src_other(Cpu& cpu, const Insn& insn, unsigned i, Vec& v, Align align);
bool write_dst_other(Cpu& cpu, const Insn& insn, unsigned i, const Vec& v, Align align);

// Reads operand `i`: an XMM or MMX register, a GPR (zero-extended), or
// op.size bytes of memory into the low lanes (the rest zero).
inline bool read_src(Cpu& cpu, const Insn& insn, unsigned i, Vec& v, Align align = Align::Required)
{
    if (insn.op[i].kind == OpKind::Xmm) [[likely]] {
        v = xmm(cpu, insn.op[i].reg);
        return true;
    }
    return read_src_other(cpu, insn, i, v, align);
}

// Writes operand `i`: a whole XMM register, an MMX register (low 8 bytes), a
// GPR of op.size (32-bit writes zero-extend), or op.size bytes of memory.
inline bool write_dst(Cpu& cpu, const Insn& insn, unsigned i, const Vec& v,
                      Align align = Align::Required)
{
    if (insn.op[i].kind == OpKind::Xmm) [[likely]] {
        set_xmm(cpu, insn.op[i].reg, v);
        return true;
    }
    return write_dst_other(cpu, insn, i, v, align);
}

// Width in bytes of the SIMD register operand `i`: 8 for MMX, 16 for XMM.
inline unsigned width(const Insn& insn, unsigned i = 0)
{
    return insn.op[i].kind == OpKind::Mmx ? 8 : 16;
}

// ---- VEX (AVX/AVX2) forms ----
//
// A VEX.256 register is XMM (bits 127:0) plus FpuState::ymm_high; a VEX.128
// form that writes an XMM register zeroes bits 255:128, a legacy SSE form
// leaves them alone. The 256-bit form of most instructions applies the
// 128-bit operation to each half ("lane") on its own.

inline bool is_vex(const Insn& insn) { return insn.fpu_class == FPU_AVX; }
inline bool is_vex256(const Insn& insn) { return insn.op[0].kind == OpKind::Ymm; }

// Operand `i` as two 128-bit lanes: a YMM register or a 32-byte memory
// operand gives both halves; any narrower operand (an XMM shift count, an
// m128, an immediate) serves both lanes alike. Memory is read only, with no
// alignment rule.
bool vex_read(Cpu& cpu, const Insn& insn, unsigned i, Vec lanes[2]);
// Writes the destination, operand 0: a YMM register, an XMM register with
// bits 255:128 cleared, 16 or 32 bytes of memory (all checked before any is
// written), or a GPR.
bool vex_write(Cpu& cpu, const Insn& insn, const Vec lanes[2]);

// binary() for VEX forms: with a VEX.vvvv operand the sources are operands 1
// and 2 (vvvv plays the legacy destination's part), else the destination's
// old value and operand 1.
template <class F>
bool vex_binary(Cpu& cpu, const Insn& insn, F f)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    const unsigned first = (insn.prefixes & pfx::VEX_VVVV) ? 1 : 0;
    Vec d[2], s[2];
    CPU_TRY(vex_read(cpu, insn, first, d));
    CPU_TRY(vex_read(cpu, insn, first + 1, s));
    const Vec r[2] = {f(d[0], s[0]), is_vex256(insn) ? f(d[1], s[1]) : Vec{}};
    return vex_write(cpu, insn, r);
}

// vex_binary for forms whose immediate or control differs between the two
// lanes: f(src1, src2, lane).
template <class F>
bool vex_lanes(Cpu& cpu, const Insn& insn, F f)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    const unsigned first = (insn.prefixes & pfx::VEX_VVVV) ? 1 : 0;
    Vec d[2], s[2];
    CPU_TRY(vex_read(cpu, insn, first, d));
    CPU_TRY(vex_read(cpu, insn, first + 1, s));
    const Vec r[2] = {f(d[0], s[0], 0u), is_vex256(insn) ? f(d[1], s[1], 1u) : Vec{}};
    return vex_write(cpu, insn, r);
}

// dst = f(dst, src) for an XMM/MMX destination and an XMM/MMX/memory source:
// the shape of most SIMD instructions. `f` sees one 128-bit lane at a time,
// so the VEX forms of lane-wise instructions share it.
template <class F>
bool binary(Cpu& cpu, const Insn& insn, F f, Align align = Align::Required)
{
    if (is_vex(insn)) [[unlikely]]
        return vex_binary(cpu, insn, f);
    CPU_TRY(begin(cpu, insn));
    Vec d, s;
    CPU_TRY(read_src(cpu, insn, 0, d));
    CPU_TRY(read_src(cpu, insn, 1, s, align));
    return write_dst(cpu, insn, 0, f(d, s));
}

// MPSADBW on one 128-bit lane (cpu/simd/simd_int.cpp), shared with VMPSADBW.
Vec mpsadbw_lane(const Vec& d, const Vec& s, u8 imm);

// An unmasked SIMD floating-point exception: #XM when CR4.OSXMMEXCPT, else #UD
// (SDM Vol 3A 6.15, interrupt 19).
bool raise_xm(Cpu& cpu);

} // namespace simd
