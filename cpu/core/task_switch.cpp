// Hardware task switching (SDM Vol 3A ch. 8 "Task Management"; the
// SWITCH-TASKS steps of JMP, CALL, INT n and IRET in Vol 2; AMD APM Vol 2
// ch. 12). Legacy protected mode only: IA-32e mode has no task switch, and
// the callers raise #GP there before getting here.
#include "cpu/core/cpu.h"

namespace {

u32 sel_ec(u16 selector, bool ext) { return (selector & 0xFFFCu) | (ext ? 1u : 0u); }
bool desc_present(u64 d) { return (d >> 47) & 1; }
unsigned desc_dpl(u64 d) { return (d >> 45) & 3; }
unsigned system_type(u64 d) { return (d >> 40) & 0x1F; } // S bit included
bool desc_is_code(u64 d) { return ((d >> 43) & 1) && ((d >> 44) & 1); }
bool desc_is_data(u64 d) { return !((d >> 43) & 1) && ((d >> 44) & 1); }
bool desc_conforming(u64 d) { return (d >> 42) & 1; }
bool desc_readable_or_writable(u64 d) { return (d >> 41) & 1; }
u32 desc_limit(u64 d)
{
    const u32 limit = static_cast<u32>((d & 0xFFFF) | ((d >> 32) & 0xF0000));
    return ((d >> 55) & 1) ? (limit << 12) | 0xFFF : limit;
}
u64 desc_base(u64 d) { return ((d >> 16) & 0xFFFFFF) | ((d >> 32) & 0xFF000000); }

constexpr u64 TSS_BUSY = 1ull << 41; // type bit 1: 0x9 available, 0xB busy

// Where the dynamic fields sit in a 32-bit TSS (SDM Vol 3A Figure 8-2) and
// in a 16-bit one (Figure 8-11). The general registers are stored in
// encoding order (EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI), the segment
// selectors in ES, CS, SS, DS, FS, GS order (a 16-bit TSS has no FS/GS).
struct TssLayout {
    u32 ip, flags, gprs, segs, ldt, min_limit;
    unsigned width, seg_count;
};
constexpr TssLayout TSS32{0x20, 0x24, 0x28, 0x48, 0x60, 0x67, 4, 6};
constexpr TssLayout TSS16{0x0E, 0x10, 0x12, 0x22, 0x2A, 0x2B, 2, 4};
constexpr u32 TSS32_CR3 = 0x1C, TSS32_TRAP = 0x64;

// DR7 L0-L3 and LE: cleared on every task switch (SDM Vol 3B 18.2.4).
constexpr u64 DR7_LOCAL_ENABLES = 0x155;

struct TssImage {
    u64 link = 0, cr3 = 0, ip = 0, flags = 0, ldt = 0, trap = 0;
    std::array<u64, 8> gpr{};
    std::array<u64, 6> seg{};
};

} // namespace

// The TSS a task gate or JMP/CALL/INT names: in the GDT, an available TSS
// (a busy one would be re-entered) and present (SDM Vol 2A CALL, JMP, INT n).
bool Cpu::new_tss_descriptor(u16 selector, bool ext, u64& desc)
{
    if ((selector & 4) || (selector & 0xFFFC) == 0)
        return raise_gp(sel_ec(selector, ext));
    u64 high;
    bool in_bounds;
    if (!read_descriptor(selector, desc, high, in_bounds))
        return false;
    const unsigned type = system_type(desc);
    if (!in_bounds || (type != 0x1 && type != 0x9))
        return raise_gp(sel_ec(selector, ext));
    if (!desc_present(desc))
        return raise(Fault{VEC_NP, true, sel_ec(selector, ext), 0});
    return true;
}

