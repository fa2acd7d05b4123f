// QMP's block commands (frontend/machine_monitor: query-block, eject,
// blockdev-open-tray, blockdev-close-tray, blockdev-remove-medium,
// blockdev-change-medium) with the machine's CD-ROM tray replaced by a model
// of what the drive does (platform/storage/atapi_cdrom has its own tests).
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
    // The CD-ROM drive's tray, as the guest left it.
    bool tray_open = false, locked = false, eject_requested = false;
    std::shared_ptr<BlockImage> disc;
    std::vector<MediumChange> changes; // every action but Query, in order
    bool machine_alive = true;
    std::unique_ptr<MachineMonitor> monitor;
    std::unique_ptr<QmpSession> session;

    explicit Fixture(std::string tray_refused = {})
    {
        std::vector<MachineDrive> drives{
            {make_raw_image(dir.file("disk.img"), 1 << 20, false), 0, false, false},
            {make_raw_image(dir.file("a.iso"), 1 << 20, true), 2, true, false}};
        disc = drives[1].image;
        MachineMonitorHooks hooks;
        hooks.tray_refused = std::move(tray_refused);
        hooks.drives = monitor_drives(drives, 1, false);
        hooks.drives[0].file = dir.file("disk.img");
        hooks.drives[1].file = dir.file("a.iso");
        hooks.tray = [this](size_t drive, const MediumChange& change, std::shared_ptr<BlockImage> image,
                            TrayState& out) {
            REQUIRE(drive == 1);
            const TrayAction action = change.action;
            if (action != TrayAction::Query)
                changes.push_back(change);
            out.moved = false;
            switch (action) {
            case TrayAction::Query:
                break;
            case TrayAction::Open:
            case TrayAction::ForceOpen:
                if (tray_open)
                    break;
                if (locked) {
                    eject_requested = true;
                    if (action == TrayAction::Open)
                        break;
                    locked = false;
                }
                tray_open = out.moved = true;
                break;
            case TrayAction::Close:
                out.moved = tray_open;
                tray_open = false;
                break;
            case TrayAction::Remove:
                disc.reset();
                break;
            case TrayAction::Insert:
                out.moved = tray_open;
                disc = image;
                tray_open = false;
                break;
            }
            out.open = tray_open;
            out.locked = locked;
            return machine_alive;
        };
        monitor = std::make_unique<MachineMonitor>(loop, std::move(hooks), [] {
            return QmpTimestamp{1, 2};
        });
        session = std::make_unique<QmpSession>(monitor->monitor());
        session->receive(R"({"execute": "qmp_capabilities"})");
        session->take_output();
    }

    std::vector<Json> execute(const Json& request)
    {
        session->receive(request.dump());
        std::vector<Json> out;
        std::istringstream lines(session->take_output());
        for (std::string line; std::getline(lines, line);)
            out.push_back(Json::parse(line));
        return out;
    }
    Json command(const std::string& name, const Json& args = Json::object())
    {
        return execute(Json{{"execute", name}, {"arguments", args}}).back();
    }
    static Json tray_event(bool open)
    {
        return Json{
            {"device", "ide1-cd0"}, {"id", "/machine/unattached/device[19]"}, {"tray-open", open}};
    }
};

} // namespace

TEST_CASE("Drives get QEMU's -drive names and the QOM paths of its pc machine")
{
    const std::vector<MachineDrive> drives{{nullptr, 3, true, false},
                                           {nullptr, 0, false, false},
                                           {nullptr, 8, false, true},
                                           {nullptr, 1, false, false}};
    const std::vector<MonitorDrive> named = monitor_drives(drives, 2, true);
    CHECK(named[0].device == "ide1-cd1");
    CHECK(named[1].device == "ide0-hd0");
    CHECK(named[2].device == "scsi1-hd1");
    CHECK(named[3].device == "ide0-hd1");
    CHECK(named[1].qdev == "/machine/unattached/device[20]"); // after 2 vCPUs and the NIC
    CHECK(named[3].qdev == "/machine/unattached/device[21]");
    CHECK(named[0].qdev == "/machine/unattached/device[22]");
    CHECK(named[2].qdev == "/machine/unattached/device[23]");
    CHECK(named[0].cdrom);
}

