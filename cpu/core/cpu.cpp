#include "cpu/core/cpu.h"

#include "cpu/decoder/decoder.h"
#include "cpu/core/fast_handlers.h"
#include "cpu/decoder/handler_table.h"
#include "cpu/jit/block_translator.h"
#include "cpu/jit/perf_map.h"

Cpu::Cpu(CpuState& state, PhysicalMemory& memory, PortBus& port_bus, MsrBus& msr_bus,
         const CpuidModel& cpuid_model, unsigned apic, BlockCache* shared_blocks)
    : s(state), mem(memory), ports(port_bus), msrs(msr_bus), cpuid(cpuid_model), apic_id(apic),
      m_own_blocks(shared_blocks ? nullptr : std::make_unique<BlockCache>()),
      m_blocks(shared_blocks ? *shared_blocks : *m_own_blocks), m_device_accesses(memory.mmio_access_counter())
{
    // Writes to pages we decoded from (stores, DMA, loaders) drop those blocks.
    if (!shared_blocks) {
        BlockCache& blocks = m_blocks;
        mem.set_code_write_listener([&blocks](GuestPhys page) { blocks.invalidate_page(page); });
    }
}

void Cpu::reset()
{
    const bool ferr = s.events.ferr;
    s = power_on_state(apic_id);
    if (ferr && m_fpu_pins) // the x87 is reset: its error is gone
        m_fpu_pins->set_ferr(false);
    lf = LazyFlags{};
    m_tlb.flush_all();
    new_link_epochs(true);
    sync_debug_registers(); // DR7 is back to no breakpoints: nothing watched
}

void Cpu::load_state(const CpuState& state)
{
    s = state;
    lf = LazyFlags{}; // RFLAGS in `state` is whole
    // An MMX switch's undo belongs to the instruction that made it; a state
    // loaded over a running vCPU (a replay put back) must not let a later
    // fault at the same retired count undo it.
    m_mmx_undo.armed = false;
    m_tlb.flush_all();
    new_link_epochs(true);
    sync_debug_registers();
    if (m_fpu_pins)
        m_fpu_pins->set_ferr(s.events.ferr);
}

void Cpu::set_gpr(unsigned r, unsigned size, u64 v)
{
    switch (size) {
    case 1:
        s.gpr[r] = (s.gpr[r] & ~0xFFull) | (v & 0xFF);
        break;
    case 2:
        s.gpr[r] = (s.gpr[r] & ~0xFFFFull) | (v & 0xFFFF);
        break;
    case 4:
        s.gpr[r] = v & 0xFFFFFFFF;
        break;
    default:
        s.gpr[r] = v;
        break;
    }
}

// ---- Flags ----

void Cpu::materialize_flags()
{
    if (lf.op == FlagOp::None)
        return;
    s.rflags = (s.rflags & ~rf::ARITH) | compute_arith_flags(lf);
    lf.op = FlagOp::None;
}

u64 Cpu::rflags()
{
    materialize_flags();
    return s.rflags;
}

void Cpu::set_flag(u64 bit, bool on)
{
    materialize_flags();
    if (on)
        s.rflags |= bit;
    else
        s.rflags &= ~bit;
}

bool Cpu::condition_from_rflags(unsigned cc)
{
    const u64 f = rflags();
    bool result;
    switch (cc >> 1) {
    case 0: result = f & rf::OF; break;
    case 1: result = f & rf::CF; break;
    case 2: result = f & rf::ZF; break;
    case 3: result = f & (rf::CF | rf::ZF); break;
    case 4: result = f & rf::SF; break;
    case 5: result = f & rf::PF; break;
    case 6: result = !(f & rf::SF) != !(f & rf::OF); break;
    default: result = (f & rf::ZF) || (!(f & rf::SF) != !(f & rf::OF)); break;
    }
    return (cc & 1) ? !result : result;
}

void Cpu::write_rflags(u64 value, u64 writable)
{
    lf.op = FlagOp::None;
    s.rflags = (s.rflags & ~writable) | (value & writable) | rf::FIXED1;
    s.rflags &= ~(u64(1) << 3 | u64(1) << 5 | u64(1) << 15) & 0x3FFFFF;
}

