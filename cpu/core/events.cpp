// Exception and interrupt delivery in real, protected and long mode, IRET,
// and far JMP/CALL/RET with their privilege rules (SDM Vol 3A ch. 5-6,
// Vol 2 INT n, IRET, CALL, JMP, RET).
#include "cpu/core/cpu.h"

namespace {

bool contributory(u8 v) { return v == VEC_DE || (v >= VEC_TS && v <= VEC_GP); }
// Exceptions of the fault class (SDM Vol 3A Table 6-1) that push RF set. #DB
// is left out: an instruction breakpoint pushes the current RF, and general
// detect sets RF itself (Cpu::raise_general_detect).
bool is_fault_vector(u8 v)
{
    switch (v) {
    case VEC_DE: case VEC_BR: case VEC_UD: case VEC_NM: case VEC_TS: case VEC_NP:
    case VEC_SS: case VEC_GP: case VEC_PF: case VEC_MF: case VEC_AC: case VEC_XM: case VEC_VE:
        return true;
    default:
        return false;
    }
}
u32 sel_ec(u16 selector, bool ext = false) { return (selector & 0xFFFCu) | (ext ? 1u : 0u); }
bool desc_is_code(u64 d) { return ((d >> 43) & 1) && ((d >> 44) & 1); }
bool desc_is_data(u64 d) { return !((d >> 43) & 1) && ((d >> 44) & 1); }
bool desc_conforming(u64 d) { return (d >> 42) & 1; }
bool desc_writable(u64 d) { return (d >> 41) & 1; }
unsigned desc_dpl(u64 d) { return (d >> 45) & 3; }
bool desc_present(u64 d) { return (d >> 47) & 1; }
bool desc_long(u64 d) { return (d >> 53) & 1; }
bool desc_db(u64 d) { return (d >> 54) & 1; }
unsigned system_type(u64 d) { return (d >> 40) & 0x1F; } // S bit included: 0x00-0x0F are system
u64 desc_limit(u64 d)
{
    u64 limit = (d & 0xFFFF) | ((d >> 32) & 0xF0000);
    return ((d >> 55) & 1) ? (limit << 12) | 0xFFF : limit;
}

// Everything an event delivery or far transfer may change, so a fault in the
// middle leaves the architectural state as it was (faults are restartable).
struct TransferSnapshot {
    u64 rsp, rflags;
    Segment cs, ss, ds, es, fs, gs;
    explicit TransferSnapshot(const CpuState& s)
        : rsp(s.gpr[RSP]), rflags(s.rflags), cs(s.seg[CS]), ss(s.seg[SS]), ds(s.seg[DS]),
          es(s.seg[ES]), fs(s.seg[FS]), gs(s.seg[GS])
    {
    }
    void restore(CpuState& s) const
    {
        s.gpr[RSP] = rsp;
        s.rflags = rflags;
        s.seg[CS] = cs;
        s.seg[SS] = ss;
        s.seg[DS] = ds;
        s.seg[ES] = es;
        s.seg[FS] = fs;
        s.seg[GS] = gs;
    }
};

} // namespace

bool Cpu::deliver_event(u8 vector, EventKind kind, bool has_error, u32 error_code)
{
    return deliver_event(vector, kind, has_error, error_code, s.rip);
}

