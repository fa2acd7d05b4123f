// The XSAVE feature set (SDM Vol 1 ch. 13, Vol 2 XSAVE/XRSTOR/XGETBV/XSETBV):
// XCR0, the standard and compacted save-area formats, and the init and
// in-use tracking that XSAVEOPT, XSAVEC and XRSTOR use, and the supervisor
// forms XSAVES/XRSTORS (13.11, 13.12). State components: x87 (0), SSE (1)
// and, when the model offers AVX, YMM_Hi128 (2); no supervisor component
// exists, so IA32_XSS is 0 and XSAVES/XRSTORS manage the XCR0 components.
#include "cpu/x87/fpu_image.h"
#include "cpu/simd/simd.h"

#include <array>
#include <cstring>

namespace {

constexpr unsigned HEADER = CpuidModel::XSAVE_LEGACY_SIZE; // offset of the XSAVE header
constexpr unsigned AVX_AT = CpuidModel::XSAVE_AVX_OFFSET;
constexpr unsigned AREA_MAX = AVX_AT + CpuidModel::XSAVE_AVX_SIZE;
constexpr u64 COMPACTED = 1ull << 63; // XCOMP_BV[63]
constexpr u32 MXCSR_INIT = 0x1F80;

u64 get64(const u8* p)
{
    u64 v;
    std::memcpy(&v, p, 8);
    return v;
}
u32 get32(const u8* p)
{
    u32 v;
    std::memcpy(&v, p, 4);
    return v;
}
void put64(u8* p, u64 v) { std::memcpy(p, &v, 8); }
void put32(u8* p, u32 v) { std::memcpy(p, &v, 4); }

// XMM and YMM registers that exist in the current mode (SDM Vol 1 13.5.2).
unsigned vector_count(const Cpu& cpu) { return cpu.s.in_64bit_code() ? 16 : 8; }

// XINUSE (SDM Vol 1 13.6): which components are not in their initial
// configuration. MXCSR does not count for component 1.
u64 xinuse(const Cpu& cpu)
{
    const FpuState& f = cpu.s.fpu;
    u64 bits = 0;
    if (!x87_in_init_state(f))
        bits |= xfeat::X87;
    for (unsigned i = 0; i < vector_count(cpu); ++i) {
        if (f.xmm[i][0] | f.xmm[i][1])
            bits |= xfeat::SSE;
        if (f.ymm_high[i][0] | f.ymm_high[i][1])
            bits |= xfeat::AVX;
    }
    return bits & cpu.s.xcr0;
}

// #UD without CPUID.XSAVE or CR4.OSXSAVE, then #NM on CR0.TS (SDM Vol 2C XSAVE).
bool check_xsave_available(Cpu& cpu, FeatureBit variant)
{
    if (!cpu.cpuid.has(cpufeat::XSAVE) || !cpu.cpuid.has(variant) ||
        !(cpu.s.cr4 & cr::CR4_OSXSAVE))
        return cpu.raise_ud();
    if (cpu.s.cr0 & cr::CR0_TS)
        return cpu.raise(Fault{VEC_NM, false, 0, 0});
    return true;
}

// XSAVES/XRSTORS are privileged: #GP(0) outside CPL 0 (V86 mode is CPL 3),
// after the #UD and #NM checks.
bool check_cpl0(Cpu& cpu)
{
    if (cpu.s.protected_mode() && (cpu.s.v86_mode() || cpu.s.cpl() != 0))
        return cpu.raise_gp(0);
    return true;
}

// The save area must be 64-byte aligned (#GP(0)); segment limits apply to
// the `size` bytes the instruction touches.
bool xsave_area(Cpu& cpu, const Insn& insn, unsigned size, bool write, u64& ea)
{
    if (insn.operand_count == 0 || insn.op[0].kind != OpKind::Mem)
        return cpu.raise_ud();
    ea = cpu.effective_address(insn);
    u64 linear;
    CPU_TRY(cpu.segment_linear(insn.mem.seg, ea, size, write, linear));
    if (linear & 63)
        return cpu.raise_gp(0);
    return true;
}

// The components an instruction may touch: XCR0, plus IA32_XSS for the
// supervisor forms.
u64 enabled_features(const Cpu& cpu, bool supervisor)
{
    return supervisor ? cpu.s.xcr0 | cpu.s.msr.xss : cpu.s.xcr0;
}

// RFBM: EDX:EAX AND the enabled components.
u64 requested_features(const Cpu& cpu, bool supervisor = false)
{
    return ((cpu.s.gpr[RDX] << 32) | (cpu.s.gpr[RAX] & 0xFFFFFFFF)) &
           enabled_features(cpu, supervisor);
}

// Byte ranges of the area one save writes.
struct Span {
    unsigned at, len;
};

void store_sse(const Cpu& cpu, u8* area)
{
    for (unsigned i = 0; i < vector_count(cpu); ++i) {
        put64(area + 160 + 16 * i, cpu.s.fpu.xmm[i][0]);
        put64(area + 168 + 16 * i, cpu.s.fpu.xmm[i][1]);
    }
}

void store_avx(const Cpu& cpu, u8* area)
{
    for (unsigned i = 0; i < vector_count(cpu); ++i) {
        put64(area + AVX_AT + 16 * i, cpu.s.fpu.ymm_high[i][0]);
        put64(area + AVX_AT + 8 + 16 * i, cpu.s.fpu.ymm_high[i][1]);
    }
}

void store_mxcsr(const Cpu& cpu, u8* area)
{
    put32(area + 24, cpu.s.fpu.mxcsr);
    put32(area + 28, mxcsr::WRITABLE);
}

enum class SaveKind : u8 { Standard, Optimized, Compacted, Supervisor };

// XSAVE, XSAVEOPT, XSAVEC and XSAVES. XSAVE writes every requested
// component; XSAVEOPT, XSAVEC and XSAVES skip those in their initial
// configuration (the modified optimization is allowed, not required, and is
// not done). Standard forms update only the requested XSTATE_BV bits;
// XSAVEC and XSAVES write XSTATE_BV and XCOMP_BV = RFBM | bit 63, XSAVES
// with RFBM taken over XCR0 | IA32_XSS (SDM Vol 1 13.11). No form writes
// bytes 416-511 or the rest of the header.
bool do_xsave(Cpu& cpu, const Insn& insn, SaveKind save_kind)
{
    const SaveKind kind = save_kind == SaveKind::Supervisor ? SaveKind::Compacted : save_kind;
    const u64 rfbm = requested_features(cpu, save_kind == SaveKind::Supervisor);
    const unsigned size = CpuidModel::xsave_size(rfbm);
    u64 ea;
    CPU_TRY(xsave_area(cpu, insn, size, true, ea));
    CPU_TRY(probe_fpu_block_write(cpu, insn, ea, size));
    u64 in_use = xinuse(cpu);
    if (kind == SaveKind::Compacted && cpu.s.fpu.mxcsr != MXCSR_INIT)
        in_use |= xfeat::SSE; // compacted SSE state carries MXCSR (SDM Vol 1 13.10)
    const u64 save = kind == SaveKind::Standard ? rfbm : rfbm & in_use;

    std::array<u8, AREA_MAX> area{};
    std::array<Span, 6> spans{};
    unsigned n = 0;
    u64 xstate_bv = 0;
    if (kind != SaveKind::Compacted) {
        CPU_TRY(read_fpu_block(cpu, insn, ea + HEADER, area.data() + HEADER, 8));
        xstate_bv = get64(area.data() + HEADER);
    }
    if (save & xfeat::X87) {
        store_x87_image(cpu.s.fpu, insn.prefixes & pfx::REX_W, area.data());
        spans[n++] = {0, 24};
        spans[n++] = {32, 128};
    }
    const bool mxcsr = kind == SaveKind::Compacted ? (save & xfeat::SSE)
                                                   : (rfbm & (xfeat::SSE | xfeat::AVX));
    if (mxcsr) {
        store_mxcsr(cpu, area.data());
        spans[n++] = {24, 8};
    }
    if (save & xfeat::SSE) {
        store_sse(cpu, area.data());
        spans[n++] = {160, 16 * vector_count(cpu)};
    }
    if (save & xfeat::AVX) {
        store_avx(cpu, area.data());
        spans[n++] = {AVX_AT, 16 * vector_count(cpu)};
    }
    if (kind == SaveKind::Compacted) {
        put64(area.data() + HEADER, rfbm & in_use);
        put64(area.data() + HEADER + 8, COMPACTED | rfbm);
        spans[n++] = {HEADER, 16};
    } else {
        put64(area.data() + HEADER, (xstate_bv & ~rfbm) | (in_use & rfbm));
        spans[n++] = {HEADER, 8};
    }
    for (unsigned i = 0; i < n; ++i)
        CPU_TRY(write_fpu_block(cpu, insn, ea + spans[i].at, area.data() + spans[i].at, spans[i].len));
    return true;
}

// The header checks of SDM Vol 1 13.8.1 (standard) and 13.8.2 (compacted)
// for XRSTOR, and 13.12 for XRSTORS, which accepts only the compacted form
// and checks XCOMP_BV against XCR0 | IA32_XSS.
bool header_valid(const Cpu& cpu, const u8* header, bool supervisor)
{
    const u64 xstate_bv = get64(header), xcomp_bv = get64(header + 8);
    const u64 enabled = enabled_features(cpu, supervisor);
    if (!(xcomp_bv & COMPACTED)) {
        if (supervisor || (xstate_bv & ~enabled))
            return false;
        return xcomp_bv == 0 && get64(header + 16) == 0;
    }
    if (!supervisor && !cpu.cpuid.has(cpufeat::XSAVEC))
        return false;
    if ((xcomp_bv & ~COMPACTED & ~enabled) || (xstate_bv & ~xcomp_bv))
        return false;
    for (unsigned i = 16; i < 64; i += 8)
        if (get64(header + i) != 0)
            return false;
    return true;
}

} // namespace

