#include "frontend/machine_monitor.h"

const char* shutdown_cause_name(ShutdownCause cause)
{
    switch (cause) {
    case ShutdownCause::HostError:
        return "host-error";
    case ShutdownCause::HostQmpQuit:
        return "host-qmp-quit";
    case ShutdownCause::HostQmpSystemReset:
        return "host-qmp-system-reset";
    case ShutdownCause::HostSignal:
        return "host-signal";
    case ShutdownCause::HostUi:
        return "host-ui";
    case ShutdownCause::GuestShutdown:
        return "guest-shutdown";
    case ShutdownCause::GuestReset:
        return "guest-reset";
    case ShutdownCause::GuestPanic:
        return "guest-panic";
    }
    return "host-error";
}

bool shutdown_cause_is_guest(ShutdownCause cause)
{
    return cause == ShutdownCause::GuestShutdown || cause == ShutdownCause::GuestReset ||
           cause == ShutdownCause::GuestPanic;
}

namespace {

QmpError machine_gone() { return qmp_error("The machine has stopped running"); }

} // namespace

MachineMonitor::MachineMonitor(EventLoop& loop, MachineMonitorHooks hooks, QmpClock clock)
    : m_loop(loop), m_hooks(std::move(hooks)), m_monitor(m_commands, std::move(clock))
{
    add_run_state_commands();
    add_cpu_commands();
    // Save/restore adds migrate, migrate_cancel and query-migrate here
    // (issue 13 item 6), with the MIGRATION event.
}

MachineMonitor::~MachineMonitor() = default;

ErrorOr<void> MachineMonitor::listen(const ListenAddress& address, std::function<void()> on_connection)
{
    m_servers.push_back(TRY(QmpServer::listen(m_loop, m_monitor, address, std::move(on_connection))));
    return {};
}

void MachineMonitor::emit_event(std::string_view name, const Json& data)
{
    m_monitor.emit_event(name, data);
    for (auto& server : m_servers)
        server->flush();
}

// qapi/run-state.json: RESET and SHUTDOWN carry {"guest": bool, "reason":
// ShutdownCause}.
void MachineMonitor::emit_reset(ShutdownCause cause)
{
    emit_event("RESET", Json{{"guest", shutdown_cause_is_guest(cause)}, {"reason", shutdown_cause_name(cause)}});
}

void MachineMonitor::emit_shutdown(ShutdownCause cause)
{
    if (m_shutdown_sent) // quit already said it
        return;
    m_shutdown_sent = true;
    emit_event("SHUTDOWN", Json{{"guest", shutdown_cause_is_guest(cause)}, {"reason", shutdown_cause_name(cause)}});
}

void MachineMonitor::close()
{
    for (auto& server : m_servers)
        server->close();
}

void MachineMonitor::add_run_state_commands()
{
    // qapi/run-state.json StatusInfo. "singlestep" is always false here
    // (QEMU's -singlestep TCG option); "running" is status == "running".
    m_commands.add("query-status", {}, [this](const Json&) -> QmpResult {
        const char* status = !m_paused ? "running" : m_prelaunch ? "prelaunch" : "paused";
        return Json{{"status", status}, {"singlestep", false}, {"running", !m_paused}};
    });
    // stop and cont take effect before they return, and their events come
    // before the reply, as in QEMU (vm_stop and vm_start run synchronously
    // in the command). A command that changes nothing sends no event.
    m_commands.add("stop", {}, [this](const Json&) -> QmpResult {
        if (!m_hooks.set_paused(true))
            return machine_gone();
        if (!m_paused) {
            m_paused = true;
            emit_event("STOP");
        }
        return Json::object();
    });
    m_commands.add("cont", {}, [this](const Json&) -> QmpResult {
        if (!m_hooks.set_paused(false))
            return machine_gone();
        if (m_paused) {
            m_paused = false;
            m_prelaunch = false;
            emit_event("RESUME");
        }
        return Json::object();
    });
    // QEMU 7.2 sends RESET, POWERDOWN and SHUTDOWN before the reply to
    // system_reset, system_powerdown and quit (seen on its socket); the
    // machine acts on the request at its next poll point. A reset of a
    // stopped machine leaves it stopped, in QEMU's "prelaunch" state.
    m_commands.add("system_reset", {}, [this](const Json&) -> QmpResult {
        if (!m_hooks.reset())
            return machine_gone();
        emit_reset(ShutdownCause::HostQmpSystemReset);
        if (m_paused)
            m_prelaunch = true;
        return Json::object();
    });
    m_commands.add("system_powerdown", {}, [this](const Json&) -> QmpResult {
        if (!m_hooks.power_button())
            return machine_gone();
        emit_event("POWERDOWN");
        return Json::object();
    });
    m_commands.add("quit", {}, [this](const Json&) -> QmpResult {
        if (!m_hooks.quit())
            return machine_gone();
        emit_shutdown(ShutdownCause::HostQmpQuit);
        return Json::object();
    });
}

void MachineMonitor::add_cpu_commands()
{
    // qapi/machine.json CpuInfoFast. The topology is what CPUID describes
    // (cpu/state/cpuid_model.cpp): one socket of N single-threaded cores,
    // which is also QEMU 7.2's default for -smp N on the pc machine. qom-path names the CPU objects as
    // QEMU's pc machine does (created unattached, in order).
    m_commands.add("query-cpus-fast", {}, [this](const Json&) -> QmpResult {
        Json cpus = Json::array();
        const long thread = m_hooks.vcpu_thread_id ? m_hooks.vcpu_thread_id() : 0;
        for (unsigned i = 0; i < m_hooks.cpu_count; ++i) {
            cpus.push_back(Json{{"cpu-index", i},
                                {"qom-path", "/machine/unattached/device[" + std::to_string(i) + "]"},
                                {"thread-id", thread},
                                {"props", {{"core-id", i}, {"thread-id", 0}, {"socket-id", 0}}},
                                {"target", "x86_64"}});
        }
        return cpus;
    });
}