// ---- Operands ----

bool Cpu::read_operand_slow(const Insn& insn, unsigned index, u64& value)
{
    const Operand& op = insn.op[index];
    switch (op.kind) {
    case OpKind::Gpr:
        value = s.gpr[op.reg] & size_mask(op.size);
        return true;
    case OpKind::GprHigh8:
        value = (s.gpr[op.reg] >> 8) & 0xFF;
        return true;
    case OpKind::Mem:
        return read_mem(insn.mem.seg, effective_address(insn), op.size, value);
    case OpKind::Imm:
        value = insn.imm; // already sign- or zero-extended; callers mask to their size
        return true;
    case OpKind::Seg:
        value = s.seg[op.reg].selector;
        return true;
    default:
        return raise_ud();
    }
}

bool Cpu::write_operand_slow(const Insn& insn, unsigned index, u64 value)
{
    const Operand& op = insn.op[index];
    switch (op.kind) {
    case OpKind::Gpr:
        set_gpr(op.reg, op.size, value);
        return true;
    case OpKind::GprHigh8:
        s.gpr[op.reg] = (s.gpr[op.reg] & ~0xFF00ull) | ((value & 0xFF) << 8);
        return true;
    case OpKind::Mem:
        return write_mem(insn.mem.seg, effective_address(insn), op.size, value);
    default:
        return raise_ud();
    }
}

// ---- Fetch and run ----

bool Cpu::fetch_bytes(u64 linear, u8* out, unsigned len)
{
    for (unsigned i = 0; i < len;) {
        SoftTlb::Entry* e;
        u64 addr = linear + i;
        if (!s.in_64bit_code())
            addr &= 0xFFFFFFFF;
        if (!translate(addr, Access::Execute, access_is_user(false), e))
            return false;
        unsigned in_page = static_cast<unsigned>(PAGE_SIZE - (addr & 0xFFF));
        unsigned n = len - i < in_page ? len - i : in_page;
        for (unsigned k = 0; k < n; ++k)
            out[i + k] = e->host_page ? e->host_page[(addr & 0xFFF) + k]
                                      : static_cast<u8>(mem.read(e->phys_page + (addr & 0xFFF) + k, 1, apic_id));
        i += n;
    }
    return true;
}

// The linear address of the page after the one holding `linear`, as
// instruction fetch wraps it (at 4 GiB outside 64-bit code).
u64 Cpu::next_page(u64 linear) const
{
    u64 next = (linear | 0xFFF) + 1;
    return s.in_64bit_code() ? next : next & 0xFFFFFFFF;
}

