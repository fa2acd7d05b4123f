#include "paravirt/vmbus/storvsp.h"

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

struct Storvsp::Pending {
    u64 generation = 0;
    u64 transaction_id = 0;
    std::vector<u8> reply; // the request's vstor packet, answered in place
    std::vector<u8> cdb;
    std::vector<u8> buffer;
    std::vector<GpaRange> ranges;
    bool to_guest = false;
};

Storvsp::Storvsp(GuestMemory memory, ScsiTarget& target, std::function<void()> signal_guest)
    : m_memory(memory), m_target(target), m_signal_guest(std::move(signal_guest))
{
}

Storvsp::~Storvsp() = default;

bool Storvsp::open(const VmbusServer::OpenRequest& request)
{
    m_rings = RingPair::create(m_memory, request.ring_pfns, request.downstream_offset);
    m_version = 0;
    m_backlog.clear();
    return m_rings.has_value();
}

void Storvsp::close()
{
    m_rings.reset();
    m_backlog.clear();
    ++m_generation;
}

void Storvsp::signaled()
{
    if (!m_rings)
        return;
    flush_backlog(); // the guest may have made room for refused completions
    m_rings->drain([this](const Packet& packet) { handle(packet); }, m_signal_guest);
}

void Storvsp::handle(const Packet& packet)
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
    case vstor::BEGIN_INITIALIZATION:
    case vstor::END_INITIALIZATION:
    case vstor::RESET_LUN:
    case vstor::RESET_ADAPTER:
    case vstor::RESET_BUS:
        return complete(packet.transaction_id, std::move(reply), vstor::STATUS_SUCCESS);
    case vstor::QUERY_PROTOCOL_VERSION: {
        const u16 v = load_le16(reply, vstor::VERSION);
        const bool ok = supported_version(v);
        if (ok)
            m_version = v;
        return complete(packet.transaction_id, std::move(reply),
                        ok ? vstor::STATUS_SUCCESS : vstor::STATUS_REVISION_MISMATCH);
    }
    case vstor::QUERY_PROPERTIES:
        std::fill(reply.begin() + vstor::VERSION, reply.end(), 0);
        // One channel (no sub-channels offered), no flags.
        store_le32(reply, vstor::PROPERTIES_MAX_TRANSFER, MAX_TRANSFER);
        return complete(packet.transaction_id, std::move(reply), vstor::STATUS_SUCCESS);
    case vstor::EXECUTE_SRB:
        return execute_srb(packet, std::move(reply));
    default: // CREATE_SUB_CHANNELS (not offered), FCHBA_DATA (not Fibre Channel), unknown
        return complete(packet.transaction_id, std::move(reply), vstor::STATUS_UNSUCCESSFUL);
    }
}

void Storvsp::execute_srb(const Packet& packet, std::vector<u8> reply)
{
    auto refuse = [&](u8 srb_status) {
        reply[vstor::SRB_STATUS] = srb_status;
        reply[vstor::SRB_SCSI_STATUS] = 0;
        store_le32(reply, vstor::SRB_TRANSFER_LENGTH, 0);
        complete(packet.transaction_id, std::move(reply), vstor::STATUS_SUCCESS);
    };
    const u8 cdb_length = reply[vstor::SRB_CDB_LENGTH];
    const u8 data_in = reply[vstor::SRB_DATA_IN];
    const u32 length = load_le32(reply, vstor::SRB_TRANSFER_LENGTH);
    if (cdb_length == 0 || cdb_length > vstor::SRB_CDB_MAX || data_in > vstor::DATA_NONE)
        return refuse(vstor::SRB_INVALID_REQUEST);

    auto pending = std::make_shared<Pending>();
    pending->generation = m_generation;
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
    if (pending->generation != m_generation || !m_rings)
        return; // the channel closed meanwhile
    std::vector<u8>& reply = pending->reply;
    const u32 moved = std::min<u32>(result.transferred, static_cast<u32>(pending->buffer.size()));
    u8 srb_status = result.status == 0 ? vstor::SRB_SUCCESS : vstor::SRB_ERROR;
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
    complete(pending->transaction_id, std::move(reply), vstor::STATUS_SUCCESS);
}

void Storvsp::complete(u64 transaction_id, std::vector<u8> reply, u32 status)
{
    store_le32(reply, vstor::OPERATION, vstor::COMPLETE_IO);
    store_le32(reply, vstor::FLAGS, 0);
    store_le32(reply, vstor::STATUS, status);
    send(transaction_id, std::move(reply));
}

void Storvsp::send(u64 transaction_id, std::vector<u8> body)
{
    m_backlog.emplace_back(transaction_id, std::move(body));
    flush_backlog();
}

void Storvsp::flush_backlog()
{
    write_completions(m_rings, m_backlog, m_signal_guest);
}

void Storvsp::visit_state(StateVisitor& v)
{
    v.section("storvsp", 1);
    v.field("version", m_version);
    RingPair::visit_state(v, m_memory, m_rings);
    visit_completions(v, m_backlog, 4096, vstor::PACKET_SIZE, "storvsp");
    if (v.loading() && v.ok())
        ++m_generation; // nothing in flight belongs to the loaded channel
}
