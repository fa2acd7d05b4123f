#include "tests/paravirt/hv_harness.h"

#include <initializer_list>

namespace {

constexpr GuestPhys INPUT = 0x500000;
constexpr u64 FAST = HV_HYPERCALL_FAST;

u64 code(HvCallCode c)
{
    return static_cast<u16>(c);
}
u64 reps(unsigned count, unsigned start = 0)
{
    return (u64(count) << 32) | (u64(start) << 48);
}
u64 varhead(unsigned qwords)
{
    return u64(qwords) << 17;
}

struct Flush {
    unsigned vp;
    bool all_spaces;
    bool non_global;
    u64 address_space;
    std::vector<GvaRange> ranges;
};

struct CallHarness : HvHarness {
    CpuState regs;
    std::vector<Flush> flushes;
    std::vector<std::pair<unsigned, u32>> spins;

    explicit CallHarness(const HvConfig& c = config_with_vps(4)) : HvHarness(c)
    {
        enable_hypercalls();
        regs.msr.efer |= 1ull << 10; // LMA
        regs.seg[CS].attr |= Segment::L;
        hv.set_tlb_flush_handler([this](unsigned vp, const TlbFlushRequest& r) {
            flushes.push_back({vp, r.all_address_spaces, r.non_global_only, r.address_space,
                               std::vector<GvaRange>(r.ranges.begin(), r.ranges.end())});
        });
        hv.set_spin_wait_handler([this](unsigned vp, u32 n) { spins.emplace_back(vp, n); });
    }

    HypercallResult::Kind call(u64 control, u64 input = INPUT, u64 output = 0, unsigned vp = 0)
    {
        regs.gpr[RCX] = control;
        regs.gpr[RDX] = input;
        regs.gpr[R8] = output;
        regs.gpr[RAX] = 0xDEAD;
        return hv.hypercall(vp, regs);
    }
    // The status the guest sees: continuations are re-executed, as the
    // hypercall page's VMCALL is when RIP stays on it.
    HvStatus status(u64 control, u64 input = INPUT, u64 output = 0, unsigned vp = 0)
    {
        HypercallResult::Kind kind = call(control, input, output, vp);
        for (unsigned rounds = 0; kind == HypercallResult::Kind::Continue; ++rounds) {
            REQUIRE(rounds < 4096);
            kind = hv.hypercall(vp, regs);
        }
        REQUIRE(kind == HypercallResult::Kind::Completed);
        return static_cast<HvStatus>(regs.gpr[RAX] & 0xFFFF);
    }
    u64 reps_completed() const { return (regs.gpr[RAX] >> 32) & 0xFFF; }

    void input(std::initializer_list<u64> qwords, GuestPhys at = INPUT)
    {
        for (u64 q : qwords) {
            poke<u64>(at, q);
            at += 8;
        }
    }
    void xmm(std::initializer_list<u64> qwords)
    {
        unsigned i = 0;
        for (u64 q : qwords) {
            regs.fpu.xmm[i / 2][i % 2] = q;
            ++i;
        }
    }
};

} // namespace

// ---- Hypercall interface and input value ----

TEST_CASE("Hypercalls are undefined until the hypercall page is enabled")
{
    HvHarness h;
    CpuState regs;
    regs.gpr[RCX] = code(HvCallCode::NotifyLongSpinWait) | FAST;
    CHECK(h.hv.hypercall(0, regs) == HypercallResult::Kind::InvalidOpcode);
    h.enable_hypercalls();
    CHECK(h.hv.hypercall(0, regs) == HypercallResult::Kind::Completed);
    REQUIRE(h.wrmsr(HV_X64_MSR_HYPERCALL, HvHarness::HYPERCALL_PAGE));
    CHECK(h.hv.hypercall(0, regs) == HypercallResult::Kind::InvalidOpcode);
}

TEST_CASE("Disabled enlightenments make every hypercall undefined")
{
    HvConfig c;
    c.enabled = false;
    HvHarness h(c);
    CpuState regs;
    CHECK(h.hv.hypercall(0, regs) == HypercallResult::Kind::InvalidOpcode);
}

