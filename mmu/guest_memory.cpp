#include "mmu/guest_memory.h"

bool GuestMemory::read(GuestPhys addr, std::span<u8> out) const
{
    return m_memory->read_bytes(addr, out.data(), out.size());
}

bool GuestMemory::write(GuestPhys addr, std::span<const u8> data) const
{
    return m_memory->write_bytes(addr, data.data(), data.size());
}

bool GuestMemory::read(GuestPhys addr, void* out, u64 len) const
{
    return m_memory->read_bytes(addr, out, len);
}

bool GuestMemory::write(GuestPhys addr, const void* data, u64 len) const
{
    return m_memory->write_bytes(addr, data, len);
}
