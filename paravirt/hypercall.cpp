#include "paravirt/hypercall.h"

#include "mmu/guest_memory.h"

#include <bit>
#include <cstring>
#include <vector>

namespace {

// What the dispatcher knows of each implemented call (TLFS 3.10 and the
// per-call pages): input layout, conventions, and the privilege or hint
// whose absence answers HV_STATUS_ACCESS_DENIED.
struct Spec {
    HvCallCode code;
    bool rep;
    unsigned fixed_bytes;   // fixed input header
    unsigned element_bytes; // one rep list element
    bool variable_header;   // accepts a variable header (the VP set banks)
    bool fast;              // may pass its input in registers
    u64 privilege;
    u32 hints;
};

constexpr Spec SPECS[] = {
    {HvCallCode::FlushVirtualAddressSpace, false, 24, 0, false, true, 0, hv_hint::REMOTE_TLB_FLUSH},
    {HvCallCode::FlushVirtualAddressList, true, 24, 8, false, true, 0, hv_hint::REMOTE_TLB_FLUSH},
    {HvCallCode::NotifyLongSpinWait, false, 8, 0, false, true, 0, 0},
    {HvCallCode::SendSyntheticClusterIpi, false, 16, 0, false, true, 0, hv_hint::CLUSTER_IPI},
    {HvCallCode::FlushVirtualAddressSpaceEx, false, 32, 0, true, true, 0,
     hv_hint::REMOTE_TLB_FLUSH | hv_hint::EX_PROCESSOR_MASKS},
    {HvCallCode::FlushVirtualAddressListEx, true, 32, 8, true, true, 0,
     hv_hint::REMOTE_TLB_FLUSH | hv_hint::EX_PROCESSOR_MASKS},
    {HvCallCode::SendSyntheticClusterIpiEx, false, 24, 0, true, true, 0,
     hv_hint::CLUSTER_IPI | hv_hint::EX_PROCESSOR_MASKS},
    // 256 bytes never fit the 112 bytes of XMM fast input.
    {HvCallCode::PostMessage, false, 256, 0, false, false, hv_privilege::POST_MESSAGES, 0},
    {HvCallCode::SignalEvent, false, 8, 0, false, true, hv_privilege::SIGNAL_EVENTS, 0},
};

const Spec* find_spec(u16 code)
{
    for (const Spec& s : SPECS)
        if (static_cast<u16>(s.code) == code)
            return &s;
    return nullptr;
}

// Fast input: RDX and R8 (16 bytes), then XMM0-XMM5 (TLFS 3.7.x).
constexpr unsigned FAST_REGISTER_BYTES = 16;
constexpr unsigned FAST_XMM_BYTES = 112;

template <class T> T load(std::span<const u8> in, size_t offset)
{
    T v{};
    if (offset + sizeof(T) <= in.size())
        std::memcpy(&v, in.data() + offset, sizeof(T));
    return v;
}

HypercallResult completed(HvStatus status, u64 reps = 0)
{
    return {HypercallResult::Kind::Completed,
            static_cast<u64>(status) | (reps << HV_HYPERCALL_REPS_COMPLETED_SHIFT)};
}

} // namespace

struct HypercallDispatcher::Call {
    const Spec* spec;
    bool fast;
    unsigned variable_qwords;
    unsigned rep_count;
    unsigned rep_start;
    size_t header_bytes() const { return spec->fixed_bytes + variable_qwords * 8u; }
};

// HV_VP_SET or a 64-bit processor mask, expanded to one mask per bank.
struct HypercallDispatcher::VpSet {
    bool all = false;
    std::array<u64, HV_MAX_SPARSE_BANKS> banks{};

    bool contains(unsigned vp) const
    {
        if (all)
            return true;
        return vp / 64 < HV_MAX_SPARSE_BANKS && (banks[vp / 64] >> (vp % 64)) & 1;
    }
};

namespace {

// Reads an HV_VP_SET at `offset`: format, valid bank mask, then as many bank
// masks as the mask has bits, which are the call's variable header.
HvStatus parse_vp_set(std::span<const u8> in, size_t offset, unsigned variable_qwords, bool& all,
                      std::array<u64, HV_MAX_SPARSE_BANKS>& banks)
{
    const u64 format = load<u64>(in, offset);
    const u64 valid_banks = load<u64>(in, offset + 8);
    if (format != HV_GENERIC_SET_SPARSE_4K && format != HV_GENERIC_SET_ALL)
        return HvStatus::InvalidParameter;
    // The variable header is exactly the bank list (TLFS 3.7.x).
    if (variable_qwords != static_cast<unsigned>(std::popcount(valid_banks)))
        return HvStatus::InvalidHypercallInput;
    all = format == HV_GENERIC_SET_ALL;
    unsigned k = 0;
    for (unsigned bank = 0; bank < HV_MAX_SPARSE_BANKS; ++bank)
        if ((valid_banks >> bank) & 1)
            banks[bank] = load<u64>(in, offset + 16 + 8 * k++);
    return HvStatus::Success;
}

} // namespace

