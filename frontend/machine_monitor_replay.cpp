// QEMU's record/replay commands (qapi/replay.json) on viridian's replay
// (docs/replay.md): query-replay, replay-break, replay-delete-break and
// replay-seek. The instruction count is the whole run's, as --mark-output
// prints it; QEMU's icount counts the same thing (instructions executed)
// with one vCPU.
#include "frontend/machine_monitor.h"

void MachineMonitor::add_replay_commands()
{
    m_commands.add("query-replay", {}, [this](const Json&) -> QmpResult {
        u64 icount = 0;
        if (m_hooks.replay_icount && !m_hooks.replay_icount(icount))
            return qmp_error("The machine has stopped running");
        Json info{{"mode", m_hooks.replay_mode}, {"icount", icount}};
        if (m_hooks.replay_mode != "none")
            info["filename"] = m_hooks.replay_file;
        return info;
    });
    // The commands that move the replay: play mode only, and the hook
    // answers (an error message or nothing).
    const auto moving = [this](const char* name, std::vector<QmpParam> args,
                               std::function<std::optional<std::string>(const Json&)> act) {
        m_commands.add(name, std::move(args), [this, name, act](const Json& a) -> QmpResult {
            if (m_hooks.replay_mode != "play" || !m_hooks.replay_break || !m_hooks.replay_seek)
                return qmp_error(std::string(name) + " is allowed only in play mode");
            if (std::optional<std::string> refused = act(a))
                return qmp_error(*refused);
            return Json::object();
        });
    };
    moving("replay-break", {{"icount", QmpType::Integer}},
           [this](const Json& a) { return m_hooks.replay_break(a["icount"].get<u64>()); });
    moving("replay-delete-break", {}, [this](const Json&) { return m_hooks.replay_break(std::nullopt); });
    moving("replay-seek", {{"icount", QmpType::Integer}},
           [this](const Json& a) { return m_hooks.replay_seek(a["icount"].get<u64>()); });
}
