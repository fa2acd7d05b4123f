// The guest's side of an integration service's channel, as Linux's hv_utils
// answers (drivers/hv/channel_mgmt.c vmbus_prep_negotiate_resp,
// hv_util.c): for tests of the host side (ic_service.h).
#pragma once

#include "paravirt/vmbus/ic_service.h"
#include "tests/paravirt/vmbus_guest_ring.h"

#include <initializer_list>

struct IcGuest : GuestRings {
    unsigned interrupts = 0;
    std::function<void()> signal = [this] { ++interrupts; };

    // Opens `service` on these rings (the host then sends its NEGOTIATE).
    void open(IcService& service)
    {
        VmbusServer::OpenRequest request;
        request.ring_pfns = pfns;
        request.downstream_offset = OUT_PAGES;
        REQUIRE(service.open(request));
        service.opened();
    }
    // The next message from the host: its transaction id and bytes.
    std::pair<u64, std::vector<u8>> next()
    {
        auto p = guest_read();
        REQUIRE(p);
        CHECK(std::get<0>(*p) == vmbus::PACKET_DATA_INBAND);
        return {std::get<1>(*p), std::get<2>(*p)};
    }
    bool empty() { return !guest_read(); }
    // Sends `m` back flagged a response, as hv_utils does, and signals.
    void answer(IcService& service, u64 transaction, std::vector<u8> m)
    {
        m[ic::FLAGS] = ic::FLAG_TRANSACTION | ic::FLAG_RESPONSE;
        REQUIRE(guest_write(vmbus::PACKET_DATA_INBAND, transaction, m));
        service.signaled();
    }
    // What hv_utils does with a NEGOTIATE: the first of `frameworks` and of
    // `services` (its own lists, in its order) the host offered; counts 1/1
    // and the choices first, or counts 0/0 when nothing matched.
    void negotiate(IcService& service, std::initializer_list<u32> frameworks,
                   std::initializer_list<u32> services)
    {
        // Not a structured binding: the lambda below uses m, and clang 14
        // cannot capture a binding.
        auto message = next();
        const auto transaction = message.first;
        auto& m = message.second;
        REQUIRE(load_le16(m, ic::TYPE) == ic::TYPE_NEGOTIATE);
        const unsigned fw_count = load_le16(m, ic::NEGOTIATE_FRAMEWORK_COUNT);
        const unsigned srv_count = load_le16(m, ic::NEGOTIATE_MESSAGE_COUNT);
        REQUIRE(m.size() >= ic::NEGOTIATE_VERSIONS + 4 * (fw_count + srv_count));
        auto pick = [&](std::initializer_list<u32> own, unsigned first, unsigned count) -> u32 {
            for (u32 v : own)
                for (unsigned i = first; i < first + count; ++i)
                    if (ic::load_version(m, ic::NEGOTIATE_VERSIONS + 4 * i) == v)
                        return v;
            return 0;
        };
        const u32 fw = pick(frameworks, 0, fw_count), srv = pick(services, fw_count, srv_count);
        const u16 count = fw && srv ? 1 : 0;
        store_le16(m, ic::NEGOTIATE_FRAMEWORK_COUNT, count);
        store_le16(m, ic::NEGOTIATE_MESSAGE_COUNT, count);
        ic::store_version(m, ic::NEGOTIATE_VERSIONS, fw);
        ic::store_version(m, ic::NEGOTIATE_VERSIONS + 4, srv);
        answer(service, transaction, m);
    }
};

// A deterministic clock the test moves, for the services' timers.
struct IcClock {
    u64 ns = 0;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    IcClock()
    {
        clock.set_instruction_counter([this] { return ns; });
    }
    void advance(u64 by)
    {
        ns += by;
        clock.run_due();
    }
};

// Saves `service`, loads the bytes into `copy` (a fresh instance) and
// checks that `copy` saves the same bytes again.
template <class Service> void check_round_trip(Service& service, Service& copy)
{
    StateVisitor saver = StateVisitor::saver();
    service.visit_state(saver);
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    copy.visit_state(loader);
    REQUIRE(loader.ok());
    CHECK(loader.at_end());
    StateVisitor again = StateVisitor::saver();
    copy.visit_state(again);
    CHECK(again.bytes() == saver.bytes());
}

// Linux 6.1's framework versions (fw_versions in hv_util.c).
inline constexpr std::initializer_list<u32> LINUX_FRAMEWORKS = {0x30000, 0x10000};
