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
    int resets = 0, presses = 0, quits = 0, cancels = 0;
    std::vector<std::string> migrations;
    std::unique_ptr<MachineMonitor> monitor;
    std::unique_ptr<QmpSession> session;

    // `adjust` changes the hooks before the monitor takes them.
    explicit Fixture(const std::function<void(MachineMonitorHooks&)>& adjust = {})
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
        hooks.migrate = [this](const std::string& uri) { return migrations.push_back(uri), machine_alive; };
        hooks.cancel_migration = [this] { return ++cancels, machine_alive; };
        hooks.integration_services = [this](std::vector<IntegrationServiceState>& out) {
            out = {{"shutdown", "ready", 0x30002}, {"heartbeat", "negotiating", 0}};
            return machine_alive;
        };
        if (adjust)
            adjust(hooks);
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

TEST_CASE("x-query-integration-services lists each service's state and negotiated version")
{
    Fixture f;
    const std::vector<Json> replies = f.execute(R"({"execute": "x-query-integration-services"})");
    const Json& services = replies[0]["return"];
    REQUIRE(services.size() == 2);
    CHECK(services[0] == Json{{"name", "shutdown"}, {"state", "ready"}, {"version", "3.2"}});
    CHECK(services[1] == Json{{"name", "heartbeat"}, {"state", "negotiating"}, {"version", nullptr}});
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

namespace {

std::vector<std::string> event_names(const std::vector<Json>& messages)
{
    std::vector<std::string> names;
    for (const Json& m : messages) {
        if (!m.contains("event"))
            continue;
        std::string name = m["event"].get<std::string>();
        if (m.contains("data") && m["data"].contains("status"))
            name.append(":").append(m["data"]["status"].get<std::string>());
        names.push_back(name);
    }
    return names;
}

MigrationProgress progress(MigrationProgress::Status status, u64 passes)
{
    MigrationProgress p;
    p.status = status;
    p.dirty_sync_count = passes;
    p.total_bytes = 1 << 20;
    p.transferred = 1000;
    return p;
}

} // namespace

TEST_CASE("query-migrate is an empty object before any migration")
{
    Fixture f;
    CHECK(f.execute(R"({"execute": "query-migrate"})")[0]["return"] == Json::object());
}

TEST_CASE("migrate hands the URI to the machine and a completed migration leaves the source postmigrate")
{
    Fixture f;
    f.execute(R"({"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": true}]}})");
    std::vector<Json> replies = f.execute(R"({"execute": "migrate", "arguments": {"uri": "exec:cat > /dev/null"}})");
    CHECK(f.migrations == std::vector<std::string>{"exec:cat > /dev/null"});
    CHECK(event_names(replies) == std::vector<std::string>{"MIGRATION:setup"});
    CHECK(replies.back()["return"] == Json::object());
    CHECK(f.execute(R"({"execute": "query-migrate"})")[0]["return"] == Json{{"status", "setup"}});
    // QEMU's order when everything happened between two updates.
    f.monitor->migration_update(progress(MigrationProgress::Status::Completed, 3));
    CHECK(event_names(f.messages()) == std::vector<std::string>{"MIGRATION_PASS", "MIGRATION:active", "MIGRATION_PASS",
                                                                "STOP", "MIGRATION_PASS", "MIGRATION:completed"});
    const Json info = f.execute(R"({"execute": "query-migrate"})")[0]["return"];
    CHECK(info["status"] == "completed");
    CHECK(info.contains("downtime"));
    CHECK(info["ram"]["transferred"] == 1000);
    CHECK(info["ram"]["mbps"].is_number_integer()); // 0, as QEMU prints it
    CHECK(f.execute(R"({"execute": "query-status"})")[0]["return"]["status"] == "postmigrate");
    CHECK(f.execute(R"({"execute": "migrate", "arguments": {"uri": "exec:true"}})")[0]["error"]["desc"] ==
          "Can't migrate the vm that was paused due to previous migration");
}

TEST_CASE("migrate refuses what QEMU 7.2 refuses, with its texts")
{
    Fixture f;
    CHECK(f.execute(R"({"execute": "migrate", "arguments": {"uri": "exec:true", "resume": true}})")[0]["error"]["desc"] ==
          "Cannot resume if there is no paused migration");
    CHECK(f.execute(R"({"execute": "migrate", "arguments": {"uri": "nfs:x"}})")[0]["error"]["desc"] ==
          "Parameter 'uri' expects a valid migration protocol");
    CHECK(f.execute(R"({"execute": "migrate", "arguments": {"uri": "exec:true", "blk": true}})")[0].contains("error"));
    CHECK(f.execute(R"({"execute": "migrate", "arguments": {"uri": "tcp:127.0.0.1:5", "detach": true}})")[0]["return"] ==
          Json::object());
    CHECK(f.execute(R"({"execute": "migrate", "arguments": {"uri": "exec:true"}})")[0]["error"]["desc"] ==
          "There's a migration process in progress");
    CHECK(f.migrations.size() == 1);
}

TEST_CASE("migrate_cancel asks the machine and reports cancelling, then cancelled")
{
    Fixture f;
    f.execute(R"({"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": true}]}})");
    CHECK(f.execute(R"({"execute": "migrate_cancel"})")[0]["return"] == Json::object());
    CHECK(f.cancels == 0); // nothing to cancel
    f.execute(R"({"execute": "migrate", "arguments": {"uri": "exec:cat"}})");
    f.monitor->migration_update(progress(MigrationProgress::Status::Active, 1));
    f.messages();
    CHECK(event_names(f.execute(R"({"execute": "migrate_cancel"})")) == std::vector<std::string>{"MIGRATION:cancelling"});
    CHECK(f.cancels == 1);
    CHECK(f.execute(R"({"execute": "query-migrate"})")[0]["return"]["status"] == "cancelling");
    f.monitor->migration_update(progress(MigrationProgress::Status::Cancelled, 1));
    CHECK(event_names(f.messages()) == std::vector<std::string>{"MIGRATION:cancelled"});
    CHECK(f.execute(R"({"execute": "query-migrate"})")[0]["return"] == Json{{"status", "cancelled"}});
    CHECK(f.execute(R"({"execute": "query-status"})")[0]["return"]["status"] == "running");
}

TEST_CASE("migrate-set-capabilities knows QEMU's names and refuses features viridian lacks")
{
    Fixture f;
    CHECK(f.execute(R"({"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "nosuch", "state": true}]}})")[0]["error"]["desc"] ==
          "Parameter 'capability' does not accept value 'nosuch'");
    CHECK(f.execute(R"({"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "xbzrle", "state": true}]}})")[0].contains("error"));
    CHECK(f.execute(R"({"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "xbzrle", "state": false}]}})")[0]["return"] == Json::object());
    // Without "events" no MIGRATION event is sent.
    CHECK(event_names(f.execute(R"({"execute": "migrate", "arguments": {"uri": "exec:cat"}})")).empty());
}

