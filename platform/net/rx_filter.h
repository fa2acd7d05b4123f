// What a network adapter's receive filter lets through, as the guest's
// driver has programmed it (QMP query-rx-filter; QEMU's RxFilterInfo in
// qapi/net.json). For each class of destination address: Normal (the
// addresses in the table), None, or All.
#pragma once

#include "mmu/base/types.h"

#include <array>
#include <vector>

struct RxFilter {
    enum class Mode : u8 { Normal, None, All };
    using Mac = std::array<u8, 6>;

    bool promiscuous = false; // every frame, whatever its destination
    Mode unicast = Mode::Normal;
    Mode multicast = Mode::None;
    Mode vlan = Mode::All; // no adapter filters by VLAN tag
    bool broadcast_allowed = false;
    // A table that cannot list everything the filter passes: the e1000's
    // multicast table is a hash, so its addresses are not known.
    bool unicast_overflow = false, multicast_overflow = false;
    Mac main_mac{};
    std::vector<Mac> unicast_table;   // further unicast addresses taken
    std::vector<Mac> multicast_table; // multicast addresses taken
};
