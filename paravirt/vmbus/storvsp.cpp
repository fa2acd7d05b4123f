#include "paravirt/vmbus/storvsp.h"

#include "paravirt/vmbus/device_channel.h"

#include <algorithm>

using namespace vmbus;

namespace {

bool supported_version(u16 v)
{
    return v == vstor::VERSION_WIN10 || v == vstor::VERSION_WIN8_1 || v == vstor::VERSION_WIN8;
}

// A LUN no target has, for SRBs addressed to any path or target but 0/0
// (the scan of every bus and target): INQUIRY then reports "no device".
constexpr u8 ABSENT_LUN = 0xFF;

} // namespace

// One channel of the controller, the primary or a sub-channel
// (device_channel.h), with a packet of the host's own that waits for room,
// and a generation that ends the completions of an earlier open.
class Storvsp::Queue final : public DeviceChannel {
public:
    // The completions a channel may owe: more than the guest's ring holds requests.
    static constexpr size_t MAX_BACKLOG = 4096;

    Queue(Storvsp& controller, u16 index)
        : DeviceChannel(controller.m_memory, controller.m_links.signal_guest, MAX_BACKLOG, vstor::PACKET_SIZE),
          m_controller(controller), m_index(index)
    {
    }

    bool open(const VmbusServer::OpenRequest& request) override
    {
        m_unsolicited.clear();
        return DeviceChannel::open(request);
    }
    void close() override
    {
        DeviceChannel::close();
        m_unsolicited.clear();
        ++m_generation;
    }
    void signaled() override
    {
        if (!rings())
            return;
        flush(); // the guest may have made room for refused completions
        rings()->drain([this](const Packet& packet) { m_controller.handle(*this, packet); }, [this] { signal(); });
    }

    // A packet of the host's own (no request answered: transaction 0, no
    // completion asked); one of each kind waits while the ring is full.
    void send_unsolicited(std::vector<u8> body)
    {
        m_unsolicited = std::move(body);
        flush();
    }
    void flush()
    {
        flush_completions();
        bool wake = false;
        if (rings() && !m_unsolicited.empty() && rings()->write(PACKET_DATA_INBAND, 0, 0, {}, m_unsolicited, wake)) {
            m_unsolicited.clear();
            if (wake)
                signal();
        }
    }

    void visit_state(StateVisitor& v)
    {
        visit_channel_state(v, "storvsp");
        v.field("unsolicited", m_unsolicited);
        if (v.loading() && m_unsolicited.size() > vstor::PACKET_SIZE)
            return v.fail("storvsp: a waiting packet is too long");
        if (v.loading() && v.ok())
            ++m_generation; // nothing in flight belongs to the loaded channel
    }

    u16 index() const { return m_index; }
    u64 generation() const { return m_generation; }
    u64 requests = 0;

private:
    Storvsp& m_controller;
    u16 m_index;
    std::vector<u8> m_unsolicited;
    u64 m_generation = 0;
};

struct Storvsp::Pending {
    Queue* queue = nullptr;
    u64 generation = 0;
    u64 transaction_id = 0;
    std::vector<u8> reply; // the request's vstor packet, answered in place
    std::vector<u8> cdb;
    std::vector<u8> buffer;
    std::vector<GpaRange> ranges;
    bool to_guest = false;
};

Storvsp::Storvsp(GuestMemory memory, ScsiTarget& target, Links links, u16 max_sub_channels)
    : m_memory(memory), m_target(target), m_links(std::move(links)),
      m_max_sub_channels(std::min(max_sub_channels, MAX_SUB_CHANNELS))
{
    m_queues.push_back(std::make_unique<Queue>(*this, 0));
}

Storvsp::~Storvsp() = default;

Storvsp::Queue& Storvsp::queue(u16 index)
{
    while (m_queues.size() <= index)
        m_queues.push_back(std::make_unique<Queue>(*this, static_cast<u16>(m_queues.size())));
    return *m_queues[index];
}

bool Storvsp::open(const VmbusServer::OpenRequest& request)
{
    m_version = 0; // the guest negotiates again on every open
    m_initialized = false;
    return queue(0).open(request);
}

void Storvsp::close()
{
    m_initialized = false;
    queue(0).close();
}

void Storvsp::bus_changed()
{
    Queue& primary = queue(0);
    if (!primary.is_open() || !m_initialized)
        return;
    std::vector<u8> packet(vstor::PACKET_SIZE, 0);
    store_le32(packet, vstor::OPERATION, vstor::ENUMERATE_BUS);
    primary.send_unsolicited(std::move(packet));
}

void Storvsp::signaled() { queue(0).signaled(); }

VmbusServer::Device* Storvsp::sub_channel(u16 index)
{
    if (index == 0 || index > m_max_sub_channels)
        return nullptr;
    return &queue(index);
}

u64 Storvsp::requests_on(u16 index) const
{
    return index < m_queues.size() ? m_queues[index]->requests : 0;
}