bool Cpu::deliver_event(u8 vector, EventKind kind, bool has_error, u32 error_code,
                        u64 return_rip)
{
    // EXT: the event is not the program's own INT n / INT3 / INTO, or it is a
    // fault raised while delivering an earlier event (SDM Vol 3A 6.13).
    const bool software = kind == EventKind::SoftwareInt || kind == EventKind::Int3 ||
                          kind == EventKind::Into;
    const bool ext = !software || m_delivering > 0;
    if (!software && kind != EventKind::Icebp && m_delivering == 0)
        ++m_events_delivered; // once per event, not again for a fault while delivering it
    if (software || kind == EventKind::Icebp) {
        // The handler is entered with TF clear: no single-step trap follows
        // the instruction (SDM Vol 3B 18.3.1.4).
        m_no_step_trap = true;
        m_icebp = kind == EventKind::Icebp;
    }
    if (vector == VEC_DB && kind != EventKind::SoftwareInt)
        s.dr[7] &= ~dbg::DR7_GD; // so that the handler may use the debug registers
    materialize_flags();
    TransferSnapshot snap(s);
    // A fault pushes RFLAGS with RF set, so that the restarted instruction
    // does not re-trigger an instruction breakpoint (SDM Vol 3A 17.3.1.1);
    // delivery then clears RF in the live RFLAGS.
    if (kind == EventKind::Exception && is_fault_vector(vector))
        s.rflags |= rf::RF;
    ++m_delivering;
    m_task_switched = false;
    bool ok = deliver_once(vector, kind, has_error, error_code, return_rip, ext);
    --m_delivering;
    if (ok) {
        s.events.halted = false;
        next_rip = s.rip;
        end_block();
        return true;
    }
    // A fault after a task switch's commit point belongs to the new task
    // (SDM Vol 3A 8.3): nothing is rolled back.
    if (!m_task_switched)
        snap.restore(s);
    const Fault second = m_fault;
    m_last_fault = second;
    if (vector == VEC_DF || m_delivering >= 3) {
        m_triple_fault = true;
        m_end_block = true;
        request_stop();
        return false;
    }
    if (second.vector == VEC_PF)
        s.cr2 = second.address;
    // Double-fault classes (SDM Vol 3A Table 6-5).
    const bool first_exception = kind == EventKind::Exception;
    const bool to_double = first_exception &&
                           ((contributory(vector) && contributory(second.vector)) ||
                            (vector == VEC_PF &&
                             (contributory(second.vector) || second.vector == VEC_PF)));
    ++m_delivering;
    bool r = to_double ? deliver_event(VEC_DF, EventKind::Exception, true, 0, s.rip)
                       : deliver_event(second.vector, EventKind::Exception,
                                       second.has_error_code, second.error_code, s.rip);
    --m_delivering;
    return r;
}

bool Cpu::deliver_once(u8 vector, EventKind kind, bool has_error, u32 error_code,
                       u64 return_rip, bool ext)
{
    if (!s.protected_mode())
        return deliver_real(vector, return_rip);
    if (s.long_mode_active())
        return deliver_long(vector, kind, has_error, error_code, return_rip, ext);
    return deliver_protected(vector, kind, has_error, error_code, return_rip, ext);
}

bool Cpu::deliver_real(u8 vector, u64 return_rip)
{
    const u32 entry = u32(vector) * 4;
    if (entry + 3 > s.idtr.limit)
        return raise_gp(0);
    u64 ip, cs;
    if (!read_linear(s.idtr.base + entry, 2, ip, true) ||
        !read_linear(s.idtr.base + entry + 2, 2, cs, true))
        return false;
    if (!push(s.rflags & 0xFFFF, 2) || !push(s.seg[CS].selector, 2) || !push(return_rip & 0xFFFF, 2))
        return false;
    s.rflags &= ~(rf::IF | rf::TF | rf::AC | rf::RF);
    load_segment_real(CS, static_cast<u16>(cs));
    s.rip = ip;
    return true;
}

bool Cpu::read_tss_stack(unsigned dpl, u16& ss, u64& sp)
{
    const bool tss32 = (s.tr.type() & 0x8) != 0;
    const u32 off = tss32 ? 4 + dpl * 8 : 2 + dpl * 4;
    const unsigned width = tss32 ? 4 : 2;
    if (off + width * 2 - 1 > s.tr.limit)
        return raise(Fault{VEC_TS, true, sel_ec(s.tr.selector), 0});
    u64 sp_v, ss_v;
    if (!read_linear(s.tr.base + off, width, sp_v, true) ||
        !read_linear(s.tr.base + off + width, 2, ss_v, true))
        return false;
    ss = static_cast<u16>(ss_v);
    sp = sp_v;
    return true;
}

