// The machine's side of QMP's tray and medium commands
// (platform/machine/machine_media.cpp): Machine::tray on the CD-ROM drive
// of a --drive list, and a machine that starts with an empty drive.
#include "platform/machine/machine.h"

#include "tests/platform/block/temp_dir.h"
#include "tests/platform/block/test_image.h"

#include <doctest/doctest.h>

namespace {

std::unique_ptr<Machine> machine_with(std::vector<MachineDrive> drives)
{
    MachineConfig config;
    config.memory_bytes = 32ull << 20;
    config.deterministic = true;
    config.enlightenments = false;
    config.drives = std::move(drives);
    ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
    REQUIRE_FALSE(created.is_error());
    return created.release_value();
}

} // namespace

TEST_CASE("Machine::tray opens and closes a CD-ROM tray, each move once, and leaves a disk alone")
{
    TempDir dir;
    const auto machine =
        machine_with({{make_raw_image(dir.file("disk.img"), 1 << 20, true), 0, false, false},
                      {make_raw_image(dir.file("a.iso"), 1 << 20, true), 2, true, false}});
    TrayState state = machine->tray(1, TrayAction::Open);
    CHECK(state.open);
    CHECK(state.moved);
    state = machine->tray(1, TrayAction::Open);
    CHECK(state.open);
    CHECK_FALSE(state.moved);
    state = machine->tray(1, TrayAction::Close);
    CHECK_FALSE(state.open);
    CHECK(state.moved);
    state = machine->tray(0, TrayAction::Open); // the disk has no tray
    CHECK_FALSE(state.open);
    CHECK_FALSE(state.moved);
    CHECK_FALSE(machine->tray(7, TrayAction::Query).open); // no such drive
}

TEST_CASE(
    "Machine::tray swaps the disc: removed from the open tray, the new one in with the tray shut")
{
    TempDir dir;
    const auto machine =
        machine_with({{make_raw_image(dir.file("a.iso"), 1 << 20, true), 2, true, false}});
    machine->tray(0, TrayAction::Open);
    machine->tray(0, TrayAction::Remove);
    const TrayState state =
        machine->tray(0, TrayAction::Insert, make_raw_image(dir.file("b.iso"), 2 << 20, true));
    CHECK(state.moved);
    CHECK_FALSE(state.open);
}

TEST_CASE("A machine starts with an empty CD-ROM drive, as after an eject")
{
    const auto machine = machine_with({{nullptr, 2, true, false}});
    CHECK(machine->tray(0, TrayAction::ForceOpen).moved);
}
