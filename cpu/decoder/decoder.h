// Zydis → Insn. The only file (with handler_table.cpp) that sees Zydis types.
#pragma once

#include "cpu/decoder/insn.h"

enum class DecodeStatus : u8 {
    Ok,
    NeedMoreBytes, // the instruction continues past the bytes given
    Invalid,       // not a valid instruction in this mode: #UD
};

// Decodes one instruction in a code segment of `code_size` bytes (2, 4, 8).
DecodeStatus decode_insn(unsigned code_size, const u8* bytes, unsigned available, Insn& out);

// Zydis mnemonic name of a decoded instruction, for diagnostics.
const char* mnemonic_name(const Insn& insn);