TEST_CASE("query-block describes a disk and a CD-ROM drive in QEMU 7.2's shape")
{
    Fixture f;
    const Json reply = f.command("query-block");
    REQUIRE(reply["return"].size() == 2);
    const Json& disk = reply["return"][0];
    CHECK(disk["device"] == "ide0-hd0");
    CHECK(disk["qdev"] == "/machine/unattached/device[18]");
    CHECK(disk["removable"] == false);
    CHECK_FALSE(disk.contains("tray_open"));
    CHECK(disk["inserted"]["ro"] == false);
    CHECK(disk["inserted"]["drv"] == "raw");
    CHECK(disk["inserted"]["file"] == f.dir.file("disk.img"));
    CHECK(disk["inserted"]["image"]["virtual-size"] == 1 << 20);
    CHECK(disk["inserted"]["image"]["format"] == "raw");
    const Json& cd = reply["return"][1];
    CHECK(cd["device"] == "ide1-cd0");
    CHECK(cd["removable"] == true);
    CHECK(cd["tray_open"] == false);
    CHECK(cd["locked"] == false);
    CHECK(cd["inserted"]["ro"] == true);
    CHECK(cd["inserted"]["node-name"] != disk["inserted"]["node-name"]);
}

TEST_CASE("eject opens the tray, sends DEVICE_TRAY_MOVED before its reply and takes the disc out")
{
    Fixture f;
    const std::vector<Json> replies =
        f.execute(Json{{"execute", "eject"}, {"arguments", {{"device", "ide1-cd0"}}}});
    REQUIRE(replies.size() == 2);
    CHECK(replies[0]["event"] == "DEVICE_TRAY_MOVED");
    CHECK(replies[0]["data"] == Fixture::tray_event(true));
    CHECK(replies[1]["return"] == Json::object());
    CHECK(f.tray_open);
    CHECK_FALSE(f.disc);
    const Json cd = f.command("query-block")["return"][1];
    CHECK(cd["tray_open"] == true);
    CHECK_FALSE(cd.contains("inserted"));
    // Again: nothing moves, nothing fails.
    CHECK(f.execute(Json{{"execute", "eject"}, {"arguments", {{"device", "ide1-cd0"}}}}).size() ==
          1);
}

TEST_CASE(
    "eject of a tray the guest locked fails with QEMU's text and asks the guest; force opens it")
{
    Fixture f;
    f.locked = true;
    const Json refused = f.command("eject", {{"device", "ide1-cd0"}});
    CHECK(refused["error"]["class"] == "GenericError");
    CHECK(refused["error"]["desc"] ==
          "Device 'ide1-cd0' is locked and force was not specified, wait for "
          "tray to open and try again");
    CHECK(f.eject_requested);
    CHECK_FALSE(f.tray_open);
    CHECK(f.disc);
    CHECK(f.command("eject", {{"device", "ide1-cd0"}, {"force", true}})["return"] ==
          Json::object());
    CHECK(f.tray_open);
    CHECK_FALSE(f.disc);
}

TEST_CASE("blockdev-open-tray of a locked tray only asks the guest and is no error")
{
    Fixture f;
    f.locked = true;
    const std::vector<Json> replies =
        f.execute(Json{{"execute", "blockdev-open-tray"}, {"arguments", {{"device", "ide1-cd0"}}}});
    REQUIRE(replies.size() == 1);
    CHECK(replies[0]["return"] == Json::object());
    CHECK(f.eject_requested);
    CHECK_FALSE(f.tray_open);
}

TEST_CASE("blockdev-open-tray and blockdev-close-tray move the tray, each once, with the disc kept")
{
    Fixture f;
    std::vector<Json> replies =
        f.execute(Json{{"execute", "blockdev-open-tray"},
                       {"arguments", {{"id", "/machine/unattached/device[19]"}}}});
    REQUIRE(replies.size() == 2);
    CHECK(replies[0]["data"] == Fixture::tray_event(true));
    CHECK(f.tray_open);
    replies = f.execute(
        Json{{"execute", "blockdev-close-tray"}, {"arguments", {{"device", "ide1-cd0"}}}});
    REQUIRE(replies.size() == 2);
    CHECK(replies[0]["data"] == Fixture::tray_event(false));
    CHECK(
        f.execute(Json{{"execute", "blockdev-close-tray"}, {"arguments", {{"device", "ide1-cd0"}}}})
            .size() == 1);
    CHECK(f.disc);
}

TEST_CASE("The block commands name a drive as QEMU does and refuse a disk with its texts")
{
    Fixture f;
    Json reply = f.command("eject", Json::object());
    CHECK(reply["error"]["desc"] == "Need exactly one of 'device' and 'id'");
    reply = f.command("eject", {{"device", "ide1-cd0"}, {"id", "x"}});
    CHECK(reply["error"]["desc"] == "Need exactly one of 'device' and 'id'");
    reply = f.command("eject", {{"device", "nope"}});
    CHECK(reply["error"] == Json{{"class", "DeviceNotFound"}, {"desc", "Device 'nope' not found"}});
    for (const char* name : {"eject", "blockdev-open-tray", "blockdev-close-tray"}) {
        reply = f.command(name, {{"device", "ide0-hd0"}});
        CHECK(reply["error"]["desc"] == "Device 'ide0-hd0' is not removable");
    }
    reply = f.command("blockdev-remove-medium", {{"device", "ide1-cd0"}});
    CHECK(reply["error"]["desc"] == "Parameter 'id' is missing");
}

