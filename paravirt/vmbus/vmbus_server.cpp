#include "paravirt/vmbus/vmbus_server.h"

#include "paravirt/hyperv.h"

#include <algorithm>

using namespace vmbus;

namespace {

// Messages the outbox may hold before the guest's requests are refused with
// InsufficientBuffers (which Linux's vmbus_post_msg retries, as on Hyper-V
// when the host's buffers are full). A guest that reads its messages waits
// for each answer and never comes near it; the one burst larger than a few
// answers, the offers, is admitted whole. Without it a guest that posts and
// never reads grows host memory without bound, past what a snapshot loads.
constexpr size_t MAX_OUTBOX = 256;
// GPADLs the guest may hold at once, complete or being sent. Linux needs a
// few per channel (a ring, netvsc's send and receive buffers); each may
// name up to 8190 pages (a 64 KiB range buffer), so this bounds the host
// memory a guest can make the server keep to about 128 MiB.
constexpr size_t MAX_GPADLS = 2048;

// The smallest message of each type the guest sends; shorter ones are refused.
unsigned minimum_size(u32 type)
{
    switch (type) {
    case INITIATE_CONTACT: return initiate_contact::SIZE;
    case REQUEST_OFFERS:
    case UNLOAD: return HEADER_SIZE;
    case GPADL_HEADER: return gpadl_header::SIZE;
    case GPADL_BODY: return gpadl_body::SIZE;
    case GPADL_TEARDOWN: return gpadl_teardown::SIZE;
    case OPEN_CHANNEL: return open_channel::SIZE;
    case CLOSE_CHANNEL:
    case RELID_RELEASED: return relid_message::SIZE;
    case MODIFY_CHANNEL: return modify_channel::SIZE;
    default: return 0; // not a guest-to-host message
    }
}

std::vector<u8> message(u32 type, unsigned size)
{
    std::vector<u8> m(size);
    store_le32(m, 0, type);
    return m;
}

u8 hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return static_cast<u8>(c - '0');
    if (c >= 'a' && c <= 'f')
        return static_cast<u8>(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return static_cast<u8>(c - 'A' + 10);
    return 0xFF;
}

} // namespace

Guid vmbus::parse_guid(std::string_view text)
{
    // 8-4-4-4-12 hex digits; the first three groups are stored little-endian.
    if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-')
        return {};
    std::array<u8, 16> be{};
    unsigned n = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '-')
            continue;
        const u8 d = hex_digit(text[i]);
        if (d == 0xFF)
            return {};
        be[n / 2] = static_cast<u8>(be[n / 2] | (n % 2 ? d : d << 4));
        ++n;
    }
    Guid g = be;
    std::reverse(g.begin(), g.begin() + 4);
    std::reverse(g.begin() + 4, g.begin() + 6);
    std::reverse(g.begin() + 6, g.begin() + 8);
    return g;
}

VmbusServer::VmbusServer(HyperV& hv) : m_hv(hv)
{
    for (u32 connection : {MESSAGE_CONNECTION_ID, MESSAGE_CONNECTION_ID_WIN10_V5})
        m_hv.connections().add_message_port(
            connection, [this, connection](unsigned vp, u32 type, std::span<const u8> payload) {
                if (type != SYNIC_MESSAGE_TYPE) {
                    refuse();
                    return HvStatus::Success;
                }
                return receive(vp, connection, payload);
            });
}

VmbusServer::~VmbusServer()
{
    m_hv.connections().remove(MESSAGE_CONNECTION_ID);
    m_hv.connections().remove(MESSAGE_CONNECTION_ID_WIN10_V5);
    for (u32 relid = 1; relid <= m_channels.size(); ++relid)
        m_hv.connections().remove(CHANNEL_CONNECTION_ID_BASE + relid);
}

u32 VmbusServer::add_channel(const Offer& offer, Device& device)
{
    const u32 relid = allocate(offer, device, 0);
    if (relid && m_offers_requested)
        send_offer(relid);
    return relid;
}

