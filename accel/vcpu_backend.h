// The interface every backend that runs vCPUs implements (DESIGN.md accel/):
// the interpreter now, KVM later. The frontend's Machine drives vCPUs only
// through it, so devices and the run loop never know which backend runs.
#pragma once

#include "cpu/cpu.h"

class VcpuBackend {
public:
    virtual ~VcpuBackend() = default;
    virtual RunExit run(u64 budget) = 0;
    virtual void request_stop() = 0;
    virtual u64 retired() const = 0;
    // Architectural power-on state; loaders then set up their entry state.
    virtual void reset() = 0;
    virtual CpuState& state() = 0;
    virtual const Fault& last_fault() const = 0;
};