// Loads SS for a more privileged stack (from the TSS or a far return) with the
// checks that raise #TS (inward) or #GP (outward return).
bool Cpu::load_stack_segment(u16 selector, unsigned new_cpl, u8 fault_vector, bool ext)
{
    if ((selector & 0xFFFC) == 0)
        return raise(Fault{fault_vector, true, ext ? 1u : 0u, 0});
    u64 desc, high;
    bool in_bounds;
    if (!read_descriptor(selector, desc, high, in_bounds))
        return false;
    if (!in_bounds || (selector & 3) != new_cpl || desc_dpl(desc) != new_cpl ||
        !desc_is_data(desc) || !desc_writable(desc))
        return raise(Fault{fault_vector, true, sel_ec(selector, ext), 0});
    if (!desc_present(desc))
        return raise(Fault{VEC_SS, true, sel_ec(selector, ext), 0});
    if (!set_descriptor_accessed(selector, desc))
        return false;
    set_segment_from_descriptor(s.seg[SS], selector, desc | (1ull << 40));
    return true;
}

void Cpu::set_code_segment(u16 selector, u64 desc, unsigned cpl)
{
    set_segment_from_descriptor(s.seg[CS], static_cast<u16>((selector & ~3u) | cpl),
                                desc | (1ull << 40));
}

// Reads and checks the code-segment descriptor an interrupt gate names.
bool Cpu::gate_target(u16 selector, bool ext, u64& desc)
{
    if ((selector & 0xFFFC) == 0)
        return raise_gp(ext ? 1 : 0);
    u64 high;
    bool in_bounds;
    if (!read_descriptor(selector, desc, high, in_bounds))
        return false;
    if (!in_bounds || !desc_is_code(desc) || desc_dpl(desc) > s.cpl())
        return raise_gp(sel_ec(selector, ext));
    if (!desc_present(desc))
        return raise(Fault{VEC_NP, true, sel_ec(selector, ext), 0});
    return set_descriptor_accessed(selector, desc);
}

bool Cpu::deliver_protected(u8 vector, EventKind kind, bool has_error, u32 error_code,
                            u64 return_rip, bool ext)
{
    const u32 idt_ec = u32(vector) * 8 + 2 + (ext ? 1 : 0);
    if (u32(vector) * 8 + 7 > s.idtr.limit)
        return raise_gp(idt_ec);
    u64 gate;
    if (!read_linear(s.idtr.base + u32(vector) * 8, 8, gate, true))
        return false;
    const unsigned type = system_type(gate);
    const bool software = kind == EventKind::SoftwareInt || kind == EventKind::Int3 ||
                          kind == EventKind::Into;
    if (type != 0x5 && type != 0x6 && type != 0x7 && type != 0xE && type != 0xF)
        return raise_gp(idt_ec);
    if (software && desc_dpl(gate) < s.cpl())
        return raise_gp(idt_ec);
    if (!desc_present(gate))
        return raise(Fault{VEC_NP, true, idt_ec, 0});
    if (type == 0x5)
        return deliver_through_task_gate(gate, has_error, error_code, return_rip, ext);

    const u16 selector = static_cast<u16>(gate >> 16);
    const bool gate32 = type & 0x8;
    u64 offset = (gate & 0xFFFF) | (gate32 ? ((gate >> 32) & 0xFFFF0000) : 0);
    u64 desc;
    if (!gate_target(selector, ext, desc))
        return false;

    const unsigned width = gate32 ? 4 : 2;
    const u64 old_flags = s.rflags;
    const u16 old_cs = s.seg[CS].selector;
    const u16 old_ss = s.seg[SS].selector;
    const u64 old_esp = s.gpr[RSP];
    const bool from_v86 = s.v86_mode();
    unsigned new_cpl = s.cpl();
    if (!desc_conforming(desc) && desc_dpl(desc) < s.cpl()) {
        new_cpl = desc_dpl(desc);
        if (from_v86 && new_cpl != 0)
            return raise_gp(sel_ec(selector, ext));
        u16 new_ss;
        u64 new_sp;
        if (!read_tss_stack(new_cpl, new_ss, new_sp))
            return false;
        s.rflags &= ~rf::VM; // descriptor loads below are protected-mode loads
        if (!load_stack_segment(new_ss, new_cpl, VEC_TS, ext))
            return false;
        s.gpr[RSP] = new_sp;
        set_code_segment(selector, desc, new_cpl);
        if (from_v86) {
            if (!push(s.seg[GS].selector, width) || !push(s.seg[FS].selector, width) ||
                !push(s.seg[DS].selector, width) || !push(s.seg[ES].selector, width))
                return false;
            for (unsigned sg : {DS, ES, FS, GS})
                s.seg[sg] = Segment{0, 0, 0, Segment::UNUSABLE};
        }
        if (!push(old_ss, width) || !push(old_esp & size_mask(width), width))
            return false;
    } else {
        if (from_v86)
            return raise_gp(sel_ec(selector, ext));
        set_code_segment(selector, desc, new_cpl);
    }
    if (!push(old_flags & size_mask(width), width) || !push(old_cs, width) ||
        !push(return_rip & size_mask(width), width))
        return false;
    if (has_error && !push(error_code, width))
        return false;
    if (!gate32)
        offset &= 0xFFFF;
    if (offset > s.seg[CS].limit)
        return raise_gp(0);
    s.rflags &= ~(rf::TF | rf::NT | rf::RF | rf::VM);
    if (!(type & 1))
        s.rflags &= ~rf::IF;
    s.rip = offset;
    return true;
}

