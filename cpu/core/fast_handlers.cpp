// Specialized handlers for the instruction forms that dominate real code
// (MOV, MOVZX, LEA and the two-operand ALU instructions on 32/64-bit
// registers). The generic handlers test every operand's kind at run time;
// these are chosen once, when a block is decoded, for one operand shape and
// size, so executing them is a few loads and stores. Each does exactly what
// its generic handler does for that shape (same faults, same lazy flags).
#include "cpu/core/fast_handlers.h"

#include "cpu/decoder/handler_table.h"
#include "cpu/core/handlers.h"

#include <Zydis/Zydis.h>

#include <unordered_map>

namespace {

bool is_wide_gpr(const Operand& op)
{
    return op.kind == OpKind::Gpr && (op.size == 4 || op.size == 8);
}

template <unsigned Size>
u64 truncate(u64 v)
{
    return Size == 8 ? v : v & 0xFFFFFFFF;
}

// ---- MOV ----

template <unsigned Size>
bool mov_reg_reg(Cpu& cpu, const Insn& insn)
{
    cpu.s.gpr[insn.op[0].reg] = truncate<Size>(cpu.s.gpr[insn.op[1].reg]);
    return true;
}

template <unsigned Size>
bool mov_reg_imm(Cpu& cpu, const Insn& insn)
{
    cpu.s.gpr[insn.op[0].reg] = truncate<Size>(insn.imm);
    return true;
}

template <unsigned Size>
bool mov_reg_mem(Cpu& cpu, const Insn& insn)
{
    u64 v;
    CPU_TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), Size, v));
    cpu.s.gpr[insn.op[0].reg] = v;
    return true;
}

template <unsigned Size>
bool mov_mem_reg(Cpu& cpu, const Insn& insn)
{
    return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), Size,
                         cpu.s.gpr[insn.op[1].reg] & size_mask(Size));
}

template <unsigned Size>
bool mov_mem_imm(Cpu& cpu, const Insn& insn)
{
    return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), Size, insn.imm & size_mask(Size));
}

// MOVZX r32/r64, r/m8 or r/m16 (SrcSize is the source's size).
template <unsigned SrcSize>
bool movzx_reg_mem(Cpu& cpu, const Insn& insn)
{
    u64 v;
    CPU_TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), SrcSize, v));
    cpu.s.gpr[insn.op[0].reg] = v;
    return true;
}

template <unsigned SrcSize>
bool movzx_reg_reg(Cpu& cpu, const Insn& insn)
{
    cpu.s.gpr[insn.op[0].reg] = cpu.s.gpr[insn.op[1].reg] & size_mask(SrcSize);
    return true;
}

template <unsigned Size>
bool lea_reg(Cpu& cpu, const Insn& insn)
{
    cpu.s.gpr[insn.op[0].reg] = truncate<Size>(cpu.effective_address(insn));
    return true;
}

// ---- Jcc in 64-bit code (64-bit operand size: no truncation of the target) ----

template <unsigned CC>
bool jcc64(Cpu& cpu, const Insn& insn)
{
    if (cpu.condition(CC)) {
        const u64 target = cpu.next_rip + insn.imm;
        if (!cpu.is_canonical(target)) [[unlikely]]
            return cpu.raise_gp(0);
        cpu.next_rip = target;
        cpu.end_block();
    }
    return true;
}

template <unsigned... CC>
constexpr Handler JCC64[] = {jcc64<CC>...};
constexpr const Handler* jcc64_table()
{
    return JCC64<0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15>;
}

// ---- Shifts of a 32/64-bit register by an immediate ----

using Shift = FastShift;