TEST_CASE("set_link takes the adapter's link down and up, and names no other device")
{
    Fixture f;
    std::vector<bool> links;
    MachineMonitorHooks hooks;
    hooks.set_paused = [](bool) { return true; };
    hooks.nic_names = {"e1000.0", "__org.qemu.nic0"};
    hooks.set_link = [&](bool up) { return links.push_back(up), true; };
    MachineMonitor monitor(f.loop, std::move(hooks), [] { return QmpTimestamp{1, 2}; });
    QmpSession session(monitor.monitor());
    session.receive(R"({"execute": "qmp_capabilities"})");
    session.take_output();
    session.receive(R"({"execute": "set_link", "arguments": {"name": "e1000.0", "up": false}})");
    CHECK(Json::parse(session.take_output()) == Json{{"return", Json::object()}});
    session.receive(R"({"execute": "set_link", "arguments": {"name": "__org.qemu.nic0", "up": true}})");
    CHECK(Json::parse(session.take_output()) == Json{{"return", Json::object()}});
    CHECK(links == std::vector<bool>{false, true});
    session.receive(R"({"execute": "set_link", "arguments": {"name": "net9", "up": true}})");
    const Json error = Json::parse(session.take_output());
    CHECK(error["error"]["class"] == "DeviceNotFound");
    CHECK(error["error"]["desc"] == "Device 'net9' not found");
    CHECK(links.size() == 2);
}

