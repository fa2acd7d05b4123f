// A fuzz target's input read front to back as a program of records; past
// its end every read gives 0, so any input is a complete program.
#pragma once

#include "mmu/base/types.h"

#include <cstddef>
#include <cstdint>
#include <vector>

struct FuzzInput {
    const uint8_t* data;
    size_t size;
    size_t pos = 0;

    bool done() const { return pos >= size; }
    u8 byte() { return pos < size ? data[pos++] : 0; }
    // Little-endian; the reads are sequenced (the operands of | are not).
    u16 word()
    {
        const u8 low = byte();
        return static_cast<u16>(low | byte() << 8);
    }
    u32 dword()
    {
        const u16 low = word();
        return u32(low) | u32(word()) << 16;
    }
    std::vector<u8> bytes(size_t n)
    {
        std::vector<u8> out(n);
        for (u8& b : out)
            b = byte();
        return out;
    }
};
