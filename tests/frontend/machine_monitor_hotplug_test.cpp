// QMP's disk hot-plug commands (frontend/machine_monitor_hotplug.cpp:
// blockdev-add, device_add, device_del, blockdev-del) with the machine's
// side replaced by a record of what it was asked; the texts are QEMU 7.2's
// (tests/guest/qmp_hotplug_steps.py checks them under a running Linux).
#include "frontend/machine_monitor.h"

#include "tests/platform/block/temp_dir.h"
#include "tests/platform/block/test_image.h"

#include <doctest/doctest.h>

#include <sstream>
#include <vector>

namespace {

struct Fixture {
    TempDir dir;
    EventLoop loop;
    std::vector<MachineDrive> attached;
    std::vector<u8> detached;
    std::optional<std::string> machine_refuses;
    std::unique_ptr<MachineMonitor> monitor;
    std::unique_ptr<QmpSession> session;

    // A machine started with a SCSI disk at LUN 0; `scsi` false: no
    // synthetic controller (--enlightenments off).
    explicit Fixture(bool scsi = true, std::string refused = {})
    {
        std::vector<MachineDrive> drives{{make_raw_image(dir.file("boot.img"), 1 << 20, false), 0, false, true}};
        make_raw_image(dir.file("hot.img"), 2 << 20, false);
        MachineMonitorHooks hooks;
        hooks.drives = monitor_drives(drives, 1, false);
        hooks.drives[0].file = dir.file("boot.img");
        hooks.hotplug_refused = std::move(refused);
        if (scsi) {
            hooks.scsi_attach = [this](const MachineDrive& drive, std::optional<std::string>& error) {
                error = machine_refuses;
                if (!error)
                    attached.push_back(drive);
                return true;
            };
            hooks.scsi_detach = [this](u8 lun, std::optional<std::string>& error) {
                error = machine_refuses;
                if (!error)
                    detached.push_back(lun);
                return true;
            };
        }
        monitor = std::make_unique<MachineMonitor>(loop, std::move(hooks), [] { return QmpTimestamp{1, 2}; });
        session = std::make_unique<QmpSession>(monitor->monitor());
        session->receive(R"({"execute": "qmp_capabilities"})");
        session->take_output();
    }
    std::vector<Json> execute(const std::string& name, const Json& args = Json::object())
    {
        session->receive(Json{{"execute", name}, {"arguments", args}}.dump());
        std::vector<Json> out;
        std::istringstream lines(session->take_output());
        for (std::string line; std::getline(lines, line);)
            out.push_back(Json::parse(line));
        return out;
    }
    Json command(const std::string& name, const Json& args = Json::object()) { return execute(name, args).back(); }
    std::string error(const std::string& name, const Json& args)
    {
        const Json reply = command(name, args);
        return reply.contains("error") ? reply["error"]["desc"].get<std::string>() : "(no error)";
    }
    Json node(const std::string& name, const std::string& file, const std::string& driver = "raw")
    {
        return Json{{"driver", driver}, {"node-name", name}, {"file", {{"driver", "file"}, {"filename", dir.file(file)}}}};
    }
};

} // namespace