HypercallDispatcher::HypercallDispatcher(const HvConfig& config, GuestMemory memory,
                                         ApicPort& apic, HvConnections& connections)
    : m_config(config), m_features(HvFeatures::from(config)), m_memory(memory), m_apic(apic),
      m_connections(connections)
{
}

HypercallResult HypercallDispatcher::execute(unsigned vp, const HypercallRegisters& regs)
{
    const u64 control = regs.control;
    const Spec* spec = find_spec(static_cast<u16>(control & HV_HYPERCALL_CODE_MASK));
    if (!spec)
        return completed(HvStatus::InvalidHypercallCode);
    // TLFS 3.12: ACCESS_DENIED first, so nothing about the input leaks.
    if (!m_features.has(spec->privilege) || (m_features.hints & spec->hints) != spec->hints)
        return completed(HvStatus::AccessDenied);

    Call call{
        spec, (control & HV_HYPERCALL_FAST) != 0,
        static_cast<unsigned>((control & HV_HYPERCALL_VARHEAD_MASK) >> HV_HYPERCALL_VARHEAD_SHIFT),
        static_cast<unsigned>((control >> HV_HYPERCALL_REP_COUNT_SHIFT) &
                              HV_HYPERCALL_REP_FIELD_MASK),
        static_cast<unsigned>((control >> HV_HYPERCALL_REP_START_SHIFT) &
                              HV_HYPERCALL_REP_FIELD_MASK)};

    // TLFS 3.7 / 3.12: reserved bits, rep count and start index, and a
    // variable header only where the call takes one. "Is Nested" asks an L0
    // hypervisor beneath this one, and there is none.
    if (control & (HV_HYPERCALL_RSVDZ | HV_HYPERCALL_NESTED))
        return completed(HvStatus::InvalidHypercallInput);
    if (spec->rep ? (call.rep_count == 0 || call.rep_start >= call.rep_count)
                  : (call.rep_count != 0 || call.rep_start != 0))
        return completed(HvStatus::InvalidHypercallInput);
    if (call.variable_qwords && !spec->variable_header)
        return completed(HvStatus::InvalidHypercallInput);

    const size_t size = call.header_bytes() + size_t(call.rep_count) * spec->element_bytes;
    std::array<u8, PAGE_SIZE> buffer{};
    if (call.fast) {
        if (!spec->fast)
            return completed(HvStatus::InvalidHypercallInput);
        if (size > FAST_REGISTER_BYTES) {
            // TLFS 3.7.x: XMM input where it is not offered is #UD.
            if (!(m_features.features_edx & hv_feature_edx::XMM_HYPERCALL_INPUT))
                return {HypercallResult::Kind::InvalidOpcode, 0};
            if (size > FAST_XMM_BYTES)
                return completed(HvStatus::InvalidHypercallInput);
        }
        std::memcpy(buffer.data(), &regs.input, 8);
        std::memcpy(buffer.data() + 8, &regs.output, 8);
        std::memcpy(buffer.data() + 16, regs.xmm.data(), FAST_XMM_BYTES - 16);
    } else {
        // TLFS 3.6: 8-byte aligned, within one page, inside guest RAM.
        if ((regs.input & 7) || (regs.input & (PAGE_SIZE - 1)) + size > PAGE_SIZE)
            return completed(HvStatus::InvalidAlignment);
        if (!m_memory.read(regs.input, buffer.data(), size))
            return completed(HvStatus::InvalidAlignment);
    }
    const std::span<const u8> in(buffer.data(), call.fast ? FAST_XMM_BYTES : size);

    Outcome out;
    switch (spec->code) {
    case HvCallCode::FlushVirtualAddressSpace:
        out = flush_space(vp, call, in, false);
        break;
    case HvCallCode::FlushVirtualAddressSpaceEx:
        out = flush_space(vp, call, in, true);
        break;
    case HvCallCode::FlushVirtualAddressList:
        out = flush_list(vp, call, in, false);
        break;
    case HvCallCode::FlushVirtualAddressListEx:
        out = flush_list(vp, call, in, true);
        break;
    case HvCallCode::SendSyntheticClusterIpi:
        out = send_ipi(call, in, false);
        break;
    case HvCallCode::SendSyntheticClusterIpiEx:
        out = send_ipi(call, in, true);
        break;
    case HvCallCode::PostMessage:
        out = post_message(vp, in);
        break;
    case HvCallCode::SignalEvent:
        out = signal_event(vp, in);
        break;
    case HvCallCode::NotifyLongSpinWait:
        out = spin_wait(vp, in);
        break;
    }

    if (spec->rep && out.status == HvStatus::Success && out.reps_completed < call.rep_count) {
        // Continuation: same call, resumed at the first unprocessed element.
        const u64 start_mask = HV_HYPERCALL_REP_FIELD_MASK << HV_HYPERCALL_REP_START_SHIFT;
        return {HypercallResult::Kind::Continue,
                (control & ~start_mask) |
                    (u64(out.reps_completed) << HV_HYPERCALL_REP_START_SHIFT)};
    }
    return completed(out.status, spec->rep ? out.reps_completed : 0);
}

