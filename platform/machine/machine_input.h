// What the host gives a running machine (docs/replay.md): typed bytes, QMP
// commands that change the guest, received network frames. Everything else
// a deterministic run does follows from its configuration and its files, so
// these inputs, each keyed by the host-poll point where it entered, are all
// a recording needs (platform/replay/).
#pragma once

#include "mmu/base/types.h"

#include <optional>
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
    };
    Kind kind = Kind::SerialByte;
    u32 value = 0;
    std::vector<u8> bytes;
};

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