TEST_CASE("Unknown call codes answer HV_STATUS_INVALID_HYPERCALL_CODE")
{
    CallHarness h;
    for (u64 c : {0x0000ull, 0x0001ull, 0x0004ull, 0x0046ull, 0x0050ull, 0x8001ull, 0xFFFFull}) {
        CAPTURE(c);
        CHECK(h.status(c) == HvStatus::InvalidHypercallCode);
        CHECK(h.status(c | FAST) == HvStatus::InvalidHypercallCode);
    }
}

TEST_CASE("Reserved bits of the hypercall input value answer INVALID_HYPERCALL_INPUT")
{
    CallHarness h;
    const u64 spin = code(HvCallCode::NotifyLongSpinWait) | FAST;
    for (unsigned bit : {27u, 28u, 30u, 31u, 44u, 47u, 60u, 63u}) {
        CAPTURE(bit);
        CHECK(h.status(spin | (1ull << bit)) == HvStatus::InvalidHypercallInput);
    }
    CHECK(h.status(spin) == HvStatus::Success);
}

TEST_CASE("Rep counts and start indices are checked against the call's class")
{
    CallHarness h;
    const u64 spin = code(HvCallCode::NotifyLongSpinWait) | FAST;
    CHECK(h.status(spin | reps(1)) == HvStatus::InvalidHypercallInput);
    CHECK(h.status(spin | reps(0, 1)) == HvStatus::InvalidHypercallInput);
    h.input({0, 0, 1, 0x1000});
    const u64 list = code(HvCallCode::FlushVirtualAddressList);
    CHECK(h.status(list) == HvStatus::InvalidHypercallInput); // a rep call with no reps
    CHECK(h.status(list | reps(1, 1)) == HvStatus::InvalidHypercallInput);
    CHECK(h.status(list | reps(1, 5)) == HvStatus::InvalidHypercallInput);
    CHECK(h.status(list | reps(1)) == HvStatus::Success);
}

TEST_CASE("A variable header on a call without one answers INVALID_HYPERCALL_INPUT")
{
    CallHarness h;
    h.input({0, 0, 1});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressSpace) | varhead(1)) ==
          HvStatus::InvalidHypercallInput);
    CHECK(h.status(code(HvCallCode::SignalEvent) | FAST | varhead(2), 1) ==
          HvStatus::InvalidHypercallInput);
}

TEST_CASE("Input GPAs must be 8-byte aligned, inside one page and inside RAM")
{
    CallHarness h;
    const u64 flush = code(HvCallCode::FlushVirtualAddressSpace);
    h.input({0, 0, 1});
    CHECK(h.status(flush, INPUT + 4) == HvStatus::InvalidAlignment);
    CHECK(h.status(flush, INPUT + 4096 - 16) == HvStatus::InvalidAlignment); // 24 bytes cross
    CHECK(h.status(flush, INPUT + 4096 - 24) == HvStatus::Success);
    CHECK(h.status(flush, HvHarness::RAM + 0x1000) == HvStatus::InvalidAlignment);
    CHECK(h.status(flush, 0xA0000) == HvStatus::InvalidAlignment); // legacy hole
    CHECK(h.status(flush, 0xFFFFFFFFFFFFF000ull) == HvStatus::InvalidAlignment);
    // A rep list that runs off its page.
    const u64 list = code(HvCallCode::FlushVirtualAddressList);
    CHECK(h.status(list | reps(510), INPUT) == HvStatus::InvalidAlignment);
    CHECK(h.status(list | reps(509), INPUT) == HvStatus::Success);
}

TEST_CASE("The output GPA of a call without output is ignored")
{
    CallHarness h;
    CHECK(h.status(code(HvCallCode::NotifyLongSpinWait) | FAST, 5, 0xFFFFFFFFFFFFFFFFull) ==
          HvStatus::Success);
}

