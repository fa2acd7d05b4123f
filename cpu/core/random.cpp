// RDRAND and RDSEED (SDM Vol 2B) backed by the Cpu's seeded generator:
// deterministic for a given seed, never failing (CF = 1).
#include "cpu/core/handlers.h"

u64 Cpu::next_random()
{
    // SplitMix64 (Steele, Lea and Flood 2014); the APIC ID gives each vCPU
    // its own stream from one machine seed.
    m_random_state += 0x9E3779B97F4A7C15ull;
    u64 z = m_random_state + u64{apic_id} * 0xD1B54A32D192ED03ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

namespace {

// The destination gets a value and CF = 1; OF, SF, ZF, AF and PF are cleared.
bool random_into(Cpu& cpu, const Insn& insn, FeatureBit feature)
{
    if (!cpu.cpuid.has(feature) || insn.op[0].kind != OpKind::Gpr)
        return cpu.raise_ud();
    cpu.set_gpr(insn.op[0].reg, insn.op[0].size, cpu.next_random());
    cpu.set_rflags_arith(rf::CF);
    return true;
}

} // namespace

HANDLER(op_rdrand)
{
    return random_into(cpu, insn, cpufeat::RDRAND);
}

HANDLER(op_rdseed)
{
    return random_into(cpu, insn, cpufeat::RDSEED);
}
