// A tap interface on the host as a network backend (`--nic tap`, Hyper-V's
// external switch; docs/network.md "Tap"): the adapter's frames go out of
// the host's tap device and the frames the host's stack (or a bridge the
// tap is on) sends to it come in, so the guest is a machine on the host's
// own network. The interface is the administrator's to make and configure
// (`ip tuntap add dev NAME mode tap user USER`, an address or a bridge);
// viridian runs no scripts. Attaching to an existing tap needs no
// privilege when it was made for this user; making a new one needs
// CAP_NET_ADMIN.
//
// Threads: send() writes the frame on the calling thread (the machine's);
// frames are read on the event loop's thread and handed to the receiver
// there (net_backend.h).
#pragma once

#include "mmu/base/error_or.h"
#include "platform/net/net_backend.h"

#include <memory>
#include <string>

class EventLoop;

struct TapOptions {
    std::string ifname; // empty: the kernel picks a free tapN
    static constexpr size_t MAX_NAME = 15; // IFNAMSIZ - 1
};

class TapBackend final : public NetBackend {
public:
    // On the loop's thread. Fails with one sentence when /dev/net/tun is
    // missing or the interface cannot be attached.
    static ErrorOr<std::unique_ptr<TapBackend>> create(EventLoop& loop, const TapOptions& options);
    ~TapBackend() override;

    void send(std::span<const u8> frame) override;
    void set_receiver(Receiver receiver) override;
    // The interface attached (the kernel's name when none was given).
    const std::string& interface_name() const;
    static bool valid_name(std::string_view name);

    struct Impl;

private:
    explicit TapBackend(std::shared_ptr<Impl> impl) : m_impl(std::move(impl)) {}
    std::shared_ptr<Impl> m_impl;
};
