#include "platform/machine/hyperv_glue.h"

#include "accel/interp/interp_backend.h"
#include "mmu/physical_memory.h"
#include "mmu/bus/port_bus.h"
#include "platform/interrupts/local_apic.h"

#include <doctest/doctest.h>

namespace {

// Two vCPUs sharing one MSR bus, as the machine wires them.
struct TwoVcpus {
    PhysicalMemory memory{16 << 20};
    PortBus ports;
    MsrBus msrs;
    CpuidModel cpuid{2};
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    ApicBus apic_bus;
    LocalApic apic0{apic_bus, clock, LocalApic::Config{0, true}};
    LocalApic apic1{apic_bus, clock, LocalApic::Config{1, false}};
    std::unique_ptr<Accelerator> accel =
        make_interp_accelerator(AcceleratorWiring{memory, ports, msrs, cpuid, 2}, InterpOptions{}).release_value();
    std::unique_ptr<VcpuBackend> cpu0 = accel->create_vcpu(0);
    std::unique_ptr<VcpuBackend> cpu1 = accel->create_vcpu(1);
    u64 instructions = 0;
    HypervGlue glue;

    explicit TwoVcpus(bool enabled = true) : glue(config(enabled), memory, clock, cpuid)
    {
        clock.set_instruction_counter([this] { return instructions; });
        glue.attach_vcpu(0, *cpu0, apic0, msrs);
        glue.attach_vcpu(1, *cpu1, apic1, msrs);
    }
    static HvConfig config(bool enabled)
    {
        HvConfig c;
        c.enabled = enabled;
        c.vp_count = 2;
        return c;
    }
};

} // namespace

TEST_CASE("HypervGlue routes the per-VP synthetic MSRs to the vCPU that makes the access")
{
    TwoVcpus m;
    CHECK(m.msrs.read(0, HV_X64_MSR_VP_INDEX) == 0u);
    CHECK(m.msrs.read(1, HV_X64_MSR_VP_INDEX) == 1u);
}

TEST_CASE("HypervGlue makes every vCPU's TSC the partition TSC of the reference page")
{
    TwoVcpus m;
    m.instructions = 123456789;
    CHECK(m.cpu0->read_tsc() == m.glue.hv().tsc_now());
    CHECK(m.cpu1->read_tsc() == m.glue.hv().tsc_now());
    CHECK(m.msrs.read(0, HV_X64_MSR_TIME_REF_COUNT) == 1234567u); // 100 ns units
}

TEST_CASE("HypervGlue: a LAPIC EOI of a SINT vector frees the SynIC slot for the next message")
{
    TwoVcpus m;
    m.apic0.io_write(0xF0, 4, 0x1FF); // SVR: software-enabled
    // SynIC on, message page at 1 MiB, SINT 2 -> vector 0x50.
    REQUIRE(m.msrs.write(0, HV_X64_MSR_SCONTROL, 1));
    REQUIRE(m.msrs.write(0, HV_X64_MSR_SIMP, 0x100000 | 1));
    REQUIRE(m.msrs.write(0, HV_X64_MSR_SINT0 + 2, 0x50));
    HvMessage first, second;
    first.type = 1;
    second.type = 2;
    Synic& synic = m.glue.hv().synic(0);
    CHECK(synic.post_message(2, first) == HvStatus::Success);
    CHECK(synic.post_message(2, second) == HvStatus::Success); // slot busy: queued
    CHECK(m.apic0.acknowledge_interrupt() == 0x50);
    // The guest empties the slot and EOIs through the LAPIC, not EOM.
    const u32 none = 0;
    m.memory.write_bytes(0x100000 + 2 * 256, &none, 4);
    m.apic0.end_of_interrupt();
    u32 type = 0;
    m.memory.read_bytes(0x100000 + 2 * 256, &type, 4);
    CHECK(type == 2); // redelivered on the EOI
    CHECK(m.apic0.irr_bit(0x50));
}

TEST_CASE("HypervGlue with enlightenments off claims nothing")
{
    TwoVcpus m(false);
    CHECK_FALSE(m.msrs.read(0, HV_X64_MSR_VP_INDEX).has_value());
    CHECK_FALSE(m.msrs.write(0, HV_X64_MSR_GUEST_OS_ID, 1));
    CHECK(m.cpuid.query(0x40000000, 0, 0).eax == 0);
    CHECK((m.cpuid.query(1, 0, 0).ecx >> 31) == 0);
}
