#include "cpu/jit/block_translator.h"

#include "cpu/core/cpu.h"
#include "cpu/core/fast_handlers.h"
#include "cpu/jit/code_arena.h"

#include <Zydis/Zydis.h>
#include <xbyak/xbyak.h>

#include <cstddef>
#include <type_traits>
#include <vector>

namespace {

using namespace Xbyak;
using namespace Xbyak::util;

// Called from translated code.
bool condition_of(Cpu* cpu, u64 cc) { return cpu->condition(static_cast<unsigned>(cc)); }
// ADC/SBB read CF as their handler does (which folds the lazy flags into RFLAGS).
bool carry_of(Cpu* cpu) { return cpu->flag(rf::CF); }
void materialize(Cpu* cpu) { cpu->materialize_flags(); }
void deliver_fault(Cpu* cpu) { cpu->handle_fault(); }

constexpr size_t MAX_BLOCK_CODE = 256 * 1024;

// The flag-setting instruction whose lazy flags a later Jcc/CMOVcc of the
// same block reads, when the translator knows it (no handler call between).
struct KnownFlags {
    bool known = false;
    FlagOp op = FlagOp::None;
    u8 size = 0;
};

FlagOp flag_op_of(FastAlu alu)
{
    switch (alu) {
    case FastAlu::Add: return FlagOp::Add;
    case FastAlu::Sub:
    case FastAlu::Cmp: return FlagOp::Sub;
    default: return FlagOp::Logic;
    }
}

bool fits_i32(i64 v) { return v == static_cast<i32>(v); }

// A near JMP, CALL or RET through its handler (an indirect one, or a RET
// that pops more): it changes RIP and the stack, not the CPL or the mode.
bool near_branch(const Insn& insn)
{
    switch (static_cast<ZydisMnemonic>(insn.mnemonic)) {
    case ZYDIS_MNEMONIC_JMP:
    case ZYDIS_MNEMONIC_CALL: {
        const u8 far_reg = insn.mnemonic == ZYDIS_MNEMONIC_JMP ? 5 : 3; // FF /5, FF /3: through m16:xx
        return insn.op[0].kind != OpKind::FarPtr &&
               !(insn.op[0].kind == OpKind::Mem && insn.opcode == 0xFF && insn.modrm_reg == far_reg);
    }
    case ZYDIS_MNEMONIC_RET:
        return insn.opcode == 0xC3 || insn.opcode == 0xC2;
    default:
        return false;
    }
}

// Instructions whose handler changes nothing the run loop checks between
// blocks (events, paging, mode, CPL, debug state) except through a device
// access, which the chain's compare of the device-access count catches:
// data movement, arithmetic, string instructions, atomics, the x87, MMX,
// SSE and AVX instructions, near branches, reads of system registers, and
// the few system instructions listed below. After one of these the block
// may still chain when no device was reached. Writes to segment, control
// and debug registers, POPF, port I/O and the like are not here.
bool chains_unless_device(const Insn& insn)
{
    if (near_branch(insn))
        return true;
    // Reading a segment, control or debug register changes nothing.
    const bool reads_system_register = insn.mnemonic == ZYDIS_MNEMONIC_MOV && insn.operand_count == 2 &&
                                       (insn.op[0].kind == OpKind::Gpr || insn.op[0].kind == OpKind::Mem);
    bool vector = false;
    for (unsigned k = 0; k < insn.operand_count; ++k)
        switch (insn.op[k].kind) {
        case OpKind::Seg: case OpKind::Cr: case OpKind::Dr:
            if (!reads_system_register)
                return false;
            break;
        case OpKind::FarPtr: case OpKind::Other:
            return false;
        case OpKind::X87: case OpKind::Mmx: case OpKind::Xmm: case OpKind::Ymm:
            vector = true;
            break;
        default:
            break;
        }
    if (vector)
        return true;
    switch (static_cast<ZydisMnemonic>(insn.mnemonic)) {
    case ZYDIS_MNEMONIC_MOV: case ZYDIS_MNEMONIC_MOVZX: case ZYDIS_MNEMONIC_MOVSX:
    case ZYDIS_MNEMONIC_MOVSXD: case ZYDIS_MNEMONIC_MOVBE: case ZYDIS_MNEMONIC_LEA:
    case ZYDIS_MNEMONIC_PUSH: case ZYDIS_MNEMONIC_POP: case ZYDIS_MNEMONIC_XCHG:
    case ZYDIS_MNEMONIC_XADD: case ZYDIS_MNEMONIC_CMPXCHG: case ZYDIS_MNEMONIC_CMPXCHG8B:
    case ZYDIS_MNEMONIC_CMPXCHG16B:
    case ZYDIS_MNEMONIC_ADD: case ZYDIS_MNEMONIC_OR: case ZYDIS_MNEMONIC_ADC: case ZYDIS_MNEMONIC_SBB:
    case ZYDIS_MNEMONIC_AND: case ZYDIS_MNEMONIC_SUB: case ZYDIS_MNEMONIC_XOR: case ZYDIS_MNEMONIC_CMP:
    case ZYDIS_MNEMONIC_TEST: case ZYDIS_MNEMONIC_INC: case ZYDIS_MNEMONIC_DEC: case ZYDIS_MNEMONIC_NEG:
    case ZYDIS_MNEMONIC_NOT: case ZYDIS_MNEMONIC_MUL: case ZYDIS_MNEMONIC_IMUL: case ZYDIS_MNEMONIC_DIV:
    case ZYDIS_MNEMONIC_IDIV: case ZYDIS_MNEMONIC_SHL: case ZYDIS_MNEMONIC_SHR: case ZYDIS_MNEMONIC_SAR:
    case ZYDIS_MNEMONIC_ROL: case ZYDIS_MNEMONIC_ROR: case ZYDIS_MNEMONIC_RCL: case ZYDIS_MNEMONIC_RCR:
    case ZYDIS_MNEMONIC_SHLD: case ZYDIS_MNEMONIC_SHRD: case ZYDIS_MNEMONIC_BT: case ZYDIS_MNEMONIC_BTS:
    case ZYDIS_MNEMONIC_BTR: case ZYDIS_MNEMONIC_BTC: case ZYDIS_MNEMONIC_BSF: case ZYDIS_MNEMONIC_BSR:
    case ZYDIS_MNEMONIC_TZCNT: case ZYDIS_MNEMONIC_LZCNT: case ZYDIS_MNEMONIC_POPCNT:
    case ZYDIS_MNEMONIC_BSWAP: case ZYDIS_MNEMONIC_CBW: case ZYDIS_MNEMONIC_CWDE: case ZYDIS_MNEMONIC_CDQE:
    case ZYDIS_MNEMONIC_CWD: case ZYDIS_MNEMONIC_CDQ: case ZYDIS_MNEMONIC_CQO:
    case ZYDIS_MNEMONIC_SETB: case ZYDIS_MNEMONIC_SETBE: case ZYDIS_MNEMONIC_SETL: case ZYDIS_MNEMONIC_SETLE:
    case ZYDIS_MNEMONIC_SETNB: case ZYDIS_MNEMONIC_SETNBE: case ZYDIS_MNEMONIC_SETNL:
    case ZYDIS_MNEMONIC_SETNLE: case ZYDIS_MNEMONIC_SETNO: case ZYDIS_MNEMONIC_SETNP:
    case ZYDIS_MNEMONIC_SETNS: case ZYDIS_MNEMONIC_SETNZ: case ZYDIS_MNEMONIC_SETO: case ZYDIS_MNEMONIC_SETP:
    case ZYDIS_MNEMONIC_SETS: case ZYDIS_MNEMONIC_SETZ:
    case ZYDIS_MNEMONIC_CMOVB: case ZYDIS_MNEMONIC_CMOVBE: case ZYDIS_MNEMONIC_CMOVL:
    case ZYDIS_MNEMONIC_CMOVLE: case ZYDIS_MNEMONIC_CMOVNB: case ZYDIS_MNEMONIC_CMOVNBE:
    case ZYDIS_MNEMONIC_CMOVNL: case ZYDIS_MNEMONIC_CMOVNLE: case ZYDIS_MNEMONIC_CMOVNO:
    case ZYDIS_MNEMONIC_CMOVNP: case ZYDIS_MNEMONIC_CMOVNS: case ZYDIS_MNEMONIC_CMOVNZ:
    case ZYDIS_MNEMONIC_CMOVO: case ZYDIS_MNEMONIC_CMOVP: case ZYDIS_MNEMONIC_CMOVS: case ZYDIS_MNEMONIC_CMOVZ:
    case ZYDIS_MNEMONIC_MOVSB: case ZYDIS_MNEMONIC_MOVSW: case ZYDIS_MNEMONIC_MOVSD: case ZYDIS_MNEMONIC_MOVSQ:
    case ZYDIS_MNEMONIC_STOSB: case ZYDIS_MNEMONIC_STOSW: case ZYDIS_MNEMONIC_STOSD: case ZYDIS_MNEMONIC_STOSQ:
    case ZYDIS_MNEMONIC_LODSB: case ZYDIS_MNEMONIC_LODSW: case ZYDIS_MNEMONIC_LODSD: case ZYDIS_MNEMONIC_LODSQ:
    case ZYDIS_MNEMONIC_CMPSB: case ZYDIS_MNEMONIC_CMPSW: case ZYDIS_MNEMONIC_CMPSD: case ZYDIS_MNEMONIC_CMPSQ:
    case ZYDIS_MNEMONIC_SCASB: case ZYDIS_MNEMONIC_SCASW: case ZYDIS_MNEMONIC_SCASD: case ZYDIS_MNEMONIC_SCASQ:
    case ZYDIS_MNEMONIC_ANDN: case ZYDIS_MNEMONIC_BEXTR: case ZYDIS_MNEMONIC_BLSI: case ZYDIS_MNEMONIC_BLSR:
    case ZYDIS_MNEMONIC_BLSMSK: case ZYDIS_MNEMONIC_BZHI: case ZYDIS_MNEMONIC_PDEP: case ZYDIS_MNEMONIC_PEXT:
    case ZYDIS_MNEMONIC_RORX: case ZYDIS_MNEMONIC_SARX: case ZYDIS_MNEMONIC_SHLX: case ZYDIS_MNEMONIC_SHRX:
    case ZYDIS_MNEMONIC_MULX: case ZYDIS_MNEMONIC_ADCX: case ZYDIS_MNEMONIC_ADOX: case ZYDIS_MNEMONIC_CRC32:
    case ZYDIS_MNEMONIC_LAHF: case ZYDIS_MNEMONIC_SAHF: case ZYDIS_MNEMONIC_CLC: case ZYDIS_MNEMONIC_STC:
    case ZYDIS_MNEMONIC_CMC: case ZYDIS_MNEMONIC_CLD: case ZYDIS_MNEMONIC_STD: case ZYDIS_MNEMONIC_XLAT:
    case ZYDIS_MNEMONIC_NOP: case ZYDIS_MNEMONIC_ENDBR64: case ZYDIS_MNEMONIC_ENDBR32:
    case ZYDIS_MNEMONIC_LFENCE: case ZYDIS_MNEMONIC_MFENCE: case ZYDIS_MNEMONIC_SFENCE:
    case ZYDIS_MNEMONIC_PREFETCHT0: case ZYDIS_MNEMONIC_PREFETCHT1: case ZYDIS_MNEMONIC_PREFETCHT2:
    case ZYDIS_MNEMONIC_PREFETCHNTA: case ZYDIS_MNEMONIC_PREFETCHW:
    case ZYDIS_MNEMONIC_VZEROUPPER: case ZYDIS_MNEMONIC_VZEROALL: case ZYDIS_MNEMONIC_EMMS:
    case ZYDIS_MNEMONIC_LEAVE: case ZYDIS_MNEMONIC_PUSHF: case ZYDIS_MNEMONIC_PUSHFQ:
    // Interrupts off can make none deliverable; AC is checked after every
    // handler (emit_handler_call); FS/GS bases are read at each access;
    // PAUSE that yields ends the block; reading the clock arms nothing.
    case ZYDIS_MNEMONIC_CLI: case ZYDIS_MNEMONIC_CLAC: case ZYDIS_MNEMONIC_STAC:
    case ZYDIS_MNEMONIC_SWAPGS: case ZYDIS_MNEMONIC_RDFSBASE: case ZYDIS_MNEMONIC_RDGSBASE:
    case ZYDIS_MNEMONIC_WRFSBASE: case ZYDIS_MNEMONIC_WRGSBASE: case ZYDIS_MNEMONIC_PAUSE:
    case ZYDIS_MNEMONIC_RDTSC: case ZYDIS_MNEMONIC_RDTSCP: case ZYDIS_MNEMONIC_CPUID:
        return true;
    default:
        return false;
    }
}

// Registers, all callee-saved so handler calls keep them:
//   rbx = CpuState*, rbp = Cpu*, r12 = the soft-TLB half for the current CPL,
//   r13 = RIP at block entry, r14 = retired count at entry, r15 = the block
//   cache generation at entry.
class Emitter : public CodeGenerator {
public:
    // The stack frame below the six saved registers (see emit_prologue).
    static constexpr int FRAME_BYTES = 24;
    const void* chained_entry() const { return m_chained_entry.getAddress(); }
    Emitter(const Cpu& cpu, const Block& block, u8* where, size_t room)
        : CodeGenerator(room, where), m_block(block), m_layout(cpu.jit_layout()), m_intel(cpu.intel())
    {
        setDefaultJmpNEAR(true);
    }

