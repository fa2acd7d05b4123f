#include "tests/paravirt/hv_harness.h"

#include <array>

TEST_CASE("Hypercall page stays disabled until a guest OS ID is written")
{
    HvHarness h;
    CHECK(h.wrmsr(HV_X64_MSR_HYPERCALL, HvHarness::HYPERCALL_PAGE | 1));
    CHECK(h.rdmsr(HV_X64_MSR_HYPERCALL) == HvHarness::HYPERCALL_PAGE);
    CHECK(h.peek<u32>(HvHarness::HYPERCALL_PAGE) == 0);
}

TEST_CASE("Enabling the hypercall page writes VMCALL; RET and fills the page with INT3")
{
    HvHarness h;
    h.enable_hypercalls();
    CHECK(h.rdmsr(HV_X64_MSR_HYPERCALL) == (HvHarness::HYPERCALL_PAGE | 1));
    CHECK(h.peek<u32>(HvHarness::HYPERCALL_PAGE) == 0xC3C1010F);
    CHECK(h.peek<u8>(HvHarness::HYPERCALL_PAGE + 4) == 0xCC);
    CHECK(h.peek<u8>(HvHarness::HYPERCALL_PAGE + 4095) == 0xCC);
}

TEST_CASE("The hypercall page holds VMMCALL for an SVM-style backend")
{
    HvConfig c;
    c.hypercall_instruction = HypercallInstruction::Vmmcall;
    HvHarness h(c);
    h.enable_hypercalls();
    CHECK(h.peek<u32>(HvHarness::HYPERCALL_PAGE) == 0xC3D9010F);
}

TEST_CASE("The hypercall page holds OUT imm8, AL for a backend that sees port writes only (KVM)")
{
    HvConfig c;
    c.hypercall_instruction = HypercallInstruction::PortOut;
    c.hypercall_port = 0xEF;
    HvHarness h(c);
    h.enable_hypercalls();
    CHECK(h.peek<u8>(HvHarness::HYPERCALL_PAGE) == 0xE6);
    CHECK(h.peek<u8>(HvHarness::HYPERCALL_PAGE + 1) == 0xEF);
    CHECK(h.peek<u8>(HvHarness::HYPERCALL_PAGE + 2) == 0xC3); // RET
    CHECK(h.peek<u8>(HvHarness::HYPERCALL_PAGE + 3) == 0xCC);
}

TEST_CASE("Clearing the guest OS ID disables the hypercall page")
{
    HvHarness h;
    h.enable_hypercalls();
    CHECK(h.wrmsr(HV_X64_MSR_GUEST_OS_ID, 0));
    CHECK((h.rdmsr(HV_X64_MSR_HYPERCALL) & 1) == 0);
}

TEST_CASE("Hypercall MSR raises #GP for reserved bits, a page outside RAM, and once locked")
{
    HvHarness h;
    REQUIRE(h.wrmsr(HV_X64_MSR_GUEST_OS_ID, 1));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_HYPERCALL, HvHarness::HYPERCALL_PAGE | 1 | (1 << 5)));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_HYPERCALL, (HvHarness::RAM + 0x1000) | 1));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_HYPERCALL, 0xA0000 | 1)); // the legacy hole is not RAM
    CHECK(h.wrmsr(HV_X64_MSR_HYPERCALL, HvHarness::HYPERCALL_PAGE | 3));
    CHECK(h.rdmsr(HV_X64_MSR_HYPERCALL) == (HvHarness::HYPERCALL_PAGE | 3));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_HYPERCALL, 0));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_HYPERCALL, 0x300000 | 3));
    h.hv.reset();
    CHECK(h.rdmsr(HV_X64_MSR_HYPERCALL) == 0);
}

TEST_CASE("VP index MSR reports each VP's index and is read-only")
{
    HvHarness h(config_with_vps(3));
    CHECK(h.rdmsr(HV_X64_MSR_VP_INDEX, 0) == 0);
    CHECK(h.rdmsr(HV_X64_MSR_VP_INDEX, 2) == 2);
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_VP_INDEX, 1, 1));
    CHECK_FALSE(h.hv.read_msr(3, HV_X64_MSR_VP_INDEX).has_value());
}

