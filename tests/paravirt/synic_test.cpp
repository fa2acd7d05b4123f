#include "tests/paravirt/hv_harness.h"

namespace {

constexpr GuestPhys SIMP = 0x400000;
constexpr GuestPhys SIEFP = 0x401000;
constexpr u8 VECTOR = 0x93;

// A SynIC set up the way Linux's hv_synic_enable_regs does it.
struct SynicHarness : HvHarness {
    explicit SynicHarness(const HvConfig& c = HvConfig{}) : HvHarness(c)
    {
        REQUIRE(wrmsr(HV_X64_MSR_SIMP, SIMP | 1));
        REQUIRE(wrmsr(HV_X64_MSR_SIEFP, SIEFP | 1));
        REQUIRE(wrmsr(HV_X64_MSR_SINT0 + 2, VECTOR));
        REQUIRE(wrmsr(HV_X64_MSR_SCONTROL, 1));
    }
    Synic& synic() { return hv.synic(0); }
    GuestPhys slot(unsigned sint) { return SIMP + sint * HV_MESSAGE_SIZE; }
    u32 slot_type(unsigned sint) { return peek<u32>(slot(sint)); }
    u8 slot_flags(unsigned sint) { return peek<u8>(slot(sint) + 5); }
    // What the guest's ISR does: take the message, free the slot, EOM if asked.
    u32 consume(unsigned sint)
    {
        const u32 type = slot_type(sint);
        const bool pending = slot_flags(sint) & 1;
        poke<u32>(slot(sint), 0);
        if (pending)
            REQUIRE(wrmsr(HV_X64_MSR_EOM, 0));
        return type;
    }
};

HvMessage message(u32 type, u8 fill, u8 size = 8)
{
    HvMessage m;
    m.type = type;
    m.payload_size = size;
    m.origin = 0x77;
    m.payload.fill(fill);
    return m;
}

} // namespace

TEST_CASE("SynIC registers start disabled with every SINT masked")
{
    HvHarness h;
    CHECK(h.rdmsr(HV_X64_MSR_SCONTROL) == 0);
    CHECK(h.rdmsr(HV_X64_MSR_SVERSION) == 1);
    CHECK(h.rdmsr(HV_X64_MSR_SIMP) == 0);
    CHECK(h.rdmsr(HV_X64_MSR_SIEFP) == 0);
    CHECK(h.rdmsr(HV_X64_MSR_EOM) == 0);
    for (u32 i = 0; i < 16; ++i)
        CHECK(h.rdmsr(HV_X64_MSR_SINT0 + i) == 0x10000);
}

TEST_CASE("SynIC raises #GP for SVERSION writes, non-zero EOM and unmasked low vectors")
{
    HvHarness h;
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_SVERSION, 1));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_EOM, 1));
    CHECK(h.wrmsr(HV_X64_MSR_EOM, 0));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_SINT0, 0x0F));
    CHECK(h.wrmsr(HV_X64_MSR_SINT0, 0x1000F)); // masked: kept
    CHECK(h.wrmsr(HV_X64_MSR_SINT0, 0x10));
    CHECK(h.rdmsr(HV_X64_MSR_SINT0) == 0x10);
}

TEST_CASE("SynIC keeps RsvdP bits of its registers as written")
{
    HvHarness h;
    CHECK(h.wrmsr(HV_X64_MSR_SCONTROL, 0xF0));
    CHECK(h.rdmsr(HV_X64_MSR_SCONTROL) == 0xF0);
    CHECK(h.wrmsr(HV_X64_MSR_SINT0 + 1, (1ull << 40) | 0x1FF30));
    CHECK(h.rdmsr(HV_X64_MSR_SINT0 + 1) == ((1ull << 40) | 0x1FF30));
}

TEST_CASE("Enabling the SIM page clears it")
{
    HvHarness h;
    h.poke<u32>(SIMP + 3 * HV_MESSAGE_SIZE, 0x1234);
    REQUIRE(h.wrmsr(HV_X64_MSR_SIMP, SIMP | 1));
    CHECK(h.peek<u32>(SIMP + 3 * HV_MESSAGE_SIZE) == 0);
}

TEST_CASE("A posted message lands in its SINT slot and interrupts with the SINT vector")
{
    SynicHarness h;
    REQUIRE(h.wrmsr(HV_X64_MSR_SINT0 + 2, VECTOR | HV_SINT_AUTO_EOI));
    CHECK(h.synic().post_message(2, message(0x42, 0xAB, 12)) == HvStatus::Success);
    CHECK(h.slot_type(2) == 0x42);
    CHECK(h.peek<u8>(h.slot(2) + 4) == 12);
    CHECK(h.slot_flags(2) == 0);
    CHECK(h.peek<u64>(h.slot(2) + 8) == 0x77);
    CHECK(h.peek<u8>(h.slot(2) + 16) == 0xAB);
    CHECK(h.peek<u8>(h.slot(2) + 27) == 0xAB);
    CHECK(h.peek<u8>(h.slot(2) + 28) == 0); // only the payload bytes are written
    CHECK(h.apic.raised == std::vector<RecordingApic::Raised>{{0, VECTOR, true}});
}

