#include "accel/kvm/kvm_rom_slots.h"

#include "accel/kvm/kvm_vm.h"

#include <cstdio>
#include <cstring>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

namespace {

constexpr u64 PAGE = 4096;

u8* map_pages(u64 size)
{
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : static_cast<u8*>(p);
}

} // namespace

KvmRomSlots::KvmRomSlots(int vm_fd, PhysicalMemory& memory, u32 first_slot)
    : m_vm_fd(vm_fd), m_memory(memory), m_first_slot(first_slot)
{
}

KvmRomSlots::~KvmRomSlots()
{
    if (m_window_copy)
        munmap(m_window_copy, GRANULES * GRANULE);
    for (const OwnedPages& pages : m_rom_copies)
        munmap(pages.host, pages.size);
}

bool KvmRomSlots::set_slot(u32 slot, GuestPhys base, u64 size, u8* host, bool read_only)
{
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.flags = read_only ? KVM_MEM_READONLY : 0;
    region.guest_phys_addr = base;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<u64>(host);
    if (ioctl(m_vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        std::fprintf(stderr, "viridian: KVM_SET_USER_MEMORY_REGION (ROM at 0x%llx): %s\n",
                     static_cast<unsigned long long>(base), errno_text().c_str());
        return false;
    }
    return true;
}

KvmRomSlots::Slot KvmRomSlots::wanted(unsigned granule)
{
    const GuestPhys base = WINDOW_BASE + granule * GRANULE;
    if (m_memory.has_mmio(base, GRANULE))
        return {};
    const PhysicalMemory::ShadowAccess access = m_memory.shadow_access(base);
    if (access.read_ram) {
        // The backing of the legacy hole, where the range below 4 GiB keeps it.
        u8* ram = m_memory.ram_ranges()[0].host + base;
        return {access.write_ram ? Kind::Ram : Kind::RamReadOnly, ram};
    }
    // Reads reach a ROM or nothing; ROMs never change, so the copy is made
    // again only when the granule comes back from RAM.
    u8* copy = m_window_copy + granule * GRANULE;
    for (u64 offset = 0; offset < GRANULE; offset += 8) {
        const u64 value = m_memory.read(base + offset, 8);
        std::memcpy(copy + offset, &value, 8);
    }
    return {Kind::Copy, copy};
}

bool KvmRomSlots::update()
{
    if (!m_window_copy)
        return true; // not mapped (no read-only slots in this KVM)
    bool ok = true;
    for (unsigned g = 0; g < GRANULES; ++g) {
        const Slot now = wanted(g);
        Slot& had = m_granules[g];
        if (now.kind == had.kind && now.host == had.host)
            continue;
        const u32 slot = m_first_slot + g;
        const GuestPhys base = WINDOW_BASE + g * GRANULE;
        // KVM changes neither the flags nor the host address of a slot:
        // it is deleted (size 0) and made again.
        if (had.kind != Kind::Unmapped && !set_slot(slot, base, 0, had.host, false))
            ok = false;
        had = {};
        if (now.kind == Kind::Unmapped)
            continue;
        if (set_slot(slot, base, GRANULE, now.host, now.kind != Kind::Ram))
            had = now;
        else
            ok = false;
    }
    return ok;
}

bool KvmRomSlots::map_rom_outside_window(const PhysicalMemory::RomImage& rom)
{
    const u64 size = (rom.bytes.size() + PAGE - 1) & ~(PAGE - 1);
    // Only a ROM on whole pages of its own: a slot's pages are all its.
    if (rom.base % PAGE != 0 || m_memory.has_mmio(rom.base, size))
        return true;
    for (const PhysicalMemory::RomImage& other : m_memory.roms())
        if (other.base != rom.base && other.base < rom.base + size && rom.base < other.base + other.bytes.size())
            return true;
    for (const PhysicalMemory::RamRange& ram : m_memory.ram_ranges())
        if (ram.base < rom.base + size && rom.base < ram.base + ram.size)
            return true;
    u8* copy = map_pages(size);
    if (!copy)
        return false;
    std::memset(copy, 0xFF, size); // beyond the image: nothing, which reads as all ones
    std::memcpy(copy, rom.bytes.data(), rom.bytes.size());
    m_rom_copies.push_back({copy, size});
    return set_slot(m_first_slot + GRANULES + static_cast<u32>(m_rom_copies.size() - 1), rom.base, size, copy,
                    true);
}

bool KvmRomSlots::map()
{
    if (ioctl(m_vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0)
        return true; // no read-only slots: ROM reads go on exiting
    m_window_copy = map_pages(GRANULES * GRANULE);
    if (!m_window_copy)
        return false;
    for (const PhysicalMemory::RomImage& rom : m_memory.roms())
        if (rom.base >= PhysicalMemory::SHADOW_END && !map_rom_outside_window(rom))
            return false;
    return update();
}