TEST_CASE("Calls the partition is not offered answer HV_STATUS_ACCESS_DENIED")
{
    HvConfig c = config_with_vps(2);
    c.tlb_flush_hypercalls = false;
    c.cluster_ipi_hypercalls = false;
    CallHarness h(c);
    h.input({0, 0, 1});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressSpace)) == HvStatus::AccessDenied);
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressListEx) | reps(1)) ==
          HvStatus::AccessDenied);
    CHECK(h.status(code(HvCallCode::SendSyntheticClusterIpi) | FAST, 0x40, 1) ==
          HvStatus::AccessDenied);
    CHECK(h.status(code(HvCallCode::SendSyntheticClusterIpiEx)) == HvStatus::AccessDenied);
    CHECK(h.flushes.empty());
    CHECK(h.apic.raised.empty());
}

TEST_CASE("XMM fast input without the XMM feature is #UD")
{
    HvConfig c = config_with_vps(2);
    c.xmm_fast_hypercalls = false;
    CallHarness h(c);
    CHECK(h.call(code(HvCallCode::FlushVirtualAddressSpace) | FAST, 0, 0) ==
          HypercallResult::Kind::InvalidOpcode);
    // Register-only fast calls still work.
    CHECK(h.status(code(HvCallCode::SendSyntheticClusterIpi) | FAST, 0x40, 1) == HvStatus::Success);
}

TEST_CASE("Fast input larger than the XMM block or for a memory-only call is invalid input")
{
    CallHarness h;
    // 24 + 12 * 8 = 120 bytes > 112.
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressList) | FAST | reps(12), 0, 0) ==
          HvStatus::InvalidHypercallInput);
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressList) | FAST | reps(11), 0, 0) ==
          HvStatus::Success);
    CHECK(h.status(code(HvCallCode::PostMessage) | FAST, 0, 0) == HvStatus::InvalidHypercallInput);
}

// ---- TLB flushes ----

TEST_CASE("FlushVirtualAddressSpace flushes the VPs in the processor mask")
{
    CallHarness h;
    h.input({0x1234000, HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY, 0b1010});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressSpace)) == HvStatus::Success);
    REQUIRE(h.flushes.size() == 2);
    CHECK(h.flushes[0].vp == 1);
    CHECK(h.flushes[1].vp == 3);
    CHECK(h.flushes[0].address_space == 0x1234000);
    CHECK(h.flushes[0].non_global);
    CHECK_FALSE(h.flushes[0].all_spaces);
    CHECK(h.flushes[0].ranges.empty());
}

TEST_CASE("FlushVirtualAddressSpace with ALL_PROCESSORS or an empty mask flushes every VP")
{
    CallHarness h;
    h.input({0, HV_FLUSH_ALL_PROCESSORS | HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES, 0b1});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressSpace)) == HvStatus::Success);
    CHECK(h.flushes.size() == 4);
    CHECK(h.flushes[0].all_spaces);
    h.flushes.clear();
    h.input({0, 0, 0});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressSpace)) == HvStatus::Success);
    CHECK(h.flushes.size() == 4);
}

TEST_CASE("Reserved flush flags answer INVALID_PARAMETER and flush nothing")
{
    CallHarness h;
    h.input({0, 1ull << 3, 1});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressSpace)) == HvStatus::InvalidParameter);
    h.input({0, HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY, 1, 0x1000});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressList) | reps(1)) ==
          HvStatus::InvalidParameter);
    CHECK(h.reps_completed() == 0);
    CHECK(h.flushes.empty());
}

TEST_CASE("FlushVirtualAddressSpace takes its processor mask from XMM0 in the fast form")
{
    CallHarness h;
    h.xmm({0b100});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressSpace) | FAST, 0xABC000, 0) ==
          HvStatus::Success);
    REQUIRE(h.flushes.size() == 1);
    CHECK(h.flushes[0].vp == 2);
    CHECK(h.flushes[0].address_space == 0xABC000);
}

