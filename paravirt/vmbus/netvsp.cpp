#include "paravirt/vmbus/netvsp.h"

#include "paravirt/vmbus/device_channel.h"

#include <algorithm>

using namespace vmbus;

namespace {

std::vector<u8> nvsp_message(u32 type)
{
    std::vector<u8> m(nvsp::MESSAGE_SIZE);
    store_le32(m, 0, type);
    return m;
}

// A page frame number whose address fits the 52 bits of a guest physical
// address (a larger one would wrap round when multiplied by the page size).
bool valid_pfn(u64 pfn)
{
    return pfn < (1ull << (52 - 12));
}

// The transfer-page packet's header after the descriptor (Linux's
// vmtransfer_page_packet_header): pageset id u16, sender_owns_set u8, a
// reserved u8, range count u32, then {byte_count, byte_offset} per range.
constexpr unsigned TRANSFER_PAGES_HEADER = 8, TRANSFER_RANGE = 8;

} // namespace

// One channel of the adapter, the primary or a sub-channel (device_channel.h).
class Netvsp::Channel final : public DeviceChannel {
public:
    Channel(Netvsp& device, u16 index)
        : DeviceChannel(device.m_memory, device.m_links.signal_guest, MAX_COMPLETION_BACKLOG, nvsp::MESSAGE_SIZE),
          m_device(device), m_index(index)
    {
    }
    void signaled() override
    {
        if (!rings())
            return;
        // The guest may have made room in the ring, or completed sections.
        flush_completions();
        m_device.flush_control();
        rings()->drain([this](const Packet& packet) { m_device.handle(*this, packet); }, [this] { signal(); });
    }
    void visit_state(StateVisitor& v) { visit_channel_state(v, "netvsp"); }

    u16 index() const { return m_index; }
    u64 frames = 0, requests = 0;

private:
    Netvsp& m_device;
    u16 m_index;
};

Netvsp::Netvsp(GuestMemory memory, const Mac& mac, GpadlPages gpadl_pages, std::function<void()> signal_guest)
    : Netvsp(memory, mac, std::move(gpadl_pages),
             Links{[signal = std::move(signal_guest)](u32) { signal(); }, nullptr}, 0)
{
}

Netvsp::Netvsp(GuestMemory memory, const Mac& mac, GpadlPages gpadl_pages, Links links, u16 max_sub_channels)
    : m_memory(memory), m_mac(mac), m_gpadl_pages(std::move(gpadl_pages)), m_links(std::move(links)),
      m_max_sub_channels(std::min(max_sub_channels, MAX_SUB_CHANNELS))
{
    m_channels.push_back(std::make_unique<Channel>(*this, 0));
}

Netvsp::~Netvsp() = default;

Netvsp::Channel& Netvsp::channel(u16 index)
{
    while (m_channels.size() <= index)
        m_channels.push_back(std::make_unique<Channel>(*this, static_cast<u16>(m_channels.size())));
    return *m_channels[index];
}

VmbusServer::Device* Netvsp::sub_channel(u16 index)
{
    if (index == 0 || index > m_max_sub_channels)
        return nullptr;
    return &channel(index);
}

u64 Netvsp::frames_on(u16 index) const { return index < m_channels.size() ? m_channels[index]->frames : 0; }

u64 Netvsp::requests_on(u16 index) const { return index < m_channels.size() ? m_channels[index]->requests : 0; }

bool Netvsp::open(const VmbusServer::OpenRequest& request)
{
    reset_channel();
    return channel(0).open(request);
}

void Netvsp::close()
{
    channel(0).close();
    reset_channel();
}

void Netvsp::reset_channel()
{
    m_version = 0;
    m_ndis_version = 0;
    m_mtu = 0;
    m_receive = {};
    m_send = {};
    m_rndis_initialized = false;
    m_packet_filter = 0;
    m_in_flight.clear();
    m_section_busy.clear();
    m_next_section = 0;
    m_control.clear();
    m_rss_hash_info = 0;
    m_rss_key.clear();
    m_rss_table.clear();
}

void Netvsp::signaled() { channel(0).signaled(); }