// JMP/CALL far to a TSS descriptor (type 1/9) or a task gate (type 5).
bool Cpu::far_transfer_to_task(u16 selector, u64 desc, bool is_call)
{
    const unsigned cpl = s.cpl();
    const unsigned rpl = selector & 3;
    u16 tss_sel = selector;
    u64 tss_desc = desc;
    if (system_type(desc) == 0x5) {
        if (desc_dpl(desc) < cpl || desc_dpl(desc) < rpl)
            return raise_gp(sel_ec(selector, false));
        if (!desc_present(desc))
            return raise(Fault{VEC_NP, true, sel_ec(selector, false), 0});
        tss_sel = static_cast<u16>(desc >> 16);
        if (!new_tss_descriptor(tss_sel, false, tss_desc))
            return false;
    } else {
        if (desc_dpl(desc) < cpl || desc_dpl(desc) < rpl)
            return raise_gp(sel_ec(selector, false));
        if (!desc_present(desc))
            return raise(Fault{VEC_NP, true, sel_ec(selector, false), 0});
    }
    if (!switch_task(tss_sel, tss_desc, is_call ? TaskSwitch::Call : TaskSwitch::Jmp, next_rip,
                     false))
        return false;
    return task_entry_ip_check(false);
}

// IRET with NT=1 returns to the task named by the current TSS's back link
// (SDM Vol 2A IRET, TASK-RETURN): it must be a busy TSS in the GDT.
bool Cpu::task_return()
{
    u64 link;
    if (!read_linear(s.tr.base, 2, link, true))
        return false;
    const u16 sel = static_cast<u16>(link);
    if ((sel & 4) || (sel & 0xFFFC) == 0)
        return raise(Fault{VEC_TS, true, sel_ec(sel, false), 0});
    u64 desc, high;
    bool in_bounds;
    if (!read_descriptor(sel, desc, high, in_bounds))
        return false;
    const unsigned type = system_type(desc);
    if (!in_bounds || (type != 0x3 && type != 0xB))
        return raise(Fault{VEC_TS, true, sel_ec(sel, false), 0});
    if (!desc_present(desc))
        return raise(Fault{VEC_NP, true, sel_ec(sel, false), 0});
    if (!switch_task(sel, desc, TaskSwitch::Iret, next_rip, false))
        return false;
    s.events.nmi_blocked = false;
    return task_entry_ip_check(false);
}

// An interrupt or exception through a task gate in the IDT (SDM Vol 3A
// 6.12.2): the gate's DPL and P were checked by the caller. The error code
// goes on the new task's stack.
bool Cpu::deliver_through_task_gate(u64 gate, bool has_error, u32 error_code, u64 return_rip,
                                    bool ext)
{
    const u16 tss_sel = static_cast<u16>(gate >> 16);
    u64 desc;
    if (!new_tss_descriptor(tss_sel, ext, desc))
        return false;
    if (!switch_task(tss_sel, desc, TaskSwitch::Event, return_rip, ext))
        return false;
    if (has_error && !push(error_code, (s.tr.type() & 0x8) ? 4 : 2))
        return false;
    return task_entry_ip_check(ext);
}

bool Cpu::task_entry_ip_check(bool ext)
{
    if (s.rip > s.seg[CS].limit)
        return raise_gp(ext ? 1 : 0);
    return true;
}

