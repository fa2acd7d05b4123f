// Decode-time handler specialization (cpu/fast_handlers.cpp): swaps a freshly
// decoded instruction's generic handler for one made for its operand shape.
#pragma once

#include "cpu/insn.h"

void specialize_handler(Insn& insn, unsigned code_size);