bool Cpu::fetch_block(const Block*& block, u64 linear)
{
    ++m_block_lookups;
    SoftTlb::Entry* e;
    if (!translate(linear, Access::Execute, access_is_user(false), e))
        return false;
    const GuestPhys phys = e->phys_page | (linear & 0xFFF);
    const unsigned csize = code_size();
    const u64 key = (phys << 2) | (csize >> 2);
    const u64 generation = m_blocks.generation();
    FastBlock& fast = m_fast_blocks[(phys ^ (phys >> 14)) % FAST_BLOCKS];
    if (fast.key == key && fast.generation == generation) {
        block = fast.block;
    } else {
        if ((block = m_blocks.find(phys, csize)))
            fast = FastBlock{key, generation, block};
    }
    // Links to this block keep the global epoch when its page translated
    // through a global entry (link_to_fetched).
    m_fetched_global_size = e->global && e != &m_scratch_entry ? e->page_size : 0;
    if (block) {
        // Only an instruction starting in a page's last 14 bytes can reach
        // the next page: other blocks are not even touched here.
        if ((phys & 0xFFF) <= PAGE_SIZE - 15 || block->tail_page == Block::NO_TAIL)
            return true;
        // Its one instruction ends on the next page: valid while that page
        // maps to the frame it was decoded from (a fault there is the fetch's).
        SoftTlb::Entry* tail;
        if (!translate(next_page(linear), Access::Execute, access_is_user(false), tail))
            return false;
        if (tail->phys_page == block->tail_page)
            return true;
    }

    ++m_blocks_decoded;
    auto fresh = std::make_unique<Block>();
    fresh->phys = phys;
    fresh->code_size = static_cast<u8>(csize);
    u64 at = linear;
    bool cacheable = e->host_page != nullptr; // never cache code fetched from MMIO
    while (fresh->insns.size() < BlockCache::MAX_BLOCK_INSNS) {
        unsigned in_page = static_cast<unsigned>(PAGE_SIZE - (at & 0xFFF));
        u8 bytes[16];
        unsigned avail = in_page < 15 ? in_page : 15;
        if (!fetch_bytes(at, bytes, avail))
            return false;
        Insn insn;
        DecodeStatus st = decode_insn(csize, bytes, avail, insn);
        if (st == DecodeStatus::NeedMoreBytes) {
            // The instruction straddles a page boundary: it makes a block of
            // its own, which also depends on the frame behind the next page
            // (checked at every lookup; writes to it invalidate the block).
            if (!fresh->insns.empty())
                break;
            if (!fetch_bytes(at, bytes, 15))
                return false;
            st = decode_insn(csize, bytes, 15, insn);
            SoftTlb::Entry* tail;
            if (!translate(next_page(at), Access::Execute, access_is_user(false), tail))
                return false;
            if (tail->host_page)
                fresh->tail_page = tail->phys_page;
            else
                cacheable = false;
        }
        if (st == DecodeStatus::Invalid) {
            insn = Insn{};
            insn.handler = op_unimplemented_decode;
            insn.length = 1;
        } else {
            specialize_handler(insn, csize);
        }
        fresh->insns.push_back(insn);
        at += insn.length;
        if (st != DecodeStatus::Ok || insn_ends_block(insn) || !cacheable ||
            (at & 0xFFF) == 0 || ((at ^ linear) & PAGE_MASK))
            break;
    }
    if (!cacheable) {
        m_uncached = std::move(fresh);
        block = m_uncached.get();
        return true;
    }
    mem.mark_code(phys);
    if (fresh->tail_page != Block::NO_TAIL)
        mem.mark_code(fresh->tail_page);
    block = m_blocks.insert(std::move(fresh));
    if (generation == m_blocks.generation())
        fast = FastBlock{key, generation, block};
    return true;
}

bool Cpu::check_pending_events()
{
    if (s.events.task_switch_trap) [[unlikely]] {
        s.events.task_switch_trap = false;
        deliver_debug_exception(dbg::DR6_BT);
        return false;
    }
    if (s.events.interrupt_shadow)
        return true;
    if (m_interrupts && !s.events.nmi_blocked && m_interrupts->take_nmi())
        s.events.nmi = true;
    if (s.events.nmi && !s.events.nmi_blocked) {
        s.events.nmi = false;
        s.events.halted = false;
        s.events.nmi_blocked = true;
        deliver_event(VEC_NMI, EventKind::Nmi, false, 0);
        return false;
    }
    if (m_interrupts && (s.rflags & rf::IF) && m_interrupts->interrupt_pending()) {
        s.events.halted = false;
        u8 vector = m_interrupts->acknowledge_interrupt();
        ++m_external_interrupts;
        deliver_event(vector, EventKind::External, false, 0);
        return false;
    }
    return true;
}

bool Cpu::link_leads_to(const Block::Link& link, u64 linear, u64 generation, u8 cpl, unsigned csize) const
{
    // The block is read only once the generation says it is still alive.
    return link.linear == linear && link.epoch == m_link_epochs[link.global] && link.generation == generation &&
           link.cpl == cpl && link.block->code_size == csize;
}

const Block* Cpu::chained_successor(const Block& previous, u64 linear, u64 generation, u8 cpl,
                                    unsigned csize) const
{
    for (const Block::Link& link : previous.successors)
        if (link_leads_to(link, linear, generation, cpl, csize))
            return link.block;
    return nullptr;
}

