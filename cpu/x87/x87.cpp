// The x87 FPU: register stack and tags, status/control words, instruction
// and data pointers, every x87 instruction and FXSAVE/FXRSTOR, over the
// 80-bit arithmetic of cpu/float80. Also the device-not-available rules
// shared by every x87/SIMD instruction.
//
// SDM Vol 1 ch. 8 (x87 FPU), Vol 2 (each instruction), Vol 1 10.5 (FXSAVE).
// Where the SDM is silent, behaviour follows the AMD host these were checked
// on (tests/cpu/x87_test.cpp, float80_test.cpp); where Intel and AMD differ,
// the model's vendor decides (FOP: cpu/x87/x87_table.cpp; suppressed stores:
// store() below).
#include "cpu/x87/float80.h"
#include "cpu/x87/fpu_image.h"
#include "cpu/core/handlers.h"
#include "cpu/simd/simd.h"

#include <array>
#include <cstring>

bool Cpu::check_fpu_available(const Insn& insn)
{
    switch (insn.fpu_class) {
    case FPU_X87:
        if (s.cr0 & (cr::CR0_EM | cr::CR0_TS))
            return raise(Fault{VEC_NM, false, 0, 0});
        return true;
    case FPU_WAIT:
        if ((s.cr0 & (cr::CR0_TS | cr::CR0_MP)) == (cr::CR0_TS | cr::CR0_MP))
            return raise(Fault{VEC_NM, false, 0, 0});
        return true;
    case FPU_SSE:
        if ((s.cr0 & cr::CR0_EM) || !(s.cr4 & cr::CR4_OSFXSR))
            return raise_ud();
        if (s.cr0 & cr::CR0_TS)
            return raise(Fault{VEC_NM, false, 0, 0});
        return true;
    case FPU_AVX:
        // VEX forms need CR4.OSXSAVE and both SSE and AVX state enabled in
        // XCR0 (#UD), then CR0.TS clear (#NM); CR0.EM does not matter (SDM
        // Vol 2A 2.8, Vol 1 13.1 and 14.3).
        if (!(s.cr4 & cr::CR4_OSXSAVE) || (s.xcr0 & 6) != 6)
            return raise_ud();
        if (s.cr0 & cr::CR0_TS)
            return raise(Fault{VEC_NM, false, 0, 0});
        return true;
    default:
        return true;
    }
}

namespace {

// Status word (SDM Vol 1 8.1.3).
constexpr u16 C0 = 1u << 8, C1 = 1u << 9, C2 = 1u << 10, C3 = 1u << 14;
constexpr u16 CC_ALL = C0 | C1 | C2 | C3;
constexpr u16 ES = 1u << 7, BUSY = 1u << 15;
constexpr u16 TOP_MASK = 7u << 11;
// Tag values (SDM Vol 1 8.1.7).
constexpr unsigned TAG_VALID = 0, TAG_ZERO = 1, TAG_SPECIAL = 2, TAG_EMPTY = 3;


constexpr u32 I32_INDEFINITE = 0x80000000u;
constexpr u32 F32_INDEFINITE = 0xFFC00000u;
constexpr u64 F64_INDEFINITE = 0xFFF8000000000000ull;

Float80 to_f80(const X87Register& r)
{
    return Float80{r.mantissa, r.sign_exponent};
}

unsigned tag_for(Float80 v)
{
    switch (classify(v)) {
    case FpClass::Zero:
        return TAG_ZERO;
    case FpClass::Normal:
        return TAG_VALID;
    default:
        return TAG_SPECIAL;
    }
}

// ES (and B, which mirrors it) is set exactly while an unmasked exception
// flag is set; the x87 re-derives it when FCW or FSW are loaded.
void update_es(FpuState& f)
{
    if (f.fsw & ~f.fcw & fpx::ALL)
        f.fsw |= ES | BUSY;
    else
        f.fsw &= static_cast<u16>(~(ES | BUSY));
}

// The register stack seen through TOP.
struct Stack {
    FpuState& f;

