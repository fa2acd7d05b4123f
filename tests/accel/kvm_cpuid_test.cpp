// The CPU model's CPUID as KVM_SET_CPUID2 takes it (accel/kvm/kvm_cpuid.h):
// the same processor as on the interpreter, less what KVM cannot give.
#include "accel/kvm/kvm_cpuid.h"

#include <doctest/doctest.h>

#include <optional>
#include <vector>

namespace {

kvm_cpuid_entry2 entry(u32 function, u32 index, u32 eax, u32 ebx, u32 ecx, u32 edx, bool significant = false)
{
    kvm_cpuid_entry2 e{};
    e.function = function;
    e.index = index;
    e.flags = significant ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
    e.eax = eax, e.ebx = ebx, e.ecx = ecx, e.edx = edx;
    return e;
}

// A host KVM that offers everything in the feature words (but the ones a
// test takes away) and 39 physical / 48 linear address bits.
std::vector<kvm_cpuid_entry2> generous_host()
{
    return {
        entry(1, 0, 0, 0, ~0u, ~0u),
        entry(7, 0, 0, ~0u, ~0u, ~0u, true),
        entry(0xD, 0, 0x7, 0, 0, 0, true),
        entry(0xD, 1, 0xF, 0, 0, 0, true),
        entry(0x80000001, 0, 0, 0, ~0u, ~0u),
        entry(0x80000008, 0, 39 | (48 << 8), 0, 0, 0),
    };
}

std::optional<kvm_cpuid_entry2> find(const std::vector<kvm_cpuid_entry2>& table, u32 function, u32 index = 0)
{
    for (const kvm_cpuid_entry2& e : table)
        if (e.function == function && e.index == index)
            return e;
    return std::nullopt;
}

void set_host(std::vector<kvm_cpuid_entry2>& host, u32 function, u32 index, u32 kvm_cpuid_entry2::*reg, u32 value)
{
    for (kvm_cpuid_entry2& e : host)
        if (e.function == function && e.index == index)
            e.*reg = value;
}

} // namespace

TEST_CASE("With everything offered, KVM's table answers every leaf as the model does")
{
    const CpuidModel model(2, CpuVendor::Intel);
    const std::vector<kvm_cpuid_entry2> table = kvm_cpuid_table(model, 1, generous_host());
    for (u32 leaf : {0u, 1u, 4u, 7u, 0xBu, 0xDu, 0x80000000u, 0x80000001u, 0x80000002u}) {
        CAPTURE(leaf);
        const std::optional<kvm_cpuid_entry2> e = find(table, leaf);
        REQUIRE(e);
        const CpuidResult r = model.query(leaf, 0, 1);
        CHECK(e->eax == r.eax);
        if (leaf == 0xD) // EBX: the largest area, as for XCR0 with every component
            CHECK(e->ebx == e->ecx);
        else
            CHECK(e->ebx == r.ebx);
        if (leaf != 1) // leaf 1 ECX: OSXSAVE is KVM's to report, from CR4
            CHECK(e->ecx == r.ecx);
        CHECK(e->edx == r.edx);
    }
    // The APIC ID of the vCPU the table is for.
    CHECK((find(table, 1)->ebx >> 24) == 1);
}

TEST_CASE("Leaves with sub-leaves are marked so, and each sub-leaf is there")
{
    const CpuidModel model(2, CpuVendor::Intel);
    const std::vector<kvm_cpuid_entry2> table = kvm_cpuid_table(model, 0, generous_host());
    for (u32 leaf : {4u, 7u, 0xBu, 0xDu}) {
        CAPTURE(leaf);
        REQUIRE(find(table, leaf));
        CHECK((find(table, leaf)->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) != 0);
    }
    CHECK(find(table, 0xB, 1)); // the core level
    CHECK(find(table, 0xD, 1)); // XSAVE extensions
    CHECK((find(table, 1)->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) == 0);
    // Intel's leaf 4 lists caches until the null type, which ends the list.
    CHECK(find(table, 4, 0));
}

TEST_CASE("A feature KVM does not offer is removed, and the LAPIC's own flags stay")
{
    std::vector<kvm_cpuid_entry2> host = generous_host();
    // No AVX (leaf 1 ECX 28), no x2APIC or TSC-deadline from KVM (its LAPIC
    // is not used), no hypervisor bit.
    const u32 without = ~((1u << 28) | (1u << 21) | (1u << 24) | (1u << 31));
    set_host(host, 1, 0, &kvm_cpuid_entry2::ecx, without);
    CpuidModel model(1, CpuVendor::Intel);
    model.set_local_apic(true);
    model.set_hypervisor_leaves([](u32 leaf, u32, unsigned) {
        return leaf == 0x40000000 ? CpuidResult{0x40000001, 0, 0, 0} : CpuidResult{};
    });
    const std::vector<kvm_cpuid_entry2> table = kvm_cpuid_table(model, 0, host);
    const u32 ecx = find(table, 1)->ecx;
    CHECK((ecx & (1u << 28)) == 0);  // AVX: gone
    CHECK((ecx & (1u << 21)) != 0);   // x2APIC: viridian's LAPIC
    CHECK((ecx & (1u << 24)) != 0);   // TSC-deadline: viridian's LAPIC
    CHECK((ecx & (1u << 31)) != 0);   // hypervisor: the Hyper-V partition
    CHECK(find(table, 0x40000001));   // its leaves are in the table
    CHECK((find(table, 1)->edx & (1u << 9)) != 0); // APIC
}

