// The interpreter backend: runs a vCPU on cpu/'s Cpu (the interpreter and
// its block translator).
#pragma once

#include "accel/vcpu_backend.h"

struct InterpOptions {
    bool jit = true; // block translation (cpu/jit/); off: interpreter only
    // Name translations for perf in /tmp/perf-PID.map (cpu/jit/perf_map.h).
    bool perf_map = false;
};

// The vCPUs of one machine share one decoded-block cache (decoded code is
// the same for all); the accelerator owns it and tells it of every write to
// guest memory that lands on a decoded page.
// Fails only when options.perf_map is set and the map cannot be written.
ErrorOr<std::unique_ptr<Accelerator>> make_interp_accelerator(const AcceleratorWiring& wiring,
                                                              const InterpOptions& options);