// SDM Vol 3A 8.3 steps 3-11. `desc` is the new TSS's descriptor, already
// checked by the caller for type, busy state and presence. Everything up
// to the commit point only reads memory or writes the old TSS and the
// descriptors' busy bits, so a fault there leaves the CPU state as it was;
// a fault after it (while loading the new task's segments) is delivered in
// the new task, and m_task_switched tells the callers not to roll back.
bool Cpu::switch_task(u16 selector, u64 desc, TaskSwitch reason, u64 return_ip, bool ext)
{
    const bool new32 = system_type(desc) & 0x8;
    const TssLayout& nl = new32 ? TSS32 : TSS16;
    const u64 new_base = desc_base(desc);
    if (desc_limit(desc) < nl.min_limit)
        return raise(Fault{VEC_TS, true, sel_ec(selector, ext), 0});

    // Read the whole new image first.
    TssImage in;
    const unsigned w = nl.width;
    if (!read_linear(new_base, 2, in.link, true) ||
        !read_linear(new_base + nl.ip, w, in.ip, true) ||
        !read_linear(new_base + nl.flags, w, in.flags, true) ||
        !read_linear(new_base + nl.ldt, 2, in.ldt, true))
        return false;
    for (unsigned i = 0; i < 8; ++i)
        if (!read_linear(new_base + nl.gprs + i * w, w, in.gpr[i], true))
            return false;
    for (unsigned i = 0; i < nl.seg_count; ++i)
        if (!read_linear(new_base + nl.segs + i * w, 2, in.seg[i], true))
            return false;
    if (new32 && (!read_linear(new_base + TSS32_CR3, 4, in.cr3, true) ||
                  !read_linear(new_base + TSS32_TRAP, 2, in.trap, true)))
        return false;

    // Save the current task into its TSS. IRET saves NT clear (step 6).
    materialize_flags();
    const bool old32 = s.tr.type() & 0x8;
    const TssLayout& ol = old32 ? TSS32 : TSS16;
    const u64 old_base = s.tr.base;
    // The current TSS must hold everything about to be saved in it.
    if (s.tr.limit < ol.segs + ol.seg_count * ol.width - 1)
        return raise(Fault{VEC_TS, true, sel_ec(s.tr.selector, ext), 0});
    u64 old_flags = s.rflags;
    if (reason == TaskSwitch::Iret)
        old_flags &= ~rf::NT;
    if (!write_linear(old_base + ol.ip, ol.width, return_ip, true) ||
        !write_linear(old_base + ol.flags, ol.width, old_flags, true))
        return false;
    for (unsigned i = 0; i < 8; ++i)
        if (!write_linear(old_base + ol.gprs + i * ol.width, ol.width, s.gpr[i], true))
            return false;
    for (unsigned i = 0; i < ol.seg_count; ++i)
        if (!write_linear(old_base + ol.segs + i * ol.width, 2, s.seg[i].selector, true))
            return false;

    // Busy bits (SDM Vol 3A Table 8-2) and the back link (8.4).
    const u64 gdt = s.gdtr.base;
    if (reason == TaskSwitch::Jmp || reason == TaskSwitch::Iret) {
        u64 type_byte;
        const u64 at = gdt + (s.tr.selector & 0xFFF8u) + 5;
        if (!read_linear(at, 1, type_byte, true) ||
            !write_linear(at, 1, type_byte & ~u64(0x2), true))
            return false;
    }
    const bool nesting = reason == TaskSwitch::Call || reason == TaskSwitch::Event;
    if (nesting) {
        if (!write_linear(new_base, 2, s.tr.selector, true))
            return false;
        in.flags |= rf::NT;
    }
    if (reason != TaskSwitch::Iret &&
        !write_linear(gdt + (selector & 0xFFF8u) + 5, 1, ((desc | TSS_BUSY) >> 40) & 0xFF, true))
        return false;

    // Commit point: from here on the new task is current.
    m_task_switched = true;
    set_segment_from_descriptor(s.tr, selector, desc | TSS_BUSY);
    s.cr0 |= cr::CR0_TS;
    s.dr[7] &= ~DR7_LOCAL_ENABLES;
    if (new32 && (s.cr0 & cr::CR0_PG)) {
        s.cr3 = in.cr3;
        flush_tlb(false);
    }
    lf.op = FlagOp::None;
    if (new32) {
        s.rflags = (in.flags & 0x3FFFFF & ~(u64(1) << 3 | u64(1) << 5 | u64(1) << 15)) | rf::FIXED1;
        for (unsigned i = 0; i < 8; ++i)
            s.gpr[i] = in.gpr[i] & 0xFFFFFFFF;
    } else {
        // A 16-bit task has only the low halves; EFLAGS' upper bits are clear.
        s.rflags = (in.flags & 0xFFFF & ~(u64(1) << 3 | u64(1) << 5 | u64(1) << 15)) | rf::FIXED1;
        for (unsigned i = 0; i < 8; ++i)
            s.gpr[i] = (s.gpr[i] & ~0xFFFFull) | (in.gpr[i] & 0xFFFF);
    }
    s.rip = next_rip = in.ip & size_mask(w);
    if (in.trap & 1)
        s.events.task_switch_trap = true;
    end_block();

    // Segment selectors are loaded before their descriptors are checked
    // (SDM Vol 3A 8.3 step 11): a fault from here on sees them unusable.
    const unsigned new_cpl = s.v86_mode() ? 3 : (in.seg[CS] & 3);
    s.ldtr = Segment{static_cast<u16>(in.ldt), 0, 0, Segment::UNUSABLE};
    for (unsigned i = 0; i < nl.seg_count; ++i)
        s.seg[i] = Segment{static_cast<u16>(in.seg[i]), 0, 0,
                           Segment::UNUSABLE | (i == SS || i == CS ? new_cpl << 5 : 0)};
    return load_task_segments(in.ldt, in.seg, nl.seg_count, ext);
}

