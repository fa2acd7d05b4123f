// Seeded, bounded fuzzing of the hypercall dispatcher: random control words
// (biased towards the implemented calls and interesting bit fields), random
// input GPAs (aligned, misaligned, page-crossing, outside RAM) over random
// input pages, random XMM registers. The host must never fault, and every
// call must end in a defined way with a status the TLFS defines.
#include "tests/paravirt/hypercall_caller.h"
#include "tests/paravirt/hv_harness.h"

#include <random>
#include <set>

namespace {

const std::set<u16> DEFINED_STATUSES = {
    0x0000, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0008,
    0x000B, 0x000E, 0x0011, 0x0012, 0x0013, 0x0018,
};

constexpr u16 CODES[] = {0x0002, 0x0003, 0x0008, 0x000B, 0x0013, 0x0014, 0x0015, 0x005C, 0x005D};

struct Fuzzer {
    std::mt19937_64 rng;
    explicit Fuzzer(u64 seed) : rng(seed) {}
    u64 any() { return rng(); }
    u64 below(u64 n) { return rng() % n; }
    bool chance(unsigned percent) { return below(100) < percent; }

    u64 control()
    {
        u64 c = chance(85) ? CODES[below(std::size(CODES))] : below(0x10000);
        if (chance(40))
            c |= HV_HYPERCALL_FAST;
        if (chance(30))
            c |= below(4) << HV_HYPERCALL_VARHEAD_SHIFT;
        if (chance(5))
            c |= any() & HV_HYPERCALL_VARHEAD_MASK;
        if (chance(50))
            c |= (chance(80) ? below(16) : below(4096)) << HV_HYPERCALL_REP_COUNT_SHIFT;
        if (chance(30))
            c |= (chance(80) ? below(16) : below(4096)) << HV_HYPERCALL_REP_START_SHIFT;
        if (chance(5))
            c |= any() & HV_HYPERCALL_RSVDZ;
        if (chance(2))
            c |= HV_HYPERCALL_NESTED;
        return c;
    }
    u64 gpa()
    {
        switch (below(6)) {
        case 0:
            return 0x500000 + below(512) * 8; // aligned, in RAM
        case 1:
            return 0x500000 + below(4096); // any alignment
        case 2:
            return HvHarness::RAM - 8 * below(64); // at the end of RAM
        case 3:
            return 0xA0000 + below(0x60000); // legacy hole
        case 4:
            return any(); // anywhere at all
        default:
            return 0x500000 + 4096 - 8 * below(40); // near a page end
        }
    }
};

} // namespace

TEST_CASE("Random hypercalls never fault the host and always end with a defined status")
{
    HvConfig config = config_with_vps(3);
    config.rep_batch = 7; // exercise continuations too
    HvHarness h(config);
    h.enable_hypercalls();
    h.hv.set_tlb_flush_handler([](unsigned vp, const TlbFlushRequest& r) {
        CHECK(vp < 3);
        CHECK(r.ranges.size() <= 7);
    });
    REQUIRE(h.hv.connections().add_message_port(4, [](unsigned, u32, std::span<const u8> p) {
        CHECK(p.size() <= HV_MESSAGE_MAX_PAYLOAD);
        return HvStatus::Success;
    }));
    REQUIRE(h.hv.connections().add_event_port(1, 8, [](unsigned, u16 flag) {
        CHECK(flag < 8);
        return HvStatus::Success;
    }));

    Fuzzer f(0x5eed);
    std::array<u8, PAGE_SIZE> page;
    unsigned counts[3] = {};
    for (unsigned iteration = 0; iteration < 20000; ++iteration) {
        if (iteration % 16 == 0) {
            for (u8& b : page)
                b = static_cast<u8>(f.chance(60) ? 0 : f.any());
            REQUIRE(h.memory.write_bytes(0x500000, page.data(), page.size()));
        }
        const bool caller64 = f.chance(80);
        const u64 control = f.control();
        const u64 input = f.chance(50) ? f.gpa() : f.any();
        const u64 output = f.any();
        CpuState regs = hypercall_caller(caller64, control, input, output);
        for (auto& x : regs.fpu.xmm)
            x = {f.any(), f.any()};

        // Re-execute continuations as the guest would, a bounded number of times.
        HypercallResult::Kind kind;
        unsigned rounds = 0;
        do {
            kind = h.hv.hypercall(iteration % 3, regs);
            REQUIRE(++rounds <= 4096);
        } while (kind == HypercallResult::Kind::Continue);
        ++counts[static_cast<unsigned>(kind)];
        if (kind == HypercallResult::Kind::InvalidOpcode)
            continue;
        const u64 result = caller64 ? regs.gpr[RAX] : (regs.gpr[RDX] << 32 | regs.gpr[RAX]);
        CAPTURE(control);
        CHECK(DEFINED_STATUSES.count(static_cast<u16>(result)) == 1);
        const u64 rep_count = (control >> 32) & 0xFFF;
        CHECK(((result >> 32) & 0xFFF) <= rep_count);
    }
    // The run reached the dispatcher's successful paths, not just its checks.
    CHECK(counts[static_cast<unsigned>(HypercallResult::Kind::Completed)] > 10000);
}

TEST_CASE("Random MSR writes never fault the host")
{
    HvHarness h(config_with_vps(2));
    Fuzzer f(0xC0FFEE);
    for (unsigned i = 0; i < 20000; ++i) {
        const u32 index = HV_X64_MSR_FIRST + static_cast<u32>(f.below(HV_X64_MSR_COUNT));
        const unsigned vp = static_cast<unsigned>(f.below(2));
        u64 value = f.any();
        if (f.chance(50))
            value = (f.below(HvHarness::RAM / PAGE_SIZE + 16) * PAGE_SIZE) | f.below(2);
        if (f.chance(50))
            h.wrmsr(index, value, vp);
        else
            (void)h.hv.read_msr(vp, index);
        if (f.chance(5))
            h.advance_ns(f.below(100000));
    }
}