TEST_CASE("query-replay says none outside a recording, and the replay commands need play mode")
{
    Fixture f;
    std::vector<Json> replies = f.execute(R"({"execute": "query-replay"})");
    REQUIRE(replies.size() == 1);
    CHECK(replies[0]["return"] == Json{{"mode", "none"}, {"icount", 0}});
    for (const char* command : {"replay-break", "replay-seek"}) {
        replies = f.execute(std::string(R"({"execute": ")") + command + R"(", "arguments": {"icount": 5}})");
        REQUIRE(replies.size() == 1);
        CHECK(replies[0]["error"]["desc"] == std::string(command) + " is allowed only in play mode");
    }
    replies = f.execute(R"({"execute": "replay-seek"})");
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].contains("error")); // icount is required
}

TEST_CASE("x-guest-file-copy hands the request to the machine; its progress shows in x-query-guest-file-copy")
{
    std::vector<FileCopyRequest> asked;
    int cancels = 0;
    Fixture f([&](MachineMonitorHooks& hooks) {
        hooks.file_copy_start = [&](const FileCopyRequest& request, std::optional<std::string>& error) {
            asked.push_back(request);
            if (request.destination == "bad")
                error = "The destination must be an absolute path in the guest that names a file";
            return true;
        };
        hooks.file_copy_cancel = [&](std::optional<std::string>& error) {
            if (++cancels > 1)
                error = "No file copy is under way";
            return true;
        };
        hooks.file_copy_status = [](FileCopyStatus& out) {
            out = {"failed", "/h/f", "/g/f", 10, 4, "the guest's disk is full"};
            return true;
        };
    });
    std::vector<Json> replies = f.execute(
        R"({"execute": "x-guest-file-copy", "arguments": {"source": "/h/f", "destination": "/g/f", "create-full-path": true}})");
    CHECK(replies[0] == Json{{"return", Json::object()}});
    REQUIRE(asked.size() == 1);
    CHECK(asked[0].source == "/h/f");
    CHECK(asked[0].destination == "/g/f");
    CHECK(asked[0].create_path);
    CHECK_FALSE(asked[0].overwrite);
    replies = f.execute(R"({"execute": "x-guest-file-copy", "arguments": {"source": "/h/f", "destination": "bad"}})");
    CHECK(replies[0]["error"]["desc"] == "The destination must be an absolute path in the guest that names a file");
    replies = f.execute(R"({"execute": "x-guest-file-copy", "arguments": {"source": "/h/f"}})");
    CHECK(replies[0]["error"]["desc"] == "Parameter 'destination' is missing");
    CHECK(f.execute(R"({"execute": "x-guest-file-copy-cancel"})")[0] == Json{{"return", Json::object()}});
    CHECK(f.execute(R"({"execute": "x-guest-file-copy-cancel"})")[0]["error"]["desc"] == "No file copy is under way");
    CHECK(f.execute(R"({"execute": "x-query-guest-file-copy"})")[0]["return"] ==
          Json{{"state", "failed"}, {"source", "/h/f"}, {"destination", "/g/f"}, {"size", 10}, {"written", 4},
               {"error", "the guest's disk is full"}});
}

TEST_CASE("x-guest-file-copy is refused without the enlightenments and in a recording")
{
    Fixture plain;
    CHECK(plain.execute(R"({"execute": "x-guest-file-copy", "arguments": {"source": "/a", "destination": "/b"}})")[0]
              ["error"]["desc"] == "The machine has no Hyper-V enlightenments (--enlightenments off)");
    CHECK(plain.execute(R"({"execute": "x-query-guest-file-copy"})")[0]["return"] ==
          Json{{"state", "not offered"}, {"size", 0}, {"written", 0}});
    bool asked = false;
    Fixture recording([&](MachineMonitorHooks& hooks) {
        hooks.integration_refused = "not while recording or replaying";
        hooks.file_copy_start = [&](const FileCopyRequest&, std::optional<std::string>&) { return asked = true; };
    });
    CHECK(recording.execute(R"({"execute": "x-guest-file-copy", "arguments": {"source": "/a", "destination": "/b"}})")[0]
              ["error"]["desc"] == "not while recording or replaying");
    CHECK_FALSE(asked);
}