HANDLER(op_xsave)
{
    CPU_TRY(check_xsave_available(cpu, cpufeat::XSAVE));
    return do_xsave(cpu, insn, SaveKind::Standard);
}

HANDLER(op_xsaveopt)
{
    CPU_TRY(check_xsave_available(cpu, cpufeat::XSAVEOPT));
    return do_xsave(cpu, insn, SaveKind::Optimized);
}

HANDLER(op_xsavec)
{
    CPU_TRY(check_xsave_available(cpu, cpufeat::XSAVEC));
    return do_xsave(cpu, insn, SaveKind::Compacted);
}

HANDLER(op_xsaves)
{
    CPU_TRY(check_xsave_available(cpu, cpufeat::XSAVES));
    CPU_TRY(check_cpl0(cpu));
    return do_xsave(cpu, insn, SaveKind::Supervisor);
}

namespace {

// XRSTOR and XRSTORS (SDM Vol 1 13.8, 13.12): every requested component is
// loaded when its XSTATE_BV bit is set and initialized otherwise. The
// standard form loads MXCSR whenever SSE or AVX is requested; the compacted
// form treats it as part of the SSE component. All checks come before any
// state changes. XRSTORS is XRSTOR of a compacted image with RFBM over
// XCR0 | IA32_XSS.
bool do_xrstor(Cpu& cpu, const Insn& insn, bool supervisor)
{
    const u64 rfbm = requested_features(cpu, supervisor);
    u64 ea;
    CPU_TRY(xsave_area(cpu, insn, CpuidModel::xsave_size(rfbm), false, ea));
    std::array<u8, AREA_MAX> area{};
    CPU_TRY(read_fpu_block(cpu, insn, ea + HEADER, area.data() + HEADER, 64));
    if (!header_valid(cpu, area.data() + HEADER, supervisor))
        return cpu.raise_gp(0);
    const u64 xstate_bv = get64(area.data() + HEADER);
    const bool compacted = get64(area.data() + HEADER + 8) & COMPACTED;
    const u64 load = rfbm & xstate_bv;

    if (load & xfeat::X87)
        CPU_TRY(read_fpu_block(cpu, insn, ea, area.data(), 160));
    const bool mxcsr_from_memory = compacted ? (load & xfeat::SSE)
                                             : (rfbm & (xfeat::SSE | xfeat::AVX));
    if (mxcsr_from_memory) {
        CPU_TRY(read_fpu_block(cpu, insn, ea + 24, area.data() + 24, 4));
        if (get32(area.data() + 24) & ~mxcsr::WRITABLE)
            return cpu.raise_gp(0);
    }
    const unsigned vectors = vector_count(cpu);
    if (load & xfeat::SSE)
        CPU_TRY(read_fpu_block(cpu, insn, ea + 160, area.data() + 160, 16 * vectors));
    if (load & xfeat::AVX)
        CPU_TRY(read_fpu_block(cpu, insn, ea + AVX_AT, area.data() + AVX_AT, 16 * vectors));

    FpuState& f = cpu.s.fpu;
    if (rfbm & xfeat::X87) {
        if (load & xfeat::X87)
            load_x87_image(f, insn.prefixes & pfx::REX_W, area.data());
        else
            init_x87_state(f);
    }
    if (mxcsr_from_memory)
        f.mxcsr = get32(area.data() + 24);
    else if (compacted && (rfbm & xfeat::SSE))
        f.mxcsr = MXCSR_INIT;
    for (unsigned i = 0; i < vectors; ++i) {
        if (rfbm & xfeat::SSE)
            f.xmm[i] = {get64(area.data() + 160 + 16 * i), get64(area.data() + 168 + 16 * i)};
        if (rfbm & xfeat::AVX)
            f.ymm_high[i] = {get64(area.data() + AVX_AT + 16 * i),
                             get64(area.data() + AVX_AT + 8 + 16 * i)};
    }
    cpu.update_ferr();
    return true;
}

} // namespace

