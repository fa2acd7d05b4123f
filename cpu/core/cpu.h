// One vCPU's interpreter: fetches decoded blocks, executes instruction
// handlers, performs segmented and paged memory accesses through the soft
// TLB, and delivers exceptions and interrupts in every mode.
#pragma once

#include "cpu/core/block_cache.h"
#include "cpu/state/cpuid_model.h"
#include "cpu/state/guest_debug.h"
#include "cpu/decoder/insn.h"
#include "cpu/core/lazy_flags.h"
#include "mmu/bus/fpu_error_pins.h"
#include "mmu/bus/interrupt_source.h"
#include "mmu/bus/msr_bus.h"
#include "mmu/bus/port_bus.h"
#include "mmu/soft_tlb.h"

#include <array>
#include <bitset>
#include <functional>
#include <optional>

enum class RunExit : u8 {
    BudgetExhausted, // executed the requested number of instructions
    Halted,          // HLT (or shutdown wait) with nothing to wake it
    TripleFault,     // a fault during double-fault delivery: the machine resets
    StopRequested,   // request_stop() from a device or the frontend
    DebugStop,       // the debugger's breakpoint, watchpoint or step: debug_event()
};

// How an event entered the CPU: decides error-code pushing, privilege
// checks (INT n checks the gate DPL) and the return address.
enum class EventKind : u8 { Exception, SoftwareInt, External, Nmi, Int3, Into, Icebp };

// What started a task switch: decides the busy bits, NT and the back link
// (SDM Vol 3A Table 8-2).
enum class TaskSwitch : u8 { Jmp, Call, Iret, Event };

class Cpu {
public:
    // vCPUs of one machine share `shared_blocks` (decoded code is the same for
    // all; the machine routes PhysicalMemory's code-write listener to it). With
    // none, the Cpu keeps a private cache and installs the listener itself.
    Cpu(CpuState& state, PhysicalMemory& memory, PortBus& ports, MsrBus& msrs,
        const CpuidModel& cpuid, unsigned apic_id = 0, BlockCache* shared_blocks = nullptr);

    // Runs until `budget` instructions retire or something stops the CPU.
    RunExit run(u64 budget);
    void request_stop() { m_stop_requested = true; }
    u64 retired() const { return m_retired; }
    // What run() budgets count: instructions retired, events delivered
    // without one, and stalled blocks (a backstop), since power-on. Each
    // unit belongs to one vCPU, so a vCPU's units name a point of its run
    // that the JIT and the interpreter agree on (docs/replay.md "Positions").
    u64 units() const { return m_retired + m_events_delivered + m_stalls; }
    // External interrupts taken (--stats): acknowledged from the interrupt
    // controller and delivered through the IDT.
    u64 external_interrupts() const { return m_external_interrupts; }
    // Blocks decoded from guest memory (cached or not): how often the
    // block cache missed, for tests and profiling.
    u64 blocks_decoded() const { return m_blocks_decoded; }
    // How often the run loop entered translated code (a chain of
    // translated blocks counts once).
    u64 native_entries() const { return m_native_entries; }
    // Blocks looked up by address (translation and the cache) because no
    // chain from the block before led to them: how often chaining missed.
    u64 block_lookups() const { return m_block_lookups; }
    // Architectural reset (power-on or INIT state).
    void reset();
    // Replaces the whole architectural state (a snapshot, a backend switch,
    // a debugger): everything cached from the old state is dropped.
    void load_state(const CpuState& state);
    // What the interpreter keeps beside CpuState that decides what the guest
    // sees next: a snapshot carries it with the CpuState.
    struct InternalState {
        u64 retired = 0;      // deterministic time is counted from it
        u64 random_state = 0; // RDRAND/RDSEED
        bool x87_frozen = false; // waiting on FERR# (CR0.NE = 0)
        u64 events = 0;          // units() that are not retired instructions
    };
    InternalState internal_state() const
    {
        return {m_retired, m_random_state, m_x87_frozen, m_events_delivered + m_stalls};
    }
    void set_internal_state(const InternalState& state)
    {
        m_retired = state.retired;
        m_random_state = state.random_state;
        m_x87_frozen = state.x87_frozen;
        m_events_delivered = state.events;
        m_stalls = 0;
    }