u32 VmbusServer::allocate(const Offer& offer, Device& device, u32 primary)
{
    auto free_slot = std::find_if(m_channels.begin(), m_channels.end(),
                                  [](const Channel& c) { return c.state == ChannelState::Free; });
    u32 relid = static_cast<u32>(free_slot - m_channels.begin()) + 1;
    if (free_slot == m_channels.end()) {
        if (m_channels.size() + 1 >= MAX_CHANNEL_RELIDS)
            return 0;
        m_channels.emplace_back();
    }
    Channel& c = m_channels[relid - 1];
    c = Channel{};
    c.offer = offer;
    c.device = &device;
    c.state = ChannelState::Offered;
    c.primary = primary;
    add_event_port(relid);
    return relid;
}

void VmbusServer::add_event_port(u32 relid)
{
    // The guest signals the channel with HvSignalEvent on the connection
    // ID its offer names (flag 0): a dedicated interrupt, no monitor page.
    m_hv.connections().add_event_port(CHANNEL_CONNECTION_ID_BASE + relid, 1,
                                      [this, relid](unsigned, u16) {
                                          Channel* ch = channel(relid);
                                          if (!ch || ch->state != ChannelState::Open)
                                              return HvStatus::InvalidConnectionId;
                                          ++m_counters.signals_in;
                                          ch->device->signaled();
                                          return HvStatus::Success;
                                      });
}

void VmbusServer::free_channel(u32 relid)
{
    m_hv.connections().remove(CHANNEL_CONNECTION_ID_BASE + relid);
    m_channels[relid - 1] = Channel{};
    // The guest's buffers for the old channel must not serve one that
    // takes the relid next.
    std::erase_if(m_gpadls, [relid](const auto& entry) { return entry.second.relid == relid; });
}

bool VmbusServer::offer_sub_channels(u32 primary, u16 count)
{
    const Channel* p = channel(primary);
    if (!p || p->primary != 0 || p->state != ChannelState::Open)
        return false;
    const Offer offer = p->offer;
    Device* const device = p->device; // p dangles once a slot is added
    std::vector<bool> offered(count + 1u, false);
    for (const Channel& ch : m_channels)
        if ((ch.state == ChannelState::Offered || ch.state == ChannelState::Open) &&
            ch.primary == primary && ch.offer.sub_channel_index <= count)
            offered[ch.offer.sub_channel_index] = true;
    size_t wanted = 0;
    for (u16 index = 1; index <= count; ++index)
        if (!offered[index]) {
            if (!device->sub_channel(index))
                return false;
            ++wanted;
        }
    const size_t free_slots =
        std::count_if(m_channels.begin(), m_channels.end(),
                      [](const Channel& c) { return c.state == ChannelState::Free; }) +
        (MAX_CHANNEL_RELIDS - 1 - m_channels.size());
    if (wanted > free_slots)
        return false;
    for (u16 index = 1; index <= count; ++index) {
        if (offered[index])
            continue;
        Offer sub = offer;
        sub.sub_channel_index = index;
        send_offer(allocate(sub, *device->sub_channel(index), primary));
    }
    return true;
}

std::vector<u32> VmbusServer::sub_channels(u32 primary) const
{
    std::vector<std::pair<u16, u32>> found;
    for (u32 relid = 1; relid <= m_channels.size(); ++relid) {
        const Channel& ch = m_channels[relid - 1];
        if (primary != 0 && ch.primary == primary &&
            (ch.state == ChannelState::Offered || ch.state == ChannelState::Open))
            found.emplace_back(ch.offer.sub_channel_index, relid);
    }
    std::sort(found.begin(), found.end());
    std::vector<u32> relids;
    for (const auto& [index, relid] : found)
        relids.push_back(relid);
    return relids;
}

bool VmbusServer::signal_guest(u32 relid)
{
    Channel* ch = channel(relid);
    if (!ch || ch->state != ChannelState::Open)
        return false;
    ++m_counters.signals_out;
    m_hv.synic(ch->target_vp).signal_event(m_sint, relid);
    return true;
}