TEST_CASE("The MSR bus reaches the synthetic MSRs of the VP it names")
{
    HvHarness h(config_with_vps(2));
    MsrBus bus;
    h.hv.map_msrs(bus);
    CHECK(bus.read(0, HV_X64_MSR_VP_INDEX) == 0u);
    CHECK(bus.read(1, HV_X64_MSR_VP_INDEX) == 1u);
    CHECK(bus.write(1, HV_X64_MSR_SINT0 + 2, 0x30));
    CHECK(bus.read(1, HV_X64_MSR_SINT0 + 2) == 0x30u);
    CHECK(bus.read(0, HV_X64_MSR_SINT0 + 2) == HV_SINT_MASKED);
    // A VP the partition does not have gets #GP.
    CHECK_FALSE(bus.read(2, HV_X64_MSR_VP_INDEX).has_value());
}

TEST_CASE("Synthetic MSRs outside the implemented set raise #GP")
{
    HvHarness h;
    for (u32 index : {0x40000004u, 0x40000011u, 0x40000024u, 0x40000074u, 0x40000085u, 0x400000B8u,
                      0x400000F1u, 0x40000106u, 0x400001FFu}) {
        CAPTURE(index);
        CHECK_FALSE(h.hv.read_msr(0, index).has_value());
        CHECK_FALSE(h.wrmsr(index, 0));
    }
}

TEST_CASE("Disabled enlightenments map no synthetic MSR")
{
    HvConfig c;
    c.enabled = false;
    HvHarness h(c);
    MsrBus bus;
    h.hv.map_msrs(bus);
    CHECK_FALSE(bus.read(0, HV_X64_MSR_GUEST_OS_ID).has_value());
    CHECK_FALSE(bus.write(0, HV_X64_MSR_GUEST_OS_ID, 1));
    CHECK_FALSE(h.hv.read_msr(0, HV_X64_MSR_VP_INDEX).has_value());
}

TEST_CASE("Time reference counter counts 100 ns units and cannot be written")
{
    HvHarness h;
    CHECK(h.rdmsr(HV_X64_MSR_TIME_REF_COUNT) == 0);
    h.advance_ns(1'000'001);
    CHECK(h.rdmsr(HV_X64_MSR_TIME_REF_COUNT) == 10'000);
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_TIME_REF_COUNT, 0));
}

TEST_CASE("VP runtime comes from the machine's source in 100 ns units")
{
    HvHarness h(config_with_vps(2));
    h.hv.set_vp_runtime_source([](unsigned vp) { return 1000 * (vp + 1); });
    CHECK(h.rdmsr(HV_X64_MSR_VP_RUNTIME, 1) == 20);
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_VP_RUNTIME, 0));
}

TEST_CASE("Frequency MSRs report the configured TSC and APIC rates and are read-only")
{
    HvConfig c;
    c.tsc_frequency_hz = 2'000'000'000;
    c.apic_frequency_hz = 200'000'000;
    HvHarness h(c);
    CHECK(h.rdmsr(HV_X64_MSR_TSC_FREQUENCY) == 2'000'000'000);
    CHECK(h.rdmsr(HV_X64_MSR_APIC_FREQUENCY) == 200'000'000);
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_TSC_FREQUENCY, 1));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_APIC_FREQUENCY, 1));
}

TEST_CASE("Reference TSC page publishes scale and offset under a non-zero sequence")
{
    HvHarness h;
    const GuestPhys page = 0x300000;
    h.poke<u64>(page + 100, 0x1234); // stale contents vanish under the overlay
    REQUIRE(h.wrmsr(HV_X64_MSR_REFERENCE_TSC, page | 1));
    CHECK(h.rdmsr(HV_X64_MSR_REFERENCE_TSC) == (page | 1));
    const u32 sequence = h.peek<u32>(page);
    CHECK(sequence != 0);
    CHECK(h.peek<u64>(page + 8) == h.hv.time().scale());
    CHECK(h.peek<i64>(page + 16) == 0);
    CHECK(h.peek<u64>(page + 100) == 0);
    REQUIRE(h.wrmsr(HV_X64_MSR_REFERENCE_TSC, page | 1));
    CHECK(h.peek<u32>(page) != sequence);
}