    // Called before each instruction with its linear address and bytes.
    using TraceHook = std::function<void(const CpuState&, const u8* bytes, unsigned length)>;
    void set_trace_hook(TraceHook hook) { m_trace = std::move(hook); }
    void set_interrupt_source(InterruptSource* source) { m_interrupts = source; }
    InterruptSource* interrupt_source() const { return m_interrupts; }
    // FERR#/IGNNE# (the x87 error pins for CR0.NE = 0). Without them a
    // pending x87 error at a waiting instruction is ignored, as if IGNNE#
    // were asserted.
    void set_fpu_error_pins(FpuErrorPins* pins) { m_fpu_pins = pins; }
    // With other vCPUs on the same host thread, PAUSE (the spin-wait hint)
    // ends the run after it retires, so the vCPU being waited for gets to run.
    void set_pause_yields(bool yields) { m_pause_yields = yields; }
    void pause_hint()
    {
        if (m_pause_yields) {
            m_stop_requested = true;
            m_end_block = true;
        }
    }
    // VMCALL/VMMCALL (the hypercall page's instruction) go to this handler,
    // which reads and writes the registers per the hypercall ABI. It returns
    // false after raising a fault on the Cpu (e.g. #UD for a partition that
    // may not call), which the instruction then delivers. Without a handler,
    // they raise #UD as on hardware without a hypervisor.
    using HypercallHandler = std::function<bool(Cpu& cpu)>;
    void set_hypercall_handler(HypercallHandler handler) { m_hypercall = std::move(handler); }
    bool has_hypercall_handler() const { return static_cast<bool>(m_hypercall); }
    bool call_hypercall_handler() { return m_hypercall(*this); }
    // A port whose one-byte OUT at CPL 0 is a hypercall too: the gate of a
    // hypercall page written for the KVM backend (OUT imm8, AL), which a
    // machine switched from KVM to the interpreter keeps (docs/kvm.md).
    void set_hypercall_gate(std::optional<u16> port) { m_hypercall_gate = port; }
    bool is_hypercall_gate(u16 port, unsigned size) const
    {
        return m_hypercall_gate == port && size == 1 && m_hypercall && s.cpl() == 0;
    }
    // The fault that caused the last TripleFault exit.
    const Fault& last_fault() const { return m_last_fault; }
    // A debugger's own breakpoints, watchpoints and single-step
    // (cpu/core/guest_debug.cpp); run() returns DebugStop when one stops the
    // vCPU, and debug_event() says which.
    void set_guest_debug(const GuestDebugSet& set);
    const DebugEvent& debug_event() const { return m_debug_event; }
    // Guest TSC before tsc_offset. Defaults to retired instructions.
    void set_tsc_source(std::function<u64()> source) { m_tsc_source = std::move(source); }
    // RDRAND/RDSEED draw from this seeded generator (cpu/core/random.cpp), so that
    // runs with the same seed see the same values. Reset does not reseed it.
    void seed_random(u64 seed) { m_random_state = seed; }
    u64 next_random();
    // Blocks of 64-bit code that run often are translated to host code
    // (cpu/jit/block_translator.h); off, everything is interpreted. The
    // results are the same either way.
    void set_jit_enabled(bool on) { m_jit_enabled = on; }
    // Runs on the interpreter's fast path before a block is translated
    // (default 16; the fuzz targets use 1 so that random code gets translated).
    void set_jit_threshold(u32 runs) { m_jit_threshold = runs ? runs : 1; }
    // Where translated code finds what it reads and writes: offsets from the
    // CpuState (gpr .. seg_base) and from the Cpu (the rest).
    struct JitLayout {
        i32 gpr, rip, rflags, cr0, ss_attr, seg_base, seg_stride;
        i32 retired, end_block, next_rip, lazy_flags, tlb_supervisor, tlb_user;
        i32 native_end, link_epochs, last_native_block;
        i32 device_accesses; // a `const u64*`: PhysicalMemory's count of device (MMIO) accesses
        const u64* generation; // the block cache's
    };
    JitLayout jit_layout() const;

    // ---- Interface for instruction handlers (cpu/*.cpp) ----
    CpuState& s;
    PhysicalMemory& mem;
    PortBus& ports;
    MsrBus& msrs;
    const CpuidModel& cpuid;
    // The vCPU's index in its machine, which is also its initial APIC ID
    // (the MADT says so); the MSR bus and the MMIO of per-vCPU devices are
    // told it with every access.
    unsigned apic_id;
    u64 next_rip = 0; // handlers that branch set it
    LazyFlags lf;

    // Where Intel and AMD processors differ, handlers follow the model's vendor.
    bool intel() const { return cpuid.vendor() == CpuVendor::Intel; }
    bool amd() const { return cpuid.vendor() == CpuVendor::Amd; }

    // Raises a fault: records it and returns false so handlers can `return raise(...)`.
    bool raise(const Fault& f)
    {
        m_fault = f;
        return false;
    }
    bool raise_gp(u32 ec = 0) { return raise(Fault{VEC_GP, true, ec, 0}); }
    bool raise_ss(u32 ec = 0) { return raise(Fault{VEC_SS, true, ec, 0}); }
    bool raise_ud() { return raise(Fault{VEC_UD, false, 0, 0}); }
    bool raise_de() { return raise(Fault{VEC_DE, false, 0, 0}); }
    // Ends the current block after this instruction (mode, CS or paging changed).
    void end_block() { m_end_block = true; }

    // General registers by size; 32-bit writes zero-extend, 8/16-bit merge.
    u64 gpr(unsigned r, unsigned size) const { return s.gpr[r] & size_mask(size); }
    void set_gpr(unsigned r, unsigned size, u64 v);

