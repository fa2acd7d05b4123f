// What the host gives a running machine (docs/replay.md): typed bytes, QMP
// commands that change the guest (the tray and medium commands too),
// received network frames. Everything else a deterministic run does
// follows from its configuration and its files, so these inputs, each
// keyed by the host-poll point where it entered, are all a recording needs
// (platform/replay/).
#pragma once

#include "mmu/base/types.h"

#include <optional>
#include <span>
#include <string>
#include <vector>

class Machine;

struct HostInput {
    // Numbered as the recording file stores them: never renumber.
    enum class Kind : u8 {
        SerialByte = 1,  // a byte typed for COM1: `value`
        Powerdown = 2,   // QMP system_powerdown (shutdown service or power button)
        PowerButton = 3, // the ACPI fixed power button alone
        Reset = 4,       // QMP system_reset
        SetLink = 5,     // QMP set_link: `value` 1 up, 0 down
        NetFrame = 6,    // a frame the network backend received: `bytes`
        Medium = 7,      // a QMP tray or medium command: `value` the drive, `bytes` encode_medium
    };
    Kind kind = Kind::SerialByte;
    u32 value = 0;
    std::vector<u8> bytes;
};

// QMP's tray and medium commands on a CD-ROM drive (Machine::tray).
// Numbered as the recording file stores them (Kind::Medium): never renumber.
enum class TrayAction : u8 {
    Query = 0,
    Open = 1,      // unless locked (then the guest is only asked to eject)
    ForceOpen = 2, // unlocks and opens
    Close = 3,
    Remove = 4, // takes the disc out
    Insert = 5, // puts the image in and closes the tray
};

// One tray or medium action as a Kind::Medium input carries it. An insert
// names its image as blockdev-change-medium opened it, and the file's
// identity (size and content hash, which the recorder fills in: replay
// recording.h identify_file), so a replay opens the same file again and
// refuses a changed one.
struct MediumChange {
    // Implicit: a plain action is a MediumChange (Machine::tray(drive, TrayAction::Open)).
    MediumChange(TrayAction a = TrayAction::Query) : action(a) {}
    TrayAction action = TrayAction::Query;
    std::string file;   // Insert: the image file
    std::string format; // Insert: "" probes, as QMP's optional format
    bool read_only = true;
    u64 size = 0, hash = 0; // Insert: the file's identity when recorded
};
// A MediumChange as the bytes of a Kind::Medium input, and back (nothing
// when the bytes are not one: a damaged recording).
std::vector<u8> encode_medium(const MediumChange& change);
std::optional<MediumChange> decode_medium(std::span<const u8> bytes);

// The machine's side of record and replay. The machine calls it at every
// host-poll point and for every live input; a recorder logs, a replayer
// delivers what its log says and drops what the host offers.
class MachineInputLog {
public:
    virtual ~MachineInputLog() = default;
    // A host-poll point, before the host's commands run. `again`: nothing
    // ran since the previous poll (a paused machine polling), so this is the
    // same point. Returns a status to end the run with (the recording ended
    // here with a host stop, or the replay diverged).
    virtual std::optional<int> at_poll(Machine& machine, bool again) = 0;
    // Live input about to be applied at the current point: false drops it.
    virtual bool live_input(Machine& machine, const HostInput& input) = 0;
    // Inputs come from the log, not the host: an idle machine that waits
    // for host input polls again at once instead of sleeping.
    virtual bool replaying() const = 0;
};