Block::Link Cpu::link_to_fetched(const Block& block, u64 linear, u64 generation, u8 cpl)
{
    // A block that straddles two pages depends on two translations: its
    // links never keep the global epoch.
    const u8 global = m_fetched_global_size && block.tail_page == Block::NO_TAIL ? 1 : 0;
    if (global) {
        if (m_fetched_global_size > (2u << 20))
            m_global_link_huge = true;
        m_global_link_regions.set(global_link_region(linear));
    }
    return Block::Link{&block, linear, m_link_epochs[global], generation, cpl, global};
}

void Cpu::link_successor(const Block& previous, const Block::Link& link)
{
    Block::Link* links = previous.successors;
    links[1] = links[0];
    links[0] = link;
}

void Cpu::new_link_epochs(bool include_global)
{
    m_link_epochs[0] = m_blocks.new_translation_epoch();
    if (include_global) {
        m_link_epochs[1] = m_blocks.new_translation_epoch();
        m_global_link_regions.reset();
        m_global_link_huge = false;
    }
}

void Cpu::invalidate_page(u64 linear)
{
    m_tlb.flush_page(linear);
    // A global link into the page's region (or through a page larger than
    // 2 MiB, which an INVLPG anywhere in it drops) must go with the TLB entry.
    const bool global_link_there = m_global_link_huge || m_global_link_regions.test(global_link_region(linear));
    new_link_epochs(global_link_there);
}

const Block* Cpu::execute_block(const Block& block, u64 end)
{
    // The common case needs none of the per-instruction bookkeeping below:
    // tracing, single-stepping, breakpoints (RF, DR7) and the STI/MOV SS
    // shadow are rare, and every instruction that can start them ends its block.
    if (m_trace || (s.rflags & (rf::TF | rf::RF)) || s.events.interrupt_shadow ||
        debug_active() || (m_gdb_any && gdb_block_needs_care(block))) [[unlikely]] {
        execute_block_carefully(block, end);
        return &block;
    }
    // At most `end - m_retired` instructions (run() guarantees at least one),
    // so the loop tests no budget; 64-bit code has no CS limit to check.
    const size_t budget_left = static_cast<size_t>(end - m_retired);
    const size_t count = std::min(block.insns.size(), budget_left);
    if (!s.in_64bit_code()) [[unlikely]] {
        execute_insns<true>(block.insns.data(), count);
        return &block;
    }
    // Translated code runs whole blocks with the flat 64-bit memory fast
    // path inlined, so it needs the whole block in the budget and no
    // alignment checking (block_translator.h).
    if (count == block.insns.size() && !alignment_checks_armed() &&
        &block != m_uncached.get()) [[likely]] {
        if (block.native) {
            // With debugger breakpoints set, translated code goes into no
            // successor: that block may hold one (gdb_block_needs_care).
            m_native_end = m_gdb_any ? m_retired : end;
            ++m_native_entries;
            block.native(this, &s);
            return m_last_native_block;
        }
        if (m_jit_enabled && ++block.runs == m_jit_threshold)
            translate_to_host(block);
    }
    execute_insns<false>(block.insns.data(), count);
    return &block;
}

void Cpu::translate_to_host(const Block& block)
{
    CodeArena& arena = m_blocks.code_arena();
    if (translate_block(*this, block, arena) == TranslateResult::ArenaFull) {
        m_blocks.drop_translations(); // start the arena afresh; this block comes round again
        if (translate_block(*this, block, arena) == TranslateResult::ArenaFull)
            return;
    }
    if (PerfMap* map = m_blocks.perf_map(); map && block.native) [[unlikely]] {
        // The translation is the last thing committed to the arena; the
        // block starts at s.rip (execute_block is called at its start).
        const u8* start = reinterpret_cast<const u8*>(block.native);
        map->add(start, static_cast<size_t>(arena.cursor() - start), s.rip, block.phys);
    }
}