// Loads LDTR and the segment registers of the task just switched to, with
// the checks of SDM Vol 3A Table 8-2.
bool Cpu::load_task_segments(u64 ldt_sel, const std::array<u64, 6>& sel, unsigned count, bool ext)
{
    const auto ts = [&](u64 selector) {
        return raise(Fault{VEC_TS, true, sel_ec(static_cast<u16>(selector), ext), 0});
    };
    const u16 ldt = static_cast<u16>(ldt_sel);
    if ((ldt & 0xFFFC) != 0) {
        if (ldt & 4)
            return ts(ldt);
        u64 d, high;
        bool in_bounds;
        if (!read_descriptor(ldt, d, high, in_bounds))
            return false;
        if (!in_bounds || system_type(d) != 0x2 || !desc_present(d))
            return ts(ldt);
        set_segment_from_descriptor(s.ldtr, ldt, d);
    }
    if (s.v86_mode()) {
        for (unsigned i = 0; i < count; ++i)
            load_segment_real(i, static_cast<u16>(sel[i]));
        return true;
    }

    // Each register is checked and loaded in turn, CS and SS first, so that
    // a fault on a data segment is delivered with the new task's code and
    // stack (SDM Vol 3A Table 8-2 gives the checks and their faults).
    const unsigned cpl = sel[CS] & 3;
    const auto fetch = [&](unsigned i, u64& d) {
        u64 high;
        bool in_bounds;
        if (!read_descriptor(static_cast<u16>(sel[i]), d, high, in_bounds))
            return false;
        return in_bounds || ts(sel[i]);
    };
    const auto commit = [&](unsigned i, u64 d) {
        if (!set_descriptor_accessed(static_cast<u16>(sel[i]), d))
            return false;
        set_segment_from_descriptor(s.seg[i], static_cast<u16>(sel[i]), d | (1ull << 40));
        return true;
    };
    u64 cs, ss;
    if ((sel[CS] & 0xFFFC) == 0)
        return ts(sel[CS]);
    if (!fetch(CS, cs))
        return false;
    if (!desc_is_code(cs) || (desc_conforming(cs) ? desc_dpl(cs) > cpl : desc_dpl(cs) != cpl))
        return ts(sel[CS]);
    if (!desc_present(cs))
        return raise(Fault{VEC_NP, true, sel_ec(static_cast<u16>(sel[CS]), ext), 0});
    if ((sel[SS] & 0xFFFC) == 0)
        return ts(sel[SS]);
    if (!fetch(SS, ss))
        return false;
    if (!desc_is_data(ss) || !desc_readable_or_writable(ss) || desc_dpl(ss) != cpl ||
        (sel[SS] & 3) != cpl)
        return ts(sel[SS]);
    if (!desc_present(ss))
        return raise(Fault{VEC_SS, true, sel_ec(static_cast<u16>(sel[SS]), ext), 0});
    if (!commit(CS, cs) || !commit(SS, ss))
        return false;
    for (unsigned i : {ES, DS, FS, GS}) {
        if (i >= count || (sel[i] & 0xFFFC) == 0)
            continue; // stays unusable
        u64 d;
        if (!fetch(i, d))
            return false;
        // Data, or code that can be read; below CPL or RPL only if conforming.
        if (!desc_is_data(d) && !(desc_is_code(d) && desc_readable_or_writable(d)))
            return ts(sel[i]);
        const bool conforming_code = desc_is_code(d) && desc_conforming(d);
        if (!conforming_code && (desc_dpl(d) < cpl || desc_dpl(d) < (sel[i] & 3)))
            return ts(sel[i]);
        if (!desc_present(d))
            return raise(Fault{VEC_NP, true, sel_ec(static_cast<u16>(sel[i]), ext), 0});
        if (!commit(i, d))
            return false;
    }
    return true;
}