// ByCl: the count is CL (the D3 forms) rather than the immediate.
template <Shift K, unsigned Size, bool ByCl>
bool shift_reg(Cpu& cpu, const Insn& insn)
{
    constexpr unsigned bits = Size * 8;
    const u64 mask = size_mask(Size);
    u64& reg = cpu.s.gpr[insn.op[0].reg];
    const u64 a = reg & mask;
    const u64 raw_count = ByCl ? cpu.s.gpr[RCX] : insn.imm;
    const unsigned count = static_cast<unsigned>(raw_count & (Size == 8 ? 0x3F : 0x1F));
    if (count == 0) {
        reg = a; // flags stay; a 32-bit destination is still zero-extended
        return true;
    }
    u64 r;
    bool cf, of;
    if constexpr (K == Shift::Shl) {
        r = (a << count) & mask;
        cf = (a >> (bits - count)) & 1;
        of = count > 1 && cpu.intel() ? intel_left_shift_of(a, bits) : ((r >> (bits - 1)) & 1) ^ cf;
    } else if constexpr (K == Shift::Shr) {
        r = a >> count;
        cf = (a >> (count - 1)) & 1;
        of = count == 1 || cpu.intel() ? (a >> (bits - 1)) & 1 : 0; // AMD: the last step's
    } else {
        const i64 sa = static_cast<i64>(sign_extend(a, Size));
        r = static_cast<u64>(sa >> count) & mask;
        cf = static_cast<u64>(sa >> (count - 1)) & 1;
        of = false;
    }
    reg = r;
    // AF: Intel's clear, AMD's set (alu.cpp shift_op).
    cpu.set_rflags_arith(zf_sf_pf(r, Size) | (cf ? rf::CF : 0) | (of ? rf::OF : 0) |
                         (cpu.amd() ? rf::AF : 0));
    return true;
}

template <Shift K, bool ByCl>
Handler shift_for_size(unsigned size)
{
    return size == 8 ? shift_reg<K, 8, ByCl> : shift_reg<K, 4, ByCl>;
}

template <bool ByCl>
Handler shift_for(ZydisMnemonic m, unsigned size)
{
    switch (m) {
    case ZYDIS_MNEMONIC_SHL: return shift_for_size<Shift::Shl, ByCl>(size);
    case ZYDIS_MNEMONIC_SHR: return shift_for_size<Shift::Shr, ByCl>(size);
    case ZYDIS_MNEMONIC_SAR: return shift_for_size<Shift::Sar, ByCl>(size);
    default: return nullptr;
    }
}

// ---- IMUL r32/r64, r/m (two operands) or r/m, imm (three operands) ----

template <unsigned Size, bool ThreeOperands, bool FromMem>
bool imul_reg(Cpu& cpu, const Insn& insn)
{
    u64 va, vb;
    const unsigned src = ThreeOperands ? 1 : 0;
    if constexpr (ThreeOperands)
        vb = insn.imm;
    else if constexpr (FromMem)
        CPU_TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), Size, vb));
    else
        vb = cpu.s.gpr[insn.op[1].reg];
    if constexpr (ThreeOperands && FromMem)
        CPU_TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), Size, va));
    else
        va = cpu.s.gpr[insn.op[src].reg];
    const i64 a = static_cast<i64>(sign_extend(va & size_mask(Size), Size));
    const i64 b = static_cast<i64>(sign_extend(vb & size_mask(Size), Size));
    const __int128 p = static_cast<__int128>(a) * static_cast<__int128>(b);
    const u64 lo = static_cast<u64>(p) & size_mask(Size);
    const bool overflow = p != static_cast<__int128>(static_cast<i64>(sign_extend(lo, Size)));
    cpu.s.gpr[insn.op[0].reg] = lo;
    cpu.set_rflags_arith(multiply_flags(cpu.rflags(), lo, Size, overflow, cpu.intel()));
    return true;
}

template <bool ThreeOperands, bool FromMem>
Handler imul_for_size(unsigned size)
{
    return size == 8 ? imul_reg<8, ThreeOperands, FromMem> : imul_reg<4, ThreeOperands, FromMem>;
}

Handler imul_for(const Insn& insn)
{
    const Operand& d = insn.op[0];
    const Operand& s = insn.op[1];
    if (!is_wide_gpr(d) || s.size != d.size || (s.kind != OpKind::Gpr && s.kind != OpKind::Mem))
        return nullptr;
    const bool mem = s.kind == OpKind::Mem;
    if (insn.operand_count == 2)
        return mem ? imul_for_size<false, true>(d.size) : imul_for_size<false, false>(d.size);
    if (insn.operand_count == 3 && insn.op[2].kind == OpKind::Imm)
        return mem ? imul_for_size<true, true>(d.size) : imul_for_size<true, false>(d.size);
    return nullptr;
}