    // RFLAGS with the lazy arithmetic flags folded in.
    u64 rflags();
    void set_rflags_arith(u64 flags_value) // replaces the six arithmetic flags
    {
        lf.op = FlagOp::None;
        s.rflags = (s.rflags & ~rf::ARITH) | (flags_value & rf::ARITH);
    }
    void materialize_flags();
    bool flag(u64 bit) { return rflags() & bit; }
    void set_flag(u64 bit, bool on);
    // Jcc/SETcc/CMOVcc condition 0..15. Compares and logic results, what
    // nearly every branch tests, are answered from the lazy flags inline.
    bool condition(unsigned cc)
    {
        if (lf.op == FlagOp::Sub) {
            const u64 mask = size_mask(lf.size);
            const u64 a = lf.src1 & mask, b = lf.src2 & mask;
            switch (cc) {
            case 0x2: return a < b;  // B
            case 0x3: return a >= b; // AE
            case 0x4: return a == b; // E
            case 0x5: return a != b; // NE
            case 0x6: return a <= b; // BE
            case 0x7: return a > b;  // A
            case 0xC: return i64(sign_extend(a, lf.size)) < i64(sign_extend(b, lf.size));
            case 0xD: return i64(sign_extend(a, lf.size)) >= i64(sign_extend(b, lf.size));
            case 0xE: return i64(sign_extend(a, lf.size)) <= i64(sign_extend(b, lf.size));
            case 0xF: return i64(sign_extend(a, lf.size)) > i64(sign_extend(b, lf.size));
            default: break;
            }
        } else if (lf.op == FlagOp::Logic && (cc == 0x4 || cc == 0x5)) {
            const bool zero = (lf.result & size_mask(lf.size)) == 0;
            return cc == 0x4 ? zero : !zero;
        }
        return condition_from_rflags(cc);
    }
    bool condition_from_rflags(unsigned cc);
    // Writes RFLAGS as POPF/IRET do, limited to `writable` bits.
    void write_rflags(u64 value, u64 writable);

    // Operand access. Registers, immediates and memory in flat 64-bit mode
    // are handled inline: they are most of what real code does.
    u64 effective_address(const Insn& insn) const
    {
        const MemRef& m = insn.mem;
        u64 ea = static_cast<u64>(m.disp);
        if (m.base == REG_RIP)
            ea += next_rip;
        else if (m.base != NO_REG)
            ea += s.gpr[m.base];
        if (m.index != NO_REG)
            ea += s.gpr[m.index] * m.scale;
        return ea & size_mask(insn.addrsize);
    }
    bool read_operand(const Insn& insn, unsigned index, u64& value)
    {
        const Operand& op = insn.op[index];
        if (op.kind == OpKind::Gpr) [[likely]] {
            value = s.gpr[op.reg] & size_mask(op.size);
            return true;
        }
        if (op.kind == OpKind::Imm) {
            value = insn.imm; // already sign- or zero-extended; callers mask to their size
            return true;
        }
        if (op.kind == OpKind::Mem)
            return read_mem(insn.mem.seg, effective_address(insn), op.size, value);
        return read_operand_slow(insn, index, value);
    }
    bool write_operand(const Insn& insn, unsigned index, u64 value)
    {
        const Operand& op = insn.op[index];
        if (op.kind == OpKind::Gpr && op.size >= 4) [[likely]] {
            s.gpr[op.reg] = op.size == 8 ? value : value & 0xFFFFFFFF;
            return true;
        }
        if (op.kind == OpKind::Mem)
            return write_mem(insn.mem.seg, effective_address(insn), op.size, value);
        return write_operand_slow(insn, index, value);
    }
    bool read_operand_slow(const Insn& insn, unsigned index, u64& value);
    bool write_operand_slow(const Insn& insn, unsigned index, u64 value);