void Netvsp::handle(Channel& channel, const Packet& packet)
{
    ++channel.requests;
    if (packet.type == PACKET_COMPLETION)
        return handle_completion(packet);
    if ((packet.type != PACKET_DATA_INBAND && packet.type != PACKET_DATA_USING_GPA_DIRECT) ||
        packet.body.size() < 4) {
        ++m_counters.refused;
        return;
    }
    // Fields past a short message read as zero, as in Linux's 40-byte union.
    std::vector<u8> m(packet.body.begin(),
                      packet.body.begin() + std::min<size_t>(packet.body.size(), nvsp::MESSAGE_SIZE));
    m.resize(nvsp::MESSAGE_SIZE);
    std::vector<u8> reply;
    switch (load_le32(m, 0)) {
    case nvsp::INIT:
        reply = init(m);
        break;
    case nvsp::SEND_NDIS_VERSION:
        if (!m_version)
            ++m_counters.refused;
        else
            m_ndis_version = (load_le32(m, nvsp::NDIS_VERSION_MAJOR) << 16) |
                             (load_le32(m, nvsp::NDIS_VERSION_MINOR) & 0xFFFF);
        break;
    case nvsp::SEND_NDIS_CONFIG:
        if (m_version < nvsp::VERSION_2)
            ++m_counters.refused;
        else
            m_mtu = load_le32(m, nvsp::NDIS_CONFIG_MTU);
        break;
    case nvsp::SEND_RECEIVE_BUFFER:
        reply = send_receive_buffer(m);
        break;
    case nvsp::SEND_SEND_BUFFER:
        reply = send_send_buffer(m);
        break;
    case nvsp::REVOKE_RECEIVE_BUFFER:
        // The guest completes nothing of the old buffer after this.
        if (!m_receive.pfns.empty() && load_le16(m, nvsp::REVOKE_ID) == m_receive.id) {
            m_receive = {};
            m_in_flight.clear();
            m_section_busy.clear();
            m_control.clear();
        } else {
            ++m_counters.refused;
        }
        break;
    case nvsp::REVOKE_SEND_BUFFER:
        if (!m_send.pfns.empty() && load_le16(m, nvsp::REVOKE_ID) == m_send.id)
            m_send = {};
        else
            ++m_counters.refused;
        break;
    case nvsp::SEND_RNDIS_PACKET:
        reply = send_rndis_packet(packet, m);
        break;
    case nvsp::SUBCHANNEL:
        reply = allocate_sub_channels(channel, m);
        break;
    default:
        ++m_counters.refused;
        return;
    }
    // Only what the guest asked to have completed is: Linux sends the NDIS
    // version and configuration without, and would not expect an answer.
    if (!reply.empty() && (packet.flags & PACKET_FLAG_COMPLETION_REQUESTED))
        complete(channel, packet.transaction_id, std::move(reply));
}

std::vector<u8> Netvsp::allocate_sub_channels(Channel& channel, std::span<const u8> m)
{
    // Asked on the primary, once its protocol is 5 or later: the server
    // offers them (after this completion, which the guest waits for before
    // it opens any); the guest's netvsc_sc_open opens each.
    const u32 count = load_le32(m, nvsp::SUBCHANNEL_COUNT);
    const bool ok = channel.index() == 0 && m_version >= nvsp::VERSION_5 &&
                    load_le32(m, nvsp::SUBCHANNEL_OP) == nvsp::SUBCHANNEL_ALLOCATE && count >= 1 &&
                    count <= m_max_sub_channels && m_links.offer_sub_channels &&
                    m_links.offer_sub_channels(channel.relid(), static_cast<u16>(count));
    if (!ok)
        ++m_counters.refused;
    std::vector<u8> reply = nvsp_message(nvsp::SUBCHANNEL);
    store_le32(reply, 4, ok ? nvsp::STATUS_SUCCESS : nvsp::STATUS_FAIL);
    store_le32(reply, 8, ok ? count : 0);
    return reply;
}

std::vector<u8> Netvsp::init(std::span<const u8> m)
{
    const u32 low = load_le32(m, nvsp::INIT_MIN_VERSION), high = load_le32(m, nvsp::INIT_MAX_VERSION);
    u32 chosen = 0;
    for (u32 v : nvsp::SUPPORTED_VERSIONS)
        if (v >= low && v <= high) {
            chosen = v;
            break;
        }
    // The version holds for the buffers given under it: no change after.
    if (!m_receive.pfns.empty() || !m_send.pfns.empty())
        chosen = 0;
    if (chosen)
        m_version = chosen;
    else
        ++m_counters.refused;
    std::vector<u8> reply = nvsp_message(nvsp::INIT_COMPLETE);
    store_le32(reply, nvsp::INIT_COMPLETE_VERSION, chosen);
    store_le32(reply, nvsp::INIT_COMPLETE_STATUS, chosen ? nvsp::STATUS_SUCCESS : nvsp::STATUS_FAIL);
    return reply;
}