bool VmbusServer::channel_open(u32 relid) const
{
    return relid >= 1 && relid <= m_channels.size() &&
           m_channels[relid - 1].state == ChannelState::Open;
}

VmbusServer::Channel* VmbusServer::channel(u32 relid)
{
    if (relid < 1 || relid > m_channels.size() || m_channels[relid - 1].state == ChannelState::Free)
        return nullptr;
    return &m_channels[relid - 1];
}

HvStatus VmbusServer::receive(unsigned /*vp*/, u32 connection_id, std::span<const u8> m)
{
    // Contact and UNLOAD empty the outbox: a guest starting over always gets through.
    const bool starts_over = m.size() >= HEADER_SIZE &&
                             (load_le32(m, 0) == INITIATE_CONTACT || load_le32(m, 0) == UNLOAD);
    if (m_outbox.size() >= MAX_OUTBOX && !starts_over)
        return HvStatus::InsufficientBuffers;
    ++m_counters.messages_in;
    if (m.size() < HEADER_SIZE) {
        refuse();
        return HvStatus::Success;
    }
    const u32 type = load_le32(m, 0);
    const unsigned minimum = minimum_size(type);
    if (minimum == 0 || m.size() < minimum) {
        refuse();
        return HvStatus::Success;
    }
    // Before contact only INITIATE_CONTACT means anything (and UNLOAD, which
    // a guest may send while it is unsure).
    if (m_version == 0 && type != INITIATE_CONTACT && type != UNLOAD) {
        refuse();
        return HvStatus::Success;
    }
    switch (type) {
    case INITIATE_CONTACT: initiate_contact(connection_id, m); break;
    case REQUEST_OFFERS: request_offers(); break;
    case GPADL_HEADER: gpadl_header(m); break;
    case GPADL_BODY: gpadl_body(m); break;
    case GPADL_TEARDOWN: gpadl_teardown(m); break;
    case OPEN_CHANNEL: open_channel(m); break;
    case CLOSE_CHANNEL: close_channel(m); break;
    case MODIFY_CHANNEL: modify_channel(m); break;
    case RELID_RELEASED: relid_released(m); break;
    case UNLOAD: unload(); break;
    }
    return HvStatus::Success;
}

void VmbusServer::initiate_contact(u32 connection_id, std::span<const u8> m)
{
    const u32 requested = load_le32(m, initiate_contact::VERSION);
    const u32 target = load_le32(m, initiate_contact::TARGET_VCPU);
    // From 5.0 the guest names its SINT and posts to connection 4; before,
    // messages come on SINT 2 and contact on connection 1.
    const bool modern = requested >= VERSION_WIN10_V5;
    const u32 sint = modern ? m[initiate_contact::MSG_SINT] : MESSAGE_SINT;
    const bool known = std::find(SUPPORTED_VERSIONS.begin(), SUPPORTED_VERSIONS.end(), requested) !=
                       SUPPORTED_VERSIONS.end();
    const bool right_connection =
        connection_id == (modern ? MESSAGE_CONNECTION_ID_WIN10_V5 : MESSAGE_CONNECTION_ID);
    const bool valid = target < m_hv.config().vp_count && sint < HV_SINT_COUNT && right_connection;
    if (!valid)
        refuse();
    // A new contact (after kexec, or another version tried) starts over.
    close_all();
    m_gpadls.clear();
    m_outbox.clear();
    m_offers_requested = false;
    m_version = 0;
    m_target_vp = valid ? target : 0;
    m_sint = valid ? sint : MESSAGE_SINT;
    std::vector<u8> reply = message(VERSION_RESPONSE, version_response::SIZE);
    if (known && valid) {
        m_version = requested;
        reply[version_response::SUPPORTED] = 1;
        store_le32(reply, version_response::MSG_CONN_ID, MESSAGE_CONNECTION_ID);
    }
    send(reply);
}

