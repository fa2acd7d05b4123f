// Hardware breakpoints (DR0-DR3 with DR7), the DR6 status they report and the
// single-step trap, per SDM Vol 3B ch. 18 and AMD APM Vol 2 ch. 13.
//
// All of this runs on the careful path (execute_block_carefully), which the
// interpreter takes only while a DR7 enable bit, TF, RF or an interrupt shadow
// is set. Data breakpoints cost nothing elsewhere: while any is enabled the
// soft TLB keeps no read/write entry for the pages they watch, so accesses to
// those pages reach the slow paths, which report them here.
#include "cpu/core/cpu.h"

namespace {

// DR7 R/Wn field values (SDM Vol 3B 18.2.4).
constexpr unsigned RW_EXECUTE = 0, RW_WRITE = 1, RW_IO = 2, RW_READ_WRITE = 3;

unsigned rw_field(u64 dr7, unsigned n) { return (dr7 >> (16 + 4 * n)) & 3; }

// LENn: 00 one byte, 01 two, 11 four, 10 eight (64-bit capable processors).
u64 len_field(u64 dr7, unsigned n)
{
    switch ((dr7 >> (18 + 4 * n)) & 3) {
    case 0: return 1;
    case 1: return 2;
    case 2: return 8;
    default: return 4;
    }
}

bool enabled(u64 dr7, unsigned n) { return (dr7 >> (2 * n)) & 3; }

bool overlaps(u64 a, u64 a_len, u64 b, u64 b_len) { return a < b + b_len && b < a + a_len; }

} // namespace

void Cpu::sync_debug_registers()
{
    const DebugSeen now{{s.dr[0], s.dr[1], s.dr[2], s.dr[3]}, s.dr[7], (s.cr4 & cr::CR4_DE) != 0};
    if (now == m_debug_seen)
        return;
    const u8 old_data_watch = m_data_watch;
    const std::array<u64, 4> old_base = m_watch_base;
    m_debug_seen = now;
    m_exec_watch = m_data_watch = m_io_watch = 0;
    // With no breakpoint enabled nothing is watched: B0-B3 of the disabled
    // ones are reported only next to an enabled one ("may or may not be set"
    // when not enabled, SDM Vol 3B 18.2.3).
    if (now.dr7 & dbg::DR7_ENABLES) {
        for (unsigned n = 0; n < 4; ++n) {
            const u64 len = len_field(now.dr7, n);
            // The address is aligned down to the length: LENn masks its low bits.
            m_watch_len[n] = len;
            m_watch_base[n] = now.addr[n] & ~(len - 1);
            switch (rw_field(now.dr7, n)) {
            case RW_EXECUTE:
                m_exec_watch |= 1u << n;
                m_watch_base[n] = now.addr[n]; // LEN should be 00; the first byte must match
                break;
            case RW_WRITE:
            case RW_READ_WRITE:
                m_data_watch |= 1u << n;
                break;
            case RW_IO:
                // Undefined without CR4.DE (SDM Vol 3B 18.2.4): no breakpoint here.
                if (now.de)
                    m_io_watch |= 1u << n;
                break;
            }
        }
    }
    if (m_data_watch != old_data_watch || (m_data_watch && m_watch_base != old_base))
        flush_tlb(true);
}

bool Cpu::page_watched(u64 vpn) const
{
    for (const Watchpoint& w : m_guest_debug.watchpoints)
        if ((w.linear >> 12) <= vpn && vpn <= ((w.linear + w.length - 1) >> 12))
            return true;
    for (unsigned n = 0; n < 4; ++n)
        if (((m_data_watch >> n) & 1) && (m_watch_base[n] >> 12) == vpn)
            return true;
    return false;
}

