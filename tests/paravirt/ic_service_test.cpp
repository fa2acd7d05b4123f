// The framing and negotiation every integration service shares
// (ic_service.h), through KvpIc, the service with the least of its own.
#include "paravirt/vmbus/kvp_ic.h"
#include "tests/paravirt/ic_guest.h"

using namespace vmbus;

namespace {

struct Harness : IcGuest {
    KvpIc service{memory, signal};
    Harness() { open(service); }
};

// A NEGOTIATE answer naming framework `fw` and service `srv`.
std::vector<u8> negotiate_answer(std::vector<u8> m, u32 fw, u32 srv)
{
    store_le16(m, ic::NEGOTIATE_FRAMEWORK_COUNT, 1);
    store_le16(m, ic::NEGOTIATE_MESSAGE_COUNT, 1);
    ic::store_version(m, ic::NEGOTIATE_VERSIONS, fw);
    ic::store_version(m, ic::NEGOTIATE_VERSIONS + 4, srv);
    return m;
}

} // namespace

TEST_CASE("integration services: the NEGOTIATE lists frameworks 3.0 and 1.0, then the service's "
          "versions, newest first")
{
    Harness h;
    CHECK(h.interrupts == 1);
    auto [transaction, m] = h.next();
    CHECK(load_le32(m, ic::PIPE_FLAGS) == 1);
    // The ring pads a body to 8 bytes.
    CHECK(load_le32(m, ic::PIPE_SIZE) + ic::PIPE_HEADER + 8 > m.size());
    CHECK(load_le16(m, ic::TYPE) == ic::TYPE_NEGOTIATE);
    CHECK(load_le16(m, ic::SIZE) == load_le32(m, ic::PIPE_SIZE) + ic::PIPE_HEADER - ic::HEADER_END);
    CHECK(m[ic::FLAGS] == (ic::FLAG_TRANSACTION | ic::FLAG_REQUEST));
    CHECK(m[ic::TRANSACTION] == transaction);
    REQUIRE(load_le16(m, ic::NEGOTIATE_FRAMEWORK_COUNT) == 2);
    REQUIRE(load_le16(m, ic::NEGOTIATE_MESSAGE_COUNT) == 3);
    const u32 expected[] = {0x30000, 0x10000, 0x40000, 0x30000, 0x10000};
    for (unsigned i = 0; i < 5; ++i)
        CHECK(ic::load_version(m, ic::NEGOTIATE_VERSIONS + 4 * i) == expected[i]);
    // Room for one version more, as kernels before 5.11 require.
    CHECK(m.size() >= ic::NEGOTIATE_VERSIONS + 4 * 6);
}

TEST_CASE("integration services: requests after the negotiation carry the versions the guest chose")
{
    Harness h;
    h.negotiate(h.service, {0x10000}, {0x30000});
    CHECK(h.service.negotiated());
    CHECK(h.service.framework_version() == 0x10000);
    CHECK(h.service.service_version() == 0x30000);
}

TEST_CASE("integration services: an answer naming a version the host did not offer is ignored")
{
    Harness h;
    auto [transaction, m] = h.next();
    h.answer(h.service, transaction, negotiate_answer(m, 0x30000, 0x50000));
    CHECK_FALSE(h.service.negotiated());
    h.answer(h.service, transaction, negotiate_answer(m, 0x20000, 0x40000));
    CHECK_FALSE(h.service.negotiated());
    // Counts of 0: the guest found nothing it could use.
    std::vector<u8> none = negotiate_answer(m, 0x30000, 0x40000);
    store_le16(none, ic::NEGOTIATE_FRAMEWORK_COUNT, 0);
    store_le16(none, ic::NEGOTIATE_MESSAGE_COUNT, 0);
    h.answer(h.service, transaction, none);
    CHECK_FALSE(h.service.negotiated());
    // A failure status.
    std::vector<u8> failed = negotiate_answer(m, 0x30000, 0x40000);
    store_le32(failed, ic::STATUS, 0x80004005);
    h.answer(h.service, transaction, failed);
    CHECK_FALSE(h.service.negotiated());
    h.answer(h.service, transaction, negotiate_answer(m, 0x30000, 0x40000));
    CHECK(h.service.negotiated());
    // A second answer does not change the choice.
    h.answer(h.service, transaction, negotiate_answer(m, 0x10000, 0x10000));
    CHECK(h.service.service_version() == 0x40000);
}

TEST_CASE(
    "integration services: short, unflagged, out-of-band or truncated messages change nothing")
{
    Harness h;
    auto [transaction, m] = h.next();
    const std::vector<u8> good = negotiate_answer(m, 0x30000, 0x40000);
    // Not flagged a response.
    std::vector<u8> request = good;
    REQUIRE(h.guest_write(PACKET_DATA_INBAND, transaction, request));
    // Too short for the IC header, and for the versions (in whole 8-byte
    // units: the ring pads a body with zeros, which the host cannot tell
    // from the guest's).
    for (size_t size :
         {size_t{0}, size_t{8}, size_t{ic::HEADER_END - 4}, size_t{ic::NEGOTIATE_VERSIONS + 4}}) {
        std::vector<u8> cut(good.begin(), good.begin() + static_cast<long>(size));
        if (cut.size() > ic::FLAGS)
            cut[ic::FLAGS] = ic::FLAG_RESPONSE;
        REQUIRE(h.guest_write(PACKET_DATA_INBAND, transaction, cut));
    }
    // Another packet type.
    std::vector<u8> completion = good;
    completion[ic::FLAGS] = ic::FLAG_RESPONSE;
    REQUIRE(h.guest_write(PACKET_COMPLETION, transaction, completion));
    // A response of another type before the negotiation.
    std::vector<u8> exchange = good;
    exchange[ic::FLAGS] = ic::FLAG_RESPONSE;
    store_le16(exchange, ic::TYPE, ic::TYPE_KVP_EXCHANGE);
    REQUIRE(h.guest_write(PACKET_DATA_INBAND, transaction, exchange));
    h.service.signaled();
    CHECK_FALSE(h.service.negotiated());
    CHECK(h.service.counters().exchanges == 0);
    CHECK(h.empty());
}

TEST_CASE("integration services: a reopened channel negotiates again")
{
    Harness h;
    h.negotiate(h.service, LINUX_FRAMEWORKS, {0x40000});
    REQUIRE(h.service.negotiated());
    h.service.close();
    CHECK_FALSE(h.service.negotiated());
    CHECK_FALSE(h.service.is_open());
    h.set(true, 0, 0);
    h.set(true, 4, 0);
    h.set(false, 0, 0);
    h.set(false, 4, 0);
    h.open(h.service);
    CHECK_FALSE(h.service.negotiated());
    h.negotiate(h.service, LINUX_FRAMEWORKS, {0x30000});
    CHECK(h.service.service_version() == 0x30000);
}