TEST_CASE("FlushVirtualAddressList flushes each GVA range and completes every rep")
{
    CallHarness h;
    h.input({0, 0, 0b1, 0x7000, 0xFFFF800000010003ull});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressList) | reps(2)) == HvStatus::Success);
    CHECK(h.reps_completed() == 2);
    REQUIRE(h.flushes.size() == 1);
    REQUIRE(h.flushes[0].ranges.size() == 2);
    CHECK(h.flushes[0].ranges[0].base == 0x7000);
    CHECK(h.flushes[0].ranges[0].pages == 1);
    CHECK(h.flushes[0].ranges[1].base == 0xFFFF800000010000ull);
    CHECK(h.flushes[0].ranges[1].pages == 4);
}

TEST_CASE("A rep hypercall continues from its start index until all reps are done")
{
    HvConfig c = config_with_vps(1);
    c.rep_batch = 2;
    CallHarness h(c);
    h.input({0, 0, 1, 0x1000, 0x2000, 0x3000, 0x4000, 0x5000});
    const u64 control = code(HvCallCode::FlushVirtualAddressList) | reps(5);
    REQUIRE(h.call(control) == HypercallResult::Kind::Continue);
    CHECK(h.regs.gpr[RCX] == (control | (2ull << 48)));
    CHECK(h.regs.gpr[RAX] == 0xDEAD); // the result is not written yet
    // The guest re-executes the instruction with the updated input value.
    REQUIRE(h.hv.hypercall(0, h.regs) == HypercallResult::Kind::Continue);
    CHECK(((h.regs.gpr[RCX] >> 48) & 0xFFF) == 4);
    REQUIRE(h.hv.hypercall(0, h.regs) == HypercallResult::Kind::Completed);
    CHECK((h.regs.gpr[RAX] & 0xFFFF) == 0);
    CHECK(h.reps_completed() == 5);
    std::vector<u64> flushed;
    for (const Flush& f : h.flushes)
        for (const GvaRange& r : f.ranges)
            flushed.push_back(r.base);
    CHECK(flushed == std::vector<u64>{0x1000, 0x2000, 0x3000, 0x4000, 0x5000});
}

TEST_CASE("A rep hypercall started at a non-zero index skips the completed elements")
{
    CallHarness h;
    h.input({0, 0, 1, 0x1000, 0x2000, 0x3000});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressList) | reps(3, 2)) == HvStatus::Success);
    CHECK(h.reps_completed() == 3);
    REQUIRE(h.flushes.size() == 1);
    REQUIRE(h.flushes[0].ranges.size() == 1);
    CHECK(h.flushes[0].ranges[0].base == 0x3000);
}

TEST_CASE("FlushVirtualAddressSpaceEx flushes a sparse VP set")
{
    HvConfig c = config_with_vps(130);
    CallHarness h(c);
    // Banks 0 and 2: VP 0 and 5, and VP 130.
    h.input({0, 0, HV_GENERIC_SET_SPARSE_4K, 0b101, 0x21, 0x4});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressSpaceEx) | varhead(2)) == HvStatus::Success);
    std::vector<unsigned> vps;
    for (const Flush& f : h.flushes)
        vps.push_back(f.vp);
    CHECK(vps == std::vector<unsigned>{0, 5}); // VP 130 does not exist
}

TEST_CASE("An Ex VP set must come with one variable-header qword per valid bank")
{
    CallHarness h;
    h.input({0, 0, HV_GENERIC_SET_SPARSE_4K, 0b11, 1, 1});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressSpaceEx) | varhead(1)) ==
          HvStatus::InvalidHypercallInput);
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressSpaceEx) | varhead(2)) == HvStatus::Success);
    h.input({0, 0, 7, 0});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressSpaceEx)) == HvStatus::InvalidParameter);
}

