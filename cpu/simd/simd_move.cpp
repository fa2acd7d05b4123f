// SSE/SSE2/SSE3/SSSE3/SSE4.1 and MMX data movement: register and memory
// moves, shuffles, unpacks, inserts and extracts, blends, sign-extending
// loads, byte masks and MXCSR load/store (SDM Vol 2).
#include "cpu/simd/simd.h"

using namespace simd;

namespace {

// A whole-operand move; the alignment rule is the only difference between forms.
template <Align A>
bool move128(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(begin(cpu, insn));
    Vec v;
    CPU_TRY(read_src(cpu, insn, 1, v, A));
    return write_dst(cpu, insn, 0, v, A);
}

// MOVSS/MOVSD: register to register merges the low element; a load zeroes the rest.
template <class T>
bool move_scalar(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(begin(cpu, insn));
    Vec s;
    CPU_TRY(read_src(cpu, insn, 1, s));
    if (insn.op[0].kind == OpKind::Xmm && insn.op[1].kind == OpKind::Xmm) {
        Vec d = xmm(cpu, insn.op[0].reg);
        d.set<T>(0, s.get<T>(0));
        s = d;
    }
    return write_dst(cpu, insn, 0, s);
}

template <class T>
Vec interleave(const Vec& d, const Vec& s, unsigned bytes, bool high)
{
    const unsigned n = bytes / sizeof(T), base = high ? n / 2 : 0;
    Vec r;
    for (unsigned i = 0; i < n / 2; ++i) {
        r.set<T>(2 * i, d.get<T>(base + i));
        r.set<T>(2 * i + 1, s.get<T>(base + i));
    }
    return r;
}

template <class T, bool High>
bool unpack(Cpu& cpu, const Insn& insn)
{
    const unsigned n = width(insn);
    return binary(cpu, insn,
                  [n](const Vec& d, const Vec& s) { return interleave<T>(d, s, n, High); });
}

template <class T>
bool movmsk(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(begin(cpu, insn));
    Vec s;
    CPU_TRY(read_src(cpu, insn, 1, s));
    const unsigned n = width(insn, 1) / sizeof(T);
    u64 mask = 0;
    for (unsigned i = 0; i < n; ++i)
        mask |= static_cast<u64>(s.get<T>(i) >> (sizeof(T) * 8 - 1)) << i;
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, mask);
    return true;
}

// PINSRx/INSERTPS-style: element `index` of T from operand 1's low bits.
template <class T>
bool insert(Cpu& cpu, const Insn& insn, unsigned index)
{
    CPU_TRY(begin(cpu, insn));
    Vec d, s;
    CPU_TRY(read_src(cpu, insn, 0, d));
    CPU_TRY(read_src(cpu, insn, 1, s));
    d.set<T>(index, s.get<T>(0));
    return write_dst(cpu, insn, 0, d);
}

// PEXTRx/EXTRACTPS: element `index` of T into a GPR (zero-extended) or memory.
template <class T>
bool extract(Cpu& cpu, const Insn& insn, unsigned index)
{
    CPU_TRY(begin(cpu, insn));
    Vec s;
    CPU_TRY(read_src(cpu, insn, 1, s));
    return write_dst(cpu, insn, 0, Vec{{static_cast<u64>(s.get<T>(index)), 0}});
}

template <class From, class To>
bool extend(Cpu& cpu, const Insn& insn)
{
    return binary(cpu, insn, [](const Vec&, const Vec& s) {
        Vec r;
        for (unsigned i = 0; i < 16 / sizeof(To); ++i)
            r.set<To>(i, static_cast<To>(s.get<From>(i)));
        return r;
    });
}

template <class T>
Vec blend_by_bits(const Vec& d, const Vec& s, unsigned bits)
{
    Vec r = d;
    for (unsigned i = 0; i < 16 / sizeof(T); ++i)
        if ((bits >> i) & 1)
            r.set<T>(i, s.get<T>(i));
    return r;
}