void VmbusServer::request_offers()
{
    m_offers_requested = true;
    for (u32 relid = 1; relid <= m_channels.size(); ++relid)
        if (m_channels[relid - 1].state == ChannelState::Offered)
            send_offer(relid);
    send(message(ALL_OFFERS_DELIVERED, HEADER_SIZE));
}

void VmbusServer::send_offer(u32 relid)
{
    const Channel& ch = m_channels[relid - 1];
    std::vector<u8> m = message(OFFER_CHANNEL, offer::SIZE);
    std::copy(ch.offer.type.begin(), ch.offer.type.end(), m.begin() + offer::IF_TYPE);
    std::copy(ch.offer.instance.begin(), ch.offer.instance.end(), m.begin() + offer::IF_INSTANCE);
    store_le16(m, offer::MMIO_MEGABYTES, ch.offer.mmio_megabytes);
    std::copy(ch.offer.user_defined.begin(), ch.offer.user_defined.end(),
              m.begin() + offer::USER_DEFINED);
    store_le16(m, offer::SUB_CHANNEL_INDEX, ch.offer.sub_channel_index);
    store_le32(m, offer::CHILD_RELID, relid);
    m[offer::MONITOR_ID] = 0xFF;            // no monitor page
    m[offer::MONITOR_ALLOCATED] = 0;
    store_le16(m, offer::DEDICATED_INTERRUPT, 1);
    store_le32(m, offer::CONNECTION_ID, CHANNEL_CONNECTION_ID_BASE + relid);
    send(m);
}

void VmbusServer::gpadl_header(std::span<const u8> m)
{
    const u32 relid = load_le32(m, gpadl_header::CHILD_RELID);
    const u32 handle = load_le32(m, gpadl_header::GPADL);
    Gpadl g;
    g.relid = relid;
    g.range_buflen = load_le16(m, gpadl_header::RANGE_BUFLEN);
    g.range_count = load_le16(m, gpadl_header::RANGE_COUNT);
    const Channel* ch = channel(relid);
    if (!ch || ch->state == ChannelState::Rescinded || m_gpadls.count(handle) || g.range_count == 0 || g.range_buflen < 8 ||
        m_gpadls.size() >= MAX_GPADLS) {
        refuse();
        // A handle in use stays as it is; any other refusal answers now.
        if (!m_gpadls.count(handle))
            gpadl_created(relid, handle, false);
        return;
    }
    g.ranges.assign(m.begin() + gpadl_header::RANGES, m.end());
    Gpadl& stored = m_gpadls[handle] = std::move(g);
    if (stored.ranges.size() >= stored.range_buflen)
        gpadl_created(relid, handle, finish_gpadl(stored));
}

void VmbusServer::gpadl_body(std::span<const u8> m)
{
    const u32 handle = load_le32(m, gpadl_body::GPADL);
    auto it = m_gpadls.find(handle);
    if (it == m_gpadls.end() || it->second.complete) {
        refuse();
        return;
    }
    Gpadl& g = it->second;
    g.ranges.insert(g.ranges.end(), m.begin() + gpadl_body::PFNS, m.end());
    if (g.ranges.size() >= g.range_buflen)
        gpadl_created(g.relid, handle, finish_gpadl(g));
}

bool VmbusServer::finish_gpadl(Gpadl& g) const
{
    // The range buffer: range_count × {byte_count, byte_offset, one PFN for
    // each page the range touches}, exactly range_buflen bytes in all.
    g.ranges.resize(g.range_buflen);
    const std::span<const u8> r = g.ranges;
    size_t at = 0;
    std::vector<u64> pfns;
    for (unsigned i = 0; i < g.range_count; ++i) {
        if (at + 8 > r.size())
            return false;
        const u32 byte_count = load_le32(r, at);
        const u32 byte_offset = load_le32(r, at + 4);
        at += 8;
        if (byte_count == 0 || byte_offset >= PAGE_SIZE)
            return false;
        const u64 pages = (u64{byte_offset} + byte_count + PAGE_SIZE - 1) / PAGE_SIZE;
        if (at + pages * 8 > r.size())
            return false;
        for (u64 p = 0; p < pages; ++p, at += 8)
            pfns.push_back(load_le64(r, at));
    }
    if (at != r.size())
        return false;
    g.pfns = std::move(pfns);
    g.complete = true;
    g.ranges.clear();
    g.ranges.shrink_to_fit();
    return true;
}

