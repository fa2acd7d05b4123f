#include "cpu/state/cpuid_model.h"

#include <iterator>

#include <cstring>
#include <string>

namespace {

// Leaf 1 EDX (SDM Vol 2A, CPUID): only what the interpreter implements. APIC
// (bit 9) waits until the machine wires the local APIC to the vCPU.
constexpr u32 LEAF1_EDX = (1u << 0)    // FPU
                          | (1u << 1)  // VME (and PVI: cpu/vme.cpp)
                          | (1u << 2)  // DE
                          | (1u << 3)  // PSE
                          | (1u << 4)  // TSC
                          | (1u << 5)  // MSR
                          | (1u << 6)  // PAE
                          | (1u << 7)  // MCE (#MC; never raised: no errors are modelled)
                          | (1u << 8)  // CX8
                          | (1u << 11) // SEP
                          | (1u << 13) // PGE
                          | (1u << 14) // MCA (cpu/system/machine_check.h)
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
                          | (1u << 12) // FMA
                          | (1u << 13) // CMPXCHG16B
                          | (1u << 19) // SSE4.1
                          | (1u << 20) // SSE4.2
                          | (1u << 22) // MOVBE
                          | (1u << 23) // POPCNT
                          | (1u << 25) // AES
                          | (1u << 26)  // XSAVE
                          | (1u << 28)  // AVX
                          | (1u << 29)  // F16C
                          | (1u << 30); // RDRAND
constexpr u32 LEAF1_ECX_OSXSAVE = 1u << 27;
// Leaf 7.0 EBX: FSGSBASE (0), BMI1 (3), AVX2 (5), SMEP (7), BMI2 (8), ERMS (9), RDSEED (18),
// ADX (19), SMAP (20).
constexpr u32 LEAF7_EBX = (1u << 0) | (1u << 3) | (1u << 5) | (1u << 7) | (1u << 8) | (1u << 9) |
                          (1u << 18) | (1u << 19) | (1u << 20);
// Leaf 7.0 ECX: LA57 (16).
constexpr u32 LEAF7_ECX = (1u << 16);
// Leaf 7.0 EDX: IA32_ARCH_CAPABILITIES (29), which says the CPU has none of
// the speculative-execution flaws Linux otherwise assumes of an Intel part.
constexpr u32 LEAF7_EDX = (1u << 29);
// 0x80000001 EDX: SYSCALL (11), NX (20), Page1GB (26), RDTSCP (27), LM (29).
constexpr u32 EXT1_EDX = (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29);
// 0x80000001 ECX: LAHF/SAHF in 64-bit mode (0), LZCNT/ABM (5).
constexpr u32 EXT1_ECX = (1u << 0) | (1u << 5);
// 0xD.1 EAX: XSAVEOPT (0), XSAVEC and the compacted XRSTOR (1), XGETBV with
// ECX = 1 (2), XSAVES/XRSTORS and IA32_XSS (3).
// The leaf 1 EDX flags AMD repeats in 0x80000001 EDX: bits 0-9, 12-17, 23, 24.
constexpr u32 AMD_LEAF1_EDX_MIRROR = 0x0183F3FF;
constexpr u32 LEAFD1_EAX = (1u << 0) | (1u << 1) | (1u << 2) | (1u << 3);

constexpr std::array<u32, static_cast<size_t>(FeatureWord::Count)> IMPLEMENTED = {
    LEAF1_ECX, LEAF1_EDX, LEAF7_EBX, LEAF7_ECX, LEAF7_EDX, EXT1_ECX, EXT1_EDX, LEAFD1_EAX,
};

// Flags that depend on the machine rather than on the interpreter: x2APIC,
// TSC-deadline and hypervisor (leaf 1 ECX); APIC and HTT (leaf 1 EDX).
constexpr u32 DYNAMIC_LEAF1_ECX = (1u << 21) | (1u << 24) | (1u << 31);
constexpr u32 DYNAMIC_LEAF1_EDX = (1u << 9) | (1u << 28);

struct NamedFeature {
    std::string_view name; // as Linux's /proc/cpuinfo spells it
    FeatureBit bit;
};

constexpr FeatureBit f1c(u8 b) { return {FeatureWord::Leaf1Ecx, b}; }
constexpr FeatureBit f1d(u8 b) { return {FeatureWord::Leaf1Edx, b}; }
constexpr FeatureBit f7b(u8 b) { return {FeatureWord::Leaf7Ebx, b}; }
constexpr FeatureBit f7c(u8 b) { return {FeatureWord::Leaf7Ecx, b}; }
constexpr FeatureBit f7d(u8 b) { return {FeatureWord::Leaf7Edx, b}; }
constexpr FeatureBit x1c(u8 b) { return {FeatureWord::Ext1Ecx, b}; }
constexpr FeatureBit x1d(u8 b) { return {FeatureWord::Ext1Edx, b}; }
constexpr FeatureBit xd1(u8 b) { return {FeatureWord::LeafDEax1, b}; }

// Every flag of the words the model reports that a spec may name,
// implemented or not.
constexpr NamedFeature NAMED_FEATURES[] = {
    {"fpu", f1d(0)}, {"vme", f1d(1)}, {"de", f1d(2)}, {"pse", f1d(3)}, {"tsc", f1d(4)},
    {"msr", f1d(5)}, {"pae", f1d(6)}, {"mce", f1d(7)}, {"cx8", f1d(8)}, {"apic", f1d(9)},
    {"sep", f1d(11)}, {"mtrr", f1d(12)}, {"pge", f1d(13)}, {"mca", f1d(14)}, {"cmov", f1d(15)},
    {"pat", f1d(16)}, {"pse36", f1d(17)}, {"clflush", f1d(19)}, {"mmx", f1d(23)},
    {"fxsr", f1d(24)}, {"sse", f1d(25)}, {"sse2", f1d(26)}, {"ht", f1d(28)},
    {"pni", f1c(0)}, {"pclmulqdq", f1c(1)}, {"ssse3", f1c(9)}, {"fma", f1c(12)},
    {"cx16", f1c(13)}, {"sse4_1", f1c(19)}, {"sse4_2", f1c(20)}, {"x2apic", f1c(21)},
    {"movbe", f1c(22)}, {"popcnt", f1c(23)}, {"tsc_deadline_timer", f1c(24)}, {"aes", f1c(25)},
    {"xsave", f1c(26)}, {"avx", f1c(28)}, {"f16c", f1c(29)}, {"rdrand", f1c(30)},
    {"hypervisor", f1c(31)},
    {"fsgsbase", f7b(0)}, {"bmi1", f7b(3)}, {"avx2", f7b(5)}, {"smep", f7b(7)}, {"bmi2", f7b(8)},
    {"erms", f7b(9)}, {"rdseed", f7b(18)}, {"adx", f7b(19)}, {"smap", f7b(20)},
    {"la57", f7c(16)},
    {"arch_capabilities", f7d(29)},
    {"lahf_lm", x1c(0)}, {"abm", x1c(5)},
    {"syscall", x1d(11)}, {"nx", x1d(20)}, {"pdpe1gb", x1d(26)}, {"rdtscp", x1d(27)},
    {"lm", x1d(29)},
    {"xsaveopt", xd1(0)}, {"xsavec", xd1(1)}, {"xgetbv1", xd1(2)}, {"xsaves", xd1(3)},
};

// `feature` cannot be offered without `needs`: removing the second removes the first.
struct Dependency {
    std::string_view feature, needs;
};
constexpr Dependency DEPENDENCIES[] = {
    {"sse", "fxsr"},          {"sse2", "sse"},         {"pni", "sse2"},
    {"ssse3", "pni"},         {"sse4_1", "ssse3"},     {"sse4_2", "sse4_1"},
    {"aes", "sse2"},          {"pclmulqdq", "sse2"},   {"xsave", "fxsr"},
    {"avx", "xsave"},         {"avx2", "avx"},         {"fma", "avx"},
    {"f16c", "avx"},          {"xsaveopt", "xsave"},   {"xsavec", "xsave"},
    {"xgetbv1", "xsave"},     {"xsaves", "xsave"},     {"x2apic", "apic"},
    {"tsc_deadline_timer", "apic"},
};

const NamedFeature* find_feature(std::string_view name)
{
    for (const NamedFeature& f : NAMED_FEATURES)
        if (f.name == name)
            return &f;
    return nullptr;
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

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

CpuidResult CpuidModel::vendor_leaf() const
{
    // Guests key errata and feature paths on the vendor; an unknown one
    // makes Linux warn that the CPU "may be unstable".
    CpuidResult r;
    const char* name = m_vendor == CpuVendor::Amd ? "AuthenticAMD" : "GenuineIntel";
    r.ebx = chars(name);
    r.edx = chars(name + 4);
    r.ecx = chars(name + 8);
    return r;
}

// Leaf 1 EAX. Intel: family 6, model 15, stepping 1 (a generic P6-family
// signature). AMD: family 17h (base 0Fh + extended 08h), model 31h, stepping
// 0, a second-generation EPYC.
u32 CpuidModel::signature() const
{
    if (m_vendor == CpuVendor::Amd)
        return (0x8u << 20) | (0x3u << 16) | (0xFu << 8) | (0x1u << 4) | 0u;
    return (6u << 8) | (15u << 4) | 1u;
}

// AMD's cache and power leaves (APM Vol 3, CPUID Fn8000_0005-7): the same
// caches leaf 4 describes for the Intel model (32 KiB 8-way L1d and L1i,
// 64-byte lines; here a 512 KiB 8-way L2 and a 16 MiB 16-way L3), and the
// invariant TSC, without which Linux does not trust the TSC on AMD.
CpuidResult CpuidModel::amd_cache_leaf(u32 leaf) const
{
    constexpr u32 LINE = 64, ONE_LINE_PER_TAG = 1u << 8;
    constexpr u32 WAYS_8 = 6, WAYS_16 = 8; // the L2/L3 associativity codes
    CpuidResult r;
    switch (leaf) {
    case 0x80000005:
        r.ecx = (32u << 24) | (8u << 16) | ONE_LINE_PER_TAG | LINE; // L1d
        r.edx = r.ecx;                                                 // L1i
        break;
    case 0x80000006:
        r.ecx = (512u << 16) | (WAYS_8 << 12) | ONE_LINE_PER_TAG | LINE;
        r.edx = (32u << 18) | (WAYS_16 << 12) | ONE_LINE_PER_TAG | LINE; // 32 x 512 KiB
        break;
    case 0x80000007:
        r.edx = 1u << 8; // TscInvariant
        break;
    }
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


ErrorOr<void> CpuidModel::apply_feature_spec(std::string_view spec)
{
    auto removed = m_removed;
    const auto is_removed = [&removed](FeatureBit f) {
        return (removed[static_cast<size_t>(f.word)] >> f.bit) & 1;
    };
    const auto set_removed = [&removed](FeatureBit f, bool on) {
        u32& w = removed[static_cast<size_t>(f.word)];
        w = on ? (w | (1u << f.bit)) : (w & ~(1u << f.bit));
    };
    const auto implemented = [](FeatureBit f) {
        u32 w = IMPLEMENTED[static_cast<size_t>(f.word)];
        if (f.word == FeatureWord::Leaf1Ecx)
            w |= DYNAMIC_LEAF1_ECX;
        if (f.word == FeatureWord::Leaf1Edx)
            w |= DYNAMIC_LEAF1_EDX;
        return (w >> f.bit) & 1;
    };

    while (!spec.empty()) {
        const size_t comma = spec.find(',');
        const std::string_view item = trim(spec.substr(0, comma));
        spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
        if (item.empty())
            continue;
        const char sign = item.front();
        const std::string_view name = trim(item.substr(1));
        if (sign != '+' && sign != '-')
            return make_error("cpu feature item '" + std::string(item) +
                              "' needs a sign: +name or -name");
        const NamedFeature* f = find_feature(name);
        if (!f)
            return make_error("unknown cpu feature '" + std::string(name) +
                              "' (names are spelled as in /proc/cpuinfo flags)");
        if (sign == '-') {
            set_removed(f->bit, true);
            continue;
        }
        // "+name": put it back with everything it needs.
        for (std::string_view pending = name; !pending.empty();) {
            const NamedFeature* p = find_feature(pending);
            if (!implemented(p->bit))
                return make_error("cpu feature '" + std::string(p->name) +
                                  "' is not implemented by viridian");
            set_removed(p->bit, false);
            pending = {};
            for (const Dependency& d : DEPENDENCIES)
                if (d.feature == p->name && is_removed(find_feature(d.needs)->bit))
                    pending = d.needs;
        }
    }
    remove_dependents(removed);
    m_removed = removed;
    return {};
}

void CpuidModel::remove_dependents(RemovedWords& removed)
{
    // Removing a feature removes what needs it, transitively.
    const auto is_removed = [&removed](FeatureBit f) {
        return (removed[static_cast<size_t>(f.word)] >> f.bit) & 1;
    };
    for (bool changed = true; changed;) {
        changed = false;
        for (const Dependency& d : DEPENDENCIES) {
            const FeatureBit need = find_feature(d.needs)->bit;
            const FeatureBit user = find_feature(d.feature)->bit;
            if (is_removed(need) && !is_removed(user)) {
                removed[static_cast<size_t>(user.word)] |= 1u << user.bit;
                changed = true;
            }
        }
    }
}

void CpuidModel::keep_only(FeatureWord w, u32 offered)
{
    m_removed[static_cast<size_t>(w)] |= ~offered;
    remove_dependents(m_removed);
}

u32 CpuidModel::word(FeatureWord w) const
{
    const auto i = static_cast<size_t>(w);
    u32 offered = IMPLEMENTED[i];
    // AMD's parts enumerate no IA32_ARCH_CAPABILITIES (APM Vol 3, CPUID Fn0000_0007).
    if (m_vendor == CpuVendor::Amd && w == FeatureWord::Leaf7Edx)
        offered &= ~(1u << cpufeat::ARCH_CAPABILITIES.bit);
    return offered & ~m_removed[i];
}

bool CpuidModel::has(FeatureBit f) const
{
    u32 w = word(f.word);
    // The machine-dependent leaf 1 ECX flags, as query() reports them.
    if (f.word == FeatureWord::Leaf1Ecx)
        w |= ((m_hypervisor ? (1u << 31) : 0) | (m_local_apic ? (1u << 21) | (1u << 24) : 0)) &
             ~m_removed[static_cast<size_t>(f.word)];
    return (w >> f.bit) & 1;
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
        r = vendor_leaf();
        r.eax = 0xD;
        break;
    case 1:
        r.eax = signature();
        r.ebx = (8u << 8) | (m_cpu_count << 16) | (apic_id << 24); // CLFLUSH line 64 bytes
        r.ecx = (word(FeatureWord::Leaf1Ecx) | (m_hypervisor ? (1u << 31) : 0) |
                 (m_local_apic ? (1u << 21) | (1u << 24) : 0)) & // x2APIC, TSC-deadline
                ~removed(FeatureWord::Leaf1Ecx);
        if (ctx.osxsave && has(cpufeat::XSAVE))
            r.ecx |= LEAF1_ECX_OSXSAVE;
        r.edx = (word(FeatureWord::Leaf1Edx) |
                 (m_cpu_count > 1 ? (1u << 28) : 0) | // HTT when > 1 logical CPU
                 (m_local_apic && ctx.apic_enabled ? (1u << 9) : 0)) & // APIC
                ~removed(FeatureWord::Leaf1Edx);
        break;
    case 4: // AMD reserves leaf 4 (its caches are in 0x80000005-6)
        if (m_vendor == CpuVendor::Intel)
            r = cache_leaf(subleaf);
        break;
    case 0xB:
        r = topology_leaf(subleaf, apic_id);
        break;
    case 7:
        if (subleaf == 0) {
            r.ebx = word(FeatureWord::Leaf7Ebx);
            r.ecx = word(FeatureWord::Leaf7Ecx);
            r.edx = word(FeatureWord::Leaf7Edx);
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
            // IA32_XSS is always 0 and the compacted size of the user
            // components equals the standard one.
            r.ebx = xsave_size(ctx.xcr0);
            if (has(cpufeat::XSAVES)) { // the IA32_XSS bits that may be set
                r.ecx = static_cast<u32>(xss_supported());
                r.edx = static_cast<u32>(xss_supported() >> 32);
            }
        } else if (subleaf == 2 && (xcr0_supported() & xfeat::AVX)) {
            r.eax = XSAVE_AVX_SIZE;
            r.ebx = XSAVE_AVX_OFFSET;
        }
        break;
    case 0x80000000:
        // AMD repeats the vendor string here (APM Vol 3, CPUID Fn8000_0000).
        if (m_vendor == CpuVendor::Amd)
            r = vendor_leaf();
        r.eax = 0x80000008;
        break;
    case 0x80000001:
        r.ecx = word(FeatureWord::Ext1Ecx);
        r.edx = word(FeatureWord::Ext1Edx);
        if (m_vendor == CpuVendor::Amd) {
            // AMD repeats the signature and most of leaf 1 EDX (FPU..APIC,
            // MTRR..PSE36, MMX, FXSR; bit 11 is SYSCALL here), and reports
            // CmpLegacy when the package has more than one core (APM Vol 3,
            // CPUID Fn8000_0001).
            r.eax = signature();
            r.edx |= query(1, 0, apic_id, ctx).edx & AMD_LEAF1_EDX_MIRROR;
            if (m_cpu_count > 1)
                r.ecx |= 1u << 1;
        }
        break;
    case 0x80000005:
    case 0x80000006:
    case 0x80000007:
        if (m_vendor == CpuVendor::Amd)
            r = amd_cache_leaf(leaf);
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
        // AMD: ApicIdCoreIdSize and NC (cores per package - 1); Linux takes
        // its core count and core IDs from them (APM Vol 3, CPUID Fn8000_0008).
        if (m_vendor == CpuVendor::Amd)
            r.ecx = (apic_id_bits() << 12) | (m_cpu_count - 1);
        break;
    default:
        // Intel answers an out-of-range leaf with the highest basic leaf's data;
        // zeros are what AMD does and what guests handle best.
        break;
    }
    return r;
}
