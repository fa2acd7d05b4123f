// MOVS, STOS, LODS, CMPS, SCAS, INS, OUTS with REP/REPE/REPNE, DF and
// 16/32/64-bit address sizes (SDM Vol 2, "REP/REPE/REPZ/REPNE/REPNZ").
#include "cpu/core/handlers.h"

void next_rip_repeat(Cpu& cpu);

namespace {

// A REP string instruction runs at most this many iterations per dispatch,
// then re-executes itself, so that interrupts and the instruction budget are
// honoured in the middle of a long copy (as hardware does).
constexpr u64 REP_CHUNK = 4096;

enum class Str { Movs, Stos, Lods, Cmps, Scas, Ins, Outs };

struct StringRegs {
    unsigned as;
    u64 mask;
    i64 step;
};

template <Str K>
bool one_iteration(Cpu& cpu, const Insn& insn, const StringRegs& r, unsigned size)
{
    const u64 si = cpu.s.gpr[RSI] & r.mask;
    const u64 di = cpu.s.gpr[RDI] & r.mask;
    const unsigned src_seg = insn.mem.seg;
    u64 a, b;
    switch (K) {
    case Str::Movs:
        CPU_TRY(cpu.read_mem(src_seg, si, size, a));
        CPU_TRY(cpu.write_mem(ES, di, size, a));
        break;
    case Str::Stos:
        CPU_TRY(cpu.write_mem(ES, di, size, cpu.gpr(RAX, size)));
        break;
    case Str::Lods:
        CPU_TRY(cpu.read_mem(src_seg, si, size, a));
        cpu.set_gpr(RAX, size, a);
        break;
    case Str::Cmps:
        CPU_TRY(cpu.read_mem(src_seg, si, size, a));
        CPU_TRY(cpu.read_mem(ES, di, size, b));
        cpu.lf = LazyFlags{FlagOp::Sub, static_cast<u8>(size), (a - b) & size_mask(size), a, b, 0, 0};
        break;
    case Str::Scas:
        a = cpu.gpr(RAX, size);
        CPU_TRY(cpu.read_mem(ES, di, size, b));
        cpu.lf = LazyFlags{FlagOp::Sub, static_cast<u8>(size), (a - b) & size_mask(size), a, b, 0, 0};
        break;
    case Str::Ins: {
        // The destination is probed before the port is read: a fault must not
        // consume device input.
        u64 probe;
        CPU_TRY(cpu.read_mem(ES, di, size, probe));
        a = cpu.ports.read(static_cast<u16>(cpu.gpr(RDX, 2)), size);
        CPU_TRY(cpu.write_mem(ES, di, size, a));
        cpu.note_io_access(static_cast<u16>(cpu.gpr(RDX, 2)), size);
        break;
    }
    case Str::Outs:
        CPU_TRY(cpu.read_mem(src_seg, si, size, a));
        cpu.ports.write(static_cast<u16>(cpu.gpr(RDX, 2)), size, a);
        cpu.note_io_access(static_cast<u16>(cpu.gpr(RDX, 2)), size);
        break;
    }
    const bool uses_si = K == Str::Movs || K == Str::Lods || K == Str::Cmps || K == Str::Outs;
    const bool uses_di = K != Str::Lods && K != Str::Outs;
    if (uses_si)
        cpu.set_gpr(RSI, r.as, (si + static_cast<u64>(r.step)) & r.mask);
    if (uses_di)
        cpu.set_gpr(RDI, r.as, (di + static_cast<u64>(r.step)) & r.mask);
    return true;
}

// Forward REP MOVS/STOS with 64-bit addresses over memory the TLB maps
// directly: as many whole elements as fit before either page ends, in one
// host copy or fill. Returns how many elements it did (0: none, take one
// ordinary iteration instead: a fault, MMIO, code, a page crossing or an
// overlap that a forward copy must replicate).
template <Str K>
u64 bulk_iterations(Cpu& cpu, const Insn& insn, const StringRegs& r, unsigned size, u64 max_count)
{
    if (r.as != 8 || r.step < 0)
        return 0;
    const u64 di = cpu.s.gpr[RDI];
    u64 dst_len;
    u8* dst = cpu.fast_write_span(ES, di, max_count * size, dst_len);
    if (!dst)
        return 0;
    if constexpr (K == Str::Stos) {
        const u64 n = dst_len / size;
        const u64 value = cpu.gpr(RAX, size);
        if (size == 1)
            __builtin_memset(dst, static_cast<int>(value), n);
        else
            for (u64 i = 0; i < n; ++i)
                Cpu::store_host(dst + i * size, size, value);
        cpu.s.gpr[RDI] = di + n * size;
        return n;
    } else {
        const u64 si = cpu.s.gpr[RSI];
        u64 src_len;
        const u8* src = cpu.fast_read_span(insn.mem.seg, si, max_count * size, src_len);
        if (!src)
            return 0;
        const u64 n = (dst_len < src_len ? dst_len : src_len) / size;
        const u64 bytes = n * size;
        // Element by element forward equals memmove unless the destination
        // starts inside the source (then the copy repeats a pattern).
        if (dst > src && dst < src + bytes)
            return 0;
        __builtin_memmove(dst, src, bytes);
        cpu.s.gpr[RSI] = si + bytes;
        cpu.s.gpr[RDI] = di + bytes;
        return n;
    }
}

// Intel, 64-bit mode, REP with a 0x67 prefix (32-bit addresses): the
// instruction writes ECX, and MOVS/STOS also ESI/EDI (those they use), at its
// start, so their upper halves are cleared even when no iteration completes
// (a count of 0, or a fault on the first element). CMPS, SCAS and LODS clear
// ESI/EDI only through an iteration. Intel host: seed 1 cases 9147 (MOVSQ
// faulting: RCX, RSI), 13498 (SCASB, count 0: RCX only, RDI kept), 61925
// (MOVSQ, count 0: RSI, RDI), 38257 (CMPSD faulting: RCX only); all 268 such
// lines of seeds 1-6 fit. AMD leaves all three until an iteration writes them.
// INS/OUTS (not testable at CPL 3) are taken to behave like the compares.
template <Str K>
void zero_extend_address_registers(Cpu& cpu)
{
    cpu.set_gpr(RCX, 4, cpu.s.gpr[RCX]);
    if constexpr (K == Str::Movs)
        cpu.set_gpr(RSI, 4, cpu.s.gpr[RSI]);
    if constexpr (K == Str::Movs || K == Str::Stos)
        cpu.set_gpr(RDI, 4, cpu.s.gpr[RDI]);
}

template <Str K>
bool string_op(Cpu& cpu, const Insn& insn)
{
    const unsigned size = insn.opsize;
    if constexpr (K == Str::Ins || K == Str::Outs)
        CPU_TRY(cpu.check_io_permission(static_cast<u16>(cpu.gpr(RDX, 2)), size));
    StringRegs r;
    r.as = insn.addrsize;
    r.mask = size_mask(r.as);
    r.step = (cpu.s.rflags & rf::DF) ? -static_cast<i64>(size) : static_cast<i64>(size);
    const bool rep = insn.prefixes & (pfx::REP | pfx::REPNE);
    if (!rep)
        return one_iteration<K>(cpu, insn, r, size);

    const bool compares = K == Str::Cmps || K == Str::Scas;
    const bool repne = insn.prefixes & pfx::REPNE;
    if (r.as == 4 && cpu.intel() && cpu.s.in_64bit_code())
        zero_extend_address_registers<K>(cpu);
    // Intel: an unfinished REP CMPS/SCAS leaves the arithmetic flags it
    // started with; they are written only when it finishes (the count runs
    // out or the compare ends it). The Intel host showed it on faults after
    // completed iterations (seed 1 cases 4951, 5605, 7288; all 270 such
    // lines of seeds 1-6 have the flags from before the instruction). A
    // pause between chunks restores them as well, so that a fault in a later
    // chunk, an interrupt or a single-step trap between iterations all see
    // the flags from before the instruction, independent of REP_CHUNK. AMD
    // (and this interpreter before) leaves the last iteration's flags.
    const bool keep_flags = compares && cpu.intel();
    const u64 flags_before = keep_flags ? cpu.rflags() : 0;
    const auto unfinished = [&](bool result) {
        if (keep_flags)
            cpu.set_rflags_arith(flags_before);
        return result;
    };
    // Single-stepping traps after every iteration (SDM Vol 3B 18.3.1.4).
    const u64 chunk = (cpu.s.rflags & rf::TF) ? 1 : REP_CHUNK;
    for (u64 done = 0; done < chunk; ++done) {
        const u64 count = cpu.s.gpr[RCX] & r.mask;
        if (count == 0)
            return true;
        if constexpr (K == Str::Movs || K == Str::Stos) {
            const u64 left = chunk - done;
            if (const u64 n = bulk_iterations<K>(cpu, insn, r, size, count < left ? count : left)) {
                cpu.set_gpr(RCX, r.as, count - n);
                done += n - 1;
                continue;
            }
        }
        if (!one_iteration<K>(cpu, insn, r, size))
            return unfinished(false);
        cpu.set_gpr(RCX, r.as, count - 1);
        if (compares) {
            const bool zf = cpu.condition(0x4);
            if (repne ? zf : !zf)
                return true;
        }
        // A data or I/O breakpoint traps after the iteration that hit it.
        if (cpu.data_breakpoint_hit())
            break;
    }
    if (cpu.s.gpr[RCX] & r.mask) {
        next_rip_repeat(cpu);
        return unfinished(true);
    }
    return true;
}

} // namespace

void next_rip_repeat(Cpu& cpu)
{
    // Leave RIP on this instruction so it resumes after pending events. An
    // event taken between iterations pushes RF set, so that an instruction
    // breakpoint on it does not fire again (SDM Vol 3B 18.3.1.1).
    cpu.next_rip = cpu.s.rip;
    cpu.s.rflags |= rf::RF;
    cpu.end_block();
}

HANDLER(op_movs) { return string_op<Str::Movs>(cpu, insn); }
HANDLER(op_stos) { return string_op<Str::Stos>(cpu, insn); }
HANDLER(op_lods) { return string_op<Str::Lods>(cpu, insn); }
HANDLER(op_cmps) { return string_op<Str::Cmps>(cpu, insn); }
HANDLER(op_scas) { return string_op<Str::Scas>(cpu, insn); }
HANDLER(op_ins) { return string_op<Str::Ins>(cpu, insn); }
HANDLER(op_outs) { return string_op<Str::Outs>(cpu, insn); }