TEST_CASE("blockdev-remove-medium wants the tray open")
{
    Fixture f;
    const Json id{{"id", "/machine/unattached/device[19]"}};
    CHECK(f.command("blockdev-remove-medium", id)["error"]["desc"] ==
          "Tray of device '/machine/unattached/device[19]' is not open");
    f.tray_open = true;
    CHECK(f.command("blockdev-remove-medium", id)["return"] == Json::object());
    CHECK_FALSE(f.disc);
}

TEST_CASE("blockdev-change-medium opens the image and swaps the disc: the tray opens and closes")
{
    Fixture f;
    make_raw_image(f.dir.file("b.iso"), 2 << 20, true);
    const std::vector<Json> replies = f.execute(
        Json{{"execute", "blockdev-change-medium"},
             {"arguments",
              {{"device", "ide1-cd0"}, {"filename", f.dir.file("b.iso")}, {"format", "raw"}}}});
    REQUIRE(replies.size() == 3);
    CHECK(replies[0]["data"] == Fixture::tray_event(true));
    CHECK(replies[1]["data"] == Fixture::tray_event(false));
    CHECK(replies[2]["return"] == Json::object());
    REQUIRE(f.disc);
    CHECK(f.disc->info().virtual_size == 2 << 20);
    CHECK_FALSE(f.tray_open);
    const Json cd = f.command("query-block")["return"][1];
    CHECK(cd["inserted"]["file"] == f.dir.file("b.iso"));
    CHECK(cd["inserted"]["ro"] == true); // retained
    CHECK(cd["inserted"]["image"]["virtual-size"] == 2 << 20);
}

TEST_CASE("blockdev-change-medium leaves the drive alone when the image does not open")
{
    Fixture f;
    Json reply = f.command("blockdev-change-medium",
                           {{"device", "ide1-cd0"}, {"filename", f.dir.file("none.iso")}});
    CHECK(reply["error"]["class"] == "GenericError");
    CHECK(reply["error"]["desc"] ==
          "Could not open '" + f.dir.file("none.iso") + "': No such file or directory");
    reply =
        f.command("blockdev-change-medium",
                  {{"device", "ide1-cd0"}, {"filename", f.dir.file("a.iso")}, {"format", "foo"}});
    CHECK(reply["error"]["desc"] == "Unknown driver 'foo'");
    reply = f.command(
        "blockdev-change-medium",
        {{"device", "ide1-cd0"}, {"filename", f.dir.file("a.iso")}, {"read-only-mode", "maybe"}});
    CHECK(reply["error"]["desc"] == "Parameter 'read-only-mode' does not accept value 'maybe'");
    CHECK_FALSE(f.tray_open);
    CHECK(f.disc);
    CHECK(f.changes.empty()); // nothing asked of the machine, so nothing recorded
}

TEST_CASE("blockdev-change-medium of a locked tray fails as eject does and keeps the old disc")
{
    Fixture f;
    f.locked = true;
    const std::shared_ptr<BlockImage> old = f.disc;
    make_raw_image(f.dir.file("b.iso"), 2 << 20, true);
    const Json reply = f.command("blockdev-change-medium",
                                 {{"device", "ide1-cd0"}, {"filename", f.dir.file("b.iso")}});
    CHECK(reply["error"]["desc"].get<std::string>().starts_with("Device 'ide1-cd0' is locked"));
    CHECK(f.disc == old);
}

TEST_CASE("The guest's own tray move is sent as DEVICE_TRAY_MOVED")
{
    Fixture f;
    f.monitor->tray_moved(1, true);
    const std::vector<Json> events = f.execute(Json{{"execute", "query-version"}});
    REQUIRE(events.size() == 2);
    CHECK(events[0]["event"] == "DEVICE_TRAY_MOVED");
    CHECK(events[0]["data"] == Fixture::tray_event(true));
}

TEST_CASE("A block command after the machine has stopped is an error, not a hang")
{
    Fixture f;
    f.machine_alive = false;
    CHECK(f.command("eject", {{"device", "ide1-cd0"}})["error"]["desc"] ==
          "The machine has stopped running");
}