    unsigned top() const { return (f.fsw >> 11) & 7; }
    void set_top(unsigned t) { f.fsw = static_cast<u16>((f.fsw & ~TOP_MASK) | ((t & 7) << 11)); }
    unsigned phys(unsigned i) const { return (top() + i) & 7; }
    unsigned tag_phys(unsigned p) const { return (f.ftw >> (2 * p)) & 3; }
    void set_tag_phys(unsigned p, unsigned t)
    {
        f.ftw = static_cast<u16>((f.ftw & ~(3u << (2 * p))) | (t << (2 * p)));
    }
    bool empty(unsigned i) const { return tag_phys(phys(i)) == TAG_EMPTY; }
    Float80 st(unsigned i) const { return to_f80(f.st[phys(i)]); }
    void set(unsigned i, Float80 v)
    {
        const unsigned p = phys(i);
        f.st[p] = X87Register{v.signif, v.sign_exp};
        set_tag_phys(p, tag_for(v));
    }
    void push(Float80 v)
    {
        set_top(top() - 1);
        set(0, v);
    }
    void pop()
    {
        set_tag_phys(phys(0), TAG_EMPTY);
        set_top(top() + 1);
    }
    void set_cc(u16 mask, u16 value) { f.fsw = static_cast<u16>((f.fsw & ~mask) | (value & mask)); }
    void set_c1(bool on) { set_cc(C1, on ? C1 : 0); }
    void raise(u16 flags)
    {
        f.fsw |= flags;
        update_es(f);
    }
    // Merges an operation's flags and its C1 (round-up) into FSW.
    void commit(const FpEnv& e)
    {
        set_c1(e.c1);
        raise(e.flags);
    }
    // Stack underflow/overflow (SDM Vol 1 8.5.1.1): IE and SF, C1 = 0 for
    // underflow and 1 for overflow. True when IE is masked, i.e. the
    // instruction goes on to deliver the real indefinite.
    bool underflow()
    {
        set_c1(false);
        raise(fpx::IE | fpx::SF);
        return f.fcw & fpx::IE;
    }
    bool overflow()
    {
        set_c1(true);
        raise(fpx::IE | fpx::SF);
        return f.fcw & fpx::IE;
    }
};

FpEnv env_for(const Cpu& cpu, bool precision_control = false)
{
    FpEnv e;
    e.fcw = cpu.s.fpu.fcw;
    e.use_pc = precision_control;
    e.vendor = cpu.intel() ? CpuVendor::Intel : CpuVendor::Amd;
    return e;
}

// ---- #MF: pending unmasked exceptions at a waiting instruction ----

// SDM Vol 1 8.7: a waiting x87 instruction (or WAIT) that finds ES set
// takes #MF before it executes with CR0.NE=1, or signals FERR# and freezes
// with CR0.NE=0 (Cpu::report_x87_error).
bool check_pending(Cpu& cpu)
{
    if (!(cpu.s.fpu.fsw & ES)) [[likely]]
        return true;
    return cpu.report_x87_error();
}

// ---- Instruction and data pointers (SDM Vol 1 8.1.8-8.1.9) ----

// The ModR/M byte of an x87 instruction: as encoded for memory forms; for
// register forms rebuilt from the operands (no-operand forms such as D9 E8
// pass their rm in `implied_rm`).
u8 rebuild_modrm(const Insn& insn, u8 implied_rm)
{
    const u8 reg = static_cast<u8>((insn.modrm_reg & 7) << 3);
    int mem_index = -1;
    for (unsigned i = 0; i < insn.operand_count; ++i)
        if (insn.op[i].kind == OpKind::Mem)
            mem_index = static_cast<int>(i);
    if (mem_index < 0) {
        // Register form: rm is the ST(i) that is not ST(0), or ST(0) itself.
        u8 rm = 0;
        unsigned x87_count = 0;
        for (unsigned i = 0; i < insn.operand_count; ++i) {
            if (insn.op[i].kind == OpKind::X87) {
                ++x87_count;
                if (insn.op[i].reg != 0)
                    rm = insn.op[i].reg;
            }
        }
        if (x87_count == 0)
            rm = implied_rm; // no-operand forms (FLD1, FSIN, FCOMPP, ...)
        return static_cast<u8>(0xC0 | reg | (rm & 7));
    }
    // Memory form: the byte as encoded (a SIB form keeps rm = 100b even
    // when the SIB names only a base).
    return insn.modrm;
}

u64 addr_mask(const Insn& insn)
{
    return insn.addrsize == 2 ? 0xFFFF : insn.addrsize == 4 ? 0xFFFFFFFF : ~0ull;
}

// Every non-control instruction records where it is and what it touched.
// `implied_rm` is the ModR/M rm of forms without operands (D9 E8+rm etc.).
void note_instruction(Cpu& cpu, const Insn& insn, bool has_memory, u8 implied_rm = 0)
{
    FpuState& f = cpu.s.fpu;
    f.fip = cpu.s.rip;
    f.fcs = cpu.s.seg[CS].selector;
    f.fop = static_cast<u16>(((insn.opcode & 7) << 8) | rebuild_modrm(insn, implied_rm));
    if (has_memory) {
        f.fdp = cpu.effective_address(insn);
        f.fds = cpu.s.seg[insn.mem.seg].selector;
    }
}

// The common start of a waiting, non-control x87 instruction.
bool begin(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(check_pending(cpu));
    (void)insn;
    return true;
}

bool has_mem(const Insn& insn)
{
    return insn.operand_count > 0 && insn.op[0].kind == OpKind::Mem;
}

// ---- Memory blocks (m80, environments, FNSAVE/FXSAVE images) ----

bool read_bytes(Cpu& cpu, const Insn& insn, u64 ea, u8* out, unsigned len)
{
    const u64 mask = addr_mask(insn);
    for (unsigned done = 0; done < len;) {
        const unsigned n = len - done >= 8 ? 8 : len - done;
        u64 v;
        CPU_TRY(cpu.read_mem(insn.mem.seg, (ea + done) & mask, n, v));
        std::memcpy(out + done, &v, n);
        done += n;
    }
    return true;
}

// An FLDENV/FRSTOR area: one alignment check for the whole area, 4-byte
// for the 32-bit formats and 2-byte for the 16-bit ones (SDM Vol 3A Table
// 6-7), then the reads without their own (the host reads a 4-byte aligned
// area without #AC), field-sized: an area that runs past a segment's limit
// faults on its first page before the limit, as on the host.
bool read_env_area(Cpu& cpu, const Insn& insn, u64 ea, u8* out, unsigned len, bool wide)
{
    const u64 mask = addr_mask(insn);
    const unsigned field = wide ? 4 : 2;
    for (unsigned done = 0; done < len;) {
        const unsigned n = len - done >= field ? field : len - done;
        u64 linear, v;
        CPU_TRY(cpu.segment_linear(insn.mem.seg, (ea + done) & mask, n, false, linear));
        if (done == 0 && (cpu.s.cr0 & cr::CR0_AM))
            CPU_TRY(cpu.check_alignment(linear, wide ? 4 : 2));
        CPU_TRY(cpu.read_linear(linear, n, v));
        std::memcpy(out + done, &v, n);
        done += n;
    }
    return true;
}

// Checks that the whole block can be written before changing any of it;
// with `align`, the alignment check (#AC) of an operand of that size comes
// first, before any #PF, as for every other access. In 8-byte parts, each
// checked against the segment and then its pages: a block that runs past a
// 4 GiB limit faults on its first page first, as on the host CPU.
bool probe_write(Cpu& cpu, const Insn& insn, u64 ea, unsigned len, unsigned align = 0)
{
    const u64 mask = addr_mask(insn);
    const u64 wrap = cpu.s.long_mode_active() ? ~0ull : 0xFFFFFFFFull;
    const bool user = cpu.access_is_user(false);
    for (unsigned done = 0; done < len; done += 8) {
        const unsigned n = len - done >= 8 ? 8 : len - done;
        u64 linear;
        CPU_TRY(cpu.segment_linear(insn.mem.seg, (ea + done) & mask, n, true, linear));
        if (done == 0 && align && (cpu.s.cr0 & cr::CR0_AM))
            CPU_TRY(cpu.check_alignment(linear, align));
        SoftTlb::Entry* e;
        CPU_TRY(cpu.translate(linear, Access::Write, user, e));
        const u64 last = (linear + n - 1) & wrap; // may wrap past 2^64 or 2^32
        if ((last & PAGE_MASK) != (linear & PAGE_MASK))
            CPU_TRY(cpu.translate(last & PAGE_MASK, Access::Write, user, e));
    }
    return true;
}

bool write_bytes(Cpu& cpu, const Insn& insn, u64 ea, const u8* in, unsigned len)
{
    CPU_TRY(probe_write(cpu, insn, ea, len));
    const u64 mask = addr_mask(insn);
    for (unsigned done = 0; done < len;) {
        const unsigned n = len - done >= 8 ? 8 : len - done;
        u64 v = 0;
        std::memcpy(&v, in + done, n);
        CPU_TRY(cpu.write_mem(insn.mem.seg, (ea + done) & mask, n, v));
        done += n;
    }
    return true;
}

void put_f80(u8* p, Float80 v)
{
    std::memcpy(p, &v.signif, 8);
    std::memcpy(p + 8, &v.sign_exp, 2);
}

Float80 get_f80(const u8* p)
{
    Float80 v;
    std::memcpy(&v.signif, p, 8);
    std::memcpy(&v.sign_exp, p + 8, 2);
    return v;
}

void put16(u8* p, u16 v)
{
    std::memcpy(p, &v, 2);
}
void put32(u8* p, u32 v)
{
    std::memcpy(p, &v, 4);
}
void put64(u8* p, u64 v)
{
    std::memcpy(p, &v, 8);
}
u16 get16(const u8* p)
{
    u16 v;
    std::memcpy(&v, p, 2);
    return v;
}
u32 get32(const u8* p)
{
    u32 v;
    std::memcpy(&v, p, 4);
    return v;
}
u64 get64(const u8* p)
{
    u64 v;
    std::memcpy(&v, p, 8);
    return v;
}

// ---- Memory operands ----

enum class MemType : u8 { Real, Int };

// Loads the instruction's memory operand as an 80-bit value; conversion
// exceptions (SNaN, denormal) land in e.
bool load_operand(Cpu& cpu, const Insn& insn, MemType type, FpEnv& e, Float80& out, bool& ok,
                  bool keep_snan = false)
{
    const u64 ea = cpu.effective_address(insn);
    const unsigned size = insn.op[0].size;
    ok = true;
    if (size == 10) {
        u8 b[10];
        CPU_TRY(read_bytes(cpu, insn, ea, b, 10));
        out = type == MemType::Int ? f80_from_bcd(b) : get_f80(b);
        return true;
    }
    u64 v;
    CPU_TRY(cpu.read_mem(insn.mem.seg, ea, size, v));
    if (type == MemType::Int) {
        const i64 i = size == 2   ? static_cast<i16>(v)
                      : size == 4 ? static_cast<i32>(v)
                                  : static_cast<i64>(v);
        out = f80_from_int(i);
        return true;
    }
    ok = size == 4 ? f80_from_f32(e, static_cast<u32>(v), out) : f80_from_f64(e, v, out);
    if (keep_snan) {
        // As an arithmetic operand an SNaN stays signaling, so that the
        // operation applies the two-NaN rules and raises IE itself.
        const bool snan =
            size == 4 ? ((v & 0x7F800000u) == 0x7F800000u && (v & 0x7FFFFFu) && !(v & 0x400000u))
                      : ((v & 0x7FF0000000000000ull) == 0x7FF0000000000000ull &&
                         (v & 0xFFFFFFFFFFFFFull) && !(v & 0x8000000000000ull));
        if (snan) {
            const u64 frac = size == 4 ? (v & 0x7FFFFFu) << 40 : (v & 0xFFFFFFFFFFFFFull) << 11;
            const bool sign = size == 4 ? (v >> 31) & 1 : v >> 63;
            out = Float80{(1ull << 63) | frac, static_cast<u16>(sign ? 0xFFFF : 0x7FFF)};
            e.flags &= static_cast<u16>(~fpx::IE);
            ok = true;
        }
    }
    return true;
}

// ---- Arithmetic ----

enum class Arith : u8 { Add, Sub, SubR, Mul, Div, DivR };

bool compute(FpEnv& e, Arith op, Float80 dst, Float80 src, Float80& out)
{
    switch (op) {
    case Arith::Add:
        return f80_add(e, dst, src, out);
    case Arith::Sub:
        return f80_sub(e, dst, src, out);
    case Arith::SubR:
        return f80_sub(e, src, dst, out);
    case Arith::Mul:
        return f80_mul(e, dst, src, out);
    case Arith::Div:
        return f80_div(e, dst, src, out);
    case Arith::DivR:
        return f80_div(e, src, dst, out);
    }
    return false;
}

// FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR and their P and I forms. Destination is
// op[0] (ST(0) for the memory forms), source op[1] or memory.
bool arith(Cpu& cpu, const Insn& insn, Arith op, bool pop, MemType type)
{
    CPU_TRY(begin(cpu, insn));
    Stack s{cpu.s.fpu};
    FpEnv e = env_for(cpu, true);
    const bool mem = has_mem(insn);
    unsigned dst = 0, src_reg = 0;
    Float80 src;
    bool loaded = true;
    if (mem) {
        CPU_TRY(load_operand(cpu, insn, type, e, src, loaded, true));
    } else {
        dst = insn.op[0].reg;
        src_reg = insn.op[1].reg;
    }
    note_instruction(cpu, insn, mem);
    if (s.empty(dst) || (!mem && s.empty(src_reg))) {
        if (s.underflow()) {
            s.set(dst, F80_INDEFINITE);
            if (pop)
                s.pop();
        }
        return true;
    }
    // A single/double denormal raises DE the way an 80-bit denormal operand
    // would, with the operation's priorities (NaN, invalid and zero-divide
    // first), not when it is widened.
    if (mem && (e.flags & fpx::DE)) {
        e.flags &= static_cast<u16>(~fpx::DE);
        e.denormal_inputs = (op == Arith::SubR || op == Arith::DivR) ? 1 : 2;
    }
    // An SNaN or denormal memory operand with its exception unmasked stops
    // the instruction before it computes.
    if (!loaded) {
        s.commit(e);
        return true;
    }
    if (!mem)
        src = s.st(src_reg);
    Float80 r;
    const bool ok = compute(e, op, s.st(dst), src, r);
    s.commit(e);
    if (ok) {
        s.set(dst, r);
        if (pop)
            s.pop();
    }
    return true;
}

// A one-operand instruction on ST(0).
template <typename F> bool unary(Cpu& cpu, const Insn& insn, u8 rm, F&& fn)
{
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false, rm);
    Stack s{cpu.s.fpu};
    if (s.empty(0)) {
        if (s.underflow())
            s.set(0, F80_INDEFINITE);
        return true;
    }
    FpEnv e = env_for(cpu);
    Float80 r;
    const bool ok = fn(e, s.st(0), r);
    s.commit(e);
    if (ok)
        s.set(0, r);
    return true;
}