const std::vector<u64>* VmbusServer::gpadl_pages(u32 relid, u32 handle) const
{
    auto it = m_gpadls.find(handle);
    if (it == m_gpadls.end() || !it->second.complete || it->second.relid != relid)
        return nullptr;
    return &it->second.pfns;
}

void VmbusServer::gpadl_created(u32 relid, u32 handle, bool ok)
{
    if (!ok) {
        refuse();
        m_gpadls.erase(handle);
    }
    std::vector<u8> reply = message(GPADL_CREATED, gpadl_created::SIZE);
    store_le32(reply, gpadl_created::CHILD_RELID, relid);
    store_le32(reply, gpadl_created::GPADL, handle);
    store_le32(reply, gpadl_created::STATUS, ok ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL);
    send(reply);
}

void VmbusServer::gpadl_teardown(std::span<const u8> m)
{
    const u32 handle = load_le32(m, gpadl_teardown::GPADL);
    auto it = m_gpadls.find(handle);
    // The ring of an open channel stays until the channel closes.
    for (const Channel& ch : m_channels)
        if (it != m_gpadls.end() && ch.state == ChannelState::Open && ch.ring_gpadl == handle) {
            refuse();
            return;
        }
    if (it == m_gpadls.end())
        refuse();
    else
        m_gpadls.erase(it);
    // The guest waits for the answer either way.
    std::vector<u8> reply = message(GPADL_TORNDOWN, gpadl_torndown::SIZE);
    store_le32(reply, gpadl_torndown::GPADL, handle);
    send(reply);
}

void VmbusServer::open_channel(std::span<const u8> m)
{
    OpenRequest request;
    request.relid = load_le32(m, open_channel::CHILD_RELID);
    const u32 open_id = load_le32(m, open_channel::OPEN_ID);
    const u32 ring = load_le32(m, open_channel::RING_GPADL);
    request.target_vp = load_le32(m, open_channel::TARGET_VP);
    request.downstream_offset = load_le32(m, open_channel::DOWNSTREAM_OFFSET);
    std::copy_n(m.begin() + open_channel::USER_DATA, request.user_data.size(),
                request.user_data.begin());
    Channel* ch = channel(request.relid);
    auto g = m_gpadls.find(ring);
    bool ok = ch && ch->state == ChannelState::Offered && g != m_gpadls.end() &&
              g->second.complete && g->second.relid == request.relid &&
              request.target_vp < m_hv.config().vp_count && request.downstream_offset > 0 &&
              request.downstream_offset < g->second.pfns.size();
    if (ok) {
        request.ring_pfns = g->second.pfns;
        ok = ch->device->open(request);
    }
    if (ok) {
        ch->state = ChannelState::Open;
        ch->target_vp = request.target_vp;
        ch->ring_gpadl = ring;
    } else {
        refuse();
    }
    // A relid that names no channel still gets its answer: the guest waits.
    std::vector<u8> reply = message(OPEN_CHANNEL_RESULT, open_result::SIZE);
    store_le32(reply, open_result::CHILD_RELID, request.relid);
    store_le32(reply, open_result::OPEN_ID, open_id);
    store_le32(reply, open_result::STATUS, ok ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL);
    send(reply);
    if (ok)
        ch->device->opened();
}

void VmbusServer::close_channel(std::span<const u8> m)
{
    const u32 relid = load_le32(m, relid_message::CHILD_RELID);
    Channel* ch = channel(relid);
    if (ch && ch->state == ChannelState::Rescinded)
        return; // Linux closes what was rescinded under it; nothing is left to do
    if (!ch || ch->state != ChannelState::Open) {
        refuse();
        return;
    }
    // A primary's sub-channels go with it (the guest closed them first).
    if (ch->primary == 0)
        end_sub_channels(relid, true);
    close_open_channel(m_channels[relid - 1]);
}