// ---- INC/DEC of a 32/64-bit register ----

template <bool Inc, unsigned Size>
bool inc_dec_reg(Cpu& cpu, const Insn& insn)
{
    u64& reg = cpu.s.gpr[insn.op[0].reg];
    const u64 a = reg & size_mask(Size);
    const u64 r = (Inc ? a + 1 : a - 1) & size_mask(Size);
    reg = r;
    const u64 cf = cpu.lf.op == FlagOp::None ? (cpu.s.rflags & rf::CF) : cpu.rflags() & rf::CF;
    cpu.lf = LazyFlags{Inc ? FlagOp::Inc : FlagOp::Dec, static_cast<u8>(Size), r, a, 1, 0, cf};
    return true;
}

// ---- PUSH/POP of a 64-bit register in 64-bit code ----

bool push_reg64(Cpu& cpu, const Insn& insn)
{
    const u64 rsp = cpu.s.gpr[RSP] - 8;
    CPU_TRY(cpu.write_mem(SS, rsp, 8, cpu.s.gpr[insn.op[0].reg]));
    cpu.s.gpr[RSP] = rsp;
    return true;
}

bool pop_reg64(Cpu& cpu, const Insn& insn)
{
    const u64 rsp = cpu.s.gpr[RSP];
    u64 v;
    CPU_TRY(cpu.read_mem(SS, rsp, 8, v));
    cpu.s.gpr[RSP] = rsp + 8;
    cpu.s.gpr[insn.op[0].reg] = v; // after RSP: POP RSP loads the popped value
    return true;
}

// ---- Near CALL/RET/JMP in 64-bit code with 64-bit operand size ----

bool call_rel64(Cpu& cpu, const Insn& insn)
{
    const u64 target = cpu.next_rip + insn.imm;
    // A non-canonical target must fault only after the stack slot was checked
    // (its #PF comes first): the generic handler orders that.
    if (!cpu.is_canonical(target)) [[unlikely]]
        return op_call(cpu, insn);
    const u64 rsp = cpu.s.gpr[RSP] - 8;
    CPU_TRY(cpu.write_mem(SS, rsp, 8, cpu.next_rip));
    cpu.s.gpr[RSP] = rsp;
    cpu.next_rip = target;
    cpu.end_block();
    return true;
}

bool ret64(Cpu& cpu, const Insn& insn)
{
    (void)insn;
    const u64 rsp = cpu.s.gpr[RSP];
    u64 target;
    CPU_TRY(cpu.read_mem(SS, rsp, 8, target));
    if (!cpu.is_canonical(target)) [[unlikely]]
        return cpu.raise_gp(0); // RSP unchanged
    cpu.s.gpr[RSP] = rsp + 8;
    cpu.next_rip = target;
    cpu.end_block();
    return true;
}

bool jmp_rel64(Cpu& cpu, const Insn& insn)
{
    const u64 target = cpu.next_rip + insn.imm;
    if (!cpu.is_canonical(target)) [[unlikely]]
        return cpu.raise_gp(0);
    cpu.next_rip = target;
    cpu.end_block();
    return true;
}

// ---- Two-operand ALU with a register destination ----

using Alu = FastAlu;
using Src = FastSrc;

template <Alu K, Src S, unsigned Size>
bool alu_reg(Cpu& cpu, const Insn& insn)
{
    const u64 mask = size_mask(Size);
    const u64 a = cpu.s.gpr[insn.op[0].reg] & mask;
    u64 b;
    if constexpr (S == Src::Reg)
        b = cpu.s.gpr[insn.op[1].reg] & mask;
    else if constexpr (S == Src::Imm)
        b = insn.imm & mask;
    else {
        CPU_TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), Size, b));
    }
    u64 r;
    FlagOp op;
    switch (K) {
    case Alu::Add: r = a + b; op = FlagOp::Add; break;
    case Alu::Sub:
    case Alu::Cmp: r = a - b; op = FlagOp::Sub; break;
    case Alu::And:
    case Alu::Test: r = a & b; op = FlagOp::Logic; break;
    case Alu::Or: r = a | b; op = FlagOp::Logic; break;
    case Alu::Xor: r = a ^ b; op = FlagOp::Logic; break;
    }
    r &= mask;
    if constexpr (K != Alu::Cmp && K != Alu::Test) {
        u64& reg = cpu.s.gpr[insn.op[0].reg];
        reg = Size >= 4 ? r : (reg & ~mask) | r; // 8/16-bit destinations merge
    }
    cpu.lf = LazyFlags{op, static_cast<u8>(Size), r, a, b, 0, 0};
    return true;
}

