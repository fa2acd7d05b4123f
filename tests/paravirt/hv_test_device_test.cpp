#include "paravirt/hv_test_device.h"
#include "tests/paravirt/hv_harness.h"

#include <array>

namespace {

constexpr GuestPhys SIMP = 0x400000;
constexpr GuestPhys SIEFP = 0x401000;
constexpr unsigned VPS = 2;

// Two VPs with their SynICs enabled, as the kvm-unit-tests set them up.
struct TestDeviceHarness : HvHarness {
    HvTestDevice device{hv};

    TestDeviceHarness() : HvHarness(config_with_vps(VPS))
    {
        for (unsigned vp = 0; vp < VPS; ++vp) {
            REQUIRE(wrmsr(HV_X64_MSR_SIMP, (SIMP + vp * 0x2000) | 1, vp));
            REQUIRE(wrmsr(HV_X64_MSR_SIEFP, (SIEFP + vp * 0x2000) | 1, vp));
            REQUIRE(wrmsr(HV_X64_MSR_SCONTROL, 1, vp));
        }
    }
    // The guest's outl((conn << 24) | (ctl << 16) | (vp << 8) | sint, 0x3000).
    void ctl(u32 control, u32 vp, u32 sint, u32 conn = 0)
    {
        device.io_write(0, 4, (conn << 24) | (control << 16) | (vp << 8) | sint);
    }
    void unmask(unsigned vp, unsigned sint, u64 vector)
    {
        REQUIRE(wrmsr(HV_X64_MSR_SINT0 + sint, vector, vp));
    }
    GuestPhys slot(unsigned vp, unsigned sint)
    {
        return SIMP + vp * 0x2000 + sint * HV_MESSAGE_SIZE;
    }
    u8 event_byte(unsigned vp, unsigned sint, unsigned flag)
    {
        return peek<u8>(SIEFP + vp * 0x2000 + sint * HV_EVENT_FLAGS_BYTES + flag / 8);
    }
    HvStatus post(unsigned conn, u32 type, u64 payload)
    {
        std::array<u8, 8> bytes;
        std::memcpy(bytes.data(), &payload, 8);
        return hv.connections().post_message(0, conn, type, bytes);
    }
};

} // namespace

TEST_CASE("Test device: a SINT route raises the SINT's vector on its VP")
{
    TestDeviceHarness h;
    h.unmask(1, 3, 0xB3 | HV_SINT_AUTO_EOI);
    h.ctl(HvTestDevice::SINT_ROUTE_CREATE, 1, 3);
    CHECK(h.device.has_route(1, 3));
    h.ctl(HvTestDevice::SINT_ROUTE_SET_SINT, 1, 3);
    h.ctl(HvTestDevice::SINT_ROUTE_SET_SINT, 1, 3);
    CHECK(h.apic.raised == std::vector<RecordingApic::Raised>{{1, 0xB3, true}, {1, 0xB3, true}});
    // No flag is set and no message posted: only the interrupt.
    CHECK(h.event_byte(1, 3, 0) == 0);
    CHECK(h.peek<u32>(h.slot(1, 3)) == 0);
}

TEST_CASE("Test device: a masked SINT, a disabled SynIC or a missing route raise nothing")
{
    TestDeviceHarness h;
    h.ctl(HvTestDevice::SINT_ROUTE_CREATE, 0, 5);
    h.ctl(HvTestDevice::SINT_ROUTE_SET_SINT, 0, 5); // still masked
    h.unmask(0, 5, 0xB5);
    h.ctl(HvTestDevice::SINT_ROUTE_SET_SINT, 0, 4); // no route for SINT 4
    h.ctl(HvTestDevice::SINT_ROUTE_SET_SINT, 1, 5); // nor for VP 1
    REQUIRE(h.wrmsr(HV_X64_MSR_SCONTROL, 0, 0));
    h.ctl(HvTestDevice::SINT_ROUTE_SET_SINT, 0, 5);
    CHECK(h.apic.raised.empty());
    REQUIRE(h.wrmsr(HV_X64_MSR_SCONTROL, 1, 0));
    h.ctl(HvTestDevice::SINT_ROUTE_SET_SINT, 0, 5);
    CHECK(h.apic.raised.size() == 1);
    h.ctl(HvTestDevice::SINT_ROUTE_DESTROY, 0, 5);
    CHECK_FALSE(h.device.has_route(0, 5));
    h.ctl(HvTestDevice::SINT_ROUTE_SET_SINT, 0, 5);
    h.ctl(HvTestDevice::SINT_ROUTE_DESTROY, 0, 5); // destroying twice is harmless
    CHECK(h.apic.raised.size() == 1);
}