void Cpu::match_data_breakpoints(u64 linear, unsigned size, bool write)
{
    if (m_gdb_watch) [[unlikely]]
        match_gdb_watchpoints(linear, size, write);
    for (unsigned n = 0; n < 4; ++n) {
        if (!((m_data_watch >> n) & 1))
            continue;
        if (!write && rw_field(s.dr[7], n) == RW_WRITE)
            continue;
        if (!overlaps(linear, size, m_watch_base[n], m_watch_len[n]))
            continue;
        m_db_hits |= static_cast<u8>(1u << n);
        if (enabled(s.dr[7], n))
            m_db_hit_enabled = true;
    }
}

void Cpu::match_io_breakpoints(u16 port, unsigned size)
{
    for (unsigned n = 0; n < 4; ++n) {
        if (((m_io_watch >> n) & 1) &&
            overlaps(port, size, m_watch_base[n] & 0xFFFF, m_watch_len[n])) {
            m_db_hits |= static_cast<u8>(1u << n);
            if (enabled(s.dr[7], n))
                m_db_hit_enabled = true;
        }
    }
}

bool Cpu::instruction_breakpoint()
{
    u64 linear = s.seg[CS].base + s.rip;
    if (!s.in_64bit_code())
        linear &= 0xFFFFFFFF;
    u64 hits = 0;
    bool any_enabled = false;
    for (unsigned n = 0; n < 4; ++n) {
        if (((m_exec_watch >> n) & 1) && m_watch_base[n] == linear) {
            hits |= 1u << n;
            any_enabled |= enabled(s.dr[7], n);
        }
    }
    if (!any_enabled)
        return false;
    // Fault-like: RIP stays on the instruction, and the pushed RF is the
    // current one (0), so the handler must set it to get past (SDM Vol 3B 18.3.1.1).
    deliver_debug_exception(hits);
    return true;
}

bool Cpu::raise_general_detect()
{
    // The processor clears GD on entry to the handler so it can use the
    // debug registers; as a fault the pushed RF is 1.
    s.dr[6] = (s.dr[6] & ~dbg::DR6_B_MASK) | dbg::DR6_BD;
    s.dr[7] &= ~dbg::DR7_GD;
    s.rflags |= rf::RF;
    return raise(Fault{VEC_DB, false, 0, 0});
}

void Cpu::deliver_debug_exception(u64 dr6_bits)
{
    // B0-B3 say which breakpoints matched this time; BD/BS/BT stay set until
    // software clears them.
    s.dr[6] = (s.dr[6] & ~dbg::DR6_B_MASK) | dr6_bits;
    s.dr[7] &= ~dbg::DR7_GD;
    deliver_event(VEC_DB, EventKind::Exception, false, 0);
}

// After an instruction completed on the careful path: raises the trap-like
// #DB for its single-step and data/I-O breakpoints, or holds them back when
// it was MOV SS / POP SS. Returns true when a #DB was delivered.
bool Cpu::debug_trap_after(bool single_step, bool after_mov_ss)
{
    u64 bits = m_db_hit_enabled ? m_db_hits : 0;
    // Consumed here: a REP string instruction on the fast path must not see
    // a stale hit (it stops at one).
    m_db_hits = 0;
    m_db_hit_enabled = false;
    if ((single_step || m_step_trap_requested) && !m_no_step_trap)
        bits |= dbg::DR6_BS;
    m_step_trap_requested = false;
    if (after_mov_ss) {
        u64 held = s.events.pending_debug;
        s.events.pending_debug = 0;
        // INT n / INT3 / INTO / ICEBP entered its handler with TF clear: the
        // held single-step is lost, the held data breakpoints are not.
        if (m_no_step_trap)
            held &= ~dbg::DR6_BS;
        bits |= held;
    }
    if (!bits)
        return false;
    if (s.events.mov_ss_blocking && !after_mov_ss) {
        s.events.pending_debug = bits;
        return false;
    }
    if (m_icebp) {
        // ICEBP's own #DB is already on its way: it reports the matches.
        s.dr[6] = (s.dr[6] & ~dbg::DR6_B_MASK) | (bits & dbg::DR6_B_MASK);
        return false;
    }
    deliver_debug_exception(bits);
    return true;
}