bool Netvsp::take_buffer(Buffer& buffer, std::span<const u8> m)
{
    const u32 handle = load_le32(m, nvsp::BUFFER_GPADL);
    const std::vector<u64>* pages = m_gpadl_pages ? m_gpadl_pages(handle) : nullptr;
    if (!m_version || !buffer.pfns.empty() || !pages || pages->empty() ||
        !std::all_of(pages->begin(), pages->end(), valid_pfn))
        return false;
    buffer.gpadl = handle;
    buffer.id = load_le16(m, nvsp::BUFFER_ID);
    buffer.pfns = *pages;
    return true;
}

std::vector<u8> Netvsp::send_receive_buffer(std::span<const u8> m)
{
    std::vector<u8> reply = nvsp_message(nvsp::SEND_RECEIVE_BUFFER_COMPLETE);
    const bool fresh = m_receive.pfns.empty();
    u32 sections = 0;
    if (take_buffer(m_receive, m)) {
        sections = static_cast<u32>(std::min<u64>(m_receive.size() / RECEIVE_SECTION_SIZE, MAX_RECEIVE_SECTIONS));
        if (!sections)
            m_receive = {};
    }
    if (!sections) {
        ++m_counters.refused;
        if (fresh)
            m_receive = {};
        store_le32(reply, nvsp::RECEIVE_COMPLETE_STATUS, nvsp::STATUS_FAIL);
        return reply;
    }
    m_section_busy.assign(sections, 0);
    m_in_flight.clear();
    m_next_section = 0;
    // One section of equal sub-allocations from offset 0: the only layout
    // Linux accepts (netvsc_init_buf).
    store_le32(reply, nvsp::RECEIVE_COMPLETE_STATUS, nvsp::STATUS_SUCCESS);
    store_le32(reply, nvsp::RECEIVE_COMPLETE_SECTIONS, 1);
    store_le32(reply, nvsp::RECEIVE_SECTION + 0, 0);
    store_le32(reply, nvsp::RECEIVE_SECTION + 4, RECEIVE_SECTION_SIZE);
    store_le32(reply, nvsp::RECEIVE_SECTION + 8, sections);
    store_le32(reply, nvsp::RECEIVE_SECTION + 12, sections * RECEIVE_SECTION_SIZE);
    flush_control(); // RNDIS answers that waited for a buffer
    return reply;
}

std::vector<u8> Netvsp::send_send_buffer(std::span<const u8> m)
{
    std::vector<u8> reply = nvsp_message(nvsp::SEND_SEND_BUFFER_COMPLETE);
    const bool fresh = m_send.pfns.empty();
    bool ok = take_buffer(m_send, m);
    if (ok && m_send.size() < SEND_SECTION_SIZE) {
        m_send = {};
        ok = false;
    }
    if (!ok) {
        ++m_counters.refused;
        if (fresh)
            m_send = {};
    }
    store_le32(reply, nvsp::SEND_COMPLETE_STATUS, ok ? nvsp::STATUS_SUCCESS : nvsp::STATUS_FAIL);
    store_le32(reply, nvsp::SEND_COMPLETE_SECTION_SIZE, ok ? SEND_SECTION_SIZE : 0);
    return reply;
}

std::vector<u8> Netvsp::send_rndis_packet(const Packet& packet, std::span<const u8> m)
{
    std::vector<u8> bytes;
    const bool ok = gather(packet, m, bytes) && process_rndis(bytes);
    if (!ok)
        ++m_counters.refused;
    std::vector<u8> reply = nvsp_message(nvsp::SEND_RNDIS_PACKET_COMPLETE);
    store_le32(reply, nvsp::RNDIS_COMPLETE_STATUS, ok ? nvsp::STATUS_SUCCESS : nvsp::STATUS_FAIL);
    return reply;
}