HypercallResult::Kind HypercallDispatcher::dispatch(unsigned vp, CpuState& s)
{
    const bool caller64 = s.long_mode_active() && (s.seg[CS].attr & Segment::L);
    const auto pair = [&](Gpr high, Gpr low) {
        return (s.gpr[high] & 0xFFFFFFFF) << 32 | (s.gpr[low] & 0xFFFFFFFF);
    };
    HypercallRegisters regs;
    regs.control = caller64 ? s.gpr[RCX] : pair(RDX, RAX);
    regs.input = caller64 ? s.gpr[RDX] : pair(RBX, RCX);
    regs.output = caller64 ? s.gpr[R8] : pair(RDI, RSI);
    for (unsigned i = 0; i < 6; ++i) {
        regs.xmm[2 * i] = s.fpu.xmm[i][0];
        regs.xmm[2 * i + 1] = s.fpu.xmm[i][1];
    }
    const HypercallResult r = execute(vp, regs);
    if (r.kind == HypercallResult::Kind::InvalidOpcode)
        return r.kind;
    // The result goes where the TLFS 3.8 says; a continuation rewrites the
    // input value instead (TLFS 3.9).
    if (caller64) {
        s.gpr[r.kind == HypercallResult::Kind::Continue ? RCX : RAX] = r.value;
    } else {
        s.gpr[RDX] = r.value >> 32;
        s.gpr[RAX] = r.value & 0xFFFFFFFF;
    }
    return r.kind;
}

void HypercallDispatcher::flush_targets(const VpSet& set, const TlbFlushRequest& request)
{
    if (!m_flush)
        return;
    for (unsigned vp = 0; vp < m_config.vp_count; ++vp)
        if (set.contains(vp))
            m_flush(vp, request);
}

namespace {
constexpr u64 FLUSH_SPACE_FLAGS = HV_FLUSH_ALL_PROCESSORS | HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES |
                                  HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY;
// NON_GLOBAL_MAPPINGS_ONLY "does not make sense" for a list (TLFS 9.4).
constexpr u64 FLUSH_LIST_FLAGS = HV_FLUSH_ALL_PROCESSORS | HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES;
} // namespace

HypercallDispatcher::Outcome HypercallDispatcher::flush_space(unsigned, const Call& call,
                                                              std::span<const u8> in, bool ex)
{
    const u64 flags = load<u64>(in, 8);
    if (flags & ~FLUSH_SPACE_FLAGS)
        return {HvStatus::InvalidParameter, 0};
    VpSet set;
    if (ex) {
        if (HvStatus s = parse_vp_set(in, 16, call.variable_qwords, set.all, set.banks);
            s != HvStatus::Success)
            return {s, 0};
    } else {
        set.banks[0] = load<u64>(in, 16);
        // An empty mask without ALL_PROCESSORS is taken as "all": Windows
        // Server 2012 sends it and expects a flush (as KVM found).
        set.all = set.banks[0] == 0;
    }
    if (flags & HV_FLUSH_ALL_PROCESSORS)
        set.all = true;
    TlbFlushRequest request;
    request.address_space = load<u64>(in, 0);
    request.all_address_spaces = flags & HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES;
    request.non_global_only = flags & HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY;
    flush_targets(set, request);
    return {HvStatus::Success, 0};
}

