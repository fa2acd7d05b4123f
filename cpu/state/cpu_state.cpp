#include "cpu/state/cpu_state.h"

CpuState power_on_state(unsigned apic_id)
{
    CpuState s;
    if (apic_id != 0)
        s.msr.apic_base &= ~(1ull << 8);
    for (auto& seg : s.seg) {
        seg = Segment{};
        seg.attr = Segment::P | Segment::S | 0x3; // read/write data, accessed
    }
    s.seg[CS].selector = 0xF000;
    s.seg[CS].base = 0xFFFF0000;
    s.seg[CS].attr = Segment::P | Segment::S | 0xB; // execute/read, accessed
    s.ldtr.attr = Segment::P | 0x2;
    s.tr.attr = Segment::P | 0xB;
    s.gpr[RDX] = 0x600; // family 6 reset signature
    return s;
}
