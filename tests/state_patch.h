// Tests of what a snapshot loader refuses (docs/snapshots.md "What is
// refused"): a device's saved bytes with one field changed at its offset, as
// a crafted snapshot would hand it over, then loaded into a fresh device.
#pragma once

#include "mmu/base/state_visitor.h"

#include <cstring>
#include <string_view>
#include <vector>

// The bytes StateVisitor::section(name, version) writes: the name's length,
// the name, the version.
constexpr size_t section_bytes(std::string_view name) { return 4 + name.size() + 4; }

// `bytes` with the field at `offset` set to `value` (little-endian, as
// saved); unchanged when the field would not fit.
template <class T>
std::vector<u8> patched(std::vector<u8> bytes, size_t offset, T value)
{
    if (offset + sizeof value <= bytes.size())
        std::memcpy(bytes.data() + offset, &value, sizeof value);
    return bytes;
}

// Whether `device` takes `bytes` as its state.
template <class Device>
bool loads(Device& device, const std::vector<u8>& bytes)
{
    StateVisitor load = StateVisitor::loader(bytes);
    device.visit_state(load);
    return load.ok();
}
