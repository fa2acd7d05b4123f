#include "platform/storage/bus_master_dma.h"

#include "mmu/base/state_visitor.h"

#include <algorithm>

namespace {
constexpr unsigned BMIC = 0, BMIS = 2, BMIDTP = 4;
constexpr u8 BMIC_WRITABLE = BusMasterDma::BMIC_START | BusMasterDma::BMIC_WRITE_TO_MEMORY;
constexpr u8 BMIS_WRITABLE = BusMasterDma::BMIS_DRIVE0_DMA | BusMasterDma::BMIS_DRIVE1_DMA;
constexpr u8 BMIS_WRITE_ONE_TO_CLEAR = BusMasterDma::BMIS_ERROR | BusMasterDma::BMIS_INTERRUPT;
constexpr u16 PRD_END_OF_TABLE = 0x8000;
} // namespace

void BusMasterDma::reset()
{
    m_command = 0;
    m_status = 0;
    m_prd_table = 0;
}

u64 BusMasterDma::read(u64 offset, unsigned size) const
{
    u64 value = 0;
    for (unsigned i = 0; i < size && offset + i < PORT_COUNT; ++i) {
        u8 byte = 0;
        switch (offset + i) {
        case BMIC:
            byte = m_command;
            break;
        case BMIS:
            byte = m_status;
            break;
        case BMIDTP:
        case BMIDTP + 1:
        case BMIDTP + 2:
        case BMIDTP + 3:
            byte = static_cast<u8>(m_prd_table >> (8 * (offset + i - BMIDTP)));
            break;
        default:
            break;
        }
        value |= u64(byte) << (8 * i);
    }
    return value;
}

void BusMasterDma::write(u64 offset, unsigned size, u64 value)
{
    for (unsigned i = 0; i < size && offset + i < PORT_COUNT; ++i) {
        const u8 byte = static_cast<u8>(value >> (8 * i));
        switch (offset + i) {
        case BMIC: {
            const bool was_started = started();
            m_command = byte & BMIC_WRITABLE;
            // Start 1 -> 0 stops the engine (SFF-8038i 1.1); 0 -> 1 starts it
            // at the top of the table.
            if (!started())
                m_status &= static_cast<u8>(~BMIS_ACTIVE);
            else if (!was_started) {
                m_status |= BMIS_ACTIVE;
                if (m_on_start)
                    m_on_start();
            }
            break;
        }
        case BMIS:
            m_status = static_cast<u8>((m_status & ~BMIS_WRITABLE) | (byte & BMIS_WRITABLE));
            m_status &= static_cast<u8>(~(byte & BMIS_WRITE_ONE_TO_CLEAR));
            break;
        case BMIDTP:
        case BMIDTP + 1:
        case BMIDTP + 2:
        case BMIDTP + 3: {
            const unsigned shift = 8 * static_cast<unsigned>(offset + i - BMIDTP);
            m_prd_table = (m_prd_table & ~(0xFFu << shift)) | (u32(byte) << shift);
            m_prd_table &= ~3u; // dword aligned: bits 1:0 read as zero
            break;
        }
        default:
            break;
        }
    }
}

BusMasterDma::Result BusMasterDma::transfer(std::span<u8> buffer, bool to_memory)
{
    if (!started() || !(m_status & BMIS_ACTIVE) || (m_master_enabled && !m_master_enabled()))
        return Result::NotStarted;
    auto fail = [this] {
        m_status = static_cast<u8>((m_status | BMIS_ERROR) & ~BMIS_ACTIVE);
        return Result::Error;
    };
    u64 moved = 0;
    const u32 region = m_prd_table & 0xFFFF0000u;
    u32 entry_offset = m_prd_table & 0xFFFFu;
    for (unsigned i = 0; i < MAX_PRD_ENTRIES; ++i) {
        u8 entry[8];
        if (!m_memory.read(region | entry_offset, entry, sizeof entry))
            return fail();
        // Bit 0 of the address is reserved (regions start on a word).
        const u32 address = (u32(entry[0]) | u32(entry[1]) << 8 | u32(entry[2]) << 16 |
                             u32(entry[3]) << 24) & ~1u;
        u32 count = u32(entry[4]) | u32(entry[5]) << 8;
        count &= ~1u;
        if (count == 0)
            count = 65536; // a byte count of 0 means 64 KiB
        const bool last = (u16(entry[6]) | u16(entry[7]) << 8) & PRD_END_OF_TABLE;
        const u64 n = std::min<u64>(count, buffer.size() - moved);
        if (n) {
            std::span<u8> part = buffer.subspan(moved, n);
            const bool ok = to_memory ? m_memory.write(address, part) : m_memory.read(address, part);
            if (!ok)
                return fail();
            moved += n;
        }
        if (moved == buffer.size()) {
            // The table ends with the transfer: the engine goes idle. A
            // longer table leaves Active set (spec table 1, "PRD larger").
            if (last && n == count)
                m_status &= static_cast<u8>(~BMIS_ACTIVE);
            return Result::Done;
        }
        if (last) {
            m_status &= static_cast<u8>(~BMIS_ACTIVE);
            return Result::Short;
        }
        entry_offset = (entry_offset + 8) & 0xFFFFu;
    }
    // Eight thousand entries and no end: the walk would go round the region
    // for ever.
    return fail();
}

void BusMasterDma::visit_state(StateVisitor& v)
{
    v.section("bus-master-dma", 1);
    v.field("command", m_command);
    v.field("status", m_status);
    v.field("prd_table", m_prd_table);
}
