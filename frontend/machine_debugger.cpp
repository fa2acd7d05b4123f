#include "frontend/machine_debugger.h"

#include <memory>

std::optional<CpuState> MachineDebugger::registers(unsigned vcpu)
{
    if (vcpu >= m_vcpu_count)
        return std::nullopt;
    // Owned by the command too: it may run after a timeout here.
    auto result = std::make_shared<std::optional<CpuState>>();
    const auto machine = m_hooks.machine;
    if (!m_commands.call(
            [machine, vcpu, result] {
                if (Machine* m = machine())
                    *result = m->vcpu_state(vcpu);
            },
            CALL_TIMEOUT_NS))
        return std::nullopt;
    return *result;
}

std::string MachineDebugger::thread_state(unsigned vcpu)
{
    if (vcpu >= m_vcpu_count)
        return "";
    auto result = std::make_shared<std::string>();
    const auto machine = m_hooks.machine;
    if (!m_commands.call(
            [machine, vcpu, result] {
                if (Machine* m = machine())
                    *result = m->vcpu_waits_for_sipi(vcpu)        ? "waiting for SIPI"
                              : m->vcpu_state(vcpu).events.halted ? "halted"
                                                                  : "running";
            },
            CALL_TIMEOUT_NS))
        return "";
    return *result;
}

std::string MachineDebugger::replay_info()
{
    if (!m_hooks.replay_info)
        return GdbTarget::replay_info();
    auto result = std::make_shared<std::string>("the machine has stopped running\n");
    const auto info = m_hooks.replay_info;
    m_commands.call([info, result] { *result = info(); }, CALL_TIMEOUT_NS);
    return *result;
}

bool MachineDebugger::set_registers(unsigned vcpu, const CpuState& state)
{
    if (vcpu >= m_vcpu_count || m_hooks.replaying)
        return false;
    auto done = std::make_shared<bool>(false);
    const auto machine = m_hooks.machine;
    return m_commands.call(
               [machine, vcpu, state, done] {
                   if (Machine* m = machine()) {
                       m->set_vcpu_state(vcpu, state);
                       *done = true;
                   }
               },
               CALL_TIMEOUT_NS) &&
           *done;
}

size_t MachineDebugger::read_memory(unsigned vcpu, u64 address, std::span<u8> out, bool physical)
{
    auto buffer = std::make_shared<std::vector<u8>>(out.size());
    auto got = std::make_shared<size_t>(0);
    const auto machine = m_hooks.machine;
    if (!m_commands.call(
            [machine, vcpu, address, physical, buffer, got] {
                if (Machine* m = machine())
                    *got = m->debug_read(vcpu, address, buffer->data(), buffer->size(), physical);
            },
            CALL_TIMEOUT_NS))
        return 0;
    std::copy(buffer->begin(), buffer->begin() + static_cast<std::ptrdiff_t>(*got), out.begin());
    return *got;
}

size_t MachineDebugger::write_memory(unsigned vcpu, u64 address, std::span<const u8> data, bool physical)
{
    if (m_hooks.replaying)
        return 0;
    auto buffer = std::make_shared<std::vector<u8>>(data.begin(), data.end());
    auto wrote = std::make_shared<size_t>(0);
    const auto machine = m_hooks.machine;
    if (!m_commands.call(
            [machine, vcpu, address, physical, buffer, wrote] {
                if (Machine* m = machine())
                    *wrote = m->debug_write(vcpu, address, buffer->data(), buffer->size(), physical);
            },
            CALL_TIMEOUT_NS))
        return 0;
    return *wrote;
}

bool MachineDebugger::set_debug_points(const std::vector<u64>& breakpoints, const std::vector<Watchpoint>& watchpoints)
{
    auto points = std::make_shared<Points>(Points{breakpoints, watchpoints});
    const auto machine = m_hooks.machine;
    auto shared = m_points;
    return m_commands.call(
        [machine, points, shared] {
            *shared = *points; // kept for the machine of the next reboot
            if (Machine* m = machine())
                m->set_debug_points(points->breakpoints, points->watchpoints);
        },
        CALL_TIMEOUT_NS);
}

void MachineDebugger::machine_started(Machine& machine)
{
    if (!m_points->breakpoints.empty() || !m_points->watchpoints.empty())
        machine.set_debug_points(m_points->breakpoints, m_points->watchpoints);
}

bool MachineDebugger::resume(std::optional<unsigned> step)
{
    const auto machine = m_hooks.machine;
    const auto set_paused = m_hooks.set_paused;
    const bool replaying = m_hooks.replaying;
    if (!m_commands.post([machine, set_paused, step, replaying] {
            if (Machine* m = machine(); m && step) {
                // A replay's step is the vCPU's next unit in the recorded
                // schedule (the others run when their turns come).
                if (replaying)
                    m->stop_at_position(Machine::Position{*step, m->vcpu_units(*step) + 1});
                else
                    m->step_vcpu(*step);
            }
            set_paused(false);
        }))
        return false;
    if (m_hooks.run_state_changed)
        m_hooks.run_state_changed(false);
    return true;
}

bool MachineDebugger::reverse(unsigned vcpu, bool step)
{
    if (!m_hooks.request_reverse || vcpu >= m_vcpu_count)
        return false;
    const auto machine = m_hooks.machine;
    const auto request = m_hooks.request_reverse;
    // The frontend goes back between runs: the run in progress ends.
    if (!m_commands.post([machine, request, vcpu, step] {
            request(vcpu, step);
            if (Machine* m = machine())
                m->interrupt_for_debugger();
        }))
        return false;
    if (m_hooks.run_state_changed)
        m_hooks.run_state_changed(false);
    return true;
}

void MachineDebugger::interrupt()
{
    const auto set_paused = m_hooks.set_paused;
    const auto report = m_hooks.report_stop;
    m_commands.post([set_paused, report] {
        set_paused(true);
        report(GdbStop{GdbStop::Reason::Interrupt, 0, 0, WatchKind::Write, 0});
    });
    if (m_hooks.run_state_changed)
        m_hooks.run_state_changed(true);
}

bool MachineDebugger::attach()
{
    const auto set_paused = m_hooks.set_paused;
    if (!m_commands.call([set_paused] { set_paused(true); }, CALL_TIMEOUT_NS))
        return false;
    if (m_hooks.run_state_changed)
        m_hooks.run_state_changed(true);
    return true;
}

void MachineDebugger::kill()
{
    if (m_hooks.kill)
        m_hooks.kill();
}
