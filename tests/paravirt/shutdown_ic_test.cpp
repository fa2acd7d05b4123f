// The shutdown integration service against the guest side of Linux's
// hv_utils (drivers/hv/hv_util.c, vmbus_prep_negotiate_resp): the host's
// NEGOTIATE after the open, the guest's choice, then a SHUTDOWN request the
// guest acknowledges.
#include "paravirt/vmbus/shutdown_ic.h"
#include "tests/paravirt/ic_guest.h"

using namespace vmbus;

namespace {

struct Harness : IcGuest {
    ShutdownIc service{memory, signal};
    Harness() { open(service); }
};

} // namespace

TEST_CASE("shutdown service: the host negotiates first, then asks the guest to shut down")
{
    Harness h;
    CHECK(h.interrupts == 1);
    CHECK_FALSE(h.service.ready());
    CHECK_FALSE(h.service.request_shutdown());
    h.negotiate(h.service, LINUX_FRAMEWORKS, {0x30002, 0x30001, 0x30000, 0x10000});
    CHECK(h.service.ready());
    CHECK(h.service.framework_version() == 0x30000);
    CHECK(h.service.service_version() == 0x30002);

    REQUIRE(h.service.request_shutdown());
    auto [transaction, m] = h.next();
    // hv_utils needs the whole shutdown_msg_data (2060 bytes) after the headers.
    REQUIRE(m.size() >= ic::HEADER_END + ic::SHUTDOWN_BODY);
    CHECK(load_le16(m, ic::TYPE) == ic::TYPE_SHUTDOWN);
    CHECK(ic::load_version(m, ic::MESSAGE_VERSION) == 0x30002); // the negotiated 3.2
    CHECK(m[ic::SHUTDOWN_FLAGS] == 0);                          // graceful
    CHECK(m[ic::FLAGS] == (ic::FLAG_TRANSACTION | ic::FLAG_REQUEST));
    h.answer(h.service, transaction, m);
    REQUIRE(h.service.shutdown_status());
    CHECK(*h.service.shutdown_status() == 0);
}

TEST_CASE(
    "shutdown service: answers that do not add up are ignored, and a closed channel sends nothing")
{
    Harness h;
    auto [transaction, m] = h.next();
    h.answer(h.service, transaction, m); // counts not rewritten: 2 and 4
    REQUIRE(h.guest_write(PACKET_DATA_INBAND, 2, std::vector<u8>(8)));
    h.service.signaled();
    CHECK_FALSE(h.service.ready());
    h.service.close();
    CHECK_FALSE(h.service.request_shutdown());
}