Cpu::JitLayout Cpu::jit_layout() const
{
    auto from = [](const void* base, const void* member) {
        return static_cast<i32>(static_cast<const char*>(member) - static_cast<const char*>(base));
    };
    JitLayout l{};
    l.gpr = from(&s, s.gpr.data());
    l.rip = from(&s, &s.rip);
    l.rflags = from(&s, &s.rflags);
    l.cr0 = from(&s, &s.cr0);
    l.ss_attr = from(&s, &s.seg[SS].attr);
    l.seg_base = from(&s, &s.seg[0].base);
    l.seg_stride = from(&s.seg[0], &s.seg[1]);
    l.retired = from(this, &m_retired);
    l.end_block = from(this, &m_end_block);
    l.next_rip = from(this, &next_rip);
    l.lazy_flags = from(this, &lf);
    l.tlb_supervisor = from(this, m_tlb.half(false));
    l.tlb_user = from(this, m_tlb.half(true));
    l.native_end = from(this, &m_native_end);
    l.link_epochs = from(this, m_link_epochs.data());
    l.last_native_block = from(this, &m_last_native_block);
    l.device_accesses = from(this, &m_device_accesses);
    l.generation = &m_blocks.generation_counter();
    return l;
}

template <bool CheckLimit>
void Cpu::execute_insns(const Insn* insn, size_t count)
{
    const u64& generation_counter = m_blocks.generation_counter();
    const u64 generation = generation_counter;
    const u64 rip_mask = ip_mask();
    u64 rip = s.rip;
    for (const Insn* const last = insn + count; insn != last; ++insn) {
        if (CheckLimit && rip + insn->length - 1 > s.seg[CS].limit) [[unlikely]] {
            raise_gp(0);
            handle_fault();
            return;
        }
        next_rip = (rip + insn->length) & rip_mask;
        m_end_block = false;
        if (!insn->handler(*this, *insn)) [[unlikely]] {
            handle_fault();
            return;
        }
        s.rip = rip = next_rip;
        ++m_retired;
        if (m_end_block | (generation != generation_counter))
            return;
    }
}

void Cpu::drop_stale_writes()
{
    if (mem.write_barrier() != m_write_barrier_seen) [[unlikely]] {
        m_tlb.drop_stale_writes(mem);
        m_write_barrier_seen = mem.write_barrier();
    }
}

RunExit Cpu::run(u64 budget)
{
    m_stop_requested = false;
    m_debug_event = DebugEvent{};
    // A debugger's single-step: one instruction or one event.
    if (m_guest_debug.single_step) [[unlikely]]
        budget = 1;
    // The dirty log may have cleaned pages since the last run (between
    // slices): even an interrupt frame pushed below must mark its page.
    drop_stale_writes();
    const Block* previous = nullptr;
    // Every event delivered (an interrupt, a fault, one whose handler faults
    // again at once) counts against the budget like an instruction, so that
    // run() always returns. It is counted where it is delivered, never by
    // whether a block retired nothing: translated code leaves some blocks
    // early (after STAC, for one), so where blocks begin differs between
    // the interpreter and the JIT, and the count must not.
    const u64 end = units() + budget;
    while (units() < end) {
        if (m_triple_fault || m_stop_requested) [[unlikely]]
            break; // reported below
        if (!check_pending_events()) {
            previous = nullptr;
            continue;
        }
        if (s.events.halted)
            return RunExit::Halted;

        m_blocks.release_retired();
        if (mem.layout_generation() != m_layout_seen) [[unlikely]] {
            // An MMIO range moved (a relocated APIC window): entries may
            // point at RAM it now hides, or miss RAM it uncovered.
            flush_tlb(true);
            previous = nullptr;
            m_layout_seen = mem.layout_generation();
        }
        u64 linear = s.seg[CS].base + s.rip;
        if (!s.in_64bit_code())
            linear &= 0xFFFFFFFF;
        const u64 epoch = m_link_epochs[0];
        const u64 generation = m_blocks.generation();
        const u8 cpl = static_cast<u8>(s.cpl());
        const unsigned csize = code_size();
        const Block* block = previous ? chained_successor(*previous, linear, generation, cpl, csize) : nullptr;
        Block::Link& cached = jump_cache_slot(linear);
        if (!block && link_leads_to(cached, linear, generation, cpl, csize)) {
            // Found without a page walk or a hash; the previous block links
            // to it under the same rules.
            block = cached.block;
            if (previous)
                link_successor(*previous, cached);
        }
        if (!block) {
            if (!fetch_block(block, linear)) {
                previous = nullptr;
                handle_fault();
                continue;
            }
            // Not when the fetch itself flushed (a fault's handler cannot
            // run in between, but a fetch from MMIO can move a range).
            if (block != m_uncached.get() && m_link_epochs[0] == epoch && m_blocks.generation() == generation) {
                cached = link_to_fetched(*block, linear, generation, cpl);
                if (previous)
                    link_successor(*previous, cached);
            }
        }
        // fetch_block (here or on another vCPU) may have made a page code:
        // stores to it must now take the slow path that invalidates its blocks.
        drop_stale_writes();
        const u64 used_before = units();
        const Block* last = execute_block(*block, end - (used_before - m_retired));
        if (m_step_trap_requested) [[unlikely]] {
            // Ran on the fast path (TF was clear when the block began).
            m_step_trap_requested = false;
            deliver_debug_exception(dbg::DR6_BS);
            previous = nullptr;
            continue;
        }
        // A debugger's breakpoint on the block's first instruction (or any
        // stop asked for before it ran) ends the run without progress: no
        // stall, which would count a unit the instruction has not used.
        if (units() == used_before && !m_stop_requested) [[unlikely]]
            ++m_stalls;
        // A block that may be freed (uncached, or invalidated while running) is never chained.
        previous = (last == m_uncached.get() || m_blocks.generation() != generation) ? nullptr
                                                                                   : last;
    }
    if (m_triple_fault) {
        m_triple_fault = false;
        return RunExit::TripleFault;
    }
    if (m_debug_event.kind != DebugEvent::Kind::None) [[unlikely]]
        return RunExit::DebugStop;
    // The step is done once it retired an instruction or delivered an event
    // (stepping into an interrupt handler, as gdb expects on hardware).
    if (m_guest_debug.single_step && units() != end - budget) [[unlikely]] {
        m_debug_event = DebugEvent{DebugEvent::Kind::Step, s.rip, WatchKind::Write};
        return RunExit::DebugStop;
    }
    return m_stop_requested ? RunExit::StopRequested : RunExit::BudgetExhausted;
}