bool Cpu::deliver_long(u8 vector, EventKind kind, bool has_error, u32 error_code,
                       u64 return_rip, bool ext)
{
    const u32 idt_ec = u32(vector) * 8 + 2 + (ext ? 1 : 0);
    if (u32(vector) * 16 + 15 > s.idtr.limit)
        return raise_gp(idt_ec);
    u64 lo, hi;
    if (!read_linear(s.idtr.base + u32(vector) * 16, 8, lo, true) ||
        !read_linear(s.idtr.base + u32(vector) * 16 + 8, 8, hi, true))
        return false;
    const unsigned type = system_type(lo);
    const bool software = kind == EventKind::SoftwareInt || kind == EventKind::Int3 ||
                          kind == EventKind::Into;
    if (type != 0xE && type != 0xF)
        return raise_gp(idt_ec);
    if (software && desc_dpl(lo) < s.cpl())
        return raise_gp(idt_ec);
    if (!desc_present(lo))
        return raise(Fault{VEC_NP, true, idt_ec, 0});
    const u16 selector = static_cast<u16>(lo >> 16);
    u64 desc;
    if (!gate_target(selector, ext, desc))
        return false;
    if (!desc_long(desc) || desc_db(desc))
        return raise_gp(sel_ec(selector, ext));
    const u64 offset = (lo & 0xFFFF) | ((lo >> 32) & 0xFFFF0000) | (hi << 32);

    const u64 old_flags = s.rflags;
    const u16 old_cs = s.seg[CS].selector;
    const u16 old_ss = s.seg[SS].selector;
    const u64 old_rsp = s.gpr[RSP];
    unsigned new_cpl = s.cpl();
    u64 new_rsp = old_rsp;
    if (!desc_conforming(desc) && desc_dpl(desc) < s.cpl()) {
        new_cpl = desc_dpl(desc);
        if (!read_tss_rsp(4 + new_cpl * 8, new_rsp))
            return false;
    }
    const unsigned ist = (lo >> 32) & 7;
    if (ist && !read_tss_rsp(0x24 + (ist - 1) * 8, new_rsp))
        return false;
    if (new_cpl != s.cpl()) {
        // A null SS whose RPL is the new CPL (SDM Vol 3A 6.14.4).
        s.seg[SS] = Segment{static_cast<u16>(new_cpl), 0, 0,
                            Segment::UNUSABLE | Segment::P | Segment::S | 0x3 | (new_cpl << 5)};
    }
    if (!is_canonical(new_rsp))
        return raise_ss(0);
    s.gpr[RSP] = new_rsp & ~0xFull;
    set_code_segment(selector, desc, new_cpl);
    if (!push(old_ss, 8) || !push(old_rsp, 8) || !push(old_flags, 8) || !push(old_cs, 8) ||
        !push(return_rip, 8))
        return false;
    if (has_error && !push(error_code, 8))
        return false;
    if (!is_canonical(offset))
        return raise_gp(0);
    s.rflags &= ~(rf::TF | rf::NT | rf::RF | rf::VM);
    if (!(type & 1))
        s.rflags &= ~rf::IF;
    s.rip = offset;
    return true;
}

