#include "paravirt/vmbus/vmbus_ring.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace vmbus {

namespace {

// A page frame number whose address fits 52 bits: larger ones would wrap
// round to low memory when multiplied by the page size.
bool valid_pfn(u64 pfn)
{
    return pfn < (1ull << (52 - 12));
}

u64 pages_touched(u64 byte_offset, u64 byte_count)
{
    return (byte_offset + byte_count + PAGE_SIZE - 1) / PAGE_SIZE;
}

} // namespace

std::optional<std::vector<GpaRange>> parse_gpa_ranges(std::span<const u8> extra)
{
    if (extra.size() < 8)
        return std::nullopt;
    const u32 count = load_le32(extra, 4);
    if (count == 0 || count > extra.size() / 8)
        return std::nullopt;
    std::vector<GpaRange> ranges;
    size_t at = 8;
    for (u32 i = 0; i < count; ++i) {
        if (at + 8 > extra.size())
            return std::nullopt;
        GpaRange r;
        r.byte_count = load_le32(extra, at);
        r.byte_offset = load_le32(extra, at + 4);
        at += 8;
        if (r.byte_count == 0 || r.byte_offset >= PAGE_SIZE)
            return std::nullopt;
        const u64 pages = pages_touched(r.byte_offset, r.byte_count);
        if (pages > (extra.size() - at) / 8)
            return std::nullopt;
        r.pfns.resize(pages);
        std::memcpy(r.pfns.data(), extra.data() + at, pages * 8);
        at += pages * 8;
        if (!std::all_of(r.pfns.begin(), r.pfns.end(), valid_pfn))
            return std::nullopt;
        ranges.push_back(std::move(r));
    }
    return ranges;
}

bool copy_ranges(GuestMemory memory, const std::vector<GpaRange>& ranges, std::span<u8> buffer,
                 bool to_guest)
{
    size_t done = 0;
    for (const GpaRange& r : ranges) {
        u64 offset = r.byte_offset;
        u64 left = std::min<u64>(r.byte_count, buffer.size() - done);
        while (left > 0) {
            const u64 page = offset / PAGE_SIZE, in_page = offset % PAGE_SIZE;
            const size_t chunk = static_cast<size_t>(std::min<u64>(left, PAGE_SIZE - in_page));
            const GuestPhys at = r.pfns[page] * PAGE_SIZE + in_page;
            const std::span<u8> piece = buffer.subspan(done, chunk);
            if (!(to_guest ? memory.write(at, piece) : memory.read(at, piece)))
                return false;
            done += chunk;
            offset += chunk;
            left -= chunk;
        }
        if (done == buffer.size())
            return true;
    }
    return done == buffer.size();
}

std::optional<RingPair> RingPair::create(GuestMemory memory, std::span<const u64> pfns,
                                         u32 downstream_offset)
{
    // Each ring: its header page and at least one data page.
    if (downstream_offset < 2 || downstream_offset > pfns.size() || pfns.size() - downstream_offset < 2 ||
        !std::all_of(pfns.begin(), pfns.end(), valid_pfn))
        return std::nullopt;
    Ring in, out;
    in.pfns.assign(pfns.begin(), pfns.begin() + downstream_offset);
    out.pfns.assign(pfns.begin() + downstream_offset, pfns.end());
    in.data_size = static_cast<u32>((in.pfns.size() - 1) * PAGE_SIZE);
    out.data_size = static_cast<u32>((out.pfns.size() - 1) * PAGE_SIZE);
    return RingPair(memory, std::move(in), std::move(out));
}

bool RingPair::header_u32(const Ring& r, u32 offset, u32& value)
{
    return m_memory.read(r.pfns[0] * PAGE_SIZE + offset, &value, 4) || fail();
}

bool RingPair::set_header_u32(const Ring& r, u32 offset, u32 value)
{
    return m_memory.write(r.pfns[0] * PAGE_SIZE + offset, &value, 4) || fail();
}