// BLENDVPS/BLENDVPD/PBLENDVB: the element's sign bit in the implicit XMM0 selects the source.
template <class T>
bool blend_variable(Cpu& cpu, const Insn& insn)
{
    const Vec mask = xmm(cpu, 0);
    unsigned bits = 0;
    for (unsigned i = 0; i < 16 / sizeof(T); ++i)
        bits |= static_cast<unsigned>(mask.get<T>(i) >> (sizeof(T) * 8 - 1)) << i;
    return binary(cpu, insn,
                  [bits](const Vec& d, const Vec& s) { return blend_by_bits<T>(d, s, bits); });
}

// BLENDPS/BLENDPD/PBLENDW: imm8 bit i selects the source for element i.
template <class T>
bool blend_immediate(Cpu& cpu, const Insn& insn)
{
    const unsigned bits = static_cast<u8>(insn.imm);
    return binary(cpu, insn,
                  [bits](const Vec& d, const Vec& s) { return blend_by_bits<T>(d, s, bits); });
}

// PSHUFD/PSHUFW/PSHUFLW/PSHUFHW: the four lanes of T from `First` on are
// picked from the source's same four by the 2-bit fields of imm8; the rest copy.
template <class T, unsigned First>
bool shuffle(Cpu& cpu, const Insn& insn)
{
    const u8 imm = static_cast<u8>(insn.imm);
    return binary(cpu, insn, [imm](const Vec&, const Vec& s) {
        Vec r = s;
        for (unsigned i = 0; i < 4; ++i)
            r.set<T>(First + i, s.get<T>(First + ((imm >> (2 * i)) & 3)));
        return r;
    });
}

} // namespace

HANDLER(op_movaps) { return move128<Align::Required>(cpu, insn); }
HANDLER(op_movups) { return move128<Align::Any>(cpu, insn); }
HANDLER(op_movss) { return move_scalar<u32>(cpu, insn); }

HANDLER(op_movsd_sse)
{
    return move_scalar<u64>(cpu, insn);
}

// MOVD/MOVQ in every form (GPR, MMX, XMM, memory): the low operand-size
// bytes move; an XMM destination is zero-extended to 128 bits.
//
// An MMX store to memory (MOVD m32,mm, MOVQ m64,mm, MOVNTQ) that faults on
// its destination: AMD puts back TOP and the tags the MMX switch changed
// (as for every faulting MMX instruction, Cpu::handle_fault). Intel keeps
// TOP = 0 and puts back only the tags: on the Intel host each of the 383
// such faults in difftest-seed1..6.txt (#GP, #SS, #AC, #PF; e.g. seed 1
// cases 1788, 2454, 8447) left FSW with TOP = 0 and every other bit as
// before, and the abridged tag word as before. MMX loads and arithmetic
// that fault undo the whole switch on both vendors.
HANDLER(op_movd_movq)
{
    const u16 ftw = cpu.s.fpu.ftw;
    CPU_TRY(begin(cpu, insn));
    if (cpu.intel() && insn.op[0].kind == OpKind::Mem && insn.op[1].kind == OpKind::Mmx)
        cpu.note_mmx_switch(cpu.s.fpu.fsw, ftw); // a fault restores the tags only
    Vec s;
    CPU_TRY(read_src(cpu, insn, 1, s));
    const unsigned size = insn.op[1].size < 8 ? insn.op[1].size : 8;
    return write_dst(cpu, insn, 0, Vec{{s.q[0] & size_mask(size), 0}});
}

HANDLER(op_movlps)
{
    CPU_TRY(begin(cpu, insn));
    Vec s;
    CPU_TRY(read_src(cpu, insn, 1, s));
    if (insn.op[0].kind == OpKind::Mem)
        return write_dst(cpu, insn, 0, s);
    Vec d = xmm(cpu, insn.op[0].reg);
    d.q[0] = s.q[0];
    set_xmm(cpu, insn.op[0].reg, d);
    return true;
}

HANDLER(op_movhps)
{
    CPU_TRY(begin(cpu, insn));
    Vec s;
    CPU_TRY(read_src(cpu, insn, 1, s));
    if (insn.op[0].kind == OpKind::Mem)
        return write_dst(cpu, insn, 0, Vec{{s.q[1], 0}});
    Vec d = xmm(cpu, insn.op[0].reg);
    d.q[1] = s.q[0];
    set_xmm(cpu, insn.op[0].reg, d);
    return true;
}