TEST_CASE("A second message waits, marks MessagePending, and arrives after EOM")
{
    SynicHarness h;
    REQUIRE(h.synic().post_message(2, message(1, 1)) == HvStatus::Success);
    REQUIRE(h.synic().post_message(2, message(2, 2)) == HvStatus::Success);
    CHECK(h.synic().queued(2) == 1);
    CHECK(h.slot_type(2) == 1);
    CHECK(h.slot_flags(2) == HV_MESSAGE_FLAG_PENDING);
    CHECK(h.apic.raised.size() == 1);
    CHECK(h.consume(2) == 1);
    CHECK(h.slot_type(2) == 2);
    CHECK(h.slot_flags(2) == 0);
    CHECK(h.synic().queued(2) == 0);
    CHECK(h.apic.raised.size() == 2);
}

TEST_CASE("An APIC EOI of a SINT vector redelivers that SINT's queued messages")
{
    SynicHarness h;
    REQUIRE(h.synic().post_message(2, message(1, 1)) == HvStatus::Success);
    REQUIRE(h.synic().post_message(2, message(2, 2)) == HvStatus::Success);
    h.poke<u32>(h.slot(2), 0); // the ISR empties the slot, then EOIs
    h.hv.apic_eoi(0, 0x55);    // another vector: nothing happens
    CHECK(h.slot_type(2) == 0);
    h.hv.apic_eoi(0, VECTOR);
    CHECK(h.slot_type(2) == 2);
}

TEST_CASE("EOM with no queued message changes nothing")
{
    SynicHarness h;
    CHECK(h.wrmsr(HV_X64_MSR_EOM, 0));
    CHECK(h.apic.raised.empty());
    CHECK(h.slot_type(2) == 0);
}

TEST_CASE("A full SINT queue answers insufficient buffers")
{
    SynicHarness h;
    for (unsigned i = 0; i < Synic::QUEUE_DEPTH + 1; ++i)
        REQUIRE(h.synic().post_message(2, message(1, 1)) == HvStatus::Success);
    CHECK(h.synic().post_message(2, message(1, 1)) == HvStatus::InsufficientBuffers);
}

TEST_CASE("Posting to a disabled SynIC or SIM page is an invalid SynIC state")
{
    HvHarness h;
    CHECK(h.hv.synic(0).post_message(0, message(1, 1)) == HvStatus::InvalidSynicState);
    REQUIRE(h.wrmsr(HV_X64_MSR_SCONTROL, 1));
    CHECK(h.hv.synic(0).post_message(0, message(1, 1)) == HvStatus::InvalidSynicState);
    REQUIRE(h.wrmsr(HV_X64_MSR_SIMP, SIMP | 1));
    CHECK(h.hv.synic(0).post_message(0, message(1, 1)) == HvStatus::Success);
    CHECK(h.hv.synic(0).post_message(0, message(0, 1)) == HvStatus::InvalidParameter);
    CHECK(h.hv.synic(0).post_message(0, message(1, 1, 241)) == HvStatus::InvalidParameter);
}

TEST_CASE("A masked SINT gets its message but loses the interrupt")
{
    SynicHarness h;
    REQUIRE(h.wrmsr(HV_X64_MSR_SINT0 + 2, VECTOR | HV_SINT_MASKED));
    CHECK(h.synic().post_message(2, message(9, 9)) == HvStatus::Success);
    CHECK(h.slot_type(2) == 9);
    CHECK(h.apic.raised.empty());
}

TEST_CASE("A polled SINT gets messages and event flags without interrupts")
{
    SynicHarness h;
    REQUIRE(h.wrmsr(HV_X64_MSR_SINT0 + 2, VECTOR | HV_SINT_POLLING));
    CHECK(h.synic().post_message(2, message(9, 9)) == HvStatus::Success);
    CHECK(h.synic().signal_event(2, 5) == HvStatus::Success);
    CHECK(h.slot_type(2) == 9);
    CHECK(h.peek<u8>(SIEFP + 2 * 256) == 0x20);
    CHECK(h.apic.raised.empty());
}

TEST_CASE("Signalling an event sets its flag and interrupts only when it was clear")
{
    SynicHarness h;
    CHECK(h.synic().signal_event(2, 13) == HvStatus::Success);
    CHECK(h.peek<u8>(SIEFP + 2 * 256 + 1) == 0x20);
    CHECK(h.apic.raised.size() == 1);
    CHECK(h.synic().signal_event(2, 13) == HvStatus::Success);
    CHECK(h.apic.raised.size() == 1);
    h.poke<u8>(SIEFP + 2 * 256 + 1, 0); // the guest clears it
    CHECK(h.synic().signal_event(2, 13) == HvStatus::Success);
    CHECK(h.apic.raised.size() == 2);
    CHECK(h.synic().signal_event(2, 2047) == HvStatus::Success);
    CHECK(h.peek<u8>(SIEFP + 2 * 256 + 255) == 0x80);
    CHECK(h.synic().signal_event(2, 2048) == HvStatus::InvalidParameter);
}