TEST_CASE("QMP hot-plug: blockdev-add and device_add attach a disk; device_del detaches it with DEVICE_DELETED")
{
    Fixture f;
    CHECK(f.command("blockdev-add", f.node("hot", "hot.img")) == Json{{"return", Json::object()}});
    CHECK(f.command("device_add", {{"driver", "scsi-hd"}, {"id", "d1"}, {"drive", "hot"}, {"lun", 5}}) ==
          Json{{"return", Json::object()}});
    REQUIRE(f.attached.size() == 1);
    CHECK(f.attached[0].scsi);
    CHECK(f.attached[0].index == 5);
    CHECK(f.attached[0].image->info().virtual_size == 2 << 20);
    const Json blocks = f.command("query-block")["return"];
    REQUIRE(blocks.size() == 2);
    CHECK(blocks[1]["device"] == "");
    CHECK(blocks[1]["qdev"] == "d1");
    CHECK(blocks[1]["inserted"]["node-name"] == "hot");
    CHECK(f.error("blockdev-del", {{"node-name", "hot"}}) == "Node hot is in use");

    const std::vector<Json> del = f.execute("device_del", {{"id", "d1"}});
    REQUIRE(del.size() == 2); // the event, then the reply
    CHECK(del[0]["event"] == "DEVICE_DELETED");
    CHECK(del[0]["data"] == Json{{"device", "d1"}, {"path", "/machine/peripheral/d1"}});
    CHECK(del[1] == Json{{"return", Json::object()}});
    CHECK(f.detached == std::vector<u8>{5});
    CHECK(f.command("query-block")["return"].size() == 1);
    CHECK(f.command("blockdev-del", {{"node-name", "hot"}}) == Json{{"return", Json::object()}});
    CHECK(f.error("blockdev-del", {{"node-name", "hot"}}) == "Failed to find node with node-name='hot'");
    const Json unknown = f.command("device_del", {{"id", "d1"}});
    CHECK(unknown["error"]["class"] == "DeviceNotFound");
    CHECK(unknown["error"]["desc"] == "Device 'd1' not found");
}

TEST_CASE("QMP hot-plug: a disk without a LUN takes the first free one; a LUN in use is refused")
{
    Fixture f;
    f.command("blockdev-add", f.node("a", "hot.img"));
    CHECK(f.error("device_add", {{"driver", "scsi-hd"}, {"drive", "a"}, {"lun", 0}}) ==
          "lun already used by 'scsi0-hd0'");
    CHECK(f.error("device_add", {{"driver", "scsi-hd"}, {"drive", "a"}, {"lun", 64}}) == "bad scsi device lun: 64");
    CHECK(f.error("device_add", {{"driver", "scsi-hd"}, {"drive", "a"}, {"scsi-id", 1}}) == "bad scsi device id: 1");
    CHECK(f.command("device_add", {{"driver", "scsi-hd"}, {"drive", "a"}}).contains("return"));
    REQUIRE(f.attached.size() == 1);
    CHECK(f.attached[0].index == 1);
    // An anonymous device: QEMU's path for it, and no device_del without an id.
    CHECK(f.command("query-block")["return"][1]["qdev"] == "/machine/peripheral-anon/device[0]");
    CHECK(f.error("device_add", {{"driver", "scsi-hd"}, {"drive", "a"}, {"lun", 2}}) ==
          "Drive 'a' is already in use by another device");
}

TEST_CASE("QMP hot-plug: what the machine or the run refuses leaves every list as it was")
{
    SUBCASE("no synthetic SCSI controller")
    {
        Fixture f(false);
        f.command("blockdev-add", f.node("a", "hot.img"));
        CHECK(f.error("device_add", {{"driver", "scsi-hd"}, {"drive", "a"}}) ==
              "No 'SCSI' bus found for device 'scsi-hd'");
    }
    SUBCASE("a recording")
    {
        Fixture f(true, "not while recording");
        f.command("blockdev-add", f.node("a", "hot.img"));
        CHECK(f.error("device_add", {{"driver", "scsi-hd"}, {"drive", "a"}}) == "not while recording");
        CHECK(f.attached.empty());
    }
    SUBCASE("the machine")
    {
        Fixture f;
        f.command("blockdev-add", f.node("a", "hot.img"));
        f.machine_refuses = "no room";
        CHECK(f.error("device_add", {{"driver", "scsi-hd"}, {"id", "x"}, {"drive", "a"}}) == "no room");
        CHECK(f.command("query-block")["return"].size() == 1);
        CHECK(f.command("blockdev-del", {{"node-name", "a"}}).contains("return")); // not in use
    }
    SUBCASE("the image")
    {
        Fixture f;
        CHECK(f.error("blockdev-add", f.node("m", "missing.img")).starts_with("Could not open '" +
                                                                            f.dir.file("missing.img") + "': "));
        CHECK(f.error("blockdev-add", f.node("v", "hot.img", "qcow2")) ==
              "Parameter 'driver' does not accept value 'qcow2'");
        CHECK(f.error("blockdev-add", {{"driver", "raw"}, {"node-name", "9x"}, {"file", "x"}}) ==
              "Invalid node-name: '9x'");
    }
}
