// QEMU's record/replay commands (qapi/replay.json) on viridian's replay
// (docs/replay.md): query-replay, replay-break, replay-delete-break and
// replay-seek. The instruction count is the whole run's, as --mark-output
// prints it; QEMU's icount counts the same thing (instructions executed)
// with one vCPU.
#include "frontend/machine_monitor.h"

namespace {

QmpError play_only(const char* command)
{
    return qmp_error(std::string(command) + " is allowed only in play mode");
}

} // namespace

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
    m_commands.add("replay-break", {{"icount", QmpType::Integer}}, [this](const Json& args) -> QmpResult {
        if (m_hooks.replay_mode != "play" || !m_hooks.replay_break)
            return play_only("replay-break");
        if (std::optional<std::string> refused = m_hooks.replay_break(args["icount"].get<u64>()))
            return qmp_error(*refused);
        return Json::object();
    });
    m_commands.add("replay-delete-break", {}, [this](const Json&) -> QmpResult {
        if (m_hooks.replay_mode != "play" || !m_hooks.replay_break)
            return play_only("replay-delete-break");
        if (std::optional<std::string> refused = m_hooks.replay_break(std::nullopt))
            return qmp_error(*refused);
        return Json::object();
    });
    m_commands.add("replay-seek", {{"icount", QmpType::Integer}}, [this](const Json& args) -> QmpResult {
        if (m_hooks.replay_mode != "play" || !m_hooks.replay_seek)
            return play_only("replay-seek");
        if (std::optional<std::string> refused = m_hooks.replay_seek(args["icount"].get<u64>()))
            return qmp_error(*refused);
        return Json::object();
    });
}
