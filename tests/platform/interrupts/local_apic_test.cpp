#include "platform/interrupts/local_apic.h"
#include "mmu/physical_memory.h"

#include "mmu/base/state_visitor.h"

#include <doctest/doctest.h>

#include <memory>
#include <vector>

namespace {

// xAPIC register offsets used below.
constexpr u64 ID = 0x20, VER = 0x30, TPR = 0x80, APR = 0x90, PPR = 0xA0, EOI = 0xB0, LDR = 0xD0,
              DFR = 0xE0, SVR = 0xF0, ISR = 0x100, TMR = 0x180, IRR = 0x200, ESR = 0x280,
              ICR_LOW = 0x300, ICR_HIGH = 0x310, LVT_TIMER = 0x320, LVT_LINT0 = 0x350,
              LVT_LINT1 = 0x360, LVT_ERROR = 0x370, TIMER_INITIAL = 0x380, TIMER_CURRENT = 0x390,
              TIMER_DIVIDE = 0x3E0;

// An 8259 stand-in: one pending vector.
struct FakePic : InterruptSource {
    bool pending = false;
    u8 vector = 0x30;
    bool interrupt_pending() override { return pending; }
    u8 acknowledge_interrupt() override
    {
        pending = false;
        return vector;
    }
};

struct Board {
    u64 ns = 0;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    ApicBus bus;
    std::vector<std::unique_ptr<LocalApic>> cpus;
    std::vector<u8> eois;
    std::vector<int> inits;
    std::vector<std::pair<int, u8>> sipis;

    explicit Board(unsigned count = 1)
    {
        clock.set_instruction_counter([this] { return ns; });
        for (unsigned i = 0; i < count; ++i) {
            cpus.push_back(std::make_unique<LocalApic>(bus, clock, LocalApic::Config{i, i == 0}));
            cpus.back()->set_init_handler([this, i] { inits.push_back(static_cast<int>(i)); });
            cpus.back()->set_sipi_handler(
                [this, i](u8 v) { sipis.emplace_back(static_cast<int>(i), v); });
        }
        bus.add_eoi_listener([this](u8 v) { eois.push_back(v); });
    }
    LocalApic& cpu(unsigned i = 0) { return *cpus[i]; }
    u32 rd(u64 reg, unsigned i = 0) { return static_cast<u32>(cpu(i).io_read(reg, 4)); }
    void wr(u64 reg, u32 v, unsigned i = 0) { cpu(i).io_write(reg, 4, v); }
    void enable(unsigned i = 0) { wr(SVR, 0x1FF, i); }
    void advance(u64 delta)
    {
        ns += delta;
        clock.run_due();
    }
    // Takes the interrupt the way the vCPU does; -1 when none is pending.
    int take(unsigned i = 0)
    {
        if (!cpu(i).interrupt_pending())
            return -1;
        return cpu(i).acknowledge_interrupt();
    }
    void send_ipi(u32 low, u8 dest, unsigned from = 0)
    {
        wr(ICR_HIGH, u32(dest) << 24, from);
        wr(ICR_LOW, low, from);
    }
};

ApicMessage fixed(u8 vector, bool level = false)
{
    ApicMessage m;
    m.vector = vector;
    m.level_triggered = level;
    return m;
}

} // namespace

// ---- Registers and reset ----

TEST_CASE("LAPIC reset state matches the SDM: masked LVTs, DFR all ones, SVR 0xFF")
{
    Board b(2);
    CHECK(b.rd(VER) == 0x00050014);
    CHECK(b.rd(SVR) == 0xFF);
    CHECK(b.rd(DFR) == 0xFFFFFFFF);
    CHECK(b.rd(LVT_TIMER) == 0x10000);
    CHECK(b.rd(LVT_LINT0, 1) == 0x10000);
    CHECK(b.rd(LVT_ERROR) == 0x10000);
    CHECK(b.cpu(0).apic_base_msr() == 0xFEE00900);
    CHECK(b.cpu(1).apic_base_msr() == 0xFEE00800);
}

TEST_CASE("LAPIC on the BSP starts with LINT0 in virtual wire mode so the 8259 gets through")
{
    Board b;
    CHECK(b.rd(LVT_LINT0) == 0x700);
    FakePic pic;
    b.cpu().set_pic(&pic);
    CHECK(!b.cpu().interrupt_pending());
    pic.pending = true;
    CHECK(b.take() == 0x30);
}

TEST_CASE("LAPIC ID register holds the APIC ID in bits 31:24 and is writable in xAPIC mode")
{
    Board b(3);
    CHECK(b.rd(ID, 2) == 0x02000000);
    b.wr(ID, 0x07000000, 2);
    CHECK(b.cpu(2).apic_id() == 7);
}

TEST_CASE("LAPIC DFR keeps its reserved bits set and LDR keeps only bits 31:24")
{
    Board b;
    b.wr(DFR, 0x0);
    CHECK(b.rd(DFR) == 0x0FFFFFFF);
    b.wr(LDR, 0x12345678);
    CHECK(b.rd(LDR) == 0x12000000);
}

TEST_CASE("LAPIC ESR latches errors at the next ESR write")
{
    Board b;
    b.enable();
    b.cpu().accept(fixed(5)); // illegal vector
    CHECK(b.rd(ESR) == 0);
    b.wr(ESR, 0);
    CHECK(b.rd(ESR) == 0x40);
    b.wr(ESR, 0);
    CHECK(b.rd(ESR) == 0);
}