// ST(1) = fn(ST(0), ST(1)), then pop (FYL2X, FYL2XP1, FPATAN).
template <typename F> bool binary_pop(Cpu& cpu, const Insn& insn, u8 rm, F&& fn)
{
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false, rm);
    Stack s{cpu.s.fpu};
    if (s.empty(0) || s.empty(1)) {
        if (s.underflow()) {
            s.set(1, F80_INDEFINITE);
            s.pop();
        }
        return true;
    }
    FpEnv e = env_for(cpu);
    Float80 r;
    const bool ok = fn(e, s.st(0), s.st(1), r);
    s.commit(e);
    if (ok) {
        s.set(1, r);
        s.pop();
    }
    return true;
}

// Instructions that replace ST(0) and push a second result (FXTRACT,
// FPTAN, FSINCOS): both stack faults give two indefinites when masked.
bool push_pair_faults(Stack& s, bool clears_c2)
{
    if (s.empty(0) || !s.empty(7)) {
        if (clears_c2) // FPTAN and FSINCOS report "complete"; FXTRACT leaves C2
            s.set_cc(C2, 0);
        const bool masked = s.empty(0) ? s.underflow() : s.overflow();
        if (masked) {
            s.set(0, F80_INDEFINITE);
            s.push(F80_INDEFINITE);
        }
        return true;
    }
    return false;
}

// ---- Comparisons ----

u16 order_codes(FpOrder o)
{
    switch (o) {
    case FpOrder::Less:
        return C0;
    case FpOrder::Equal:
        return C3;
    case FpOrder::Greater:
        return 0;
    default:
        return C0 | C2 | C3;
    }
}

u64 order_eflags(FpOrder o)
{
    switch (o) {
    case FpOrder::Less:
        return rf::CF;
    case FpOrder::Equal:
        return rf::ZF;
    case FpOrder::Greater:
        return 0;
    default:
        return rf::ZF | rf::PF | rf::CF;
    }
}

enum class CompareSource : u8 { Register, Memory, Integer, Zero };

// FCOM/FUCOM/FICOM/FTST (status codes) and FCOMI/FUCOMI (EFLAGS).
bool compare(Cpu& cpu, const Insn& insn, bool quiet, unsigned pops, CompareSource source,
             bool eflags, u8 rm = 0)
{
    CPU_TRY(begin(cpu, insn));
    Stack s{cpu.s.fpu};
    FpEnv e = env_for(cpu);
    Float80 b = F80_ZERO;
    unsigned b_reg = 1;
    bool loaded = true;
    if (source == CompareSource::Memory || source == CompareSource::Integer) {
        CPU_TRY(load_operand(cpu, insn, source == CompareSource::Integer ? MemType::Int : MemType::Real,
                         e, b, loaded));
    } else if (source == CompareSource::Register) {
        // FCOM ST(i) has one visible operand; FCOMI ST(0), ST(i) has two.
        for (unsigned i = 0; i < insn.operand_count; ++i)
            if (insn.op[i].kind == OpKind::X87)
                b_reg = insn.op[i].reg;
        if (insn.operand_count == 2)
            b_reg = insn.op[1].reg;
    }
    note_instruction(cpu, insn, source == CompareSource::Memory || source == CompareSource::Integer,
                     rm);
    const bool needs_b = source == CompareSource::Register;
    FpOrder o;
    if (s.empty(0) || (needs_b && s.empty(b_reg))) {
        // The codes say "unordered" even when IE is unmasked; only the pops
        // wait for a masked response.
        if (!s.underflow())
            pops = 0;
        o = FpOrder::Unordered;
    } else {
        if (needs_b)
            b = s.st(b_reg);
        if (e.flags & fpx::DE) { // as in arith()
            e.flags &= static_cast<u16>(~fpx::DE);
            e.denormal_inputs = 2;
        }
        o = f80_compare(e, s.st(0), b, quiet);
        (void)loaded;
        s.raise(e.flags);
        // AMD sets the condition codes even when IE/DE are unmasked; the
        // stack is then left alone for the handler.
        if (e.flags & ~e.fcw & (fpx::IE | fpx::DE))
            pops = 0;
    }
    if (eflags) {
        cpu.set_rflags_arith(order_eflags(o)); // C1 is left alone (checked on hardware)
    } else {
        s.set_cc(CC_ALL, order_codes(o));
    }
    for (unsigned i = 0; i < pops; ++i)
        s.pop();
    return true;
}

