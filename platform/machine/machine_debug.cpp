// The Machine's side of a debugger (the gdb stub, frontend/gdb/): the
// breakpoints and watchpoints every vCPU keeps (accel/vcpu_backend.h
// set_guest_debug), single-stepping one vCPU in an all-stop machine, and
// guest memory as a debugger sees it.
#include "platform/machine/machine.h"

#include "mmu/page_walker.h"

#include <algorithm>
#include <cstring>

void Machine::set_debug_points(const std::vector<u64>& breakpoints, const std::vector<Watchpoint>& watchpoints)
{
    m_guest_debug.breakpoints = breakpoints;
    m_guest_debug.watchpoints = watchpoints;
    apply_guest_debug();
}

void Machine::step_vcpu(unsigned vcpu)
{
    if (vcpu >= m_vcpus.size())
        return;
    m_step_vcpu = vcpu;
    apply_guest_debug();
}

void Machine::apply_guest_debug()
{
    for (unsigned i = 0; i < m_vcpus.size(); ++i) {
        GuestDebugSet set = m_guest_debug;
        set.single_step = m_step_vcpu == i;
        m_vcpus[i]->backend->set_guest_debug(set);
    }
}

bool Machine::vcpu_waits_for_sipi(unsigned vcpu) const
{
    return vcpu < m_vcpus.size() && m_board->lapic(vcpu).wait_for_sipi();
}

bool Machine::skipped_for_step(unsigned index)
{
    const unsigned stepping = *m_step_vcpu;
    if (index == stepping)
        return false;
    // The others stay stopped while the stepped vCPU can run: the step ends
    // after its one instruction, before they would have run. One that waits
    // (HLT, or for its start-up IPI) waits for the others, who may be what
    // wakes it.
    if (m_board->lapic(stepping).wait_for_sipi())
        return false;
    return !m_vcpus[stepping]->backend->get_state().events.halted;
}

RunOutcome Machine::debug_stop(unsigned index)
{
    RunOutcome outcome = RunOutcome::of(RunOutcome::Kind::DebugStop);
    outcome.vcpu = index;
    outcome.debug = m_vcpus[index]->backend->debug_event();
    // Whatever stopped the machine ends a step in progress (a breakpoint
    // on another vCPU wins, as in any all-stop debugger).
    if (m_step_vcpu) {
        m_step_vcpu.reset();
        apply_guest_debug();
    }
    return outcome;
}

RunOutcome Machine::position_stop(unsigned index)
{
    // Only the stop points reached go: a QMP break further on stays while
    // a debugger steps.
    if (m_stop_position && m_stop_position->vcpu == index && m_stop_position->units <= vcpu_units(index))
        m_stop_position.reset();
    if (m_stop_retired && retired() >= *m_stop_retired)
        m_stop_retired.reset();
    m_round.in_slice = true;
    RunOutcome outcome = RunOutcome::of(RunOutcome::Kind::DebugStop);
    outcome.vcpu = index;
    outcome.debug = DebugEvent{DebugEvent::Kind::Step, m_vcpus[index]->backend->get_state().rip, WatchKind::Write};
    if (m_step_vcpu) {
        m_step_vcpu.reset();
        apply_guest_debug();
    }
    return outcome;
}

void Machine::interrupt_for_debugger()
{
    RunOutcome outcome = RunOutcome::of(RunOutcome::Kind::DebugStop);
    outcome.vcpu = m_running;
    end_run(outcome);
}

void Machine::forget_round()
{
    m_round = Round{};
    m_stop_position.reset();
    m_stop_units.reset();
    m_stop_retired.reset();
    m_ending.reset();
    if (m_step_vcpu) {
        m_step_vcpu.reset();
        apply_guest_debug();
    }
}

u64 Machine::units() const
{
    u64 total = 0;
    for (const auto& vcpu : m_vcpus)
        total += vcpu->backend->units();
    return total;
}

namespace {

// Where a debugger's access at `address` lands: the physical address, or
// nothing for an unmapped or non-canonical one.
std::optional<GuestPhys> debug_translate(PhysicalMemory& memory, const CpuState& state, u64 address)
{
    if (state.long_mode_active()) {
        const unsigned bits = (state.cr4 & cr::CR4_LA57) ? 57 : 48;
        const unsigned shift = 64 - bits;
        if (static_cast<u64>(static_cast<i64>(address << shift) >> shift) != address)
            return std::nullopt;
    }
    WalkRequest request;
    request.vaddr = address;
    request.access = Access::Read;
    // Supervisor rights, with SMAP waived: a debugger sees user and kernel
    // pages alike, read-only ones included (it may write them, as to ROM).
    request.smap_override = true;
    request.inspect_only = true;
    Translation translation;
    const PagingRegs regs{state.cr0, state.cr3, state.cr4, state.msr.efer};
    if (walk_page_tables(memory, regs, request, translation))
        return std::nullopt;
    return translation.phys;
}

} // namespace

namespace {

// Calls `copy(physical address, offset, length)` for each piece of
// [address, address + length) within one page, in order, until a page is
// unmapped or `copy` fails; returns the bytes done.
template <class Copy>
size_t debug_access(PhysicalMemory& memory, const CpuState& state, u64 address, size_t length,
                    bool physical, Copy copy)
{
    size_t done = 0;
    while (done < length) {
        const u64 at = address + done;
        const size_t chunk = std::min<size_t>(length - done, PAGE_SIZE - (at & 0xFFF));
        const std::optional<GuestPhys> phys =
            physical ? std::optional<GuestPhys>(at) : debug_translate(memory, state, at);
        if (!phys || !copy(*phys, done, chunk))
            break;
        done += chunk;
    }
    return done;
}

} // namespace

size_t Machine::debug_read(unsigned vcpu, u64 address, u8* out, size_t length, bool physical)
{
    if (vcpu >= m_vcpus.size())
        return 0;
    return debug_access(m_memory, m_vcpus[vcpu]->backend->get_state(), address, length, physical,
                        [&](GuestPhys phys, size_t offset, size_t chunk) {
                            // A device, or nothing: never read a register for a debugger.
                            const u8* page = m_memory.readable_page(phys & PAGE_MASK);
                            if (page)
                                std::memcpy(out + offset, page + (phys & 0xFFF), chunk);
                            return page != nullptr;
                        });
}

size_t Machine::debug_write(unsigned vcpu, u64 address, const u8* data, size_t length, bool physical)
{
    if (vcpu >= m_vcpus.size())
        return 0;
    // RAM only; write_bytes drops the decoded blocks of the page.
    return debug_access(m_memory, m_vcpus[vcpu]->backend->get_state(), address, length, physical,
                        [&](GuestPhys phys, size_t offset, size_t chunk) {
                            return m_memory.write_bytes(phys, data + offset, chunk);
                        });
}
