#include "tests/paravirt/hv_harness.h"

namespace {

std::vector<u8> save(HyperV& hv)
{
    StateVisitor v = StateVisitor::saver();
    hv.visit_state(v);
    return v.bytes();
}

// A partition with something in every register group and a message queued.
void populate(HvHarness& h)
{
    h.enable_hypercalls();
    REQUIRE(h.wrmsr(HV_X64_MSR_REFERENCE_TSC, 0x300000 | 1));
    REQUIRE(h.wrmsr(HV_X64_MSR_CRASH_P0 + 2, 0xCAFE));
    REQUIRE(h.wrmsr(HV_X64_MSR_VP_ASSIST_PAGE, 0x310000 | 1, 1));
    REQUIRE(h.wrmsr(HV_X64_MSR_SIMP, 0x400000 | 1, 1));
    REQUIRE(h.wrmsr(HV_X64_MSR_SIEFP, 0x401000 | 1, 1));
    REQUIRE(h.wrmsr(HV_X64_MSR_SINT0 + 5, 0x55, 1));
    REQUIRE(h.wrmsr(HV_X64_MSR_SCONTROL, 1, 1));
    HvMessage m;
    m.type = 3;
    m.payload_size = 4;
    m.payload[0] = 9;
    REQUIRE(h.hv.synic(1).post_message(5, m) == HvStatus::Success);
    m.payload[0] = 10;
    REQUIRE(h.hv.synic(1).post_message(5, m) == HvStatus::Success);
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT + 2, 1000, 1));
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG + 2, 1 | 2 | (5ull << 16), 1));
}

} // namespace

TEST_CASE("Hyper-V state saves, loads into a fresh partition and saves to the same bytes")
{
    HvHarness a(config_with_vps(2));
    populate(a);
    const std::vector<u8> first = save(a.hv);

    HvHarness b(config_with_vps(2));
    StateVisitor loader = StateVisitor::loader(first);
    b.hv.visit_state(loader);
    REQUIRE(loader.ok());
    CHECK(save(b.hv) == first);
    CHECK(b.rdmsr(HV_X64_MSR_HYPERCALL) == (HvHarness::HYPERCALL_PAGE | 1));
    CHECK(b.rdmsr(HV_X64_MSR_CRASH_P0 + 2) == 0xCAFE);
    CHECK(b.rdmsr(HV_X64_MSR_SINT0 + 5, 1) == 0x55);
    CHECK(b.hv.synic(1).queued(5) == 1);
}

TEST_CASE("Hyper-V state refuses a snapshot with a different VP count")
{
    HvHarness a(config_with_vps(2));
    const std::vector<u8> bytes = save(a.hv);
    HvHarness b(config_with_vps(3));
    StateVisitor loader = StateVisitor::loader(bytes);
    b.hv.visit_state(loader);
    CHECK_FALSE(loader.ok());
}

TEST_CASE("Hyper-V state refuses a truncated snapshot")
{
    HvHarness a(config_with_vps(2));
    populate(a);
    std::vector<u8> bytes = save(a.hv);
    bytes.resize(bytes.size() - 9);
    HvHarness b(config_with_vps(2));
    StateVisitor loader = StateVisitor::loader(bytes);
    b.hv.visit_state(loader);
    CHECK_FALSE(loader.ok());
}
