#include "paravirt/vmbus/kvp_ic.h"

#include "mmu/base/utf16.h"

#include <algorithm>
#include <utility>

namespace {

// Items one enumeration takes from a pool at most: a guest that never says
// "no more" cannot keep the host reading (the daemon's Auto pool has ten).
constexpr u32 MAX_ITEMS = 1024;

// `text` as the exchange carries it: UTF-16LE with its NUL; empty when it
// does not fit `limit` bytes.
std::vector<u8> exchange_string(const std::string& text, size_t limit)
{
    std::vector<u8> bytes = utf8_to_utf16(text);
    bytes.push_back(0);
    bytes.push_back(0);
    if (bytes.size() > limit)
        bytes.clear();
    return bytes;
}

void put_string(std::span<u8> message, unsigned size_at, unsigned at, const std::vector<u8>& bytes)
{
    store_le32(message, size_at, static_cast<u32>(bytes.size()));
    std::copy(bytes.begin(), bytes.end(), message.begin() + at);
}

// A value as the guest sent it: a string (REG_SZ, UTF-16 of value_size
// bytes, to its NUL) or a number.
std::string value_text(std::span<const u8> value, u32 type, u32 size)
{
    if (type == kvp::REG_U32 && size >= 4)
        return std::to_string(load_le32(value, 0));
    if (type == kvp::REG_U64 && size >= 8)
        return std::to_string(load_le64(value, 0));
    return utf16_to_utf8(value.first(std::min<size_t>(size, kvp::MAX_VALUE_BYTES)));
}

} // namespace

// Linux 6.1 takes KVP 4.0 (Windows 8), else 3.0, else 1.0 (kvp_versions in hv_kvp.c).
KvpIc::KvpIc(GuestMemory memory, std::function<void()> signal_guest)
    : IcService(memory, std::move(signal_guest), {0x40000, 0x30000, 0x10000})
{
}

bool KvpIc::fits(const std::string& key, const std::string& value)
{
    return !key.empty() && !exchange_string(key, kvp::MAX_KEY_BYTES).empty() &&
           !exchange_string(value, kvp::MAX_VALUE_BYTES).empty();
}

bool KvpIc::set(const std::string& key, const std::string& value)
{
    if (!fits(key, value))
        return false;
    m_host_pool[key] = value;
    queue({kvp::SET, kvp::EXTERNAL, key, value, 0});
    return true;
}

bool KvpIc::remove(const std::string& key)
{
    if (!m_host_pool.erase(key))
        return false;
    queue({kvp::DELETE, kvp::EXTERNAL, key, {}, 0});
    return true;
}

void KvpIc::refresh()
{
    if (!negotiated() || m_reading)
        return;
    m_reading = Reading{kvp::AUTO, {}};
    queue({kvp::ENUMERATE, kvp::AUTO, {}, {}, 0});
}

void KvpIc::on_negotiated()
{
    // A guest's daemon starts with an empty host pool (its files are gone
    // with the guest that wrote them): the whole pool goes again, then the
    // guest's pools are read.
    m_waiting.clear();
    m_in_flight.reset();
    m_reading.reset();
    for (const auto& [key, value] : m_host_pool)
        m_waiting.push_back({kvp::SET, kvp::EXTERNAL, key, value, 0});
    refresh();
    send_next();
}

void KvpIc::on_close()
{
    // Nothing is in flight on a closed channel; what the host set is sent
    // again when the next negotiation ends (on_negotiated).
    m_in_flight.reset();
    m_reading.reset();
    m_waiting.clear();
}

void KvpIc::queue(Request request)
{
    m_waiting.push_back(std::move(request));
    send_next();
}

void KvpIc::send_next()
{
    if (!negotiated() || m_in_flight || m_waiting.empty())
        return;
    const Request& r = m_waiting.front();
    std::vector<u8> m = request(ic::TYPE_KVP_EXCHANGE, kvp::MESSAGE_SIZE);
    const std::span<u8> message = std::span(m).subspan(ic::HEADER_END);
    message[kvp::OPERATION] = r.operation;
    message[kvp::POOL] = r.pool;
    const std::span<u8> body = message.subspan(kvp::BODY);
    switch (r.operation) {
    case kvp::SET:
        store_le32(body, kvp::VALUE_TYPE, kvp::REG_SZ);
        put_string(body, kvp::KEY_SIZE, kvp::KEY, exchange_string(r.key, kvp::MAX_KEY_BYTES));
        put_string(body, kvp::VALUE_SIZE, kvp::VALUE, exchange_string(r.value, kvp::MAX_VALUE_BYTES));
        break;
    case kvp::DELETE:
        put_string(body, kvp::DELETE_KEY_SIZE, kvp::DELETE_KEY, exchange_string(r.key, kvp::MAX_KEY_BYTES));
        break;
    case kvp::ENUMERATE:
        store_le32(body, kvp::ENUMERATE_INDEX, r.index);
        break;
    }
    if (!send(m))
        return; // the ring is full or gone: tried again with the next answer or request
    m_in_flight_transaction = m[ic::TRANSACTION];
    m_in_flight = std::move(m_waiting.front());
    m_waiting.pop_front();
}

