// A channel's pair of ring buffers as the host sees them (docs/vmbus.md
// "Rings"), laid out as the guest's drivers/hv/ring_buffer.c lays them out:
// the ring GPADL's first `downstream_offset` pages are the guest-to-host
// ring, the rest the host-to-guest ring; each ring is a 4 KiB header page
// {write_index @0, read_index @4, interrupt_mask @8, pending_send_sz @12,
// feature_bits @64} and a circular data area the indices are byte offsets
// into. A packet is a 16-byte descriptor {type, data offset and total
// length in 8-byte units, flags, transaction id}, its body padded to 8
// bytes, and an 8-byte trailer holding the writer's old write index.
//
// The indices are the guest's to write at any time. An index outside the
// data area or not 8-byte aligned, a descriptor whose lengths do not fit,
// or a page of the ring that is not RAM breaks the ring: every later
// operation fails and the device stops using the channel (the guest sees a
// dead channel, never a host crash or a read beyond the ring).
#pragma once

#include "mmu/base/state_visitor.h"
#include "mmu/guest_memory.h"
#include "paravirt/vmbus/vmbus_protocol.h"

#include <array>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <vector>

namespace vmbus {

// Packet types (VMBUS_PACKET_TYPE) and the one flag a packet carries.
constexpr u16 PACKET_DATA_INBAND = 6;
constexpr u16 PACKET_DATA_USING_TRANSFER_PAGES = 7;
constexpr u16 PACKET_DATA_USING_GPA_DIRECT = 9;
constexpr u16 PACKET_COMPLETION = 11;
constexpr u16 PACKET_FLAG_COMPLETION_REQUESTED = 1;

constexpr unsigned PACKET_DESCRIPTOR_SIZE = 16;
constexpr unsigned PACKET_TRAILER_SIZE = 8;

struct Packet {
    u16 type = 0;
    u16 flags = 0;
    u64 transaction_id = 0;
    // Between the descriptor and the body (the page ranges of a GPA-direct
    // packet, the ranges of a transfer-page one).
    std::vector<u8> extra;
    std::vector<u8> body;
};

// One range of a GPA-direct packet: `byte_count` bytes from `byte_offset`
// into the first of `pfns`, running on through the next ones.
struct GpaRange {
    u32 byte_count = 0;
    u32 byte_offset = 0;
    std::vector<u64> pfns;
};
// The ranges of a GPA-direct packet's `extra` bytes {u32 reserved, u32
// range_count, ranges}; nothing when a count or length does not fit.
std::optional<std::vector<GpaRange>> parse_gpa_ranges(std::span<const u8> extra);
// Copies between `buffer` and the ranges' bytes in order, until the buffer
// is full; false when the ranges hold fewer bytes or a page is not RAM.
bool copy_ranges(GuestMemory memory, const std::vector<GpaRange>& ranges, std::span<u8> buffer,
                 bool to_guest);

class RingPair {
public:
    // Empty when the split leaves either ring without a data page.
    static std::optional<RingPair> create(GuestMemory memory, std::span<const u64> pfns,
                                          u32 downstream_offset);

    // ---- Guest to host (the host reads) ----
    // The next packet, consumed; nothing when the ring is empty or broken.
    // `signal_writer` is set when the guest waits for room (pending_send_sz)
    // and this read made enough: the host must signal the channel.
    std::optional<Packet> read(bool& signal_writer);
    bool can_read();
    // While the host drains the ring it tells the guest not to signal
    // (interrupt_mask 1); when done it unmasks and must look once more,
    // since a packet may have come just before: true means read again.
    void mask_incoming(bool masked);
    // Reads every packet there is into `handle`, masked while it reads and
    // looking once more after unmasking; `wake_writer` runs when a read made
    // the room a waiting guest asked for. `handle` must not destroy this.
    void drain(const std::function<void(const Packet&)>& handle, const std::function<void()>& wake_writer);

    // ---- Host to guest (the host writes) ----
    // Writes one packet; false when it does not fit (then pending_send_sz
    // asks the guest to signal when it has made room) or the ring is
    // broken. `signal_reader` is set when the guest must be interrupted:
    // the ring was empty before and the guest does not mask interrupts.
    bool write(u16 type, u16 flags, u64 transaction_id, std::span<const u8> extra,
               std::span<const u8> body, bool& signal_reader);

    bool broken() const { return m_broken; }

    // Saves an open channel's rings (or that there are none) as the GPADL
    // pages they were made from and the split; a load makes them again from
    // those (the indices live in guest memory) and fails when they do not
    // make a pair.
    static void visit_state(StateVisitor& v, GuestMemory memory, std::optional<RingPair>& rings);
    u32 incoming_size() const { return m_in.data_size; }
    u32 outgoing_size() const { return m_out.data_size; }

private:
    struct Ring {
        std::vector<u64> pfns; // [0] the header page, then the data pages
        u32 data_size = 0;
    };
    static constexpr u32 WRITE_INDEX = 0, READ_INDEX = 4, INTERRUPT_MASK = 8, PENDING_SEND_SIZE = 12,
                         FEATURE_BITS = 64;

    RingPair(GuestMemory memory, Ring in, Ring out) : m_memory(memory), m_in(std::move(in)), m_out(std::move(out)) {}
    bool header_u32(const Ring& r, u32 offset, u32& value);
    bool set_header_u32(const Ring& r, u32 offset, u32 value);
    bool indices(const Ring& r, u32& write_index, u32& read_index);
    // Copies between `bytes` and the ring's data area from offset `at`.
    bool copy(const Ring& r, u32 at, std::span<u8> bytes, bool to_ring);
    bool fail()
    {
        m_broken = true;
        return false;
    }

    GuestMemory m_memory;
    Ring m_in;  // guest to host
    Ring m_out; // host to guest
    bool m_broken = false;
};

// Completions a device owes the guest that the ring could not take yet, in
// order: {transaction id, body}.
using CompletionBacklog = std::deque<std::pair<u64, std::vector<u8>>>;
// Writes the backlog's completions while they fit, running `signal_reader`
// when the guest must be interrupted; a full ring keeps the rest (the guest
// signals when it has read: pending_send_sz).
void write_completions(std::optional<RingPair>& rings, CompletionBacklog& backlog,
                       const std::function<void()>& signal_reader);
// Saves or loads a backlog; a load fails (naming `device`) beyond
// `max_count` completions or a body longer than `max_body`.
void visit_completions(StateVisitor& v, CompletionBacklog& backlog, size_t max_count, size_t max_body,
                       const char* device);

} // namespace vmbus