TEST_CASE("query-rx-filter lists the adapter's filter under its name, in QEMU's shape and with its errors")
{
    Fixture none;
    CHECK(none.execute(R"({"execute": "query-rx-filter"})")[0] == Json{{"return", Json::array()}});
    CHECK(none.execute(R"({"execute": "query-rx-filter", "arguments": {"name": "e1000.0"}})")[0]["error"]["desc"] ==
          "invalid net client name: e1000.0");
    Fixture f([](MachineMonitorHooks& hooks) {
        hooks.nic_names = {"e1000.0", "__org.qemu.nic0"};
        hooks.rx_filter = [](std::optional<RxFilter>& out) {
            RxFilter filter;
            filter.main_mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
            filter.broadcast_allowed = true;
            filter.multicast_table = {{0x01, 0x00, 0x5E, 0x00, 0x00, 0x01}};
            filter.multicast = RxFilter::Mode::Normal;
            out = filter;
            return true;
        };
    });
    const Json expected = Json::array({Json{{"name", "e1000.0"},
                                            {"promiscuous", false},
                                            {"multicast", "normal"},
                                            {"unicast", "normal"},
                                            {"vlan", "all"},
                                            {"broadcast-allowed", true},
                                            {"multicast-overflow", false},
                                            {"unicast-overflow", false},
                                            {"main-mac", "52:54:00:12:34:56"},
                                            {"vlan-table", Json::array()},
                                            {"unicast-table", Json::array()},
                                            {"multicast-table", {"01:00:5e:00:00:01"}}}});
    CHECK(f.execute(R"({"execute": "query-rx-filter"})")[0]["return"] == expected);
    CHECK(f.execute(R"({"execute": "query-rx-filter", "arguments": {"name": "e1000.0"}})")[0]["return"] == expected);
    CHECK(f.execute(R"({"execute": "query-rx-filter", "arguments": {"name": "__org.qemu.nic0"}})")[0]["error"]["desc"] ==
          "net client(__org.qemu.nic0) isn't a NIC");
    CHECK(f.execute(R"({"execute": "query-rx-filter", "arguments": {"name": "nic9"}})")[0]["error"]["desc"] ==
          "invalid net client name: nic9");
}

TEST_CASE("x-switch-accel moves the vCPUs through the hook; query-kvm and x-query-accel report the backend")
{
    std::string running = "kvm";
    std::vector<std::string> asked;
    Fixture f([&](MachineMonitorHooks& hooks) {
        hooks.accel_state = [&](MachineMonitorHooks::AccelState& out) {
            out = {running, true, asked.size(), 2500 * asked.size()};
            return true;
        };
        hooks.switch_accel = [&](const std::string& accel, std::optional<std::string>& error) {
            asked.push_back(accel);
            if (accel == running)
                error = "refused by the machine";
            else
                running = accel;
            return true;
        };
    });
    CHECK(f.execute(R"({"execute": "query-kvm"})")[0] == Json{{"return", {{"enabled", true}, {"present", true}}}});
    CHECK(f.execute(R"({"execute": "x-switch-accel", "arguments": {"accel": "interp"}})")[0] ==
          Json{{"return", Json::object()}});
    CHECK(f.execute(R"({"execute": "query-kvm"})")[0] == Json{{"return", {{"enabled", false}, {"present", true}}}});
    CHECK(f.execute(R"({"execute": "x-query-accel"})")[0] ==
          Json{{"return", {{"accel", "interp"}, {"last-switch-us", 2}, {"switchable", true}, {"switches", 1}}}});
    // The machine's refusal is the command's error; a name it does not know
    // is refused before the machine is asked, in QEMU's words for an enum.
    const Json refused = f.execute(R"({"execute": "x-switch-accel", "arguments": {"accel": "interp"}})")[0];
    CHECK(refused["error"]["desc"] == "refused by the machine");
    const Json unknown = f.execute(R"({"execute": "x-switch-accel", "arguments": {"accel": "tcg"}})")[0];
    CHECK(unknown["error"]["class"] == "GenericError");
    CHECK(unknown["error"]["desc"] == "Parameter 'accel' does not accept value 'tcg'");
    CHECK(asked == std::vector<std::string>{"interp", "interp"});
    const Json missing = f.execute(R"({"execute": "x-switch-accel"})")[0];
    CHECK(missing["error"]["desc"] == "Parameter 'accel' is missing");
}
