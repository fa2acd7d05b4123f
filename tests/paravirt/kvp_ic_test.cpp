// The KVP integration service: negotiation only (kvp_ic.h says why).
#include "paravirt/vmbus/kvp_ic.h"
#include "tests/paravirt/ic_guest.h"

using namespace vmbus;

TEST_CASE("KVP service: the guest's daemon takes 4.0 and its exchange answers are counted")
{
    IcGuest g;
    KvpIc kvp(g.memory, g.signal);
    g.open(kvp);
    // Linux 6.1's kvp_versions: 4.0, 3.0, 1.0.
    g.negotiate(kvp, LINUX_FRAMEWORKS, {0x40000, 0x30000, 0x10000});
    CHECK(kvp.service_version() == 0x40000);
    std::vector<u8> m(ic::HEADER_END + 16);
    store_le16(m, ic::TYPE, ic::TYPE_KVP_EXCHANGE);
    g.answer(kvp, 9, m);
    CHECK(kvp.exchanges() == 1);
}

TEST_CASE("KVP service: without the guest's daemon the NEGOTIATE waits and nothing else is sent")
{
    IcGuest g;
    KvpIc kvp(g.memory, g.signal);
    g.open(kvp);
    kvp.signaled();
    CHECK_FALSE(kvp.negotiated());
    auto [transaction, m] = g.next();
    CHECK(load_le16(m, ic::TYPE) == ic::TYPE_NEGOTIATE);
    CHECK(g.empty());
}

TEST_CASE("KVP service: save and load give the same bytes")
{
    IcGuest g;
    KvpIc kvp(g.memory, g.signal);
    g.open(kvp);
    g.negotiate(kvp, LINUX_FRAMEWORKS, {0x30000});
    KvpIc copy(g.memory, g.signal);
    check_round_trip(kvp, copy);
    CHECK(copy.negotiated());
    CHECK(copy.service_version() == 0x30000);
}
