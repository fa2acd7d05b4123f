// What the architecture leaves undefined for one instruction: the RFLAGS bits
// (SDM Vol 2 "Flags Affected" of each instruction, intersected with what AMD
// APM Vol 3 defines), and whether the destination itself is undefined.
#pragma once

#include "tests/difftest/difftest.h"

#include <Zydis/Zydis.h>

namespace difftest {

struct Undefined {
    u64 flags = 0;       // RFLAGS bits not compared
    bool result = false; // the destination is undefined: the case is skipped
};

Undefined undefined_for(const ZydisDecodedInstruction& insn, const ZydisDecodedOperand* ops,
                        const Regs& init);

} // namespace difftest