// ---- Stores ----

// FST/FSTP/FIST/FISTP/FISTTP/FBSTP to memory or (FST/FSTP) to ST(i).
enum class StoreKind : u8 { Real, Int, IntTruncate, Bcd };

bool store(Cpu& cpu, const Insn& insn, StoreKind kind, bool pop)
{
    CPU_TRY(begin(cpu, insn));
    Stack s{cpu.s.fpu};
    if (!has_mem(insn)) {
        note_instruction(cpu, insn, false);
        const unsigned i = insn.op[0].reg;
        if (s.empty(0)) {
            if (!s.underflow())
                return true;
            s.set(i, F80_INDEFINITE);
        } else {
            s.set_c1(false);
            s.set(i, s.st(0));
        }
        if (pop)
            s.pop();
        return true;
    }
    const u64 ea = cpu.effective_address(insn);
    const unsigned size = insn.op[0].size;
    // AMD: the destination's faults (#GP, #SS, #AC, #PF) come before the
    // numeric ones: a store that an unmasked exception suppresses still
    // faults on an inaccessible operand (AMD EPYC host, cpu-difftest).
    // Intel: a store that an unmasked exception suppresses (stack underflow,
    // IE, DE, or OE/UE) does not touch memory, so it takes no #GP, #SS, #AC or
    // #PF (Intel host: "fault host=none" for every such FST/FSTP/FIST/FISTP/
    // FISTTP/FBSTP in difftest-seed1..6.txt, e.g. seed 1 cases 49473, 74773,
    // 120807, 148829). A store that happens faults before FSW changes on both.
    // (m80 is checked as 8-byte aligned, SDM Vol 3A Table 6-7.)
    const bool check_first = cpu.amd();
    if (check_first)
        CPU_TRY(probe_write(cpu, insn, ea, size, size > 8 ? 8 : size));
    FpEnv e = env_for(cpu);
    u8 bytes[10] = {};
    bool ok = true;
    const bool empty = s.empty(0);
    if (empty && !(cpu.s.fpu.fcw & fpx::IE)) {
        note_instruction(cpu, insn, true);
        s.underflow();
        return true;
    }
    const Float80 v = empty ? F80_INDEFINITE : s.st(0);
    if (empty) {
        // Masked stack underflow stores the indefinite of the destination format.
        switch (kind) {
        case StoreKind::Real:
            if (size == 4)
                put32(bytes, F32_INDEFINITE);
            else if (size == 8)
                put64(bytes, F64_INDEFINITE);
            else
                put_f80(bytes, F80_INDEFINITE);
            break;
        case StoreKind::Int:
        case StoreKind::IntTruncate:
            put64(bytes, size == 2 ? 0x8000 : size == 4 ? I32_INDEFINITE : 1ull << 63);
            break;
        case StoreKind::Bcd:
            bytes[7] = 0xC0;
            bytes[8] = bytes[9] = 0xFF;
            break;
        }
    } else {
        switch (kind) {
        case StoreKind::Real:
            if (size == 4) {
                u32 r;
                ok = f80_to_f32(e, v, r);
                put32(bytes, r);
            } else if (size == 8) {
                u64 r;
                ok = f80_to_f64(e, v, r);
                put64(bytes, r);
            } else {
                put_f80(bytes, v); // FSTP m80: the register as it is, no exceptions
            }
            break;
        case StoreKind::Int:
        case StoreKind::IntTruncate: {
            i64 r;
            ok = f80_to_int(e, v, size, kind == StoreKind::IntTruncate, r);
            put64(bytes, static_cast<u64>(r));
            break;
        }
        case StoreKind::Bcd:
            ok = f80_to_bcd(e, v, bytes);
            break;
        }
    }
    if (ok && kind == StoreKind::Bcd && cpu.intel()) {
        // Intel's FBSTP stores 8 bytes and then 2: when only the last two
        // fault, the first eight are written (Intel Xeon host, seed 10 case
        // 42045 `fbstp [rsi-0x53]` at 0x10020FF7, #PF at 0x10021000 with
        // 0x10020FF7..FFE written).
        CPU_TRY(probe_write(cpu, insn, ea, 8, 8));
        CPU_TRY(write_bytes(cpu, insn, ea, bytes, 8));
        CPU_TRY(write_bytes(cpu, insn, ea + 8, bytes + 8, 2));
    } else {
        if (ok && !check_first)
            CPU_TRY(probe_write(cpu, insn, ea, size, size > 8 ? 8 : size));
        if (ok)
            CPU_TRY(write_bytes(cpu, insn, ea, bytes, size));
    }
    note_instruction(cpu, insn, true);
    if (empty) {
        s.underflow();
    } else {
        s.commit(e);
    }
    if (ok && pop)
        s.pop();
    return true;
}

// ---- Environment and state images ----

bool real_mode_layout(const Cpu& cpu)
{
    return !cpu.s.protected_mode() || cpu.s.v86_mode();
}

// The full tag word as FNSTENV reports it: computed from the contents of
// every register that is not empty (SDM Vol 1 8.1.7).
u16 full_tags(const FpuState& f)
{
    u16 t = 0;
    for (unsigned p = 0; p < 8; ++p) {
        const unsigned tag =
            ((f.ftw >> (2 * p)) & 3) == TAG_EMPTY ? TAG_EMPTY : tag_for(to_f80(f.st[p]));
        t = static_cast<u16>(t | (tag << (2 * p)));
    }
    return t;
}

// Keeps only empty/non-empty from a loaded tag word and recomputes the rest.
void load_tags(FpuState& f, u16 tags)
{
    f.ftw = 0xFFFF;
    for (unsigned p = 0; p < 8; ++p)
        if (((tags >> (2 * p)) & 3) != TAG_EMPTY)
            f.ftw = static_cast<u16>((f.ftw & ~(3u << (2 * p))) |
                                     (tag_for(to_f80(f.st[p])) << (2 * p)));
}

