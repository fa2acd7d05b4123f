// Fuzz target: one input is one hypercall (or a short run of them) from a
// guest to the Hyper-V dispatcher (paravirt/hypercall.h): the call code and
// control word, the caller's mode and VP, the input/output GPAs or fast
// parameters, XMM0-5 and the bytes of the input pages all come from the
// fuzzer. Whatever it sends, the host must not crash, hang or assert, and
// every call must end with a status code the TLFS defines and no more reps
// completed than were asked for; a violation aborts so the fuzzer reports it.
//
// Built two ways, like interpreter_fuzz.cpp: with libFuzzer (scripts/fuzz.sh)
// and with the seeded driver fuzz_driver.cpp, run in the tests.
#include "mmu/physical_memory.h"
#include "paravirt/hyperv.h"
#include "platform/clock/virtual_clock.h"
#include "tests/fuzz/null_apic.h"
#include "tests/paravirt/hypercall_caller.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

// Reads the fuzzer's bytes front to back; past the end it yields zeros, so
// every input is a complete call.
class ByteReader {
public:
    ByteReader(const uint8_t* data, size_t size) : m_data(data), m_size(size) {}
    u8 u8_() { return m_pos < m_size ? m_data[m_pos++] : 0; }
    u64 u64_()
    {
        u64 v = 0;
        for (unsigned i = 0; i < 8; ++i)
            v |= static_cast<u64>(u8_()) << (8 * i);
        return v;
    }
    size_t remaining() const { return m_pos < m_size ? m_size - m_pos : 0; }
    const uint8_t* here() const { return m_data + m_pos; }
    void skip(size_t n) { m_pos += n; }

private:
    const uint8_t* m_data;
    size_t m_size;
    size_t m_pos = 0;
};

constexpr u64 RAM = 16ull << 20;
constexpr GuestPhys INPUT_PAGES = 0x500000; // two pages of fuzzer bytes
constexpr unsigned VPS = 3;
// The implemented call codes, so most inputs get past the code check.
constexpr u16 CODES[] = {0x0002, 0x0003, 0x0008, 0x000B, 0x0013, 0x0014, 0x0015, 0x005C, 0x005D};

bool defined_status(u16 status)
{
    switch (static_cast<HvStatus>(status)) {
    case HvStatus::Success:
    case HvStatus::InvalidHypercallCode:
    case HvStatus::InvalidHypercallInput:
    case HvStatus::InvalidAlignment:
    case HvStatus::InvalidParameter:
    case HvStatus::AccessDenied:
    case HvStatus::OperationDenied:
    case HvStatus::InsufficientMemory:
    case HvStatus::InvalidVpIndex:
    case HvStatus::InvalidPortId:
    case HvStatus::InvalidConnectionId:
    case HvStatus::InsufficientBuffers:
    case HvStatus::InvalidSynicState:
        return true;
    }
    return false;
}

[[noreturn]] void fail(const char* what, u64 control, u64 result)
{
    std::fprintf(stderr, "hypercall_fuzz: %s (control %#llx, result %#llx)\n", what,
                 static_cast<unsigned long long>(control), static_cast<unsigned long long>(result));
    std::abort();
}

// A GPA the fuzzer picks: mostly inside or at the edges of the input pages,
// where the interesting parsing happens, sometimes anything at all.
u64 pick_gpa(u8 how, u64 raw)
{
    switch (how % 4) {
    case 0:
        return INPUT_PAGES + (raw & 0x1FF8); // aligned, in the input pages
    case 1:
        return INPUT_PAGES + (raw & 0x1FFF); // any alignment, may cross a page
    case 2:
        return RAM - (raw & 0x1FF8); // at the end of RAM
    default:
        return raw;
    }
}