void VmbusServer::close_open_channel(Channel& ch)
{
    ch.device->close();
    ch.state = ChannelState::Offered;
    ch.ring_gpadl = 0;
}

void VmbusServer::end_sub_channels(u32 primary, bool tell_guest)
{
    for (u32 relid = 1; relid <= m_channels.size(); ++relid) {
        Channel& ch = m_channels[relid - 1];
        if (ch.state == ChannelState::Free || ch.primary != primary)
            continue;
        if (ch.state == ChannelState::Open)
            close_open_channel(ch);
        if (!tell_guest)
            free_channel(relid);
        else if (ch.state != ChannelState::Rescinded)
            rescind(relid);
    }
}

void VmbusServer::rescind(u32 relid)
{
    // The guest answers with RELID_RELEASED; until then the relid stays taken.
    Channel& ch = m_channels[relid - 1];
    ch.state = ChannelState::Rescinded;
    ch.device = nullptr;
    std::vector<u8> message_out = message(RESCIND_CHANNEL_OFFER, relid_message::SIZE);
    store_le32(message_out, relid_message::CHILD_RELID, relid);
    send(message_out);
}

bool VmbusServer::remove_channel(u32 relid)
{
    Channel* ch = channel(relid);
    if (!ch || ch->primary != 0 || ch->state == ChannelState::Rescinded)
        return false;
    // Sub-channels first: Linux's close of the primary waits for each
    // rescinded sub-channel's own rescind (vmbus_disconnect_ring).
    end_sub_channels(relid, m_offers_requested);
    if (ch->state == ChannelState::Open)
        close_open_channel(*ch);
    if (m_offers_requested)
        rescind(relid);
    else
        free_channel(relid);
    return true;
}

void VmbusServer::relid_released(std::span<const u8> m)
{
    const u32 relid = load_le32(m, relid_message::CHILD_RELID);
    const Channel* ch = channel(relid);
    if (!ch || ch->state != ChannelState::Rescinded) {
        refuse();
        return;
    }
    free_channel(relid);
}

void VmbusServer::modify_channel(std::span<const u8> m)
{
    const u32 relid = load_le32(m, modify_channel::CHILD_RELID);
    const u32 target = load_le32(m, modify_channel::TARGET_VP);
    Channel* ch = channel(relid);
    const bool ok = ch && ch->state == ChannelState::Open && target < m_hv.config().vp_count;
    if (ok)
        ch->target_vp = target;
    else
        refuse();
    // Only 5.3 guests wait for (and understand) the response.
    if (m_version < vmbus::version(5, 3))
        return;
    std::vector<u8> reply = message(MODIFY_CHANNEL_RESPONSE, modify_channel::SIZE);
    store_le32(reply, modify_channel::CHILD_RELID, relid);
    store_le32(reply, modify_channel::STATUS, ok ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL);
    send(reply);
}

void VmbusServer::unload()
{
    close_all();
    m_gpadls.clear();
    m_offers_requested = false;
    m_version = 0;
    // Queued messages are for the connection that ends here; the response
    // must still reach the guest, which polls for it.
    m_outbox.clear();
    send(message(UNLOAD_RESPONSE, HEADER_SIZE));
}

void VmbusServer::close_all()
{
    // The guest's connection ends: every channel closes, and sub-channels
    // (and relids the guest never released) are forgotten without a word.
    for (u32 relid = 1; relid <= m_channels.size(); ++relid) {
        Channel& ch = m_channels[relid - 1];
        if (ch.state == ChannelState::Open)
            close_open_channel(ch);
        if (ch.primary != 0 || ch.state == ChannelState::Rescinded)
            free_channel(relid);
    }
}

void VmbusServer::send(std::span<const u8> bytes)
{
    m_outbox.emplace_back(bytes.begin(), bytes.end());
    flush_outbox();
}