bool Cpu::read_tss_rsp(u32 offset, u64& rsp)
{
    if (offset + 7 > s.tr.limit)
        return raise(Fault{VEC_TS, true, sel_ec(s.tr.selector), 0});
    return read_linear(s.tr.base + offset, 8, rsp, true);
}

// ---- IRET ----

// RFLAGS bits IRET/POPF may change at the current privilege (SDM Vol 2A IRET).
u64 Cpu::writable_flags_for(unsigned cpl, unsigned opsize) const
{
    u64 mask = rf::ARITH | rf::TF | rf::DF | rf::NT;
    if (opsize >= 4)
        mask |= rf::AC | rf::ID;
    const unsigned iopl = (s.rflags & rf::IOPL) >> rf::IOPL_SHIFT;
    if (cpl <= iopl)
        mask |= rf::IF;
    if (cpl == 0) {
        mask |= rf::IOPL;
        if (opsize >= 4)
            mask |= rf::VIF | rf::VIP;
    }
    return mask & size_mask(opsize);
}

void Cpu::nullify_data_segments_for(unsigned cpl)
{
    // Leaving for an outer ring: data segments the new CPL may not use are nulled.
    for (unsigned sg : {ES, DS, FS, GS}) {
        const Segment& seg = s.seg[sg];
        const bool code = seg.type() & 0x8;
        const bool conforming_code = code && (seg.type() & 0x4);
        if (!(seg.attr & Segment::UNUSABLE) && !conforming_code && seg.dpl() < cpl) {
            s.seg[sg].selector = 0;
            s.seg[sg].attr = Segment::UNUSABLE;
        }
    }
}

bool Cpu::iret(unsigned opsize)
{
    materialize_flags();
    TransferSnapshot snap(s);
    m_task_switched = false;
    bool ok = iret_inner(opsize);
    if (!ok && !m_task_switched)
        snap.restore(s);
    else
        end_block();
    return ok;
}

