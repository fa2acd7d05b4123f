// storvsp: the host end of Hyper-V's synthetic SCSI controller (docs/vmbus.md
// "Storage"), the VMBus device Linux's hv_storvsc drives. The guest's vstor
// packets arrive on the primary channel's ring: the initialization
// handshake (BEGIN, QUERY_PROTOCOL_VERSION 6.2/6.0/5.1, QUERY_PROPERTIES,
// END, then CREATE_SUB_CHANNELS for one channel per further CPU), then
// EXECUTE_SRB requests, on any of the channels, whose data pages come as a
// GPA-direct range. Each channel answers on its own ring. Each SRB goes to the SCSI target at its LUN, and
// its completion goes back with the SRB and SCSI status, sense data and
// the bytes moved.
//
// The SCSI command set itself is not here: ScsiTarget (platform/storage)
// is the seam to the disk model, so the same disks serve any transport.
#pragma once

#include "mmu/base/state_visitor.h"
#include "paravirt/vmbus/vmbus_ring.h"
#include "paravirt/vmbus/vmbus_server.h"
#include "platform/storage/scsi_target.h"

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
constexpr u32 PROPERTIES_MULTI_CHANNEL = 1; // STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL
// CREATE_SUB_CHANNELS: the number wanted, a u16 where the union starts.
constexpr unsigned SUB_CHANNEL_COUNT = 12;
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
    // The most sub-channels one controller offers (Hyper-V offers about one
    // per virtual processor; Linux asks for one per CPU beside the primary's).
    static constexpr u16 MAX_SUB_CHANNELS = 64;

    // What the controller needs of the VMBus server: interrupting the guest
    // for one of its channels (VmbusServer::signal_guest) and offering
    // sub-channels of its primary (VmbusServer::offer_sub_channels).
    struct Links {
        std::function<void(u32 relid)> signal_guest;
        std::function<bool(u32 primary, u16 count)> offer_sub_channels;
    };

    // `max_sub_channels` (at most MAX_SUB_CHANNELS) is what QUERY_PROPERTIES
    // offers the guest; 0 keeps the controller to its primary channel.
    Storvsp(GuestMemory memory, ScsiTarget& target, Links links, u16 max_sub_channels = 0);
    ~Storvsp() override;

    // The primary channel.
    bool open(const VmbusServer::OpenRequest& request) override;
    void close() override;
    void signaled() override;
    // Sub-channel `index` (1 .. max_sub_channels), served like the primary
    // except for the initialization handshake.
    VmbusServer::Device* sub_channel(u16 index) override;

    // The disks behind the controller changed (a LUN added or removed):
    // the guest is told to scan its bus again (ENUMERATE_BUS, which Linux
    // answers with TEST UNIT READY to every disk it has, removing those
    // gone, and a scan for new ones). Nothing when the guest has not
    // finished opening the controller: its first scan finds the disks.
    void bus_changed();

    u16 protocol_version() const { return m_version; }
    // SRBs taken from channel `index`'s ring so far (0 the primary).
    u64 requests_on(u16 index) const;
    // The controller's state: the version and each channel's rings and
    // completions not yet sent. Only with nothing in flight: the machine
    // drains its disks first.
    void visit_state(StateVisitor& v);
    unsigned in_flight() const { return m_in_flight; }

private:
    class Queue; // one channel: its rings and the completions it owes
    struct Pending; // an SRB at the target

    Queue& queue(u16 index);
    void handle(Queue& queue, const vmbus::Packet& packet);
    void handle_setup(Queue& queue, u64 transaction_id, std::vector<u8> reply);
    void execute_srb(Queue& queue, const vmbus::Packet& packet, std::vector<u8> reply);
    void srb_done(const std::shared_ptr<Pending>& pending, const ScsiTarget::Result& result);
    void complete(Queue& queue, u64 transaction_id, std::vector<u8> reply, u32 status);

    GuestMemory m_memory;
    ScsiTarget& m_target;
    Links m_links;
    u16 m_max_sub_channels = 0;
    std::vector<std::unique_ptr<Queue>> m_queues; // [0] the primary; made as the guest asks
    u16 m_version = 0;
    bool m_initialized = false; // END_INITIALIZATION seen on the open primary
    unsigned m_in_flight = 0;
};
