// Guest memory accesses: segmentation (limits, types, canonical checks),
// paging through the soft TLB, and the stack.
#include "cpu/core/cpu.h"

#include <cstring>

namespace {

u64 load_le(const u8* p, unsigned size)
{
    u64 v = 0;
    std::memcpy(&v, p, size);
    return v;
}

void store_le(u8* p, unsigned size, u64 v)
{
    std::memcpy(p, &v, size);
}

} // namespace

bool Cpu::translate(u64 linear, Access access, bool user, SoftTlb::Entry*& entry)
{
    const u64 vpn = linear >> 12;
    SoftTlb::Entry& e = m_tlb.slot(user, linear);
    const u64 tag = access == Access::Read ? e.read_tag
                    : access == Access::Write ? e.write_tag
                                              : e.exec_tag;
    if (tag == vpn) {
        entry = &e;
        return true;
    }

    // A supervisor data access to a user page that SMAP allows because
    // EFLAGS.AC is set (copy_to_user and friends) has its own part of the
    // TLB, looked up only while that holds.
    const bool implicit_supervisor = !user && s.cpl() == 3;
    const bool smap_override = !user && !implicit_supervisor && (s.rflags & rf::AC);
    if (smap_override && access != Access::Execute && (s.cr4 & cr::CR4_SMAP))
        if (SoftTlb::Entry* o = m_tlb.find_override(linear))
            if ((access == Access::Read ? o->read_tag : o->write_tag) == vpn) {
                entry = o;
                return true;
            }

    // The fast paths in cpu.h skip the canonical check because no entry is
    // ever filled for a non-canonical page; callers check it before this
    // with the right fault (#SS for the stack), so this is a backstop.
    if (s.long_mode_active() && !is_canonical(linear)) [[unlikely]]
        return raise_gp(0);
    WalkRequest req;
    req.vaddr = linear;
    req.access = access;
    req.user = user;
    req.smap_override = smap_override;
    Translation tr;
    PagingRegs regs{s.cr0, s.cr3, s.cr4, s.msr.efer};
    if (auto fault = walk_page_tables(mem, regs, req, tr))
        return raise(*fault);

    // A data access that SMAP let through to a user page got there by the
    // override (the walk faults otherwise): it goes to the override part,
    // never to the supervisor half, where it would pass with AC clear too.
    // Pages with a data breakpoint stay out of the read/write tags, so that
    // every access to them reaches slow_read/slow_write, which report it.
    const bool smap_sensitive = !user && tr.user && (s.cr4 & cr::CR4_SMAP);
    const bool watched = any_page_watched() && page_watched(vpn);
    const bool to_override = smap_sensitive && access != Access::Execute && !watched;
    const bool uncached_data = watched || (smap_sensitive && !to_override);
    const GuestPhys page = tr.phys & PAGE_MASK;
    SoftTlb::Entry& t =
        m_tlb.begin_fill(to_override ? m_tlb.override_slot(linear) : e, vpn, page, tr.page_size);
    t.phys_page = page;
    t.global = tr.global;
    u8* ram = mem.ram_page(page);
    t.host_page = ram ? ram : const_cast<u8*>(mem.readable_page(page));
    switch (access) {
    case Access::Execute:
        t.exec_tag = vpn;
        break;
    case Access::Write:
        if (!uncached_data) {
            t.read_tag = vpn;
            if (ram && mem.may_cache_writes(page))
                t.write_tag = vpn;
        }
        break;
    case Access::Read:
        if (!uncached_data) {
            t.read_tag = vpn;
            if (ram && tr.writable && tr.dirty && mem.may_cache_writes(page))
                t.write_tag = vpn;
        }
        break;
    }
    entry = &t;
    if (uncached_data && access != Access::Execute) {
        // Hand back a private copy so the tags stay unset.
        m_scratch_entry = t;
        m_scratch_entry.read_tag = m_scratch_entry.write_tag = SoftTlb::INVALID;
        entry = &m_scratch_entry;
    }
    return true;
}

