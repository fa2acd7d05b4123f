// Virtual-8086 mode extensions (CR4.VME) and protected-mode virtual
// interrupts (CR4.PVI): SDM Vol 3A 20.3 and 20.4, Vol 2 CLI, STI, PUSHF,
// POPF, IRET and INT n. With IOPL below 3 the IF-sensitive instructions work
// on the virtual copy VIF, and INT n may go straight to the 8086 handler.
#include "cpu/core/cpu.h"

namespace {
unsigned iopl_of(u64 rflags) { return (rflags & rf::IOPL) >> rf::IOPL_SHIFT; }
} // namespace

// CLI/STI at an IOPL too low for IF act on VIF instead (SDM Vol 2A CLI):
// in V86 mode with CR4.VME, at CPL 3 with CR4.PVI.
bool Cpu::virtual_interrupt_flag() const
{
    if (iopl_of(s.rflags) == 3)
        return false;
    if (s.v86_mode())
        return s.cr4 & cr::CR4_VME;
    return s.protected_mode() && s.cpl() == 3 && (s.cr4 & cr::CR4_PVI);
}

// FLAGS as a 16-bit PUSHF (or a redirected INT n) pushes them in V86 mode
// with VME and IOPL < 3: IF is VIF's copy and IOPL reads 3.
u64 Cpu::v86_virtual_flags()
{
    u64 f = rflags() & 0xFFFF & ~rf::IF;
    if (s.rflags & rf::VIF)
        f |= rf::IF;
    return f | rf::IOPL;
}

// POPF/IRET of a 16-bit FLAGS image under VME with IOPL < 3: a set TF, or
// IF set while a virtual interrupt is pending (VIP), is #GP(0) so that the
// monitor can act; otherwise IF goes to VIF and IF/IOPL stay.
bool Cpu::v86_write_virtual_flags(u64 flags)
{
    if ((flags & rf::TF) || ((flags & rf::IF) && (s.rflags & rf::VIP)))
        return raise_gp(0);
    write_rflags(flags, (rf::ARITH | rf::DF | rf::NT) & 0xFFFF);
    s.rflags = (flags & rf::IF) ? (s.rflags | rf::VIF) : (s.rflags & ~rf::VIF);
    return true;
}

// The software interrupt redirection bitmap: 32 bytes right below the I/O
// permission bitmap in a 32-bit TSS; a clear bit redirects (SDM Vol 3A
// 20.3.3.5). Out of the TSS's limit is #GP(0).
bool Cpu::v86_interrupt_redirected(u8 vector, bool& redirected)
{
    const unsigned type = s.tr.type();
    if ((type != 0x9 && type != 0xB) || s.tr.limit < 0x67)
        return raise_gp(0);
    u64 map_base;
    if (!read_linear(s.tr.base + 0x66, 2, map_base, true))
        return false;
    const u64 offset = map_base - 32 + vector / 8;
    if (map_base < 32 || offset > s.tr.limit)
        return raise_gp(0);
    u64 bits;
    if (!read_linear(s.tr.base + offset, 1, bits, true))
        return false;
    redirected = !((bits >> (vector & 7)) & 1);
    return true;
}

// INT n to the real-mode IVT without leaving V86 mode (SDM Vol 3A Table
// 20-2, methods 5 and 6): FLAGS, CS and IP go on the 16-bit stack; with
// IOPL 3 IF is cleared, below 3 VIF (and the pushed image carries VIF).
bool Cpu::v86_interrupt_to_ivt(u8 vector)
{
    const bool virtual_if = iopl_of(s.rflags) < 3;
    u64 ip, cs;
    if (!read_linear(u64(vector) * 4, 2, ip) || !read_linear(u64(vector) * 4 + 2, 2, cs))
        return false;
    const u64 old_rsp = s.gpr[RSP];
    const u64 flags = virtual_if ? v86_virtual_flags() : rflags() & 0xFFFF;
    if (!push(flags, 2) || !push(s.seg[CS].selector, 2) || !push(next_rip & 0xFFFF, 2)) {
        s.gpr[RSP] = old_rsp;
        return false;
    }
    s.rflags &= ~(rf::TF | (virtual_if ? rf::VIF : rf::IF));
    load_segment_real(CS, static_cast<u16>(cs));
    next_rip = ip;
    // The handler is entered with TF clear: no single-step trap follows.
    suppress_single_step();
    end_block();
    return true;
}
