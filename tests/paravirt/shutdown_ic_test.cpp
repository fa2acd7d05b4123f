// The shutdown integration service against the guest side of Linux's
// hv_utils (drivers/hv/hv_util.c, vmbus_prep_negotiate_resp): the host's
// NEGOTIATE after the open, the guest's choice, then a SHUTDOWN request the
// guest acknowledges.
#include "paravirt/vmbus/shutdown_ic.h"
#include "tests/paravirt/vmbus_guest_ring.h"

using namespace vmbus;

namespace {

struct Harness : GuestRings {
    unsigned interrupts = 0;
    ShutdownIc service{memory, [this] { ++interrupts; }};
    Harness()
    {
        VmbusServer::OpenRequest open;
        open.ring_pfns = pfns;
        open.downstream_offset = OUT_PAGES;
        REQUIRE(service.open(open));
        service.opened();
    }
    // What hv_utils does with a NEGOTIATE: pick framework `fw` and service
    // `srv` if offered, write counts 1/1 and the choices, flag it a response.
    void answer_negotiate(u32 fw, u32 srv)
    {
        auto p = guest_read();
        REQUIRE(p);
        std::vector<u8> m = std::get<2>(*p);
        REQUIRE(load_u16(m, ic::TYPE) == ic::TYPE_NEGOTIATE);
        const unsigned frameworks = load_u16(m, ic::NEGOTIATE_FRAMEWORK_COUNT);
        const unsigned messages = load_u16(m, ic::NEGOTIATE_MESSAGE_COUNT);
        bool fw_found = false, srv_found = false;
        for (unsigned i = 0; i < frameworks + messages; ++i) {
            const u32 v = (u32{load_u16(m, ic::NEGOTIATE_VERSIONS + 4 * i)} << 16) |
                          load_u16(m, ic::NEGOTIATE_VERSIONS + 4 * i + 2);
            (i < frameworks ? fw_found : srv_found) |= v == (i < frameworks ? fw : srv);
        }
        REQUIRE(fw_found);
        REQUIRE(srv_found);
        store_u16(m, ic::NEGOTIATE_FRAMEWORK_COUNT, 1);
        store_u16(m, ic::NEGOTIATE_MESSAGE_COUNT, 1);
        store_u16(m, ic::NEGOTIATE_VERSIONS, static_cast<u16>(fw >> 16));
        store_u16(m, ic::NEGOTIATE_VERSIONS + 2, static_cast<u16>(fw));
        store_u16(m, ic::NEGOTIATE_VERSIONS + 4, static_cast<u16>(srv >> 16));
        store_u16(m, ic::NEGOTIATE_VERSIONS + 6, static_cast<u16>(srv));
        m[ic::FLAGS] = ic::FLAG_TRANSACTION | ic::FLAG_RESPONSE;
        REQUIRE(guest_write(PACKET_DATA_INBAND, std::get<1>(*p), m));
        service.signaled();
    }
};

} // namespace

TEST_CASE("shutdown service: the host negotiates first, then asks the guest to shut down")
{
    Harness h;
    CHECK(h.interrupts == 1);
    CHECK_FALSE(h.service.ready());
    CHECK_FALSE(h.service.request_shutdown());
    h.answer_negotiate(0x30000, 0x30002);
    CHECK(h.service.ready());
    CHECK(h.service.framework_version() == 0x30000);
    CHECK(h.service.service_version() == 0x30002);

    REQUIRE(h.service.request_shutdown());
    auto p = h.guest_read();
    REQUIRE(p);
    std::vector<u8> m = std::get<2>(*p);
    // hv_utils needs the whole shutdown_msg_data (2060 bytes) after the headers.
    REQUIRE(m.size() >= ic::HEADER_END + ic::SHUTDOWN_BODY);
    CHECK(load_u16(m, ic::TYPE) == ic::TYPE_SHUTDOWN);
    CHECK(load_u16(m, ic::MESSAGE_VERSION) == 3);     // the negotiated 3.2
    CHECK(load_u16(m, ic::MESSAGE_VERSION + 2) == 2);
    CHECK(m[ic::SHUTDOWN_FLAGS] == 0);              // graceful
    CHECK(m[ic::FLAGS] == (ic::FLAG_TRANSACTION | ic::FLAG_REQUEST));
    m[ic::FLAGS] = ic::FLAG_TRANSACTION | ic::FLAG_RESPONSE;
    REQUIRE(h.guest_write(PACKET_DATA_INBAND, std::get<1>(*p), m));
    h.service.signaled();
    REQUIRE(h.service.shutdown_status());
    CHECK(*h.service.shutdown_status() == 0);
}

TEST_CASE("shutdown service: answers that do not add up are ignored, and a closed channel sends nothing")
{
    Harness h;
    auto p = h.guest_read();
    REQUIRE(p);
    std::vector<u8> m = std::get<2>(*p);
    m[ic::FLAGS] = ic::FLAG_TRANSACTION | ic::FLAG_RESPONSE; // counts not rewritten: 2 and 4
    REQUIRE(h.guest_write(PACKET_DATA_INBAND, 1, m));
    REQUIRE(h.guest_write(PACKET_DATA_INBAND, 2, std::vector<u8>(8)));
    h.service.signaled();
    CHECK_FALSE(h.service.ready());
    h.service.close();
    CHECK_FALSE(h.service.request_shutdown());
}