void VmbusServer::flush_outbox()
{
    while (!m_outbox.empty()) {
        const std::vector<u8>& bytes = m_outbox.front();
        HvMessage msg;
        msg.type = SYNIC_MESSAGE_TYPE;
        msg.payload_size = static_cast<u8>(bytes.size());
        std::copy(bytes.begin(), bytes.end(), msg.payload.begin());
        const HvStatus status = m_hv.synic(m_target_vp).post_message(m_sint, msg);
        if (status == HvStatus::InsufficientBuffers)
            return; // slot_freed tries again
        if (status == HvStatus::Success)
            ++m_counters.messages_out;
        else
            refuse(); // the guest turned its SynIC off: nobody to tell
        m_outbox.pop_front();
    }
}

void VmbusServer::slot_freed(unsigned vp, unsigned sint)
{
    if (vp == m_target_vp && sint == m_sint)
        flush_outbox();
}

void VmbusServer::reset()
{
    close_all();
    m_gpadls.clear();
    m_outbox.clear();
    m_offers_requested = false;
    m_version = 0;
    m_target_vp = 0;
    m_sint = MESSAGE_SINT;
}

bool VmbusServer::load_channels(StateVisitor& v, std::vector<Channel> saved)
{
    // `saved` holds the snapshot's slots (state, primary, sub-channel
    // index, target VP, ring); m_channels this machine's channels.
    auto fail = [&v](const char* why) {
        v.fail(std::string("vmbus: ") + why);
        return false;
    };
    const std::vector<Channel>& own = m_channels;
    for (u32 relid = 1; relid <= std::max(saved.size(), own.size()); ++relid) {
        const bool ours = relid <= own.size() && own[relid - 1].state != ChannelState::Free &&
                          own[relid - 1].primary == 0 && own[relid - 1].device;
        // A rescinded primary (a device removed at run time) only waits for
        // its release: the machine loading it has no device there.
        const bool theirs = relid <= saved.size() && saved[relid - 1].state != ChannelState::Free &&
                            saved[relid - 1].state != ChannelState::Rescinded && saved[relid - 1].primary == 0;
        if (ours != theirs)
            return fail("the snapshot's machine has other channels");
    }
    for (u32 relid = 1; relid <= saved.size(); ++relid) {
        Channel& ch = saved[relid - 1];
        if (ch.state != ChannelState::Offered && ch.state != ChannelState::Open &&
            ch.state != ChannelState::Free && ch.state != ChannelState::Rescinded)
            return fail("bad channel state");
        if (ch.target_vp >= m_hv.config().vp_count)
            return fail("target VP out of range");
        if (ch.state == ChannelState::Free) {
            ch = Channel{};
            continue;
        }
        const u16 index = ch.offer.sub_channel_index;
        if (ch.primary == 0 && index != 0)
            return fail("a primary channel saved as a sub-channel");
        // A rescinded channel only waits for its release.
        if (ch.state == ChannelState::Rescinded) {
            ch.offer = Offer{};
            ch.offer.sub_channel_index = index;
            ch.device = nullptr;
            continue;
        }
        if (ch.primary == 0) {
            ch.offer = own[relid - 1].offer;
            ch.device = own[relid - 1].device;
            continue;
        }
        // A live sub-channel: its primary is open, its index served and unique.
        if (ch.primary > saved.size() || saved[ch.primary - 1].primary != 0 ||
            saved[ch.primary - 1].state != ChannelState::Open || index == 0)
            return fail("a sub-channel without its open primary");
        for (u32 other = 1; other < relid; ++other)
            if ((saved[other - 1].state == ChannelState::Offered ||
                 saved[other - 1].state == ChannelState::Open) &&
                saved[other - 1].primary == ch.primary && saved[other - 1].offer.sub_channel_index == index)
                return fail("two sub-channels with one index");
        ch.offer = own[ch.primary - 1].offer;
        ch.offer.sub_channel_index = index;
        ch.device = own[ch.primary - 1].device->sub_channel(index);
        if (!ch.device)
            return fail("a sub-channel its device cannot serve");
    }
    m_channels = std::move(saved);
    return true;
}