    void emit_block();

private:
    const Block& m_block;
    Cpu::JitLayout m_layout;
    bool m_intel; // the model's vendor: Intel sets some undefined flags its own way
    std::vector<u32> m_offsets; // each instruction's byte offset from the block's RIP
    std::vector<Label> m_slow;  // per instruction: call its handler instead
    std::vector<Label> m_next;  // per instruction: the code after it
    std::vector<FastForm> m_forms; // per instruction, from fast_form_of
    std::vector<bool> m_native;    // per instruction: emitted natively (with a slow path)
    Label m_exit, m_fault, m_chain, m_chained_entry;
    KnownFlags m_flags;

    // ---- addressing of the vCPU's state ----
    Address gpr(unsigned r, unsigned size = 8)
    {
        const i32 off = m_layout.gpr + 8 * static_cast<i32>(r);
        switch (size) {
        case 1: return byte[rbx + off];
        case 2: return word[rbx + off];
        case 4: return dword[rbx + off];
        default: return qword[rbx + off];
        }
    }
    Address cpu_field(i32 off, unsigned size = 8)
    {
        switch (size) {
        case 1: return byte[rbp + off];
        default: return qword[rbp + off];
        }
    }
    static Reg sized(const Reg64& r, unsigned size)
    {
        switch (size) {
        case 1: return r.cvt8();
        case 2: return r.cvt16();
        case 4: return r.cvt32();
        default: return r;
        }
    }

    // Loads a register operand's low `size` bytes, zero-extended, into `to`.
    void load_gpr(const Reg64& to, unsigned reg, unsigned size)
    {
        switch (size) {
        case 1: movzx(to.cvt32(), gpr(reg, 1)); break;
        case 2: movzx(to.cvt32(), gpr(reg, 2)); break;
        case 4: mov(to.cvt32(), gpr(reg, 4)); break;
        default: mov(to, gpr(reg)); break;
        }
    }
    void load_imm(const Reg64& to, u64 value)
    {
        if (value <= 0xFFFFFFFFull)
            mov(to.cvt32(), static_cast<u32>(value));
        else
            mov(to, value);
    }
    // to &= size_mask(size)
    void truncate(const Reg64& r, unsigned size)
    {
        switch (size) {
        case 1: movzx(r.cvt32(), sized(r, 1)); break;
        case 2: movzx(r.cvt32(), sized(r, 2)); break;
        case 4: mov(r.cvt32(), r.cvt32()); break;
        default: break;
        }
    }

