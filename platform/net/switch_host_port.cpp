#include "platform/net/switch_host_port.h"

ErrorOr<std::unique_ptr<SwitchHostPort>> SwitchHostPort::create(EventLoop& loop, const SwitchOptions& network_switch,
                                                                const SlirpOptions& user)
{
    SwitchOptions options = network_switch;
    options.port = PORT_NAME;
    std::unique_ptr<SwitchPort> port = TRY(SwitchPort::create(loop, options));
    if (!port)
        return std::unique_ptr<SwitchHostPort>();
    std::unique_ptr<SlirpBackend> slirp = TRY(SlirpBackend::create(loop, user));
    return std::unique_ptr<SwitchHostPort>(new SwitchHostPort(std::move(port), std::move(slirp)));
}

SwitchHostPort::SwitchHostPort(std::unique_ptr<SwitchPort> port, std::unique_ptr<SlirpBackend> user)
    : m_port(std::move(port)), m_user(std::move(user))
{
    // Both receivers run on the loop's thread; each send() copies the frame.
    m_port->set_receiver([user = m_user.get()](std::vector<u8> frame) { user->send(frame); });
    m_user->set_receiver([port = m_port.get()](std::vector<u8> frame) { port->send(frame); });
}

SwitchHostPort::~SwitchHostPort()
{
    m_port->set_receiver({});
    m_user->set_receiver({});
}
