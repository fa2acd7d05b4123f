// A partition for paravirt tests: 16 MiB of RAM, a deterministic clock the
// test advances by hand, and an ApicPort that records what reaches it.
#pragma once

#include "mmu/physical_memory.h"
#include "paravirt/hyperv.h"
#include "platform/clock/virtual_clock.h"

#include <doctest/doctest.h>

#include <cstring>
#include <set>
#include <vector>

struct RecordingApic final : ApicPort {
    struct Raised {
        unsigned vp;
        u8 vector;
        bool auto_eoi;
        bool operator==(const Raised&) const = default;
    };
    std::vector<Raised> raised;
    std::vector<unsigned> eois;
    std::set<std::pair<unsigned, u8>> auto_eoi; // what set_auto_eoi announced
    u64 icr = 0;
    u8 tpr = 0;

    void raise_vector(unsigned vp, u8 vector, bool auto_eoi) override
    {
        raised.push_back({vp, vector, auto_eoi});
    }
    void set_auto_eoi(unsigned vp, u8 vector, bool enabled) override
    {
        if (enabled)
            auto_eoi.insert({vp, vector});
        else
            auto_eoi.erase({vp, vector});
    }
    void write_eoi(unsigned vp) override { eois.push_back(vp); }
    u64 read_icr(unsigned) override { return icr; }
    void write_icr(unsigned, u64 value) override { icr = value; }
    u8 read_tpr(unsigned) override { return tpr; }
    void write_tpr(unsigned, u8 value) override { tpr = value; }
};

inline HvConfig config_with_vps(unsigned vps)
{
    HvConfig c;
    c.vp_count = vps;
    return c;
}

struct HvHarness {
    static constexpr u64 RAM = 16ull << 20;
    static constexpr GuestPhys HYPERCALL_PAGE = 0x200000;

    u64 instructions = 0; // the deterministic clock: 1 ns per instruction
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    PhysicalMemory memory{RAM};
    RecordingApic apic;
    HyperV hv;

    explicit HvHarness(const HvConfig& config = HvConfig{}) : hv(config, memory, clock, apic)
    {
        clock.set_instruction_counter([this] { return instructions; });
    }

    // Moves virtual time forward and fires what became due.
    void advance_ns(u64 ns)
    {
        instructions += ns;
        clock.run_due();
    }
    void advance_to_reference(u64 reference)
    {
        const u64 ns = hv.time().clock_ns_when(reference);
        if (ns > clock.now_ns())
            advance_ns(ns - clock.now_ns());
        clock.run_due();
    }

    u64 rdmsr(u32 index, unsigned vp = 0)
    {
        auto v = hv.read_msr(vp, index);
        REQUIRE(v.has_value());
        return *v;
    }
    bool wrmsr(u32 index, u64 value, unsigned vp = 0) { return hv.write_msr(vp, index, value); }

    void enable_hypercalls()
    {
        REQUIRE(wrmsr(HV_X64_MSR_GUEST_OS_ID, 0x8100000000000000ull));
        REQUIRE(wrmsr(HV_X64_MSR_HYPERCALL, HYPERCALL_PAGE | HV_HYPERCALL_ENABLE));
    }

    template <class T> T peek(GuestPhys addr)
    {
        T v{};
        REQUIRE(memory.read_bytes(addr, &v, sizeof v));
        return v;
    }
    template <class T> void poke(GuestPhys addr, T v)
    {
        REQUIRE(memory.write_bytes(addr, &v, sizeof v));
    }
};
