// vCPUs that run at once, each on a host thread of its own (KVM: KVM_RUN
// blocks while the guest runs). docs/architecture.md "Threads": a round
// starts every vCPU's thread for the round's time while the machine's
// thread fires the timers; device accesses, timers and interrupts go under
// the device lock; between rounds every vCPU is stopped, as with the
// interpreter's turns, so host commands, snapshots and backend switches
// need nothing new.
#include "platform/machine/machine.h"

#include "mmu/base/host_time.h"

#include <algorithm>
#include <chrono>

namespace {

// The machine thread sleeps at least this long between two looks at the
// timers, so that one re-armed in the past cannot make it spin.
constexpr u64 MIN_TIMER_WAIT_NS = 20'000;

} // namespace

void Machine::stop_running_vcpu()
{
    if (m_parallel.active)
        stop_all_vcpus();
    else
        m_vcpus[m_running]->backend->request_stop();
}

void Machine::stop_all_vcpus()
{
    m_parallel.over = true;
    for (const auto& vcpu : m_vcpus)
        vcpu->backend->request_stop();
    m_vcpu_wake.notify_all();
    m_machine_wake.notify_all();
}

void Machine::vcpu_woken(unsigned index)
{
    // The interpreter asks its interrupt source at every instruction
    // boundary; only a vCPU on its own thread needs telling.
    if (!m_parallel.active)
        return;
    Vcpu& vcpu = *m_vcpus[index];
    ++vcpu.wakes;
    vcpu.backend->kick();
    m_vcpu_wake.notify_all();
}

void Machine::wait_for_vcpu_wake(std::unique_lock<std::mutex>& devices, const Vcpu& vcpu, u64 wakes)
{
    m_vcpu_wake.wait(devices, [&] { return vcpu.wakes != wakes || m_parallel.over || m_ending; });
}

std::optional<RunOutcome> Machine::run_parallel_round()
{
    std::unique_lock devices(m_device_lock);
    m_parallel = ParallelRound{};
    m_parallel.active = true;
    m_parallel.end_ns = host_monotonic_ns() + m_slices.round;
    m_parallel.running = vcpu_count();
    m_vcpu_threads.start(vcpu_count(), [this](unsigned index) { run_vcpu_thread(index); });
    // A disk's completion or a received frame is run at once (the vCPUs
    // need not stop for it); every other command waits for the round's end.
    // (The listener does not take the device lock, so a post that comes
    // just as this thread goes to sleep waits for its next wake-up: the
    // next deadline or the round's end.)
    if (m_commands)
        m_commands->set_post_listener([this] { m_machine_wake.notify_all(); });
    // A timer a vCPU arms earlier than this thread's next wake-up wakes it
    // (armed under the device lock, so none is missed). Only for the round:
    // the interpreter's timers never pay for the call.
    m_clock.set_arm_listener([this](u64 deadline) {
        if (deadline < m_parallel.wake_at)
            m_machine_wake.notify_all();
    });
    while (m_parallel.running > 0) {
        if (m_commands && !m_input_log)
            m_commands->run_device_work();
        m_clock.run_due();
        const u64 now = host_monotonic_ns();
        if (!m_parallel.over && now >= m_parallel.end_ns) {
            m_parallel.over = true;
            m_vcpu_wake.notify_all(); // the halted ones; the running ones stop at end_ns themselves
        }
        u64 wait_ns = m_parallel.over ? 1'000'000 : m_parallel.end_ns - now;
        const u64 deadline = m_clock.next_deadline();
        const u64 clock_now = m_clock.now_ns();
        if (deadline != ~0ull)
            wait_ns = std::min(wait_ns, std::max(deadline > clock_now ? deadline - clock_now : 0, MIN_TIMER_WAIT_NS));
        m_parallel.wake_at = clock_now + wait_ns;
        m_machine_wake.wait_for(devices, std::chrono::nanoseconds(wait_ns));
    }
    m_parallel.active = false;
    m_clock.set_arm_listener({});
    if (m_commands)
        m_commands->set_post_listener({});
    devices.unlock();
    m_vcpu_threads.wait();
    m_round.active = false;
    m_round.progressed = m_parallel.progressed;
    if (m_parallel.fault)
        return m_parallel.fault;
    return m_ending;
}

void Machine::run_vcpu_thread(unsigned index)
{
    Vcpu& vcpu = *m_vcpus[index];
    VcpuBackend& backend = *vcpu.backend;
    std::unique_lock devices(m_device_lock);
    // Halted (or waiting for a SIPI) when the round ended: only a round in
    // which every vCPU was idle lets the run loop look for a halt forever.
    // A thread that starts after its round is over did not find it idle.
    bool idle = false;
    while (!m_parallel.over && !m_ending) {
        apply_startup_requests(vcpu);
        // Read before the vCPU runs: a wake that comes while it is on its
        // way to halting is not lost.
        const u64 wakes = vcpu.wakes;
        if (m_board->lapic(index).wait_for_sipi() || m_board->suspended()) {
            idle = true;
            wait_for_vcpu_wake(devices, vcpu, wakes);
            continue;
        }
        const u64 now = host_monotonic_ns();
        if (now >= m_parallel.end_ns)
            break;
        devices.unlock();
        const VcpuExit exit = backend.run(m_parallel.end_ns - now);
        devices.lock();
        idle = exit == VcpuExit::Halted;
        if (exit == VcpuExit::TripleFault) {
            if (!m_parallel.fault)
                m_parallel.fault = triple_fault(index);
            stop_all_vcpus();
            break;
        }
        if (exit == VcpuExit::Halted)
            wait_for_vcpu_wake(devices, vcpu, wakes);
    }
    if (!idle)
        m_parallel.progressed = true;
    if (--m_parallel.running == 0)
        m_machine_wake.notify_all();
}
