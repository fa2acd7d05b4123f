// Runs a test case on the host CPU: the code page's prologue loads the
// registers and RFLAGS, the instruction runs at CPL 3, and the INT3 after it
// (or the fault it raises) is caught by a signal handler that records the
// register state from the signal context.
#pragma once

#include "tests/difftest/difftest.h"

#include <string>

namespace difftest {

class HostRunner {
public:
    // Maps the window and installs the signal handlers; false with `error` set
    // when the fixed addresses are taken or the kernel refuses.
    // Also probes once whether the host runs compatibility-mode code.
    bool init(std::string& error);
    Result run(const TestCase& tc, const u8* code_page);

    // False when the far jump to the 32-bit user code segment faults: some
    // kernels (paravirtualized ones among them) give a 64-bit process no
    // usable 32-bit code segment. 32-bit cases cannot run on such a host.
    bool can_run_32() const { return m_can_run_32; }

private:
    bool m_can_run_32 = false;
};

} // namespace difftest