// CMP/TEST with a memory first operand: read only, nothing written back.
template <Alu K, Src S, unsigned Size>
bool compare_mem(Cpu& cpu, const Insn& insn)
{
    static_assert(K == Alu::Cmp || K == Alu::Test);
    const u64 mask = size_mask(Size);
    u64 a;
    CPU_TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), Size, a));
    const u64 b = (S == Src::Reg ? cpu.s.gpr[insn.op[1].reg] : insn.imm) & mask;
    const u64 r = (K == Alu::Cmp ? a - b : a & b) & mask;
    cpu.lf = LazyFlags{K == Alu::Cmp ? FlagOp::Sub : FlagOp::Logic, static_cast<u8>(Size), r, a, b,
                       0, 0};
    return true;
}

template <Alu K, Src S>
Handler compare_mem_for_size(unsigned size)
{
    switch (size) {
    case 1: return compare_mem<K, S, 1>;
    case 2: return compare_mem<K, S, 2>;
    case 4: return compare_mem<K, S, 4>;
    case 8: return compare_mem<K, S, 8>;
    default: return nullptr;
    }
}

template <Alu K, Src S>
Handler alu_for_size(unsigned size)
{
    switch (size) {
    case 1: return alu_reg<K, S, 1>;
    case 2: return alu_reg<K, S, 2>;
    case 4: return alu_reg<K, S, 4>;
    case 8: return alu_reg<K, S, 8>;
    default: return nullptr;
    }
}

template <Src S>
Handler alu_for(ZydisMnemonic m, unsigned size)
{
    switch (m) {
    case ZYDIS_MNEMONIC_ADD: return alu_for_size<Alu::Add, S>(size);
    case ZYDIS_MNEMONIC_OR: return alu_for_size<Alu::Or, S>(size);
    case ZYDIS_MNEMONIC_AND: return alu_for_size<Alu::And, S>(size);
    case ZYDIS_MNEMONIC_SUB: return alu_for_size<Alu::Sub, S>(size);
    case ZYDIS_MNEMONIC_XOR: return alu_for_size<Alu::Xor, S>(size);
    case ZYDIS_MNEMONIC_CMP: return alu_for_size<Alu::Cmp, S>(size);
    case ZYDIS_MNEMONIC_TEST: return alu_for_size<Alu::Test, S>(size);
    default: return nullptr;
    }
}

Handler mov_for(const Insn& insn)
{
    const Operand& d = insn.op[0];
    const Operand& s = insn.op[1];
    // MOV r/m64, imm32 (REX.W C7) has a 4-byte immediate, which the decoder
    // has sign-extended into Insn::imm as the instruction does: it is the
    // same MOV as one with an immediate of the destination's size.
    const bool same_size = s.size == d.size || (s.kind == OpKind::Imm && s.size < d.size);
    if (is_wide_gpr(d) && same_size) {
        const bool q = d.size == 8;
        if (s.kind == OpKind::Gpr)
            return q ? mov_reg_reg<8> : mov_reg_reg<4>;
        if (s.kind == OpKind::Imm)
            return q ? mov_reg_imm<8> : mov_reg_imm<4>;
        if (s.kind == OpKind::Mem)
            return q ? mov_reg_mem<8> : mov_reg_mem<4>;
    }
    if (d.kind == OpKind::Mem && same_size) {
        if (s.kind == OpKind::Gpr) {
            switch (d.size) {
            case 1: return mov_mem_reg<1>;
            case 2: return mov_mem_reg<2>;
            case 4: return mov_mem_reg<4>;
            case 8: return mov_mem_reg<8>;
            default: return nullptr;
            }
        }
        if (s.kind == OpKind::Imm) {
            switch (d.size) {
            case 1: return mov_mem_imm<1>;
            case 2: return mov_mem_imm<2>;
            case 4: return mov_mem_imm<4>;
            case 8: return mov_mem_imm<8>;
            default: return nullptr;
            }
        }
    }
    return nullptr;
}