TEST_CASE("Events to a masked SINT or a disabled SIEF page are an invalid SynIC state")
{
    SynicHarness h;
    CHECK(h.synic().signal_event(3, 0) == HvStatus::InvalidSynicState); // SINT3 masked
    REQUIRE(h.wrmsr(HV_X64_MSR_SIEFP, SIEFP));
    CHECK(h.synic().signal_event(2, 0) == HvStatus::InvalidSynicState);
    REQUIRE(h.wrmsr(HV_X64_MSR_SIEFP, SIEFP | 1));
    REQUIRE(h.wrmsr(HV_X64_MSR_SCONTROL, 0));
    CHECK(h.synic().signal_event(2, 0) == HvStatus::InvalidSynicState);
}

TEST_CASE("A SIM page outside RAM leaves messages queued instead of faulting")
{
    HvHarness h;
    REQUIRE(h.wrmsr(HV_X64_MSR_SCONTROL, 1));
    REQUIRE(h.wrmsr(HV_X64_MSR_SIMP, (HvHarness::RAM + 0x10000) | 1));
    REQUIRE(h.wrmsr(HV_X64_MSR_SINT0, 0x40));
    CHECK(h.hv.synic(0).post_message(0, message(1, 1)) == HvStatus::Success);
    CHECK(h.hv.synic(0).queued(0) == 1);
    CHECK(h.apic.raised.empty());
}

TEST_CASE("SynIC reset empties the queues and restores the register defaults")
{
    SynicHarness h;
    REQUIRE(h.synic().post_message(2, message(1, 1)) == HvStatus::Success);
    REQUIRE(h.synic().post_message(2, message(2, 2)) == HvStatus::Success);
    h.hv.reset();
    CHECK(h.synic().queued(2) == 0);
    CHECK(h.rdmsr(HV_X64_MSR_SIMP) == 0);
    CHECK(h.rdmsr(HV_X64_MSR_SINT0 + 2) == HV_SINT_MASKED);
}

TEST_CASE("The APIC learns which vectors belong to unmasked AutoEOI SINTs")
{
    HvHarness h(config_with_vps(2));
    using Set = std::set<std::pair<unsigned, u8>>;
    REQUIRE(h.wrmsr(HV_X64_MSR_SINT0 + 1, 0x60 | HV_SINT_AUTO_EOI, 1));
    CHECK(h.apic.auto_eoi == Set{{1, 0x60}});
    REQUIRE(h.wrmsr(HV_X64_MSR_SINT0 + 4, 0x60 | HV_SINT_AUTO_EOI | HV_SINT_MASKED, 1));
    REQUIRE(h.wrmsr(HV_X64_MSR_SINT0 + 2, 0x61, 1));
    CHECK(h.apic.auto_eoi == Set{{1, 0x60}});
    REQUIRE(h.wrmsr(HV_X64_MSR_SINT0 + 1, 0x60 | HV_SINT_MASKED | HV_SINT_AUTO_EOI, 1));
    CHECK(h.apic.auto_eoi.empty());
    REQUIRE(h.wrmsr(HV_X64_MSR_SINT0 + 1, 0x62 | HV_SINT_AUTO_EOI, 1));
    StateVisitor saver = StateVisitor::saver();
    h.hv.visit_state(saver);
    h.hv.reset();
    CHECK(h.apic.auto_eoi.empty());
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    h.hv.visit_state(loader);
    REQUIRE(loader.ok());
    CHECK(h.apic.auto_eoi == Set{{1, 0x62}});
}

TEST_CASE("signal_sint raises the SINT's vector only, not while masked, polled or disabled")
{
    SynicHarness h;
    CHECK(h.synic().signal_sint(2) == HvStatus::Success);
    CHECK(h.apic.raised == std::vector<RecordingApic::Raised>{{0, VECTOR, false}});
    CHECK(h.slot_type(2) == 0);
    CHECK(h.peek<u8>(SIEFP + 2 * 256) == 0);
    CHECK(h.synic().signal_sint(16) == HvStatus::InvalidParameter);
    CHECK(h.synic().signal_sint(3) == HvStatus::InvalidSynicState); // masked since reset
    REQUIRE(h.wrmsr(HV_X64_MSR_SINT0 + 2, VECTOR | HV_SINT_POLLING));
    CHECK(h.synic().signal_sint(2) == HvStatus::Success);
    REQUIRE(h.wrmsr(HV_X64_MSR_SINT0 + 2, VECTOR));
    REQUIRE(h.wrmsr(HV_X64_MSR_SCONTROL, 0));
    CHECK(h.synic().signal_sint(2) == HvStatus::InvalidSynicState);
    CHECK(h.apic.raised.size() == 1);
}