HypercallDispatcher::Outcome HypercallDispatcher::flush_list(unsigned, const Call& call,
                                                             std::span<const u8> in, bool ex)
{
    const u64 flags = load<u64>(in, 8);
    if (flags & ~FLUSH_LIST_FLAGS)
        return {HvStatus::InvalidParameter, call.rep_start};
    VpSet set;
    if (ex) {
        if (HvStatus s = parse_vp_set(in, 16, call.variable_qwords, set.all, set.banks);
            s != HvStatus::Success)
            return {s, call.rep_start};
    } else {
        set.banks[0] = load<u64>(in, 16);
        set.all = set.banks[0] == 0;
    }
    if (flags & HV_FLUSH_ALL_PROCESSORS)
        set.all = true;

    const unsigned batch = m_config.rep_batch ? m_config.rep_batch : 1;
    const unsigned end =
        call.rep_count - call.rep_start > batch ? call.rep_start + batch : call.rep_count;
    std::vector<GvaRange> ranges;
    ranges.reserve(end - call.rep_start);
    for (unsigned i = call.rep_start; i < end; ++i) {
        const u64 entry = load<u64>(in, call.header_bytes() + 8 * i);
        // Low 12 bits: additional pages after the first (TLFS 9.4).
        ranges.push_back({entry & PAGE_MASK, (entry & ~PAGE_MASK) + 1});
    }
    TlbFlushRequest request;
    request.address_space = load<u64>(in, 0);
    request.all_address_spaces = flags & HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES;
    request.ranges = ranges;
    flush_targets(set, request);
    return {HvStatus::Success, end};
}

HypercallDispatcher::Outcome HypercallDispatcher::send_ipi(const Call& call, std::span<const u8> in,
                                                           bool ex)
{
    const u32 vector = load<u32>(in, 0);
    const u8 target_vtl = load<u8>(in, 4);
    // HV_INPUT_VTL: 3:0 TargetVtl, 4 UseTargetVtl, 7:5 RsvdZ. Only VTL 0 exists.
    if (vector < HV_IPI_LOW_VECTOR || vector > HV_IPI_HIGH_VECTOR || (target_vtl & 0xE0) ||
        ((target_vtl & 0x10) && (target_vtl & 0x0F)))
        return {HvStatus::InvalidParameter, 0};
    VpSet set;
    if (ex) {
        if (HvStatus s = parse_vp_set(in, 8, call.variable_qwords, set.all, set.banks);
            s != HvStatus::Success)
            return {s, 0};
    } else {
        set.banks[0] = load<u64>(in, 8);
    }
    for (unsigned vp = 0; vp < m_config.vp_count; ++vp)
        if (set.contains(vp))
            m_apic.raise_vector(vp, static_cast<u8>(vector), false);
    return {HvStatus::Success, 0};
}

HypercallDispatcher::Outcome HypercallDispatcher::post_message(unsigned vp, std::span<const u8> in)
{
    // HvCallPostMessage input (TLFS 11.11.x): ConnectionId, RsvdZ,
    // MessageType, PayloadSize, Payload[240].
    const u32 connection = load<u32>(in, 0);
    const u32 reserved = load<u32>(in, 4);
    const u32 type = load<u32>(in, 8);
    const u32 size = load<u32>(in, 12);
    if (reserved || type == HV_MESSAGE_TYPE_NONE || (type & 0x80000000) ||
        size > HV_MESSAGE_MAX_PAYLOAD)
        return {HvStatus::InvalidParameter, 0};
    return {m_connections.post_message(vp, connection, type, in.subspan(16, size)), 0};
}

HypercallDispatcher::Outcome HypercallDispatcher::signal_event(unsigned vp, std::span<const u8> in)
{
    // HvCallSignalEvent input: ConnectionId, FlagNumber, RsvdZ.
    const u32 connection = load<u32>(in, 0);
    const u16 flag = load<u16>(in, 4);
    if (load<u16>(in, 6))
        return {HvStatus::InvalidParameter, 0};
    return {m_connections.signal_event(vp, connection, flag), 0};
}

HypercallDispatcher::Outcome HypercallDispatcher::spin_wait(unsigned vp, std::span<const u8> in)
{
    // Advisory: there is no error status (TLFS 7.10.x).
    if (m_spin_wait)
        m_spin_wait(vp, load<u32>(in, 0));
    return {HvStatus::Success, 0};
}
