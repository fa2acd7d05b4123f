// Data movement, stack operations, flag-register instructions, ENTER/LEAVE.
#include "cpu/core/handlers.h"

HANDLER(op_mov)
{
    const Operand& dst = insn.op[0];
    const Operand& src = insn.op[1];
    if (dst.kind == OpKind::Seg || src.kind == OpKind::Seg)
        return op_mov_seg(cpu, insn);
    u64 v;
    CPU_TRY(cpu.read_operand(insn, 1, v));
    return cpu.write_operand(insn, 0, v);
}

HANDLER(op_mov_seg)
{
    if (insn.op[0].kind == OpKind::Seg) {
        const unsigned seg = insn.op[0].reg;
        if (seg == CS)
            return cpu.raise_ud();
        u64 v;
        CPU_TRY(cpu.read_operand(insn, 1, v));
        CPU_TRY(cpu.load_segment(seg, static_cast<u16>(v)));
        if (seg == SS)
            cpu.block_after_mov_ss(); // interrupts and debug traps wait one instruction
        cpu.end_block();
        return true;
    }
    const u64 sel = cpu.s.seg[insn.op[1].reg].selector;
    // To a register with 32/64-bit operand size the selector is zero-extended;
    // to memory only 16 bits are written.
    if (insn.op[0].kind == OpKind::Mem)
        return cpu.write_mem(insn.mem.seg, cpu.effective_address(insn), 2, sel);
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, sel);
    return true;
}

HANDLER(op_movzx)
{
    u64 v;
    CPU_TRY(cpu.read_operand(insn, 1, v));
    return cpu.write_operand(insn, 0, v & size_mask(insn.op[1].size));
}

HANDLER(op_movsx)
{
    u64 v;
    // MOVSXD (63 /r) with a 16-bit operand size: Intel reads only the 16 bits
    // it keeps, so no #PF or #AC where the 32-bit read would cross (Intel
    // host: seed 1 case 175866, seed 3 case 113717 `movsxd di, dword ptr
    // [r8+...]` at 0x10020FFE: no fault, where a 32-bit read takes #PF at
    // 0x10021000). AMD reads the whole doubleword (this host).
    if (insn.opcode == 0x63 && insn.op[0].size == 2 && insn.op[1].kind == OpKind::Mem &&
        cpu.intel()) {
        CPU_TRY(cpu.read_mem(insn.mem.seg, cpu.effective_address(insn), 2, v));
        return cpu.write_operand(insn, 0, v);
    }
    CPU_TRY(cpu.read_operand(insn, 1, v));
    return cpu.write_operand(insn, 0, sign_extend(v & size_mask(insn.op[1].size), insn.op[1].size));
}

HANDLER(op_lea)
{
    if (insn.op[1].kind != OpKind::Mem)
        return cpu.raise_ud();
    return cpu.write_operand(insn, 0, cpu.effective_address(insn));
}

HANDLER(op_xchg)
{
    u64 a, b;
    CPU_TRY(read_rmw_operand(cpu, insn, 0, a));
    CPU_TRY(read_rmw_operand(cpu, insn, 1, b));
    // Memory first: if the store faults, the register must be unchanged.
    if (insn.op[1].kind == OpKind::Mem) {
        CPU_TRY(cpu.write_operand(insn, 1, a));
        return cpu.write_operand(insn, 0, b);
    }
    CPU_TRY(cpu.write_operand(insn, 0, b));
    return cpu.write_operand(insn, 1, a);
}

HANDLER(op_nop)
{
    (void)cpu;
    (void)insn;
    return true;
}

HANDLER(op_cbw) { (void)insn; cpu.set_gpr(RAX, 2, sign_extend(cpu.gpr(RAX, 1), 1)); return true; }
HANDLER(op_cwde) { (void)insn; cpu.set_gpr(RAX, 4, sign_extend(cpu.gpr(RAX, 2), 2)); return true; }
HANDLER(op_cdqe) { (void)insn; cpu.set_gpr(RAX, 8, sign_extend(cpu.gpr(RAX, 4), 4)); return true; }
HANDLER(op_cwd)
{
    (void)insn;
    cpu.set_gpr(RDX, 2, (cpu.gpr(RAX, 2) & 0x8000) ? 0xFFFF : 0);
    return true;
}
HANDLER(op_cdq)
{
    (void)insn;
    cpu.set_gpr(RDX, 4, (cpu.gpr(RAX, 4) & 0x80000000u) ? 0xFFFFFFFF : 0);
    return true;
}
HANDLER(op_cqo)
{
    (void)insn;
    cpu.set_gpr(RDX, 8, (cpu.s.gpr[RAX] >> 63) ? ~0ull : 0);
    return true;
}