bool Cpu::slow_read(u64 linear, unsigned size, u64& value, bool user, Access access, u64 wrap)
{
    const unsigned offset = linear & 0xFFF;
    if (offset + size > PAGE_SIZE) {
        // Split across two pages; both must translate before the value counts.
        unsigned first = static_cast<unsigned>(PAGE_SIZE - offset);
        u64 lo, hi;
        const u64 second_linear = (linear + first) & wrap;
        if (!slow_read(linear, first, lo, user, access, wrap) ||
            !slow_read(second_linear, size - first, hi, user, access, wrap))
            return false;
        value = lo | (hi << (first * 8));
        return true;
    }
    SoftTlb::Entry* e;
    if (!translate(linear, access, user, e))
        return false;
    if (e->host_page)
        value = load_le(e->host_page + offset, size);
    else
        value = read_phys_split(e->phys_page + offset, size);
    if (access != Access::Execute)
        note_data_access(linear, size, false);
    return true;
}

u64 Cpu::read_phys_split(GuestPhys addr, unsigned size)
{
    // MMIO accesses are issued at their natural size when aligned.
    if (size == 1 || size == 2 || size == 4 || size == 8)
        return mem.read(addr, size, apic_id);
    u64 v = 0;
    for (unsigned i = 0; i < size; ++i)
        v |= mem.read(addr + i, 1, apic_id) << (8 * i);
    return v;
}

bool Cpu::slow_write(u64 linear, unsigned size, u64 value, bool user, u64 wrap)
{
    const unsigned offset = linear & 0xFFF;
    if (offset + size > PAGE_SIZE) {
        unsigned first = static_cast<unsigned>(PAGE_SIZE - offset);
        const u64 second_linear = (linear + first) & wrap;
        // Probe both pages for write before changing either (no partial store).
        SoftTlb::Entry* e;
        if (!translate(linear, Access::Write, user, e) ||
            !translate(second_linear, Access::Write, user, e))
            return false;
        return slow_write(linear, first, value, user, wrap) &&
               slow_write(second_linear, size - first, value >> (first * 8), user, wrap);
    }
    SoftTlb::Entry* e;
    if (!translate(linear, Access::Write, user, e))
        return false;
    const GuestPhys phys = e->phys_page + offset;
    if (e->host_page && mem.ram_page(phys)) {
        mem.note_write(phys, size);
        store_le(e->host_page + offset, size, value);
    } else if (size == 1 || size == 2 || size == 4 || size == 8) {
        mem.write(phys, size, value, apic_id);
    } else {
        for (unsigned i = 0; i < size; ++i)
            mem.write(phys + i, 1, (value >> (8 * i)) & 0xFF, apic_id);
    }
    note_data_access(linear, size, true);
    return true;
}

bool Cpu::read_linear(u64 linear, unsigned size, u64& value, bool supervisor)
{
    const bool user = access_is_user(supervisor);
    SoftTlb::Entry& e = m_tlb.slot(user, linear);
    const unsigned offset = linear & 0xFFF;
    if (e.read_tag == (linear >> 12) && e.host_page && offset + size <= PAGE_SIZE) [[likely]] {
        value = load_le(e.host_page + offset, size);
        return true;
    }
    return slow_read(linear, size, value, user, Access::Read, linear_wrap(supervisor));
}

bool Cpu::write_linear(u64 linear, unsigned size, u64 value, bool supervisor)
{
    const bool user = access_is_user(supervisor);
    SoftTlb::Entry& e = m_tlb.slot(user, linear);
    const unsigned offset = linear & 0xFFF;
    // Write entries never cover code pages or clean pages while the dirty log
    // is on (see SoftTlb::drop_stale_writes).
    if (e.write_tag == (linear >> 12) && offset + size <= PAGE_SIZE) [[likely]] {
        store_le(e.host_page + offset, size, value);
        return true;
    }
    return slow_write(linear, size, value, user, linear_wrap(supervisor));
}

