// The host's monotonic clock in nanoseconds: what every measurement of host
// time (slices, rounds, migration budgets, virtual time in host mode) reads.
#pragma once

#include "mmu/base/types.h"

#include <ctime>

inline u64 host_monotonic_ns()
{
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<u64>(now.tv_sec) * 1'000'000'000 + static_cast<u64>(now.tv_nsec);
}
