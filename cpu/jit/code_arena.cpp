#include "cpu/jit/code_arena.h"

#include <sys/mman.h>

namespace {

u8* map_arena(size_t bytes)
{
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? nullptr : static_cast<u8*>(p);
}

} // namespace

CodeArena::CodeArena(size_t bytes)
{
    m_base = map_arena(bytes);
    if (!m_base)
        return; // no translations: the interpreter runs everything
    m_size = bytes;
}

CodeArena::~CodeArena()
{
    if (m_base)
        munmap(m_base, m_size);
    for (u8* old : m_retired)
        munmap(old, m_size);
}

void CodeArena::reset_at_new_addresses()
{
    u8* fresh = m_base ? map_arena(m_size) : nullptr;
    if (!fresh) {
        reset();
        return;
    }
    // Kept as address space only: no access, no memory behind it.
    mprotect(m_base, m_size, PROT_NONE);
    madvise(m_base, m_size, MADV_DONTNEED);
    m_retired.push_back(m_base);
    m_base = fresh;
    m_used = 0;
}

void CodeArena::commit(size_t bytes)
{
    m_used += (bytes + 15) & ~size_t(15);
    if (m_used > m_size)
        m_used = m_size;
}