bool is_jcc(ZydisMnemonic m)
{
    switch (m) {
    case ZYDIS_MNEMONIC_JO: case ZYDIS_MNEMONIC_JNO: case ZYDIS_MNEMONIC_JB:
    case ZYDIS_MNEMONIC_JNB: case ZYDIS_MNEMONIC_JZ: case ZYDIS_MNEMONIC_JNZ:
    case ZYDIS_MNEMONIC_JBE: case ZYDIS_MNEMONIC_JNBE: case ZYDIS_MNEMONIC_JS:
    case ZYDIS_MNEMONIC_JNS: case ZYDIS_MNEMONIC_JP: case ZYDIS_MNEMONIC_JNP:
    case ZYDIS_MNEMONIC_JL: case ZYDIS_MNEMONIC_JNL: case ZYDIS_MNEMONIC_JLE:
    case ZYDIS_MNEMONIC_JNLE:
        return true;
    default:
        return false;
    }
}

Handler specialized(const Insn& insn, unsigned code_size)
{
    const auto m = static_cast<ZydisMnemonic>(insn.mnemonic);
    if (is_jcc(m) && code_size == 8 && insn.opsize == 8 && insn.operand_count == 1 &&
        insn.op[0].kind == OpKind::Rel)
        return jcc64_table()[insn.cc & 15];
    if (code_size == 8 && insn.opsize == 8) {
        const bool rel = insn.operand_count == 1 && insn.op[0].kind == OpKind::Rel;
        if (m == ZYDIS_MNEMONIC_CALL && rel)
            return call_rel64;
        if (m == ZYDIS_MNEMONIC_JMP && rel)
            return jmp_rel64;
        if (m == ZYDIS_MNEMONIC_RET && insn.opcode == 0xC3 && insn.operand_count == 0)
            return ret64;
    }
    if (insn.operand_count == 1 && is_wide_gpr(insn.op[0])) {
        const Operand& r = insn.op[0];
        const bool stack64 = code_size == 8 && insn.opsize == 8 && r.size == 8;
        switch (m) {
        case ZYDIS_MNEMONIC_INC: return r.size == 8 ? inc_dec_reg<true, 8> : inc_dec_reg<true, 4>;
        case ZYDIS_MNEMONIC_DEC: return r.size == 8 ? inc_dec_reg<false, 8> : inc_dec_reg<false, 4>;
        case ZYDIS_MNEMONIC_PUSH: return stack64 ? push_reg64 : nullptr;
        case ZYDIS_MNEMONIC_POP: return stack64 ? pop_reg64 : nullptr;
        default: return nullptr;
        }
    }
    if (m == ZYDIS_MNEMONIC_IMUL)
        return imul_for(insn);
    if (insn.operand_count != 2)
        return nullptr;
    const Operand& d = insn.op[0];
    const Operand& s = insn.op[1];
    switch (m) {
    case ZYDIS_MNEMONIC_MOV:
        return mov_for(insn);
    case ZYDIS_MNEMONIC_MOVZX:
        if (!is_wide_gpr(d) || (s.size != 1 && s.size != 2))
            return nullptr;
        if (s.kind == OpKind::Mem)
            return s.size == 1 ? movzx_reg_mem<1> : movzx_reg_mem<2>;
        if (s.kind == OpKind::Gpr)
            return s.size == 1 ? movzx_reg_reg<1> : movzx_reg_reg<2>;
        return nullptr;
    case ZYDIS_MNEMONIC_LEA:
        if (!is_wide_gpr(d) || s.kind != OpKind::Mem)
            return nullptr;
        return d.size == 8 ? lea_reg<8> : lea_reg<4>;
    default:
        break;
    }
    if (d.kind == OpKind::Mem && (m == ZYDIS_MNEMONIC_CMP || m == ZYDIS_MNEMONIC_TEST)) {
        const bool cmp = m == ZYDIS_MNEMONIC_CMP;
        if (s.kind == OpKind::Gpr && s.size == d.size)
            return cmp ? compare_mem_for_size<Alu::Cmp, Src::Reg>(d.size)
                       : compare_mem_for_size<Alu::Test, Src::Reg>(d.size);
        if (s.kind == OpKind::Imm)
            return cmp ? compare_mem_for_size<Alu::Cmp, Src::Imm>(d.size)
                       : compare_mem_for_size<Alu::Test, Src::Imm>(d.size);
        return nullptr;
    }
    // ALU on AL..R15B and AX..R15W (not AH..BH, which are GprHigh8).
    if (d.kind == OpKind::Gpr && (d.size == 1 || d.size == 2)) {
        if (s.kind == OpKind::Gpr && s.size == d.size)
            return alu_for<Src::Reg>(m, d.size);
        if (s.kind == OpKind::Imm)
            return alu_for<Src::Imm>(m, d.size);
        if (s.kind == OpKind::Mem && s.size == d.size)
            return alu_for<Src::Mem>(m, d.size);
        return nullptr;
    }
    if (!is_wide_gpr(d))
        return nullptr;
    if (s.kind == OpKind::Imm)
        if (Handler h = shift_for<false>(m, d.size))
            return h;
    if (s.kind == OpKind::Gpr && s.reg == RCX && s.size == 1)
        return shift_for<true>(m, d.size);
    if (s.kind == OpKind::Gpr && s.size == d.size)
        return alu_for<Src::Reg>(m, d.size);
    if (s.kind == OpKind::Imm)
        return alu_for<Src::Imm>(m, d.size);
    if (s.kind == OpKind::Mem && s.size == d.size)
        return alu_for<Src::Mem>(m, d.size);
    return nullptr;
}


