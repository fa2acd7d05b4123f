#include "paravirt/vmbus/shutdown_ic.h"

#include <utility>

using namespace vmbus;

// What the host offers: Linux 6.1 accepts shutdown 3.2, 3.1, 3.0 or 1.0,
// taking the first of its own list the host offers.
ShutdownIc::ShutdownIc(GuestMemory memory, std::function<void()> signal_guest)
    : IcService(memory, std::move(signal_guest), {0x30002, 0x30001, 0x30000, 0x10000})
{
}

void ShutdownIc::on_response(u16 type, std::span<const u8> m)
{
    if (type == ic::TYPE_SHUTDOWN)
        m_shutdown_status = load_le32(m, ic::STATUS);
}

bool ShutdownIc::request_shutdown()
{
    if (!ready())
        return false;
    std::vector<u8> m = request(ic::TYPE_SHUTDOWN, ic::SHUTDOWN_BODY);
    store_le32(m, ic::SHUTDOWN_FLAGS, 0); // a graceful shutdown
    m_shutdown_status.reset();
    return send(m);
}

void ShutdownIc::visit_state(StateVisitor& v)
{
    v.section("shutdown-ic", 1);
    visit_channel_state(v);
}
