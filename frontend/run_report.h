// What the user reads when a run ends, and the process exit status it maps
// to (README.md "Exit statuses").
#pragma once

#include "platform/machine/machine.h"

#include <cstdio>

// Process exit statuses besides the guest's own debug-exit statuses (odd
// numbers, (v << 1) | 1). Listed in README.md.
namespace exit_status {
constexpr int SUCCESS = 0;
constexpr int USAGE = 2; // bad option, missing or malformed kernel
constexpr int TRIPLE_FAULT = 4;
constexpr int INSTRUCTION_LIMIT = 5;
constexpr int HALTED_FOREVER = 6;
constexpr int GUEST_CRASH = 8; // reported through the Hyper-V crash MSRs
constexpr int INTERRUPTED = 130; // SIGINT/SIGTERM, as a shell reports 128 + SIGINT
} // namespace exit_status

// Prints why the run ended on `out` (nothing for the guest's own exits) and
// returns the exit status.
int report_outcome(std::FILE* out, const RunOutcome& outcome, const Machine& machine,
                   u64 total_retired);

// --stats: the instructions retired and the machine's counters, one
// "name: value" line each, the instruction line first (scripts grep for it).
void print_stats(std::FILE* out, u64 retired, const MachineStats& stats);
// The counters of several machines of one run (the restarts) together.
MachineStats operator+(const MachineStats& a, const MachineStats& b);

// Writes the registers a crash report needs, one group per line.
void dump_registers(std::FILE* out, const CpuState& state);

// Prints a guest crash report: the VP, the five parameters and the message
// text when the guest gave one.
void print_crash_report(std::FILE* out, const HvCrashReport& report);
