// A debugger's own breakpoints, watchpoints and single-step for one vCPU
// (the gdb stub, frontend/gdb/): kept by the emulator beside the guest's own
// debug registers, never written into guest memory or DR0-DR7, so the guest
// can neither see nor disturb them. The shape follows what a hardware
// backend gets from KVM_SET_GUEST_DEBUG (breakpoints, watchpoints, a
// single-step flag) so both backends take the same set.
#pragma once

#include "mmu/base/types.h"

#include <vector>

// gdb's Z2/Z3/Z4: stop after a write, a read, or either.
enum class WatchKind : u8 { Write, Read, Access };

struct Watchpoint {
    u64 linear = 0;
    u64 length = 1; // 1, 2, 4 or 8
    WatchKind kind = WatchKind::Write;
    bool operator==(const Watchpoint&) const = default;
};

struct GuestDebugSet {
    // Linear addresses of instructions: the vCPU stops before running one.
    std::vector<u64> breakpoints;
    std::vector<Watchpoint> watchpoints;
    // Run one instruction (or deliver one event), then stop.
    bool single_step = false;

    bool empty() const { return breakpoints.empty() && watchpoints.empty() && !single_step; }
    bool operator==(const GuestDebugSet&) const = default;
};

// Why a vCPU stopped for the debugger.
struct DebugEvent {
    enum class Kind : u8 { None, Breakpoint, Watchpoint, Step };
    Kind kind = Kind::None;
    u64 address = 0; // Breakpoint: the instruction; Watchpoint: the watched address
    WatchKind watch = WatchKind::Write; // Watchpoint: which kind matched
};
