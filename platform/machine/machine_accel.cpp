// Moving a running machine's vCPUs between KVM and the interpreter
// (docs/kvm.md "Switching"). Only the vCPUs change hands: RAM, the devices,
// the local APICs, the Hyper-V partition and the clock are the machine's and
// serve either backend as they are.
#include "platform/machine/machine.h"

#include "accel/interp/interp_backend.h"

#include <chrono>

std::optional<std::string> Machine::switch_accelerator(MachineConfig::Accel target)
{
    using Accel = MachineConfig::Accel;
    if (target == m_running_accel)
        return std::nullopt;
    if (!can_switch_accelerator())
        return "The machine was not started with --accel kvm: it has no KVM VM to move to";
    if (m_round.active && m_round.in_slice)
        return "A vCPU is stopped inside its slice; continue it first";
    const auto started = std::chrono::steady_clock::now();
    // What each vCPU had under way is done; its state is whole.
    std::vector<CpuState> states;
    for (const auto& vcpu : m_vcpus) {
        vcpu->backend->quiesce();
        states.push_back(vcpu->backend->get_state());
    }
    if (target == Accel::Interp) {
        InterpOptions interp;
        interp.jit = m_config.jit;
        interp.perf_map = m_config.perf_map;
        interp.hypercall_gate = m_accel->hypercall_port(); // the page the guest has holds KVM's gate
        ErrorOr<std::unique_ptr<Accelerator>> made = make_interp_accelerator(accelerator_wiring(), interp);
        if (made.is_error())
            return made.error().message;
        m_parked_accel = std::exchange(m_accel, made.release_value());
        for (unsigned i = 0; i < m_vcpus.size(); ++i) {
            m_vcpus[i]->parked = std::move(m_vcpus[i]->backend);
            m_vcpus[i]->backend = m_accel->create_vcpu(i);
        }
    } else {
        // The interpreter's vCPUs go before the accelerator whose block
        // cache they share.
        for (const auto& vcpu : m_vcpus) {
            m_dropped_interrupts += vcpu->backend->external_interrupts();
            vcpu->backend = std::move(vcpu->parked);
        }
        m_accel = std::move(m_parked_accel);
    }
    for (unsigned i = 0; i < m_vcpus.size(); ++i) {
        connect_vcpu(i);
        m_vcpus[i]->backend->set_state(states[i]);
    }
    m_running_accel = target;
    m_slices = m_accel->run_slices().value_or(Accelerator::RunSlices{QUANTUM, VCPU_SLICE});
    // The host is next heard at once: retired() counts the new backend's units.
    m_next_host_poll = 0;
    ++m_accel_switches;
    m_last_switch_ns = static_cast<u64>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count());
    return std::nullopt;
}