TEST_CASE("FlushVirtualAddressListEx takes the GVA list after the VP set")
{
    CallHarness h;
    h.input({0, 0, HV_GENERIC_SET_ALL, 0, 0x9000, 0xA001});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressListEx) | reps(2)) == HvStatus::Success);
    CHECK(h.flushes.size() == 4);
    REQUIRE(h.flushes[3].ranges.size() == 2);
    CHECK(h.flushes[3].ranges[1].base == 0xA000);
    CHECK(h.flushes[3].ranges[1].pages == 2);
    h.flushes.clear();
    h.input({0, 0, HV_GENERIC_SET_SPARSE_4K, 1, 0b10, 0x9000});
    CHECK(h.status(code(HvCallCode::FlushVirtualAddressListEx) | varhead(1) | reps(1)) ==
          HvStatus::Success);
    REQUIRE(h.flushes.size() == 1);
    CHECK(h.flushes[0].vp == 1);
    CHECK(h.flushes[0].ranges[0].base == 0x9000);
}

// ---- Cluster IPIs ----

TEST_CASE("SendSyntheticClusterIpi raises the vector on each VP of the mask, fast or not")
{
    CallHarness h;
    CHECK(h.status(code(HvCallCode::SendSyntheticClusterIpi) | FAST, 0x31, 0b1001) ==
          HvStatus::Success);
    CHECK(h.apic.raised == std::vector<RecordingApic::Raised>{{0, 0x31, false}, {3, 0x31, false}});
    h.apic.raised.clear();
    h.input({0xF0, 0b0110});
    CHECK(h.status(code(HvCallCode::SendSyntheticClusterIpi)) == HvStatus::Success);
    CHECK(h.apic.raised == std::vector<RecordingApic::Raised>{{1, 0xF0, false}, {2, 0xF0, false}});
}

TEST_CASE("Cluster IPIs with a vector outside 0x10-0xFF or another VTL are invalid parameters")
{
    CallHarness h;
    const u64 ipi = code(HvCallCode::SendSyntheticClusterIpi) | FAST;
    CHECK(h.status(ipi, 0x0F, 1) == HvStatus::InvalidParameter);
    CHECK(h.status(ipi, 0x100, 1) == HvStatus::InvalidParameter);
    CHECK(h.status(ipi, 0x40 | (0x11ull << 32), 1) == HvStatus::InvalidParameter); // VTL 1
    CHECK(h.status(ipi, 0x40 | (0x20ull << 32), 1) == HvStatus::InvalidParameter); // RsvdZ
    CHECK(h.status(ipi, 0x40 | (0x10ull << 32), 1) == HvStatus::Success);          // VTL 0
    CHECK(h.apic.raised.size() == 1);
}

TEST_CASE("SendSyntheticClusterIpiEx reaches a sparse set and all VPs")
{
    CallHarness h;
    h.input({0x45, HV_GENERIC_SET_SPARSE_4K, 1, 0b0100});
    CHECK(h.status(code(HvCallCode::SendSyntheticClusterIpiEx) | varhead(1)) == HvStatus::Success);
    CHECK(h.apic.raised == std::vector<RecordingApic::Raised>{{2, 0x45, false}});
    h.apic.raised.clear();
    // Fast: vector in RDX, format in R8, valid banks and bank 0 in XMM0.
    h.xmm({0, 0});
    CHECK(h.status(code(HvCallCode::SendSyntheticClusterIpiEx) | FAST, 0x46, HV_GENERIC_SET_ALL) ==
          HvStatus::Success);
    CHECK(h.apic.raised.size() == 4);
    h.apic.raised.clear();
    h.xmm({1, 0b1000});
    CHECK(h.status(code(HvCallCode::SendSyntheticClusterIpiEx) | FAST | varhead(1), 0x47,
                   HV_GENERIC_SET_SPARSE_4K) == HvStatus::Success);
    CHECK(h.apic.raised == std::vector<RecordingApic::Raised>{{3, 0x47, false}});
}

// ---- Messages and events ----

