// The seam between a network adapter and what its cable plugs into (issue
// 16): an emulated adapter (the e1000 now, netvsp over VMBus later) hands
// Ethernet frames out, the backend (libslirp's user-mode network now, a
// virtual switch or a tap later) hands frames in, and says whether the link
// is up. Frames are whole Ethernet frames without the FCS.
//
// Threads: the adapter runs on the machine's thread, a backend on the host's
// event loop. send() may be called from the machine's thread (a backend
// copies the frame and takes it to its own thread); the receiver is called on
// the backend's thread, and whoever attaches an adapter carries the frame to
// the machine's thread (platform/machine does, through its CommandQueue).
#pragma once

#include "mmu/base/types.h"

#include <functional>
#include <span>
#include <vector>

class NetBackend {
public:
    using Receiver = std::function<void(std::vector<u8> frame)>;

    virtual ~NetBackend() = default;

    // A frame the adapter transmitted. Any thread; the backend copies it.
    virtual void send(std::span<const u8> frame) = 0;
    // Where frames for the adapter go (empty: dropped). Any thread; after it
    // returns, the previous receiver is never called again.
    virtual void set_receiver(Receiver receiver) = 0;
    // Whether the backend's side of the link is up (a switch port that is
    // connected; user-mode networking always is).
    virtual bool link_up() const { return true; }
};
