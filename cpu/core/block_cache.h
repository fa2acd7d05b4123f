// Decoded basic blocks keyed by the guest physical address of their first
// instruction and the code size they were decoded for. A block never spans
// a page, except one whose single instruction straddles two: it is filed
// under both, so a write to either page invalidates exactly its blocks.
#pragma once

#include "cpu/decoder/insn.h"
#include "cpu/jit/code_arena.h"
#include "mmu/physical_memory.h"

#include <memory>
#include <unordered_map>
#include <vector>

class PerfMap;

// A block translated to host code (cpu/jit/block_translator.h).
using NativeBlock = void (*)(Cpu* cpu, CpuState* state);

struct Block {
    static constexpr GuestPhys NO_TAIL = ~GuestPhys{0};
    GuestPhys phys = 0;
    // For a block of one instruction that straddles into the next page: the
    // physical page holding the rest of it.
    GuestPhys tail_page = NO_TAIL;
    u8 code_size = 4;
    std::vector<Insn> insns;
    // Host code for the whole block, once it has run often enough to be
    // worth translating (Cpu::execute_block counts `runs`).
    mutable NativeBlock native = nullptr;
    // Where translated code that ends in this block's predecessor enters it
    // directly (past the register set-up), and its instruction count.
    mutable const void* native_chained = nullptr;
    mutable u32 native_insns = 0;
    mutable u32 runs = 0;
    // The two blocks that last followed this one (a conditional branch has
    // two), remembered so the run loop can skip translation and lookup. A
    // link is valid only while the linear address, the CPU's link epoch of
    // its kind, the cache generation and the CPL are all unchanged. A link
    // to code the TLB translated through a global entry (kernel text) keeps
    // the global epoch, which a CR3 write leaves alone, as it leaves the
    // entry: the link lives as long as the translation it stands for.
    struct Link {
        const Block* block = nullptr;
        u64 linear = ~0ull;
        u64 epoch = ~0ull;
        u64 generation = ~0ull;
        u8 cpl = 0xFF;
        u8 global = 0; // 1: `epoch` is the vCPU's global link epoch (Cpu::m_link_epochs)
    };
    mutable Link successors[2];
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
    // The same counter, for loops that re-read it after every instruction.
    const u64& generation_counter() const { return m_generation; }
    size_t size() const { return m_blocks.size(); }
    // A link epoch no vCPU sharing this cache has used: chained successors
    // record the epoch of the vCPU that linked them, and vCPUs with
    // different page tables must never match each other's links.
    u64 new_translation_epoch() { return ++m_translation_epochs; }

    // Executable memory for the translations of these blocks, shared by the
    // vCPUs as the blocks are. When it is full, drop_translations() forgets
    // every translation and the arena starts afresh (blocks run interpreted
    // until they are translated again).
    CodeArena& code_arena() { return m_code; }
    void drop_translations();
    // Where each new translation is announced for host profilers (none by
    // default; the machine's --perfmap option sets one).
    void set_perf_map(PerfMap* map) { m_perf_map = map; }
    PerfMap* perf_map() const { return m_perf_map; }

private:
    static u64 key(GuestPhys phys, unsigned code_size) { return (phys << 2) | (code_size >> 2); }
    std::unordered_map<u64, std::unique_ptr<Block>> m_blocks;
    std::unordered_map<u64, std::vector<u64>> m_keys_by_page;
    std::vector<std::unique_ptr<Block>> m_retired;
    u64 m_generation = 0;
    u64 m_translation_epochs = 0;
    CodeArena m_code{64u << 20};
    PerfMap* m_perf_map = nullptr;
};