TEST_CASE("LAPIC access to a reserved register sets the illegal register address error")
{
    Board b;
    b.rd(0x40);
    b.wr(ESR, 0);
    CHECK(b.rd(ESR) == 0x80);
}

TEST_CASE("LAPIC error LVT raises its vector when an error is logged")
{
    Board b;
    b.enable();
    b.wr(LVT_ERROR, 0xFE);
    b.send_ipi(0x4003, 0); // fixed, vector 3: send illegal vector
    CHECK(b.take() == 0xFE);
    b.wr(ESR, 0);
    CHECK(b.rd(ESR) == 0x20);
}

TEST_CASE("LAPIC software disable masks every LVT and writes keep them masked")
{
    Board b;
    b.enable();
    b.wr(LVT_TIMER, 0x40);
    CHECK(b.rd(LVT_TIMER) == 0x40);
    b.wr(SVR, 0xFF);
    CHECK(b.rd(LVT_TIMER) == 0x10040);
    b.wr(LVT_TIMER, 0x41);
    CHECK(b.rd(LVT_TIMER) == 0x10041);
}

TEST_CASE("LAPIC MMIO reads all ones and drops writes while hardware-disabled")
{
    Board b;
    REQUIRE(b.cpu().write_msr(0x1B, 0xFEE00000 | (1u << 8)));
    CHECK(b.rd(VER) == 0xFFFFFFFF);
    b.wr(TPR, 0x20);
    REQUIRE(b.cpu().write_msr(0x1B, 0xFEE00000 | (1u << 8) | (1u << 11)));
    CHECK(b.rd(TPR) == 0);
}

// ---- Priorities, acceptance and EOI ----

TEST_CASE("LAPIC delivers the highest pending vector first and moves it from IRR to ISR")
{
    Board b;
    b.enable();
    b.cpu().accept(fixed(0x41));
    b.cpu().accept(fixed(0x62));
    CHECK(b.take() == 0x62);
    CHECK(b.cpu().isr_bit(0x62));
    CHECK(!b.cpu().irr_bit(0x62));
    CHECK(b.rd(IRR + 0x20) == (1u << 1)); // 0x41 still requested
    CHECK(b.rd(ISR + 0x30) == (1u << 2));
}

TEST_CASE("LAPIC holds a vector whose class is not above the PPR until EOI")
{
    Board b;
    b.enable();
    b.cpu().accept(fixed(0x65));
    CHECK(b.take() == 0x65);
    b.cpu().accept(fixed(0x61)); // same class as the one in service
    CHECK(b.take() == -1);
    CHECK(b.rd(PPR) == 0x60);
    b.wr(EOI, 0);
    CHECK(b.take() == 0x61);
}

TEST_CASE("LAPIC TPR blocks vectors of its class and below and PPR follows TPR")
{
    Board b;
    b.enable();
    b.wr(TPR, 0x55);
    b.cpu().accept(fixed(0x5F));
    CHECK(b.take() == -1);
    CHECK(b.rd(PPR) == 0x55);
    b.cpu().set_cr8(4);
    CHECK(b.rd(TPR) == 0x40);
    CHECK(b.cpu().cr8() == 4);
    CHECK(b.take() == 0x5F);
}

TEST_CASE("LAPIC APR follows the SDM formula for lowest-priority arbitration")
{
    Board b;
    b.enable();
    b.wr(TPR, 0x35);
    CHECK(b.rd(APR) == 0x35);
    b.cpu().accept(fixed(0x80));
    CHECK(b.rd(APR) == 0x80);
}

TEST_CASE("LAPIC answers with the spurious vector when the request vanished before INTA")
{
    Board b;
    b.wr(SVR, 0x1EF);
    b.cpu().accept(fixed(0x40));
    REQUIRE(b.cpu().interrupt_pending());
    b.wr(TPR, 0xF0);
    CHECK(b.cpu().acknowledge_interrupt() == 0xEF);
    CHECK(!b.cpu().isr_bit(0xEF));
}

TEST_CASE("LAPIC software-disabled drops fixed interrupts but takes NMIs")
{
    Board b;
    b.cpu().accept(fixed(0x40));
    CHECK(!b.cpu().irr_bit(0x40));
    ApicMessage nmi;
    nmi.mode = ApicDeliveryMode::Nmi;
    b.cpu().accept(nmi);
    CHECK(b.cpu().take_nmi());
    CHECK(!b.cpu().take_nmi());
}

TEST_CASE("LAPIC sets TMR for level-triggered vectors and broadcasts their EOI")
{
    Board b;
    b.enable();
    b.cpu().accept(fixed(0x70, true));
    CHECK(b.rd(TMR + 0x30) == (1u << 16));
    CHECK(b.take() == 0x70);
    b.wr(EOI, 0);
    CHECK(b.eois == std::vector<u8>{0x70});
}

TEST_CASE("LAPIC EOI of an edge-triggered vector is not broadcast")
{
    Board b;
    b.enable();
    b.cpu().accept(fixed(0x70, true));
    b.cpu().accept(fixed(0x70, false)); // edge acceptance clears TMR
    CHECK(b.take() == 0x70);
    b.wr(EOI, 0);
    CHECK(b.eois.empty());
}

TEST_CASE("LAPIC EOI retires the highest in-service vector only")
{
    Board b;
    b.enable();
    b.cpu().accept(fixed(0x40));
    CHECK(b.take() == 0x40);
    b.cpu().accept(fixed(0x90));
    CHECK(b.take() == 0x90);
    b.wr(EOI, 0);
    CHECK(!b.cpu().isr_bit(0x90));
    CHECK(b.cpu().isr_bit(0x40));
}

