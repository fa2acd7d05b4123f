#include "tests/paravirt/hv_harness.h"
#include "tests/state_patch.h"

namespace {

constexpr GuestPhys SIMP = 0x400000;
constexpr u8 SINT_VECTOR = 0x93;
constexpr unsigned SINT = 2;

u64 config(unsigned sint, u64 flags)
{
    return flags | (u64(sint) << 16);
}
u64 direct_config(u8 vector, u64 flags)
{
    return flags | HV_STIMER_DIRECT_MODE | (u64(vector) << 4);
}

struct TimerHarness : HvHarness {
    explicit TimerHarness(const HvConfig& c = HvConfig{}) : HvHarness(c)
    {
        REQUIRE(wrmsr(HV_X64_MSR_SIMP, SIMP | 1));
        REQUIRE(wrmsr(HV_X64_MSR_SINT0 + SINT, SINT_VECTOR));
        REQUIRE(wrmsr(HV_X64_MSR_SCONTROL, 1));
    }
    GuestPhys slot() const { return SIMP + SINT * HV_MESSAGE_SIZE; }
    u64 now() { return hv.reference_time(); }
    struct Expiry {
        u32 timer;
        u64 expiration;
        u64 delivery;
    };
    // Reads the timer message in the slot and frees it the way Linux does.
    std::optional<Expiry> take()
    {
        if (peek<u32>(slot()) != HV_MESSAGE_TYPE_TIMER_EXPIRED)
            return std::nullopt;
        REQUIRE(peek<u8>(slot() + 4) == 24);
        Expiry e{peek<u32>(slot() + 16), peek<u64>(slot() + 24), peek<u64>(slot() + 32)};
        const bool pending = peek<u8>(slot() + 5) & 1;
        poke<u32>(slot(), 0);
        if (pending)
            REQUIRE(wrmsr(HV_X64_MSR_EOM, 0));
        return e;
    }
};

} // namespace

TEST_CASE("Synthetic timer registers start at zero")
{
    HvHarness h;
    for (u32 i = HV_X64_MSR_STIMER0_CONFIG; i <= HV_X64_MSR_STIMER3_COUNT; ++i)
        CHECK(h.rdmsr(i) == 0);
}

TEST_CASE("A one-shot timer sends its message when the reference counter reaches the count")
{
    TimerHarness h;
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG + 2, config(SINT, HV_STIMER_ENABLE))); // timer 1
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT + 2, 5000));
    h.advance_to_reference(4999);
    CHECK_FALSE(h.take().has_value());
    h.advance_to_reference(5000);
    const auto e = h.take();
    REQUIRE(e.has_value());
    CHECK(e->timer == 1);
    CHECK(e->expiration == 5000);
    CHECK(e->delivery == 5000);
    CHECK(h.apic.raised == std::vector<RecordingApic::Raised>{{0, SINT_VECTOR, false}});
    // One-shot timers disable themselves.
    CHECK((h.rdmsr(HV_X64_MSR_STIMER0_CONFIG + 2) & HV_STIMER_ENABLE) == 0);
    h.advance_ns(10'000'000);
    CHECK_FALSE(h.take().has_value());
}

TEST_CASE("A one-shot timer whose count is already past expires at once")
{
    TimerHarness h;
    h.advance_ns(100'000);
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT, 10));
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG, config(SINT, HV_STIMER_ENABLE)));
    const auto e = h.take();
    REQUIRE(e.has_value());
    CHECK(e->expiration == 10);
    CHECK(e->delivery == h.now());
}

TEST_CASE("AutoEnable starts a timer when its count is written")
{
    TimerHarness h;
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG, config(SINT, HV_STIMER_AUTO_ENABLE)));
    CHECK((h.rdmsr(HV_X64_MSR_STIMER0_CONFIG) & HV_STIMER_ENABLE) == 0);
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT, h.now() + 300));
    CHECK((h.rdmsr(HV_X64_MSR_STIMER0_CONFIG) & HV_STIMER_ENABLE) != 0);
    h.advance_ns(30'000);
    CHECK(h.take().has_value());
}