    void set_rip(i64 offset)
    {
        lea(rax, ptr[r13 + static_cast<i32>(offset)]);
        mov(qword[rbx + m_layout.rip], rax);
    }
    void set_retired(size_t count)
    {
        lea(rcx, ptr[r14 + static_cast<i32>(count)]);
        mov(cpu_field(m_layout.retired), rcx);
    }
    void call_function(const void* fn)
    {
        mov(rax, reinterpret_cast<u64>(fn));
        call(rax);
    }
    // r12 = the soft-TLB half that CPL selects (user when CPL = 3).
    void select_tlb_half()
    {
        mov(eax, dword[rbx + m_layout.ss_attr]);
        shr(eax, 5);
        and_(eax, 3);
        cmp(eax, 3);
        sete(al);
        movzx(eax, al);
        imul(eax, eax, m_layout.tlb_user - m_layout.tlb_supervisor);
        lea(r12, ptr[rbp + rax + m_layout.tlb_supervisor]);
    }

    // ---- pieces ----
    void emit_prologue();
    void emit_epilogue();
    void emit_chain();
    template <typename T>
    static i32 block_field(T Block::*member)
    {
        static const Block probe{};
        return static_cast<i32>(reinterpret_cast<const char*>(&(probe.*member)) -
                                reinterpret_cast<const char*>(&probe));
    }
    bool native(size_t i) const;
    void emit_insn(size_t i);
    void emit_handler_call(size_t i);
    bool emit_effective_address(const Insn& insn, size_t i); // -> rsi
    void emit_linear(const Insn& insn);                       // rsi += FS/GS base
    void emit_tlb_slot();                                     // rsi -> rax = VPN, rcx = slot offset
    void emit_tlb_hit(size_t tag, unsigned size, Label& miss);
    void emit_load(unsigned size, Label& miss);               // [rsi] -> rax
    void emit_load_operand(size_t i, unsigned size);          // insn i's memory operand -> rax
    void emit_store(unsigned size, const Reg64& value, Label& miss);
    // The lazy flags: result rcx, src1 rax, src2 rdx; carry_in (ADC/SBB) or
    // preserved_cf (INC/DEC) from r8 where `extra` says so, else 0.
    enum LazyExtra { NoExtra, CarryInR8, PreservedCfR8 };
    void emit_lazy_flags(FlagOp op, unsigned size, LazyExtra extra = NoExtra);
    void emit_condition(unsigned cc, Label& if_false);
    void emit_host_flags(FlagOp op, unsigned size);
    void emit_jump_unless(unsigned cc, Label& if_false);
    void emit_branch_exit(size_t i, i64 target_offset);
    void emit_canonical_check(const Reg64& target, Label& bad);
    void emit_exit_to_rax(size_t i);