bool Cpu::segment_linear(unsigned seg, u64 offset, unsigned size, bool write, u64& linear)
{
    if (s.long_mode_active() && s.in_64bit_code()) {
        linear = offset + (seg >= FS ? s.seg[seg].base : 0);
        if (!is_canonical(linear) || !is_canonical(linear + size - 1)) [[unlikely]] {
            // An access that starts canonical and runs past the end of the
            // lower half is checked for alignment first on Intel (Intel Xeon
            // host, seed 101 case 27730 `cvtpi2pd xmm0, [rsi]` with RSI =
            // 0x7FFFFFFFFFFF and alignment checking on: #AC, not #GP).
            if (intel() && is_canonical(linear) && !check_alignment(linear, size))
                return false;
            return seg == SS ? raise_ss(0) : raise_gp(0);
        }
        return true;
    }
    const Segment& sg = s.seg[seg];
    const bool checks_types = s.protected_mode() && !s.v86_mode();
    if (checks_types) {
        if (sg.attr & Segment::UNUSABLE) [[unlikely]]
            return seg == SS ? raise_ss(0) : raise_gp(0);
        const bool code = sg.type() & 0x8;
        if (write ? (code || !(sg.type() & 0x2)) : (code && !(sg.type() & 0x2))) [[unlikely]]
            return seg == SS ? raise_ss(0) : raise_gp(0);
    }
    const u64 last = offset + size - 1;
    const bool expand_down = !(sg.type() & 0x8) && (sg.type() & 0x4) && checks_types;
    if (expand_down) {
        const u64 upper = (sg.attr & Segment::DB) ? 0xFFFFFFFFull : 0xFFFFull;
        if (offset <= sg.limit || last > upper) [[unlikely]]
            return seg == SS ? raise_ss(0) : raise_gp(0);
    } else if (last > sg.limit && !(intel() && sg.limit == 0xFFFFFFFF)) [[unlikely]] {
        // With an effective limit of FFFFFFFFH an access past it "may or may
        // not" fault (SDM Vol 3A 5.3). Intel's does not: the linear address
        // wraps to 0 and paging decides (Intel host: seed 1 case 2108
        // `vperm2i128 ymm6, ymm2, [ecx]` with ECX = 0xFFFFFFFF is #PF at
        // 0xFFFFFFFF, and #AC comes next for a misaligned one, seed 1 case
        // 37570). AMD's faults: #GP, or #SS for SS (AMD host).
        return seg == SS ? raise_ss(0) : raise_gp(0);
    }
    linear = (sg.base + offset) & 0xFFFFFFFF;
    return true;
}

bool Cpu::check_alignment(u64 linear, unsigned size)
{
    // #AC: CR0.AM, EFLAGS.AC and CPL 3 together (SDM Vol 3A 6.15, vector 17).
    if ((s.cr0 & cr::CR0_AM) && (s.rflags & rf::AC) && s.cpl() == 3 && (linear & (size - 1)))
        return raise(Fault{VEC_AC, true, 0, 0});
    return true;
}

bool Cpu::read_mem_slow(unsigned seg, u64 offset, unsigned size, u64& value)
{
    u64 linear;
    if (!segment_linear(seg, offset, size, false, linear))
        return false;
    if ((s.cr0 & cr::CR0_AM) && !check_alignment(linear, size)) [[unlikely]]
        return false;
    return read_linear(linear, size, value);
}

bool Cpu::write_mem_slow(unsigned seg, u64 offset, unsigned size, u64 value)
{
    u64 linear;
    if (!segment_linear(seg, offset, size, true, linear))
        return false;
    if ((s.cr0 & cr::CR0_AM) && !check_alignment(linear, size)) [[unlikely]]
        return false;
    return write_linear(linear, size, value);
}

unsigned Cpu::stack_addr_size() const
{
    if (s.in_64bit_code())
        return 8;
    return (s.seg[SS].attr & Segment::DB) ? 4 : 2;
}

bool Cpu::push(u64 value, unsigned size)
{
    const unsigned as = stack_addr_size();
    const u64 rsp = (s.gpr[RSP] - size) & size_mask(as);
    if (!write_mem(SS, rsp, size, value))
        return false;
    set_gpr(RSP, as, rsp);
    return true;
}

bool Cpu::pop(unsigned size, u64& value)
{
    const unsigned as = stack_addr_size();
    const u64 rsp = s.gpr[RSP] & size_mask(as);
    if (!read_mem(SS, rsp, size, value))
        return false;
    set_gpr(RSP, as, rsp + size);
    return true;
}
