#include "cpu/core/block_cache.h"

const Block* BlockCache::insert(std::unique_ptr<Block> block)
{
    u64 k = key(block->phys, block->code_size);
    m_keys_by_page[block->phys >> 12].push_back(k);
    if (block->tail_page != Block::NO_TAIL)
        m_keys_by_page[block->tail_page >> 12].push_back(k);
    auto& slot = m_blocks[k];
    if (slot)
        m_retired.push_back(std::move(slot));
    slot = std::move(block);
    return slot.get();
}

void BlockCache::invalidate_page(GuestPhys page)
{
    auto it = m_keys_by_page.find(page >> 12);
    if (it == m_keys_by_page.end())
        return;
    for (u64 k : it->second) {
        auto b = m_blocks.find(k);
        if (b != m_blocks.end()) {
            m_retired.push_back(std::move(b->second));
            m_blocks.erase(b);
        }
    }
    m_keys_by_page.erase(it);
    ++m_generation;
}

void BlockCache::clear()
{
    for (auto& [k, b] : m_blocks)
        m_retired.push_back(std::move(b));
    m_blocks.clear();
    m_keys_by_page.clear();
    ++m_generation;
}

void BlockCache::drop_translations()
{
    for (auto& [k, b] : m_blocks) {
        b->native = nullptr;
        b->native_chained = nullptr;
        b->runs = 0;
    }
    for (auto& b : m_retired) {
        b->native = nullptr;
        b->native_chained = nullptr;
    }
    // With a profiler's map, translations must never share an address.
    if (m_perf_map)
        m_code.reset_at_new_addresses();
    else
        m_code.reset();
}