TEST_CASE("Without AVX state in KVM's XCR0 the AVX component leaf goes and the XSAVE sizes shrink")
{
    std::vector<kvm_cpuid_entry2> host = generous_host();
    set_host(host, 0xD, 0, &kvm_cpuid_entry2::eax, 0x3); // x87 and SSE only
    const CpuidModel model(1, CpuVendor::Amd);
    const std::vector<kvm_cpuid_entry2> table = kvm_cpuid_table(model, 0, host);
    REQUIRE(find(table, 0xD, 0));
    CHECK(find(table, 0xD, 0)->eax == 0x3);
    CHECK(find(table, 0xD, 0)->ecx == CpuidModel::XSAVE_LEGACY_SIZE + CpuidModel::XSAVE_HEADER_SIZE);
    CHECK_FALSE(find(table, 0xD, 2));
}

TEST_CASE("Address widths are no wider than the host's")
{
    const CpuidModel model(1, CpuVendor::Intel);
    const std::vector<kvm_cpuid_entry2> table = kvm_cpuid_table(model, 0, generous_host());
    CHECK((find(table, 0x80000008)->eax & 0xFF) == 39);
    CHECK(((find(table, 0x80000008)->eax >> 8) & 0xFF) == 48);
}

TEST_CASE("A leaf KVM does not know at all loses its feature flags")
{
    std::vector<kvm_cpuid_entry2> host = generous_host();
    std::erase_if(host, [](const kvm_cpuid_entry2& e) { return e.function == 7; });
    const CpuidModel model(1, CpuVendor::Intel);
    const std::vector<kvm_cpuid_entry2> table = kvm_cpuid_table(model, 0, host);
    REQUIRE(find(table, 7));
    CHECK(find(table, 7)->ebx == 0);
    CHECK(find(table, 7)->ecx == 0);
}

TEST_CASE("AVX without its XSAVE component, or the component without AVX, gives the guest neither")
{
    std::vector<kvm_cpuid_entry2> host = generous_host();
    set_host(host, 1, 0, &kvm_cpuid_entry2::ecx, ~(1u << 28)); // the instructions missing
    const CpuidModel model(1, CpuVendor::Intel);
    std::vector<kvm_cpuid_entry2> table = kvm_cpuid_table(model, 0, host);
    CHECK((find(table, 0xD, 0)->eax & xfeat::AVX) == 0);
    CHECK(find(table, 0xD, 0)->ecx == CpuidModel::XSAVE_LEGACY_SIZE + CpuidModel::XSAVE_HEADER_SIZE);
    CHECK_FALSE(find(table, 0xD, 2));

    host = generous_host();
    set_host(host, 0xD, 0, &kvm_cpuid_entry2::eax, 0x3); // the state missing
    table = kvm_cpuid_table(model, 0, host);
    CHECK((find(table, 1)->ecx & (1u << 28)) == 0);
}

TEST_CASE("The model narrowed to KVM offers what KVM's table offers, and what needs a removed flag goes")
{
    // A machine that switches between KVM and the interpreter: the
    // interpreter must not offer a flag the guest loses back on KVM.
    std::vector<kvm_cpuid_entry2> host = generous_host();
    set_host(host, 7, 0, &kvm_cpuid_entry2::ebx, ~(1u << 5)); // no AVX2
    set_host(host, 1, 0, &kvm_cpuid_entry2::ecx, ~((1u << 25) | (1u << 21) | (1u << 31))); // no AES, x2APIC, hypervisor
    set_host(host, 0xD, 0, &kvm_cpuid_entry2::eax, 0x3);    // no AVX state
    CpuidModel model(2, CpuVendor::Intel);
    model.set_hypervisor_leaves([](u32, u32, unsigned) { return CpuidResult{}; });
    model.set_local_apic(true);
    const std::vector<kvm_cpuid_entry2> table = kvm_cpuid_table(model, 0, host);
    narrow_to_kvm(model, host);
    const CpuidResult leaf1 = model.query(1, 0, 0), leaf7 = model.query(7, 0, 0);
    CHECK(!((leaf1.ecx >> 25) & 1)); // aes
    CHECK(!((leaf1.ecx >> 28) & 1)); // avx, with its state component
    CHECK(!((leaf1.ecx >> 12) & 1)); // fma needs avx
    CHECK(!((leaf7.ebx >> 5) & 1));  // avx2
    CHECK(model.xcr0_supported() == (xfeat::X87 | xfeat::SSE));
    CHECK(((leaf1.ecx >> 21) & 1)); // x2APIC: viridian's LAPIC, whatever KVM has
    CHECK(((leaf1.ecx >> 31) & 1)); // the partition's hypervisor bit
    CHECK(((leaf1.ecx >> 20) & 1)); // sse4_2 offered by both
    // KVM's own table from the narrowed model offers nothing more than
    // before, and less only where a flag's prerequisite was gone: FMA and
    // F16C need AVX (the table alone keeps them, the narrowed model not).
    const std::vector<kvm_cpuid_entry2> again = kvm_cpuid_table(model, 0, host);
    for (u32 leaf : {1u, 7u, 0x80000001u}) {
        CAPTURE(leaf);
        const std::optional<kvm_cpuid_entry2> a = find(table, leaf), b = find(again, leaf);
        REQUIRE((a && b));
        const u32 dropped_with_avx = leaf == 1 ? (1u << 12) | (1u << 29) : 0;
        CHECK(b->ecx == (a->ecx & ~dropped_with_avx));
        CHECK(a->edx == b->edx);
        CHECK(a->ebx == b->ebx);
    }
}