void Storvsp::handle(Queue& queue, const Packet& packet)
{
    // The guest completes nothing of ours (every host packet here is a
    // completion); anything but inband and GPA-direct requests is ignored.
    if (packet.type != PACKET_DATA_INBAND && packet.type != PACKET_DATA_USING_GPA_DIRECT)
        return;
    if (packet.body.size() < vstor::PACKET_SIZE_PRE_WIN8)
        return;
    // Answered in the request's own size (48 or 64 bytes): Linux checks the
    // completion is as long as what it sent.
    std::vector<u8> reply(packet.body.begin(),
                          packet.body.begin() + std::min<size_t>(packet.body.size(), vstor::PACKET_SIZE));
    switch (load_le32(reply, vstor::OPERATION)) {
    case vstor::EXECUTE_SRB:
        ++queue.requests;
        return execute_srb(queue, packet, std::move(reply));
    case vstor::RESET_LUN:
    case vstor::RESET_ADAPTER:
    case vstor::RESET_BUS:
        return complete(queue, packet.transaction_id, std::move(reply), vstor::STATUS_SUCCESS);
    default:
        // The handshake belongs to the primary channel.
        if (queue.index() != 0)
            return complete(queue, packet.transaction_id, std::move(reply), vstor::STATUS_UNSUCCESSFUL);
        return handle_setup(queue, packet.transaction_id, std::move(reply));
    }
}

void Storvsp::handle_setup(Queue& queue, u64 transaction_id, std::vector<u8> reply)
{
    switch (load_le32(reply, vstor::OPERATION)) {
    case vstor::BEGIN_INITIALIZATION:
    case vstor::END_INITIALIZATION:
        m_initialized = load_le32(reply, vstor::OPERATION) == vstor::END_INITIALIZATION;
        return complete(queue, transaction_id, std::move(reply), vstor::STATUS_SUCCESS);
    case vstor::QUERY_PROTOCOL_VERSION: {
        const u16 v = load_le16(reply, vstor::VERSION);
        const bool ok = supported_version(v);
        if (ok)
            m_version = v;
        return complete(queue, transaction_id, std::move(reply),
                        ok ? vstor::STATUS_SUCCESS : vstor::STATUS_REVISION_MISMATCH);
    }
    case vstor::QUERY_PROPERTIES:
        std::fill(reply.begin() + vstor::VERSION, reply.end(), 0);
        store_le16(reply, vstor::PROPERTIES_MAX_CHANNELS, m_max_sub_channels);
        store_le32(reply, vstor::PROPERTIES_FLAGS, m_max_sub_channels ? vstor::PROPERTIES_MULTI_CHANNEL : 0);
        store_le32(reply, vstor::PROPERTIES_MAX_TRANSFER, MAX_TRANSFER);
        return complete(queue, transaction_id, std::move(reply), vstor::STATUS_SUCCESS);
    case vstor::CREATE_SUB_CHANNELS: {
        // Before 5.1 (Windows 8) the packet has no room for the count.
        const u16 count = reply.size() >= vstor::SUB_CHANNEL_COUNT + 2
                              ? load_le16(reply, vstor::SUB_CHANNEL_COUNT) : 0;
        const bool ok = count >= 1 && count <= m_max_sub_channels && m_links.offer_sub_channels &&
                        m_links.offer_sub_channels(queue.relid(), count);
        return complete(queue, transaction_id, std::move(reply),
                        ok ? vstor::STATUS_SUCCESS : vstor::STATUS_UNSUCCESSFUL);
    }
    default: // FCHBA_DATA (not Fibre Channel), anything unknown
        return complete(queue, transaction_id, std::move(reply), vstor::STATUS_UNSUCCESSFUL);
    }
}