bool Cpu::iret_inner(unsigned opsize)
{
    u64 ip, cs, flags;
    if (!s.protected_mode() || s.v86_mode()) {
        if (s.v86_mode() && ((s.rflags & rf::IOPL) >> rf::IOPL_SHIFT) < 3) {
            // With VME a 16-bit IRET works on VIF (SDM Vol 2A IRET).
            if (!(s.cr4 & cr::CR4_VME) || opsize != 2)
                return raise_gp(0);
            if (!pop(2, ip) || !pop(2, cs) || !pop(2, flags))
                return false;
            if (!v86_write_virtual_flags(flags))
                return false;
            load_segment_real(CS, static_cast<u16>(cs));
            next_rip = ip;
            s.events.nmi_blocked = false;
            return true;
        }
        if (!pop(opsize, ip) || !pop(opsize, cs) || !pop(opsize, flags))
            return false;
        if (ip > s.seg[CS].limit && !s.v86_mode())
            return raise_gp(0);
        load_segment_real(CS, static_cast<u16>(cs));
        u64 writable = rf::ARITH | rf::TF | rf::DF | rf::NT | rf::IF | rf::IOPL;
        if (opsize == 4)
            writable |= rf::AC | rf::ID | rf::RF;
        if (s.v86_mode())
            writable &= ~rf::IOPL;
        write_rflags(flags, writable & size_mask(opsize));
        next_rip = ip & size_mask(opsize);
        s.events.nmi_blocked = false;
        return true;
    }
    const bool long_mode = s.long_mode_active();
    if (s.rflags & rf::NT) {
        if (long_mode)
            return raise_gp(0); // IA-32e mode has no task return (SDM Vol 2A IRET)
        return task_return();
    }
    if (!pop(opsize, ip) || !pop(opsize, cs) || !pop(opsize, flags))
        return false;
    const unsigned cpl = s.cpl();
    if (!long_mode && (flags & rf::VM) && cpl == 0)
        return iret_to_v86(ip, cs, flags);
    const u16 sel = static_cast<u16>(cs);
    if ((sel & 0xFFFC) == 0)
        return raise_gp(0);
    u64 desc, high;
    bool in_bounds;
    if (!read_descriptor(sel, desc, high, in_bounds))
        return false;
    const unsigned rpl = sel & 3;
    if (!in_bounds || !desc_is_code(desc) || rpl < cpl)
        return raise_gp(sel_ec(sel));
    if (desc_conforming(desc) ? desc_dpl(desc) > rpl : desc_dpl(desc) != rpl)
        return raise_gp(sel_ec(sel));
    if (!desc_present(desc))
        return raise(Fault{VEC_NP, true, sel_ec(sel), 0});
    if (long_mode && desc_long(desc) && desc_db(desc))
        return raise_gp(sel_ec(sel));
    const bool to_64 = long_mode && desc_long(desc);
    if (to_64 ? !is_canonical(ip) : ip > desc_limit(desc))
        return raise_gp(0);

    const u64 writable = writable_flags_for(cpl, opsize) | (opsize >= 4 ? rf::RF : 0);
    if (rpl > cpl || s.in_64bit_code()) {
        u64 rsp, ss;
        if (!pop(opsize, rsp) || !pop(opsize, ss))
            return false;
        const u16 ss_sel = static_cast<u16>(ss);
        if ((ss_sel & 0xFFFC) == 0 && to_64 && rpl != 3) {
            // 64-bit mode may return to a null SS below ring 3 (SDM Vol 2A IRET).
            if ((ss_sel & 3) != rpl)
                return raise_gp(0);
            s.seg[SS] = Segment{ss_sel, 0, 0,
                                Segment::UNUSABLE | Segment::P | Segment::S | 0x3 | (rpl << 5)};
        } else if (!load_stack_segment(ss_sel, rpl, VEC_GP, false)) {
            return false;
        }
        set_code_segment(sel, desc, rpl);
        write_rflags(flags, writable);
        set_gpr(RSP, to_64 ? 8 : stack_addr_size(), rsp);
        if (rpl > cpl)
            nullify_data_segments_for(rpl);
    } else {
        set_code_segment(sel, desc, rpl);
        write_rflags(flags, writable);
    }
    next_rip = to_64 ? ip : ip & size_mask(opsize == 8 ? 4 : opsize);
    s.events.nmi_blocked = false;
    return true;
}

bool Cpu::iret_to_v86(u64 ip, u64 cs, u64 flags)
{
    u64 esp, ss, es, ds, fs, gs;
    if (!pop(4, esp) || !pop(4, ss) || !pop(4, es) || !pop(4, ds) || !pop(4, fs) || !pop(4, gs))
        return false;
    write_rflags(flags, ~0ull & 0x3FFFFF);
    for (auto [sg, v] : {std::pair<unsigned, u64>{CS, cs}, {SS, ss}, {ES, es}, {DS, ds},
                         {FS, fs}, {GS, gs}})
        load_segment_real(sg, static_cast<u16>(v));
    s.gpr[RSP] = esp & 0xFFFFFFFF;
    next_rip = ip & 0xFFFF;
    s.events.nmi_blocked = false;
    return true;
}

// ---- Far JMP / CALL / RET ----

bool Cpu::far_jump_or_call(u16 selector, u64 offset, unsigned opsize, bool is_call)
{
    materialize_flags();
    TransferSnapshot snap(s);
    m_task_switched = false;
    bool ok = far_transfer_inner(selector, offset, opsize, is_call);
    if (!ok && !m_task_switched)
        snap.restore(s);
    else
        end_block();
    return ok;
}