// ---- Shapes for the block translator ----

using FormTable = std::unordered_map<Handler, FastForm>;

template <unsigned Size>
void add_mov_forms(FormTable& t)
{
    t[mov_mem_reg<Size>] = {FastKind::MovMemReg, Size};
    t[mov_mem_imm<Size>] = {FastKind::MovMemImm, Size};
    if constexpr (Size >= 4) {
        t[mov_reg_reg<Size>] = {FastKind::MovRegReg, Size};
        t[mov_reg_imm<Size>] = {FastKind::MovRegImm, Size};
        t[mov_reg_mem<Size>] = {FastKind::MovRegMem, Size};
        t[lea_reg<Size>] = {FastKind::Lea, Size};
    }
}

template <Alu K, unsigned Size>
void add_alu_forms(FormTable& t)
{
    t[alu_reg<K, Src::Reg, Size>] = {FastKind::Alu, Size, K, Src::Reg};
    t[alu_reg<K, Src::Imm, Size>] = {FastKind::Alu, Size, K, Src::Imm};
    t[alu_reg<K, Src::Mem, Size>] = {FastKind::Alu, Size, K, Src::Mem};
    if constexpr (K == Alu::Cmp || K == Alu::Test) {
        t[compare_mem<K, Src::Reg, Size>] = {FastKind::CompareMem, Size, K, Src::Reg};
        t[compare_mem<K, Src::Imm, Size>] = {FastKind::CompareMem, Size, K, Src::Imm};
    }
}

template <unsigned Size>
void add_alu_forms_of_size(FormTable& t)
{
    add_alu_forms<Alu::Add, Size>(t);
    add_alu_forms<Alu::Or, Size>(t);
    add_alu_forms<Alu::And, Size>(t);
    add_alu_forms<Alu::Sub, Size>(t);
    add_alu_forms<Alu::Xor, Size>(t);
    add_alu_forms<Alu::Cmp, Size>(t);
    add_alu_forms<Alu::Test, Size>(t);
}