void Cpu::execute_block_carefully(const Block& block, u64 end)
{
    sync_debug_registers();
    const u64 generation = m_blocks.generation();
    const bool check_limit = !s.in_64bit_code();
    const u64 rip_mask = ip_mask();
    for (const Insn& insn : block.insns) {
        // A debugger's breakpoint stops the vCPU before the instruction;
        // a single-step runs the instruction it starts on, whatever is set
        // there (stepping off a breakpoint).
        if (m_gdb_any && !m_guest_debug.single_step && gdb_breakpoint_here()) [[unlikely]]
            return;
        // The instruction after MOV SS / POP SS: its debug traps are held.
        const bool after_mov_ss = s.events.mov_ss_blocking;
        s.events.mov_ss_blocking = false;
        // Instruction breakpoints are fault-like: checked before the
        // instruction runs unless RF says this one already reported (and not
        // right after MOV SS, which blocks debug exceptions).
        if (m_exec_watch && !(s.rflags & rf::RF) && !after_mov_ss &&
            instruction_breakpoint()) [[unlikely]]
            return;
        if (check_limit && s.rip + insn.length - 1 > s.seg[CS].limit) {
            raise_gp(0);
            handle_fault();
            return;
        }
        if (m_trace) [[unlikely]]
            trace(insn);
        const bool shadowed = s.events.interrupt_shadow;
        const bool single_step = s.rflags & rf::TF;
        // RF masks instruction breakpoints for one instruction; IRET may set it again.
        s.rflags &= ~rf::RF;
        m_db_hits = 0;
        m_db_hit_enabled = m_no_step_trap = m_icebp = false;
        next_rip = (s.rip + insn.length) & rip_mask;
        m_end_block = false;
        if (!insn.handler(*this, insn)) {
            handle_fault();
            return;
        }
        s.rip = next_rip;
        ++m_retired;
        if (shadowed) {
            s.events.interrupt_shadow = false;
            m_end_block = true;
        }
        if (after_mov_ss)
            s.events.mov_ss_blocking = false; // a second MOV SS does not extend it
        if (debug_trap_after(single_step, after_mov_ss)) [[unlikely]]
            return;
        // A debugger's watchpoint stops the vCPU after the instruction.
        if (m_debug_event.kind != DebugEvent::Kind::None) [[unlikely]] {
            m_stop_requested = true;
            return;
        }
        if (m_end_block || generation != m_blocks.generation() || m_retired >= end ||
            m_stop_requested)
            return;
    }
}

