// The debugger's own breakpoints, watchpoints and single-step (the gdb stub),
// beside the guest's DR0-DR7 (cpu/core/debug.cpp) and built the same way:
//  - a breakpoint stops the vCPU before the instruction at its linear
//    address. Blocks that hold one run on the careful path, which checks
//    before every instruction; translated code is still used for the other
//    blocks but chains into no successor while breakpoints are set, so it
//    can never run past one (Cpu::execute_block).
//  - a watchpoint stops the vCPU after the instruction that touched it (gdb's
//    semantics). While any is set every block runs carefully, and the soft
//    TLB keeps no read/write entry for a watched page, so every access to one
//    reaches the slow paths, which report it here.
//  - single-step: run() retires one instruction or delivers one event.
// Nothing is written into guest memory or the guest's debug registers.
#include "cpu/core/cpu.h"

#include <algorithm>

void Cpu::set_guest_debug(const GuestDebugSet& set)
{
    const bool watch_changed = set.watchpoints != m_guest_debug.watchpoints;
    m_guest_debug = set;
    std::sort(m_guest_debug.breakpoints.begin(), m_guest_debug.breakpoints.end());
    m_gdb_any = !set.empty();
    m_gdb_careful = !set.watchpoints.empty() || set.single_step;
    m_gdb_watch = set.watchpoints.empty() ? 0 : 1;
    // Entries made before a watchpoint was set would let accesses to its
    // page bypass the slow paths (and entries kept out after it went cost
    // speed): start afresh.
    if (watch_changed)
        flush_tlb(true);
}

bool Cpu::gdb_block_needs_care(const Block& block) const
{
    if (m_gdb_careful)
        return true;
    u64 start = s.seg[CS].base + s.rip;
    if (!s.in_64bit_code())
        start &= 0xFFFFFFFF;
    u64 bytes = 0;
    for (const Insn& insn : block.insns)
        bytes += insn.length;
    const auto& bps = m_guest_debug.breakpoints;
    auto it = std::lower_bound(bps.begin(), bps.end(), start);
    return it != bps.end() && *it - start < bytes;
}

bool Cpu::gdb_breakpoint_here()
{
    if (m_guest_debug.breakpoints.empty())
        return false;
    u64 linear = s.seg[CS].base + s.rip;
    if (!s.in_64bit_code())
        linear &= 0xFFFFFFFF;
    if (!std::binary_search(m_guest_debug.breakpoints.begin(), m_guest_debug.breakpoints.end(), linear))
        return false;
    m_debug_event = DebugEvent{DebugEvent::Kind::Breakpoint, linear, WatchKind::Write};
    m_stop_requested = true;
    return true;
}

void Cpu::match_gdb_watchpoints(u64 linear, unsigned size, bool write)
{
    if (m_debug_event.kind == DebugEvent::Kind::Watchpoint)
        return; // the first match of the instruction is the one reported
    for (const Watchpoint& w : m_guest_debug.watchpoints) {
        if (w.kind == WatchKind::Write && !write)
            continue;
        if (w.kind == WatchKind::Read && write)
            continue;
        if (!(linear < w.linear + w.length && w.linear < linear + size))
            continue;
        m_debug_event = DebugEvent{DebugEvent::Kind::Watchpoint, w.linear, w.kind};
        m_stop_requested = true; // after this instruction (or this REP iteration)
        return;
    }
}
