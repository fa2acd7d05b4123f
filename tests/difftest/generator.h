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

// The host CPUID words the generator reads (leaf 1 ECX/EDX, leaf 7.0 EBX).
// They only decide TestCase::host_lacks; a replay takes them from the
// recording, so that it regenerates the same cases on any machine.
struct HostFeatures {
    u32 leaf1_ecx = ~0u, leaf1_edx = ~0u, leaf7_ebx = ~0u;
    static HostFeatures of_this_host();
};

// Fills `tc` with case `index` of `seed`. `only` (when not empty) restricts
// the draw to the template family of that name ("raw" for random bytes);
// `modes` to 64-bit and/or 32-bit (compatibility-mode) cases. `host` is the
// CPU the case is meant for: an instruction it lacks sets tc.host_lacks.
void generate_case(u64 seed, u64 index, const std::string& only, unsigned modes,
                   const HostFeatures& host, TestCase& tc);

std::vector<std::string> family_names();

} // namespace difftest