// FNSTENV/FNSAVE environment (SDM Vol 1 Figures 8-9..8-12). Reserved
// halves read as ones, as the x87 writes them.
unsigned store_env(const Cpu& cpu, bool wide, u8* p)
{
    const FpuState& f = cpu.s.fpu;
    const bool real = real_mode_layout(cpu);
    const u32 ip = real ? static_cast<u32>((u32(f.fcs) << 4) + f.fip) : static_cast<u32>(f.fip);
    const u32 dp = real ? static_cast<u32>((u32(f.fds) << 4) + f.fdp) : static_cast<u32>(f.fdp);
    const u16 fop = f.fop & 0x7FF;
    if (wide) {
        put32(p + 0, 0xFFFF0000u | f.fcw);
        put32(p + 4, 0xFFFF0000u | f.fsw);
        put32(p + 8, 0xFFFF0000u | full_tags(f));
        if (real) {
            put32(p + 12, 0xFFFF0000u | (ip & 0xFFFF));
            put32(p + 16, ((ip >> 16) << 12) | fop);
            put32(p + 20, 0xFFFF0000u | (dp & 0xFFFF));
            put32(p + 24, (dp >> 16) << 12);
        } else {
            put32(p + 12, ip);
            put32(p + 16, f.fcs | (u32(fop) << 16));
            put32(p + 20, dp);
            put32(p + 24, 0xFFFF0000u | f.fds);
        }
        return 28;
    }
    put16(p + 0, f.fcw);
    put16(p + 2, f.fsw);
    put16(p + 4, full_tags(f));
    if (real) {
        put16(p + 6, static_cast<u16>(ip));
        put16(p + 8, static_cast<u16>(((ip >> 16) & 0xF) << 12 | fop));
        put16(p + 10, static_cast<u16>(dp));
        put16(p + 12, static_cast<u16>(((dp >> 16) & 0xF) << 12));
    } else {
        put16(p + 6, static_cast<u16>(ip));
        put16(p + 8, f.fcs);
        put16(p + 10, static_cast<u16>(dp));
        put16(p + 12, f.fds);
    }
    return 14;
}

// Loads the environment; tags are applied by the caller once registers are in.
unsigned load_env(Cpu& cpu, bool wide, const u8* p, u16& tags)
{
    FpuState& f = cpu.s.fpu;
    const bool real = real_mode_layout(cpu);
    if (wide) {
        f.fcw = static_cast<u16>((get16(p) & 0x1F3F) | 0x40);
        f.fsw = get16(p + 4);
        tags = get16(p + 8);
        if (real) {
            f.fip = (get32(p + 12) & 0xFFFF) | ((get32(p + 16) >> 12 & 0xFFFF) << 16);
            f.fop = get32(p + 16) & 0x7FF;
            f.fdp = (get32(p + 20) & 0xFFFF) | ((get32(p + 24) >> 12 & 0xFFFF) << 16);
            f.fcs = f.fds = 0;
        } else {
            f.fip = get32(p + 12);
            f.fcs = get16(p + 16);
            f.fop = (get32(p + 16) >> 16) & 0x7FF;
            f.fdp = get32(p + 20);
            f.fds = get16(p + 24);
        }
        return 28;
    }
    f.fcw = static_cast<u16>((get16(p) & 0x1F3F) | 0x40);
    f.fsw = get16(p + 2);
    tags = get16(p + 4);
    if (real) {
        f.fip = get16(p + 6) | (u64(get16(p + 8) >> 12) << 16);
        f.fop = get16(p + 8) & 0x7FF;
        f.fdp = get16(p + 10) | (u64(get16(p + 12) >> 12) << 16);
        f.fcs = f.fds = 0;
    } else {
        // This format has no opcode field: FOP reads as 0 after it (as on
        // the host CPU).
        f.fip = get16(p + 6);
        f.fcs = get16(p + 8);
        f.fop = 0;
        f.fdp = get16(p + 10);
        f.fds = get16(p + 12);
    }
    return 14;
}

void reset_fpu(FpuState& f)
{
    f.fcw = 0x037F;
    f.fsw = 0;
    f.ftw = 0xFFFF;
    f.fop = 0;
    f.fip = f.fdp = 0;
    f.fcs = f.fds = 0;
}

// FXSAVE/FXRSTOR obey CR0.EM/TS like x87 instructions (#NM), not the SSE
// rules the decoder tags them with (SDM Vol 2A FXSAVE: #NM on EM or TS).
bool check_fxsr_available(Cpu& cpu, const Insn& insn)
{
    Insn as_x87 = insn;
    as_x87.fpu_class = FPU_X87;
    return cpu.check_fpu_available(as_x87);
}

bool fxsave_linear_aligned(Cpu& cpu, const Insn& insn, u64 ea, bool write)
{
    u64 linear;
    CPU_TRY(cpu.segment_linear(insn.mem.seg, ea, 512, write, linear));
    if (linear & 15)
        return cpu.raise_gp(0);
    return true;
}

} // namespace

// ---------------------------------------------------------------------------
// Control instructions (no FIP/FOP update).

HANDLER(op_fninit)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    reset_fpu(cpu.s.fpu);
    cpu.update_ferr();
    return true;
}

HANDLER(op_fnclex)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    cpu.s.fpu.fsw &= 0x7F00; // clear exception flags, SF, ES and B
    cpu.update_ferr();
    return true;
}

HANDLER(op_fnstsw)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    if (insn.op[0].kind == OpKind::Gpr) {
        cpu.set_gpr(RAX, 2, cpu.s.fpu.fsw);
        return true;
    }
    return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), 2, cpu.s.fpu.fsw);
}

HANDLER(op_fnstcw)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), 2, cpu.s.fpu.fcw);
}

HANDLER(op_fldcw)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(check_pending(cpu)); // FLDCW waits (checked on hardware)
    u64 v;
    CPU_TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), 2, v));
    cpu.s.fpu.fcw = static_cast<u16>((v & 0x1F3F) | 0x40);
    update_es(cpu.s.fpu);
    cpu.update_ferr();
    return true;
}

HANDLER(op_fwait)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return check_pending(cpu);
}

HANDLER(op_fnop)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false);
    return true;
}

// FENI/FDISI (8087) and FSETPM (287): accepted and ignored, without
// waiting and without touching the instruction pointers.
HANDLER(op_fnop_legacy)
{
    return cpu.check_fpu_available(insn);
}

HANDLER(op_fnstenv)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    u8 buf[28];
    const unsigned len = store_env(cpu, insn.op[0].size != 14, buf);
    CPU_TRY(write_bytes(cpu, insn, cpu.effective_address(insn), buf, len));
    cpu.s.fpu.fcw |= fpx::ALL; // FNSTENV masks every exception afterwards
    update_es(cpu.s.fpu);
    cpu.update_ferr();
    return true;
}

HANDLER(op_fldenv)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(check_pending(cpu));
    const bool wide = insn.op[0].size != 14;
    u8 buf[28];
    CPU_TRY(read_env_area(cpu, insn, cpu.effective_address(insn), buf, wide ? 28 : 14, wide));
    u16 tags;
    load_env(cpu, wide, buf, tags);
    load_tags(cpu.s.fpu, tags);
    update_es(cpu.s.fpu);
    cpu.update_ferr();
    return true;
}

HANDLER(op_fnsave)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    const bool wide = insn.op[0].size != 94;
    u8 buf[108];
    unsigned len = store_env(cpu, wide, buf);
    const Stack s{cpu.s.fpu};
    for (unsigned i = 0; i < 8; ++i, len += 10)
        put_f80(buf + len, s.st(i));
    CPU_TRY(write_bytes(cpu, insn, cpu.effective_address(insn), buf, len));
    reset_fpu(cpu.s.fpu);
    cpu.update_ferr();
    return true;
}