HANDLER(op_xrstor)
{
    CPU_TRY(check_xsave_available(cpu, cpufeat::XSAVE));
    return do_xrstor(cpu, insn, false);
}

HANDLER(op_xrstors)
{
    CPU_TRY(check_xsave_available(cpu, cpufeat::XSAVES));
    CPU_TRY(check_cpl0(cpu));
    return do_xrstor(cpu, insn, true);
}

// XGETBV (SDM Vol 2C): ECX = 0 reads XCR0; ECX = 1 reads XCR0 AND XINUSE
// when CPUID.(EAX=0DH,ECX=1):EAX[2] says so.
HANDLER(op_xgetbv)
{
    (void)insn;
    if (!cpu.cpuid.has(cpufeat::XSAVE) || !(cpu.s.cr4 & cr::CR4_OSXSAVE))
        return cpu.raise_ud();
    u64 value;
    const u32 index = static_cast<u32>(cpu.s.gpr[RCX]);
    if (index == 0)
        value = cpu.s.xcr0;
    else if (index == 1 && cpu.cpuid.has(cpufeat::XGETBV1))
        value = xinuse(cpu);
    else
        return cpu.raise_gp(0);
    cpu.set_gpr(RAX, 4, value & 0xFFFFFFFF);
    cpu.set_gpr(RDX, 4, value >> 32);
    return true;
}

// XSETBV (SDM Vol 2C): CPL 0 only; XCR0 must keep x87, name only supported
// components, and AVX needs SSE.
HANDLER(op_xsetbv)
{
    (void)insn;
    if (!cpu.cpuid.has(cpufeat::XSAVE) || !(cpu.s.cr4 & cr::CR4_OSXSAVE))
        return cpu.raise_ud();
    if (cpu.s.v86_mode() || (cpu.s.protected_mode() && cpu.s.cpl() != 0))
        return cpu.raise_gp(0);
    const u64 value = (cpu.s.gpr[RDX] << 32) | (cpu.s.gpr[RAX] & 0xFFFFFFFF);
    if (static_cast<u32>(cpu.s.gpr[RCX]) != 0 || (value & ~cpu.cpuid.xcr0_supported()) ||
        !(value & xfeat::X87) || ((value & xfeat::AVX) && !(value & xfeat::SSE)))
        return cpu.raise_gp(0);
    cpu.s.xcr0 = value;
    cpu.end_block();
    return true;
}
