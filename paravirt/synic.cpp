#include "paravirt/synic.h"

#include "mmu/guest_memory.h"

#include <cstring>

namespace {
GuestPhys page_of(u64 reg)
{
    return reg & HV_PAGE_GPA_MASK;
}
bool page_enabled(u64 reg)
{
    return reg & HV_PAGE_ENABLE;
}
} // namespace

Synic::Synic(unsigned vp, GuestMemory memory, ApicPort& apic)
    : m_vp(vp), m_memory(memory), m_apic(apic)
{
    reset();
}

void Synic::reset()
{
    // TLFS 11.8: SCONTROL, SIEFP and SIMP are zero, every SINT is masked.
    m_scontrol = 0;
    m_siefp = 0;
    m_simp = 0;
    m_sint.fill(HV_SINT_MASKED);
    for (auto& q : m_queue)
        q.clear();
    update_auto_eoi();
}

void Synic::update_auto_eoi(bool announce_all)
{
    // A vector is AutoEOI while an unmasked SINT with AutoEOI uses it (what
    // the APIC checks when the CPU acknowledges the vector).
    std::bitset<256> now;
    for (u64 s : m_sint)
        if ((s & HV_SINT_AUTO_EOI) && !(s & HV_SINT_MASKED))
            now.set(s & HV_SINT_VECTOR_MASK);
    for (unsigned v = 0; v < 256; ++v)
        if (now[v] != m_auto_eoi[v] || (announce_all && now[v]))
            m_apic.set_auto_eoi(m_vp, static_cast<u8>(v), now[v]);
    m_auto_eoi = now;
}

std::optional<u64> Synic::read_msr(u32 index) const
{
    switch (index) {
    case HV_X64_MSR_SCONTROL:
        return m_scontrol;
    case HV_X64_MSR_SVERSION:
        return HV_SYNIC_VERSION;
    case HV_X64_MSR_SIEFP:
        return m_siefp;
    case HV_X64_MSR_SIMP:
        return m_simp;
    case HV_X64_MSR_EOM:
        return 0; // TLFS 11.8.5: reads return zero
    default:
        if (index >= HV_X64_MSR_SINT0 && index <= HV_X64_MSR_SINT15)
            return m_sint[index - HV_X64_MSR_SINT0];
        return std::nullopt;
    }
}

bool Synic::page_write_zeroes(u64 reg)
{
    // TLFS 11.9: the pages start out zeroed. A page outside RAM simply stays
    // inaccessible (deliveries to it fail), as the TLFS says for a base
    // beyond the GPA space.
    static const std::array<u8, PAGE_SIZE> zeroes{};
    return m_memory.write(page_of(reg), zeroes.data(), PAGE_SIZE);
}

bool Synic::write_msr(u32 index, u64 value)
{
    switch (index) {
    case HV_X64_MSR_SCONTROL: {
        // 63:1 are RsvdP: kept as written.
        const bool was_enabled = enabled();
        m_scontrol = value;
        if (enabled() && !was_enabled)
            for (unsigned s = 0; s < HV_SINT_COUNT; ++s)
                slot_may_be_free(s);
        return true;
    }
    case HV_X64_MSR_SVERSION:
        return false; // read-only (TLFS 11.8.2)
    case HV_X64_MSR_SIEFP:
    case HV_X64_MSR_SIMP: {
        u64& reg = index == HV_X64_MSR_SIMP ? m_simp : m_siefp;
        const bool moved =
            page_enabled(value) && (!page_enabled(reg) || page_of(reg) != page_of(value));
        if (moved)
            page_write_zeroes(value);
        reg = value;
        if (moved && index == HV_X64_MSR_SIMP)
            for (unsigned s = 0; s < HV_SINT_COUNT; ++s)
                slot_may_be_free(s);
        return true;
    }
    case HV_X64_MSR_EOM:
        if (value != 0) // 63:0 RsvdZ: EOM is a write-only trigger
            return false;
        for (unsigned s = 0; s < HV_SINT_COUNT; ++s)
            slot_may_be_free(s);
        return true;
    default:
        break;
    }
    if (index < HV_X64_MSR_SINT0 || index > HV_X64_MSR_SINT15)
        return false;
    // TLFS 11.8.6: vectors 0-15 are invalid. A masked SINT may keep one (the
    // reset value 0x10000 is such a SINT), as Hyper-V guests write it back.
    const u8 vector = value & HV_SINT_VECTOR_MASK;
    if (vector < HV_SINT_FIRST_VALID_VECTOR && !(value & HV_SINT_MASKED))
        return false;
    m_sint[index - HV_X64_MSR_SINT0] = value; // RsvdP bits kept
    update_auto_eoi();
    return true;
}

void Synic::interrupt(unsigned sint)
{
    const u64 s = m_sint[sint];
    // A masked SINT loses the interrupt; a polled one never raises it
    // (TLFS 11.2.1, 11.8.6).
    if (s & (HV_SINT_MASKED | HV_SINT_POLLING))
        return;
    m_apic.raise_vector(m_vp, static_cast<u8>(s & HV_SINT_VECTOR_MASK), s & HV_SINT_AUTO_EOI);
}

