// The seam between a SCSI transport (storvsp over VMBus today) and what
// answers SCSI commands (a disk model, or a bus of them by LUN): commands
// addressed by LUN with their data in a host buffer, completed through a
// callback, possibly later and in any order.
#pragma once

#include "mmu/base/types.h"

#include <functional>
#include <span>
#include <vector>

// A SCSI target as a transport sees it: commands addressed by LUN, data in
// a host buffer, completed (possibly later) through the callback.
class ScsiTarget {
public:
    enum class Direction : u8 { None, ToDevice, FromDevice };
    struct Command {
        u8 lun = 0;
        std::span<const u8> cdb;
        Direction direction = Direction::None;
        // ToDevice: the data; FromDevice: where it goes (the target fills
        // at most this much). Valid until the callback.
        std::span<u8> data;
    };
    struct Result {
        u8 status = 0;          // SAM status: 0 GOOD, 2 CHECK CONDITION
        std::vector<u8> sense;  // fixed-format sense data with CHECK CONDITION
        u32 transferred = 0;    // bytes of `data` moved
        // The LUN has no unit (never had one, or it was removed): a
        // transport with its own way of saying so uses it (storvsp's
        // SRB_STATUS_INVALID_LUN, which makes Linux remove the device).
        bool no_such_lun = false;
    };
    using Done = std::function<void(const Result&)>;
    virtual ~ScsiTarget() = default;
    virtual void execute(const Command& command, Done done) = 0;
};