HANDLER(op_frstor)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(check_pending(cpu));
    const bool wide = insn.op[0].size != 94;
    u8 buf[108];
    const unsigned len = wide ? 108 : 94;
    CPU_TRY(read_env_area(cpu, insn, cpu.effective_address(insn), buf, len, wide));
    u16 tags;
    const unsigned at = load_env(cpu, wide, buf, tags);
    Stack s{cpu.s.fpu};
    for (unsigned i = 0; i < 8; ++i) {
        const Float80 v = get_f80(buf + at + 10 * i);
        cpu.s.fpu.st[s.phys(i)] = X87Register{v.signif, v.sign_exp};
    }
    load_tags(cpu.s.fpu, tags);
    update_es(cpu.s.fpu);
    cpu.update_ferr();
    return true;
}

// The x87 part of an FXSAVE/XSAVE image (SDM Vol 1 Table 10-2/10-3): bytes
// 0-23 and 32-159. `wide` selects the 64-bit FIP/FDP form (REX.W).
void store_x87_image(const FpuState& f, bool wide, u8* b)
{
    put16(&b[0], f.fcw);
    put16(&b[2], f.fsw);
    u8 abridged = 0;
    for (unsigned p = 0; p < 8; ++p)
        if (((f.ftw >> (2 * p)) & 3) != TAG_EMPTY)
            abridged = static_cast<u8>(abridged | (1u << p));
    b[4] = abridged;
    b[5] = 0;
    put16(&b[6], f.fop & 0x7FF);
    if (wide) {
        put64(&b[8], f.fip);
        put64(&b[16], f.fdp);
    } else {
        put32(&b[8], static_cast<u32>(f.fip));
        put16(&b[12], f.fcs);
        put16(&b[14], 0);
        put32(&b[16], static_cast<u32>(f.fdp));
        put16(&b[20], f.fds);
        put16(&b[22], 0);
    }
    const unsigned top = (f.fsw >> 11) & 7;
    for (unsigned i = 0; i < 8; ++i) {
        std::memset(&b[32 + 16 * i], 0, 16);
        put_f80(&b[32 + 16 * i], to_f80(f.st[(top + i) & 7]));
    }
}

void load_x87_image(FpuState& f, bool wide, const u8* b)
{
    f.fcw = static_cast<u16>((get16(&b[0]) & 0x1F3F) | 0x40);
    f.fsw = get16(&b[2]);
    f.fop = get16(&b[6]) & 0x7FF;
    if (wide) {
        f.fip = get64(&b[8]);
        f.fdp = get64(&b[16]);
    } else {
        f.fip = get32(&b[8]);
        f.fcs = get16(&b[12]);
        f.fdp = get32(&b[16]);
        f.fds = get16(&b[20]);
    }
    Stack s{f};
    for (unsigned i = 0; i < 8; ++i) {
        const Float80 v = get_f80(&b[32 + 16 * i]);
        f.st[s.phys(i)] = X87Register{v.signif, v.sign_exp};
    }
    u16 tags = 0;
    for (unsigned p = 0; p < 8; ++p)
        if (!(b[4] & (1u << p)))
            tags = static_cast<u16>(tags | (TAG_EMPTY << (2 * p)));
    load_tags(f, tags);
    update_es(f);
}

void init_x87_state(FpuState& f)
{
    reset_fpu(f);
    f.st = {};
}

bool x87_in_init_state(const FpuState& f)
{
    if (f.fcw != 0x037F || f.fsw != 0 || f.ftw != 0xFFFF || f.fop != 0 || f.fip != 0 ||
        f.fdp != 0 || f.fcs != 0 || f.fds != 0)
        return false;
    for (const X87Register& r : f.st)
        if (r.mantissa != 0 || r.sign_exponent != 0)
            return false;
    return true;
}

bool read_fpu_block(Cpu& cpu, const Insn& insn, u64 ea, u8* out, unsigned len)
{
    return read_bytes(cpu, insn, ea, out, len);
}

bool write_fpu_block(Cpu& cpu, const Insn& insn, u64 ea, const u8* in, unsigned len)
{
    return write_bytes(cpu, insn, ea, in, len);
}

bool probe_fpu_block_write(Cpu& cpu, const Insn& insn, u64 ea, unsigned len)
{
    return probe_write(cpu, insn, ea, len);
}

// FXSAVE/FXSAVE64 (SDM Vol 1 Table 10-2/10-3).
HANDLER(op_fxsave)
{
    CPU_TRY(check_fxsr_available(cpu, insn));
    const u64 ea = cpu.effective_address(insn);
    CPU_TRY(fxsave_linear_aligned(cpu, insn, ea, true));
    const FpuState& f = cpu.s.fpu;
    std::array<u8, 416> b{};
    store_x87_image(f, insn.prefixes & pfx::REX_W, b.data());
    put32(&b[24], f.mxcsr);
    put32(&b[28], mxcsr::WRITABLE); // MXCSR_MASK (SDM Vol 1 11.6.6)
    const unsigned xmm_count = cpu.s.in_64bit_code() ? 16 : 8;
    for (unsigned i = 0; i < xmm_count; ++i) {
        put64(&b[160 + 16 * i], f.xmm[i][0]);
        put64(&b[168 + 16 * i], f.xmm[i][1]);
    }
    return write_bytes(cpu, insn, ea, b.data(), 160 + 16 * xmm_count);
}

HANDLER(op_fxrstor)
{
    CPU_TRY(check_fxsr_available(cpu, insn));
    const u64 ea = cpu.effective_address(insn);
    CPU_TRY(fxsave_linear_aligned(cpu, insn, ea, false));
    const unsigned xmm_count = cpu.s.in_64bit_code() ? 16 : 8;
    std::array<u8, 416> b{};
    CPU_TRY(read_bytes(cpu, insn, ea, b.data(), 160 + 16 * xmm_count));
    const u32 mxcsr = get32(&b[24]);
    if (mxcsr & ~mxcsr::WRITABLE)
        return cpu.raise_gp(0);
    FpuState& f = cpu.s.fpu;
    load_x87_image(f, insn.prefixes & pfx::REX_W, b.data());
    f.mxcsr = mxcsr;
    for (unsigned i = 0; i < xmm_count; ++i) {
        f.xmm[i][0] = get64(&b[160 + 16 * i]);
        f.xmm[i][1] = get64(&b[168 + 16 * i]);
    }
    cpu.update_ferr();
    return true;
}

// ---------------------------------------------------------------------------
// Loads.

HANDLER(op_fld)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    Stack s{cpu.s.fpu};
    FpEnv e = env_for(cpu);
    Float80 v = F80_INDEFINITE;
    bool ok = true, src_empty = false;
    const bool mem = has_mem(insn);
    if (mem) {
        CPU_TRY(load_operand(cpu, insn, MemType::Real, e, v, ok));
    } else {
        src_empty = s.empty(insn.op[0].reg);
        v = s.st(insn.op[0].reg);
    }
    note_instruction(cpu, insn, mem);
    if (src_empty) { // checked before overflow (as the host does)
        if (s.underflow())
            s.push(F80_INDEFINITE);
        return true;
    }
    if (!s.empty(7)) {
        if (s.overflow())
            s.push(F80_INDEFINITE);
        return true;
    }
    s.commit(e);
    if (ok)
        s.push(v);
    return true;
}

