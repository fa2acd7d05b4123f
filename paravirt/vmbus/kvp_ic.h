// The key-value pair exchange integration service (docs/vmbus.md
// "Integration services"; Hyper-V's "Data Exchange"). Linux's hv_utils
// (hv_kvp.c) passes each request to a user-space daemon (hv_kvp_daemon,
// Debian's hyperv-daemons) and does not read the channel until one has
// registered on /dev/vmbus/hv_kvp: without it the host's NEGOTIATE waits in
// the ring and nothing else happens. With it the guest picks 4.0, and:
//
// - The host's pool (External, pool 0) is what the host sets: each set or
//   delete goes to the guest as a SET or DELETE, which the daemon writes to
//   /var/lib/hyperv/.kvp_pool_0 for the guest's programs to read.
// - The guest's pools are read by ENUMERATE from index 0 until the guest
//   says there are no more (HV_S_CONT, or any failure): Auto (pool 2), the
//   daemon's own items (FullyQualifiedDomainName, OSName, NetworkAddressIPv4
//   and the rest, as Hyper-V shows them), and Guest (pool 1), what the
//   guest's programs wrote to .kvp_pool_1. Read when the service is
//   negotiated and again whenever refresh() asks.
//
// One request is in flight at a time (hv_kvp.c serves one transaction at a
// time); the rest wait in order. Keys and values travel as UTF-16 with a
// NUL, at most 512 and 2048 bytes. An answer is checked before anything is
// taken from it: its transaction, its operation and pool, its sizes.
#pragma once

#include "paravirt/vmbus/ic_service.h"

#include <deque>
#include <map>
#include <optional>
#include <string>

namespace ic {
inline constexpr const char* KVP_CLASS_GUID = "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6";
} // namespace ic

namespace kvp {
// struct hv_kvp_msg (include/uapi/linux/hyperv.h) after the IC header:
// {u8 operation, u8 pool, u16 pad}, then the body. Every request is sent
// 2,580 bytes long (the header and the largest body an exchange uses,
// ENUMERATE's), as Hyper-V does.
constexpr unsigned OPERATION = 0, POOL = 1, BODY = 4, MESSAGE_SIZE = 2580;
// struct hv_kvp_exchg_msg_value, where it starts in each body: {u32
// value_type, u32 key_size, u32 value_size, key[512], value[2048]}; SET's
// and GET's at the body, ENUMERATE's after its u32 index. DELETE's body is
// {u32 key_size, key[512]}.
constexpr unsigned VALUE_TYPE = 0, KEY_SIZE = 4, VALUE_SIZE = 8, KEY = 12, VALUE = 524;
constexpr unsigned ENUMERATE_INDEX = 0, ENUMERATE_VALUE = 4;
constexpr unsigned DELETE_KEY_SIZE = 0, DELETE_KEY = 4;
constexpr unsigned MAX_KEY_BYTES = 512, MAX_VALUE_BYTES = 2048;
enum Operation : u8 { GET = 0, SET = 1, DELETE = 2, ENUMERATE = 3 };
enum Pool : u8 { EXTERNAL = 0, GUEST = 1, AUTO = 2 };
// Registry value types (REG_SZ, REG_DWORD, REG_QWORD).
constexpr u32 REG_SZ = 1, REG_U32 = 4, REG_U64 = 8;
// What the guest answers when an enumeration has gone past the last item.
constexpr u32 HV_S_CONT = 0x80070103;
} // namespace kvp

class KvpIc final : public IcService {
public:
    using Items = std::map<std::string, std::string>;

    KvpIc(GuestMemory memory, std::function<void()> signal_guest);

    // The host's pool. A key or value too long for the exchange (over 255
    // or 1,023 UTF-16 units) is refused with false; otherwise the change is
    // sent to the guest once the service is negotiated, in order.
    bool set(const std::string& key, const std::string& value);
    // Whether the exchange can carry them (what set() checks).
    static bool fits(const std::string& key, const std::string& value);
    bool remove(const std::string& key);
    const Items& host_pool() const { return m_host_pool; }

    // Reads the guest's Auto and Guest pools again (nothing while a read is
    // under way or the service is not negotiated).
    void refresh();
    // The guest's pools as last read completely; empty before.
    const Items& auto_pool() const { return m_auto; }
    const Items& guest_pool() const { return m_guest; }
    bool refreshing() const { return m_reading.has_value(); }

    struct Counters {
        u64 exchanges = 0;    // answers taken
        u64 failed = 0;       // SET/DELETE the guest refused
        u64 bad_answers = 0;  // answers that did not fit the request
        u64 reads = 0;        // complete reads of the guest's pools
    };
    const Counters& counters() const { return m_counters; }

    void visit_state(StateVisitor& v);

private:
    struct Request {
        u8 operation = kvp::GET;
        u8 pool = kvp::EXTERNAL;
        std::string key, value;
        u32 index = 0;
    };

    void on_negotiated() override;
    void on_response(u16 type, std::span<const u8> message) override;
    void on_close() override;
    void on_room() override { send_next(); }
    void queue(Request request);
    void send_next();
    void enumerated(std::span<const u8> body);
    void next_pool();

    Items m_host_pool;
    Items m_auto, m_guest;
    // A read of the guest's pools: the pool being enumerated and what it has
    // given so far.
    struct Reading {
        u8 pool = kvp::AUTO;
        Items items;
    };
    std::optional<Reading> m_reading;
    std::deque<Request> m_waiting;
    std::optional<Request> m_in_flight;
    u8 m_in_flight_transaction = 0;
    Counters m_counters;
};
