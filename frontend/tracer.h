// --trace: prints every instruction the vCPU is about to execute as
// "CS:RIP  bytes  disassembly" on a stream (stderr), disassembled with
// Capstone, which is independent of the Zydis decoder the interpreter uses,
// so a trace also cross-checks the decoder by eye.
#pragma once

#include "cpu/state/cpu_state.h"
#include "mmu/base/error_or.h"

#include <cstdio>
#include <memory>

class Tracer {
public:
    static ErrorOr<std::unique_ptr<Tracer>> create(std::FILE* out);
    ~Tracer();
    Tracer(const Tracer&) = delete;
    Tracer& operator=(const Tracer&) = delete;

    // Matches Cpu::TraceHook.
    void trace(const CpuState& state, const u8* bytes, unsigned length);

private:
    explicit Tracer(std::FILE* out) : m_out(out) {}

    std::FILE* m_out;
    // One Capstone handle per code size: 16-, 32- and 64-bit.
    size_t m_handles[3] = {0, 0, 0};
};

// The code size (2, 4 or 8 bytes) that CS selects in `state`.
unsigned code_size_of(const CpuState& state);
