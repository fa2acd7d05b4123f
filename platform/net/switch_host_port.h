// The host's port on an internal switch (`--nic
// switch,name=NAME,type=internal`, Hyper-V's internal switch): user-mode
// networking (slirp_backend.h) plugged into the switch as one more port, so
// the switch's machines get DHCP leases from it (10.0.2.15 upwards, one per
// MAC address), reach the host at 10.0.2.2 and DNS at 10.0.2.3, and the host
// reaches them through hostfwd rules. A switch has at most one such port
// (`port-host` in its folder): the first machine with type=internal that
// finds none plugs it in and holds it while it runs; the others use it.
#pragma once

#include "platform/net/slirp_backend.h"
#include "platform/net/switch_port.h"

class SwitchHostPort {
public:
    // On the loop's thread. nullptr when a live process already holds the
    // switch's host port.
    static ErrorOr<std::unique_ptr<SwitchHostPort>> create(EventLoop& loop, const SwitchOptions& network_switch,
                                                           const SlirpOptions& user);
    // On the loop's thread.
    ~SwitchHostPort();
    SwitchHostPort(const SwitchHostPort&) = delete;
    SwitchHostPort& operator=(const SwitchHostPort&) = delete;

    static constexpr const char* PORT_NAME = "host";

private:
    SwitchHostPort(std::unique_ptr<SwitchPort> port, std::unique_ptr<SlirpBackend> user);
    std::unique_ptr<SwitchPort> m_port;
    std::unique_ptr<SlirpBackend> m_user;
};