HANDLER(op_movhlps)
{
    return binary(cpu, insn, [](Vec d, const Vec& s) { d.q[0] = s.q[1]; return d; });
}

HANDLER(op_movlhps)
{
    return binary(cpu, insn, [](Vec d, const Vec& s) { d.q[1] = s.q[0]; return d; });
}

HANDLER(op_movddup)
{
    return binary(cpu, insn, [](const Vec&, const Vec& s) { return Vec{{s.q[0], s.q[0]}}; });
}

HANDLER(op_movsldup)
{
    return binary(cpu, insn, [](const Vec&, const Vec& s) {
        Vec r;
        for (unsigned i = 0; i < 4; ++i)
            r.set<u32>(i, s.get<u32>(i & ~1u));
        return r;
    });
}

HANDLER(op_movshdup)
{
    return binary(cpu, insn, [](const Vec&, const Vec& s) {
        Vec r;
        for (unsigned i = 0; i < 4; ++i)
            r.set<u32>(i, s.get<u32>(i | 1u));
        return r;
    });
}

HANDLER(op_movmskps) { return movmsk<u32>(cpu, insn); }
HANDLER(op_movmskpd) { return movmsk<u64>(cpu, insn); }
HANDLER(op_pmovmskb) { return movmsk<u8>(cpu, insn); }

// MOVNTI: a GPR store with a non-temporal hint, no x87/SSE state involved.
HANDLER(op_movnti)
{
    u64 v;
    CPU_TRY(cpu.read_operand(insn, 1, v));
    return cpu.write_operand(insn, 0, v);
}

// MASKMOVQ/MASKMOVDQU: bytes whose mask byte has its top bit set go to DS:rDI.
// The whole 8 or 16 bytes are checked first, whatever the mask (the SDM
// leaves faults for unselected bytes to the implementation; the host CPU
// reports them, CR2 = rDI, #AC for a misaligned rDI, #GP for a half that
// runs past a 4 GiB limit). The MMX switch of MASKMOVQ stays even when it
// faults, as on the host.
HANDLER(op_maskmov)
{
    CPU_TRY(begin(cpu, insn));
    cpu.keep_mmx_switch();
    Vec data, mask;
    CPU_TRY(read_src(cpu, insn, 0, data));
    CPU_TRY(read_src(cpu, insn, 1, mask));
    const u64 addr_mask = size_mask(insn.addrsize), base = cpu.s.gpr[RDI] & addr_mask;
    // In 8-byte halves, each checked whole in turn (limit, alignment, pages),
    // as the host orders the faults.
    const bool user = cpu.access_is_user(false);
    for (unsigned half = 0; half < width(insn); half += 8) {
        u64 linear;
        CPU_TRY(cpu.segment_linear(insn.mem.seg, (base + half) & addr_mask, 8, true, linear));
        if (cpu.s.cr0 & cr::CR0_AM)
            CPU_TRY(cpu.check_alignment(linear, 8));
        SoftTlb::Entry* e;
        CPU_TRY(cpu.translate(linear, Access::Write, user, e));
        const u64 last = (linear + 7) & cpu.linear_wrap();
        if ((last >> 12) != (linear >> 12))
            CPU_TRY(cpu.translate(last & PAGE_MASK, Access::Write, user, e));
    }
    for (unsigned i = 0; i < width(insn); ++i)
        if (mask.byte(i) & 0x80)
            CPU_TRY(cpu.write_mem(insn.mem.seg, (base + i) & addr_mask, 1, data.byte(i)));
    return true;
}

HANDLER(op_ldmxcsr)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    u64 v;
    CPU_TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), 4, v));
    if (v & ~static_cast<u64>(mxcsr::WRITABLE))
        return cpu.raise_gp(0);
    cpu.s.fpu.mxcsr = static_cast<u32>(v);
    return true;
}

HANDLER(op_stmxcsr)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), 4, cpu.s.fpu.mxcsr);
}