    void emit_mov(size_t i, const FastForm& f);
    void emit_alu(size_t i, const FastForm& f);
    void emit_compare_mem(size_t i, const FastForm& f);
    void emit_cmov(size_t i, const FastForm& f);
    void emit_jcc(size_t i);
    void emit_set_arith_flags(); // RFLAGS' six arithmetic flags = rcx, lazy flags off
    void emit_shift(size_t i, const FastForm& f);
    void emit_shift_by_cl(size_t i, const FastForm& f);
    void emit_shift_flags(unsigned reg, FastShift shift);
    void emit_shift_flags_of_result(FastShift shift);
    // Whether OF is taken from the source before the shift (in edx) rather
    // than from the result: SHR's (the source's MSB), and the Intel model's
    // SHL's (the source's top two bits differ: the first one-bit step's OF,
    // which is the SDM's for a count of 1 and Intel's for any other).
    bool of_from_source(FastShift shift) const
    {
        return shift == FastShift::Shr || (shift == FastShift::Shl && m_intel);
    }
    // The host shift of rax's low `size` bytes by `count` (an immediate or
    // CL), with OF taken from the source put in edx first.
    template <typename Count>
    void emit_host_shift(FastShift shift, unsigned size, Count count)
    {
        const Reg a = sized(rax, size);
        bool amd_shr_past_one = false; // AMD's OF is the last step's: 0
        if constexpr (std::is_integral_v<Count>)
            amd_shr_past_one = shift == FastShift::Shr && !m_intel && count > 1;
        if (amd_shr_past_one) {
            xor_(edx, edx);
        } else if (shift == FastShift::Shr) {
            mov(rdx, rax);
            shr(rdx, size * 8 - 1);
            shl(edx, 11);
        } else if (of_from_source(shift)) {
            mov(rdx, rax);
            shr(rdx, size * 8 - 2); // the top two bits
            mov(r8, rdx);
            shr(r8, 1);
            xor_(edx, r8d);
            and_(edx, 1);
            shl(edx, 11);
        }
        switch (shift) {
        case FastShift::Shl: shl(a, count); break;
        case FastShift::Shr: shr(a, count); break;
        case FastShift::Sar: sar(a, count); break;
        case FastShift::Rol:
        case FastShift::Ror: break; // rotates: emit_rotate
        }
    }
    void emit_current_carry();
    void emit_adc_sbb(size_t i, const FastForm& f);
    void emit_narrow_shift(size_t i, const FastForm& f);
    void emit_rotate(size_t i, const FastForm& f);
    void emit_inc_dec(size_t i, const FastForm& f);
    void emit_alu_mem(size_t i, const FastForm& f);
    void emit_inc_dec_mem(size_t i, const FastForm& f);
    void emit_rmw_load(size_t i, unsigned size);
    void emit_load_host(unsigned size, const Xbyak::RegExp& at);
    void emit_store_host(unsigned size, const Xbyak::RegExp& at, const Reg64& value);
    void emit_simple_generic(size_t i, const FastForm& f);
    void emit_imul(size_t i, const FastForm& f);
    void emit_stack(size_t i, const FastForm& f);
};

void Emitter::emit_set_arith_flags()
{
    mov(byte[rbp + m_layout.lazy_flags + static_cast<i32>(offsetof(LazyFlags, op))],
        static_cast<u8>(FlagOp::None));
    mov(rdx, qword[rbx + m_layout.rflags]);
    and_(rdx, static_cast<u32>(~rf::ARITH));
    or_(rdx, rcx);
    mov(qword[rbx + m_layout.rflags], rdx);
    m_flags = KnownFlags{}; // held in RFLAGS now: conditions ask the Cpu
}

// SHL/SHR/SAR by an immediate. The host's shift gives CF, ZF, SF and PF as
// the guest's (AF is cleared, as the handler does); OF is the handler's
// rule for every count: MSB(result) ^ CF, MSB(source), 0.
void Emitter::emit_shift(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned size = f.size;
    const unsigned count = static_cast<unsigned>(insn.imm & (size == 8 ? 0x3F : 0x1F));
    const unsigned reg = insn.op[0].reg;
    load_gpr(rax, reg, size);
    if (count == 0) { // flags stay; a 32-bit destination is still zero-extended
        mov(gpr(reg), rax);
        return;
    }
    emit_host_shift(f.shift, size, count);
    emit_shift_flags(reg, f.shift);
}

// r8 = CF (0 or 1) as the lazy flags stand: the host's CF of the operation
// when this block set them, else asked of the Cpu (which folds pending
// flags into RFLAGS to read it, as the ADC/SBB/INC/DEC handlers do).
void Emitter::emit_current_carry()
{
    if (m_flags.known) {
        Label clear, done;
        emit_condition(0x2, clear); // B: CF set
        mov(r8d, 1);
        jmp(done);
        L(clear);
        mov(r8d, 0);
        L(done);
    } else {
        mov(rdi, rbp);
        call_function(reinterpret_cast<const void*>(&carry_of));
        movzx(r8d, al);
    }
}

// ADC/SBB r, r/imm: the carry comes from the lazy flags (the host's CF when
// this block set them, else asked of the Cpu), then the host's ADC/SBB.
void Emitter::emit_adc_sbb(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned size = f.size;
    emit_current_carry(); // r8
    if (f.src == FastSrc::Reg)
        load_gpr(rdx, insn.op[1].reg, size);
    else
        load_imm(rdx, insn.imm & size_mask(size));
    load_gpr(rax, insn.op[0].reg, size);
    mov(rcx, rax);
    const Reg r = sized(rcx, size);
    const Reg b = sized(rdx, size);
    bt(r8d, 0); // CF = the carry in
    if (f.sbb)
        sbb(r, b);
    else
        adc(r, b);
    if (size >= 4)
        mov(gpr(insn.op[0].reg), rcx);
    else
        mov(gpr(insn.op[0].reg, size), r);
    emit_lazy_flags(f.sbb ? FlagOp::Sbb : FlagOp::Adc, size, CarryInR8);
    m_flags = KnownFlags{}; // conditions on ADC/SBB flags ask the Cpu
}

// SHL/SHR/SAR of an 8/16-bit register by 1..width-1: stored in place.
void Emitter::emit_narrow_shift(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned size = f.size;
    const unsigned count = static_cast<unsigned>(insn.imm & 0x1F);
    const unsigned reg = insn.op[0].reg;
    const Reg a = sized(rax, size);
    load_gpr(rax, reg, size);
    emit_host_shift(f.shift, size, count);
    mov(gpr(reg, size), a);
    emit_shift_flags_of_result(f.shift);
}

// ROL/ROR r32/r64 by an immediate: only CF and OF change (CF = the bit that
// went round, OF by the handler's rule for every count), so the other lazy
// flags are folded into RFLAGS first, as the handler's rflags() does.
void Emitter::emit_rotate(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned size = f.size;
    const unsigned bits = size * 8;
    const unsigned count = static_cast<unsigned>(insn.imm & (size == 8 ? 0x3F : 0x1F));
    const unsigned reg = insn.op[0].reg;
    const Reg a = sized(rax, size);
    if (count == 0) { // flags stay; a 32-bit register is still zero-extended
        load_gpr(rax, reg, size);
        mov(gpr(reg), rax);
        return;
    }
    Label folded;
    cmp(byte[rbp + m_layout.lazy_flags + static_cast<i32>(offsetof(LazyFlags, op))],
        static_cast<u8>(FlagOp::None));
    je(folded);
    mov(rdi, rbp);
    call_function(reinterpret_cast<const void*>(&materialize));
    L(folded);
    load_gpr(rax, reg, size);
    if (f.shift == FastShift::Rol)
        rol(a, count);
    else
        ror(a, count);
    mov(gpr(reg), rax);
    mov(rcx, rax);
    mov(rdx, rax);
    if (f.shift == FastShift::Rol) {
        and_(ecx, 1);       // CF = the result's low bit
        shr(rdx, bits - 1); // OF = MSB ^ CF
    } else {
        shr(rcx, bits - 1); // CF = the result's MSB
        shr(rdx, bits - 2);
        and_(edx, 1); // OF = MSB ^ the bit below it
    }
    xor_(edx, ecx);
    shl(edx, 11);
    // Intel's rotate of a register by an immediate past one bit keeps OF.
    const bool keeps_of = m_intel && count > 1;
    if (!keeps_of)
        or_(ecx, edx);
    mov(rdx, qword[rbx + m_layout.rflags]);
    and_(rdx, static_cast<u32>(~(keeps_of ? rf::CF : rf::CF | rf::OF)));
    or_(rdx, rcx);
    mov(qword[rbx + m_layout.rflags], rdx);
    m_flags = KnownFlags{};
}

// INC/DEC r32/r64: CF stays what it was (kept in the lazy flags as
// preserved_cf, as the handler does, which folds pending flags to read it).
void Emitter::emit_inc_dec(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned size = f.size;
    const bool dec = f.sbb;
    emit_current_carry(); // r8
    load_gpr(rax, insn.op[0].reg, size);
    mov(rcx, rax);
    if (dec)
        sub(sized(rcx, size), 1);
    else
        add(sized(rcx, size), 1);
    mov(gpr(insn.op[0].reg), rcx);
    mov(edx, 1);
    emit_lazy_flags(dec ? FlagOp::Dec : FlagOp::Inc, size, PreservedCfR8);
    m_flags = KnownFlags{}; // INC/DEC flags: conditions ask the Cpu
}

// ADD/OR/AND/SUB/XOR [m], r/imm: the write entry of the soft TLB (which
// implies the page is RAM and writable) serves the read and the write, as
// the handler's write probe and its fast read and write do.
void Emitter::emit_alu_mem(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned size = f.size;
    if (f.src == FastSrc::Reg)
        load_gpr(r8, insn.op[1].reg, size);
    else
        load_imm(r8, insn.imm & size_mask(size));
    emit_rmw_load(i, size);
    mov(rdx, r8);
    const Reg r = sized(rcx, size);
    const Reg b = sized(rdx, size);
    switch (f.alu) {
    case FastAlu::Add: add(r, b); break;
    case FastAlu::Or: or_(r, b); break;
    case FastAlu::And: and_(r, b); break;
    case FastAlu::Sub: sub(r, b); break;
    default: xor_(r, b); break;
    }
    emit_store_host(size, r9, rcx);
    emit_lazy_flags(flag_op_of(f.alu), size);
}

// The read of a read-modify-write of instruction i's memory operand: its
// host address in r9 (through the soft TLB's write entry, which implies the
// page is RAM and writable), the `size` bytes there in rax and rcx.
void Emitter::emit_rmw_load(size_t i, unsigned size)
{
    const Insn& insn = m_block.insns[i];
    emit_effective_address(insn, i);
    emit_linear(insn);
    emit_tlb_hit(offsetof(SoftTlb::Entry, write_tag), size, m_slow[i]);
    lea(r9, ptr[rax + rdx]);
    emit_load_host(size, r9);
    mov(rcx, rax);
}

// rax = `size` bytes at the host address `at`, zero-extended.
void Emitter::emit_load_host(unsigned size, const Xbyak::RegExp& at)
{
    switch (size) {
    case 1: movzx(eax, byte[at]); break;
    case 2: movzx(eax, word[at]); break;
    case 4: mov(eax, dword[at]); break;
    default: mov(rax, qword[at]); break;
    }
}

// The low `size` bytes of `value` to the host address `at`.
void Emitter::emit_store_host(unsigned size, const Xbyak::RegExp& at, const Reg64& value)
{
    switch (size) {
    case 1: mov(byte[at], value.cvt8()); break;
    case 2: mov(word[at], value.cvt16()); break;
    case 4: mov(dword[at], value.cvt32()); break;
    default: mov(qword[at], value); break;
    }
}

// INC/DEC [m]: the read-modify-write of emit_alu_mem with CF kept, as
// emit_inc_dec keeps it (the carry is read first: asking the Cpu for it is a
// call, which would clobber the host address).
void Emitter::emit_inc_dec_mem(size_t i, const FastForm& f)
{
    const unsigned size = f.size;
    const bool dec = f.sbb;
    emit_current_carry(); // r8
    emit_rmw_load(i, size);
    if (dec)
        sub(sized(rcx, size), 1);
    else
        add(sized(rcx, size), 1);
    emit_store_host(size, r9, rcx);
    mov(edx, 1);
    emit_lazy_flags(dec ? FlagOp::Dec : FlagOp::Inc, size, PreservedCfR8);
    m_flags = KnownFlags{}; // INC/DEC flags: conditions ask the Cpu
}

// SHL/SHR/SAR by CL: a count of zero (after masking) changes no flag and
// only zero-extends a 32-bit register; otherwise as emit_shift.
void Emitter::emit_shift_by_cl(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned size = f.size;
    const unsigned reg = insn.op[0].reg;
    Label shift_it, done;
    load_gpr(rax, reg, size);
    movzx(ecx, gpr(RCX, 1));
    and_(ecx, size == 8 ? 0x3F : 0x1F);
    jnz(shift_it);
    mov(gpr(reg), rax);
    jmp(done);
    L(shift_it);
    emit_host_shift(f.shift, size, cl);
    emit_shift_flags(reg, f.shift);
    L(done);
    m_flags = KnownFlags{};
}

// After the host shift of rax (count not zero): stores it and sets the
// flags as the handler does (OF of SHR already in edx).
void Emitter::emit_shift_flags(unsigned reg, FastShift shift)
{
    mov(gpr(reg), rax);
    emit_shift_flags_of_result(shift);
}

// The flags of the host shift just done (and OF of SHR in edx).
void Emitter::emit_shift_flags_of_result(FastShift shift)
{
    lahf();
    movzx(ecx, ah);
    and_(ecx, static_cast<u32>(rf::SF | rf::ZF | rf::PF | rf::CF));
    if (!m_intel)
        or_(ecx, static_cast<u32>(rf::AF)); // AMD sets the undefined AF
    if (of_from_source(shift)) {
        or_(ecx, edx);
    } else if (shift == FastShift::Shl) { // OF = SF ^ CF
        mov(edx, ecx);
        shr(edx, 7);
        xor_(edx, ecx);
        and_(edx, 1);
        shl(edx, 11);
        or_(ecx, edx);
    }
    emit_set_arith_flags();
}

// MOVSX/MOVSXD r32/r64, r/m8/16/32; NOP; SETcc r8; NOT r.
void Emitter::emit_simple_generic(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned dst = insn.op[0].reg;
    switch (f.kind) {
    case FastKind::Nop:
        break;
    case FastKind::MovsxReg:
    case FastKind::MovsxMem:
    {
        if (f.kind == FastKind::MovsxMem) {
            emit_load_operand(i, f.size);
        } else {
            load_gpr(rax, insn.op[1].reg, f.size);
        }
        const bool wide = insn.op[0].size == 8;
        if (f.size == 1)
            movsx(wide ? static_cast<const Reg&>(rax) : eax, al);
        else if (f.size == 2)
            movsx(wide ? static_cast<const Reg&>(rax) : eax, ax);
        else
            movsxd(rax, eax);
        mov(gpr(dst), rax); // a 32-bit destination: the 32-bit movsx cleared the top
        break;
    }
    case FastKind::SetccReg:
    {
        Label no, done;
        emit_condition(insn.cc & 15, no); // may call out: nothing live across it
        mov(gpr(dst, 1), 1);
        jmp(done);
        L(no);
        mov(gpr(dst, 1), 0);
        L(done);
        break;
    }
    case FastKind::NotReg:
        if (f.size == 4) {
            mov(eax, gpr(dst, 4));
            not_(eax);
            mov(gpr(dst), rax);
        } else {
            not_(gpr(dst, f.size));
        }
        break;
    default:
        break;
    }
}

// IMUL: CF = OF = the signed product did not fit; ZF, SF and PF of the
// truncated product (undefined on the host, so taken from a TEST).
void Emitter::emit_imul(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned size = f.size;
    const Reg a = sized(rax, size);
    const Reg b = sized(rdx, size);
    // The source (register or memory) and the other factor.
    if (f.src == FastSrc::Mem) {
        emit_load_operand(i, size);
        mov(r8, rax);
    } else {
        load_gpr(r8, insn.op[1].reg, size); // the second operand either way
    }
    if (f.three_operands) {
        mov(rax, r8);
        load_imm(rdx, insn.imm & size_mask(size));
    } else {
        load_gpr(rax, insn.op[0].reg, size);
        mov(rdx, r8);
    }
    imul(a, b);
    seto(dl);
    movzx(edx, dl);
    mov(gpr(insn.op[0].reg), rax);
    test(a, a);
    lahf();
    movzx(ecx, ah);
    // Intel's ZF is clear (lazy_flags.h multiply_flags).
    and_(ecx, static_cast<u32>(m_intel ? rf::SF | rf::PF : rf::SF | rf::ZF | rf::PF));
    imul(edx, edx, static_cast<int>(rf::CF | rf::OF));
    or_(ecx, edx);
    emit_set_arith_flags();
}

// PUSH/POP r64, CALL rel32, RET: 64-bit stack accesses through SS (base 0).
void Emitter::emit_stack(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const i64 next = m_offsets[i] + insn.length;
    switch (f.kind) {
    case FastKind::Push64:
    case FastKind::CallRel64:
        if (f.kind == FastKind::Push64) {
            mov(r8, gpr(insn.op[0].reg));
        } else {
            lea(r8, ptr[r13 + static_cast<i32>(next)]); // the return address
            // The target must be canonical before the push (the handler
            // orders the faults otherwise).
            lea(r10, ptr[r13 + static_cast<i32>(next + static_cast<i64>(insn.imm))]);
            emit_canonical_check(r10, m_slow[i]);
        }
        mov(rsi, gpr(RSP));
        sub(rsi, 8);
        mov(r9, rsi);
        emit_store(8, r8, m_slow[i]);
        mov(gpr(RSP), r9);
        if (f.kind == FastKind::CallRel64) {
            mov(rax, r10);
            emit_exit_to_rax(i);
        }
        break;
    case FastKind::Pop64:
    case FastKind::Ret64:
        mov(rsi, gpr(RSP));
        mov(r9, rsi);
        emit_load(8, m_slow[i]);
        if (f.kind == FastKind::Pop64) {
            add(r9, 8);
            mov(gpr(RSP), r9);
            mov(gpr(insn.op[0].reg), rax); // after RSP: POP RSP loads the popped value
        } else {
            emit_canonical_check(rax, m_slow[i]); // else the handler raises #GP
            add(r9, 8);
            mov(gpr(RSP), r9);
            emit_exit_to_rax(i);
        }
        break;
    default:
        break;
    }
}

void Emitter::emit_prologue()
{
    push(rbx);
    push(rbp);
    push(r12);
    push(r13);
    push(r14);
    push(r15);
    // [rsp]: whether a handler ran that may have changed what the run loop
    // checks; [rsp + 8]: the device-access count when the chain began.
    sub(rsp, FRAME_BYTES); // and 16-byte alignment for the calls
    mov(rbp, rdi);
    mov(rbx, rsi);
    mov(rax, cpu_field(m_layout.device_accesses));
    mov(rax, qword[rax]);
    mov(qword[rsp + 8], rax);
    L(m_chained_entry); // a translated predecessor jumps here (emit_chain)
    mov(qword[rsp], 0); // no handler has run: the block may chain at its end
    mov(r13, qword[rbx + m_layout.rip]);
    mov(r14, cpu_field(m_layout.retired));
    mov(rax, reinterpret_cast<u64>(m_layout.generation));
    mov(r15, qword[rax]);
    select_tlb_half();
}

// The end of the block, with RIP and the retired count stored and the new
// RIP in rax. The run loop would next check for events, find the successor
// through this block's links and run it. When no handler ran in this block
// nothing can have changed that those checks look at (events, paging, CPL,
// mode, the block cache: only handlers change them), so the successor a
// link names is entered directly if the link is still valid for this
// vCPU, the successor is translated and its whole block fits the budget.
void Emitter::emit_chain()
{
    L(m_chain);
    cmp(byte[rsp], 0);
    jne(m_exit);
    mov(rcx, cpu_field(m_layout.device_accesses));
    mov(rcx, qword[rcx]);
    cmp(rcx, qword[rsp + 8]);
    jne(m_exit); // a device was reached: it may have raised an interrupt
    mov(rdx, reinterpret_cast<u64>(&m_block.successors[0]));
    mov(r8d, dword[rbx + m_layout.ss_attr]);
    shr(r8d, 5);
    and_(r8d, 3); // CPL
    for (size_t k = 0; k < std::size(m_block.successors); ++k) {
        const i32 link = static_cast<i32>(k * sizeof(Block::Link));
        Label next;
        cmp(qword[rdx + link + static_cast<i32>(offsetof(Block::Link, linear))], rax);
        jne(next);
        // The vCPU's link epoch of this link's kind (Cpu::m_link_epochs).
        movzx(ecx, byte[rdx + link + static_cast<i32>(offsetof(Block::Link, global))]);
        mov(rcx, qword[rbp + rcx * 8 + m_layout.link_epochs]);
        cmp(qword[rdx + link + static_cast<i32>(offsetof(Block::Link, epoch))], rcx);
        jne(next);
        cmp(qword[rdx + link + static_cast<i32>(offsetof(Block::Link, generation))], r15);
        jne(next);
        cmp(byte[rdx + link + static_cast<i32>(offsetof(Block::Link, cpl))], r8b);
        jne(next);
        mov(rsi, qword[rdx + link + static_cast<i32>(offsetof(Block::Link, block))]);
        cmp(byte[rsi + block_field(&Block::code_size)], 8);
        jne(next);
        mov(rdi, qword[rsi + block_field(&Block::native_chained)]);
        test(rdi, rdi);
        jz(next);
        mov(ecx, dword[rsi + block_field(&Block::native_insns)]);
        add(rcx, cpu_field(m_layout.retired));
        cmp(rcx, cpu_field(m_layout.native_end));
        ja(next);
        jmp(rdi);
        L(next);
    }
    jmp(m_exit);
}

void Emitter::emit_epilogue()
{
    emit_chain();
    L(m_fault);
    mov(rdi, rbp);
    call_function(reinterpret_cast<const void*>(&deliver_fault));
    L(m_exit);
    mov(rax, reinterpret_cast<u64>(&m_block));
    mov(cpu_field(m_layout.last_native_block), rax);
    add(rsp, FRAME_BYTES);
    pop(r15);
    pop(r14);
    pop(r13);
    pop(r12);
    pop(rbp);
    pop(rbx);
    ret();
}

bool Emitter::native(size_t i) const
{
    const Insn& insn = m_block.insns[i];
    const FastForm& f = m_forms[i];
    if (f.kind == FastKind::None)
        return false;
    // The AMD model's IMUL keeps SF, ZF, AF and PF, and its SHR by CL takes
    // OF from the count: the handlers do those.
    if (!m_intel && (f.kind == FastKind::Imul ||
                     (f.kind == FastKind::ShiftCl && f.shift == FastShift::Shr)))
        return false;
    const bool has_mem = f.kind == FastKind::MovRegMem || f.kind == FastKind::MovMemReg ||
                         f.kind == FastKind::MovMemImm || f.kind == FastKind::MovzxRegMem ||
                         f.kind == FastKind::Lea || f.kind == FastKind::CompareMem ||
                         f.kind == FastKind::MovsxMem || f.kind == FastKind::AluMem ||
                         f.kind == FastKind::IncDecMem ||
                         ((f.kind == FastKind::Alu || f.kind == FastKind::Imul) &&
                          f.src == FastSrc::Mem);
    if (has_mem) {
        const MemRef& m = insn.mem;
        if (m.vsib != NO_REG || (insn.addrsize != 4 && insn.addrsize != 8))
            return false;
        const i64 disp = m.base == REG_RIP ? m.disp + m_offsets[i] + insn.length : m.disp;
        if (!fits_i32(disp))
            return false;
    }
    if (f.kind == FastKind::Jcc64 || f.kind == FastKind::JmpRel64 || f.kind == FastKind::CallRel64)
        return fits_i32(static_cast<i64>(insn.imm) + m_offsets[i] + insn.length);
    return true;
}

void Emitter::emit_block()
{
    const size_t n = m_block.insns.size();
    m_offsets.resize(n + 1);
    for (size_t i = 0; i < n; ++i)
        m_offsets[i + 1] = m_offsets[i] + m_block.insns[i].length;
    m_slow.resize(n);
    m_next.resize(n);
    m_forms.resize(n);
    m_native.resize(n);
    for (size_t i = 0; i < n; ++i) {
        m_forms[i] = fast_form_of(m_block.insns[i]);
        m_native[i] = native(i);
    }

    emit_prologue();
    for (size_t i = 0; i < n; ++i) {
        if (m_native[i]) {
            emit_insn(i);
        } else {
            emit_handler_call(i);
            m_flags = KnownFlags{}; // whatever the handler did to the flags
        }
        L(m_next[i]);
    }
    // Fell off the end of the block (page end or its length limit).
    set_rip(m_offsets[n]);
    set_retired(n);
    jmp(m_chain);

    // The slow paths: the instruction's handler does everything again from
    // the start, as nothing was committed before the fast path gave up.
    for (size_t i = 0; i < n; ++i) {
        if (!m_native[i])
            continue;
        L(m_slow[i]);
        emit_handler_call(i);
        jmp(m_next[i]);
    }
    emit_epilogue();
}

// Runs instruction i through its handler as Cpu::execute_insns does: RIP,
// next_rip and the retired count up to date, then the checks that may end
// the block after it.
void Emitter::emit_handler_call(size_t i)
{
    const Insn& insn = m_block.insns[i];
    const bool last = i + 1 == m_block.insns.size();
    if (!chains_unless_device(insn))
        mov(byte[rsp], 1); // a handler ran: return to the run loop at the end
    set_rip(m_offsets[i]);
    lea(rcx, ptr[rax + insn.length]);
    mov(cpu_field(m_layout.next_rip), rcx);
    mov(cpu_field(m_layout.end_block, 1), 0);
    set_retired(i);
    mov(rdi, rbp);
    mov(rsi, reinterpret_cast<u64>(&insn));
    call_function(reinterpret_cast<const void*>(insn.handler));
    test(al, al);
    jz(m_fault); // RIP and the retired count are the faulting instruction's
    mov(rax, cpu_field(m_layout.next_rip));
    mov(qword[rbx + m_layout.rip], rax);
    set_retired(i + 1);
    cmp(cpu_field(m_layout.end_block, 1), 0);
    jne(m_exit);
    if (last) {
        // An indirect near branch goes on to its target as a native one does.
        if (near_branch(insn))
            jmp(m_chain);
        else
            jmp(m_exit);
        return;
    }
    mov(rcx, reinterpret_cast<u64>(m_layout.generation));
    cmp(r15, qword[rcx]);
    jne(m_exit); // this block's code was overwritten
    lea(rcx, ptr[r13 + static_cast<i32>(m_offsets[i + 1])]);
    cmp(rax, rcx);
    jne(m_exit); // the handler moved RIP elsewhere without ending the block
    // The inlined memory accesses assume no alignment checking and the TLB
    // half of the CPL they were entered with: re-check after a handler.
    // (#AC also needs CPL 3: a kernel's STAC does not end the block.)
    Label unarmed;
    mov(rax, qword[rbx + m_layout.cr0]);
    and_(rax, qword[rbx + m_layout.rflags]);
    test(eax, static_cast<u32>(rf::AC)); // CR0.AM & EFLAGS.AC & CPL 3: Cpu::alignment_checks_armed
    jz(unarmed);
    mov(eax, dword[rbx + m_layout.ss_attr]);
    shr(eax, 5);
    and_(eax, 3);
    cmp(eax, 3);
    je(m_exit);
    L(unarmed);
    select_tlb_half();
}

bool Emitter::emit_effective_address(const Insn& insn, size_t i)
{
    const MemRef& m = insn.mem;
    if (m.base == REG_RIP) {
        lea(rsi, ptr[r13 + static_cast<i32>(m.disp + m_offsets[i] + insn.length)]);
    } else {
        if (m.base != NO_REG)
            mov(rsi, gpr(m.base));
        else
            xor_(esi, esi);
        const i32 disp = static_cast<i32>(m.disp);
        if (m.index != NO_REG) {
            mov(rcx, gpr(m.index));
            lea(rsi, ptr[rsi + rcx * m.scale + disp]);
        } else if (disp != 0) {
            lea(rsi, ptr[rsi + disp]);
        }
    }
    if (insn.addrsize == 4)
        mov(esi, esi);
    return true;
}

void Emitter::emit_linear(const Insn& insn)
{
    if (insn.mem.seg == FS || insn.mem.seg == GS)
        add(rsi, qword[rbx + m_layout.seg_base + static_cast<i32>(insn.mem.seg) * m_layout.seg_stride]);
}

void Emitter::emit_tlb_slot()
{
    mov(rax, rsi);
    shr(rax, 12);
    mov(ecx, eax);
    and_(ecx, SoftTlb::ENTRIES - 1);
    imul(ecx, ecx, static_cast<int>(sizeof(SoftTlb::Entry)));
}

// The soft-TLB hit test both accesses share: the entry for the page of
// rsi must carry `tag` (its read or write tag), and `size` bytes at rsi must
// not cross into the next page. Leaves the host page in rax and the offset
// in it in rdx.
void Emitter::emit_tlb_hit(size_t tag, unsigned size, Label& miss)
{
    emit_tlb_slot();
    cmp(qword[r12 + rcx + static_cast<i32>(tag)], rax);
    jne(miss);
    mov(edx, esi);
    and_(edx, 0xFFF);
    if (size > 1) {
        cmp(edx, static_cast<u32>(PAGE_SIZE - size));
        ja(miss); // crosses into the next page
    }
    mov(rax, qword[r12 + rcx + static_cast<i32>(offsetof(SoftTlb::Entry, host_page))]);
}

// Loads instruction i's memory operand (`size` bytes) into rax, or leaves
// for the instruction's slow path.
void Emitter::emit_load_operand(size_t i, unsigned size)
{
    const Insn& insn = m_block.insns[i];
    emit_effective_address(insn, i);
    emit_linear(insn);
    emit_load(size, m_slow[i]);
}

void Emitter::emit_load(unsigned size, Label& miss)
{
    emit_tlb_hit(offsetof(SoftTlb::Entry, read_tag), size, miss);
    test(rax, rax);
    jz(miss); // MMIO
    emit_load_host(size, rax + rdx);
}

void Emitter::emit_store(unsigned size, const Reg64& value, Label& miss)
{
    // Write entries never cover code pages or MMIO (SoftTlb).
    emit_tlb_hit(offsetof(SoftTlb::Entry, write_tag), size, miss);
    emit_store_host(size, rax + rdx, value);
}

void Emitter::emit_lazy_flags(FlagOp op, unsigned size, LazyExtra extra)
{
    const i32 lf = m_layout.lazy_flags;
    mov(byte[rbp + lf + static_cast<i32>(offsetof(LazyFlags, op))], static_cast<u8>(op));
    mov(byte[rbp + lf + static_cast<i32>(offsetof(LazyFlags, size))], static_cast<u8>(size));
    mov(qword[rbp + lf + static_cast<i32>(offsetof(LazyFlags, result))], rcx);
    mov(qword[rbp + lf + static_cast<i32>(offsetof(LazyFlags, src1))], rax);
    mov(qword[rbp + lf + static_cast<i32>(offsetof(LazyFlags, src2))], rdx);
    const Address carry_in = qword[rbp + lf + static_cast<i32>(offsetof(LazyFlags, carry_in))];
    const Address preserved_cf = qword[rbp + lf + static_cast<i32>(offsetof(LazyFlags, preserved_cf))];
    if (extra == CarryInR8)
        mov(carry_in, r8);
    else
        mov(carry_in, 0);
    if (extra == PreservedCfR8)
        mov(preserved_cf, r8);
    else
        mov(preserved_cf, 0);
    m_flags = KnownFlags{true, op, static_cast<u8>(size)};
}

// Falls through when condition `cc` holds, jumps to if_false otherwise.
// The guest's condition codes are the host's, so when this block's own
// code set the lazy flags the host instruction is simply done again.
void Emitter::emit_condition(unsigned cc, Label& if_false)
{
    if (m_flags.known) {
        emit_host_flags(m_flags.op, m_flags.size);
        emit_jump_unless(cc, if_false);
        return;
    }
    // Set before this block (or by a handler): the common kinds, a 32/64-bit
    // compare or logic result, are still answered on the host; the rest ask
    // the Cpu.
    static_assert(offsetof(LazyFlags, size) == offsetof(LazyFlags, op) + 1);
    const i32 lf = m_layout.lazy_flags;
    Label done;
    movzx(eax, word[rbp + lf + static_cast<i32>(offsetof(LazyFlags, op))]); // op | size << 8
    for (const FlagOp op : {FlagOp::Sub, FlagOp::Logic})
        for (const unsigned size : {4u, 8u}) {
            Label other;
            cmp(eax, static_cast<u32>(static_cast<u8>(op)) | size << 8);
            jne(other);
            emit_host_flags(op, size);
            emit_jump_unless(cc, if_false);
            jmp(done);
            L(other);
        }
    mov(rdi, rbp);
    mov(esi, cc);
    call_function(reinterpret_cast<const void*>(&condition_of));
    test(al, al);
    jz(if_false);
    L(done);
}

// The host flags of the lazy flags' operation (op of `size` bytes), from
// the operands stored in Cpu::lf.
void Emitter::emit_host_flags(FlagOp op, unsigned size)
{
    const i32 lf = m_layout.lazy_flags;
    const Reg a = sized(rax, size);
    auto operand = [&](size_t member) {
        const i32 off = lf + static_cast<i32>(member);
        switch (size) {
        case 1: return byte[rbp + off];
        case 2: return word[rbp + off];
        case 4: return dword[rbp + off];
        default: return qword[rbp + off];
        }
    };
    switch (op) {
    case FlagOp::Sub:
        mov(rax, qword[rbp + lf + static_cast<i32>(offsetof(LazyFlags, src1))]);
        cmp(a, operand(offsetof(LazyFlags, src2)));
        break;
    case FlagOp::Add:
        mov(rax, qword[rbp + lf + static_cast<i32>(offsetof(LazyFlags, src1))]);
        add(a, operand(offsetof(LazyFlags, src2)));
        break;
    default: // Logic: CF = OF = 0, ZF/SF/PF from the result
        mov(rax, qword[rbp + lf + static_cast<i32>(offsetof(LazyFlags, result))]);
        test(a, a);
        break;
    }
}

// Jumps to if_false unless host condition `cc` holds (the guest's
// condition codes are the host's).
void Emitter::emit_jump_unless(unsigned cc, Label& if_false)
{
    switch (cc ^ 1) {
    case 0x0: jo(if_false); break;
    case 0x1: jno(if_false); break;
    case 0x2: jb(if_false); break;
    case 0x3: jae(if_false); break;
    case 0x4: je(if_false); break;
    case 0x5: jne(if_false); break;
    case 0x6: jbe(if_false); break;
    case 0x7: ja(if_false); break;
    case 0x8: js(if_false); break;
    case 0x9: jns(if_false); break;
    case 0xA: jp(if_false); break;
    case 0xB: jnp(if_false); break;
    case 0xC: jl(if_false); break;
    case 0xD: jge(if_false); break;
    case 0xE: jle(if_false); break;
    default: jg(if_false); break;
    }
}

// A taken near branch to block RIP + target_offset: the target must be
// canonical (48 bits; anything else, 57-bit addresses included, is left to
// the handler, which knows CR4.LA57).
void Emitter::emit_branch_exit(size_t i, i64 target_offset)
{
    lea(rax, ptr[r13 + static_cast<i32>(target_offset)]);
    emit_canonical_check(rax, m_slow[i]);
    emit_exit_to_rax(i);
}

// Jumps to `bad` unless `target` is a canonical 48-bit address (clobbers rcx).
void Emitter::emit_canonical_check(const Reg64& target, Label& bad)
{
    mov(rcx, target);
    shl(rcx, 16);
    sar(rcx, 16);
    cmp(rcx, target);
    jne(bad);
}

// Instruction i, the block's last, branched to RIP = rax.
void Emitter::emit_exit_to_rax(size_t i)
{
    mov(qword[rbx + m_layout.rip], rax);
    set_retired(i + 1);
    jmp(m_chain);
}

void Emitter::emit_jcc(size_t i)
{
    const Insn& insn = m_block.insns[i];
    const i64 fallthrough = m_offsets[i] + insn.length;
    Label not_taken;
    emit_condition(insn.cc & 15, not_taken);
    emit_branch_exit(i, fallthrough + static_cast<i64>(insn.imm));
    L(not_taken);
    if (i + 1 == m_block.insns.size()) {
        set_rip(fallthrough);
        set_retired(i + 1);
        jmp(m_chain);
    }
}

void Emitter::emit_mov(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned dst = insn.op[0].reg;
    // MOV into an 8/16-bit register writes its low bytes in place (the merge).
    const bool narrow = f.size < 4 && f.kind != FastKind::MovzxRegMem;
    switch (f.kind) {
    case FastKind::MovRegReg:
        load_gpr(rax, insn.op[1].reg, f.size);
        mov(narrow ? gpr(dst, f.size) : gpr(dst), sized(rax, narrow ? f.size : 8));
        break;
    case FastKind::MovRegImm:
        load_imm(rax, insn.imm & size_mask(f.size));
        mov(narrow ? gpr(dst, f.size) : gpr(dst), sized(rax, narrow ? f.size : 8));
        break;
    case FastKind::MovRegMem:
    case FastKind::MovzxRegMem:
        emit_load_operand(i, f.size);
        mov(narrow ? gpr(dst, f.size) : gpr(dst), sized(rax, narrow ? f.size : 8));
        break;
    case FastKind::MovzxRegReg:
        load_gpr(rax, insn.op[1].reg, f.size);
        mov(gpr(dst), rax);
        break;
    case FastKind::MovMemReg:
    case FastKind::MovMemImm:
        if (f.kind == FastKind::MovMemReg)
            load_gpr(r8, insn.op[1].reg, 8);
        else
            load_imm(r8, insn.imm & size_mask(f.size));
        emit_effective_address(insn, i);
        emit_linear(insn);
        emit_store(f.size, r8, m_slow[i]);
        break;
    case FastKind::Lea:
        emit_effective_address(insn, i);
        if (f.size == 4)
            mov(esi, esi);
        mov(gpr(dst), rsi);
        break;
    default:
        break;
    }
}

void Emitter::emit_alu(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned size = f.size;
    const u64 mask = size_mask(size);
    if (f.src == FastSrc::Mem) {
        emit_load_operand(i, size);
        mov(rdx, rax);
    } else if (f.src == FastSrc::Reg) {
        load_gpr(rdx, insn.op[1].reg, size);
    } else {
        load_imm(rdx, insn.imm & mask);
    }
    load_gpr(rax, insn.op[0].reg, size);
    mov(rcx, rax);
    const Reg r = sized(rcx, size);
    const Reg b = sized(rdx, size);
    switch (f.alu) {
    case FastAlu::Add: add(r, b); break;
    case FastAlu::Or: or_(r, b); break;
    case FastAlu::And:
    case FastAlu::Test: and_(r, b); break;
    case FastAlu::Sub:
    case FastAlu::Cmp: sub(r, b); break;
    case FastAlu::Xor: xor_(r, b); break;
    }
    // An 8/16-bit result goes into the register's low bytes in place (the
    // merge); a 32-bit one is zero-extended. rcx holds the masked result
    // either way: a 1- or 2-byte operation leaves the upper bits of the
    // zero-extended operand clear.
    if (f.alu != FastAlu::Cmp && f.alu != FastAlu::Test) {
        if (size >= 4)
            mov(gpr(insn.op[0].reg), rcx);
        else
            mov(gpr(insn.op[0].reg, size), r);
    }
    emit_lazy_flags(flag_op_of(f.alu), size);
}

void Emitter::emit_compare_mem(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned size = f.size;
    emit_load_operand(i, size);
    if (f.src == FastSrc::Reg)
        load_gpr(rdx, insn.op[1].reg, size);
    else
        load_imm(rdx, insn.imm & size_mask(size));
    mov(rcx, rax);
    if (f.alu == FastAlu::Cmp)
        sub(rcx, rdx);
    else
        and_(rcx, rdx);
    truncate(rcx, size);
    emit_lazy_flags(f.alu == FastAlu::Cmp ? FlagOp::Sub : FlagOp::Logic, size);
}

void Emitter::emit_cmov(size_t i, const FastForm& f)
{
    const Insn& insn = m_block.insns[i];
    const unsigned dst = insn.op[0].reg;
    Label no_move, done;
    emit_condition(insn.cc & 15, no_move);
    load_gpr(rax, insn.op[1].reg, f.size);
    mov(gpr(dst), rax);
    jmp(done);
    L(no_move);
    if (f.size == 4) { // a 32-bit destination is zero-extended either way
        mov(eax, gpr(dst, 4));
        mov(gpr(dst), rax);
    }
    L(done);
}

void Emitter::emit_insn(size_t i)
{
    const Insn& insn = m_block.insns[i];
    const FastForm& f = m_forms[i];
    switch (f.kind) {
    case FastKind::Alu: emit_alu(i, f); break;
    case FastKind::CompareMem: emit_compare_mem(i, f); break;
    case FastKind::CmovRegReg: emit_cmov(i, f); break;
    case FastKind::Jcc64: emit_jcc(i); break;
    case FastKind::JmpRel64:
        emit_branch_exit(i, m_offsets[i] + insn.length + static_cast<i64>(insn.imm));
        break;
    case FastKind::ShiftImm: emit_shift(i, f); break;
    case FastKind::ShiftCl: emit_shift_by_cl(i, f); break;
    case FastKind::AdcSbbReg: emit_adc_sbb(i, f); break;
    case FastKind::ShiftImmNarrow: emit_narrow_shift(i, f); break;
    case FastKind::RotateImm: emit_rotate(i, f); break;
    case FastKind::IncDecReg: emit_inc_dec(i, f); break;
    case FastKind::AluMem: emit_alu_mem(i, f); break;
    case FastKind::IncDecMem: emit_inc_dec_mem(i, f); break;
    case FastKind::Nop:
    case FastKind::MovsxReg:
    case FastKind::MovsxMem:
    case FastKind::SetccReg:
    case FastKind::NotReg: emit_simple_generic(i, f); break;
    case FastKind::Imul: emit_imul(i, f); break;
    case FastKind::Push64:
    case FastKind::Pop64:
    case FastKind::CallRel64:
    case FastKind::Ret64: emit_stack(i, f); break;
    default: emit_mov(i, f); break;
    }
}

} // namespace

TranslateResult translate_block(const Cpu& cpu, const Block& block, CodeArena& arena)
{
    if (!arena.usable())
        return TranslateResult::Done; // stays interpreted
    const size_t room = arena.room() < MAX_BLOCK_CODE ? arena.room() : MAX_BLOCK_CODE;
    try {
        Emitter e(cpu, block, arena.cursor(), room);
        e.emit_block();
        block.native = reinterpret_cast<NativeBlock>(const_cast<u8*>(e.getCode()));
        block.native_chained = e.chained_entry();
        block.native_insns = static_cast<u32>(block.insns.size());
        arena.commit(e.getSize());
        return TranslateResult::Done;
    } catch (const Xbyak::Error&) {
        return TranslateResult::ArenaFull;
    }
}
