// The 64-bit Zydis decoder the difftest uses to read its own cases, set up
// like the interpreter's (cpu/decoder.cpp): MPX, CET and CLDEMOTE encodings
// decode as the reserved NOPs a processor without them runs.
#pragma once

#include "mmu/types.h"

#include <Zydis/Zydis.h>

namespace difftest {

const ZydisDecoder& decoder64();

// Decodes one instruction, repairing what Zydis 4.0 gets wrong the way
// cpu/decoder.cpp does ([index*scale + disp32] under 67 + REX.B).
bool decode64(const u8* bytes, unsigned length, ZydisDecodedInstruction& insn,
              ZydisDecodedOperand* ops);

} // namespace difftest
