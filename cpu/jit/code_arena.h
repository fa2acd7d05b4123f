// Executable memory for translated blocks: one mapping, filled front to
// back. Translations are never freed one by one; when the arena is full
// its owner drops every translation and starts again from the front.
#pragma once

#include "mmu/base/types.h"

#include <cstddef>
#include <vector>

class CodeArena {
public:
    explicit CodeArena(size_t bytes);
    ~CodeArena();
    CodeArena(const CodeArena&) = delete;
    CodeArena& operator=(const CodeArena&) = delete;

    bool usable() const { return m_base != nullptr; }
    u8* cursor() const { return m_base + m_used; }
    size_t room() const { return m_size - m_used; }
    // Keeps the `bytes` just written at cursor() (16-byte aligned after).
    void commit(size_t bytes);
    void reset() { m_used = 0; }
    // Starts afresh at addresses never used before: the old mapping stays
    // reserved (inaccessible, its memory returned), so that a profiler's
    // map of translations (cpu/jit/perf_map.h) never names two of them at
    // one address. Falls back to reset() when no new mapping can be made.
    void reset_at_new_addresses();

private:
    u8* m_base = nullptr;
    size_t m_size = 0;
    size_t m_used = 0;
    std::vector<u8*> m_retired; // earlier mappings, kept reserved (reset_at_new_addresses)
};
