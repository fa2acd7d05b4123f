// The opcode table: decoder mnemonic → handler. Family files register their
// handlers (cpu/integer/alu.cpp, cpu/integer/string_ops.cpp, ...); the decoder looks them up.
#pragma once

#include "cpu/decoder/insn.h"

Handler handler_for(u16 mnemonic);

// Handler for instructions the machine does not implement: raises #UD.
bool op_unimplemented(Cpu& cpu, const Insn& insn);
// Handler for bytes that do not decode in the current mode: raises #UD.
bool op_unimplemented_decode(Cpu& cpu, const Insn& insn);
// Whether a block must end after this instruction (it may branch or change mode).
bool insn_ends_block(const Insn& insn);