void one_call(HyperV& hv, ByteReader& in)
{
    const u8 shape = in.u8_();
    const bool caller64 = shape & 1;
    const unsigned vp = (shape >> 1) % VPS;
    u64 control = in.u64_();
    if (shape & 0x08) // a real call code
        control = (control & ~HV_HYPERCALL_CODE_MASK) | CODES[(control & 0xFF) % std::size(CODES)];
    if (shape & 0x10) // small rep fields, the common case
        control &= ~((0xFF0ull << HV_HYPERCALL_REP_COUNT_SHIFT) |
                     (0xFF0ull << HV_HYPERCALL_REP_START_SHIFT));
    const u8 how = in.u8_();
    const u64 input = pick_gpa(how, in.u64_());
    const u64 output = pick_gpa(how >> 2, in.u64_());

    CpuState regs = hypercall_caller(caller64, control, input, output);
    for (unsigned i = 0; i < 6; ++i)
        regs.fpu.xmm[i] = {in.u64_(), in.u64_()};

    // Continuations are re-executed as the guest would; a rep call makes
    // progress on every entry, so 4096 entries (the 12-bit rep count) is a hang.
    HypercallResult::Kind kind;
    unsigned rounds = 0;
    do {
        kind = hv.hypercall(vp, regs);
        if (++rounds > 4096)
            fail("rep hypercall does not finish", control, 0);
    } while (kind == HypercallResult::Kind::Continue);
    if (kind == HypercallResult::Kind::InvalidOpcode)
        return;
    const u64 result = caller64 ? regs.gpr[RAX] : (regs.gpr[RDX] << 32 | (regs.gpr[RAX] & 0xFFFFFFFF));
    if (!defined_status(static_cast<u16>(result)))
        fail("status code the TLFS does not define", control, result);
    const u64 rep_count = (control >> HV_HYPERCALL_REP_COUNT_SHIFT) & HV_HYPERCALL_REP_FIELD_MASK;
    if (((result >> HV_HYPERCALL_REPS_COMPLETED_SHIFT) & HV_HYPERCALL_REP_FIELD_MASK) > rep_count)
        fail("more reps completed than requested", control, result);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size < 1)
        return 0;
    // Fresh per input (RAM is mapped lazily, so this is cheap): an input's
    // outcome never depends on what earlier ones wrote.
    PhysicalMemory memory(RAM);
    NullApic apic;
    VirtualClock clock(VirtualClock::Mode::Deterministic);
    u64 instructions = 0;
    clock.set_instruction_counter([&instructions] { return instructions; });
    HvConfig config;
    config.vp_count = VPS;
    config.rep_batch = 1 + data[0] % 16; // continuations at any batch size
    HyperV hv(config, memory, clock, apic);
    if (!hv.write_msr(0, HV_X64_MSR_GUEST_OS_ID, 0x8100000000000000ull) ||
        !hv.write_msr(0, HV_X64_MSR_HYPERCALL, 0x200000 | HV_HYPERCALL_ENABLE))
        fail("hypercall page set-up refused", 0, 0);
    hv.set_tlb_flush_handler([](unsigned vp, const TlbFlushRequest& r) {
        if (vp >= VPS || r.ranges.size() > 4096)
            fail("flush request out of range", vp, r.ranges.size());
    });
    hv.connections().add_message_port(4, [](unsigned, u32, std::span<const u8> payload) {
        if (payload.size() > HV_MESSAGE_MAX_PAYLOAD)
            fail("message payload larger than the TLFS allows", 0, payload.size());
        return HvStatus::Success;
    });
    hv.connections().add_event_port(1, 8, [](unsigned, u16 flag) {
        if (flag >= 8)
            fail("event flag out of range", 0, flag);
        return HvStatus::Success;
    });

    ByteReader in(data + 1, size - 1);
    // The first calls' parameters, then the input pages' contents, then
    // further calls: a short sequence sees state the earlier calls left.
    const unsigned calls = 1 + data[0] / 64;
    const size_t header = calls * (1 + 8 + 1 + 8 + 8 + 12 * 8);
    ByteReader params(data + 1, size - 1 < header ? size - 1 : header);
    in.skip(header);
    static u8 page_bytes[2 * PAGE_SIZE];
    std::memset(page_bytes, 0, sizeof page_bytes);
    const size_t n = in.remaining() < sizeof page_bytes ? in.remaining() : sizeof page_bytes;
    std::memcpy(page_bytes, in.here(), n);
    memory.write_bytes(INPUT_PAGES, page_bytes, sizeof page_bytes);
    for (unsigned i = 0; i < calls; ++i)
        one_call(hv, params);
    return 0;
}