Synic::SlotResult Synic::try_deliver(unsigned sint, const HvMessage& message)
{
    if (!enabled() || !page_enabled(m_simp))
        return SlotResult::Unavailable;
    const GuestPhys slot = page_of(m_simp) + sint * HV_MESSAGE_SIZE;
    u8 header[HV_MESSAGE_HEADER_SIZE];
    if (!m_memory.read(slot, header, sizeof header))
        return SlotResult::Unavailable;
    u32 type;
    std::memcpy(&type, header + HV_MESSAGE_TYPE_OFFSET, 4);
    if (type != HV_MESSAGE_TYPE_NONE) {
        // The slot is full: tell the guest to write EOM once it empties it.
        if (!(header[HV_MESSAGE_FLAGS_OFFSET] & HV_MESSAGE_FLAG_PENDING)) {
            const u8 flags = header[HV_MESSAGE_FLAGS_OFFSET] | HV_MESSAGE_FLAG_PENDING;
            // Cannot fail: the header was just read from the same page.
            static_cast<void>(m_memory.write(slot + HV_MESSAGE_FLAGS_OFFSET, &flags, 1));
        }
        return SlotResult::Busy;
    }
    u8 bytes[HV_MESSAGE_SIZE] = {};
    std::memcpy(bytes + HV_MESSAGE_TYPE_OFFSET, &message.type, 4);
    bytes[HV_MESSAGE_PAYLOAD_SIZE_OFFSET] = message.payload_size;
    std::memcpy(bytes + HV_MESSAGE_ORIGIN_OFFSET, &message.origin, 8);
    const unsigned payload = message.payload_size <= HV_MESSAGE_MAX_PAYLOAD
                                 ? message.payload_size
                                 : HV_MESSAGE_MAX_PAYLOAD;
    std::memcpy(bytes + HV_MESSAGE_HEADER_SIZE, message.payload.data(), payload);
    if (!m_memory.write(slot, bytes, HV_MESSAGE_HEADER_SIZE + payload))
        return SlotResult::Unavailable;
    interrupt(sint);
    return SlotResult::Delivered;
}

void Synic::scan(unsigned sint)
{
    auto& q = m_queue[sint];
    while (!q.empty()) {
        if (try_deliver(sint, q.front()) != SlotResult::Delivered)
            return;
        q.pop_front();
    }
}

void Synic::slot_may_be_free(unsigned sint)
{
    scan(sint);
    if (m_slot_listener)
        m_slot_listener(sint);
}

HvStatus Synic::post_message(unsigned sint, const HvMessage& message)
{
    if (sint >= HV_SINT_COUNT || message.payload_size > HV_MESSAGE_MAX_PAYLOAD ||
        message.type == HV_MESSAGE_TYPE_NONE)
        return HvStatus::InvalidParameter;
    if (!enabled() || !page_enabled(m_simp))
        return HvStatus::InvalidSynicState;
    auto& q = m_queue[sint];
    if (q.size() >= QUEUE_DEPTH)
        return HvStatus::InsufficientBuffers;
    q.push_back(message);
    scan(sint);
    return HvStatus::Success;
}

HvStatus Synic::signal_event(unsigned sint, unsigned flag)
{
    if (sint >= HV_SINT_COUNT || flag >= HV_EVENT_FLAGS_COUNT)
        return HvStatus::InvalidParameter;
    // TLFS 11.5.2: a disabled SynIC or SIEF page, or a masked SINT, cannot
    // take the event.
    if (!enabled() || !page_enabled(m_siefp) || (m_sint[sint] & HV_SINT_MASKED))
        return HvStatus::InvalidSynicState;
    const GuestPhys byte = page_of(m_siefp) + sint * HV_EVENT_FLAGS_BYTES + flag / 8;
    u8 flags;
    if (!m_memory.read(byte, &flags, 1))
        return HvStatus::InvalidSynicState;
    const u8 bit = static_cast<u8>(1u << (flag % 8));
    if (flags & bit)
        return HvStatus::Success; // already pending: no new interrupt
    flags |= bit;
    static_cast<void>(m_memory.write(byte, &flags, 1)); // read above: it is RAM
    interrupt(sint);
    return HvStatus::Success;
}

HvStatus Synic::signal_sint(unsigned sint)
{
    if (sint >= HV_SINT_COUNT)
        return HvStatus::InvalidParameter;
    if (!enabled() || (m_sint[sint] & HV_SINT_MASKED))
        return HvStatus::InvalidSynicState;
    interrupt(sint);
    return HvStatus::Success;
}

void Synic::apic_eoi(u8 vector)
{
    for (unsigned s = 0; s < HV_SINT_COUNT; ++s)
        if (!(m_sint[s] & HV_SINT_MASKED) && (m_sint[s] & HV_SINT_VECTOR_MASK) == vector)
            slot_may_be_free(s);
}

void visit_message(StateVisitor& v, HvMessage& m)
{
    v.field("type", m.type);
    v.field("payload_size", m.payload_size);
    v.field("origin", m.origin);
    v.field("payload", m.payload);
}

void Synic::visit_state(StateVisitor& v)
{
    v.section("synic", 1);
    v.field("scontrol", m_scontrol);
    v.field("siefp", m_siefp);
    v.field("simp", m_simp);
    v.field("sint", m_sint);
    for (auto& q : m_queue) {
        u32 n = static_cast<u32>(q.size());
        v.field("queued", n);
        if (v.loading()) {
            if (!v.ok() || n > QUEUE_DEPTH)
                return v.fail("a SynIC message queue is longer than its " + std::to_string(QUEUE_DEPTH) +
                              " messages");
            q.assign(n, HvMessage{});
        }
        for (HvMessage& m : q)
            visit_message(v, m);
    }
    if (v.loading())
        update_auto_eoi(true);
}
