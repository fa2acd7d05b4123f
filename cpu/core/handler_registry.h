// The opcode table's shape, shared by the table files (handler_table.cpp and
// one *_table.cpp per instruction family that keeps its own list). Only table
// files include this: it is where decoder mnemonics meet our handlers.
#pragma once

#include "cpu/decoder/insn.h"

#include <Zydis/Zydis.h>

#include <array>

struct TableEntry {
    Handler handler = nullptr;
    bool ends_block = false;
};

using HandlerTableArray = std::array<TableEntry, ZYDIS_MNEMONIC_MAX_VALUE + 1>;

inline void add(HandlerTableArray& t, ZydisMnemonic m, Handler h, bool ends_block = false)
{
    t[m] = TableEntry{h, ends_block};
}

// Family tables (each in its own file).
void add_x87_handlers(HandlerTableArray& t);  // cpu/x87/x87_table.cpp
void add_simd_handlers(HandlerTableArray& t); // cpu/simd/simd_table.cpp
void add_avx_handlers(HandlerTableArray& t);  // cpu/simd/simd_avx_table.cpp