TEST_CASE("Reference TSC page math gives the time reference count at every instant")
{
    HvHarness h;
    const GuestPhys page = 0x300000;
    REQUIRE(h.wrmsr(HV_X64_MSR_REFERENCE_TSC, page | 1));
    const u64 scale = h.peek<u64>(page + 8);
    const i64 offset = h.peek<i64>(page + 16);
    u64 last = 0;
    for (u64 step : {1ull, 99ull, 100ull, 12345ull, 1'000'000'007ull, 3ull}) {
        h.advance_ns(step);
        const u64 tsc = h.hv.tsc_now(); // what RDTSC returns with the machine's TSC source
        const u64 page_time = static_cast<u64>(((unsigned __int128)tsc * scale) >> 64) + offset;
        CHECK(page_time == h.rdmsr(HV_X64_MSR_TIME_REF_COUNT));
        CHECK(page_time >= last);
        last = page_time;
    }
}

TEST_CASE("An unusable reference TSC page shows sequence 0 until it is usable again")
{
    HvHarness h;
    const GuestPhys page = 0x300000;
    REQUIRE(h.wrmsr(HV_X64_MSR_REFERENCE_TSC, page | 1));
    const u32 first = h.peek<u32>(page);
    h.hv.set_reference_tsc_usable(false);
    CHECK(h.peek<u32>(page) == 0);
    h.hv.set_reference_tsc_usable(true);
    CHECK(h.peek<u32>(page) != 0);
    CHECK(h.peek<u32>(page) != first);
}

TEST_CASE("Reference TSC MSR raises #GP for reserved bits and a page outside RAM")
{
    HvHarness h;
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_REFERENCE_TSC, 0x300000 | 1 | (1 << 4)));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_REFERENCE_TSC, (HvHarness::RAM) | 1));
    CHECK(h.rdmsr(HV_X64_MSR_REFERENCE_TSC) == 0);
    CHECK(h.wrmsr(HV_X64_MSR_REFERENCE_TSC, HvHarness::RAM)); // disabled: any page number
}

TEST_CASE("APIC access MSRs reach the VP's APIC")
{
    HvHarness h(config_with_vps(2));
    CHECK(h.wrmsr(HV_X64_MSR_EOI, 0, 1));
    CHECK(h.apic.eois == std::vector<unsigned>{1});
    CHECK(h.wrmsr(HV_X64_MSR_ICR, 0x0100000000004030ull));
    CHECK(h.apic.icr == 0x0100000000004030ull);
    CHECK(h.rdmsr(HV_X64_MSR_ICR) == 0x0100000000004030ull);
    CHECK(h.wrmsr(HV_X64_MSR_TPR, 0x20));
    CHECK(h.rdmsr(HV_X64_MSR_TPR) == 0x20);
}

TEST_CASE("APIC access MSRs raise #GP on EOI reads and reserved bits")
{
    HvHarness h;
    CHECK_FALSE(h.hv.read_msr(0, HV_X64_MSR_EOI).has_value());
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_EOI, 1ull << 32));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_TPR, 0x100));
    CHECK(h.apic.eois.empty());
}

TEST_CASE("APIC access MSRs raise #GP when the partition lacks the privilege")
{
    HvConfig c;
    c.apic_access_msrs = false;
    HvHarness h(c);
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_EOI, 0));
    CHECK_FALSE(h.hv.read_msr(0, HV_X64_MSR_TPR).has_value());
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_VP_ASSIST_PAGE, 0x300001));
}