bool Cpu::far_transfer_inner(u16 selector, u64 offset, unsigned opsize, bool is_call)
{
    if (!s.protected_mode() || s.v86_mode()) {
        if (is_call && (!push(s.seg[CS].selector, opsize) || !push(next_rip, opsize)))
            return false;
        offset &= size_mask(opsize);
        if (offset > s.seg[CS].limit)
            return raise_gp(0);
        load_segment_real(CS, selector);
        next_rip = offset;
        return true;
    }
    if ((selector & 0xFFFC) == 0)
        return raise_gp(0);
    u64 desc, high;
    bool in_bounds;
    if (!read_descriptor(selector, desc, high, in_bounds))
        return false;
    if (!in_bounds)
        return raise_gp(sel_ec(selector));
    const unsigned cpl = s.cpl();
    if (desc_is_code(desc)) {
        if (desc_conforming(desc) ? desc_dpl(desc) > cpl
                                  : ((selector & 3) > cpl || desc_dpl(desc) != cpl))
            return raise_gp(sel_ec(selector));
        if (!desc_present(desc))
            return raise(Fault{VEC_NP, true, sel_ec(selector), 0});
        if (s.long_mode_active() && desc_long(desc) && desc_db(desc))
            return raise_gp(sel_ec(selector));
        if (!set_descriptor_accessed(selector, desc))
            return false;
        if (is_call && (!push(s.seg[CS].selector, opsize) || !push(next_rip, opsize)))
            return false;
        set_code_segment(selector, desc, cpl);
        return commit_far_target(offset & size_mask(opsize));
    }
    const unsigned type = system_type(desc);
    if (type == 0x4 || type == 0xC)
        return through_call_gate(selector, desc, high, is_call);
    // A TSS or a task gate: a task switch, which IA-32e mode does not have.
    if (!s.long_mode_active() && (type == 0x1 || type == 0x9 || type == 0x5))
        return far_transfer_to_task(selector, desc, is_call);
    return raise_gp(sel_ec(selector));
}

bool Cpu::commit_far_target(u64 offset)
{
    if (s.in_64bit_code()) {
        if (!is_canonical(offset))
            return raise_gp(0);
    } else {
        offset &= 0xFFFFFFFF;
        if (offset > s.seg[CS].limit)
            return raise_gp(0);
    }
    next_rip = offset;
    return true;
}

bool Cpu::through_call_gate(u16 gate_sel, u64 gate, u64 gate_high, bool is_call)
{
    const unsigned cpl = s.cpl();
    const bool long_mode = s.long_mode_active();
    if (desc_dpl(gate) < cpl || desc_dpl(gate) < (gate_sel & 3))
        return raise_gp(sel_ec(gate_sel));
    if (!desc_present(gate))
        return raise(Fault{VEC_NP, true, sel_ec(gate_sel), 0});
    if (long_mode && system_type(gate) != 0xC)
        return raise_gp(sel_ec(gate_sel));
    const u16 target = static_cast<u16>(gate >> 16);
    u64 offset = (gate & 0xFFFF) | ((system_type(gate) == 0xC) ? ((gate >> 32) & 0xFFFF0000) : 0);
    if (long_mode)
        offset |= gate_high << 32;
    if ((target & 0xFFFC) == 0)
        return raise_gp(0);
    u64 desc, high;
    bool in_bounds;
    if (!read_descriptor(target, desc, high, in_bounds))
        return false;
    if (!in_bounds || !desc_is_code(desc) || desc_dpl(desc) > cpl)
        return raise_gp(sel_ec(target));
    if (!desc_present(desc))
        return raise(Fault{VEC_NP, true, sel_ec(target), 0});
    if (long_mode && (!desc_long(desc) || desc_db(desc)))
        return raise_gp(sel_ec(target));
    if (!is_call) {
        if (desc_conforming(desc) ? false : desc_dpl(desc) != cpl)
            return raise_gp(sel_ec(target));
        set_code_segment(target, desc, cpl);
        return commit_far_target(offset);
    }
    const unsigned width = long_mode ? 8 : (system_type(gate) == 0xC ? 4 : 2);
    const u16 old_cs = s.seg[CS].selector;
    const u64 ret = next_rip;
    if (!desc_conforming(desc) && desc_dpl(desc) < cpl) {
        const unsigned new_cpl = desc_dpl(desc);
        const u16 old_ss = s.seg[SS].selector;
        const u64 old_sp = s.gpr[RSP];
        const unsigned old_stack_size = stack_addr_size();
        if (long_mode) {
            u64 rsp;
            if (!read_tss_rsp(4 + new_cpl * 8, rsp))
                return false;
            s.seg[SS] = Segment{static_cast<u16>(new_cpl), 0, 0,
                                Segment::UNUSABLE | Segment::P | Segment::S | 0x3 | (new_cpl << 5)};
            s.gpr[RSP] = rsp;
            set_code_segment(target, desc, new_cpl);
            if (!push(old_ss, 8) || !push(old_sp, 8))
                return false;
        } else {
            u16 new_ss;
            u64 new_sp;
            if (!read_tss_stack(new_cpl, new_ss, new_sp))
                return false;
            // Parameters are copied from the old stack (SDM Vol 3A 5.8.5).
            const unsigned params = gate >> 32 & 0x1F;
            u64 values[32];
            for (unsigned i = 0; i < params; ++i)
                if (!read_mem(SS, (old_sp + i * width) & size_mask(old_stack_size), width,
                              values[i]))
                    return false;
            if (!load_stack_segment(new_ss, new_cpl, VEC_TS, false))
                return false;
            s.gpr[RSP] = new_sp;
            set_code_segment(target, desc, new_cpl);
            if (!push(old_ss, width) || !push(old_sp & size_mask(old_stack_size), width))
                return false;
            for (unsigned i = params; i-- > 0;)
                if (!push(values[i], width))
                    return false;
        }
    } else {
        set_code_segment(target, desc, cpl);
    }
    if (!push(old_cs, width) || !push(ret, width))
        return false;
    return commit_far_target(offset);
}

