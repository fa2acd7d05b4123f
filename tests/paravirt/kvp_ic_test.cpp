// The KVP integration service against the guest's side as Linux's hv_kvp.c
// and hv_kvp_daemon answer it (tools/hv/hv_kvp_daemon.c): SET and DELETE
// into the host's pool, ENUMERATE of the Auto and Guest pools until
// HV_S_CONT, each answered in the request's own buffer.
#include "paravirt/vmbus/kvp_ic.h"
#include "tests/paravirt/ic_guest.h"

#include "mmu/base/utf16.h"

#include <map>

using namespace vmbus;

namespace {

// The guest's kernel and daemon: the pools, and what each answer does.
struct FakeDaemon {
    std::map<std::string, std::string> external, guest;
    std::vector<std::pair<std::string, std::string>> auto_items{{"FullyQualifiedDomainName", "viridian-guest"},
                                                                {"OSName", "Debian GNU/Linux"}};
    std::vector<u8> last_request; // the last request as the host sent it
    bool endless = false;         // answers every ENUMERATE with an item

    static std::string text(std::span<const u8> m, unsigned size_at, unsigned at)
    {
        return utf16_to_utf8(m.subspan(at, load_le32(m, size_at)));
    }
    static void put(std::span<u8> value, const std::string& key, const std::string& data)
    {
        std::vector<u8> k = utf8_to_utf16(key), v = utf8_to_utf16(data);
        std::copy(k.begin(), k.end(), value.begin() + kvp::KEY);
        std::copy(v.begin(), v.end(), value.begin() + kvp::VALUE);
        store_le32(value, kvp::KEY_SIZE, static_cast<u32>(k.size() + 2));
        store_le32(value, kvp::VALUE_SIZE, static_cast<u32>(v.size() + 2));
        store_le32(value, kvp::VALUE_TYPE, kvp::REG_SZ);
    }
    // Answers every request the host has sent; returns how many.
    unsigned serve(IcGuest& g, KvpIc& service)
    {
        unsigned served = 0;
        while (auto p = g.guest_read()) {
            std::vector<u8> m = std::get<2>(*p);
            last_request = m;
            REQUIRE(load_le16(m, ic::TYPE) == ic::TYPE_KVP_EXCHANGE);
            REQUIRE(m.size() == ic::HEADER_END + kvp::MESSAGE_SIZE);
            std::span<u8> msg = std::span(m).subspan(ic::HEADER_END);
            std::span<u8> body = msg.subspan(kvp::BODY);
            u32 status = 0;
            switch (msg[kvp::OPERATION]) {
            case kvp::SET:
                CHECK(load_le32(body, kvp::VALUE_TYPE) == kvp::REG_SZ);
                external[text(body, kvp::KEY_SIZE, kvp::KEY)] = text(body, kvp::VALUE_SIZE, kvp::VALUE);
                break;
            case kvp::DELETE:
                status = external.erase(text(body, kvp::DELETE_KEY_SIZE, kvp::DELETE_KEY)) ? 0 : 0x80004005;
                break;
            case kvp::ENUMERATE: {
                const u32 index = load_le32(body, kvp::ENUMERATE_INDEX);
                std::span<u8> value = body.subspan(kvp::ENUMERATE_VALUE);
                if (endless) {
                    put(value, "k" + std::to_string(index), "v");
                } else if (msg[kvp::POOL] == kvp::AUTO) {
                    if (index < auto_items.size())
                        put(value, auto_items[index].first, auto_items[index].second);
                    else
                        status = kvp::HV_S_CONT;
                } else {
                    auto it = guest.begin();
                    std::advance(it, std::min<size_t>(index, guest.size()));
                    if (it != guest.end())
                        put(value, it->first, it->second);
                    else
                        status = kvp::HV_S_CONT;
                }
                break;
            }
            default:
                status = 0x80004005;
            }
            store_le32(m, ic::STATUS, status);
            g.answer(service, std::get<1>(*p), m);
            ++served;
        }
        return served;
    }
};

} // namespace