bool RingPair::indices(const Ring& r, u32& write_index, u32& read_index)
{
    if (m_broken || !header_u32(r, WRITE_INDEX, write_index) || !header_u32(r, READ_INDEX, read_index))
        return false;
    // Packets, trailers and so both indices are multiples of 8 inside the data.
    if (write_index >= r.data_size || read_index >= r.data_size || (write_index | read_index) % 8)
        return fail();
    return true;
}

bool RingPair::copy(const Ring& r, u32 at, std::span<u8> bytes, bool to_ring)
{
    // Page by page through the ring's data pages, wrapping at its end.
    for (size_t done = 0; done < bytes.size();) {
        const u32 in_page = at % PAGE_SIZE;
        const size_t chunk = std::min<size_t>({bytes.size() - done, PAGE_SIZE - in_page, r.data_size - at});
        const GuestPhys address = r.pfns[1 + at / PAGE_SIZE] * PAGE_SIZE + in_page;
        const std::span<u8> piece = bytes.subspan(done, chunk);
        if (!(to_ring ? m_memory.write(address, piece) : m_memory.read(address, piece)))
            return fail();
        done += chunk;
        at = static_cast<u32>((at + chunk) % r.data_size);
    }
    return true;
}

bool RingPair::can_read()
{
    u32 w, r;
    return indices(m_in, w, r) && w != r;
}

void RingPair::mask_incoming(bool masked)
{
    if (!m_broken)
        set_header_u32(m_in, INTERRUPT_MASK, masked ? 1 : 0);
}

void RingPair::drain(const std::function<void(const Packet&)>& handle, const std::function<void()>& wake_writer)
{
    for (;;) {
        mask_incoming(true);
        bool wake = false;
        while (std::optional<Packet> packet = read(wake)) {
            if (wake)
                wake_writer();
            handle(*packet);
        }
        mask_incoming(false);
        if (!can_read())
            return;
    }
}

std::optional<Packet> RingPair::read(bool& signal_writer)
{
    signal_writer = false;
    u32 w, r;
    if (!indices(m_in, w, r) || w == r)
        return std::nullopt;
    const u32 size = m_in.data_size;
    const u32 used = (w + size - r) % size;
    std::array<u8, PACKET_DESCRIPTOR_SIZE> d;
    if (used < PACKET_DESCRIPTOR_SIZE + PACKET_TRAILER_SIZE || !copy(m_in, r, d, false)) {
        fail();
        return std::nullopt;
    }
    Packet p;
    p.type = load_le16(d, 0);
    p.flags = load_le16(d, 6);
    p.transaction_id = load_le64(d, 8);
    const u32 offset = load_le16(d, 2) * 8u, length = load_le16(d, 4) * 8u;
    if (offset < PACKET_DESCRIPTOR_SIZE || offset > length || length + PACKET_TRAILER_SIZE > used) {
        fail();
        return std::nullopt;
    }
    p.extra.resize(offset - PACKET_DESCRIPTOR_SIZE);
    p.body.resize(length - offset);
    if (!copy(m_in, (r + PACKET_DESCRIPTOR_SIZE) % size, p.extra, false) ||
        !copy(m_in, (r + offset) % size, p.body, false))
        return std::nullopt;
    const u32 consumed = length + PACKET_TRAILER_SIZE;
    if (!set_header_u32(m_in, READ_INDEX, (r + consumed) % size))
        return std::nullopt;
    // A writer that found too little room said how much it needs; tell it
    // when this read is what made enough (free space crossed pending_send_sz).
    u32 pending = 0;
    header_u32(m_in, PENDING_SEND_SIZE, pending);
    const u32 free_after = size - (used - consumed);
    const u32 free_before = free_after - consumed;
    signal_writer = pending != 0 && free_before <= pending && pending < free_after;
    return p;
}