TEST_CASE("PostMessage hands the payload to the connection's port")
{
    CallHarness h;
    std::vector<u8> got;
    unsigned from = 99;
    REQUIRE(
        h.hv.connections().add_message_port(4, [&](unsigned vp, u32 type, std::span<const u8> p) {
            from = vp;
            got.assign(p.begin(), p.end());
            return type == 1 ? HvStatus::Success : HvStatus::InsufficientBuffers;
        }));
    h.input({4, 1 | (3ull << 32), 0x0000000000CCBBAAull});
    CHECK(h.status(code(HvCallCode::PostMessage), INPUT, 0, 2) == HvStatus::Success);
    CHECK(from == 2);
    CHECK(got == std::vector<u8>{0xAA, 0xBB, 0xCC});
    h.input({4, 2 | (3ull << 32)});
    CHECK(h.status(code(HvCallCode::PostMessage)) == HvStatus::InsufficientBuffers);
}

TEST_CASE("PostMessage checks the connection, message type and payload size")
{
    CallHarness h;
    REQUIRE(h.hv.connections().add_message_port(
        4, [](unsigned, u32, std::span<const u8>) { return HvStatus::Success; }));
    REQUIRE(
        h.hv.connections().add_event_port(5, 1, [](unsigned, u16) { return HvStatus::Success; }));
    const u64 post = code(HvCallCode::PostMessage);
    h.input({3, 1 | (8ull << 32)});
    CHECK(h.status(post) == HvStatus::InvalidConnectionId);
    h.input({5, 1 | (8ull << 32)});
    CHECK(h.status(post) == HvStatus::InvalidPortId);
    h.input({4, 0 | (8ull << 32)});
    CHECK(h.status(post) == HvStatus::InvalidParameter);
    h.input({4, 0x80000001 | (8ull << 32)});
    CHECK(h.status(post) == HvStatus::InvalidParameter);
    h.input({4, 1 | (241ull << 32)});
    CHECK(h.status(post) == HvStatus::InvalidParameter);
    h.input({4 | (1ull << 32), 1 | (8ull << 32)});
    CHECK(h.status(post) == HvStatus::InvalidParameter);
    h.input({4, 1 | (240ull << 32)});
    CHECK(h.status(post) == HvStatus::Success);
    // The 256-byte input block must fit in its page.
    CHECK(h.status(post, INPUT + 4096 - 248) == HvStatus::InvalidAlignment);
}

TEST_CASE("SignalEvent reaches the event port with its flag number, fast or not")
{
    CallHarness h;
    std::vector<u16> flags;
    REQUIRE(h.hv.connections().add_event_port(0x10, 4, [&](unsigned, u16 flag) {
        flags.push_back(flag);
        return HvStatus::Success;
    }));
    CHECK(h.status(code(HvCallCode::SignalEvent) | FAST, 0x10 | (3ull << 32)) == HvStatus::Success);
    h.input({0x10 | (1ull << 32)});
    CHECK(h.status(code(HvCallCode::SignalEvent)) == HvStatus::Success);
    CHECK(flags == std::vector<u16>{3, 1});
    CHECK(h.status(code(HvCallCode::SignalEvent) | FAST, 0x10 | (4ull << 32)) ==
          HvStatus::InvalidParameter);
    CHECK(h.status(code(HvCallCode::SignalEvent) | FAST, 0x11) == HvStatus::InvalidConnectionId);
    CHECK(h.status(code(HvCallCode::SignalEvent) | FAST, 0x10 | (1ull << 48)) ==
          HvStatus::InvalidParameter);
}

TEST_CASE("SignalEvent to a message port answers INVALID_PORT_ID")
{
    CallHarness h;
    REQUIRE(h.hv.connections().add_message_port(
        4, [](unsigned, u32, std::span<const u8>) { return HvStatus::Success; }));
    CHECK(h.status(code(HvCallCode::SignalEvent) | FAST, 4) == HvStatus::InvalidPortId);
}

TEST_CASE("A connection table refuses duplicate and reserved connection IDs")
{
    HvConnections c;
    auto event = [](unsigned, u16) { return HvStatus::Success; };
    CHECK(c.add_event_port(1, 1, event));
    CHECK_FALSE(c.add_event_port(1, 1, event));
    CHECK_FALSE(c.add_event_port(0x01000000, 1, event));
    CHECK_FALSE(c.add_event_port(2, 0, event));
    CHECK(c.remove(1));
    CHECK_FALSE(c.remove(1));
    CHECK(c.signal_event(0, 1, 0) == HvStatus::InvalidConnectionId);
}