    // Memory through segmentation and paging. `offset` is the effective address.
    // 64-bit code without alignment checking needs no segment checks (only the
    // FS/GS base), so a TLB hit there is a tag compare and a host load/store.
    // Alignment checking needs CR0.AM and EFLAGS.AC (and CPL 3): Linux keeps
    // CR0.AM set, so the fast paths test both (CR0.AM is bit 18 too).
    // #AC needs CR0.AM, EFLAGS.AC and CPL 3 (SDM Vol 3A 6.15): a kernel
    // between STAC and CLAC (AC set for SMAP) keeps the fast paths.
    bool alignment_checks_armed() const { return ((s.cr0 & s.rflags) & rf::AC) && s.cpl() == 3; }
    bool flat_linear(unsigned seg, u64 offset, u64& linear) const
    {
        if (!s.in_64bit_code() || alignment_checks_armed()) [[unlikely]]
            return false;
        // No canonical check: the soft TLB only holds canonical pages
        // (translate refuses the others), so a non-canonical address misses
        // every tag and the slow path raises its #GP or #SS.
        linear = offset + (seg >= FS ? s.seg[seg].base : 0);
        return true;
    }
    static u64 load_host(const u8* p, unsigned size)
    {
        switch (size) {
        case 1: return *p;
        case 2: { u16 v; __builtin_memcpy(&v, p, 2); return v; }
        case 4: { u32 v; __builtin_memcpy(&v, p, 4); return v; }
        case 8: { u64 v; __builtin_memcpy(&v, p, 8); return v; }
        default: { u64 v = 0; __builtin_memcpy(&v, p, size); return v; }
        }
    }
    static void store_host(u8* p, unsigned size, u64 value)
    {
        switch (size) {
        case 1: *p = static_cast<u8>(value); break;
        case 2: { u16 v = static_cast<u16>(value); __builtin_memcpy(p, &v, 2); break; }
        case 4: { u32 v = static_cast<u32>(value); __builtin_memcpy(p, &v, 4); break; }
        case 8: __builtin_memcpy(p, &value, 8); break;
        default: __builtin_memcpy(p, &value, size); break;
        }
    }
    bool read_mem(unsigned seg, u64 offset, unsigned size, u64& value)
    {
        u64 linear;
        if (flat_linear(seg, offset, linear)) [[likely]] {
            const SoftTlb::Entry& e = m_tlb.slot(s.cpl() == 3, linear);
            const unsigned in_page = linear & 0xFFF;
            if (e.read_tag == (linear >> 12) && in_page + size <= PAGE_SIZE && e.host_page) [[likely]] {
                value = load_host(e.host_page + in_page, size);
                return true;
            }
        }
        return read_mem_slow(seg, offset, size, value);
    }
    bool write_mem(unsigned seg, u64 offset, unsigned size, u64 value)
    {
        u64 linear;
        if (flat_linear(seg, offset, linear)) [[likely]] {
            const SoftTlb::Entry& e = m_tlb.slot(s.cpl() == 3, linear);
            const unsigned in_page = linear & 0xFFF;
            // Write entries never cover code pages or pages the dirty log
            // has not seen written (PhysicalMemory::may_cache_writes).
            if (e.write_tag == (linear >> 12) && in_page + size <= PAGE_SIZE) [[likely]] {
                store_host(e.host_page + in_page, size, value);
                return true;
            }
        }
        return write_mem_slow(seg, offset, size, value);
    }
    // Host spans for REP string instructions: the bytes from seg:offset up
    // to the end of its page (at most max_len, in `len`) when every access
    // there would take the read_mem/write_mem fast path; nullptr otherwise.
    u8* fast_write_span(unsigned seg, u64 offset, u64 max_len, u64& len)
    {
        u64 linear;
        if (!flat_linear(seg, offset, linear))
            return nullptr;
        const SoftTlb::Entry* e = &m_tlb.slot(s.cpl() == 3, linear);
        if (e->write_tag != (linear >> 12)) {
            e = smap_override_entry(linear);
            if (!e || e->write_tag != (linear >> 12))
                return nullptr;
        }
        const u64 in_page = linear & 0xFFF;
        len = max_len < PAGE_SIZE - in_page ? max_len : PAGE_SIZE - in_page;
        return e->host_page + in_page;
    }
    const u8* fast_read_span(unsigned seg, u64 offset, u64 max_len, u64& len)
    {
        u64 linear;
        if (!flat_linear(seg, offset, linear))
            return nullptr;
        const SoftTlb::Entry* e = &m_tlb.slot(s.cpl() == 3, linear);
        if (e->read_tag != (linear >> 12)) {
            e = smap_override_entry(linear);
            if (!e || e->read_tag != (linear >> 12))
                return nullptr;
        }
        if (!e->host_page)
            return nullptr;
        const u64 in_page = linear & 0xFFF;
        len = max_len < PAGE_SIZE - in_page ? max_len : PAGE_SIZE - in_page;
        return e->host_page + in_page;
    }
    // The TLB's entry for a supervisor data access to a user page that
    // SMAP's EFLAGS.AC override allows now (SDM Vol 3A 4.6.1), or nullptr
    // when the override does not hold (CPL 3, AC clear, SMAP off).
    SoftTlb::Entry* smap_override_entry(u64 linear)
    {
        if (s.cpl() == 3 || !(s.rflags & rf::AC) || !(s.cr4 & cr::CR4_SMAP))
            return nullptr;
        return m_tlb.find_override(linear);
    }
    // True when a store of `size` bytes would take write_mem's fast path
    // (and so cannot fault); false means "not known".
    bool write_hits_tlb(unsigned seg, u64 offset, unsigned size)
    {
        u64 linear;
        if (!flat_linear(seg, offset, linear))
            return false;
        const SoftTlb::Entry& e = m_tlb.slot(s.cpl() == 3, linear);
        return e.write_tag == (linear >> 12) && (linear & 0xFFF) + size <= PAGE_SIZE;
    }
    bool read_mem_slow(unsigned seg, u64 offset, unsigned size, u64& value);
    bool write_mem_slow(unsigned seg, u64 offset, unsigned size, u64 value);
    // Linear-address accesses; `supervisor` forces an implicit supervisor access
    // (descriptor tables, TSS, IDT).
    bool read_linear(u64 linear, unsigned size, u64& value, bool supervisor = false);
    bool write_linear(u64 linear, unsigned size, u64 value, bool supervisor = false);
    // The mask of a linear address: 32 bits outside 64-bit code (legacy and
    // compatibility mode, SDM Vol 3A 3.4.4 and 5.3.1), so an access that
    // runs past 0xFFFFFFFF continues at 0; 64 bits in 64-bit code and for the
    // system structures of long mode (`supervisor`: GDT, IDT, TSS).
    u64 linear_wrap(bool supervisor = false) const
    {
        return s.in_64bit_code() || (supervisor && s.long_mode_active()) ? ~0ull : 0xFFFFFFFFull;
    }
    // Segmentation only: checks limit/type/canonical and yields the linear address.
    bool segment_linear(unsigned seg, u64 offset, unsigned size, bool write, u64& linear);