// ---- IPIs ----

TEST_CASE("LAPIC fixed IPI in physical mode reaches only the addressed APIC")
{
    Board b(3);
    for (unsigned i = 0; i < 3; ++i)
        b.enable(i);
    b.send_ipi(0x4051, 2);
    CHECK(b.take(2) == 0x51);
    CHECK(b.take(1) == -1);
    CHECK(b.take(0) == -1);
}

TEST_CASE("LAPIC physical destination 0xFF broadcasts")
{
    Board b(3);
    for (unsigned i = 0; i < 3; ++i)
        b.enable(i);
    b.send_ipi(0x4051, 0xFF);
    for (unsigned i = 0; i < 3; ++i)
        CHECK(b.take(i) == 0x51);
}

TEST_CASE("LAPIC shorthands select self, all, and all but self")
{
    Board b(3);
    for (unsigned i = 0; i < 3; ++i)
        b.enable(i);
    b.send_ipi(0x44051, 0, 1); // self
    CHECK(b.take(1) == 0x51);
    CHECK(b.take(0) == -1);
    b.wr(EOI, 0, 1);
    b.send_ipi(0x84062, 0, 1); // all including self
    for (unsigned i = 0; i < 3; ++i) {
        CHECK(b.take(i) == 0x62);
        b.wr(EOI, 0, i);
    }
    b.send_ipi(0xC4053, 0, 1); // all excluding self
    CHECK(b.take(0) == 0x53);
    CHECK(b.take(2) == 0x53);
    CHECK(b.take(1) == -1);
}

TEST_CASE("LAPIC logical flat destinations match any set bit of the logical ID")
{
    Board b(3);
    for (unsigned i = 0; i < 3; ++i) {
        b.enable(i);
        b.wr(LDR, (1u << i) << 24, i);
    }
    b.send_ipi(0x4861, 0x05); // logical, CPUs 0 and 2
    CHECK(b.take(0) == 0x61);
    CHECK(b.take(1) == -1);
    CHECK(b.take(2) == 0x61);
}

TEST_CASE("LAPIC logical cluster destinations match cluster and member bits")
{
    Board b(3);
    const u8 ids[3] = {0x11, 0x12, 0x21};
    for (unsigned i = 0; i < 3; ++i) {
        b.enable(i);
        b.wr(DFR, 0x0FFFFFFF, i);
        b.wr(LDR, u32(ids[i]) << 24, i);
    }
    b.send_ipi(0x4862, 0x13); // cluster 1, members 1 and 2
    CHECK(b.take(0) == 0x62);
    CHECK(b.take(1) == 0x62);
    CHECK(b.take(2) == -1);
}

TEST_CASE("LAPIC lowest-priority delivery picks the APIC with the lowest task priority")
{
    Board b(3);
    for (unsigned i = 0; i < 3; ++i) {
        b.enable(i);
        b.wr(LDR, 0x01000000, i);
    }
    b.wr(TPR, 0x40, 0);
    b.wr(TPR, 0x10, 1);
    b.wr(TPR, 0x30, 2);
    b.send_ipi(0x4963, 0x01); // lowest priority, logical
    CHECK(b.take(1) == 0x63);
    CHECK(b.take(0) == -1);
    CHECK(b.take(2) == -1);
}

TEST_CASE("LAPIC NMI IPI makes the target's NMI pending")
{
    Board b(2);
    b.enable(0);
    b.send_ipi(0x4400, 1);
    CHECK(b.cpu(1).take_nmi());
    CHECK(!b.cpu(0).take_nmi());
}

TEST_CASE("LAPIC INIT resets the target, which then starts at the first SIPI only")
{
    Board b(2);
    b.enable(0);
    b.enable(1);
    b.wr(TPR, 0x20, 1);
    b.send_ipi(0xC500, 1); // INIT, level assert (Linux's wakeup sequence)
    CHECK(b.inits == std::vector<int>{1});
    CHECK(b.cpu(1).wait_for_sipi());
    CHECK(b.rd(TPR, 1) == 0);
    CHECK(b.rd(SVR, 1) == 0xFF);
    b.send_ipi(0x8500, 1); // INIT de-assert: no second reset
    CHECK(b.inits.size() == 1);
    b.send_ipi(0x469A, 1); // SIPI, vector 0x9A
    b.send_ipi(0x469B, 1); // the second SIPI finds the CPU running
    CHECK(b.sipis == std::vector<std::pair<int, u8>>{{1, 0x9A}});
    CHECK(!b.cpu(1).wait_for_sipi());
}

TEST_CASE("LAPIC INIT keeps the APIC ID a guest wrote")
{
    Board b(2);
    b.enable(1);
    b.wr(ID, 0x05000000, 1);
    b.enable(0);
    b.send_ipi(0xC500, 5);
    CHECK(b.inits == std::vector<int>{1});
    CHECK(b.cpu(1).apic_id() == 5);
}

TEST_CASE("LAPIC SIPI is ignored by a CPU that is not waiting for one")
{
    Board b(2);
    b.enable(0);
    b.send_ipi(0x4608, 0);
    CHECK(b.sipis.empty());
}