void KvpIc::on_response(u16 type, std::span<const u8> m)
{
    if (type != ic::TYPE_KVP_EXCHANGE)
        return;
    // hv_kvp.c answers in the buffer the request came in: the same length,
    // transaction, operation and pool.
    if (!m_in_flight || m.size() < ic::HEADER_END + kvp::MESSAGE_SIZE ||
        m[ic::TRANSACTION] != m_in_flight_transaction ||
        m[ic::HEADER_END + kvp::OPERATION] != m_in_flight->operation ||
        m[ic::HEADER_END + kvp::POOL] != m_in_flight->pool) {
        ++m_counters.bad_answers;
        return;
    }
    ++m_counters.exchanges;
    const Request done = std::move(*m_in_flight);
    m_in_flight.reset();
    const bool ok = load_le32(m, ic::STATUS) == 0;
    if (done.operation == kvp::ENUMERATE && m_reading) {
        if (ok && done.index + 1 < MAX_ITEMS) {
            enumerated(m.subspan(ic::HEADER_END + kvp::BODY + kvp::ENUMERATE_VALUE));
            queue({kvp::ENUMERATE, done.pool, {}, {}, done.index + 1});
        } else {
            next_pool(); // HV_S_CONT: that was the last item
        }
    } else if (!ok) {
        ++m_counters.failed;
    }
    send_next();
}

void KvpIc::enumerated(std::span<const u8> value)
{
    const u32 key_size = std::min<u32>(load_le32(value, kvp::KEY_SIZE), kvp::MAX_KEY_BYTES);
    const std::string key = utf16_to_utf8(value.subspan(kvp::KEY, key_size));
    if (key.empty())
        return; // the daemon names every item; a nameless one is skipped
    m_reading->items[key] = value_text(value.subspan(kvp::VALUE, kvp::MAX_VALUE_BYTES),
                                       load_le32(value, kvp::VALUE_TYPE), load_le32(value, kvp::VALUE_SIZE));
}

void KvpIc::next_pool()
{
    if (m_reading->pool == kvp::AUTO) {
        m_auto = std::move(m_reading->items);
        m_reading = Reading{kvp::GUEST, {}};
        queue({kvp::ENUMERATE, kvp::GUEST, {}, {}, 0});
        return;
    }
    m_guest = std::move(m_reading->items);
    m_reading.reset();
    ++m_counters.reads;
}

namespace {

void visit_items(StateVisitor& v, KvpIc::Items& items)
{
    u32 count = static_cast<u32>(items.size());
    v.field("items", count);
    if (v.loading()) {
        if (count > 2 * MAX_ITEMS)
            return v.fail("kvp-ic: too many items");
        items.clear();
    }
    auto it = items.begin();
    for (u32 i = 0; i < count && v.ok(); ++i) {
        std::string key = v.saving() ? it->first : std::string();
        std::string value = v.saving() ? it->second : std::string();
        v.field("key", key);
        v.field("value", value);
        if (v.saving())
            ++it;
        else
            items[key] = value;
    }
}

} // namespace

void KvpIc::visit_state(StateVisitor& v)
{
    v.section("kvp-ic", 2);
    visit_channel_state(v);
    visit_items(v, m_host_pool);
    visit_items(v, m_auto);
    visit_items(v, m_guest);
    bool reading = m_reading.has_value();
    v.field("reading", reading);
    if (v.loading())
        m_reading = reading ? std::optional<Reading>(Reading{}) : std::nullopt;
    if (m_reading) {
        v.field("reading_pool", m_reading->pool);
        visit_items(v, m_reading->items);
    }
    auto visit_request = [&v](Request& r) {
        v.field("operation", r.operation);
        v.field("pool", r.pool);
        v.field("key", r.key);
        v.field("value", r.value);
        v.field("index", r.index);
    };
    u32 waiting = static_cast<u32>(m_waiting.size());
    v.field("waiting", waiting);
    if (v.loading()) {
        if (waiting > 4 * MAX_ITEMS)
            return v.fail("kvp-ic: too many requests waiting");
        m_waiting.resize(waiting);
    }
    for (Request& r : m_waiting)
        visit_request(r);
    bool in_flight = m_in_flight.has_value();
    v.field("in_flight", in_flight);
    if (v.loading())
        m_in_flight = in_flight ? std::optional<Request>(Request{}) : std::nullopt;
    if (m_in_flight)
        visit_request(*m_in_flight);
    v.field("in_flight_transaction", m_in_flight_transaction);
    v.field("exchanges", m_counters.exchanges);
    v.field("failed", m_counters.failed);
    v.field("bad_answers", m_counters.bad_answers);
    v.field("reads", m_counters.reads);
    // A key or value too long to send would be refused at send time, not here.
    for (const Request& r : m_waiting)
        if (v.loading() && (r.key.size() > kvp::MAX_KEY_BYTES || r.value.size() > 4 * kvp::MAX_VALUE_BYTES))
            return v.fail("kvp-ic: a request too long");
}