    // Stack.
    unsigned stack_addr_size() const; // 2, 4 or 8
    bool push(u64 value, unsigned size);
    bool pop(unsigned size, u64& value);

    // Segments and descriptors.
    bool load_segment(unsigned seg, u16 selector); // MOV/POP to a segment register
    void load_segment_real(unsigned seg, u16 selector);
    bool read_descriptor(u16 selector, u64& low, u64& high, bool& in_bounds);
    void set_segment_from_descriptor(Segment& out, u16 selector, u64 descriptor);
    bool set_descriptor_accessed(u16 selector, u64 descriptor);
    unsigned code_size() const // 2, 4 or 8: default operand size of CS
    {
        if (s.in_64bit_code())
            return 8;
        if (!s.protected_mode() || s.v86_mode())
            return 2;
        return (s.seg[CS].attr & Segment::DB) ? 4 : 2;
    }
    u64 ip_mask() const
    {
        const unsigned cs = code_size();
        return cs == 8 ? ~0ull : cs == 4 ? 0xFFFFFFFFull : 0xFFFFull;
    }

    // Control transfer.
    bool far_jump_or_call(u16 selector, u64 offset, unsigned opsize, bool is_call);
    bool far_return(unsigned opsize, u16 pop_extra);
    bool iret(unsigned opsize);
    // Delivers an exception or interrupt through the IDT/IVT. The pushed
    // return address is s.rip (faults, external events) or return_rip (traps
    // and software interrupts). On success s.rip and next_rip point at the handler;
    // a fault during delivery becomes #DF or a triple fault as the SDM says.
    bool deliver_event(u8 vector, EventKind kind, bool has_error, u32 error_code);
    bool deliver_event(u8 vector, EventKind kind, bool has_error, u32 error_code, u64 return_rip);
    bool load_cs_for_transfer(u16 selector, unsigned target_cpl, u64 descriptor);

    // Control registers and MSRs (cpu/system/system.cpp).
    bool write_cr(unsigned n, u64 value);
    // CR8 reads the local APIC's TPR[7:4] when there is one.
    u64 read_cr8()
    {
        u64 v;
        return (m_interrupts && m_interrupts->read_cr8(v)) ? v : s.cr8;
    }
    bool read_msr(u32 index, u64& value);
    bool write_msr(u32 index, u64 value);
    void flush_tlb(bool include_global);
    void invalidate_page(u64 linear);
    u64 read_tsc();
    bool check_io_permission(u16 port, unsigned size);
    // CR0.EM/TS/MP and CR4.OSFXSR checks for x87/SIMD instructions (#NM/#UD).
    bool check_fpu_available(const Insn& insn);
    void halt() { s.events.halted = true; m_end_block = true; }
    // A waiting x87 or MMX instruction found FSW.ES set (SDM Vol 1 8.7):
    // #MF with CR0.NE = 1; otherwise FERR# and, unless IGNNE# is asserted,
    // the freeze. Returns true when the instruction proceeds.
    bool report_x87_error();
    // Releases FERR# once FSW.ES is clear; called by the instructions that
    // can clear it (FNCLEX, FNINIT, FLDCW, FLDENV, ...).
    void update_ferr()
    {
        if (s.events.ferr && !(s.fpu.fsw & FSW_ES)) [[unlikely]]
            release_ferr();
    }

    bool is_canonical(u64 addr) const
    {
        return canonical_in(addr, (s.cr4 & (1u << 12)) ? 57 : 48); // CR4.LA57
    }
    // Addresses stored for later use (descriptor-table and TSS/LDT bases,
    // FS/GS base, SYSENTER/SYSCALL entry MSRs) are checked against the
    // widest linear address the CPU supports, whatever paging mode is on
    // now (SDM Vol 3A 4.1.4 on 5-level paging): 57 bits with LA57.
    bool is_canonical_stored(u64 addr) const
    {
        return canonical_in(addr, cpuid.has(cpufeat::LA57) ? 57 : 48);
    }
    // Bits above a `bits`-wide linear address must copy its top bit.
    static bool canonical_in(u64 addr, unsigned bits)
    {
        const unsigned shift = 64 - bits;
        return static_cast<u64>(static_cast<i64>(addr << shift) >> shift) == addr;
    }
    // Near branch target check: CS limit outside 64-bit mode, canonical inside.
    bool near_branch(u64 target, unsigned opsize);

