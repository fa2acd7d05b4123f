// The interpreter backend: runs a vCPU on cpu/'s Cpu (the interpreter and
// its block translator).
#pragma once

#include "accel/vcpu_backend.h"

#include <optional>

struct InterpOptions {
    bool jit = true; // block translation (cpu/jit/); off: interpreter only
    // Name translations for perf in /tmp/perf-PID.map (cpu/jit/perf_map.h).
    bool perf_map = false;
    // A port whose one-byte OUT at CPL 0 is a hypercall: the gate of the
    // KVM backend, whose hypercall page a machine switched from KVM keeps.
    std::optional<u8> hypercall_gate;
};

// The vCPUs of one machine share one decoded-block cache (decoded code is
// the same for all); the accelerator owns it and tells it of every write to
// guest memory that lands on a decoded page.
// Fails only when options.perf_map is set and the map cannot be written.
ErrorOr<std::unique_ptr<Accelerator>> make_interp_accelerator(const AcceleratorWiring& wiring,
                                                              const InterpOptions& options);