template <unsigned Size>
void add_shift_and_imul_forms(FormTable& t)
{
    for (Shift k : {Shift::Shl, Shift::Shr, Shift::Sar}) {
        FastForm f{FastKind::ShiftImm, Size};
        f.shift = k;
        t[k == Shift::Shl ? shift_reg<Shift::Shl, Size, false>
          : k == Shift::Shr ? shift_reg<Shift::Shr, Size, false>
                            : shift_reg<Shift::Sar, Size, false>] = f;
        f.kind = FastKind::ShiftCl;
        t[k == Shift::Shl ? shift_reg<Shift::Shl, Size, true>
          : k == Shift::Shr ? shift_reg<Shift::Shr, Size, true>
                            : shift_reg<Shift::Sar, Size, true>] = f;
    }
    t[imul_reg<Size, false, false>] = {FastKind::Imul, Size, Alu::Add, Src::Reg, Shift::Shl, false};
    t[imul_reg<Size, false, true>] = {FastKind::Imul, Size, Alu::Add, Src::Mem, Shift::Shl, false};
    t[imul_reg<Size, true, false>] = {FastKind::Imul, Size, Alu::Add, Src::Reg, Shift::Shl, true};
    t[imul_reg<Size, true, true>] = {FastKind::Imul, Size, Alu::Add, Src::Mem, Shift::Shl, true};
}

const FormTable& form_table()
{
    static const FormTable table = [] {
        FormTable t;
        add_mov_forms<1>(t);
        add_mov_forms<2>(t);
        add_mov_forms<4>(t);
        add_mov_forms<8>(t);
        add_alu_forms_of_size<1>(t);
        add_alu_forms_of_size<2>(t);
        add_alu_forms_of_size<4>(t);
        add_alu_forms_of_size<8>(t);
        t[movzx_reg_reg<1>] = {FastKind::MovzxRegReg, 1};
        t[movzx_reg_reg<2>] = {FastKind::MovzxRegReg, 2};
        t[movzx_reg_mem<1>] = {FastKind::MovzxRegMem, 1};
        t[movzx_reg_mem<2>] = {FastKind::MovzxRegMem, 2};
        for (Handler h : JCC64<0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15>)
            t[h] = {FastKind::Jcc64, 8};
        t[jmp_rel64] = {FastKind::JmpRel64, 8};
        t[call_rel64] = {FastKind::CallRel64, 8};
        t[ret64] = {FastKind::Ret64, 8};
        t[push_reg64] = {FastKind::Push64, 8};
        t[pop_reg64] = {FastKind::Pop64, 8};
        add_shift_and_imul_forms<4>(t);
        add_shift_and_imul_forms<8>(t);
        for (unsigned size : {4u, 8u}) {
            FastForm inc{FastKind::IncDecReg, static_cast<u8>(size)};
            t[size == 8 ? inc_dec_reg<true, 8> : inc_dec_reg<true, 4>] = inc;
            inc.sbb = true;
            t[size == 8 ? inc_dec_reg<false, 8> : inc_dec_reg<false, 4>] = inc;
        }
        return t;
    }();
    return table;
}

bool is_cmov_between_wide_gprs(const Insn& insn)
{
    return insn.handler == op_cmovcc && insn.operand_count == 2 && is_wide_gpr(insn.op[0]) &&
           insn.op[1].kind == OpKind::Gpr && insn.op[1].size == insn.op[0].size &&
           insn.handler == handler_for(insn.mnemonic);
}

