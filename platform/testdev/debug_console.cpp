#include "platform/testdev/debug_console.h"

u64 DebugConsole::io_read(u64 offset, unsigned size)
{
    (void)offset;
    (void)size;
    return READBACK;
}

void DebugConsole::io_write(u64 offset, unsigned size, u64 value)
{
    (void)offset;
    (void)size;
    if (m_sink)
        m_sink(static_cast<u8>(value));
}
