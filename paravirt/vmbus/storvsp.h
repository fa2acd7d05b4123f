// storvsp: the host end of Hyper-V's synthetic SCSI controller (docs/vmbus.md
// "Storage"), the VMBus device Linux's hv_storvsc drives. One channel (no
// sub-channels yet); the guest's vstor packets arrive on its ring: the
// initialization handshake (BEGIN, QUERY_PROTOCOL_VERSION 6.2/6.0/5.1,
// QUERY_PROPERTIES, END), then EXECUTE_SRB requests whose data pages come
// as a GPA-direct range. Each SRB goes to the SCSI target at its LUN, and
// its completion goes back with the SRB and SCSI status, sense data and
// the bytes moved.
//
// The SCSI command set itself is not here: ScsiTarget (platform/storage)
// is the seam to the disk model, so the same disks serve any transport.
#pragma once

#include "mmu/base/state_visitor.h"
#include "paravirt/vmbus/vmbus_ring.h"
#include "platform/storage/scsi_target.h"
#include "paravirt/vmbus/vmbus_server.h"

#include <deque>
#include <functional>
#include <memory>
#include <optional>

namespace vstor {
// Operations (vstor_packet.operation).
enum Operation : u32 {
    COMPLETE_IO = 1,
    REMOVE_DEVICE = 2,
    EXECUTE_SRB = 3,
    RESET_LUN = 4,
    RESET_ADAPTER = 5,
    RESET_BUS = 6,
    BEGIN_INITIALIZATION = 7,
    END_INITIALIZATION = 8,
    QUERY_PROTOCOL_VERSION = 9,
    QUERY_PROPERTIES = 10,
    ENUMERATE_BUS = 11,
    FCHBA_DATA = 12,
    CREATE_SUB_CHANNELS = 13,
};
// vstor_packet: operation @0, flags @4, status @8, then a 52-byte union:
// the SRB, the channel properties or the protocol version. Before version
// 5.1 (Windows 8) the SRB lacks its 16-byte extension and the packet is 48
// bytes.
constexpr unsigned PACKET_SIZE = 64, PACKET_SIZE_PRE_WIN8 = 48;
constexpr unsigned OPERATION = 0, FLAGS = 4, STATUS = 8;
constexpr unsigned VERSION = 12; // u16 major_minor, u16 revision
constexpr unsigned PROPERTIES_MAX_CHANNELS = 16, PROPERTIES_FLAGS = 20, PROPERTIES_MAX_TRANSFER = 24;
// The SRB (vmscsi_request) from @12.
constexpr unsigned SRB_LENGTH = 12, SRB_STATUS = 14, SRB_SCSI_STATUS = 15, SRB_PORT = 16,
                   SRB_PATH = 17, SRB_TARGET = 18, SRB_LUN = 19, SRB_CDB_LENGTH = 20,
                   SRB_SENSE_LENGTH = 21, SRB_DATA_IN = 22, SRB_TRANSFER_LENGTH = 24,
                   SRB_CDB = 28, SRB_CDB_MAX = 16, SRB_SENSE_MAX = 20;
constexpr u8 DATA_WRITE = 0, DATA_READ = 1, DATA_NONE = 2;
// SRB status values (Windows' SRB_STATUS_*).
constexpr u8 SRB_SUCCESS = 0x01, SRB_ERROR = 0x04, SRB_INVALID_REQUEST = 0x06, SRB_INVALID_LUN = 0x20,
             SRB_AUTOSENSE_VALID = 0x80;
// Protocol versions (major << 8 | minor).
constexpr u16 VERSION_WIN8 = 0x0501, VERSION_WIN8_1 = 0x0600, VERSION_WIN10 = 0x0602;
// NTSTATUS values in vstor_packet.status.
constexpr u32 STATUS_SUCCESS = 0, STATUS_UNSUCCESSFUL = 0xC0000001, STATUS_REVISION_MISMATCH = 0xC0000059;
// The controller's class GUID (Linux's HV_SCSI_GUID).
inline constexpr const char* SCSI_CLASS_GUID = "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f";
} // namespace vstor

class Storvsp final : public VmbusServer::Device {
public:
    // The largest transfer one SRB may move (QUERY_PROPERTIES tells Linux,
    // which sizes its requests by it).
    static constexpr u32 MAX_TRANSFER = 1024 * 1024;

    // `signal_guest` interrupts the guest for this channel (VmbusServer::signal_guest).
    Storvsp(GuestMemory memory, ScsiTarget& target, std::function<void()> signal_guest);
    ~Storvsp() override;

    bool open(const VmbusServer::OpenRequest& request) override;
    void close() override;
    void signaled() override;

    u16 protocol_version() const { return m_version; }
    // The channel's state (its rings, version, completions not yet sent).
    // Only with nothing in flight: the machine drains its disks first.
    void visit_state(StateVisitor& v);
    unsigned in_flight() const { return m_in_flight; }

private:
    struct Pending; // an SRB at the target

    void handle(const vmbus::Packet& packet);
    void execute_srb(const vmbus::Packet& packet, std::vector<u8> reply);
    void srb_done(const std::shared_ptr<Pending>& pending, const ScsiTarget::Result& result);
    void complete(u64 transaction_id, std::vector<u8> reply, u32 status);
    void send(u64 transaction_id, std::vector<u8> body);
    void flush_backlog();

    GuestMemory m_memory;
    ScsiTarget& m_target;
    std::function<void()> m_signal_guest;
    std::optional<vmbus::RingPair> m_rings;
    u16 m_version = 0;
    u64 m_generation = 0; // bumped at close: late completions of an old open are dropped
    unsigned m_in_flight = 0;
    // Completions the full ring refused, in order; sent when the guest
    // signals that it made room.
    vmbus::CompletionBacklog m_backlog;
};
