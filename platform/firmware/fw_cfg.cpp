#include "platform/firmware/fw_cfg.h"

#include "mmu/base/state_visitor.h"

#include <algorithm>

namespace {
constexpr u32 ID_TRADITIONAL = 1u << 0, ID_DMA = 1u << 1;
constexpr char DMA_SIGNATURE[] = "QEMU CFG";

u32 byte_swap32(u64 value)
{
    return __builtin_bswap32(static_cast<u32>(value));
}

u64 load_be(const u8* p, unsigned bytes)
{
    u64 v = 0;
    for (unsigned i = 0; i < bytes; ++i)
        v = (v << 8) | p[i];
    return v;
}
constexpr size_t FILE_NAME_SIZE = 56;

void put_be(std::vector<u8>& out, u64 value, unsigned bytes)
{
    for (unsigned i = bytes; i-- > 0;)
        out.push_back(static_cast<u8>(value >> (8 * i)));
}

std::vector<u8> le_bytes(u64 value, unsigned bytes)
{
    std::vector<u8> out;
    for (unsigned i = 0; i < bytes; ++i)
        out.push_back(static_cast<u8>(value >> (8 * i)));
    return out;
}
} // namespace

FwCfg::FwCfg(u16 cpu_count, u64 ram_bytes)
{
    add_bytes(KEY_SIGNATURE, {'Q', 'E', 'M', 'U'});
    add_u32(KEY_ID, ID_TRADITIONAL);
    add_bytes(KEY_UUID, std::vector<u8>(16, 0));
    add_u64(KEY_RAM_SIZE, ram_bytes);
    add_u16(KEY_NOGRAPHIC, 1);
    add_u16(KEY_NB_CPUS, cpu_count);
    add_u16(KEY_MAX_CPUS, cpu_count);
    rebuild_directory();
}

void FwCfg::enable_dma(GuestMemory memory)
{
    m_dma = memory;
    add_u32(KEY_ID, ID_TRADITIONAL | ID_DMA);
}

void FwCfg::select(u16 key)
{
    m_selector = key;
    m_offset = 0;
}

void FwCfg::add_bytes(u16 key, std::vector<u8> data)
{
    m_items[key] = std::move(data);
}
void FwCfg::add_u16(u16 key, u16 value)
{
    add_bytes(key, le_bytes(value, 2));
}
void FwCfg::add_u32(u16 key, u32 value)
{
    add_bytes(key, le_bytes(value, 4));
}
void FwCfg::add_u64(u16 key, u64 value)
{
    add_bytes(key, le_bytes(value, 8));
}

u16 FwCfg::add_file(std::string_view name, std::vector<u8> data)
{
    const u16 key = static_cast<u16>(KEY_FILE_FIRST + m_files.size());
    m_files.push_back(
        File{std::string(name.substr(0, FILE_NAME_SIZE - 1)), key, static_cast<u32>(data.size())});
    add_bytes(key, std::move(data));
    rebuild_directory();
    return key;
}

void FwCfg::rebuild_directory()
{
    std::vector<u8> dir;
    put_be(dir, m_files.size(), 4);
    for (const File& f : m_files) {
        put_be(dir, f.size, 4);
        put_be(dir, f.key, 2);
        put_be(dir, 0, 2);
        std::string name = f.name;
        name.resize(FILE_NAME_SIZE, '\0');
        dir.insert(dir.end(), name.begin(), name.end());
    }
    add_bytes(KEY_FILE_DIR, std::move(dir));
}

u8 FwCfg::next_byte()
{
    auto it = m_items.find(m_selector);
    if (it == m_items.end() || m_offset >= it->second.size())
        return 0;
    return it->second[m_offset++];
}

u64 FwCfg::io_read(u64 offset, unsigned size)
{
    if (offset != 1)
        return 0; // the selector is write-only
    // A wider read of the data port returns consecutive item bytes.
    u64 v = 0;
    for (unsigned i = 0; i < size; ++i)
        v |= u64(next_byte()) << (8 * i);
    return v;
}

