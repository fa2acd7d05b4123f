// One model answers CPUID for every leaf. It advertises exactly what the
// interpreter implements: a feature bit is set only when its instructions
// and state exist.
#pragma once

#include "cpu/state/cpu_vendor.h"
#include "mmu/base/types.h"
#include "mmu/base/error_or.h"

#include <array>
#include <functional>
#include <string_view>

struct CpuidResult {
    u32 eax = 0, ebx = 0, ecx = 0, edx = 0;
};

// The CPUID registers that carry feature flags, and one flag in them.
enum class FeatureWord : u8 {
    Leaf1Ecx,
    Leaf1Edx,
    Leaf7Ebx,
    Leaf7Ecx,
    Leaf7Edx,
    Ext1Ecx, // 0x80000001 ECX
    Ext1Edx, // 0x80000001 EDX
    LeafDEax1, // 0xD sub-leaf 1 EAX (XSAVE extensions)
    Count,
};

struct FeatureBit {
    FeatureWord word;
    u8 bit;
};

// Flags the CPU itself consults (the rest are only reported).
namespace cpufeat {
constexpr FeatureBit XSAVE{FeatureWord::Leaf1Ecx, 26};
constexpr FeatureBit AVX{FeatureWord::Leaf1Ecx, 28};
constexpr FeatureBit RDRAND{FeatureWord::Leaf1Ecx, 30};
constexpr FeatureBit RDSEED{FeatureWord::Leaf7Ebx, 18};
constexpr FeatureBit XSAVEOPT{FeatureWord::LeafDEax1, 0};
constexpr FeatureBit XSAVEC{FeatureWord::LeafDEax1, 1};
constexpr FeatureBit XGETBV1{FeatureWord::LeafDEax1, 2};
constexpr FeatureBit XSAVES{FeatureWord::LeafDEax1, 3}; // XSAVES/XRSTORS and IA32_XSS
constexpr FeatureBit LA57{FeatureWord::Leaf7Ecx, 16};
constexpr FeatureBit MCA{FeatureWord::Leaf1Edx, 14}; // the machine-check MSRs
constexpr FeatureBit VME{FeatureWord::Leaf1Edx, 1};  // CR4.VME and CR4.PVI
constexpr FeatureBit X2APIC{FeatureWord::Leaf1Ecx, 21}; // IA32_APIC_BASE.EXTD exists
// IA32_ARCH_CAPABILITIES exists (Intel's model only; see Cpu::read_msr).
constexpr FeatureBit ARCH_CAPABILITIES{FeatureWord::Leaf7Edx, 29};
} // namespace cpufeat

// XCR0 state components (SDM Vol 1 13.1).
namespace xfeat {
constexpr u64 X87 = 1u << 0, SSE = 1u << 1, AVX = 1u << 2;
} // namespace xfeat

// What CPUID reports that depends on the vCPU's current control state.
struct CpuidContext {
    bool osxsave = false; // CR4.OSXSAVE, mirrored in leaf 1 ECX bit 27
    u64 xcr0 = xfeat::X87;
    bool apic_enabled = true; // IA32_APIC_BASE.EN, mirrored in leaf 1 EDX bit 9
};

class CpuidModel {
public:
    // The default vendor is fixed (Intel), not the host's: a run, a recording
    // or a snapshot must behave the same on any machine.
    explicit CpuidModel(unsigned cpu_count = 1, CpuVendor vendor = CpuVendor::Intel)
        : m_cpu_count(cpu_count), m_vendor(vendor)
    {
    }
    CpuVendor vendor() const { return m_vendor; }
    CpuidResult query(u32 leaf, u32 subleaf, unsigned apic_id, const CpuidContext& ctx = {}) const;

    // The hypervisor range 0x40000000-0x4FFFFFFF belongs to an enlightenment
    // provider (paravirt/); when one is installed, leaf 1 also reports the
    // hypervisor-present bit (ECX bit 31).
    using HypervisorLeaves = std::function<CpuidResult(u32 leaf, u32 subleaf, unsigned apic_id)>;
    void set_hypervisor_leaves(HypervisorLeaves provider) { m_hypervisor = std::move(provider); }
    // A local APIC per vCPU (x2APIC and TSC-deadline capable) is present.
    void set_local_apic(bool present) { m_local_apic = present; }

