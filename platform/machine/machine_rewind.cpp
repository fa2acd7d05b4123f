// Putting a live machine back to an earlier point of its run (the replay's
// in-memory snapshots, platform/replay/replay_snapshots.h). visit_state
// loads into a machine that has run as into a fresh one: every device sets
// (or disarms) its timers from the loaded fields, the VMBus channels and
// rings are rebuilt, and the vCPU backends drop their TLBs and decoded
// translations when their registers load (Cpu::load_state). What is left
// here is the run loop's own place, which no device holds.
#include "platform/machine/machine.h"

bool Machine::disk_requests_pending() const
{
    return disks_in_flight() > 0 || !m_disk_deliveries.empty();
}

ErrorOr<void> Machine::rewind_state(std::vector<u8> state, u64 next_host_poll)
{
    if (disk_requests_pending())
        return make_error("a disk request is in flight; drain the disks before putting the machine back");
    StateVisitor loader = StateVisitor::loader(std::move(state));
    visit_state(loader);
    if (!loader.ok())
        return make_error("cannot put the machine back: " + loader.error());
    if (!loader.at_end())
        return make_error("cannot put the machine back: its saved state is longer than this build reads");
    // Belt and braces: the interpreter's load_state drops them already, but a
    // backend's TLB holds translations from page tables that the restored
    // RAM may have changed, global ones included.
    for (auto& vcpu : m_vcpus)
        vcpu->backend->flush_tlb(true);
    m_next_host_poll = next_host_poll;
    m_poll_again = false;
    m_ending.reset();
    return {};
}