void VmbusServer::visit_state(StateVisitor& v)
{
    v.section("vmbus", 2);
    v.field("version", m_version);
    v.field("target_vp", m_target_vp);
    v.field("sint", m_sint);
    v.field("offers_requested", m_offers_requested);
    // Every relid's slot: the machine's own channels keep theirs; the
    // sub-channels the guest asked for are offered again from the saved
    // table (their devices come from the primary's device).
    std::vector<Channel> loaded = v.saving() ? std::vector<Channel>{} : m_channels;
    std::vector<Channel>& table = v.saving() ? m_channels : loaded;
    u32 slots = static_cast<u32>(table.size());
    v.field("channels", slots);
    if (v.loading()) {
        if (slots >= MAX_CHANNEL_RELIDS)
            return v.fail("vmbus: too many channels");
        table.resize(slots);
    }
    for (Channel& ch : table) {
        v.field("state", ch.state);
        v.field("primary", ch.primary);
        v.field("sub_channel_index", ch.offer.sub_channel_index);
        v.field("target_vp", ch.target_vp);
        v.field("ring_gpadl", ch.ring_gpadl);
    }
    if (v.loading() && (!v.ok() || !load_channels(v, std::move(loaded))))
        return;
    u32 gpadls = static_cast<u32>(m_gpadls.size());
    v.field("gpadls", gpadls);
    auto visit_gpadl = [&v](u32& handle, Gpadl& g) {
        v.field("handle", handle);
        v.field("relid", g.relid);
        v.field("range_buflen", g.range_buflen);
        v.field("range_count", g.range_count);
        v.field("complete", g.complete);
        v.field("ranges", g.ranges);
        v.field("pfns", g.pfns);
    };
    if (v.saving()) {
        for (auto& [handle, g] : m_gpadls) {
            u32 h = handle;
            visit_gpadl(h, g);
        }
    } else {
        m_gpadls.clear();
        for (u32 i = 0; i < gpadls && v.ok(); ++i) {
            u32 h = 0;
            Gpadl g;
            visit_gpadl(h, g);
            m_gpadls[h] = std::move(g);
        }
    }
    if (v.loading() && m_gpadls.size() > MAX_GPADLS)
        return v.fail("vmbus: too many GPADLs");
    // An open channel's ring must be there, complete and its own.
    for (u32 relid = 1; v.loading() && relid <= m_channels.size(); ++relid) {
        const Channel& ch = m_channels[relid - 1];
        if (ch.state != ChannelState::Open)
            continue;
        auto g = m_gpadls.find(ch.ring_gpadl);
        if (g == m_gpadls.end() || !g->second.complete || g->second.relid != relid)
            return v.fail("vmbus: an open channel without its ring");
    }
    u32 queued = static_cast<u32>(m_outbox.size());
    v.field("outbox", queued);
    if (v.loading()) {
        if (queued > MAX_CHANNEL_RELIDS * 4)
            return v.fail("vmbus: too many queued messages");
        m_outbox.resize(queued);
    }
    for (std::vector<u8>& m : m_outbox) {
        v.field("message", m);
        if (v.loading() && (m.size() < HEADER_SIZE || m.size() > HV_MESSAGE_MAX_PAYLOAD))
            return v.fail("vmbus: a queued message of a bad size");
    }
    // The guest's signals reach exactly the relids in use.
    for (u32 relid = 1; v.loading() && relid < MAX_CHANNEL_RELIDS; ++relid) {
        m_hv.connections().remove(CHANNEL_CONNECTION_ID_BASE + relid);
        if (channel(relid))
            add_event_port(relid);
    }
    if (v.loading() && v.ok() &&
        (m_target_vp >= m_hv.config().vp_count || m_sint >= HV_SINT_COUNT))
        v.fail("vmbus: target VP or SINT out of range");
}