TEST_CASE("KVP service: once negotiated, the host reads the guest's Auto and Guest pools to their end")
{
    IcGuest g;
    KvpIc kvp(g.memory, g.signal);
    g.open(kvp);
    // Linux 6.1's kvp_versions: 4.0, 3.0, 1.0.
    g.negotiate(kvp, LINUX_FRAMEWORKS, {0x40000, 0x30000, 0x10000});
    CHECK(kvp.service_version() == 0x40000);
    FakeDaemon daemon;
    daemon.guest["written-by-the-guest"] = "1";
    CHECK(kvp.refreshing());
    // Auto: 2 items and the end; Guest: 1 item and the end.
    CHECK(daemon.serve(g, kvp) == 5);
    CHECK_FALSE(kvp.refreshing());
    CHECK(kvp.auto_pool() == KvpIc::Items{{"FullyQualifiedDomainName", "viridian-guest"},
                                          {"OSName", "Debian GNU/Linux"}});
    CHECK(kvp.guest_pool() == KvpIc::Items{{"written-by-the-guest", "1"}});
    CHECK(kvp.counters().reads == 1);
    // Asked again, the pools are read again and replaced.
    daemon.guest.clear();
    kvp.refresh();
    CHECK(daemon.serve(g, kvp) == 4);
    CHECK(kvp.guest_pool().empty());
}

TEST_CASE("KVP service: the host's pool goes to the guest as SET and DELETE, in order, after the negotiation")
{
    IcGuest g;
    KvpIc kvp(g.memory, g.signal);
    CHECK(kvp.set("VirtualMachineName", "viridian"));
    CHECK(kvp.set("Ünïcode ключ", "值"));
    g.open(kvp);
    g.negotiate(kvp, LINUX_FRAMEWORKS, {0x40000});
    FakeDaemon daemon;
    daemon.serve(g, kvp);
    CHECK(daemon.external == std::map<std::string, std::string>{{"VirtualMachineName", "viridian"},
                                                                 {"Ünïcode ключ", "值"}});
    CHECK(kvp.remove("VirtualMachineName"));
    CHECK_FALSE(kvp.remove("never set"));
    daemon.serve(g, kvp);
    CHECK(daemon.external.size() == 1);
    CHECK(kvp.counters().failed == 0);
    // Too long for the exchange: 256 UTF-16 units of key, 1,024 of value.
    CHECK_FALSE(kvp.set(std::string(256, 'k'), "v"));
    CHECK_FALSE(kvp.set("k", std::string(1024, 'v')));
    CHECK(kvp.set(std::string(255, 'k'), std::string(1023, 'v')));
    CHECK_FALSE(kvp.set("", "v"));
    daemon.serve(g, kvp);
    CHECK(daemon.external.count(std::string(255, 'k')));
    CHECK(kvp.host_pool().size() == 2);
}

TEST_CASE("KVP service: an answer that does not fit the request is not taken")
{
    IcGuest g;
    KvpIc kvp(g.memory, g.signal);
    g.open(kvp);
    g.negotiate(kvp, LINUX_FRAMEWORKS, {0x40000});
    auto [transaction, request] = g.next(); // ENUMERATE Auto, index 0
    std::vector<u8> wrong = request;
    wrong[ic::TRANSACTION] ^= 1;
    g.answer(kvp, transaction, wrong);
    wrong = request;
    wrong[ic::HEADER_END + kvp::OPERATION] = kvp::SET;
    g.answer(kvp, transaction, wrong);
    wrong = request;
    wrong.resize(ic::HEADER_END + 16);
    g.answer(kvp, transaction, wrong);
    CHECK(kvp.counters().bad_answers == 3);
    CHECK(kvp.counters().exchanges == 0);
    CHECK(g.empty()); // still waiting for the real answer
    // Sizes past the buffers are cut to them, not read beyond.
    std::vector<u8> huge = request;
    std::span<u8> value = std::span(huge).subspan(ic::HEADER_END + kvp::BODY + kvp::ENUMERATE_VALUE);
    FakeDaemon::put(value, "key", "value");
    store_le32(value, kvp::KEY_SIZE, 0xFFFFFFFF);
    store_le32(value, kvp::VALUE_SIZE, 0xFFFFFFFF);
    g.answer(kvp, transaction, huge);
    CHECK(kvp.counters().exchanges == 1);
    FakeDaemon daemon;
    daemon.auto_items.clear();
    daemon.serve(g, kvp);
    CHECK(kvp.auto_pool() == KvpIc::Items{{"key", "value"}});
}