TEST_CASE("LAPIC ICR delivery status always reads idle")
{
    Board b(2);
    b.enable(0);
    b.enable(1);
    b.send_ipi(0x4051, 1);
    CHECK((b.rd(ICR_LOW) & (1u << 12)) == 0);
    CHECK(b.rd(ICR_LOW) == 0x4051);
    CHECK(b.rd(ICR_HIGH) == 0x01000000);
}

// ---- LINT pins and the 8259 ----

TEST_CASE("LAPIC LINT1 programmed as NMI turns a rising edge into an NMI")
{
    Board b;
    b.enable();
    b.wr(LVT_LINT1, 0x400);
    b.cpu().set_lint(1, true);
    CHECK(b.cpu().take_nmi());
    b.cpu().set_lint(1, true); // no new edge
    CHECK(!b.cpu().take_nmi());
}

TEST_CASE("LAPIC level-triggered fixed LINT0 sets remote IRR until EOI and then re-fires")
{
    Board b;
    b.enable();
    b.wr(LVT_LINT0, 0x8000 | 0x66);
    b.cpu().set_lint(0, true);
    CHECK((b.rd(LVT_LINT0) & (1u << 14)) != 0);
    CHECK(b.take() == 0x66);
    b.wr(EOI, 0);
    CHECK(b.take() == 0x66); // still asserted
    b.cpu().set_lint(0, false);
    b.wr(EOI, 0);
    CHECK(b.take() == -1);
    CHECK(!(b.rd(LVT_LINT0) & (1u << 14)));
}

TEST_CASE("LAPIC with LINT0 masked does not pass 8259 interrupts")
{
    Board b;
    FakePic pic;
    pic.pending = true;
    b.cpu().set_pic(&pic);
    b.enable();
    b.wr(LVT_LINT0, 0x10700);
    CHECK(!b.cpu().interrupt_pending());
}

TEST_CASE("LAPIC hardware-disabled passes 8259 interrupts straight through")
{
    Board b;
    FakePic pic;
    pic.pending = true;
    pic.vector = 0x21;
    b.cpu().set_pic(&pic);
    b.wr(LVT_LINT0, 0x10700);
    REQUIRE(b.cpu().write_msr(0x1B, 0xFEE00000 | (1u << 8)));
    CHECK(b.take() == 0x21);
}

TEST_CASE("LAPIC fixed interrupts take precedence over ExtINT")
{
    Board b;
    FakePic pic;
    pic.pending = true;
    b.cpu().set_pic(&pic);
    b.enable();
    b.cpu().accept(fixed(0x80));
    CHECK(b.take() == 0x80);
    CHECK(b.take() == 0x30);
}

TEST_CASE("LAPIC ExtINT message from the bus fetches the vector from the 8259")
{
    Board b;
    FakePic pic;
    pic.pending = true;
    pic.vector = 0x28;
    b.cpu().set_pic(&pic);
    b.enable();
    b.wr(LVT_LINT0, 0x10700);
    ApicMessage m;
    m.mode = ApicDeliveryMode::ExtInt;
    b.cpu().accept(m);
    CHECK(b.take() == 0x28);
}

// ---- Timer ----

TEST_CASE("LAPIC one-shot timer counts down at 1 GHz divided and fires once")
{
    Board b;
    b.enable();
    b.wr(TIMER_DIVIDE, 0x0B); // divide by 1
    b.wr(LVT_TIMER, 0xEE);
    b.wr(TIMER_INITIAL, 1000);
    b.advance(400);
    CHECK(b.rd(TIMER_CURRENT) == 600);
    CHECK(b.take() == -1);
    b.advance(600);
    CHECK(b.rd(TIMER_CURRENT) == 0);
    CHECK(b.take() == 0xEE);
    b.wr(EOI, 0);
    b.advance(5000);
    CHECK(b.take() == -1);
    CHECK(!b.cpu().timer_armed());
}

// A one-shot count that reached zero stays zero when the mode becomes
// periodic, even before the machine's timer callback has run (timers fire
// between vCPU slices); the expiry interrupt is still raised, once.
TEST_CASE("LAPIC one-shot count that reached zero stays zero when switched to periodic")
{
    Board b;
    b.enable();
    b.wr(TIMER_DIVIDE, 0x0B);
    b.wr(LVT_TIMER, 0xEE);
    b.wr(TIMER_INITIAL, 1000);
    b.ns += 1500; // past the deadline; no run_due() yet
    CHECK(b.rd(TIMER_CURRENT) == 0);
    b.wr(LVT_TIMER, 0x20000 | 0xEE); // periodic, same initial count
    CHECK(b.rd(TIMER_CURRENT) == 0);
    CHECK(b.take() == 0xEE);
    b.wr(EOI, 0);
    b.advance(5000);
    CHECK(b.rd(TIMER_CURRENT) == 0);
    CHECK(b.take() == -1);
}

TEST_CASE("LAPIC timer divide configuration selects divide by 2 through 128")
{
    Board b;
    b.enable();
    const std::pair<u32, u64> table[] = {{0x0, 2},  {0x1, 4},  {0x2, 8},   {0x3, 16},
                                         {0x8, 32}, {0x9, 64}, {0xA, 128}, {0xB, 1}};
    for (auto [dcr, divisor] : table) {
        b.wr(TIMER_DIVIDE, dcr);
        b.wr(TIMER_INITIAL, 100);
        CHECK(b.cpu().timer_deadline() == b.ns + 100 * divisor);
        b.wr(TIMER_INITIAL, 0);
    }
}