TEST_CASE("NotifyLongSpinWait always succeeds and tells the machine")
{
    CallHarness h;
    CHECK(h.status(code(HvCallCode::NotifyLongSpinWait) | FAST, 0xFFF | (7ull << 32), 0, 1) ==
          HvStatus::Success);
    CHECK(h.spins == std::vector<std::pair<unsigned, u32>>{{1, 0xFFF}});
    h.input({0x20});
    CHECK(h.status(code(HvCallCode::NotifyLongSpinWait)) == HvStatus::Success);
}

// ---- Register conventions ----

TEST_CASE("A 32-bit caller passes EDX:EAX, EBX:ECX, EDI:ESI and gets EDX:EAX back")
{
    CallHarness h;
    CpuState regs; // protected mode without LMA: the x86 convention
    const u64 control = code(HvCallCode::FlushVirtualAddressList) | reps(1);
    regs.gpr[RDX] = control >> 32;
    regs.gpr[RAX] = control & 0xFFFFFFFF;
    regs.gpr[RBX] = 0;
    regs.gpr[RCX] = INPUT;
    h.input({0, 0, 1, 0x6000});
    REQUIRE(h.hv.hypercall(0, regs) == HypercallResult::Kind::Completed);
    CHECK(regs.gpr[RAX] == 0); // HV_STATUS_SUCCESS
    CHECK(regs.gpr[RDX] == 1); // one rep completed (result bits 43:32)
    REQUIRE(h.flushes.size() == 1);
    CHECK(h.flushes[0].ranges[0].base == 0x6000);
}

TEST_CASE("A 32-bit rep continuation rewrites EDX:EAX with the new start index")
{
    HvConfig c = config_with_vps(1);
    c.rep_batch = 1;
    CallHarness h(c);
    CpuState regs;
    const u64 control = code(HvCallCode::FlushVirtualAddressList) | reps(2);
    regs.gpr[RDX] = control >> 32;
    regs.gpr[RAX] = control & 0xFFFFFFFF;
    regs.gpr[RCX] = INPUT;
    h.input({0, 0, 1, 0x6000, 0x7000});
    REQUIRE(h.hv.hypercall(0, regs) == HypercallResult::Kind::Continue);
    CHECK(regs.gpr[RDX] == ((control >> 32) | (1u << 16)));
    REQUIRE(h.hv.hypercall(0, regs) == HypercallResult::Kind::Completed);
    CHECK(regs.gpr[RDX] == 2);
}

TEST_CASE("The caller's mode is EFER.LMA and CS.L: compatibility mode uses EDX:EAX")
{
    // TLFS 3.7: a 64-bit caller needs both bits; with LMA=1 and CS.L=0 the
    // x86 registers carry the call. RCX holds a valid x64 call and EDX:EAX
    // an unknown code, so the status shows which registers were read.
    CallHarness h;
    h.regs.seg[CS].attr &= ~Segment::L;
    h.regs.gpr[RCX] = code(HvCallCode::NotifyLongSpinWait) | FAST;
    h.regs.gpr[RDX] = 0;
    h.regs.gpr[RAX] = 0x0001;
    REQUIRE(h.hv.hypercall(0, h.regs) == HypercallResult::Kind::Completed);
    CHECK(h.regs.gpr[RAX] == static_cast<u64>(HvStatus::InvalidHypercallCode));
    CHECK(h.regs.gpr[RDX] == 0);

    h.regs.seg[CS].attr |= Segment::L; // 64-bit mode: RCX is the input value
    h.regs.gpr[RAX] = 0x0001;
    REQUIRE(h.hv.hypercall(0, h.regs) == HypercallResult::Kind::Completed);
    CHECK(h.regs.gpr[RAX] == static_cast<u64>(HvStatus::Success));
}
