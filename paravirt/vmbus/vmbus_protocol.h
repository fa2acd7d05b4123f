// The VMBus channel-management protocol as the guest speaks it (Linux's
// include/linux/hyperv.h, "Channel Messages"; Hyper-V's VMBus): the
// messages that travel in SynIC messages of type 1 between the guest and
// the parent partition, their numbers, sizes and field offsets, and the
// protocol versions. Every message starts with an 8-byte header {u32
// message type, u32 padding}; offsets below count from the header's start.
// All fields are little-endian and packed.
#pragma once

#include "mmu/base/byte_order.h" // every VMBus device reads fields with load_le32 & co.
#include "mmu/base/types.h"

#include <array>
#include <cstring>
#include <span>
#include <string_view>

namespace vmbus {

// SynIC message type of every VMBus message, both ways.
constexpr u32 SYNIC_MESSAGE_TYPE = 1;
// The SINT host-to-guest messages and channel events arrive on.
constexpr unsigned MESSAGE_SINT = 2;
// Connection IDs the guest posts to: 1 for everything before version 5.0
// and for every message after contact; 4 for INITIATE_CONTACT from 5.0 on.
constexpr u32 MESSAGE_CONNECTION_ID = 1;
constexpr u32 MESSAGE_CONNECTION_ID_WIN10_V5 = 4;
// Channel relative IDs are bits of the SIEF's event-flags slot: 2048 of them
// (bit 0 unused, as on Hyper-V).
constexpr u32 MAX_CHANNEL_RELIDS = 2048;
// Each channel's HvSignalEvent connection ID is its relid plus this base.
constexpr u32 CHANNEL_CONNECTION_ID_BASE = 0x10000;

// Versions: major in the high half, minor in the low.
constexpr u32 version(u32 major, u32 minor) { return (major << 16) | minor; }
constexpr u32 VERSION_WIN8 = version(2, 4);
constexpr u32 VERSION_WIN10_V5 = version(5, 0);
constexpr u32 VERSION_MAX = version(5, 3);
// Every version the host accepts, newest first (what Linux 6.1 tries:
// drivers/hv/connection.c vmbus_versions). Older ones deliver channel
// events through a separate interrupt page, which this host does not model.
constexpr std::array<u32, 8> SUPPORTED_VERSIONS = {
    version(5, 3), version(5, 2), version(5, 1), version(5, 0),
    version(4, 1), version(4, 0), version(3, 0), version(2, 4)};

enum MessageType : u32 {
    OFFER_CHANNEL = 1,
    RESCIND_CHANNEL_OFFER = 2,
    REQUEST_OFFERS = 3,
    ALL_OFFERS_DELIVERED = 4,
    OPEN_CHANNEL = 5,
    OPEN_CHANNEL_RESULT = 6,
    CLOSE_CHANNEL = 7,
    GPADL_HEADER = 8,
    GPADL_BODY = 9,
    GPADL_CREATED = 10,
    GPADL_TEARDOWN = 11,
    GPADL_TORNDOWN = 12,
    RELID_RELEASED = 13,
    INITIATE_CONTACT = 14,
    VERSION_RESPONSE = 15,
    UNLOAD = 16,
    UNLOAD_RESPONSE = 17,
    MODIFY_CHANNEL = 22,
    MODIFY_CHANNEL_RESPONSE = 24,
};

constexpr unsigned HEADER_SIZE = 8;

// INITIATE_CONTACT (40 bytes): version_requested @8, target_vcpu @12, from
// 5.0 msg_sint @16 (before: the interrupt page GPA, u64 @16), monitor
// page 1 @24, monitor page 2 @32.
namespace initiate_contact {
constexpr unsigned SIZE = 40, VERSION = 8, TARGET_VCPU = 12, MSG_SINT = 16, INTERRUPT_PAGE = 16,
                   MONITOR_PAGE1 = 24, MONITOR_PAGE2 = 32;
}
// VERSION_RESPONSE (16): version_supported u8 @8, connection_state u8 @9,
// msg_conn_id u32 @12 (read by the guest from 5.0 on).
namespace version_response {
constexpr unsigned SIZE = 16, SUPPORTED = 8, CONNECTION_STATE = 9, MSG_CONN_ID = 12;
}
// OFFER_CHANNEL (196): the offer {if_type GUID @8, if_instance GUID @24,
// two reserved u64, chn_flags u16 @56, mmio_megabytes u16 @58, user_def[120]
// @60, sub_channel_index u16 @180, a reserved u16}, then child_relid u32
// @184, monitorid u8 @188, monitor_allocated (bit 0) @189,
// is_dedicated_interrupt (bit 0 of a u16) @190, connection_id u32 @192.
namespace offer {
constexpr unsigned SIZE = 196, IF_TYPE = 8, IF_INSTANCE = 24, CHN_FLAGS = 56, MMIO_MEGABYTES = 58,
                   USER_DEFINED = 60, USER_DEFINED_SIZE = 120, SUB_CHANNEL_INDEX = 180,
                   CHILD_RELID = 184, MONITOR_ID = 188, MONITOR_ALLOCATED = 189,
                   DEDICATED_INTERRUPT = 190, CONNECTION_ID = 192;
}
// GPADL_HEADER (20 + ranges): child_relid @8, gpadl @12, range_buflen u16
// @16, rangecount u16 @18, ranges from @20, each {byte_count u32, byte_offset
// u32, pfn u64[]}. GPADL_BODY (16 + 8n): msgnumber @8, gpadl @12, pfns @16.
namespace gpadl_header {
constexpr unsigned SIZE = 20, CHILD_RELID = 8, GPADL = 12, RANGE_BUFLEN = 16, RANGE_COUNT = 18,
                   RANGES = 20;
}
namespace gpadl_body {
constexpr unsigned SIZE = 16, MSG_NUMBER = 8, GPADL = 12, PFNS = 16;
}
// GPADL_CREATED (20): child_relid @8, gpadl @12, creation_status @16.
// GPADL_TEARDOWN (16): child_relid @8, gpadl @12. GPADL_TORNDOWN (12): gpadl @8.
namespace gpadl_created {
constexpr unsigned SIZE = 20, CHILD_RELID = 8, GPADL = 12, STATUS = 16;
}
namespace gpadl_teardown {
constexpr unsigned SIZE = 16, CHILD_RELID = 8, GPADL = 12;
}
namespace gpadl_torndown {
constexpr unsigned SIZE = 12, GPADL = 8;
}
// OPEN_CHANNEL (148): child_relid @8, openid @12, ring-buffer gpadl @16,
// target_vp @20, downstream ring page offset @24, user data[120] @28.
// OPEN_CHANNEL_RESULT (20): child_relid @8, openid @12, status @16.
namespace open_channel {
constexpr unsigned SIZE = 148, CHILD_RELID = 8, OPEN_ID = 12, RING_GPADL = 16, TARGET_VP = 20,
                   DOWNSTREAM_OFFSET = 24, USER_DATA = 28;
}
namespace open_result {
constexpr unsigned SIZE = 20, CHILD_RELID = 8, OPEN_ID = 12, STATUS = 16;
}
// CLOSE_CHANNEL, RESCIND_CHANNEL_OFFER, RELID_RELEASED (12): child_relid @8.
namespace relid_message {
constexpr unsigned SIZE = 12, CHILD_RELID = 8;
}
// MODIFY_CHANNEL (16): child_relid @8, target_vp @12.
// MODIFY_CHANNEL_RESPONSE (16): child_relid @8, status @12.
namespace modify_channel {
constexpr unsigned SIZE = 16, CHILD_RELID = 8, TARGET_VP = 12, STATUS = 12;
}

// Status words in results: 0 success; a failure is any NTSTATUS error
// (the guest only tests for non-zero).
constexpr u32 STATUS_SUCCESS = 0;
constexpr u32 STATUS_UNSUCCESSFUL = 0xC0000001;

// A GUID as VMBus carries it: the first three fields little-endian (the
// Windows layout), the last eight bytes as written.
using Guid = std::array<u8, 16>;
// "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f" → its wire bytes. The text must be
// well formed (compile-time constants); anything else gives all zeroes.
Guid parse_guid(std::string_view text);

} // namespace vmbus