void FwCfg::io_write(u64 offset, unsigned size, u64 value)
{
    (void)size;
    if (offset != 0)
        return; // the data port is read-only in this interface version
    select(static_cast<u16>(value));
}

u64 FwCfg::DmaPorts::io_read(u64 offset, unsigned size)
{
    // The address registers read as the signature, byte by byte.
    u64 v = 0;
    for (unsigned i = 0; i < size && offset + i < DMA_PORT_COUNT; ++i)
        v |= u64(u8(DMA_SIGNATURE[offset + i])) << (8 * i);
    return v;
}

void FwCfg::DmaPorts::io_write(u64 offset, unsigned size, u64 value)
{
    // Big-endian registers: a 32-bit OUT of the byte-swapped address (what
    // SeaBIOS and Linux write). Other sizes and offsets are ignored, as QEMU
    // accepts only these.
    if (!m_fw_cfg.m_dma)
        return;
    if (size == 4 && offset == 0) {
        m_fw_cfg.m_dma_address = u64(byte_swap32(value)) << 32;
    } else if (size == 4 && offset == 4) {
        const GuestPhys descriptor = m_fw_cfg.m_dma_address | byte_swap32(value);
        m_fw_cfg.m_dma_address = 0;
        m_fw_cfg.dma_transfer(descriptor);
    } else if (size == 8 && offset == 0) {
        m_fw_cfg.m_dma_address = 0;
        m_fw_cfg.dma_transfer(__builtin_bswap64(value));
    }
}

bool FwCfg::dma_read(GuestPhys address, u32 length)
{
    // The item's bytes from the read position, then zeros past its end.
    auto it = m_items.find(m_selector);
    u32 copied = 0;
    if (it != m_items.end() && m_offset < it->second.size()) {
        copied = std::min<u32>(length, static_cast<u32>(it->second.size() - m_offset));
        if (!m_dma->write(address, it->second.data() + m_offset, copied))
            return false;
        m_offset += copied;
    }
    // In pieces: a hostile length must not make the host allocate 4 GiB;
    // the first piece outside RAM ends the transfer.
    static constexpr u8 ZEROS[4096] = {};
    for (u64 done = copied; done < length;) {
        const u32 piece = static_cast<u32>(std::min<u64>(sizeof ZEROS, length - done));
        if (!m_dma->write(address + done, ZEROS, piece))
            return false;
        done += piece;
    }
    return true;
}

void FwCfg::dma_transfer(GuestPhys descriptor)
{
    u8 access[16];
    if (!m_dma->read(descriptor, access, sizeof access))
        return; // nowhere to report the error
    const u32 control = static_cast<u32>(load_be(access, 4));
    const u32 length = static_cast<u32>(load_be(access + 4, 4));
    const u64 address = load_be(access + 8, 8);
    if (control & DMA_CTL_SELECT)
        select(static_cast<u16>(control >> 16));
    bool ok = true;
    if (control & DMA_CTL_READ) {
        ok = dma_read(address, length);
    } else if (control & DMA_CTL_WRITE) {
        ok = length == 0; // no item is writable
    } else if (control & DMA_CTL_SKIP) {
        auto it = m_items.find(m_selector);
        const u64 size = it == m_items.end() ? 0 : it->second.size();
        m_offset = static_cast<u32>(std::min<u64>(size, u64(m_offset) + length));
    }
    // Done: control reads 0, or the error bit.
    const u8 status[4] = {0, 0, 0, static_cast<u8>(ok ? 0 : DMA_CTL_ERROR)};
    (void)m_dma->write(descriptor, status, sizeof status);
}

void FwCfg::visit_state(StateVisitor& v)
{
    v.section("fw_cfg", 2);
    v.field("selector", m_selector);
    v.field("offset", m_offset);
    v.field("dma_address", m_dma_address);
}