namespace {

bool load_int_or_bcd(Cpu& cpu, const Insn& insn)
{
    CPU_TRY(begin(cpu, insn));
    Stack s{cpu.s.fpu};
    FpEnv e = env_for(cpu);
    Float80 v;
    bool ok;
    CPU_TRY(load_operand(cpu, insn, MemType::Int, e, v, ok));
    note_instruction(cpu, insn, true);
    if (!s.empty(7)) {
        if (s.overflow())
            s.push(F80_INDEFINITE);
        return true;
    }
    s.set_c1(false);
    s.push(v);
    return true;
}

bool load_constant(Cpu& cpu, const Insn& insn, FpConstant c)
{
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false, static_cast<u8>(c)); // D9 E8+c
    Stack s{cpu.s.fpu};
    if (!s.empty(7)) {
        if (s.overflow())
            s.push(F80_INDEFINITE);
        return true;
    }
    s.set_c1(false);
    s.push(f80_constant(c, (cpu.s.fpu.fcw >> 10) & 3));
    return true;
}

} // namespace

HANDLER(op_fild)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return load_int_or_bcd(cpu, insn);
}

HANDLER(op_fbld)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return load_int_or_bcd(cpu, insn);
}

HANDLER(op_fld1)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return load_constant(cpu, insn, FpConstant::One);
}
HANDLER(op_fldl2t)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return load_constant(cpu, insn, FpConstant::L2T);
}
HANDLER(op_fldl2e)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return load_constant(cpu, insn, FpConstant::L2E);
}
HANDLER(op_fldpi)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return load_constant(cpu, insn, FpConstant::Pi);
}
HANDLER(op_fldlg2)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return load_constant(cpu, insn, FpConstant::LG2);
}
HANDLER(op_fldln2)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return load_constant(cpu, insn, FpConstant::LN2);
}
HANDLER(op_fldz)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return load_constant(cpu, insn, FpConstant::Zero);
}

// ---------------------------------------------------------------------------
// Stores.

HANDLER(op_fst)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return store(cpu, insn, StoreKind::Real, false);
}
HANDLER(op_fstp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return store(cpu, insn, StoreKind::Real, true);
}
// FSTP1 (D9 D8+i): FSTP ST(i) without the empty check: the register is
// copied whatever its tag, and no stack fault is reported.
HANDLER(op_fstpnce)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false);
    Stack s{cpu.s.fpu};
    const unsigned i = insn.op[0].reg;
    if (!s.empty(0)) // an empty ST(0) leaves ST(i) as it was
        s.set(i, s.st(0));
    s.set_c1(false);
    s.pop();
    return true;
}

HANDLER(op_fist)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return store(cpu, insn, StoreKind::Int, false);
}
HANDLER(op_fistp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return store(cpu, insn, StoreKind::Int, true);
}
HANDLER(op_fisttp)
{
    // An x87 instruction (SSE3 by CPUID only): x87 #NM rules, no OSFXSR.
    CPU_TRY(check_fxsr_available(cpu, insn));
    return store(cpu, insn, StoreKind::IntTruncate, true);
}
HANDLER(op_fbstp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return store(cpu, insn, StoreKind::Bcd, true);
}

// ---------------------------------------------------------------------------
// Arithmetic.

HANDLER(op_fadd)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::Add, false, MemType::Real);
}
HANDLER(op_faddp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::Add, true, MemType::Real);
}
HANDLER(op_fiadd)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::Add, false, MemType::Int);
}
HANDLER(op_fsub)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::Sub, false, MemType::Real);
}
HANDLER(op_fsubp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::Sub, true, MemType::Real);
}
HANDLER(op_fisub)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::Sub, false, MemType::Int);
}
HANDLER(op_fsubr)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::SubR, false, MemType::Real);
}
HANDLER(op_fsubrp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::SubR, true, MemType::Real);
}
HANDLER(op_fisubr)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::SubR, false, MemType::Int);
}
HANDLER(op_fmul)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::Mul, false, MemType::Real);
}
HANDLER(op_fmulp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::Mul, true, MemType::Real);
}
HANDLER(op_fimul)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::Mul, false, MemType::Int);
}
HANDLER(op_fdiv)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::Div, false, MemType::Real);
}
HANDLER(op_fdivp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::Div, true, MemType::Real);
}
HANDLER(op_fidiv)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::Div, false, MemType::Int);
}
HANDLER(op_fdivr)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::DivR, false, MemType::Real);
}
HANDLER(op_fdivrp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::DivR, true, MemType::Real);
}
HANDLER(op_fidivr)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return arith(cpu, insn, Arith::DivR, false, MemType::Int);
}

HANDLER(op_fchs)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return unary(cpu, insn, 0, [](FpEnv&, Float80 a, Float80& r) {
        r = with_sign(a, !a.sign());
        return true;
    });
}

HANDLER(op_fabs)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return unary(cpu, insn, 1, [](FpEnv&, Float80 a, Float80& r) {
        r = with_sign(a, false);
        return true;
    });
}

HANDLER(op_fsqrt)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return unary(cpu, insn, 2, [](FpEnv& e, Float80 a, Float80& r) {
        e.use_pc = true;
        return f80_sqrt(e, a, r);
    });
}

HANDLER(op_frndint)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return unary(cpu, insn, 4,
                 [](FpEnv& e, Float80 a, Float80& r) { return f80_round_to_int(e, a, r); });
}

HANDLER(op_f2xm1)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return unary(cpu, insn, 0, [](FpEnv& e, Float80 a, Float80& r) { return f80_f2xm1(e, a, r); });
}

HANDLER(op_fscale)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false, 5);
    Stack s{cpu.s.fpu};
    if (s.empty(0) || s.empty(1)) {
        if (s.underflow())
            s.set(0, F80_INDEFINITE);
        return true;
    }
    FpEnv e = env_for(cpu);
    Float80 r;
    const bool ok = f80_scale(e, s.st(0), s.st(1), r);
    s.commit(e);
    if (ok)
        s.set(0, r);
    return true;
}

HANDLER(op_fxtract)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false, 4);
    Stack s{cpu.s.fpu};
    if (push_pair_faults(s, false))
        return true;
    FpEnv e = env_for(cpu);
    Float80 exponent, significand;
    const bool ok = f80_extract(e, s.st(0), exponent, significand);
    s.commit(e);
    if (ok) {
        s.set(0, exponent);
        s.push(significand);
    }
    return true;
}

namespace {

bool partial_remainder(Cpu& cpu, const Insn& insn, bool ieee)
{
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false, ieee ? 5 : 0); // D9 F5 / D9 F8
    Stack s{cpu.s.fpu};
    if (s.empty(0) || s.empty(1)) {
        s.set_cc(C2, 0);
        if (s.underflow())
            s.set(0, F80_INDEFINITE);
        return true;
    }
    FpEnv e = env_for(cpu);
    Float80 r;
    u8 q;
    bool partial;
    const bool ok = f80_rem(e, s.st(0), s.st(1), ieee, r, q, partial);
    s.raise(e.flags);
    if (!ok) {
        s.set_cc(C1 | C2, 0); // unmasked exception: C0 and C3 stay
    } else if (is_nan(classify(r))) {
        s.set(0, r);
        s.set_cc(C1 | C2, 0); // a NaN result leaves C0 and C3 as they were
    } else if (ok) {
        s.set(0, r);
        // C2 = incomplete; C0, C3, C1 = quotient bits 2, 1, 0 (SDM Vol 2A FPREM).
        s.set_cc(CC_ALL, static_cast<u16>((partial ? C2 : 0) | ((q & 4) ? C0 : 0) |
                                          ((q & 2) ? C3 : 0) | ((q & 1) ? C1 : 0)));
    }
    return true;
}

} // namespace

HANDLER(op_fprem)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return partial_remainder(cpu, insn, false);
}

HANDLER(op_fprem1)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return partial_remainder(cpu, insn, true);
}

