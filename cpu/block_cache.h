// Decoded basic blocks keyed by the guest physical address of their first
// instruction and the code size they were decoded for. A block never spans
// a page, so a write to a page invalidates exactly the blocks in it.
#pragma once

#include "cpu/insn.h"
#include "mmu/physical_memory.h"

#include <memory>
#include <unordered_map>
#include <vector>

struct Block {
    GuestPhys phys = 0;
    u8 code_size = 4;
    std::vector<Insn> insns;
    // The block that last followed this one, remembered so the run loop can
    // skip translation and lookup. Valid only while the linear address, the
    // CPU's translation epoch and the cache generation are all unchanged.
    mutable const Block* successor = nullptr;
    mutable u64 successor_linear = ~0ull;
    mutable u64 successor_epoch = ~0ull;
    mutable u64 successor_generation = ~0ull;
    mutable u8 successor_cpl = 0xFF;
};

class BlockCache {
public:
    static constexpr unsigned MAX_BLOCK_INSNS = 64;

    const Block* find(GuestPhys phys, unsigned code_size) const
    {
        auto it = m_blocks.find(key(phys, code_size));
        return it == m_blocks.end() ? nullptr : it->second.get();
    }
    // Takes ownership; the caller has marked the page as code in PhysicalMemory.
    const Block* insert(std::unique_ptr<Block> block);
    // Drops every block that starts in `page`. Blocks are retired, not freed,
    // until release_retired(), because the CPU may be executing one of them.
    void invalidate_page(GuestPhys page);
    void release_retired() { m_retired.clear(); }
    void clear();
    // Changes whenever a block is invalidated: the CPU compares it after each
    // instruction to stop executing a block whose code was overwritten.
    u64 generation() const { return m_generation; }
    size_t size() const { return m_blocks.size(); }
    // A translation epoch no vCPU sharing this cache has used: chained
    // successors record the epoch of the vCPU that linked them, and vCPUs
    // with different page tables must never match each other's links.
    u64 new_translation_epoch() { return ++m_translation_epochs; }

private:
    static u64 key(GuestPhys phys, unsigned code_size) { return (phys << 2) | (code_size >> 2); }
    std::unordered_map<u64, std::unique_ptr<Block>> m_blocks;
    std::unordered_map<u64, std::vector<u64>> m_keys_by_page;
    std::vector<std::unique_ptr<Block>> m_retired;
    u64 m_generation = 0;
    u64 m_translation_epochs = 0;
};