bool Netvsp::gather(const Packet& packet, std::span<const u8> m, std::vector<u8>& bytes)
{
    // A send-buffer section first (several RNDIS messages, or the headers of
    // one whose data follows in the page ranges), then the page ranges.
    const u32 index = load_le32(m, nvsp::RNDIS_SECTION_INDEX);
    if (index != nvsp::NO_SECTION) {
        const u32 size = load_le32(m, nvsp::RNDIS_SECTION_SIZE);
        if (m_send.pfns.empty() || index >= m_send.size() / SEND_SECTION_SIZE || size > SEND_SECTION_SIZE)
            return false;
        bytes.resize(size);
        if (!copy_buffer(m_send, u64{index} * SEND_SECTION_SIZE, bytes, false))
            return false;
    }
    if (packet.type == PACKET_DATA_USING_GPA_DIRECT) {
        const std::optional<std::vector<GpaRange>> ranges = parse_gpa_ranges(packet.extra);
        if (!ranges)
            return false;
        u64 total = 0;
        for (const GpaRange& r : *ranges)
            total += r.byte_count;
        if (total > MAX_TRANSFER - bytes.size())
            return false;
        const size_t at = bytes.size();
        bytes.resize(at + total);
        if (!copy_ranges(m_memory, *ranges, std::span<u8>(bytes).subspan(at), false))
            return false;
    }
    return !bytes.empty();
}

bool Netvsp::copy_buffer(const Buffer& buffer, u64 offset, std::span<u8> bytes, bool to_guest)
{
    if (offset > buffer.size() || bytes.size() > buffer.size() - offset)
        return false;
    size_t done = 0;
    while (done < bytes.size()) {
        const u64 at = offset + done, in_page = at % PAGE_SIZE;
        const size_t chunk = static_cast<size_t>(std::min<u64>(bytes.size() - done, PAGE_SIZE - in_page));
        const GuestPhys address = buffer.pfns[at / PAGE_SIZE] * PAGE_SIZE + in_page;
        const std::span<u8> piece = bytes.subspan(done, chunk);
        if (!(to_guest ? m_memory.write(address, piece) : m_memory.read(address, piece)))
            return false;
        done += chunk;
    }
    return true;
}

void Netvsp::handle_completion(const Packet& packet)
{
    // The guest is done with a receive packet's sections (it completes
    // with SEND_RNDIS_PACKET_COMPLETE; the status says whether it took the
    // frame, which changes nothing here).
    auto it = m_in_flight.find(packet.transaction_id);
    if (it == m_in_flight.end() || packet.body.size() < 4 ||
        load_le32(packet.body, 0) != nvsp::SEND_RNDIS_PACKET_COMPLETE) {
        ++m_counters.refused;
        return;
    }
    m_section_busy[it->second] = 0;
    m_in_flight.erase(it);
    flush_control();
}

void Netvsp::receive(std::span<const u8> frame)
{
    flush_control(); // control messages go first
    if (!m_link_up || !m_rndis_initialized || !m_control.empty() || frame.size() < 14 ||
        frame.size() > MAX_RECEIVE_FRAME || !accepts(frame)) {
        ++m_counters.rx_dropped;
        return;
    }
    // A checksum the host verified goes with the frame, so that the guest's
    // stack need not check it again (receive checksum offload).
    const u16 target = rss_channel(frame);
    const u32 checksum = verified_checksum(frame);
    const u32 info = checksum ? rndis::CHECKSUM_INFO_SIZE : 0;
    std::vector<u8> message(rndis::HEADER_SIZE + rndis::PACKET_SIZE + info + frame.size());
    store_le32(message, 0, rndis::PACKET);
    store_le32(message, 4, static_cast<u32>(message.size()));
    store_le32(message, rndis::PACKET_DATA_OFFSET, rndis::PACKET_SIZE + info);
    store_le32(message, rndis::PACKET_DATA_LENGTH, static_cast<u32>(frame.size()));
    if (checksum) {
        const unsigned at = rndis::HEADER_SIZE + rndis::PACKET_SIZE;
        store_le32(message, rndis::PACKET_INFO_OFFSET, rndis::PACKET_SIZE);
        store_le32(message, rndis::PACKET_INFO_LENGTH, info);
        store_le32(message, at, info);
        store_le32(message, at + 4, rndis::INFO_CHECKSUM);
        store_le32(message, at + 8, rndis::INFO_HEADER_SIZE);
        store_le32(message, at + 12, checksum);
    }
    std::copy(frame.begin(), frame.end(), message.begin() + rndis::HEADER_SIZE + rndis::PACKET_SIZE + info);
    if (deliver(message, nvsp::CHANNEL_DATA, target))
        ++m_counters.rx_frames;
    else
        ++m_counters.rx_dropped;
}