    // Internals below are public only so the handler families can share them.
    bool translate(u64 linear, Access access, bool user, SoftTlb::Entry*& entry);
    bool slow_read(u64 linear, unsigned size, u64& value, bool user, Access access, u64 wrap);
    bool slow_write(u64 linear, unsigned size, u64 value, bool user, u64 wrap);
    u64 read_phys_split(GuestPhys addr, unsigned size);
    bool check_alignment(u64 linear, unsigned size);
    bool access_is_user(bool supervisor) const { return !supervisor && s.cpl() == 3; }
    bool fetch_block(const Block*& block, u64 linear);
    u64 next_page(u64 linear) const;
    // The per-block steps of run(), defined in cpu.cpp and inlined there only.
    // Whether `link` still stands for the block at `linear` for this vCPU
    // (its epoch, the cache generation, CPL and code size): the rule for
    // block links and the jump cache alike.
    [[gnu::always_inline]] inline bool link_leads_to(const Block::Link& link, u64 linear, u64 generation, u8 cpl,
                                                     unsigned csize) const;
    [[gnu::always_inline]] inline const Block* chained_successor(const Block& previous, u64 linear,
                                                                 u64 generation, u8 cpl,
                                                                 unsigned csize) const;
    // The link fetch_block's last block gets: the epoch its translation
    // allows (a global one marks its 2 MiB region).
    Block::Link link_to_fetched(const Block& block, u64 linear, u64 generation, u8 cpl);
    // Makes `link` the first remembered successor of `previous`.
    static void link_successor(const Block& previous, const Block::Link& link);
    // The jump cache: per slot the block last fetched at a linear address,
    // valid under the same rules as a link; it finds the successors no link
    // of the previous block names (returns and indirect jumps with many
    // targets) without a page walk or a hash.
    Block::Link& jump_cache_slot(u64 linear)
    {
        return m_jump_cache[(linear ^ (linear >> 12)) % JUMP_CACHE_SIZE];
    }
    // New link epochs: every link made so far stops matching (all of them,
    // or only those to non-global translations).
    void new_link_epochs(bool include_global);
    // Returns the block that ran last: `block`, or the last of the
    // translated blocks that ran chained from it.
    [[gnu::always_inline]] inline const Block* execute_block(const Block& block, u64 end);
    // Drops TLB write entries PhysicalMemory::may_cache_writes no longer
    // allows, when its write_barrier() moved.
    void drop_stale_writes();
    template <bool CheckLimit>
    [[gnu::always_inline]] inline void execute_insns(const Insn* first, size_t count);
    void execute_block_carefully(const Block& block, u64 end);
    void trace(const Insn& insn);
    bool deliver_once(u8 vector, EventKind kind, bool has_error, u32 error_code, u64 return_rip,
                      bool ext);
    bool deliver_real(u8 vector, u64 return_rip);
    bool deliver_protected(u8 vector, EventKind kind, bool has_error, u32 error_code,
                           u64 return_rip, bool ext);
    bool read_tss_stack(unsigned dpl, u16& ss, u64& sp);
    bool read_tss_rsp(u32 offset, u64& rsp);
    bool load_stack_segment(u16 selector, unsigned new_cpl, u8 fault_vector, bool ext);
    void set_code_segment(u16 selector, u64 desc, unsigned cpl);
    bool gate_target(u16 selector, bool ext, u64& desc);
    u64 writable_flags_for(unsigned cpl, unsigned opsize) const;
    void nullify_data_segments_for(unsigned cpl);
    bool iret_inner(unsigned opsize);
    bool iret_to_v86(u64 ip, u64 cs, u64 flags);
    // Task switching (cpu/task_switch.cpp).
    bool task_return();
    bool new_tss_descriptor(u16 selector, bool ext, u64& desc);
    bool far_transfer_to_task(u16 selector, u64 desc, bool is_call);
    bool deliver_through_task_gate(u64 gate, bool has_error, u32 error_code, u64 return_rip,
                                   bool ext);
    bool switch_task(u16 selector, u64 desc, TaskSwitch reason, u64 return_ip, bool ext);
    bool load_task_segments(u64 ldt_sel, const std::array<u64, 6>& sel, unsigned count, bool ext);
    bool task_entry_ip_check(bool ext);
    // Virtual-8086 mode extensions and protected-mode virtual interrupts (cpu/vme.cpp).
    bool virtual_interrupt_flag() const;
    u64 v86_virtual_flags();
    bool v86_write_virtual_flags(u64 flags);
    bool v86_interrupt_redirected(u8 vector, bool& redirected);
    bool v86_interrupt_to_ivt(u8 vector);
    bool far_transfer_inner(u16 selector, u64 offset, unsigned opsize, bool is_call);
    bool commit_far_target(u64 offset);
    bool through_call_gate(u16 gate_sel, u64 gate, u64 gate_high, bool is_call);
    bool far_return_inner(unsigned opsize, u16 pop_extra);
    bool deliver_long(u8 vector, EventKind kind, bool has_error, u32 error_code, u64 return_rip,
                      bool ext);
    bool fetch_bytes(u64 linear, u8* out, unsigned len);
    void handle_fault();

