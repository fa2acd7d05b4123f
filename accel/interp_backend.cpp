#include "accel/interp_backend.h"

InterpBackend::InterpBackend(CpuState& state, PhysicalMemory& memory, PortBus& ports,
                             MsrBus& msrs, const CpuidModel& cpuid, unsigned apic_id,
                             BlockCache* shared_blocks)
    : m_cpu(state, memory, ports, msrs, cpuid, apic_id, shared_blocks)
{
}
