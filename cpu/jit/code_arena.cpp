#include "cpu/jit/code_arena.h"

#include <sys/mman.h>

CodeArena::CodeArena(size_t bytes)
{
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return; // no translations: the interpreter runs everything
    m_base = static_cast<u8*>(p);
    m_size = bytes;
}

CodeArena::~CodeArena()
{
    if (m_base)
        munmap(m_base, m_size);
}

void CodeArena::commit(size_t bytes)
{
    m_used += (bytes + 15) & ~size_t(15);
    if (m_used > m_size)
        m_used = m_size;
}