RxFilter Netvsp::rx_filter() const
{
    const u32 filter = m_packet_filter;
    RxFilter f;
    f.main_mac = m_mac;
    f.promiscuous = filter & rndis::FILTER_PROMISCUOUS;
    f.unicast = f.promiscuous ? RxFilter::Mode::All
                : filter & rndis::FILTER_DIRECTED ? RxFilter::Mode::Normal
                                                   : RxFilter::Mode::None;
    // The multicast list is taken but not kept: the filter's bits decide.
    f.multicast = filter & (rndis::FILTER_MULTICAST | rndis::FILTER_ALL_MULTICAST | rndis::FILTER_PROMISCUOUS)
                      ? RxFilter::Mode::All
                      : RxFilter::Mode::None;
    f.broadcast_allowed = filter & (rndis::FILTER_BROADCAST | rndis::FILTER_PROMISCUOUS);
    return f;
}

bool Netvsp::accepts(std::span<const u8> frame) const
{
    const u32 filter = m_packet_filter;
    if (filter & rndis::FILTER_PROMISCUOUS)
        return true;
    const std::span<const u8> destination = frame.first(6);
    if (std::all_of(destination.begin(), destination.end(), [](u8 b) { return b == 0xFF; }))
        return filter & rndis::FILTER_BROADCAST;
    if (destination[0] & 1)
        return filter & (rndis::FILTER_MULTICAST | rndis::FILTER_ALL_MULTICAST);
    return (filter & rndis::FILTER_DIRECTED) && std::equal(destination.begin(), destination.end(), m_mac.begin());
}

bool Netvsp::deliver(std::vector<u8>& message, u32 channel_type, u16 channel_index)
{
    // A sub-channel the guest has not opened (or has closed) leaves its
    // frames to the primary.
    Channel& target = channel_index < m_channels.size() && m_channels[channel_index]->is_open()
                          ? *m_channels[channel_index]
                          : channel(0);
    std::optional<RingPair>& rings = target.rings();
    const u32 sections = static_cast<u32>(m_section_busy.size());
    if (!rings || m_receive.pfns.empty() || message.size() > RECEIVE_SECTION_SIZE || !sections)
        return false;
    u32 section = sections;
    for (u32 i = 0; i < sections; ++i) {
        const u32 s = (m_next_section + i) % sections;
        if (!m_section_busy[s]) {
            section = s;
            break;
        }
    }
    if (section == sections || !copy_buffer(m_receive, u64{section} * RECEIVE_SECTION_SIZE, message, true))
        return false;
    std::array<u8, TRANSFER_PAGES_HEADER + TRANSFER_RANGE> extra{};
    store_le16(extra, 0, m_receive.id);
    store_le32(extra, 4, 1);
    store_le32(extra, 8, static_cast<u32>(message.size()));
    store_le32(extra, 12, section * RECEIVE_SECTION_SIZE);
    std::vector<u8> body(16);
    store_le32(body, 0, nvsp::SEND_RNDIS_PACKET);
    store_le32(body, nvsp::RNDIS_CHANNEL_TYPE, channel_type);
    store_le32(body, nvsp::RNDIS_SECTION_INDEX, nvsp::NO_SECTION);
    const u64 id = m_next_transaction++;
    bool wake = false;
    if (!rings->write(PACKET_DATA_USING_TRANSFER_PAGES, PACKET_FLAG_COMPLETION_REQUESTED, id, extra, body, wake))
        return false;
    m_section_busy[section] = 1;
    m_in_flight.emplace(id, section);
    m_next_section = (section + 1) % sections;
    if (channel_type == nvsp::CHANNEL_DATA)
        ++target.frames;
    if (wake)
        target.signal();
    return true;
}

void Netvsp::send_control(std::vector<u8> message)
{
    if (m_control.size() >= MAX_CONTROL_BACKLOG) {
        ++m_counters.refused; // the guest asks and never completes
        return;
    }
    m_control.push_back(std::move(message));
    flush_control();
}

