// A port on a virtual switch that viridian machines on one host share
// (`--nic switch,name=NAME`, Hyper-V's private switch; docs/network.md
// "Virtual switch"). There is no switch process to start or to outlive its
// machines: every port is a Unix datagram socket in the switch's directory,
// and each port forwards its own adapter's frames as a learning switch would.
// A frame whose destination address was seen as the source of a frame from
// some port goes to that port alone; broadcast, multicast and unknown
// destinations go to every other port in the directory (flooding). One frame
// is one datagram, so frame boundaries hold without framing; a port whose
// queue is full loses the frame, as a congested switch port drops; a port
// whose process has gone (its socket file left behind) is removed by the
// first sender that finds it dead.
//
// Threads: send() runs on the machine's thread and writes the datagram there
// (no hop through the loop); frames are read on the event loop's thread and
// handed to the receiver there (net_backend.h). The address table is shared
// by both under a mutex.
#pragma once

#include "mmu/base/error_or.h"
#include "platform/net/net_backend.h"

#include <memory>
#include <string>

class EventLoop;

struct SwitchOptions {
    std::string name;      // [A-Za-z0-9_.-], 1 to MAX_NAME characters
    std::string directory; // where the ports live; empty: directory_for(name)
    // A port with a fixed name, of which the switch has at most one (the
    // host's port of an internal switch, switch_host_port.h); empty: a
    // machine's port, unique by process and count.
    std::string port;
    static constexpr size_t MAX_NAME = 32;
};

class SwitchPort final : public NetBackend {
public:
    // On the loop's thread. Fails (with a message) when the directory or the
    // socket cannot be made. A named port that a live process holds gives
    // nullptr; one left behind by a dead process is taken over.
    static ErrorOr<std::unique_ptr<SwitchPort>> create(EventLoop& loop, const SwitchOptions& options);
    // On the loop's thread: the socket closes and its file goes.
    ~SwitchPort() override;

    void send(std::span<const u8> frame) override;
    void set_receiver(Receiver receiver) override;

    // $XDG_RUNTIME_DIR/viridian/switch/NAME, or /tmp/viridian-UID/switch/NAME
    // without one: per user, so one user's machines meet and nobody else's.
    static std::string directory_for(const std::string& name);
    static bool valid_name(std::string_view name);
    // This port's socket file.
    const std::string& path() const;

    struct Impl;

private:
    explicit SwitchPort(std::shared_ptr<Impl> impl) : m_impl(std::move(impl)) {}
    std::shared_ptr<Impl> m_impl;
};