TEST_CASE("Writing a zero count stops the timer whatever AutoEnable says")
{
    TimerHarness h;
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG, config(SINT, HV_STIMER_AUTO_ENABLE)));
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT, 1000));
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT, 0));
    CHECK((h.rdmsr(HV_X64_MSR_STIMER0_CONFIG) & HV_STIMER_ENABLE) == 0);
    h.advance_ns(1'000'000);
    CHECK_FALSE(h.take().has_value());
}

TEST_CASE("Enabling a message-mode timer with SINT 0 leaves it disabled")
{
    TimerHarness h;
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT, 1000));
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG, config(0, HV_STIMER_ENABLE)));
    CHECK((h.rdmsr(HV_X64_MSR_STIMER0_CONFIG) & HV_STIMER_ENABLE) == 0);
}

TEST_CASE("Synthetic timer config raises #GP for reserved bits")
{
    TimerHarness h;
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG, config(SINT, 0) | (1ull << 13)));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG, config(SINT, 0) | (1ull << 20)));
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG, config(SINT, 0) | (1ull << 63)));
    CHECK(h.rdmsr(HV_X64_MSR_STIMER0_CONFIG) == 0);
}

TEST_CASE("A periodic timer expires at every period boundary")
{
    TimerHarness h;
    h.advance_ns(12345);
    const u64 start = h.now();
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT + 6, 1000)); // timer 3
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG + 6,
                    config(SINT, HV_STIMER_ENABLE | HV_STIMER_PERIODIC)));
    for (u64 k = 1; k <= 5; ++k) {
        h.advance_to_reference(start + k * 1000 - 1);
        CHECK_FALSE(h.take().has_value());
        h.advance_to_reference(start + k * 1000);
        const auto e = h.take();
        REQUIRE(e.has_value());
        CHECK(e->timer == 3);
        CHECK(e->expiration == start + k * 1000);
        CHECK(e->delivery == start + k * 1000);
    }
    CHECK((h.rdmsr(HV_X64_MSR_STIMER0_CONFIG + 6) & HV_STIMER_ENABLE) != 0);
}

TEST_CASE("A timer message waits for a busy slot and is delivered after EOM")
{
    TimerHarness h;
    // Another message occupies the timer's SINT slot.
    HvMessage other;
    other.type = 7;
    REQUIRE(h.hv.synic(0).post_message(SINT, other) == HvStatus::Success);
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT, 500));
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG, config(SINT, HV_STIMER_ENABLE)));
    h.advance_to_reference(600);
    CHECK(h.hv.stimers(0).message_pending(0));
    CHECK((h.peek<u8>(h.slot() + 5) & 1) == 1); // MessagePending asks for an EOM
    h.advance_to_reference(900);
    CHECK_FALSE(h.take().has_value()); // the slot still holds message 7
    // The guest handles message 7 and, seeing MessagePending, writes EOM.
    h.poke<u32>(h.slot(), 0);
    REQUIRE(h.wrmsr(HV_X64_MSR_EOM, 0));
    const auto e = h.take();
    REQUIRE(e.has_value());
    CHECK(e->expiration == 500);
    CHECK(e->delivery == 900);
    CHECK_FALSE(h.hv.stimers(0).message_pending(0));
}

TEST_CASE("A periodic timer delivers one late tick and skips the periods a busy slot missed")
{
    TimerHarness h;
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT, 100));
    REQUIRE(
        h.wrmsr(HV_X64_MSR_STIMER0_CONFIG, config(SINT, HV_STIMER_ENABLE | HV_STIMER_PERIODIC)));
    h.advance_to_reference(100);
    // The guest does not look for 450 ticks of 100 ns.
    h.advance_to_reference(550);
    auto e = h.take();
    REQUIRE(e.has_value());
    CHECK(e->expiration == 100);
    e = h.take(); // the tick that found the slot busy, delivered at the EOM
    REQUIRE(e.has_value());
    CHECK(e->expiration == 200);
    CHECK(e->delivery == 550);
    h.advance_to_reference(599);
    CHECK_FALSE(h.take().has_value());
    h.advance_to_reference(600);
    e = h.take();
    REQUIRE(e.has_value());
    CHECK(e->expiration == 600); // 300..500 were skipped
}