// EMMS: every x87 register empty (SDM Vol 2A EMMS). Not an SSE instruction:
// CR4.OSFXSR does not matter.
HANDLER(op_emms)
{
    (void)insn;
    if (cpu.s.cr0 & cr::CR0_EM)
        return cpu.raise_ud();
    if (cpu.s.cr0 & cr::CR0_TS)
        return cpu.raise(Fault{VEC_NM, false, 0, 0});
    if (cpu.s.fpu.fsw & 0x80)
        CPU_TRY(cpu.report_x87_error());
    // Every register empty and TOP = 0 (SDM Vol 1 Table 9-2; the host agrees).
    cpu.s.fpu.ftw = 0xFFFF;
    cpu.s.fpu.fsw = static_cast<u16>(cpu.s.fpu.fsw & ~(7u << 11));
    return true;
}

// ---- Shuffles and unpacks ----

HANDLER(op_shufps)
{
    const u8 imm = static_cast<u8>(insn.imm);
    return binary(cpu, insn, [imm](const Vec& d, const Vec& s) {
        Vec r;
        r.set<u32>(0, d.get<u32>(imm & 3));
        r.set<u32>(1, d.get<u32>((imm >> 2) & 3));
        r.set<u32>(2, s.get<u32>((imm >> 4) & 3));
        r.set<u32>(3, s.get<u32>((imm >> 6) & 3));
        return r;
    });
}

HANDLER(op_shufpd)
{
    const u8 imm = static_cast<u8>(insn.imm);
    return binary(cpu, insn, [imm](const Vec& d, const Vec& s) {
        return Vec{{d.q[imm & 1], s.q[(imm >> 1) & 1]}};
    });
}

HANDLER(op_unpcklps) { return unpack<u32, false>(cpu, insn); }
HANDLER(op_unpckhps) { return unpack<u32, true>(cpu, insn); }
HANDLER(op_unpcklpd) { return unpack<u64, false>(cpu, insn); }
HANDLER(op_unpckhpd) { return unpack<u64, true>(cpu, insn); }
HANDLER(op_punpcklbw) { return unpack<u8, false>(cpu, insn); }
HANDLER(op_punpcklwd) { return unpack<u16, false>(cpu, insn); }
HANDLER(op_punpckldq) { return unpack<u32, false>(cpu, insn); }
HANDLER(op_punpcklqdq) { return unpack<u64, false>(cpu, insn); }
HANDLER(op_punpckhbw) { return unpack<u8, true>(cpu, insn); }
HANDLER(op_punpckhwd) { return unpack<u16, true>(cpu, insn); }
HANDLER(op_punpckhdq) { return unpack<u32, true>(cpu, insn); }
HANDLER(op_punpckhqdq) { return unpack<u64, true>(cpu, insn); }

HANDLER(op_pshufd) { return shuffle<u32, 0>(cpu, insn); }
HANDLER(op_pshufw) { return shuffle<u16, 0>(cpu, insn); }
HANDLER(op_pshuflw) { return shuffle<u16, 0>(cpu, insn); }
HANDLER(op_pshufhw) { return shuffle<u16, 4>(cpu, insn); }

HANDLER(op_pshufb)
{
    const unsigned n = width(insn);
    return binary(cpu, insn, [n](const Vec& d, const Vec& s) {
        Vec r;
        for (unsigned i = 0; i < n; ++i) {
            const u8 sel = s.byte(i);
            r.set<u8>(i, (sel & 0x80) ? 0 : d.byte(sel & (n - 1)));
        }
        return r;
    });
}

// PALIGNR: the concatenation dst:src shifted right by imm bytes.
HANDLER(op_palignr)
{
    const unsigned n = width(insn), shift = static_cast<u8>(insn.imm);
    return binary(cpu, insn, [n, shift](const Vec& d, const Vec& s) {
        Vec r;
        for (unsigned i = 0; i < n; ++i) {
            const unsigned k = i + shift;
            r.set<u8>(i, k < n ? s.byte(k) : k < 2 * n ? d.byte(k - n) : 0);
        }
        return r;
    });
}

