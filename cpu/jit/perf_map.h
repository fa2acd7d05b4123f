// The map Linux's perf reads to name code that no ELF file describes
// (tools/perf/Documentation/jit-interface.txt): one line per translated
// block, "START SIZE NAME" in hex, in /tmp/perf-PID.map. With it, `perf
// report` shows which guest addresses the host's time went to instead of
// anonymous JIT addresses (docs/benchmarks.md "Profiling the guest").
#pragma once

#include "mmu/base/types.h"

#include <cstdio>
#include <mutex>
#include <string>

class PerfMap {
public:
    // Opens (truncates) `path`; usable() is false when that failed.
    explicit PerfMap(const std::string& path);
    ~PerfMap();
    PerfMap(const PerfMap&) = delete;
    PerfMap& operator=(const PerfMap&) = delete;

    bool usable() const { return m_file != nullptr; }
    // Host code at `start`, `bytes` long, runs the guest's block at linear
    // address `guest_linear` (physical `guest_phys`).
    void add(const void* start, size_t bytes, u64 guest_linear, GuestPhys guest_phys);
    // The path perf looks for: /tmp/perf-PID.map of this process.
    static std::string default_path();

private:
    std::mutex m_lock; // vCPUs that share a block cache translate concurrently
    FILE* m_file = nullptr;
};