TEST_CASE("KVP service: a guest that never says 'no more' is read only so far")
{
    IcGuest g;
    KvpIc kvp(g.memory, g.signal);
    g.open(kvp);
    g.negotiate(kvp, LINUX_FRAMEWORKS, {0x40000});
    FakeDaemon daemon;
    daemon.endless = true;
    daemon.serve(g, kvp);
    CHECK_FALSE(kvp.refreshing());
    CHECK(kvp.auto_pool().size() == 1023);
    CHECK(kvp.guest_pool().size() == 1023);
}

TEST_CASE("KVP service: without the guest's daemon the NEGOTIATE waits and nothing else is sent")
{
    IcGuest g;
    KvpIc kvp(g.memory, g.signal);
    g.open(kvp);
    kvp.signaled();
    CHECK(kvp.set("waits", "for the daemon"));
    CHECK_FALSE(kvp.negotiated());
    auto [transaction, m] = g.next();
    CHECK(load_le16(m, ic::TYPE) == ic::TYPE_NEGOTIATE);
    CHECK(g.empty());
}

TEST_CASE("KVP service: save and load give the same bytes, in the middle of a read too")
{
    IcGuest g;
    KvpIc kvp(g.memory, g.signal);
    kvp.set("a", "b");
    g.open(kvp);
    g.negotiate(kvp, LINUX_FRAMEWORKS, {0x30000});
    auto [transaction, set] = g.next(); // SET a=b in flight, the read waiting
    KvpIc copy(g.memory, g.signal);
    check_round_trip(kvp, copy);
    CHECK(copy.negotiated());
    CHECK(copy.service_version() == 0x30000);
    CHECK(copy.refreshing());
    CHECK(copy.host_pool() == KvpIc::Items{{"a", "b"}});
    // The loaded service takes the answer to what the saved one sent.
    store_le32(set, ic::STATUS, 0);
    g.answer(copy, transaction, set);
    CHECK(copy.counters().exchanges == 1);
    FakeDaemon daemon;
    daemon.serve(g, copy);
    CHECK(copy.auto_pool().size() == 2);
}

TEST_CASE("KVP service: a request that finds the ring full goes when the guest signals that it has made room")
{
    IcGuest g;
    KvpIc kvp(g.memory, g.signal);
    g.open(kvp);
    g.negotiate(kvp, LINUX_FRAMEWORKS, {0x40000});
    FakeDaemon daemon;
    daemon.serve(g, kvp); // the first reads of the pools
    // The guest's reader stands just past where the host writes: no room.
    constexpr u32 WRITE_INDEX = 0, READ_INDEX = 4;
    const u32 write_index = g.get(false, WRITE_INDEX);
    g.set(false, READ_INDEX, (write_index + 64) % GuestRings::DATA);
    CHECK(kvp.set("k", "v"));
    CHECK(g.get(false, WRITE_INDEX) == write_index);
    g.set(false, READ_INDEX, write_index);
    kvp.signaled();
    daemon.serve(g, kvp);
    CHECK(daemon.external == std::map<std::string, std::string>{{"k", "v"}});
}
