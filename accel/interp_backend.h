// The interpreter backend: runs a vCPU on cpu/'s Cpu.
#pragma once

#include "accel/vcpu_backend.h"

class InterpBackend final : public VcpuBackend {
public:
    InterpBackend(CpuState& state, PhysicalMemory& memory, PortBus& ports, MsrBus& msrs,
                  const CpuidModel& cpuid, unsigned apic_id, BlockCache* shared_blocks = nullptr);
    RunExit run(u64 budget) override { return m_cpu.run(budget); }
    void request_stop() override { m_cpu.request_stop(); }
    u64 retired() const override { return m_cpu.retired(); }
    void reset() override { m_cpu.reset(); }
    // With the lazy arithmetic flags folded into RFLAGS, so callers see the
    // architectural value.
    CpuState& state() override
    {
        m_cpu.materialize_flags();
        return m_cpu.s;
    }
    const Fault& last_fault() const override { return m_cpu.last_fault(); }
    Cpu& cpu() { return m_cpu; }

private:
    Cpu m_cpu;
};
