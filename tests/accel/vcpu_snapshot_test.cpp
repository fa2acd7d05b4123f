// A vCPU's part of a snapshot (accel/vcpu_snapshot.h): the same for every
// backend, so that a machine saved on KVM restores onto the interpreter and
// the reverse; each backend's own fields come back only into its own kind.
#include "accel/vcpu_snapshot.h"

#include <doctest/doctest.h>

namespace {

std::vector<u8> save(const char* backend, CpuState state, u64 own)
{
    StateVisitor v = StateVisitor::saver();
    const CpuidModel cpuid;
    visit_vcpu_snapshot(v, backend, state, cpuid, [&own](StateVisitor& fields) { fields.field("own", own); });
    REQUIRE(v.ok());
    return v.bytes();
}

} // namespace

TEST_CASE("A vCPU saved by one backend loads into either; its own fields only into its own kind")
{
    CpuState saved;
    saved.gpr[RAX] = 0x1122334455667788;
    saved.rip = 0x7C00;
    saved.msr.tsc_offset = 12345;
    const std::vector<u8> bytes = save("kvm", saved, 777);
    const CpuidModel cpuid;
    for (const char* loader : {"kvm", "interp"}) {
        CAPTURE(loader);
        CpuState state;
        u64 own = 0;
        StateVisitor v = StateVisitor::loader(bytes);
        const bool own_loaded =
            visit_vcpu_snapshot(v, loader, state, cpuid, [&own](StateVisitor& fields) { fields.field("own", own); });
        REQUIRE(v.ok());
        CHECK(v.at_end());
        CHECK(state.gpr[RAX] == saved.gpr[RAX]);
        CHECK(state.rip == saved.rip);
        CHECK(state.msr.tsc_offset == saved.msr.tsc_offset);
        CHECK(own_loaded == (std::string(loader) == "kvm"));
        CHECK(own == (own_loaded ? 777u : 0u));
    }
}

TEST_CASE("A vCPU snapshot with damaged own fields or an invalid state is refused")
{
    const CpuidModel cpuid;
    {
        // A blob one byte longer than its fields: the own fields do not end where it does.
        StateVisitor saver = StateVisitor::saver();
        CpuState state;
        visit_vcpu_snapshot(saver, "interp", state, cpuid, [](StateVisitor& fields) {
            u64 own = 5;
            u8 extra = 0;
            fields.field("own", own);
            fields.field("extra", extra);
        });
        StateVisitor v = StateVisitor::loader(saver.bytes());
        CpuState loaded;
        visit_vcpu_snapshot(v, "interp", loaded, cpuid, [](StateVisitor& fields) {
            u64 own = 0;
            fields.field("own", own);
        });
        CHECK_FALSE(v.ok());
        CHECK(v.error() == "a vCPU's interp fields are damaged");
    }
    CpuState bad;
    bad.cr0 = 0x80000010; // PG without PE
    StateVisitor v = StateVisitor::loader(save("kvm", bad, 1));
    CpuState loaded;
    loaded.rip = 42;
    visit_vcpu_snapshot(v, "interp", loaded, cpuid, [](StateVisitor&) {});
    CHECK_FALSE(v.ok());
    CHECK(v.error().find("a vCPU's state is invalid") == 0);
    CHECK(loaded.rip == 42); // nothing taken
}