void Storvsp::execute_srb(Queue& queue, const Packet& packet, std::vector<u8> reply)
{
    auto refuse = [&](u8 srb_status) {
        reply[vstor::SRB_STATUS] = srb_status;
        reply[vstor::SRB_SCSI_STATUS] = 0;
        store_le32(reply, vstor::SRB_TRANSFER_LENGTH, 0);
        complete(queue, packet.transaction_id, std::move(reply), vstor::STATUS_SUCCESS);
    };
    const u8 cdb_length = reply[vstor::SRB_CDB_LENGTH];
    const u8 data_in = reply[vstor::SRB_DATA_IN];
    const u32 length = load_le32(reply, vstor::SRB_TRANSFER_LENGTH);
    if (cdb_length == 0 || cdb_length > vstor::SRB_CDB_MAX || data_in > vstor::DATA_NONE)
        return refuse(vstor::SRB_INVALID_REQUEST);

    auto pending = std::make_shared<Pending>();
    pending->queue = &queue;
    pending->generation = queue.generation();
    pending->transaction_id = packet.transaction_id;
    pending->cdb.assign(reply.begin() + vstor::SRB_CDB, reply.begin() + vstor::SRB_CDB + cdb_length);
    ScsiTarget::Direction direction = ScsiTarget::Direction::None;
    if (data_in != vstor::DATA_NONE && length > 0) {
        // The data pages: one GPA-direct range as Linux sends them (several
        // are taken in order), covering at least the transfer length.
        std::optional<std::vector<GpaRange>> ranges;
        if (packet.type == PACKET_DATA_USING_GPA_DIRECT)
            ranges = parse_gpa_ranges(packet.extra);
        u64 range_bytes = 0;
        if (ranges)
            for (const GpaRange& r : *ranges)
                range_bytes += r.byte_count;
        if (!ranges || length > range_bytes || length > MAX_TRANSFER)
            return refuse(vstor::SRB_INVALID_REQUEST);
        pending->ranges = std::move(*ranges);
        pending->buffer.resize(length);
        pending->to_guest = data_in == vstor::DATA_READ;
        direction = pending->to_guest ? ScsiTarget::Direction::FromDevice : ScsiTarget::Direction::ToDevice;
        if (!pending->to_guest && !copy_ranges(m_memory, pending->ranges, pending->buffer, false))
            return refuse(vstor::SRB_ERROR);
    }
    const bool addressed = reply[vstor::SRB_PATH] == 0 && reply[vstor::SRB_TARGET] == 0;
    pending->reply = std::move(reply);
    ScsiTarget::Command command;
    command.lun = addressed ? pending->reply[vstor::SRB_LUN] : ABSENT_LUN;
    command.cdb = pending->cdb;
    command.direction = direction;
    command.data = pending->buffer;
    ++m_in_flight;
    m_target.execute(command, [this, pending](const ScsiTarget::Result& result) { srb_done(pending, result); });
}

void Storvsp::srb_done(const std::shared_ptr<Pending>& pending, const ScsiTarget::Result& result)
{
    --m_in_flight;
    Queue& queue = *pending->queue;
    if (pending->generation != queue.generation() || !queue.is_open())
        return; // the channel closed meanwhile
    std::vector<u8>& reply = pending->reply;
    const u32 moved = std::min<u32>(result.transferred, static_cast<u32>(pending->buffer.size()));
    u8 srb_status = result.status == 0 ? vstor::SRB_SUCCESS : vstor::SRB_ERROR;
    if (result.no_such_lun) {
        // What Hyper-V answers for a LUN that is gone: Linux then removes
        // the device (storvsc_handle_error). No sense: the status says it.
        reply[vstor::SRB_STATUS] = vstor::SRB_INVALID_LUN;
        reply[vstor::SRB_SCSI_STATUS] = 0;
        store_le32(reply, vstor::SRB_TRANSFER_LENGTH, 0);
        return complete(queue, pending->transaction_id, std::move(reply), vstor::STATUS_SUCCESS);
    }
    if (pending->to_guest && moved > 0 &&
        !copy_ranges(m_memory, pending->ranges, std::span<u8>(pending->buffer).first(moved), true))
        srb_status = vstor::SRB_ERROR;
    reply[vstor::SRB_SCSI_STATUS] = result.status;
    store_le32(reply, vstor::SRB_TRANSFER_LENGTH, moved);
    // Sense data replaces the CDB in the SRB, at most what the guest has room for.
    const size_t sense = std::min<size_t>({result.sense.size(), vstor::SRB_SENSE_MAX,
                                           reply[vstor::SRB_SENSE_LENGTH]});
    if (result.status != 0 && sense > 0) {
        std::fill(reply.begin() + vstor::SRB_CDB, reply.begin() + vstor::SRB_CDB + vstor::SRB_SENSE_MAX, 0);
        std::copy_n(result.sense.begin(), sense, reply.begin() + vstor::SRB_CDB);
        reply[vstor::SRB_SENSE_LENGTH] = static_cast<u8>(sense);
        srb_status |= vstor::SRB_AUTOSENSE_VALID;
    }
    reply[vstor::SRB_STATUS] = srb_status;
    complete(queue, pending->transaction_id, std::move(reply), vstor::STATUS_SUCCESS);
}

void Storvsp::complete(Queue& queue, u64 transaction_id, std::vector<u8> reply, u32 status)
{
    store_le32(reply, vstor::OPERATION, vstor::COMPLETE_IO);
    store_le32(reply, vstor::FLAGS, 0);
    store_le32(reply, vstor::STATUS, status);
    (void)queue.complete(transaction_id, std::move(reply)); // dropped past MAX_BACKLOG: the guest never reads
}

void Storvsp::visit_state(StateVisitor& v)
{
    v.section("storvsp", 2);
    v.field("version", m_version);
    v.field("initialized", m_initialized);
    u32 queues = static_cast<u32>(m_queues.size());
    v.field("queues", queues);
    if (v.loading() && (queues == 0 || queues > 1u + m_max_sub_channels))
        return v.fail("storvsp: the snapshot's controller has more channels than this one");
    for (u32 i = 0; i < queues && v.ok(); ++i)
        queue(static_cast<u16>(i)).visit_state(v);
    // Channels this controller made that the snapshot's had not: closed.
    for (u32 i = queues; v.loading() && i < m_queues.size(); ++i)
        m_queues[i]->close();
}