TEST_CASE("VP assist page is zeroed when enabled and refuses reserved bits")
{
    HvHarness h;
    h.poke<u32>(0x310000, 1); // a stale "no EOI required" bit
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_VP_ASSIST_PAGE, 0x310000 | 1 | 2));
    CHECK(h.wrmsr(HV_X64_MSR_VP_ASSIST_PAGE, 0x310000 | 1));
    CHECK(h.peek<u32>(0x310000) == 0);
    CHECK(h.rdmsr(HV_X64_MSR_VP_ASSIST_PAGE) == (0x310000 | 1));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_VP_ASSIST_PAGE, HvHarness::RAM | 1));
}

TEST_CASE("Crash MSRs report the five parameters on CrashNotify")
{
    HvHarness h(config_with_vps(2));
    std::vector<HvCrashReport> reports;
    h.hv.set_crash_handler([&](const HvCrashReport& r) { reports.push_back(r); });
    CHECK(h.rdmsr(HV_X64_MSR_CRASH_CTL) ==
          (HV_CRASH_CTL_CRASH_NOTIFY | HV_CRASH_CTL_CRASH_MESSAGE));
    for (u32 i = 0; i < 5; ++i)
        REQUIRE(h.wrmsr(HV_X64_MSR_CRASH_P0 + i, 0x100 + i));
    CHECK(h.rdmsr(HV_X64_MSR_CRASH_P0 + 3, 1) == 0x103); // partition-wide
    CHECK(reports.empty());
    REQUIRE(h.wrmsr(HV_X64_MSR_CRASH_CTL, HV_CRASH_CTL_CRASH_NOTIFY, 1));
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].vp == 1);
    CHECK(reports[0].params == std::array<u64, 5>{0x100, 0x101, 0x102, 0x103, 0x104});
    CHECK_FALSE(reports[0].message.has_value());
}

TEST_CASE("Crash MSRs carry the guest's message with CrashMessage")
{
    HvHarness h;
    std::vector<HvCrashReport> reports;
    h.hv.set_crash_handler([&](const HvCrashReport& r) { reports.push_back(r); });
    const char text[] = "Kernel panic - not syncing: sysrq triggered crash";
    REQUIRE(h.memory.write_bytes(0x320000, text, sizeof text));
    REQUIRE(h.wrmsr(HV_X64_MSR_CRASH_P0 + 3, 0x320000));
    REQUIRE(h.wrmsr(HV_X64_MSR_CRASH_P0 + 4, sizeof text));
    REQUIRE(h.wrmsr(HV_X64_MSR_CRASH_CTL, HV_CRASH_CTL_CRASH_NOTIFY | HV_CRASH_CTL_CRASH_MESSAGE));
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].message == std::string(text));
}

TEST_CASE("Crash control raises #GP for reserved bits and without the privilege")
{
    HvHarness h;
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_CRASH_CTL, 1));
    CHECK(h.wrmsr(HV_X64_MSR_CRASH_CTL, 0));
    HvConfig c;
    c.crash_msrs = false;
    HvHarness off(c);
    CHECK_FALSE(off.hv.read_msr(0, HV_X64_MSR_CRASH_CTL).has_value());
    CHECK_FALSE(off.wrmsr(HV_X64_MSR_CRASH_P0, 1));
}

TEST_CASE("Reset MSR asks the machine for a system reset")
{
    HvHarness h;
    int resets = 0;
    h.hv.set_reset_handler([&] { ++resets; });
    CHECK(h.rdmsr(HV_X64_MSR_RESET) == 0);
    CHECK(h.wrmsr(HV_X64_MSR_RESET, 0));
    CHECK(resets == 0);
    CHECK(h.wrmsr(HV_X64_MSR_RESET, 1));
    CHECK(resets == 1);
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_RESET, 2));
}

TEST_CASE("Reading the guest idle MSR asks the machine to idle the VP")
{
    HvHarness h(config_with_vps(2));
    std::vector<unsigned> idled;
    h.hv.set_guest_idle_handler([&](unsigned vp) { idled.push_back(vp); });
    CHECK(h.rdmsr(HV_X64_MSR_GUEST_IDLE, 1) == 0);
    CHECK(idled == std::vector<unsigned>{1});
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_GUEST_IDLE, 0));
}