bool RingPair::write(u16 type, u16 flags, u64 transaction_id, std::span<const u8> extra,
                     std::span<const u8> body, bool& signal_reader)
{
    signal_reader = false;
    const size_t offset = PACKET_DESCRIPTOR_SIZE + extra.size();
    const size_t length = (offset + body.size() + 7) & ~size_t{7};
    if (extra.size() % 8 || length > 0xFFFF * 8u)
        return false;
    u32 w, r;
    if (!indices(m_out, w, r))
        return false;
    const u32 size = m_out.data_size;
    const u32 free = size - (w + size - r) % size;
    const u32 needed = static_cast<u32>(length + PACKET_TRAILER_SIZE);
    // One byte always stays free, so that a full ring is not an empty one.
    if (needed >= free) {
        set_header_u32(m_out, PENDING_SEND_SIZE, needed);
        return false;
    }
    std::vector<u8> packet(length + PACKET_TRAILER_SIZE);
    store_le16(packet, 0, type);
    store_le16(packet, 2, static_cast<u16>(offset / 8));
    store_le16(packet, 4, static_cast<u16>(length / 8));
    store_le16(packet, 6, flags);
    store_le64(packet, 8, transaction_id);
    std::copy(extra.begin(), extra.end(), packet.begin() + PACKET_DESCRIPTOR_SIZE);
    std::copy(body.begin(), body.end(), packet.begin() + static_cast<std::ptrdiff_t>(offset));
    store_le64(packet, length, u64{w} << 32);
    if (!copy(m_out, w, packet, true) || !set_header_u32(m_out, WRITE_INDEX, (w + needed) % size))
        return false;
    set_header_u32(m_out, PENDING_SEND_SIZE, 0);
    // Interrupt only on the empty-to-non-empty transition, and never while
    // the guest masks (it is reading and will see this packet).
    u32 mask = 0, read_now = 0;
    if (!header_u32(m_out, INTERRUPT_MASK, mask) || !header_u32(m_out, READ_INDEX, read_now))
        return false;
    signal_reader = mask == 0 && read_now == w;
    return true;
}

void RingPair::visit_state(StateVisitor& v, GuestMemory memory, std::optional<RingPair>& rings)
{
    bool open = rings.has_value();
    std::vector<u64> pfns;
    u32 downstream_offset = 0;
    if (open) {
        pfns = rings->m_in.pfns;
        pfns.insert(pfns.end(), rings->m_out.pfns.begin(), rings->m_out.pfns.end());
        downstream_offset = static_cast<u32>(rings->m_in.pfns.size());
    }
    v.field("open", open);
    v.field("ring_pfns", pfns);
    v.field("downstream_offset", downstream_offset);
    if (!v.loading() || !v.ok())
        return;
    rings.reset();
    if (open && !(rings = create(memory, pfns, downstream_offset)))
        v.fail("vmbus: a channel's saved rings do not make a ring pair");
}

void write_completions(std::optional<RingPair>& rings, CompletionBacklog& backlog,
                       const std::function<void()>& signal_reader)
{
    while (rings && !backlog.empty()) {
        bool wake = false;
        const auto& [id, body] = backlog.front();
        if (!rings->write(PACKET_COMPLETION, 0, id, {}, body, wake))
            return;
        backlog.pop_front();
        if (wake)
            signal_reader();
    }
}

void visit_completions(StateVisitor& v, CompletionBacklog& backlog, size_t max_count, size_t max_body,
                       const char* device)
{
    u32 count = static_cast<u32>(backlog.size());
    v.field("backlog", count);
    if (v.loading()) {
        if (count > max_count)
            return v.fail(std::string(device) + ": too many completions waiting");
        backlog.resize(count);
    }
    for (auto& [id, body] : backlog) {
        v.field("transaction_id", id);
        v.field("body", body);
        if (v.loading() && body.size() > max_body)
            return v.fail(std::string(device) + ": a waiting completion of a bad size");
    }
}

} // namespace vmbus