HANDLER(op_pslldq)
{
    const unsigned shift = static_cast<u8>(insn.imm);
    return binary(cpu, insn, [shift](const Vec& d, const Vec&) {
        Vec r;
        for (unsigned i = shift; i < 16; ++i)
            r.set<u8>(i, d.byte(i - shift));
        return r;
    });
}

HANDLER(op_psrldq)
{
    const unsigned shift = static_cast<u8>(insn.imm);
    return binary(cpu, insn, [shift](const Vec& d, const Vec&) {
        Vec r;
        for (unsigned i = 0; i + shift < 16; ++i)
            r.set<u8>(i, d.byte(i + shift));
        return r;
    });
}

// ---- Inserts and extracts ----

HANDLER(op_pinsrb) { return insert<u8>(cpu, insn, insn.imm & 15); }
HANDLER(op_pinsrw) { return insert<u16>(cpu, insn, insn.imm & (width(insn) / 2 - 1)); }
HANDLER(op_pinsrd) { return insert<u32>(cpu, insn, insn.imm & 3); }
HANDLER(op_pinsrq) { return insert<u64>(cpu, insn, insn.imm & 1); }
HANDLER(op_pextrb) { return extract<u8>(cpu, insn, insn.imm & 15); }
HANDLER(op_pextrw) { return extract<u16>(cpu, insn, insn.imm & (width(insn, 1) / 2 - 1)); }
HANDLER(op_pextrd) { return extract<u32>(cpu, insn, insn.imm & 3); }
HANDLER(op_pextrq) { return extract<u64>(cpu, insn, insn.imm & 1); }
HANDLER(op_extractps) { return extract<u32>(cpu, insn, insn.imm & 3); }

// INSERTPS: a source element (imm[7:6], or the m32) into element imm[5:4],
// then the elements in imm[3:0] cleared.
HANDLER(op_insertps)
{
    const u8 imm = static_cast<u8>(insn.imm);
    const bool from_mem = insn.op[1].kind == OpKind::Mem;
    return binary(cpu, insn, [imm, from_mem](Vec d, const Vec& s) {
        d.set<u32>((imm >> 4) & 3, s.get<u32>(from_mem ? 0 : imm >> 6));
        for (unsigned i = 0; i < 4; ++i)
            if ((imm >> i) & 1)
                d.set<u32>(i, 0);
        return d;
    });
}

// ---- Sign and zero extension (SSE4.1) ----

HANDLER(op_pmovsxbw) { return extend<i8, i16>(cpu, insn); }
HANDLER(op_pmovsxbd) { return extend<i8, i32>(cpu, insn); }
HANDLER(op_pmovsxbq) { return extend<i8, i64>(cpu, insn); }
HANDLER(op_pmovsxwd) { return extend<i16, i32>(cpu, insn); }
HANDLER(op_pmovsxwq) { return extend<i16, i64>(cpu, insn); }
HANDLER(op_pmovsxdq) { return extend<i32, i64>(cpu, insn); }
HANDLER(op_pmovzxbw) { return extend<u8, u16>(cpu, insn); }
HANDLER(op_pmovzxbd) { return extend<u8, u32>(cpu, insn); }
HANDLER(op_pmovzxbq) { return extend<u8, u64>(cpu, insn); }
HANDLER(op_pmovzxwd) { return extend<u16, u32>(cpu, insn); }
HANDLER(op_pmovzxwq) { return extend<u16, u64>(cpu, insn); }
HANDLER(op_pmovzxdq) { return extend<u32, u64>(cpu, insn); }

// ---- Blends (SSE4.1) ----

HANDLER(op_blendps) { return blend_immediate<u32>(cpu, insn); }
HANDLER(op_blendpd) { return blend_immediate<u64>(cpu, insn); }
HANDLER(op_pblendw) { return blend_immediate<u16>(cpu, insn); }
HANDLER(op_blendvps) { return blend_variable<u32>(cpu, insn); }
HANDLER(op_blendvpd) { return blend_variable<u64>(cpu, insn); }
HANDLER(op_pblendvb) { return blend_variable<u8>(cpu, insn); }
