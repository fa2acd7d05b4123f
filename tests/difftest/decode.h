// The difftest reads its own cases with Zydis set up like the interpreter's
// decoder (cpu/decoder/decoder.cpp): MPX, CET and CLDEMOTE encodings decode as the
// reserved NOPs a processor without them runs.
#pragma once

#include "mmu/base/types.h"

#include <Zydis/Zydis.h>

namespace difftest {

// Decodes one instruction of a 64-bit or a 32-bit (compatibility mode) case,
// repairing what Zydis 4.0 gets wrong the way cpu/decoder/decoder.cpp does
// ([index*scale + disp32] under 67 + REX.B).
bool decode_case(bool mode32, const u8* bytes, unsigned length, ZydisDecodedInstruction& insn,
                 ZydisDecodedOperand* ops);

} // namespace difftest