HANDLER(op_push)
{
    u64 v;
    const Operand& op = insn.op[0];
    if (op.kind == OpKind::Seg) {
        v = cpu.s.seg[op.reg].selector;
        return cpu.push(v, insn.opsize);
    }
    CPU_TRY(cpu.read_operand(insn, 0, v));
    // PUSH r/m with RSP as the base uses RSP's value before the push.
    return cpu.push(v & size_mask(insn.opsize), insn.opsize);
}

HANDLER(op_pop)
{
    const Operand& op = insn.op[0];
    const unsigned as = cpu.stack_addr_size();
    const u64 old_rsp = cpu.s.gpr[RSP];
    u64 v;
    CPU_TRY(cpu.pop(insn.opsize, v));
    if (op.kind == OpKind::Seg) {
        if (!cpu.load_segment(op.reg, static_cast<u16>(v))) {
            cpu.s.gpr[RSP] = old_rsp;
            return false;
        }
        if (op.reg == SS)
            cpu.block_after_mov_ss();
        cpu.end_block();
        return true;
    }
    if (op.kind == OpKind::Mem) {
        // POP to memory computes the address with RSP already incremented.
        if (!cpu.write_operand(insn, 0, v)) {
            cpu.s.gpr[RSP] = old_rsp;
            return false;
        }
        return true;
    }
    (void)as;
    return cpu.write_operand(insn, 0, v);
}

HANDLER(op_pusha)
{
    const unsigned size = insn.opsize;
    const u64 sp = cpu.gpr(RSP, size);
    const u64 old_rsp = cpu.s.gpr[RSP];
    for (unsigned r : {RAX, RCX, RDX, RBX}) {
        if (!cpu.push(cpu.gpr(r, size), size)) {
            cpu.s.gpr[RSP] = old_rsp;
            return false;
        }
    }
    for (u64 v : {sp, cpu.gpr(RBP, size), cpu.gpr(RSI, size), cpu.gpr(RDI, size)}) {
        if (!cpu.push(v, size)) {
            cpu.s.gpr[RSP] = old_rsp;
            return false;
        }
    }
    return true;
}

HANDLER(op_popa)
{
    const unsigned size = insn.opsize;
    const u64 old_rsp = cpu.s.gpr[RSP];
    u64 v[8];
    for (unsigned i = 0; i < 8; ++i) {
        if (!cpu.pop(size, v[i])) {
            cpu.s.gpr[RSP] = old_rsp;
            return false;
        }
    }
    // Order popped: DI, SI, BP, (SP skipped), BX, DX, CX, AX.
    cpu.set_gpr(RDI, size, v[0]);
    cpu.set_gpr(RSI, size, v[1]);
    cpu.set_gpr(RBP, size, v[2]);
    cpu.set_gpr(RBX, size, v[4]);
    cpu.set_gpr(RDX, size, v[5]);
    cpu.set_gpr(RCX, size, v[6]);
    cpu.set_gpr(RAX, size, v[7]);
    return true;
}

HANDLER(op_pushf)
{
    if (cpu.s.v86_mode() && ((cpu.s.rflags & rf::IOPL) >> rf::IOPL_SHIFT) < 3) {
        if (!(cpu.s.cr4 & cr::CR4_VME) || insn.opsize != 2)
            return cpu.raise_gp(0);
        return cpu.push(cpu.v86_virtual_flags(), 2);
    }
    // VM and RF are never pushed as set (SDM Vol 2B PUSHF).
    const u64 f = cpu.rflags() & ~(rf::VM | rf::RF);
    return cpu.push(f & size_mask(insn.opsize), insn.opsize);
}

HANDLER(op_popf)
{
    const unsigned size = insn.opsize;
    if (cpu.s.v86_mode() && ((cpu.s.rflags & rf::IOPL) >> rf::IOPL_SHIFT) < 3) {
        if (!(cpu.s.cr4 & cr::CR4_VME) || size != 2)
            return cpu.raise_gp(0);
        const u64 old_rsp = cpu.s.gpr[RSP];
        u64 v;
        CPU_TRY(cpu.pop(2, v));
        if (!cpu.v86_write_virtual_flags(v)) {
            cpu.s.gpr[RSP] = old_rsp;
            return false;
        }
        cpu.end_block();
        return true;
    }
    u64 v;
    CPU_TRY(cpu.pop(size, v));
    // IF changes only when CPL <= IOPL, IOPL only at CPL 0; VM, RF, VIF, VIP
    // are never changed by POPF (SDM Vol 2B POPF).
    u64 writable = cpu.writable_flags_for(cpu.s.protected_mode() ? cpu.s.cpl() : 0, size) &
                   ~(rf::VIF | rf::VIP);
    if (cpu.s.v86_mode())
        writable = (writable | rf::IF) & ~rf::IOPL;
    cpu.write_rflags(v, writable);
    cpu.end_block(); // TF or IF may have changed
    return true;
}

