#include "cpu/cpuid_model.h"

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
                          | (1u << 25) // AES
                          | (1u << 26)  // XSAVE
                          | (1u << 30); // RDRAND
constexpr u32 LEAF1_ECX_OSXSAVE = 1u << 27;
// Leaf 7.0 EBX: FSGSBASE (0), BMI1 (3), SMEP (7), BMI2 (8), ERMS (9), RDSEED (18), ADX (19),
// SMAP (20).
constexpr u32 LEAF7_EBX = (1u << 0) | (1u << 3) | (1u << 7) | (1u << 8) | (1u << 9) | (1u << 18) |
                          (1u << 19) | (1u << 20);
// Leaf 7.0 ECX: LA57 (16).
constexpr u32 LEAF7_ECX = (1u << 16);
// 0x80000001 EDX: SYSCALL (11), NX (20), Page1GB (26), RDTSCP (27), LM (29).
constexpr u32 EXT1_EDX = (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29);
// 0x80000001 ECX: LAHF/SAHF in 64-bit mode (0), LZCNT/ABM (5).
constexpr u32 EXT1_ECX = (1u << 0) | (1u << 5);
// 0xD.1 EAX: XSAVEOPT (0), XSAVEC and the compacted XRSTOR (1), XGETBV with
// ECX = 1 (2). XSAVES/XRSTORS (3) need IA32_XSS, which is not modelled.
constexpr u32 LEAFD1_EAX = (1u << 0) | (1u << 1) | (1u << 2);

constexpr std::array<u32, static_cast<size_t>(FeatureWord::Count)> IMPLEMENTED = {
    LEAF1_ECX, LEAF1_EDX, LEAF7_EBX, LEAF7_ECX, EXT1_ECX, EXT1_EDX, LEAFD1_EAX,
};

u32 chars(const char* s)
{
    u32 v;
    std::memcpy(&v, s, 4);
    return v;
}

} // namespace

u32 CpuidModel::word(FeatureWord w) const
{
    const auto i = static_cast<size_t>(w);
    return IMPLEMENTED[i] & ~m_removed[i];
}

bool CpuidModel::has(FeatureBit f) const
{
    return (word(f.word) >> f.bit) & 1;
}

u64 CpuidModel::xcr0_supported() const
{
    if (!has(cpufeat::XSAVE))
        return xfeat::X87;
    return xfeat::X87 | xfeat::SSE | (has(cpufeat::AVX) ? xfeat::AVX : 0);
}

unsigned CpuidModel::xsave_size(u64 xcr0)
{
    return (xcr0 & xfeat::AVX) ? XSAVE_AVX_OFFSET + XSAVE_AVX_SIZE
                               : XSAVE_LEGACY_SIZE + XSAVE_HEADER_SIZE;
}

CpuidResult CpuidModel::query(u32 leaf, u32 subleaf, unsigned apic_id, const CpuidContext& ctx) const
{
    static const char brand[48] = "viridian virtual CPU";
    CpuidResult r;
    if (leaf >= 0x40000000 && leaf <= 0x4FFFFFFF)
        return m_hypervisor ? m_hypervisor(leaf, subleaf, apic_id) : r;
    const auto removed = [this](FeatureWord w) { return m_removed[static_cast<size_t>(w)]; };
    switch (leaf) {
    case 0: // max standard leaf and vendor (EBX, EDX, ECX)
        // Guests key errata and feature paths on the vendor; an unknown one
        // makes Linux warn that the CPU "may be unstable". The model's
        // semantics are Intel's (SDM), so it says so, as Hyper-V passes the
        // host vendor through.
        r.eax = 0xD;
        r.ebx = chars("Genu");
        r.edx = chars("ineI");
        r.ecx = chars("ntel");
        break;
    case 1:
        // Family 6, model 0x55-ish signature kept generic: family 6, model 15, stepping 1.
        r.eax = (6u << 8) | (15u << 4) | 1u;
        r.ebx = (8u << 8) | (m_cpu_count << 16) | (apic_id << 24); // CLFLUSH line 64 bytes
        r.ecx = (word(FeatureWord::Leaf1Ecx) | (m_hypervisor ? (1u << 31) : 0) |
                 (m_local_apic ? (1u << 21) | (1u << 24) : 0)) & // x2APIC, TSC-deadline
                ~removed(FeatureWord::Leaf1Ecx);
        if (ctx.osxsave && has(cpufeat::XSAVE))
            r.ecx |= LEAF1_ECX_OSXSAVE;
        r.edx = (word(FeatureWord::Leaf1Edx) |
                 (m_cpu_count > 1 ? (1u << 28) : 0) | // HTT when > 1 logical CPU
                 (m_local_apic ? (1u << 9) : 0)) &    // APIC
                ~removed(FeatureWord::Leaf1Edx);
        break;
    case 7:
        if (subleaf == 0) {
            r.ebx = word(FeatureWord::Leaf7Ebx);
            r.ecx = word(FeatureWord::Leaf7Ecx);
        }
        break;
    case 0xD: // XSAVE state components (SDM Vol 1 13.2, Vol 2A CPUID)
        if (!has(cpufeat::XSAVE))
            break;
        if (subleaf == 0) {
            r.eax = static_cast<u32>(xcr0_supported());
            r.ebx = xsave_size(ctx.xcr0);
            r.ecx = xsave_size(xcr0_supported());
            r.edx = static_cast<u32>(xcr0_supported() >> 32);
        } else if (subleaf == 1) {
            r.eax = word(FeatureWord::LeafDEax1);
            // Size of the XCR0 | IA32_XSS components in the compacted format;
            // without supervisor components it equals the standard size.
            r.ebx = xsave_size(ctx.xcr0);
        } else if (subleaf == 2 && (xcr0_supported() & xfeat::AVX)) {
            r.eax = XSAVE_AVX_SIZE;
            r.ebx = XSAVE_AVX_OFFSET;
        }
        break;
    case 0x80000000:
        r.eax = 0x80000008;
        break;
    case 0x80000001:
        r.ecx = word(FeatureWord::Ext1Ecx);
        r.edx = word(FeatureWord::Ext1Edx);
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