bool Cpu::far_return(unsigned opsize, u16 pop_extra)
{
    materialize_flags();
    TransferSnapshot snap(s);
    bool ok = far_return_inner(opsize, pop_extra);
    if (!ok)
        snap.restore(s);
    else
        end_block();
    return ok;
}

bool Cpu::far_return_inner(unsigned opsize, u16 pop_extra)
{
    u64 ip, cs;
    if (!pop(opsize, ip) || !pop(opsize, cs))
        return false;
    const unsigned as = stack_addr_size();
    if (!s.protected_mode() || s.v86_mode()) {
        if ((ip & size_mask(opsize)) > s.seg[CS].limit)
            return raise_gp(0);
        load_segment_real(CS, static_cast<u16>(cs));
        set_gpr(RSP, as, s.gpr[RSP] + pop_extra);
        next_rip = ip & size_mask(opsize);
        return true;
    }
    const u16 sel = static_cast<u16>(cs);
    const unsigned cpl = s.cpl();
    const unsigned rpl = sel & 3;
    if ((sel & 0xFFFC) == 0)
        return raise_gp(0);
    u64 desc, high;
    bool in_bounds;
    if (!read_descriptor(sel, desc, high, in_bounds))
        return false;
    if (!in_bounds || !desc_is_code(desc) || rpl < cpl ||
        (desc_conforming(desc) ? desc_dpl(desc) > rpl : desc_dpl(desc) != rpl))
        return raise_gp(sel_ec(sel));
    if (!desc_present(desc))
        return raise(Fault{VEC_NP, true, sel_ec(sel), 0});
    set_gpr(RSP, as, s.gpr[RSP] + pop_extra);
    if (rpl > cpl) {
        u64 rsp, ss;
        if (!pop(opsize, rsp) || !pop(opsize, ss))
            return false;
        const u16 ss_sel = static_cast<u16>(ss);
        const bool to_64 = s.long_mode_active() && desc_long(desc);
        if ((ss_sel & 0xFFFC) == 0 && to_64 && rpl != 3) {
            s.seg[SS] = Segment{ss_sel, 0, 0,
                                Segment::UNUSABLE | Segment::P | Segment::S | 0x3 | (rpl << 5)};
        } else if (!load_stack_segment(ss_sel, rpl, VEC_GP, false)) {
            return false;
        }
        set_code_segment(sel, desc, rpl);
        set_gpr(RSP, stack_addr_size(), rsp + pop_extra);
        nullify_data_segments_for(rpl);
    } else {
        set_code_segment(sel, desc, cpl);
    }
    return commit_far_target(ip & size_mask(opsize));
}