    // ---- Debug registers and single-step (cpu/core/debug.cpp) ----
    // Breakpoints work only on the careful path, which run() takes while any
    // DR7 enable bit is set (or TF/RF, a trace hook, an interrupt shadow).
    bool debug_active() const { return s.dr[7] & dbg::DR7_ENABLES; }
    // Re-decodes DR0-DR3/DR7/CR4.DE when they changed; a change in the data
    // breakpoints flushes the TLB, so watched pages miss it from then on.
    void sync_debug_registers();
    // MOV DR with DR7.GD set: a fault-like #DB with DR6.BD (SDM Vol 3B 18.2.4).
    bool raise_general_detect();
    // Data and I/O accesses the instruction makes (slow paths only).
    void note_data_access(u64 linear, unsigned size, bool write)
    {
        if (m_data_watch | m_gdb_watch) [[unlikely]]
            match_data_breakpoints(linear, size, write);
    }
    void note_io_access(u16 port, unsigned size)
    {
        if (m_io_watch) [[unlikely]]
            match_io_breakpoints(port, size);
    }
    // True once an enabled data/I-O breakpoint matched in this instruction:
    // a REP string instruction stops after the iteration (trap-like #DB).
    bool data_breakpoint_hit() const
    {
        return m_db_hit_enabled || m_debug_event.kind == DebugEvent::Kind::Watchpoint;
    }
    // MOV SS / POP SS: interrupts and debug traps wait one instruction.
    void block_after_mov_ss()
    {
        s.events.interrupt_shadow = true;
        s.events.mov_ss_blocking = true;
    }
    // SYSCALL whose SFMASK cleared TF: no single-step trap after it.
    void suppress_single_step() { m_no_step_trap = true; }
    // The instruction traps for single-step if TF is set when it ends, even
    // though it began with TF clear: SYSRET, whose R11 may set TF ("#DB is
    // raised if TF is 1 at the end of syscall/sysret", kvm-unit-tests
    // x86/syscall.c). The instruction must end its block.
    void request_single_step_trap() { m_step_trap_requested = true; }
    bool page_watched(u64 vpn) const;
    bool any_page_watched() const { return m_data_watch | m_gdb_watch; }
    // The debugger's set (cpu/core/guest_debug.cpp): whether `block` must run
    // on the careful path, whether a breakpoint is at the next instruction,
    // and its watchpoints' matches.
    bool gdb_block_needs_care(const Block& block) const;
    bool gdb_breakpoint_here();
    void match_gdb_watchpoints(u64 linear, unsigned size, bool write);
    void match_data_breakpoints(u64 linear, unsigned size, bool write);
    void match_io_breakpoints(u16 port, unsigned size);
    bool instruction_breakpoint();
    bool debug_trap_after(bool single_step, bool after_mov_ss);
    void deliver_debug_exception(u64 dr6_bits);
    [[gnu::always_inline]] inline bool check_pending_events();
    void release_ferr();
    static constexpr u16 FSW_ES = 1u << 7;
    // An MMX instruction switches the x87 state to MMX use (TOP = 0, every
    // tag valid) as it starts; should it then fault on memory, the fault puts
    // back the TOP and tags it found, as the host CPU leaves them (a SIMD
    // exception, #XM, comes after the switch there). Called with the values
    // before the switch.
    void note_mmx_switch(u16 fsw, u16 ftw) { m_mmx_undo = {true, m_retired, fsw, ftw}; }
    void keep_mmx_switch() { m_mmx_undo.armed = false; } // MASKMOVQ: kept even on a fault

private:
    struct MmxUndo {
        bool armed = false;
        u64 retired = 0; // the instruction: m_retired when it started
        u16 fsw = 0, ftw = 0;
    };
    MmxUndo m_mmx_undo;
    std::unique_ptr<BlockCache> m_own_blocks;
    BlockCache& m_blocks;
    // A direct-mapped front for m_blocks: most lookups hit here without
    // hashing. An entry is valid only for the cache generation it was made
    // in, so an invalidation does not have to clear the table. Sized for a
    // kernel's hot paths (an I/O request through the block layer and a
    // driver touches a few thousand blocks).
    static constexpr unsigned FAST_BLOCKS = 16384;
    struct FastBlock {
        u64 key = ~0ull;
        u64 generation = ~0ull;
        const Block* block = nullptr;
    };
    std::unique_ptr<FastBlock[]> m_fast_blocks = std::make_unique<FastBlock[]>(FAST_BLOCKS);
    // Chained successors are only trusted while the code's linear-to-physical
    // mapping cannot have changed: the first epoch changes at every TLB
    // flush, the second (links to global translations) only when global
    // translations may have changed (Block::Link). Translated code reads
    // them as an array indexed by Link::global.
    std::array<u64, 2> m_link_epochs{};
    static constexpr size_t JUMP_CACHE_SIZE = 4096;
    std::unique_ptr<Block::Link[]> m_jump_cache = std::make_unique<Block::Link[]>(JUMP_CACHE_SIZE);
    // The page size of the global TLB entry through which fetch_block found
    // the last block, or 0 when it was not global: a link to that block may
    // keep the global epoch.
    u64 m_fetched_global_size = 0;
    // The 2 MiB regions (hashed) that global links point into, so that an
    // INVLPG elsewhere keeps them; a link through a page larger than 2 MiB
    // makes every INVLPG count.
    static constexpr size_t GLOBAL_LINK_REGIONS = 4096;
    static size_t global_link_region(u64 linear) { return (linear >> 21) % GLOBAL_LINK_REGIONS; }
    std::bitset<GLOBAL_LINK_REGIONS> m_global_link_regions;
    bool m_global_link_huge = false;
    std::unique_ptr<Block> m_uncached; // a block that straddles pages, decoded for one run
    SoftTlb m_tlb;
    u64 m_layout_seen = 0;     // PhysicalMemory::layout_generation() when the TLB was last flushed for it
    u64 m_write_barrier_seen = 0; // PhysicalMemory::write_barrier() when the TLB last dropped writes
    SoftTlb::Entry m_scratch_entry; // an uncacheable translation (SMAP-sensitive)
    InterruptSource* m_interrupts = nullptr;
    FpuErrorPins* m_fpu_pins = nullptr;
    // The handler that returned false froze on an x87 error instead of
    // faulting (report_x87_error).
    bool m_x87_frozen = false;
    Fault m_fault{};
    Fault m_last_fault{};
    TraceHook m_trace;
    HypercallHandler m_hypercall;
    std::optional<u16> m_hypercall_gate;
    std::function<u64()> m_tsc_source;
    u64 m_retired = 0;
    u64 m_external_interrupts = 0;
    // What translated code reads to see whether a handler reached a device
    // (PhysicalMemory::mmio_accesses' counter).
    const u64* m_device_accesses = nullptr;
    u64 m_blocks_decoded = 0;
    u64 m_native_entries = 0;
    u64 m_block_lookups = 0;
    // Events delivered that no instruction retires with: exceptions, external
    // interrupts, NMIs (not INT n, INT3, INTO, ICEBP, which are instructions).
    // run() counts them against its budget.
    u64 m_events_delivered = 0;
    u64 m_stalls = 0; // blocks that neither retired nor delivered anything (a backstop)
    bool m_jit_enabled = true;
    // Translated code goes on into a translated successor only while its
    // whole block fits before this retired count (the run's budget).
    u64 m_native_end = 0;
    // The block translated code ended in (it stores it as it returns): the
    // run loop links the next block to that one, not to the chain's first.
    const Block* m_last_native_block = nullptr;
    // A block is translated on its m_jit_threshold-th run on the fast path.
    u32 m_jit_threshold = 16;
    void translate_to_host(const Block& block);
    bool m_end_block = false;
    bool m_stop_requested = false;
    bool m_pause_yields = false;
    u64 m_random_state = 0x7669726964696E21ull; // default seed
    bool m_triple_fault = false;
    u8 m_delivering = 0; // nesting of exception delivery, for #DF/triple fault
    u8 m_first_vector = 0;
    // A task switch passed its commit point in the current transfer: a
    // later fault is the new task's, and the old state is not restored.
    bool m_task_switched = false;
    // Debug registers as sync_debug_registers() last decoded them.
    struct DebugSeen {
        std::array<u64, 4> addr{};
        u64 dr7 = dbg::DR7_FIXED1;
        bool de = false;
        bool operator==(const DebugSeen&) const = default;
    };
    DebugSeen m_debug_seen{};
    u8 m_exec_watch = 0; // DR0-DR3 (bit n) that are instruction breakpoints, while any is enabled
    u8 m_data_watch = 0; // ... data breakpoints (R/W 01 or 11)
    u8 m_io_watch = 0;   // ... I/O breakpoints (R/W 10 with CR4.DE)
    std::array<u64, 4> m_watch_base{}; // breakpoint address aligned down to its length
    std::array<u64, 4> m_watch_len{};
    // Per instruction on the careful path:
    u8 m_db_hits = 0;              // DR6 B0-B3 of the breakpoints its accesses matched
    bool m_db_hit_enabled = false; // one of them is enabled in DR7
    bool m_no_step_trap = false;   // it entered a handler with TF cleared (INT n, SYSCALL)
    bool m_step_trap_requested = false; // request_single_step_trap()
    bool m_icebp = false;          // it was INT1/ICEBP, whose #DB reports the traps
    // The debugger's own set (set_guest_debug) and what stopped the vCPU.
    GuestDebugSet m_guest_debug;
    bool m_gdb_any = false;     // anything in the set
    bool m_gdb_careful = false; // watchpoints or single-step: every block runs carefully
    u8 m_gdb_watch = 0;         // 1 while it has watchpoints
    DebugEvent m_debug_event;
};