HANDLER(op_fyl2x)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return binary_pop(cpu, insn, 1, [](FpEnv& e, Float80 x, Float80 y, Float80& r) {
        return f80_yl2x(e, x, y, r);
    });
}

HANDLER(op_fyl2xp1)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return binary_pop(cpu, insn, 1, [](FpEnv& e, Float80 x, Float80 y, Float80& r) {
        return f80_yl2xp1(e, x, y, r);
    });
}

HANDLER(op_fpatan)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return binary_pop(cpu, insn, 3, [](FpEnv& e, Float80 x, Float80 y, Float80& r) {
        return f80_atan2(e, y, x, r);
    });
}

namespace {

enum class Trig : u8 { Sin, Cos };

bool sin_or_cos(Cpu& cpu, const Insn& insn, Trig which)
{
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false, which == Trig::Sin ? 6 : 7); // D9 FE / D9 FF
    Stack s{cpu.s.fpu};
    if (s.empty(0)) {
        s.set_cc(C2, 0);
        if (s.underflow())
            s.set(0, F80_INDEFINITE);
        return true;
    }
    FpEnv e = env_for(cpu);
    Float80 r;
    bool out_of_range;
    const bool ok = f80_sin_cos(e, s.st(0), which == Trig::Sin ? &r : nullptr,
                                which == Trig::Cos ? &r : nullptr, out_of_range);
    s.commit(e);
    s.set_cc(C2, out_of_range ? C2 : 0);
    if (ok && !out_of_range)
        s.set(0, r);
    return true;
}

} // namespace

HANDLER(op_fsin)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return sin_or_cos(cpu, insn, Trig::Sin);
}

HANDLER(op_fcos)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return sin_or_cos(cpu, insn, Trig::Cos);
}

HANDLER(op_fsincos)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false, 3);
    Stack s{cpu.s.fpu};
    if (push_pair_faults(s, true))
        return true;
    FpEnv e = env_for(cpu);
    Float80 sn, cs;
    bool out_of_range;
    const bool ok = f80_sin_cos(e, s.st(0), &sn, &cs, out_of_range);
    s.commit(e);
    s.set_cc(C2, out_of_range ? C2 : 0);
    if (ok && !out_of_range) {
        s.set(0, sn);
        s.push(cs);
    }
    return true;
}

HANDLER(op_fptan)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false, 2);
    Stack s{cpu.s.fpu};
    if (push_pair_faults(s, true))
        return true;
    FpEnv e = env_for(cpu);
    Float80 t;
    bool out_of_range;
    const bool ok = f80_tan(e, s.st(0), t, out_of_range);
    s.commit(e);
    s.set_cc(C2, out_of_range ? C2 : 0);
    if (ok && !out_of_range) {
        s.set(0, t);
        s.push(F80_ONE);
    }
    return true;
}

// ---------------------------------------------------------------------------
// Comparisons and classification.

HANDLER(op_fcom)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, false, 0,
                   has_mem(insn) ? CompareSource::Memory : CompareSource::Register, false);
}
HANDLER(op_fcomp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, false, 1,
                   has_mem(insn) ? CompareSource::Memory : CompareSource::Register, false);
}
HANDLER(op_fcompp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, false, 2, CompareSource::Register, false, 1);
}
HANDLER(op_fucom)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, true, 0, CompareSource::Register, false);
}
HANDLER(op_fucomp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, true, 1, CompareSource::Register, false);
}
HANDLER(op_fucompp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, true, 2, CompareSource::Register, false, 1);
}
HANDLER(op_ficom)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, false, 0, CompareSource::Integer, false);
}
HANDLER(op_ficomp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, false, 1, CompareSource::Integer, false);
}
HANDLER(op_fcomi)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, false, 0, CompareSource::Register, true);
}
HANDLER(op_fcomip)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, false, 1, CompareSource::Register, true);
}
HANDLER(op_fucomi)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, true, 0, CompareSource::Register, true);
}
HANDLER(op_fucomip)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, true, 1, CompareSource::Register, true);
}
HANDLER(op_ftst)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    return compare(cpu, insn, false, 0, CompareSource::Zero, false, 4);
}

HANDLER(op_fxam)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false, 5);
    Stack s{cpu.s.fpu};
    const Float80 v = s.st(0);
    u16 cc = v.sign() ? C1 : 0; // C1 is the sign even for an empty register
    if (s.empty(0)) {
        cc |= C3 | C0;
    } else {
        switch (classify(v)) {
        case FpClass::Unsupported:
            break;
        case FpClass::QNaN:
        case FpClass::SNaN:
            cc |= C0;
            break;
        case FpClass::Normal:
            cc |= C2;
            break;
        case FpClass::Infinity:
            cc |= C2 | C0;
            break;
        case FpClass::Zero:
            cc |= C3;
            break;
        case FpClass::Denormal:
            cc |= C3 | C2;
            break;
        }
    }
    s.set_cc(CC_ALL, cc);
    return true;
}

// FCMOVcc: DA /0..3 = B, E, BE, U; DB /0..3 = NB, NE, NBE, NU.
HANDLER(op_fcmovcc)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false);
    Stack s{cpu.s.fpu};
    const unsigned src = insn.op[1].reg;
    if (s.empty(0) || s.empty(src)) {
        // Hardware writes the indefinite whatever the condition.
        if (s.underflow())
            s.set(0, F80_INDEFINITE);
        return true;
    }
    const u64 fl = cpu.rflags();
    bool cond = false;
    switch (insn.modrm_reg & 3) {
    case 0:
        cond = fl & rf::CF;
        break;
    case 1:
        cond = fl & rf::ZF;
        break;
    case 2:
        cond = fl & (rf::CF | rf::ZF);
        break;
    default:
        cond = fl & rf::PF;
        break;
    }
    if ((insn.opcode & 7) == 3)
        cond = !cond;
    if (cond)
        s.set(0, s.st(src));
    return true;
}

// ---------------------------------------------------------------------------
// Stack management.

HANDLER(op_fxch)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false);
    Stack s{cpu.s.fpu};
    const unsigned i = insn.operand_count ? insn.op[0].reg : 1;
    if (s.empty(0) || s.empty(i)) {
        if (!s.underflow())
            return true;
        if (s.empty(0))
            s.set(0, F80_INDEFINITE);
        if (s.empty(i))
            s.set(i, F80_INDEFINITE);
    } else {
        s.set_c1(false);
    }
    const Float80 a = s.st(0), b = s.st(i);
    s.set(0, b);
    s.set(i, a);
    return true;
}

HANDLER(op_ffree)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false);
    Stack s{cpu.s.fpu};
    s.set_tag_phys(s.phys(insn.op[0].reg), TAG_EMPTY);
    s.set_c1(false);
    return true;
}

HANDLER(op_ffreep)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false);
    Stack s{cpu.s.fpu};
    s.set_tag_phys(s.phys(insn.op[0].reg), TAG_EMPTY);
    s.set_c1(false);
    s.pop();
    return true;
}

HANDLER(op_fincstp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false, 7);
    Stack s{cpu.s.fpu};
    s.set_c1(false);
    s.set_top(s.top() + 1);
    return true;
}

HANDLER(op_fdecstp)
{
    CPU_TRY(cpu.check_fpu_available(insn));
    CPU_TRY(begin(cpu, insn));
    note_instruction(cpu, insn, false, 6);
    Stack s{cpu.s.fpu};
    s.set_c1(false);
    s.set_top(s.top() - 1);
    return true;
}