TEST_CASE("Test device: bad controls, VPs, SINTs and access sizes are ignored")
{
    TestDeviceHarness h;
    h.unmask(0, 0, 0xB0);
    h.ctl(HvTestDevice::SINT_ROUTE_CREATE, 2, 0); // VP out of range
    h.ctl(HvTestDevice::SINT_ROUTE_CREATE, 255, 0);
    h.ctl(HvTestDevice::SINT_ROUTE_CREATE, 0, 16); // SINT out of range
    h.ctl(HvTestDevice::SINT_ROUTE_CREATE, 0, 255);
    h.ctl(HvTestDevice::SINT_ROUTE_SET_SINT, 2, 0);
    h.ctl(HvTestDevice::SINT_ROUTE_SET_SINT, 0, 16);
    h.ctl(HvTestDevice::MSG_CONN_CREATE, 2, 0, 0x10);
    h.ctl(HvTestDevice::EVT_CONN_CREATE, 0, 16, 0x20);
    for (u32 control : {0u, 8u, 0x7Fu, 0xFFu})
        h.ctl(control, 0, 0, 0x30);
    CHECK_FALSE(h.device.has_route(2, 0));
    CHECK_FALSE(h.device.has_route(0, 16));
    CHECK_FALSE(h.device.owns_connection(0x10));
    CHECK_FALSE(h.device.owns_connection(0x20));
    CHECK_FALSE(h.device.owns_connection(0x30));
    // Only an aligned 32-bit write counts.
    const u64 create = (HvTestDevice::SINT_ROUTE_CREATE << 16) | 0;
    h.device.io_write(0, 1, create);
    h.device.io_write(0, 2, create);
    h.device.io_write(0, 8, create);
    h.device.io_write(1, 4, create);
    CHECK_FALSE(h.device.has_route(0, 0));
    CHECK(h.device.io_read(0, 4) == 0xFFFFFFFF);
    CHECK(h.device.io_read(0, 1) == 0xFF);
    CHECK(h.apic.raised.empty());
}

TEST_CASE("Test device: a message connection posts the guest's message back into its SINT")
{
    TestDeviceHarness h;
    h.ctl(HvTestDevice::MSG_CONN_CREATE, 1, 8, 0x11);
    h.unmask(1, 8, 0xB0 | HV_SINT_AUTO_EOI);
    REQUIRE(h.device.owns_connection(0x11));
    CHECK(h.post(0x11, 0x12345678, 0x10001) == HvStatus::Success);
    CHECK(h.peek<u32>(h.slot(1, 8)) == 0x12345678);
    CHECK(h.peek<u8>(h.slot(1, 8) + 4) == 8); // payload size
    CHECK(h.peek<u64>(h.slot(1, 8) + HV_MESSAGE_HEADER_SIZE) == 0x10001);
    CHECK(h.apic.raised == std::vector<RecordingApic::Raised>{{1, 0xB0, true}});

    // A busy slot: the message waits, MessagePending is set, EOM delivers.
    CHECK(h.post(0x11, 0x12345678, 0x10002) == HvStatus::Success);
    CHECK(h.peek<u64>(h.slot(1, 8) + HV_MESSAGE_HEADER_SIZE) == 0x10001);
    CHECK((h.peek<u8>(h.slot(1, 8) + 5) & HV_MESSAGE_FLAG_PENDING) != 0);
    h.poke<u32>(h.slot(1, 8), 0);
    REQUIRE(h.wrmsr(HV_X64_MSR_EOM, 0, 1));
    CHECK(h.peek<u64>(h.slot(1, 8) + HV_MESSAGE_HEADER_SIZE) == 0x10002);
    CHECK(h.apic.raised.size() == 2);

    h.ctl(HvTestDevice::EVT_CONN_DESTROY, 0, 0, 0x11); // wrong kind: stays
    CHECK(h.device.owns_connection(0x11));
    h.ctl(HvTestDevice::MSG_CONN_DESTROY, 0, 0, 0x11);
    CHECK_FALSE(h.device.owns_connection(0x11));
    CHECK(h.post(0x11, 1, 0) == HvStatus::InvalidConnectionId);
    h.ctl(HvTestDevice::MSG_CONN_DESTROY, 0, 0, 0x11); // missing: ignored
}

