#include "platform/firmware/fw_cfg.h"

#include "mmu/base/state_visitor.h"

namespace {
constexpr u32 ID_TRADITIONAL = 1u << 0;
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
    m_selector = static_cast<u16>(value);
    m_offset = 0;
}

void FwCfg::visit_state(StateVisitor& v)
{
    v.section("fw_cfg", 1);
    v.field("selector", m_selector);
    v.field("offset", m_offset);
}
