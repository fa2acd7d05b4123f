// Model-specific registers beyond those the CPU core keeps itself: devices
// (LAPIC, enlightenments) claim index ranges. An MSR nobody claims raises
// #GP, which the caller decides by the empty optional / false result.
#pragma once

#include "mmu/types.h"

#include <functional>
#include <vector>

class MsrBus {
public:
    using Reader = std::function<std::optional<u64>(u32 index)>;
    using Writer = std::function<bool(u32 index, u64 value)>; // false = #GP

    void map(u32 first, u32 count, Reader reader, Writer writer)
    {
        m_ranges.push_back({first, count, std::move(reader), std::move(writer)});
    }
    std::optional<u64> read(u32 index) const
    {
        for (const Range& r : m_ranges)
            if (index - r.first < r.count)
                return r.reader(index);
        return std::nullopt;
    }
    bool write(u32 index, u64 value) const
    {
        for (const Range& r : m_ranges)
            if (index - r.first < r.count)
                return r.writer(index, value);
        return false;
    }

private:
    struct Range {
        u32 first, count;
        Reader reader;
        Writer writer;
    };
    std::vector<Range> m_ranges;
};