// Shapes of generic handlers the translator also emits.
FastForm generic_form_of(const Insn& insn)
{
    const Operand& d = insn.op[0];
    const Operand& s = insn.op[1];
    if (insn.handler == op_nop)
        return {FastKind::Nop};
    if (insn.handler == op_movsx && insn.operand_count == 2 && is_wide_gpr(d) && s.size < d.size &&
        (s.size == 1 || s.size == 2 || s.size == 4)) {
        if (s.kind == OpKind::Gpr)
            return {FastKind::MovsxReg, s.size};
        if (s.kind == OpKind::Mem)
            return {FastKind::MovsxMem, s.size};
    }
    if (insn.handler == op_setcc && insn.operand_count == 1 && d.kind == OpKind::Gpr && d.size == 1)
        return {FastKind::SetccReg, 1};
    if (insn.handler == op_not && insn.operand_count == 1 && d.kind == OpKind::Gpr)
        return {FastKind::NotReg, d.size};
    if ((insn.handler == op_adc || insn.handler == op_sbb) && insn.operand_count == 2 &&
        d.kind == OpKind::Gpr && ((s.kind == OpKind::Gpr && s.size == d.size) || s.kind == OpKind::Imm)) {
        FastForm f{FastKind::AdcSbbReg, d.size, Alu::Add, s.kind == OpKind::Imm ? Src::Imm : Src::Reg};
        f.sbb = insn.handler == op_sbb;
        return f;
    }
    const bool narrow_shift = insn.handler == op_shl || insn.handler == op_shr || insn.handler == op_sar;
    if (narrow_shift && insn.operand_count == 2 && d.kind == OpKind::Gpr && d.size <= 2 &&
        s.kind == OpKind::Imm) {
        // Counts of the operand's width or more (up to 31) are left to the handler.
        const unsigned count = static_cast<unsigned>(insn.imm & 0x1F);
        if (count == 0 || count >= d.size * 8u)
            return {};
        FastForm f{FastKind::ShiftImmNarrow, d.size};
        f.shift = insn.handler == op_shl ? Shift::Shl : insn.handler == op_shr ? Shift::Shr : Shift::Sar;
        return f;
    }
    if ((insn.handler == op_rol || insn.handler == op_ror) && insn.operand_count == 2 &&
        is_wide_gpr(d) && s.kind == OpKind::Imm) {
        FastForm f{FastKind::RotateImm, d.size};
        f.shift = insn.handler == op_rol ? Shift::Rol : Shift::Ror;
        return f;
    }
    // Read-modify-write ALU on memory (ADC/SBB and the compares are not here).
    if (insn.operand_count == 2 && d.kind == OpKind::Mem &&
        ((s.kind == OpKind::Gpr && s.size == d.size) || s.kind == OpKind::Imm)) {
        const Src src = s.kind == OpKind::Imm ? Src::Imm : Src::Reg;
        if (insn.handler == op_add) return {FastKind::AluMem, d.size, Alu::Add, src};
        if (insn.handler == op_or) return {FastKind::AluMem, d.size, Alu::Or, src};
        if (insn.handler == op_and) return {FastKind::AluMem, d.size, Alu::And, src};
        if (insn.handler == op_sub) return {FastKind::AluMem, d.size, Alu::Sub, src};
        if (insn.handler == op_xor) return {FastKind::AluMem, d.size, Alu::Xor, src};
    }
    // INC/DEC of memory: reference counts (LOCK INC/DEC; one thread runs
    // every vCPU, so the prefix changes nothing here).
    if ((insn.handler == op_inc || insn.handler == op_dec) && insn.operand_count >= 1 &&
        d.kind == OpKind::Mem) {
        FastForm f{FastKind::IncDecMem, d.size};
        f.sbb = insn.handler == op_dec;
        return f;
    }
    // The generic MOV between 8/16-bit registers, immediates and memory.
    if (insn.handler == handler_for(ZYDIS_MNEMONIC_MOV) && insn.operand_count == 2 &&
        d.kind == OpKind::Gpr && (d.size == 1 || d.size == 2)) {
        if (s.kind == OpKind::Gpr && s.size == d.size)
            return {FastKind::MovRegReg, d.size};
        if (s.kind == OpKind::Imm)
            return {FastKind::MovRegImm, d.size};
        if (s.kind == OpKind::Mem && s.size == d.size)
            return {FastKind::MovRegMem, d.size};
    }
    return {};
}

} // namespace

FastForm fast_form_of(const Insn& insn)
{
    if (is_cmov_between_wide_gprs(insn))
        return {FastKind::CmovRegReg, insn.op[0].size};
    if (FastForm f = generic_form_of(insn); f.kind != FastKind::None)
        return f;
    const FormTable& t = form_table();
    auto it = t.find(insn.handler);
    return it == t.end() ? FastForm{} : it->second;
}

void specialize_handler(Insn& insn, unsigned code_size)
{
    // Only instructions that decoded to their ordinary handler (not, say,
    // the #UD of a misplaced LOCK prefix).
    if (insn.handler != handler_for(insn.mnemonic))
        return;
    if (Handler h = specialized(insn, code_size))
        insn.handler = h;
}