TEST_CASE("A direct-mode timer raises its vector at the APIC")
{
    TimerHarness h;
    REQUIRE(h.wrmsr(
        HV_X64_MSR_STIMER0_CONFIG,
        direct_config(0xED, HV_STIMER_ENABLE | HV_STIMER_AUTO_ENABLE | HV_STIMER_PERIODIC)));
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT, 250));
    h.advance_to_reference(249);
    CHECK(h.apic.raised.empty());
    h.advance_to_reference(250);
    CHECK(h.apic.raised == std::vector<RecordingApic::Raised>{{0, 0xED, false}});
    h.advance_to_reference(500);
    CHECK(h.apic.raised.size() == 2);
    CHECK(h.peek<u32>(h.slot()) == 0); // no message in direct mode
}

TEST_CASE("Direct mode raises #GP when the partition does not offer it")
{
    HvConfig c;
    c.direct_stimers = false;
    TimerHarness h(c);
    CHECK_FALSE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG, direct_config(0xED, HV_STIMER_ENABLE)));
}

TEST_CASE("Each VP's timers signal that VP")
{
    HvHarness h(config_with_vps(2));
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_CONFIG, direct_config(0x40, HV_STIMER_AUTO_ENABLE), 1));
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT, 10, 1));
    h.advance_ns(1000);
    CHECK(h.apic.raised == std::vector<RecordingApic::Raised>{{1, 0x40, false}});
}

TEST_CASE("A running timer survives save and load")
{
    TimerHarness h;
    REQUIRE(h.wrmsr(HV_X64_MSR_STIMER0_COUNT, 700));
    REQUIRE(
        h.wrmsr(HV_X64_MSR_STIMER0_CONFIG, config(SINT, HV_STIMER_ENABLE | HV_STIMER_PERIODIC)));
    h.advance_to_reference(300);
    StateVisitor saver = StateVisitor::saver();
    h.hv.visit_state(saver);

    TimerHarness copy;
    copy.instructions = h.instructions;
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    copy.hv.visit_state(loader);
    REQUIRE(loader.ok());
    copy.advance_to_reference(699);
    CHECK_FALSE(copy.take().has_value());
    copy.advance_to_reference(700);
    const auto e = copy.take();
    REQUIRE(e.has_value());
    CHECK(e->expiration == 700);
}

TEST_CASE("Synthetic timer state that writes to the registers cannot give is refused")
{
    TimerHarness h;
    StateVisitor save = StateVisitor::saver();
    h.hv.stimers(0).visit_state(save);
    // Timer 0: config, count, expiration, pending.
    const size_t t0 = section_bytes("stimers");
    const u64 periodic = config(SINT, HV_STIMER_ENABLE | HV_STIMER_PERIODIC);
    {
        TimerHarness fresh;
        CHECK(loads(fresh.hv.stimers(0), save.bytes()));
    }
    {
        // An enabled periodic timer with a zero period would divide by zero at its next expiry.
        TimerHarness fresh;
        CHECK_FALSE(loads(fresh.hv.stimers(0), patched<u64>(patched<u64>(save.bytes(), t0, periodic), t0 + 16, 5000)));
    }
    {
        TimerHarness fresh;
        CHECK_FALSE(loads(fresh.hv.stimers(0), patched<u64>(save.bytes(), t0, HV_STIMER_RESERVED)));
    }
    {
        TimerHarness fresh; // a disabled timer has no expiration
        CHECK_FALSE(loads(fresh.hv.stimers(0), patched<u64>(save.bytes(), t0 + 16, 5000)));
    }
}
