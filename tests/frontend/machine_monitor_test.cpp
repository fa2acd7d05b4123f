// The machine's QMP commands and events (frontend/machine_monitor) with the
// machine replaced by hooks that record what they were asked.
#include "frontend/machine_monitor.h"

#include <doctest/doctest.h>

#include <sstream>
#include <vector>

namespace {

struct Fixture {
    EventLoop loop;
    bool machine_paused = false;
    bool machine_alive = true;
    int resets = 0, presses = 0, quits = 0;
    std::unique_ptr<MachineMonitor> monitor;
    std::unique_ptr<QmpSession> session;

    Fixture()
    {
        MachineMonitorHooks hooks;
        hooks.cpu_count = 2;
        hooks.vcpu_thread_id = [] { return 4242L; };
        hooks.set_paused = [this](bool paused) {
            machine_paused = paused;
            return machine_alive;
        };
        hooks.reset = [this] { return ++resets, machine_alive; };
        hooks.power_button = [this] { return ++presses, machine_alive; };
        hooks.quit = [this] { return ++quits, machine_alive; };
        monitor = std::make_unique<MachineMonitor>(loop, std::move(hooks), [] { return QmpTimestamp{1, 2}; });
        session = std::make_unique<QmpSession>(monitor->monitor());
        session->receive(R"({"execute": "qmp_capabilities"})");
        session->take_output();
    }

    // The messages the session sends for `request`, one JSON value each.
    std::vector<Json> execute(const std::string& request)
    {
        session->receive(request);
        return messages();
    }
    std::vector<Json> messages()
    {
        std::vector<Json> out;
        std::istringstream lines(session->take_output());
        for (std::string line; std::getline(lines, line);)
            out.push_back(Json::parse(line));
        return out;
    }
};

} // namespace

TEST_CASE("query-status reports running in QEMU's shape")
{
    Fixture f;
    const std::vector<Json> replies = f.execute(R"({"execute": "query-status"})");
    REQUIRE(replies.size() == 1);
    CHECK(replies[0]["return"] == Json{{"status", "running"}, {"singlestep", false}, {"running", true}});
}

TEST_CASE("stop pauses the machine and sends STOP before its reply; a second stop sends nothing")
{
    Fixture f;
    std::vector<Json> replies = f.execute(R"({"execute": "stop", "id": 1})");
    REQUIRE(replies.size() == 2);
    CHECK(replies[0]["event"] == "STOP");
    CHECK(replies[0]["timestamp"] == Json{{"seconds", 1}, {"microseconds", 2}});
    CHECK(replies[1] == Json{{"return", Json::object()}, {"id", 1}});
    CHECK(f.machine_paused);
    replies = f.execute(R"({"execute": "query-status"})");
    CHECK(replies[0]["return"] == Json{{"status", "paused"}, {"singlestep", false}, {"running", false}});
    replies = f.execute(R"({"execute": "stop"})");
    CHECK(replies.size() == 1);
}

TEST_CASE("cont resumes a stopped machine and sends RESUME")
{
    Fixture f;
    f.execute(R"({"execute": "stop"})");
    const std::vector<Json> replies = f.execute(R"({"execute": "cont"})");
    REQUIRE(replies.size() == 2);
    CHECK(replies[0]["event"] == "RESUME");
    CHECK_FALSE(f.machine_paused);
    CHECK_FALSE(f.monitor->paused());
}

TEST_CASE("system_powerdown presses the power button and sends POWERDOWN before its reply, as QEMU")
{
    Fixture f;
    std::vector<Json> replies = f.execute(R"({"execute": "system_powerdown"})");
    REQUIRE(replies.size() == 2);
    CHECK(replies[0]["event"] == "POWERDOWN");
    CHECK_FALSE(replies[0].contains("data"));
    CHECK(replies[1].contains("return"));
    CHECK(f.presses == 1);
}

TEST_CASE("system_reset sends RESET before its reply, and a stopped machine stays stopped in prelaunch")
{
    Fixture f;
    f.execute(R"({"execute": "stop"})");
    std::vector<Json> replies = f.execute(R"({"execute": "system_reset"})");
    REQUIRE(replies.size() == 2);
    CHECK(replies[0]["event"] == "RESET");
    CHECK(replies[0]["data"] == Json{{"guest", false}, {"reason", "host-qmp-system-reset"}});
    CHECK(f.resets == 1);
    replies = f.execute(R"({"execute": "query-status"})");
    CHECK(replies[0]["return"]["status"] == "prelaunch");
}

TEST_CASE("quit sends SHUTDOWN once, before its reply")
{
    Fixture f;
    std::vector<Json> replies = f.execute(R"({"execute": "quit"})");
    REQUIRE(replies.size() == 2);
    CHECK(replies[0]["data"] == Json{{"guest", false}, {"reason", "host-qmp-quit"}});
    CHECK(f.quits == 1);
    f.monitor->emit_shutdown(ShutdownCause::HostQmpQuit); // the machine's end
    CHECK(f.messages().empty());
}

TEST_CASE("RESET and SHUTDOWN carry QEMU's guest flag and reason")
{
    Fixture f;
    f.monitor->emit_reset(ShutdownCause::HostQmpSystemReset);
    f.monitor->emit_shutdown(ShutdownCause::GuestShutdown);
    const std::vector<Json> events = f.messages();
    REQUIRE(events.size() == 2);
    CHECK(events[0]["event"] == "RESET");
    CHECK(events[0]["data"] == Json{{"guest", false}, {"reason", "host-qmp-system-reset"}});
    CHECK(events[1]["event"] == "SHUTDOWN");
    CHECK(events[1]["data"] == Json{{"guest", true}, {"reason", "guest-shutdown"}});
}

TEST_CASE("query-cpus-fast lists every vCPU in QEMU's shape")
{
    Fixture f;
    const std::vector<Json> replies = f.execute(R"({"execute": "query-cpus-fast"})");
    const Json& cpus = replies[0]["return"];
    REQUIRE(cpus.size() == 2);
    CHECK(cpus[1] == Json{{"cpu-index", 1},
                          {"qom-path", "/machine/unattached/device[1]"},
                          {"thread-id", 4242},
                          {"props", {{"core-id", 1}, {"thread-id", 0}, {"socket-id", 0}}},
                          {"target", "x86_64"}});
}

TEST_CASE("A machine command after the machine has stopped is an error, not a hang")
{
    Fixture f;
    f.machine_alive = false;
    const std::vector<Json> replies = f.execute(R"({"execute": "stop"})");
    REQUIRE(replies.size() == 1);
    CHECK(replies[0]["error"]["class"] == "GenericError");
    CHECK_FALSE(f.monitor->paused());
}

TEST_CASE("The machine's commands refuse arguments they do not take")
{
    Fixture f;
    const std::vector<Json> replies = f.execute(R"({"execute": "stop", "arguments": {"now": true}})");
    CHECK(replies[0]["error"]["desc"] == "Parameter 'now' is unexpected");
}