TEST_CASE("LAPIC periodic timer reloads from the initial count at each expiry")
{
    Board b;
    b.enable();
    b.wr(TIMER_DIVIDE, 0x0B);
    b.wr(LVT_TIMER, 0x20000 | 0xEF);
    b.wr(TIMER_INITIAL, 100);
    for (int i = 0; i < 3; ++i) {
        b.advance(100);
        CHECK(b.take() == 0xEF);
        b.wr(EOI, 0);
        CHECK(b.rd(TIMER_CURRENT) == 100);
    }
    b.advance(30);
    CHECK(b.rd(TIMER_CURRENT) == 70);
}

TEST_CASE("LAPIC masked timer still counts but raises nothing")
{
    Board b;
    b.enable();
    b.wr(TIMER_DIVIDE, 0x0B);
    b.wr(LVT_TIMER, 0x10000 | 0xEE);
    b.wr(TIMER_INITIAL, 50);
    b.advance(50);
    CHECK(b.take() == -1);
    CHECK(b.rd(TIMER_CURRENT) == 0);
}

TEST_CASE("LAPIC writing 0 to the initial count stops the timer")
{
    Board b;
    b.enable();
    b.wr(LVT_TIMER, 0xEE);
    b.wr(TIMER_INITIAL, 50);
    b.wr(TIMER_INITIAL, 0);
    b.advance(1000);
    CHECK(b.take() == -1);
    CHECK(b.rd(TIMER_CURRENT) == 0);
}

TEST_CASE("LAPIC timer mode change from one-shot to periodic keeps counting and then reloads")
{
    Board b;
    b.enable();
    b.wr(TIMER_DIVIDE, 0x0B);
    b.wr(LVT_TIMER, 0x10000 | 0xEE);
    b.wr(TIMER_INITIAL, 1000);
    b.advance(600);
    b.wr(LVT_TIMER, 0x30000 | 0xEE); // periodic, still masked
    CHECK(b.rd(TIMER_INITIAL) == 1000);
    CHECK(b.rd(TIMER_CURRENT) == 400);
    b.advance(500);
    CHECK(b.rd(TIMER_CURRENT) == 900);
}

TEST_CASE("LAPIC expired one-shot timer stays at zero when switched to periodic")
{
    Board b;
    b.enable();
    b.wr(TIMER_DIVIDE, 0x0B);
    b.wr(LVT_TIMER, 0x10000 | 0xEE);
    b.wr(TIMER_INITIAL, 100);
    b.advance(200);
    b.wr(LVT_TIMER, 0x30000 | 0xEE);
    b.advance(50);
    CHECK(b.rd(TIMER_CURRENT) == 0);
}

TEST_CASE("LAPIC timer keeps its current count across a divide change")
{
    Board b;
    b.enable();
    b.wr(TIMER_DIVIDE, 0x0B);
    b.wr(LVT_TIMER, 0xEE);
    b.wr(TIMER_INITIAL, 1000);
    b.advance(250);
    b.wr(TIMER_DIVIDE, 0x00); // divide by 2
    CHECK(b.rd(TIMER_CURRENT) == 750);
    b.advance(1000);
    CHECK(b.rd(TIMER_CURRENT) == 250);
    b.advance(500);
    CHECK(b.take() == 0xEE);
}

TEST_CASE("LAPIC TSC-deadline timer fires when the TSC reaches the deadline and clears the MSR")
{
    Board b;
    b.enable();
    b.wr(LVT_TIMER, 0x40000 | 0xED);
    CHECK(b.cpu().write_msr(0x6E0, 5000));
    CHECK(b.cpu().read_msr(0x6E0) == 5000u);
    b.advance(4999);
    CHECK(b.take() == -1);
    b.advance(1);
    CHECK(b.take() == 0xED);
    CHECK(b.cpu().read_msr(0x6E0) == 0u);
}

TEST_CASE("LAPIC TSC-deadline in the past fires at once")
{
    Board b;
    b.enable();
    b.ns = 10000;
    b.wr(LVT_TIMER, 0x40000 | 0xED);
    CHECK(b.cpu().write_msr(0x6E0, 10000));
    CHECK(b.take() == 0xED);
    CHECK(b.cpu().read_msr(0x6E0) == 0u);
}