TEST_CASE("Test device: an event connection sets flag conn_id of its SINT and interrupts once")
{
    TestDeviceHarness h;
    h.ctl(HvTestDevice::EVT_CONN_CREATE, 0, 9, 0x21);
    h.unmask(0, 9, 0xB1 | HV_SINT_AUTO_EOI);
    CHECK(h.hv.connections().signal_event(1, 0x21, 0) == HvStatus::Success);
    CHECK(h.event_byte(0, 9, 0x21) == 1u << (0x21 % 8));
    CHECK(h.hv.connections().signal_event(1, 0x21, 0) == HvStatus::Success);
    CHECK(h.apic.raised == std::vector<RecordingApic::Raised>{{0, 0xB1, true}});
    // One flag per connection: flag number 1 is outside the port.
    CHECK(h.hv.connections().signal_event(1, 0x21, 1) == HvStatus::InvalidParameter);
    // Posting a message to an event connection is the wrong kind of port.
    CHECK(h.post(0x21, 1, 0) == HvStatus::InvalidPortId);

    h.ctl(HvTestDevice::EVT_CONN_DESTROY, 0, 0, 0x21);
    CHECK(h.hv.connections().signal_event(1, 0x21, 0) == HvStatus::InvalidConnectionId);
}

TEST_CASE("Test device: duplicate connections and the host's own ports are left alone")
{
    TestDeviceHarness h;
    int host_calls = 0;
    REQUIRE(h.hv.connections().add_event_port(0x40, 1, [&](unsigned, u16) {
        ++host_calls;
        return HvStatus::Success;
    }));
    h.ctl(HvTestDevice::MSG_CONN_CREATE, 0, 8, 0x40); // taken by the host
    h.ctl(HvTestDevice::EVT_CONN_DESTROY, 0, 0, 0x40);
    CHECK_FALSE(h.device.owns_connection(0x40));
    CHECK(h.hv.connections().signal_event(0, 0x40, 0) == HvStatus::Success);
    CHECK(host_calls == 1);

    h.ctl(HvTestDevice::EVT_CONN_CREATE, 0, 9, 0x22);
    h.ctl(HvTestDevice::EVT_CONN_CREATE, 1, 3, 0x22); // duplicate: the first stays
    h.ctl(HvTestDevice::MSG_CONN_CREATE, 1, 3, 0x22);
    h.unmask(0, 9, 0xB1);
    CHECK(h.hv.connections().signal_event(0, 0x22, 0) == HvStatus::Success);
    CHECK(h.event_byte(0, 9, 0x22) != 0);
    CHECK(h.event_byte(1, 3, 0x22) == 0);
}

TEST_CASE("Test device: its connections leave the partition with it")
{
    HvHarness h(config_with_vps(1));
    {
        HvTestDevice device(h.hv);
        device.io_write(0, 4, (0x10u << 24) | (HvTestDevice::MSG_CONN_CREATE << 16) | 8);
        REQUIRE(device.owns_connection(0x10));
    }
    std::array<u8, 1> byte{};
    CHECK(h.hv.connections().post_message(0, 0x10, 1, byte) == HvStatus::InvalidConnectionId);
}
