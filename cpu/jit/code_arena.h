// Executable memory for translated blocks: one mapping, filled front to
// back. Translations are never freed one by one; when the arena is full
// its owner drops every translation and starts again from the front.
#pragma once

#include "mmu/base/types.h"

#include <cstddef>

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

private:
    u8* m_base = nullptr;
    size_t m_size = 0;
    size_t m_used = 0;
};