HANDLER(op_lahf)
{
    (void)insn;
    cpu.s.gpr[RAX] = (cpu.s.gpr[RAX] & ~0xFF00ull) | ((cpu.rflags() & 0xFF) << 8);
    return true;
}

HANDLER(op_sahf)
{
    (void)insn;
    const u64 ah = (cpu.s.gpr[RAX] >> 8) & 0xFF;
    const u64 mask = rf::CF | rf::PF | rf::AF | rf::ZF | rf::SF;
    cpu.set_rflags_arith((cpu.rflags() & ~mask) | (ah & mask));
    return true;
}

HANDLER(op_clc) { (void)insn; cpu.set_flag(rf::CF, false); return true; }
HANDLER(op_stc) { (void)insn; cpu.set_flag(rf::CF, true); return true; }
HANDLER(op_cmc) { (void)insn; cpu.set_flag(rf::CF, !cpu.flag(rf::CF)); return true; }
HANDLER(op_cld) { (void)insn; cpu.s.rflags &= ~rf::DF; return true; }
HANDLER(op_std) { (void)insn; cpu.s.rflags |= rf::DF; return true; }

HANDLER(op_enter)
{
    const unsigned size = insn.opsize;
    const unsigned as = cpu.stack_addr_size();
    const u16 alloc = static_cast<u16>(insn.imm);
    const unsigned level = insn.imm2 & 0x1F;
    const u64 old_rsp = cpu.s.gpr[RSP];
    const u64 old_rbp = cpu.s.gpr[RBP];
    auto fail = [&] {
        cpu.s.gpr[RSP] = old_rsp;
        cpu.s.gpr[RBP] = old_rbp;
        return false;
    };
    if (!cpu.push(cpu.gpr(RBP, size), size))
        return fail();
    const u64 frame = cpu.gpr(RSP, as);
    u64 bp = cpu.gpr(RBP, as);
    for (unsigned i = 1; i < level; ++i) {
        bp = (bp - size) & size_mask(as);
        u64 v;
        if (!cpu.read_mem(SS, bp, size, v) || !cpu.push(v, size))
            return fail();
    }
    if (level > 0 && !cpu.push(frame, size))
        return fail();
    const u64 new_rsp = (cpu.gpr(RSP, as) - alloc) & size_mask(as);
    // The final stack pointer must be writable (SDM: #SS/#PF if not). The
    // probe is an operand-sized write, as on AMD hardware: #AC when the new
    // stack pointer is misaligned, W=1 in a #PF error code.
    if (alloc && !probe_write(cpu, SS, new_rsp, size))
        return fail();
    cpu.set_gpr(RBP, size, frame);
    cpu.set_gpr(RSP, as, new_rsp);
    return true;
}

HANDLER(op_leave)
{
    const unsigned as = cpu.stack_addr_size();
    const u64 old_rsp = cpu.s.gpr[RSP];
    cpu.set_gpr(RSP, as, cpu.gpr(RBP, as));
    u64 v;
    if (!cpu.pop(insn.opsize, v)) {
        cpu.s.gpr[RSP] = old_rsp;
        return false;
    }
    cpu.set_gpr(RBP, insn.opsize, v);
    return true;
}

HANDLER(op_xlat)
{
    const u64 ea = (cpu.s.gpr[RBX] + cpu.gpr(RAX, 1)) & size_mask(insn.addrsize);
    u64 v;
    CPU_TRY(cpu.read_mem(insn.mem.seg, ea, 1, v));
    cpu.set_gpr(RAX, 1, v);
    return true;
}

// LDS/LES/LFS/LGS/LSS: load a far pointer into a segment register and a GPR.
HANDLER(op_lds_family)
{
    if (insn.op[1].kind != OpKind::Mem)
        return cpu.raise_ud();
    unsigned seg;
    switch (insn.opcode) {
    case 0xC5: seg = DS; break;
    case 0xC4: seg = ES; break;
    case 0xB2: seg = SS; break;
    case 0xB4: seg = FS; break;
    default: seg = GS; break;
    }
    const unsigned size = insn.op[0].size;
    const u64 ea = cpu.effective_address(insn);
    u64 offset, selector;
    CPU_TRY(cpu.read_mem(insn.mem.seg, ea, size, offset));
    CPU_TRY(cpu.read_mem(insn.mem.seg, (ea + size) & size_mask(insn.addrsize), 2, selector));
    CPU_TRY(cpu.load_segment(seg, static_cast<u16>(selector)));
    cpu.set_gpr(insn.op[0].reg, size, offset);
    if (seg == SS)
        cpu.s.events.interrupt_shadow = false; // only MOV/POP SS set the shadow
    cpu.end_block();
    return true;
}
