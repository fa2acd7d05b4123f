#include "platform/testdev/debug_exit.h"

u64 DebugExit::io_read(u64, unsigned)
{
    return 0;
}

void DebugExit::io_write(u64, unsigned size, u64 value)
{
    u64 mask = size_mask(size);
    if (m_handler)
        m_handler(exit_status(value & mask));
}