void Cpu::trace(const Insn& insn)
{
    u8 bytes[16];
    u64 linear = s.seg[CS].base + s.rip;
    if (!s.in_64bit_code())
        linear &= 0xFFFFFFFF;
    Fault saved = m_fault;
    if (fetch_bytes(linear, bytes, insn.length))
        m_trace(s, bytes, insn.length);
    m_fault = saved;
}

void Cpu::handle_fault()
{
    if (m_x87_frozen) [[unlikely]] {
        // Not a fault: the instruction stays unexecuted at RIP and the CPU
        // waits, as after HLT, for the interrupt FERR# brings; the handler
        // returns to the instruction, which then runs again.
        m_x87_frozen = false;
        halt();
        return;
    }
    if (m_mmx_undo.armed) [[unlikely]] {
        // A memory fault undoes the switch the faulting instruction made; #XM
        // does not (the host reports it with the switch done).
        if (m_mmx_undo.retired == m_retired && m_fault.vector != VEC_XM) {
            constexpr u16 TOP = 7u << 11;
            s.fpu.fsw = static_cast<u16>((s.fpu.fsw & ~TOP) | (m_mmx_undo.fsw & TOP));
            s.fpu.ftw = m_mmx_undo.ftw;
        }
        m_mmx_undo.armed = false;
    }
    // A fault discards the debug traps MOV SS held back: the instruction
    // they waited for did not complete.
    s.events.pending_debug = 0;
    s.events.mov_ss_blocking = false;
    m_db_hits = 0; // nor do its data breakpoint matches count
    m_db_hit_enabled = false;
    if (m_debug_event.kind == DebugEvent::Kind::Watchpoint) // nor the debugger's
        m_debug_event = DebugEvent{};
    m_last_fault = m_fault;
    if (m_fault.vector == VEC_PF)
        s.cr2 = m_fault.address;
    deliver_event(m_fault.vector, EventKind::Exception, m_fault.has_error_code,
                  m_fault.error_code);
}

// MS-DOS compatibility mode (CR0.NE = 0; SDM Vol 1 8.7, Appendix D.2):
// the error goes out on FERR#, which a PC turns into IRQ 13, and unless
// IGNNE# is asserted the processor "freezes just before executing the next
// WAIT instruction, waiting floating-point instruction, or MMX instruction"
// until the handler has run. The model asserts FERR# here, at that next
// instruction (the P6 and later deferred form), and freezes by not
// executing the instruction and halting until an interrupt (or NMI)
// arrives. The interrupt returns to the frozen instruction, which checks
// again: a handler that wrote port 0xF0 (IGNNE#) and cleared the error with
// FNCLEX lets it run; one that did neither freezes it again. With IF = 0
// the freeze lasts, as on hardware.
bool Cpu::report_x87_error()
{
    if (s.cr0 & cr::CR0_NE)
        return raise(Fault{VEC_MF, false, 0, 0});
    if (!m_fpu_pins)
        return true;
    if (!s.events.ferr) {
        s.events.ferr = true;
        m_fpu_pins->set_ferr(true);
    }
    if (m_fpu_pins->ignne())
        return true;
    m_x87_frozen = true;
    return false;
}

void Cpu::release_ferr()
{
    s.events.ferr = false;
    if (m_fpu_pins)
        m_fpu_pins->set_ferr(false);
}

bool Cpu::near_branch(u64 target, unsigned opsize)
{
    if (s.in_64bit_code()) {
        if (opsize != 8)
            target &= size_mask(opsize);
        if (!is_canonical(target))
            return raise_gp(0);
    } else {
        target &= size_mask(opsize);
        if (target > s.seg[CS].limit)
            return raise_gp(0);
    }
    next_rip = target;
    end_block();
    return true;
}