void Netvsp::flush_control()
{
    while (!m_control.empty() && deliver(m_control.front(), nvsp::CHANNEL_CONTROL))
        m_control.pop_front();
}

void Netvsp::complete(Channel& channel, u64 transaction_id, std::vector<u8> body)
{
    if (!channel.complete(transaction_id, std::move(body)))
        ++m_counters.refused; // the guest asks and never reads its ring
}

void Netvsp::set_link_up(bool up)
{
    if (m_link_up == up)
        return;
    m_link_up = up;
    indicate_link();
}

void Netvsp::visit_state(StateVisitor& v)
{
    v.section("netvsp", 2);
    // The primary and each sub-channel the guest has had: rings, completions.
    u32 channels = static_cast<u32>(m_channels.size());
    v.field("channels", channels);
    if (v.loading() && (channels == 0 || channels > 1u + m_max_sub_channels))
        return v.fail("netvsp: the snapshot's adapter has more channels than this one");
    for (u32 i = 0; i < channels && v.ok(); ++i)
        channel(static_cast<u16>(i)).visit_state(v);
    for (u32 i = channels; v.loading() && i < m_channels.size(); ++i)
        m_channels[i]->close();
    v.field("rss_hash_info", m_rss_hash_info);
    v.field("rss_key", m_rss_key);
    v.field("rss_table", m_rss_table);
    if (v.loading() && (m_rss_key.size() > rndis::RSS_KEY_BYTES || m_rss_table.size() > rndis::RSS_MAX_TABLE ||
                        std::any_of(m_rss_table.begin(), m_rss_table.end(),
                                    [&](u32 c) { return c > m_max_sub_channels; })))
        return v.fail("netvsp: bad RSS parameters");
    v.field("version", m_version);
    v.field("ndis_version", m_ndis_version);
    v.field("mtu", m_mtu);
    for (Buffer* b : {&m_receive, &m_send}) {
        v.field("gpadl", b->gpadl);
        v.field("id", b->id);
        v.field("pfns", b->pfns);
        if (v.loading() && !std::all_of(b->pfns.begin(), b->pfns.end(), valid_pfn))
            return v.fail("netvsp: a saved buffer page beyond the address space");
    }
    v.field("rndis_initialized", m_rndis_initialized);
    v.field("packet_filter", m_packet_filter);
    v.field("link_up", m_link_up);
    v.field("next_transaction", m_next_transaction);
    v.field("next_section", m_next_section);
    // The receive sections the guest holds: its completions come after the load.
    u32 in_flight = static_cast<u32>(m_in_flight.size());
    v.field("in_flight", in_flight);
    const u32 sections = m_receive.pfns.empty()
                             ? 0
                             : static_cast<u32>(std::min<u64>(m_receive.size() / RECEIVE_SECTION_SIZE,
                                                              MAX_RECEIVE_SECTIONS));
    if (v.loading()) {
        if (in_flight > sections)
            return v.fail("netvsp: more receive sections in flight than the buffer has");
        m_in_flight.clear();
        m_section_busy.assign(sections, 0);
        if (m_next_section >= std::max<u32>(sections, 1))
            m_next_section = 0;
        for (u32 i = 0; i < in_flight && v.ok(); ++i) {
            u64 id = 0;
            u32 section = 0;
            v.field("transaction_id", id);
            v.field("section", section);
            if (section >= sections || m_section_busy[section] || !m_in_flight.emplace(id, section).second)
                return v.fail("netvsp: a bad receive section in flight");
            m_section_busy[section] = 1;
        }
    } else {
        for (const auto& [saved_id, saved_section] : m_in_flight) {
            u64 id = saved_id;
            u32 section = saved_section;
            v.field("transaction_id", id);
            v.field("section", section);
        }
    }
    u32 control = static_cast<u32>(m_control.size());
    v.field("control", control);
    if (v.loading()) {
        if (control > MAX_CONTROL_BACKLOG)
            return v.fail("netvsp: too many RNDIS messages waiting");
        m_control.resize(control);
    }
    for (std::vector<u8>& message : m_control) {
        v.field("message", message);
        if (v.loading() && message.size() > RECEIVE_SECTION_SIZE)
            return v.fail("netvsp: a waiting RNDIS message larger than a section");
    }
}
