// Runs a test case in the interpreter: 64-bit long mode at CPL 3 with the
// code and data pages mapped at the host's addresses, SSE and AVX enabled as
// Linux enables them, one instruction per run. Exceptions are delivered
// through a real IDT to CPL-0 stubs (one HLT per vector), so the vector and
// the faulting state are read back from the stub address and the exception
// frame.
#pragma once

#include "cpu/core/cpu.h"
#include "tests/difftest/difftest.h"

namespace difftest {

class InterpRunner {
public:
    // `vendor`: the CPU model whose behaviour is compared.
    explicit InterpRunner(CpuVendor vendor);
    Result run(const TestCase& tc, const u8* code_page);

private:
    PhysicalMemory m_mem{2 * 1024 * 1024};
    PortBus m_ports;
    MsrBus m_msrs;
    CpuidModel m_cpuid;
    CpuState m_state;
    Cpu m_cpu{m_state, m_mem, m_ports, m_msrs, m_cpuid, 0};
    CpuState m_initial;   // the state every 64-bit case starts from, before its registers
    CpuState m_initial32; // the same in compatibility mode
};

} // namespace difftest
