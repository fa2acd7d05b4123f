// Descriptor tables and segment-register loads (SDM Vol 3A ch. 3 and 5).
#include "cpu/core/cpu.h"

namespace {

u32 selector_error(u16 selector) { return selector & 0xFFFC; }

bool is_code(u64 desc) { return (desc >> 43) & 1; }
bool is_system(u64 desc) { return !((desc >> 44) & 1); }
unsigned desc_dpl(u64 desc) { return (desc >> 45) & 3; }
bool desc_present(u64 desc) { return (desc >> 47) & 1; }
unsigned desc_type(u64 desc) { return (desc >> 40) & 0xF; }

} // namespace

bool Cpu::read_descriptor(u16 selector, u64& low, u64& high, bool& in_bounds)
{
    const bool local = selector & 4;
    const u64 base = local ? s.ldtr.base : s.gdtr.base;
    const u32 limit = local ? s.ldtr.limit : s.gdtr.limit;
    const u32 offset = selector & 0xFFF8u;
    in_bounds = !(local && (s.ldtr.attr & Segment::UNUSABLE)) && offset + 7 <= limit;
    if (!in_bounds)
        return true;
    if (!read_linear(base + offset, 8, low, true))
        return false;
    high = 0;
    // System descriptors are 16 bytes in long mode; read the upper half when it fits.
    if (s.long_mode_active() && is_system(low) && offset + 15 <= limit)
        return read_linear(base + offset + 8, 8, high, true);
    return true;
}

void Cpu::set_segment_from_descriptor(Segment& out, u16 selector, u64 desc)
{
    out.selector = selector;
    out.base = ((desc >> 16) & 0xFFFFFF) | ((desc >> 32) & 0xFF000000);
    u32 limit = static_cast<u32>((desc & 0xFFFF) | ((desc >> 32) & 0xF0000));
    if ((desc >> 55) & 1)
        limit = (limit << 12) | 0xFFF;
    out.limit = limit;
    out.attr = static_cast<u32>(((desc >> 40) & 0xFF) | (((desc >> 52) & 0xF) << 8));
}

bool Cpu::set_descriptor_accessed(u16 selector, u64 desc)
{
    if (desc & (1ull << 40))
        return true;
    const u64 base = (selector & 4) ? s.ldtr.base : s.gdtr.base;
    const u64 addr = base + (selector & 0xFFF8u) + 5;
    return write_linear(addr, 1, ((desc >> 40) & 0xFF) | 1, true);
}

void Cpu::load_segment_real(unsigned seg, u16 selector)
{
    Segment& sg = s.seg[seg];
    sg.selector = selector;
    sg.base = u64(selector) << 4;
    if (s.v86_mode()) {
        sg.limit = 0xFFFF;
        sg.attr = Segment::P | Segment::S | (3u << 5) | (seg == CS ? 0xB : 0x3);
    } else {
        // Real mode keeps the hidden limit and attributes ("unreal mode").
        sg.attr &= ~Segment::UNUSABLE;
        sg.attr |= Segment::P;
    }
}

bool Cpu::load_segment(unsigned seg, u16 selector)
{
    if (!s.protected_mode() || s.v86_mode()) {
        load_segment_real(seg, selector);
        return true;
    }
    const unsigned cpl = s.cpl();
    const unsigned rpl = selector & 3;
    if ((selector & 0xFFFC) == 0) {
        // A null selector: legal for data segments; for SS only in 64-bit mode
        // at CPL < 3 with RPL == CPL (SDM Vol 2B, MOV/POP).
        if (seg == SS && !(s.in_64bit_code() && cpl < 3 && rpl == cpl))
            return raise_gp(0);
        Segment& sg = s.seg[seg];
        sg.selector = selector;
        sg.base = 0; // Intel clears the base, also of FS/GS in 64-bit mode
        sg.limit = 0;
        sg.attr = Segment::UNUSABLE | (seg == SS ? (cpl << 5) : 0);
        return true;
    }
    u64 desc, high;
    bool in_bounds;
    if (!read_descriptor(selector, desc, high, in_bounds))
        return false;
    if (!in_bounds)
        return raise_gp(selector_error(selector));
    const unsigned dpl = desc_dpl(desc);
    if (seg == SS) {
        const bool writable_data = !is_system(desc) && !is_code(desc) && (desc_type(desc) & 2);
        if (rpl != cpl || !writable_data || dpl != cpl)
            return raise_gp(selector_error(selector));
        if (!desc_present(desc))
            return raise(Fault{VEC_SS, true, selector_error(selector), 0});
    } else {
        const bool readable = !is_system(desc) && (!is_code(desc) || (desc_type(desc) & 2));
        if (!readable)
            return raise_gp(selector_error(selector));
        const bool conforming_code = is_code(desc) && (desc_type(desc) & 4);
        if (!conforming_code && (rpl > dpl || cpl > dpl))
            return raise_gp(selector_error(selector));
        if (!desc_present(desc))
            return raise(Fault{VEC_NP, true, selector_error(selector), 0});
    }
    if (!set_descriptor_accessed(selector, desc))
        return false;
    set_segment_from_descriptor(s.seg[seg], selector, desc | (1ull << 40));
    return true;
}
