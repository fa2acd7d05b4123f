#include "mmu/page_walker.h"

#include <array>

namespace {

// Paging-structure entry bits shared by all modes (SDM Vol 3A 4.3 tables 4-4..4-6,
// 4.4.2 tables 4-8..4-11, 4.5.4 tables 4-15..4-20).
constexpr u64 PTE_P = 1ull << 0, PTE_RW = 1ull << 1, PTE_US = 1ull << 2, PTE_A = 1ull << 5,
              PTE_D = 1ull << 6, PTE_PS = 1ull << 7, PTE_G = 1ull << 8, PTE_XD = 1ull << 63;

// Bits hi..lo inclusive; empty when hi < lo.
constexpr u64 bit_range(unsigned hi, unsigned lo)
{
    return hi < lo ? 0 : (~0ull >> (63 - hi)) & (~0ull << lo);
}

// Physical-address field of an entry that maps (or points to) a 2^shift-aligned frame.
constexpr u64 frame_mask(unsigned shift)
{
    return bit_range(PHYS_ADDR_BITS - 1, shift);
}

// 32-bit paging: with PSE-36 a 4 MiB PDE holds physical bits (M-1):32 in bits
// (M-20):13, where M = min(MAXPHYADDR, 40); bits 21:(M-19) are reserved (SDM Vol 3A
// 4.3, table 4-4).
constexpr unsigned LEGACY_PHYS_BITS = PHYS_ADDR_BITS < 40 ? PHYS_ADDR_BITS : 40;
constexpr u64 PSE36_HIGH_FIELD = bit_range(LEGACY_PHYS_BITS - 20, 13);
constexpr u64 PSE36_RESERVED = bit_range(21, LEGACY_PHYS_BITS - 19);

// PAE entries reserve bits 62:M; 4- and 5-level entries only 51:M, leaving 62:52 to
// software (and 62:59 to protection keys) (SDM Vol 3A tables 4-8..4-11, 4-15..4-20).
constexpr u64 PAE_HIGH_RESERVED = bit_range(62, PHYS_ADDR_BITS);
constexpr u64 LONG_HIGH_RESERVED = bit_range(51, PHYS_ADDR_BITS);
// A PAE PDPTE has no R/W, U/S, A or XD: bits 2:1, 8:5 and 63:M are reserved
// (SDM Vol 3A 4.4.1, table 4-8).
constexpr u64 PDPTE_RESERVED = bit_range(63, PHYS_ADDR_BITS) | bit_range(8, 5) | bit_range(2, 1);

class Walker {
public:
    Walker(PhysicalMemory& mem, const PagingRegs& regs, const WalkRequest& req)
        : m_mem(mem), m_regs(regs), m_req(req)
    {
        m_long_mode = regs.efer & cr::EFER_LMA;
        m_linear = m_long_mode ? req.vaddr : req.vaddr & 0xffff'ffff;
        m_nxe = regs.efer & cr::EFER_NXE;
    }

    std::optional<Fault> walk(Translation& out);

private:
    std::optional<Fault> walk_32bit(Translation& out);
    std::optional<Fault> walk_pae(Translation& out);
    std::optional<Fault> walk_long(unsigned levels, Translation& out);
    std::optional<Fault> walk_levels(GuestPhys table, unsigned top_level, u64 high_reserved,
                                     Translation& out);

    // Reads an entry (4 or 8 bytes) and fails if it is not present or has a
    // reserved bit set; reserved bits of a not-present entry are not checked.
    std::optional<Fault> load(GuestPhys addr, unsigned size, u64& entry);
    std::optional<Fault> check_reserved(u64 entry, u64 reserved);
    // Folds an entry's rights into the effective rights of the walk and
    // remembers it for its accessed bit.
    void use(GuestPhys addr, u64 entry);
    // Checks the access against the effective rights and, if allowed, sets A/D
    // bits and fills out. The leaf is the last entry passed to use().
    std::optional<Fault> finish(u64 leaf, GuestPhys phys, u64 page_size, Translation& out);

    u32 error_code(u32 cause) const;
    Fault page_fault(u32 cause) const { return Fault{VEC_PF, true, error_code(cause), m_linear}; }

    PhysicalMemory& m_mem;
    const PagingRegs& m_regs;
    const WalkRequest& m_req;
    GuestVirt m_linear = 0;
    bool m_long_mode = false;
    bool m_nxe = false;

