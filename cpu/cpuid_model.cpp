#include "cpu/cpuid_model.h"

#include <iterator>

#include <cstring>

namespace {

// Leaf 1 EDX (SDM Vol 2A, CPUID): only what the interpreter implements. APIC
// (bit 9) waits until the machine wires the local APIC to the vCPU.
constexpr u32 LEAF1_EDX = (1u << 0)    // FPU
                          | (1u << 2)  // DE
                          | (1u << 3)  // PSE
                          | (1u << 4)  // TSC
                          | (1u << 5)  // MSR
                          | (1u << 6)  // PAE
                          | (1u << 8)  // CX8
                          | (1u << 11) // SEP
                          | (1u << 13) // PGE
                          | (1u << 15) // CMOV
                          | (1u << 16) // PAT
                          | (1u << 17) // PSE-36
                          | (1u << 19) // CLFSH
                          | (1u << 23) // MMX
                          | (1u << 24) // FXSR
                          | (1u << 25) // SSE
                          | (1u << 26); // SSE2
constexpr u32 LEAF1_ECX = (1u << 0)    // SSE3
                          | (1u << 1)  // PCLMULQDQ
                          | (1u << 9)  // SSSE3
                          | (1u << 13) // CMPXCHG16B
                          | (1u << 19) // SSE4.1
                          | (1u << 20) // SSE4.2
                          | (1u << 22) // MOVBE
                          | (1u << 23) // POPCNT
                          | (1u << 25); // AES
// Leaf 7.0 EBX: FSGSBASE (0), BMI1 (3), SMEP (7), BMI2 (8), ERMS (9), ADX (19), SMAP (20).
constexpr u32 LEAF7_EBX = (1u << 0) | (1u << 3) | (1u << 7) | (1u << 8) | (1u << 9) | (1u << 19) |
                          (1u << 20);
// Leaf 7.0 ECX: LA57 (16).
constexpr u32 LEAF7_ECX = (1u << 16);
// 0x80000001 EDX: SYSCALL (11), NX (20), Page1GB (26), RDTSCP (27), LM (29).
constexpr u32 EXT1_EDX = (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29);
// 0x80000001 ECX: LAHF/SAHF in 64-bit mode (0), LZCNT/ABM (5).
constexpr u32 EXT1_ECX = (1u << 0) | (1u << 5);

u32 chars(const char* s)
{
    u32 v;
    std::memcpy(&v, s, 4);
    return v;
}

} // namespace

// The package is one socket of single-threaded cores, one per vCPU: leaf 1's
// HTT bit alone would make guests count the vCPUs as SMT siblings of one core.
unsigned CpuidModel::apic_id_bits() const
{
    unsigned bits = 0;
    while ((1u << bits) < m_cpu_count)
        ++bits;
    return bits;
}

// Leaf 4, deterministic cache parameters: 32 KiB L1d and L1i and 1 MiB L2
// per core, a 16 MiB L3 shared by the package (SDM Vol 2A CPUID leaf 04H).
CpuidResult CpuidModel::cache_leaf(u32 subleaf) const
{
    struct Cache {
        u32 type, level, ways, sets;
        bool shared;
    };
    static constexpr Cache CACHES[] = {
        {1, 1, 8, 64, false},     // data
        {2, 1, 8, 64, false},     // instruction
        {3, 2, 16, 1024, false},  // unified
        {3, 3, 16, 16384, true},  // unified, shared
    };
    CpuidResult r;
    if (subleaf >= std::size(CACHES))
        return r; // type 0: no more caches
    const Cache& c = CACHES[subleaf];
    const u32 sharing = c.shared ? m_cpu_count - 1 : 0;
    r.eax = c.type | (c.level << 5) | (1u << 8) | (sharing << 14) | ((m_cpu_count - 1) << 26);
    r.ebx = (64u - 1) | ((c.ways - 1) << 22); // 64-byte lines, one partition
    r.ecx = c.sets - 1;
    return r;
}

// Leaf 0BH, extended topology: an SMT level of one thread, then a core
// level with every vCPU (SDM Vol 2A CPUID leaf 0BH).
CpuidResult CpuidModel::topology_leaf(u32 subleaf, unsigned apic_id) const
{
    CpuidResult r;
    r.edx = apic_id;
    r.ecx = subleaf & 0xFF;
    if (subleaf == 0) {
        r.eax = 0;
        r.ebx = 1;
        r.ecx |= 1u << 8; // SMT
    } else if (subleaf == 1) {
        r.eax = apic_id_bits();
        r.ebx = m_cpu_count;
        r.ecx |= 2u << 8; // core
    }
    return r;
}

CpuidResult CpuidModel::query(u32 leaf, u32 subleaf, unsigned apic_id) const
{
    static const char brand[48] = "viridian virtual CPU";
    CpuidResult r;
    if (leaf >= 0x40000000 && leaf <= 0x4FFFFFFF)
        return m_hypervisor ? m_hypervisor(leaf, subleaf, apic_id) : r;
    switch (leaf) {
    case 0: // max standard leaf and vendor (EBX, EDX, ECX)
        // Guests key errata and feature paths on the vendor; an unknown one
        // makes Linux warn that the CPU "may be unstable". The model's
        // semantics are Intel's (SDM), so it says so, as Hyper-V passes the
        // host vendor through.
        r.eax = 0xB;
        r.ebx = chars("Genu");
        r.edx = chars("ineI");
        r.ecx = chars("ntel");
        break;
    case 1:
        // Family 6, model 0x55-ish signature kept generic: family 6, model 15, stepping 1.
        r.eax = (6u << 8) | (15u << 4) | 1u;
        r.ebx = (8u << 8) | (m_cpu_count << 16) | (apic_id << 24); // CLFLUSH line 64 bytes
        r.ecx = LEAF1_ECX | (m_hypervisor ? (1u << 31) : 0) |
                (m_local_apic ? (1u << 21) | (1u << 24) : 0); // x2APIC, TSC-deadline
        r.edx = LEAF1_EDX | (m_cpu_count > 1 ? (1u << 28) : 0) | // HTT when > 1 logical CPU
                (m_local_apic ? (1u << 9) : 0);                   // APIC
        break;
    case 4:
        r = cache_leaf(subleaf);
        break;
    case 0xB:
        r = topology_leaf(subleaf, apic_id);
        break;
    case 7:
        if (subleaf == 0) {
            r.ebx = LEAF7_EBX;
            r.ecx = LEAF7_ECX;
        }
        break;
    case 0x80000000:
        r.eax = 0x80000008;
        break;
    case 0x80000001:
        r.ecx = EXT1_ECX;
        r.edx = EXT1_EDX;
        break;
    case 0x80000002:
    case 0x80000003:
    case 0x80000004: {
        const char* part = brand + (leaf - 0x80000002) * 16;
        std::memcpy(&r.eax, part, 4);
        std::memcpy(&r.ebx, part + 4, 4);
        std::memcpy(&r.ecx, part + 8, 4);
        std::memcpy(&r.edx, part + 12, 4);
        break;
    }
    case 0x80000008:
        r.eax = PHYS_BITS | (LINEAR_BITS << 8);
        break;
    default:
        // Intel answers an out-of-range leaf with the highest basic leaf's data;
        // zeros are what AMD does and what guests handle best.
        break;
    }
    return r;
}
