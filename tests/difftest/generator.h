// Test-case generation: a seeded table of integer-ISA templates (every
// operand size, register and memory forms, immediates, interesting values),
// random byte sequences, and x87/SIMD instructions drawn from an opcode table
// with a random x87/SSE/AVX state. Case `index` of `seed` is always the same
// case, so one mismatch line is enough to reproduce it.
#pragma once

#include "tests/difftest/difftest.h"

#include <string>
#include <vector>

namespace difftest {

constexpr unsigned MODE_64 = 1, MODE_32 = 2;

// Fills `tc` with case `index` of `seed`. `only` (when not empty) restricts
// the draw to the template family of that name ("raw" for random bytes);
// `modes` to 64-bit and/or 32-bit (compatibility-mode) cases.
void generate_case(u64 seed, u64 index, const std::string& only, unsigned modes, TestCase& tc);

std::vector<std::string> family_names();

} // namespace difftest