    // Narrows the advertised feature set, for running a guest on a smaller
    // model (the `--cpu-features` option). `spec` is a comma-separated list
    // of items "-name" (remove) or "+name" (put back), applied left to right,
    // with names spelled as Linux's /proc/cpuinfo flags ("avx2", "aes",
    // "sse4_2", "pni" for SSE3, "xsaveopt", ...); spaces around items and
    // empty items are ignored. Removing a feature also removes every feature
    // that needs it (-xsave removes avx and xsaveopt/xsavec/xgetbv1/xsaves, -avx
    // removes avx2/fma/f16c, -sse2 removes the SSE3-SSE4.2 line and aes);
    // adding one also adds what it needs. Only implemented features can be
    // added back: "+name" for a feature viridian lacks, an unknown name or an
    // item without a sign is an error that names the item, and the model is
    // then left unchanged. Removal changes what CPUID reports; where a
    // feature gates architectural state or an instruction the model checks
    // (XSAVE and CR4.OSXSAVE, the XSAVE variants, AVX state in XCR0, RDRAND,
    // RDSEED), the CPU also refuses it as hardware without it would (#GP or
    // #UD). Other instructions of a removed feature still execute.
    ErrorOr<void> apply_feature_spec(std::string_view spec);

    // Narrows the model to the flags of `w` that `offered` has (and what
    // needs a flag taken away goes too): a machine whose vCPUs move between
    // the interpreter and KVM offers only what both can run.
    void keep_only(FeatureWord w, u32 offered);

    // The flags of `w` the model offers (after any narrowing), without the
    // machine-dependent ones (APIC, x2APIC, hypervisor, HTT).
    u32 features(FeatureWord w) const { return word(w); }

    // Whether the model currently offers a feature (after any narrowing).
    bool has(FeatureBit f) const;
    // The XCR0 bits XSETBV accepts: x87 and SSE always, AVX when offered.
    u64 xcr0_supported() const;
    // The IA32_XSS bits WRMSR accepts (CPUID.(EAX=0DH,ECX=1):ECX:EDX): none.
    // The model implements no supervisor state component (PT, CET, HDC,
    // ...), so IA32_XSS only ever holds 0.
    static constexpr u64 xss_supported() { return 0; }

    // Physical/linear address widths reported in leaf 0x80000008.
    static constexpr unsigned PHYS_BITS = 46, LINEAR_BITS = 57;

    // XSAVE area layout in the standard format (SDM Vol 1 13.4): the legacy
    // region and header, then the AVX state (YMM_Hi128) at a fixed offset.
    static constexpr unsigned XSAVE_LEGACY_SIZE = 512, XSAVE_HEADER_SIZE = 64,
                              XSAVE_AVX_OFFSET = 576, XSAVE_AVX_SIZE = 256;
    // Size of a standard-format area holding the components in `xcr0`. The
    // compacted format of the same components has the same size: the ones
    // the model offers (x87, SSE, YMM_Hi128) are contiguous and unaligned.
    static unsigned xsave_size(u64 xcr0);

private:
    unsigned apic_id_bits() const;
    CpuidResult cache_leaf(u32 subleaf) const;
    CpuidResult topology_leaf(u32 subleaf, unsigned apic_id) const;
    u32 word(FeatureWord w) const;

    CpuidResult vendor_leaf() const;
    u32 signature() const;
    CpuidResult amd_cache_leaf(u32 leaf) const;

    unsigned m_cpu_count;
    CpuVendor m_vendor;
    HypervisorLeaves m_hypervisor;
    bool m_local_apic = false;
    // Flags removed by narrowing; they mask both the implemented set and the
    // flags that depend on the machine (APIC, x2APIC, hypervisor, HTT).
    using RemovedWords = std::array<u32, static_cast<size_t>(FeatureWord::Count)>;
    static void remove_dependents(RemovedWords& removed);
    RemovedWords m_removed{};
};
