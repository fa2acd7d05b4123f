// Model-specific registers beyond those the CPU core keeps itself: devices
// (LAPIC, enlightenments) claim index ranges. Every access names the vCPU
// that executes RDMSR/WRMSR, so per-vCPU registers (the LAPIC's, the
// synthetic MSRs of a VP) are found without any notion of a "current" vCPU,
// on one host thread or many. An MSR nobody claims raises #GP, which the
// caller decides by the empty optional / false result.
#pragma once

#include "mmu/base/types.h"

#include <cassert>
#include <functional>
#include <optional>
#include <vector>

class MsrBus {
public:
    using Reader = std::function<std::optional<u64>(unsigned vcpu, u32 index)>;
    using Writer = std::function<bool(unsigned vcpu, u32 index, u64 value)>; // false = #GP

    // Claims [first, first + count). Two devices never share an index: a
    // second claim of one is a wiring bug.
    void map(u32 first, u32 count, Reader reader, Writer writer)
    {
        assert(count > 0 && !overlaps(first, count));
        m_ranges.push_back({first, count, std::move(reader), std::move(writer)});
    }
    bool overlaps(u32 first, u32 count) const
    {
        for (const Range& r : m_ranges)
            if (first - r.first < r.count || r.first - first < count)
                return true;
        return false;
    }
    std::optional<u64> read(unsigned vcpu, u32 index) const
    {
        ++m_accesses;
        for (const Range& r : m_ranges)
            if (index - r.first < r.count)
                return r.reader(vcpu, index);
        return std::nullopt;
    }
    bool write(unsigned vcpu, u32 index, u64 value) const
    {
        ++m_accesses;
        for (const Range& r : m_ranges)
            if (index - r.first < r.count)
                return r.writer(vcpu, index, value);
        return false;
    }

    // Reads and writes that reached the bus (--stats), claimed or not.
    u64 accesses() const { return m_accesses; }

    // The claimed index ranges, in claim order: a hardware backend tells its
    // hypervisor to leave these MSRs to the devices here.
    struct Claim {
        u32 first, count;
    };
    std::vector<Claim> claims() const
    {
        std::vector<Claim> out;
        for (const Range& r : m_ranges)
            out.push_back({r.first, r.count});
        return out;
    }

private:
    struct Range {
        u32 first, count;
        Reader reader;
        Writer writer;
    };
    std::vector<Range> m_ranges;
    mutable u64 m_accesses = 0; // a statistic, not the bus's state
};
