// User-mode networking on libslirp (QEMU's "-nic user"): the guest sits on
// 10.0.2.0/24 behind a NAT in this process; slirp answers DHCP (the guest
// gets 10.0.2.15), relays DNS at 10.0.2.3 to the host's resolver, and turns
// the guest's TCP and UDP into the host's own sockets; 10.0.2.2 is the
// host's loopback. hostfwd rules listen on the host and connect into the
// guest; restrict=on cuts the guest off from everything but those.
//
// Slirp runs on the host's event loop (platform/host): its timers are loop
// timers, its sockets are watched through one epoll set the loop polls.
// Frames from the adapter are posted to the loop; frames for the adapter go
// to the receiver on the loop's thread (net_backend.h).
#pragma once

#include "mmu/base/error_or.h"
#include "platform/net/net_backend.h"

#include <memory>
#include <string>
#include <vector>

class EventLoop;

struct SlirpOptions {
    // hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT
    struct HostForward {
        bool udp = false;
        std::string host_address; // empty: every address, as QEMU
        u16 host_port = 0;
        std::string guest_address; // empty: the DHCP address, 10.0.2.15
        u16 guest_port = 0;
    };
    bool restricted = false;
    std::vector<HostForward> forwards;
};

class SlirpBackend final : public NetBackend {
public:
    // On the loop's thread. Fails when a hostfwd cannot listen.
    static ErrorOr<std::unique_ptr<SlirpBackend>> create(EventLoop& loop,
                                                         const SlirpOptions& options);
    // On the loop's thread: slirp's sockets close, its handles go.
    ~SlirpBackend() override;

    void send(std::span<const u8> frame) override;
    void set_receiver(Receiver receiver) override;

    struct Impl;

private:
    explicit SlirpBackend(std::shared_ptr<Impl> impl) : m_impl(std::move(impl)) {}
    std::shared_ptr<Impl> m_impl;
};