    bool m_user = true;     // U/S = 1 in every entry
    bool m_writable = true; // R/W = 1 in every entry
    bool m_no_xd = true;    // XD = 0 in every entry (or XD disabled)
    std::array<GuestPhys, 5> m_used{};
    std::array<u8, 5> m_used_low{}; // each used entry's low byte (A and D) as read
    unsigned m_used_count = 0;
};

u32 Walker::error_code(u32 cause) const
{
    // SDM Vol 3A 4.7: W/R and U/S describe the access, not the entries; I/D is
    // reported only where the CPU could tell fetches apart (XD in use or SMEP).
    u32 code = cause;
    if (m_req.access == Access::Write)
        code |= PFEC_WRITE;
    if (m_req.user)
        code |= PFEC_USER;
    bool pae = m_regs.cr4 & cr::CR4_PAE;
    bool smep = m_regs.cr4 & cr::CR4_SMEP;
    if (m_req.access == Access::Execute && ((m_nxe && pae) || smep))
        code |= PFEC_FETCH;
    return code;
}

std::optional<Fault> Walker::load(GuestPhys addr, unsigned size, u64& entry)
{
    entry = m_mem.read(addr, size);
    if (!(entry & PTE_P))
        return page_fault(0);
    return std::nullopt;
}

std::optional<Fault> Walker::check_reserved(u64 entry, u64 reserved)
{
    // RSVD implies P: reserved bits are checked only in present entries (SDM Vol 3A 4.7).
    if (entry & reserved)
        return page_fault(PFEC_PRESENT | PFEC_RSVD);
    return std::nullopt;
}

void Walker::use(GuestPhys addr, u64 entry)
{
    m_user = m_user && (entry & PTE_US);
    m_writable = m_writable && (entry & PTE_RW);
    // 32-bit paging reads 4-byte entries, so bit 63 is never set there.
    if (m_nxe)
        m_no_xd = m_no_xd && !(entry & PTE_XD);
    m_used_low[m_used_count] = static_cast<u8>(entry);
    m_used[m_used_count++] = addr;
}

std::optional<Fault> Walker::finish(u64 leaf, GuestPhys phys, u64 page_size, Translation& out)
{
    bool wp = m_regs.cr0 & cr::CR0_WP;
    bool write = m_req.access == Access::Write;
    bool fetch = m_req.access == Access::Execute;

    // Access rights, SDM Vol 3A 4.6.1. A "user-mode address" is one whose every
    // entry has U/S = 1.
    bool allowed = true;
    if (m_req.user) {
        allowed = m_user && (!write || m_writable) && (!fetch || m_no_xd);
    } else if (fetch) {
        bool smep = m_regs.cr4 & cr::CR4_SMEP;
        allowed = m_no_xd && !(m_user && smep);
    } else {
        // SMAP covers supervisor data accesses to user-mode addresses, except
        // explicit ones with EFLAGS.AC = 1 (folded by the caller into smap_override).
        bool smap = m_regs.cr4 & cr::CR4_SMAP;
        allowed = !(m_user && smap && !m_req.smap_override) && (!write || !wp || m_writable);
    }
    if (!allowed)
        return page_fault(PFEC_PRESENT);

    // Accessed and dirty bits (SDM Vol 3A 4.8). Hardware may set A bits in the
    // entries it used even when the access then faults for a permission reason,
    // and may set them speculatively, so no guest can depend on either; we set A
    // and D only once the whole translation succeeds, so a faulting access leaves
    // guest memory untouched. A is set top-down on every
    // entry used; D only on the leaf and only for a write. Each update writes just
    // the entry's low byte (where A and D live) and only when a bit changes, so
    // untouched tables never look written to the code-page tracking.
    for (unsigned i = 0; i < m_used_count && !m_req.inspect_only; ++i) {
        bool is_leaf = i + 1 == m_used_count;
        u8 set = u8(PTE_A | (is_leaf && write ? PTE_D : 0));
        // The byte as the walk read it; a table that maps itself may have had
        // A set by an earlier step, which `low | set` keeps.
        const u8 low = m_used_low[i];
        if ((low & set) != set)
            m_mem.write(m_used[i], 1, low | set);
    }

    out.phys = phys;
    out.page_size = page_size;
    out.writable = m_req.user ? m_writable : (m_writable || !wp);
    out.user = m_user;
    out.executable = m_no_xd;
    // G is honoured only with CR4.PGE (SDM Vol 3A 4.10.2.4).
    out.global = (m_regs.cr4 & cr::CR4_PGE) && (leaf & PTE_G);
    out.dirty = (leaf & PTE_D) || write;
    return std::nullopt;
}

// 32-bit paging, SDM Vol 3A 4.3: a page directory of 1024 4-byte entries at CR3,
// optionally 4 MiB pages with CR4.PSE (and PSE-36 address bits). No reserved
// bits exist except in 4 MiB PDEs, and there is no XD.
std::optional<Fault> Walker::walk_32bit(Translation& out)
{
    GuestPhys pde_addr = (m_regs.cr3 & 0xffff'f000) | ((m_linear >> 22) << 2);
    u64 pde = 0;
    if (auto fault = load(pde_addr, 4, pde))
        return fault;
    if ((m_regs.cr4 & cr::CR4_PSE) && (pde & PTE_PS)) {
        if (auto fault = check_reserved(pde, PSE36_RESERVED))
            return fault;
        use(pde_addr, pde);
        GuestPhys base = (pde & 0xffc0'0000) | ((pde & PSE36_HIGH_FIELD) >> 13 << 32);
        return finish(pde, base | (m_linear & 0x3f'ffff), 4ull << 20, out);
    }
    // Without CR4.PSE the PS bit is ignored and the PDE always points to a table.
    use(pde_addr, pde);

    GuestPhys pte_addr = (pde & 0xffff'f000) | (((m_linear >> 12) & 0x3ff) << 2);
    u64 pte = 0;
    if (auto fault = load(pte_addr, 4, pte))
        return fault;
    use(pte_addr, pte);
    return finish(pte, (pte & 0xffff'f000) | (m_linear & 0xfff), PAGE_SIZE, out);
}

// Walks 8-byte entries from top_level (5 = PML5 ... 1 = page table) down, shared
// by PAE (from the page directory) and 4/5-level paging. Large pages: PS in a
// PDE (2 MiB) or a 4-level PDPTE (1 GiB); PS in a PML4E or PML5E is reserved.
std::optional<Fault> Walker::walk_levels(GuestPhys table, unsigned top_level, u64 high_reserved,
                                         Translation& out)
{
    u64 xd_reserved = m_nxe ? 0 : PTE_XD; // XD is reserved unless EFER.NXE
    for (unsigned level = top_level; level >= 1; --level) {
        unsigned shift = 12 + 9 * (level - 1);
        GuestPhys entry_addr = table | (((m_linear >> shift) & 0x1ff) << 3);
        u64 entry = 0;
        if (auto fault = load(entry_addr, 8, entry))
            return fault;
        u64 reserved = high_reserved | xd_reserved;
        bool large = false;
        if (level >= 4)
            reserved |= PTE_PS;
        else if (level >= 2 && (entry & PTE_PS)) {
            large = true;
            // Between the PAT bit (12) and the frame address (SDM tables 4-9, 4-17, 4-18).
            reserved |= bit_range(shift - 1, 13);
        }
        if (auto fault = check_reserved(entry, reserved))
            return fault;
        use(entry_addr, entry);
        if (large || level == 1) {
            GuestPhys phys = (entry & frame_mask(shift)) | (m_linear & bit_range(shift - 1, 0));
            return finish(entry, phys, 1ull << shift, out);
        }
        table = entry & frame_mask(12);
    }
    return std::nullopt; // not reached: level 1 always finishes
}

// PAE paging, SDM Vol 3A 4.4. The processor loads the four PDPTEs when CR3 is
// written (4.4.1) and raises #GP there for a reserved bit; we read them on every
// walk and report reserved bits as #PF with RSVD. A guest that writes valid
// PDPTEs and then loads CR3 cannot tell; one that edits a PDPTE without
// reloading CR3 sees the change here sooner than on hardware.
std::optional<Fault> Walker::walk_pae(Translation& out)
{
    GuestPhys pdpte_addr = (m_regs.cr3 & 0xffff'ffe0) | ((m_linear >> 30) << 3);
    u64 pdpte = 0;
    if (auto fault = load(pdpte_addr, 8, pdpte))
        return fault;
    if (auto fault = check_reserved(pdpte, PDPTE_RESERVED))
        return fault;
    // PDPTEs carry no rights and no accessed bit: not folded in, not recorded.
    return walk_levels(pdpte & frame_mask(12), 2, PAE_HIGH_RESERVED, out);
}

// 4-level and 5-level paging, SDM Vol 3A 4.5. CR3 bits 11:0 (PCID or PWT/PCD)
// and bits 63:M are not part of the table address. Protection keys (CR4.PKE,
// leaf bits 62:59) are not modelled: those bits are ignored like 58:52.
std::optional<Fault> Walker::walk_long(unsigned levels, Translation& out)
{
    return walk_levels(m_regs.cr3 & frame_mask(12), levels, LONG_HIGH_RESERVED, out);
}

std::optional<Fault> Walker::walk(Translation& out)
{
    if (!(m_regs.cr0 & cr::CR0_PG)) {
        out = Translation{};
        out.phys = m_linear;
        out.writable = out.user = out.executable = out.dirty = true;
        return std::nullopt;
    }
    if (m_long_mode)
        return walk_long(m_regs.cr4 & cr::CR4_LA57 ? 5 : 4, out);
    if (m_regs.cr4 & cr::CR4_PAE)
        return walk_pae(out);
    return walk_32bit(out);
}

} // namespace

std::optional<Fault> walk_page_tables(PhysicalMemory& mem, const PagingRegs& regs,
                                      const WalkRequest& req, Translation& out)
{
    Walker walker(mem, regs, req);
    return walker.walk(out);
}