TEST_CASE("A changed or ejected disc is what the machine of the next reboot starts with")
{
    TempDir dir;
    std::vector<MachineDrive> drives{
        {make_raw_image(dir.file("a.iso"), 1 << 20, true), 2, true, false}};
    const std::shared_ptr<BlockImage> b = make_raw_image(dir.file("b.iso"), 2 << 20, true);
    apply_tray_action(nullptr, drives, 0, TrayAction::Insert, b); // between two machines
    CHECK(drives[0].image == b);
    apply_tray_action(nullptr, drives, 0, TrayAction::Remove, nullptr);
    CHECK_FALSE(drives[0].image);
}

TEST_CASE("blockdev-change-medium hands the machine the file, format and mode it opened (what a recording keeps)")
{
    Fixture f;
    make_raw_image(f.dir.file("b.iso"), 2 << 20, true);
    REQUIRE(f.command("blockdev-change-medium", {{"device", "ide1-cd0"},
                                                 {"filename", f.dir.file("b.iso")},
                                                 {"format", "raw"},
                                                 {"read-only-mode", "read-only"}})
                .contains("return"));
    REQUIRE(f.changes.size() == 3);
    CHECK(f.changes[0].action == TrayAction::Open);
    CHECK(f.changes[1].action == TrayAction::Remove);
    CHECK(f.changes[2].action == TrayAction::Insert);
    CHECK(f.changes[2].file == f.dir.file("b.iso"));
    CHECK(f.changes[2].format == "raw");
    CHECK(f.changes[2].read_only);
    f.changes.clear();
    REQUIRE(f.command("eject", {{"device", "ide1-cd0"}, {"force", true}}).contains("return"));
    REQUIRE(f.changes.size() == 2);
    CHECK(f.changes[0].action == TrayAction::ForceOpen);
    CHECK(f.changes[1].action == TrayAction::Remove);
}

TEST_CASE("While replaying, the tray commands fail before anything is opened and the tray stays as it was")
{
    const std::string refused = "replaying a recording: the guest's input comes from it";
    Fixture f(refused);
    for (const char* command : {"eject", "blockdev-open-tray", "blockdev-close-tray"}) {
        CAPTURE(command);
        const Json reply = f.command(command, Json{{"device", "ide1-cd0"}});
        REQUIRE(reply.contains("error"));
        CHECK(reply["error"]["desc"] == refused);
    }
    const Json reply =
        f.command("blockdev-change-medium", {{"device", "ide1-cd0"}, {"filename", f.dir.file("none.iso")}});
    CHECK(reply["error"]["desc"] == refused);
    CHECK_FALSE(f.tray_open);
    CHECK(f.disc != nullptr);
    CHECK(f.changes.empty());
    // Reading the tray is no input: query-block still answers.
    CHECK(f.command("query-block")["return"][1]["tray_open"] == false);
}

TEST_CASE("A replayed disc change shows in query-block, and its tray moves come as DEVICE_TRAY_MOVED")
{
    Fixture f("replaying a recording: the guest's input comes from it");
    const std::shared_ptr<BlockImage> b = make_raw_image(f.dir.file("b.iso"), 2 << 20, true);
    f.monitor->medium_replayed(1, TrayAction::Open, nullptr, TrayState{true, false, true});
    f.monitor->medium_replayed(1, TrayAction::Remove, nullptr, TrayState{true, false, false});
    MediumChange insert(TrayAction::Insert);
    insert.file = f.dir.file("b.iso");
    insert.read_only = true;
    f.monitor->medium_replayed(1, insert, b, TrayState{false, false, true});
    const std::vector<Json> out = f.execute(Json{{"execute", "query-block"}});
    REQUIRE(out.size() == 3);
    CHECK(out[0]["event"] == "DEVICE_TRAY_MOVED");
    CHECK(out[0]["data"] == Fixture::tray_event(true));
    CHECK(out[1]["data"] == Fixture::tray_event(false));
    const Json cd = out[2]["return"][1];
    CHECK(cd["inserted"]["file"] == f.dir.file("b.iso"));
    CHECK(cd["inserted"]["image"]["virtual-size"] == 2 << 20);
    f.monitor->medium_replayed(1, TrayAction::Remove, nullptr, TrayState{true, false, false});
    CHECK_FALSE(f.command("query-block")["return"][1].contains("inserted"));
    // Gone back to before the change (an insert that names no file): the first disc again.
    f.monitor->medium_replayed(1, TrayAction::Insert, f.disc, TrayState{false, false, false});
    CHECK(f.command("query-block")["return"][1]["inserted"]["file"] == f.dir.file("a.iso"));
    f.monitor->medium_replayed(1, TrayAction::Insert, b, TrayState{false, false, false});
    CHECK(f.command("query-block")["return"][1]["inserted"]["file"] == f.dir.file("b.iso"));
}