TEST_CASE("LAPIC TSC-deadline uses the vCPU's TSC and its frequency")
{
    Board b;
    b.enable();
    u64 tsc_offset = 1'000'000;
    // A 2 GHz TSC: two ticks per virtual nanosecond.
    b.cpu().set_tsc([&] { return b.ns * 2 + tsc_offset; }, 2'000'000'000);
    b.wr(LVT_TIMER, 0x40000 | 0xED);
    CHECK(b.cpu().write_msr(0x6E0, tsc_offset + 3000));
    CHECK(b.cpu().timer_deadline() == 1500);
    b.advance(1500);
    CHECK(b.take() == 0xED);
}

TEST_CASE("LAPIC TSC-deadline MSR ignores writes and reads zero outside TSC-deadline mode")
{
    Board b;
    b.enable();
    b.wr(LVT_TIMER, 0xED);
    CHECK(b.cpu().write_msr(0x6E0, 5000));
    CHECK(b.cpu().read_msr(0x6E0) == 0u);
    CHECK(!b.cpu().timer_armed());
}

TEST_CASE("LAPIC leaving TSC-deadline mode disarms the deadline")
{
    Board b;
    b.enable();
    b.wr(LVT_TIMER, 0x40000 | 0xED);
    CHECK(b.cpu().write_msr(0x6E0, 5000));
    b.wr(LVT_TIMER, 0xED);
    b.advance(6000);
    CHECK(b.take() == -1);
}

TEST_CASE("LAPIC initial count is ignored in TSC-deadline mode")
{
    Board b;
    b.enable();
    b.wr(LVT_TIMER, 0x40000 | 0xED);
    b.wr(TIMER_INITIAL, 100);
    CHECK(b.rd(TIMER_INITIAL) == 0);
    CHECK(!b.cpu().timer_armed());
}

// ---- IA32_APIC_BASE and x2APIC ----

TEST_CASE("LAPIC APIC base MSR rejects reserved bits and keeps the BSP flag")
{
    Board b(2);
    CHECK(!b.cpu().write_msr(0x1B, 0xFEE00900 | 1));
    CHECK(!b.cpu().write_msr(0x1B, 0xFEE00900 | (1ull << 46)));
    CHECK(b.cpu(1).write_msr(0x1B, 0xFEE00900));
    CHECK(b.cpu(1).apic_base_msr() == 0xFEE00800);
}

TEST_CASE("LAPIC APIC base MSR enforces the x2APIC mode transitions")
{
    Board b;
    const u64 base = 0xFEE00000 | (1u << 8), en = 1u << 11, extd = 1u << 10;
    CHECK(!b.cpu().write_msr(0x1B, base | extd));      // invalid state
    CHECK(b.cpu().write_msr(0x1B, base | en | extd));  // xAPIC -> x2APIC
    CHECK(!b.cpu().write_msr(0x1B, base | en));        // x2APIC -> xAPIC
    CHECK(b.cpu().write_msr(0x1B, base));              // -> disabled
    CHECK(!b.cpu().write_msr(0x1B, base | en | extd)); // disabled -> x2APIC
    CHECK(b.cpu().write_msr(0x1B, base | en));         // disabled -> xAPIC
}

TEST_CASE("LAPIC APIC base MSR: EXTD is reserved when the CPU model offers no x2APIC")
{
    Board b;
    b.cpu().set_x2apic_supported(false);
    const u64 base = 0xFEE00000 | (1u << 8), en = 1u << 11, extd = 1u << 10;
    CHECK(!b.cpu().write_msr(0x1B, base | en | extd)); // #GP, still xAPIC
    CHECK_FALSE(b.cpu().x2apic_mode());
    CHECK(b.cpu().write_msr(0x1B, base));              // disabling still works
    CHECK(b.cpu().write_msr(0x1B, base | en));
}

namespace {
// A device that answers every read with one value (for overlap tests).
struct ConstantDevice : IoDevice {
    u64 io_read(u64, unsigned) override { return 0x5A5A5A5A; }
    void io_write(u64, unsigned, u64) override {}
};
} // namespace

TEST_CASE("LAPIC relocation reports the new base and the MMIO window follows")
{
    Board b;
    PhysicalMemory memory{16 << 20};
    b.bus.update_windows(memory);
    u64 reported = 0;
    b.cpu().set_base_change_handler([&](u64 base) {
        reported = base;
        b.bus.update_windows(memory);
    });
    const u64 generation = memory.layout_generation();
    REQUIRE(b.cpu().write_msr(0x1B, 0xFED40000 | (1u << 8) | (1u << 11)));
    CHECK(reported == 0xFED40000);
    CHECK(memory.layout_generation() != generation);
    CHECK(memory.read(0xFED40000 + VER, 4, 0) == 0x00050014);
    CHECK(memory.read(0xFEE00000 + VER, 4, 0) == 0xFFFFFFFF); // nobody's APIC is there now
}

TEST_CASE("LAPIC relocated over RAM hides it, and moving away uncovers it again")
{
    Board b;
    PhysicalMemory memory{16 << 20};
    b.bus.update_windows(memory);
    b.cpu().set_base_change_handler([&](u64) { b.bus.update_windows(memory); });
    memory.write(0x800000 + VER, 4, 0x12345678);
    REQUIRE(b.cpu().write_msr(0x1B, 0x800000 | (1u << 8) | (1u << 11)));
    CHECK(memory.read(0x800000 + VER, 4, 0) == 0x00050014);
    CHECK(memory.ram_page(0x800000) == nullptr);
    // Many moves leave no window behind at the bases that were given up.
    for (u64 base = 0x900000; base < 0x900000 + 64 * 0x1000; base += 0x1000)
        REQUIRE(b.cpu().write_msr(0x1B, base | (1u << 8) | (1u << 11)));
    REQUIRE(b.cpu().write_msr(0x1B, 0xFEE00000 | (1u << 8) | (1u << 11)));
    CHECK(memory.read(0x800000 + VER, 4) == 0x12345678);
    CHECK(memory.ram_page(0x900000) != nullptr);
    CHECK(memory.read(0xFEE00000 + VER, 4, 0) == 0x00050014);
}

TEST_CASE("LAPIC relocated onto another device's range leaves that device answering")
{
    Board b;
    PhysicalMemory memory{16 << 20};
    ConstantDevice hpet;
    memory.map_mmio(0xFED00000, 0x1000, &hpet);
    b.bus.update_windows(memory);
    b.cpu().set_base_change_handler([&](u64) { b.bus.update_windows(memory); });
    REQUIRE(b.cpu().write_msr(0x1B, 0xFED00000 | (1u << 8) | (1u << 11)));
    CHECK(memory.read(0xFED00000 + VER, 4) == 0x5A5A5A5A);
    REQUIRE(b.cpu().write_msr(0x1B, 0xFEE00000 | (1u << 8) | (1u << 11)));
    CHECK(memory.read(0xFEE00000 + VER, 4, 0) == 0x00050014);
    CHECK(memory.read(0xFED00000, 4) == 0x5A5A5A5A);
}

TEST_CASE("LAPIC MMIO window serves the APIC of the vCPU that makes the access")
{
    Board b(2);
    PhysicalMemory memory{16 << 20};
    b.bus.update_windows(memory);
    CHECK(memory.read(0xFEE00000 + ID, 4, 1) == 0x01000000);
    CHECK(memory.read(0xFEE00000 + ID, 4, 0) == 0x00000000);
    // A device's DMA (no vCPU) finds no APIC behind the window.
    CHECK(memory.read(0xFEE00000 + ID, 4) == 0xFFFFFFFF);
}

TEST_CASE("LAPIC hardware disable resets the APIC and restores the initial ID")
{
    Board b(2);
    b.enable(1);
    b.wr(ID, 0x09000000, 1);
    b.wr(TPR, 0x30, 1);
    REQUIRE(b.cpu(1).write_msr(0x1B, 0xFEE00000));
    REQUIRE(b.cpu(1).write_msr(0x1B, 0xFEE00800));
    CHECK(b.rd(ID, 1) == 0x01000000);
    CHECK(b.rd(TPR, 1) == 0);
    CHECK(b.rd(SVR, 1) == 0xFF);
}

TEST_CASE("LAPIC x2APIC MSRs fault until x2APIC mode is enabled")
{
    Board b;
    CHECK(!b.cpu().read_msr(0x802));
    CHECK(!b.cpu().write_msr(0x808, 0));
    REQUIRE(b.cpu().write_msr(0x1B, 0xFEE00D00));
    CHECK(b.cpu().read_msr(0x803) == 0x00050014u);
    CHECK(b.rd(VER) == 0xFFFFFFFF); // MMIO is off in x2APIC mode
}

TEST_CASE("LAPIC x2APIC ID is the 32-bit initial ID and LDR is derived from it")
{
    Board b(20);
    REQUIRE(b.cpu(19).write_msr(0x1B, 0xFEE00C00));
    CHECK(b.cpu(19).read_msr(0x802) == 19u);
    CHECK(b.cpu(19).read_msr(0x80D) == ((1u << 16) | (1u << 3)));
    CHECK(!b.cpu(19).write_msr(0x802, 5)); // ID is read-only
    CHECK(!b.cpu(19).write_msr(0x80D, 0)); // LDR is read-only
}

TEST_CASE("LAPIC x2APIC rejects write-only reads, read-only writes and reserved bits")
{
    Board b;
    REQUIRE(b.cpu().write_msr(0x1B, 0xFEE00D00));
    CHECK(!b.cpu().read_msr(0x80B));         // EOI is write-only
    CHECK(!b.cpu().read_msr(0x83F));         // SELF IPI is write-only
    CHECK(!b.cpu().read_msr(0x809));         // no APR
    CHECK(!b.cpu().read_msr(0x80E));         // no DFR
    CHECK(!b.cpu().read_msr(0x831));         // no ICR high
    CHECK(!b.cpu().write_msr(0x80B, 1));     // EOI must be written with 0
    CHECK(!b.cpu().write_msr(0x828, 1));     // ESR must be written with 0
    CHECK(!b.cpu().write_msr(0x808, 0x100)); // TPR bits 31:8 reserved
    CHECK(!b.cpu().write_msr(0x83E, 0x4));   // DCR bit 2 reserved
    CHECK(!b.cpu().write_msr(0x80F, 1ull << 32));
    CHECK(!b.cpu().write_msr(0x839, 0)); // current count is read-only
    CHECK(b.cpu().write_msr(0x808, 0x20));
    CHECK(b.cpu().read_msr(0x808) == 0x20u);
}

TEST_CASE("LAPIC x2APIC self IPI delivers its vector to this APIC")
{
    Board b(2);
    REQUIRE(b.cpu().write_msr(0x1B, 0xFEE00D00));
    REQUIRE(b.cpu().write_msr(0x80F, 0x1FF));
    CHECK(b.cpu().write_msr(0x83F, 0x77));
    CHECK(b.take() == 0x77);
}

TEST_CASE("LAPIC x2APIC ICR is one 64-bit MSR with a 32-bit destination")
{
    Board b(3);
    for (unsigned i = 0; i < 3; ++i) {
        REQUIRE(b.cpu(i).write_msr(0x1B, 0xFEE00C00 | (i == 0 ? 0x100 : 0)));
        REQUIRE(b.cpu(i).write_msr(0x80F, 0x1FF));
    }
    CHECK(b.cpu().write_msr(0x830, (2ull << 32) | 0x4045));
    CHECK(b.take(2) == 0x45);
    CHECK(b.take(1) == -1);
    CHECK(b.cpu().read_msr(0x830) == ((2ull << 32) | 0x4045));
    CHECK(b.cpu(2).write_msr(0x80B, 0));
    CHECK(b.cpu().write_msr(0x830, (0xFFFFFFFFull << 32) | 0x4056)); // broadcast
    for (unsigned i = 0; i < 3; ++i)
        CHECK(b.take(i) == 0x56);
    CHECK(!b.cpu().write_msr(0x830, 1u << 13)); // reserved bit
}

TEST_CASE("LAPIC x2APIC logical destinations use cluster and 16-bit member masks")
{
    Board b(18);
    for (unsigned i = 0; i < 18; ++i) {
        REQUIRE(b.cpu(i).write_msr(0x1B, 0xFEE00C00 | (i == 0 ? 0x100 : 0)));
        REQUIRE(b.cpu(i).write_msr(0x80F, 0x1FF));
    }
    // Cluster 1 (IDs 16-31), member bit 1 = APIC ID 17.
    CHECK(b.cpu().write_msr(0x830, (((1ull << 16) | 2) << 32) | 0x4850));
    CHECK(b.take(17) == 0x50);
    CHECK(b.take(1) == -1);
    CHECK(b.take(16) == -1);
}

// ---- Bus messages ----

TEST_CASE("APIC bus MSI write decodes destination, vector and trigger")
{
    Board b(2);
    b.enable(0);
    b.enable(1);
    b.bus.send_msi(0xFEE01000, 0x8000 | 0x4000 | 0x59); // dest 1, level
    CHECK(b.take(1) == 0x59);
    CHECK(b.cpu(1).tmr_bit(0x59));
    b.bus.send_msi(0x12345000, 0x59); // not an MSI address
    CHECK(b.take(0) == -1);
}

TEST_CASE("APIC bus skips hardware-disabled APICs")
{
    Board b(2);
    b.enable(1);
    REQUIRE(b.cpu(1).write_msr(0x1B, 0xFEE00000));
    b.bus.send(fixed(0x40));
    CHECK(!b.cpu(1).irr_bit(0x40));
}

TEST_CASE("LAPIC wakeup handler hears an accepted interrupt")
{
    Board b;
    b.enable();
    int wakeups = 0;
    b.cpu().set_wakeup_handler([&] { ++wakeups; });
    b.cpu().accept(fixed(0x40));
    CHECK(wakeups == 1);
}

// ---- Hyper-V APIC access shortcuts ----

TEST_CASE("LAPIC auto-EOI vector is not left in service when acknowledged")
{
    Board b;
    b.enable();
    b.cpu().set_auto_eoi(0x93, true);
    b.cpu().accept(fixed(0x93));
    CHECK(b.take() == 0x93);
    CHECK(!b.cpu().isr_bit(0x93));
    b.cpu().accept(fixed(0x92)); // a lower vector is not blocked by it
    CHECK(b.take() == 0x92);
    CHECK(b.cpu().isr_bit(0x92));
}

TEST_CASE("LAPIC EOI handler hears explicit EOIs and auto-EOIs, edge or level")
{
    Board b;
    b.enable();
    std::vector<u8> heard;
    b.cpu().set_eoi_handler([&](u8 v) { heard.push_back(v); });
    b.cpu().accept(fixed(0x50));
    CHECK(b.take() == 0x50);
    CHECK(heard.empty()); // acknowledging a normal vector is not an EOI
    b.wr(EOI, 0);
    b.cpu().set_auto_eoi(0x93, true);
    b.cpu().accept(fixed(0x93));
    CHECK(b.take() == 0x93);
    b.wr(EOI, 0); // nothing in service: no EOI to report
    CHECK(heard == std::vector<u8>{0x50, 0x93});
    CHECK(b.eois.empty()); // edge-triggered: nothing broadcast to the IOAPICs
}

TEST_CASE("LAPIC 64-bit ICR write in xAPIC mode takes the destination from bits 63:56")
{
    Board b(2);
    b.enable(0);
    b.enable(1);
    b.cpu().write_icr((1ull << 56) | 0x4047);
    CHECK(b.take(1) == 0x47);
    CHECK(b.cpu().icr() == ((1ull << 56) | 0x4047));
    CHECK(b.rd(ICR_HIGH) == 0x01000000);
}

TEST_CASE("LAPIC end_of_interrupt and set_task_priority act like the registers")
{
    Board b;
    b.enable();
    b.cpu().accept(fixed(0x50));
    CHECK(b.take() == 0x50);
    b.cpu().end_of_interrupt();
    CHECK(!b.cpu().isr_bit(0x50));
    b.cpu().set_task_priority(0x70);
    CHECK(b.rd(TPR) == 0x70);
}

// ---- State ----

TEST_CASE("LAPIC state saves, loads and saves again to the same bytes")
{
    Board b(2);
    b.enable();
    b.wr(TPR, 0x10);
    b.wr(LDR, 0x04000000);
    b.wr(LVT_LINT1, 0x400);
    b.cpu().accept(fixed(0x55, true));
    b.cpu().accept(fixed(0x91));
    CHECK(b.take() == 0x91);
    b.wr(TIMER_DIVIDE, 0x0B);
    b.wr(LVT_TIMER, 0x20000 | 0xEF);
    b.wr(TIMER_INITIAL, 777);
    b.advance(100);

    StateVisitor save = StateVisitor::saver();
    b.cpu().visit_state(save);

    Board fresh(2);
    fresh.ns = b.ns;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.cpu().visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.cpu().visit_state(again);
    CHECK(again.bytes() == save.bytes());

    CHECK(fresh.rd(TIMER_CURRENT) == b.rd(TIMER_CURRENT));
    CHECK(fresh.cpu().timer_deadline() == b.cpu().timer_deadline());
    CHECK(fresh.cpu().isr_bit(0x91));
    b.wr(EOI, 0);
    fresh.wr(EOI, 0);
    CHECK(fresh.take() == b.take());
}
