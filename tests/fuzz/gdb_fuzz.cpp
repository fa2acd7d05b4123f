// Fuzz target: the bytes a gdb client sends (frontend/gdb/gdb_session.h)
// against an in-memory target. Whatever arrives, the session must not
// crash, hang or hold more than one packet of input, and everything it sends
// must be acknowledgments or well-formed packets with good checksums. A
// violation aborts so the fuzzer reports it.
//
// The first byte chooses how the rest is read: bit 0 set means each byte
// picks a packet or fragment from a dictionary (so the seeded smoke run,
// whose inputs are random bytes, reaches the commands); the upper bits set
// how many bytes go to each receive() call.
#include "frontend/gdb/gdb_session.h"

#include <cstdio>
#include <cstdlib>

namespace {

const char* const PACKETS[] = {
    "qSupported:swbreak+", "?", "g", "G00", "p10", "p51", "p52", "P0=0102030405060708", "P4b=00",
    "m1000,10", "m0,ffffffffffffffff", "M1000,2:abcd", "X1000,1:\x7d\x5d", "Z0,1000,1", "z0,1000,1",
    "Z2,1008,8", "Z3,1008,4", "Z4,1000,1000", "z2,1008,8", "c", "s", "C05;1000", "vCont;s:1;c",
    "vCont;c", "vCont;s:2", "vCont;x", "vCont?", "Hg1", "Hg2", "Hc-1", "Hgp1.2", "T1", "T9",
    "qfThreadInfo", "qsThreadInfo", "qC", "qAttached", "qThreadExtraInfo,1",
    "qXfer:features:read:target.xml:0,400", "qXfer:features:read:target.xml:ffff,10",
    "qRcmd,68656c70", "qRcmd,696e666f207265676973746572", "qRcmd,706879732x", "QStartNoAckMode",
    "qqemu.PhyMemMode", "Qqemu.PhyMemMode:1", "D", "k", "vKill;1", "bc", "bs",
};
constexpr size_t PACKET_COUNT = sizeof(PACKETS) / sizeof(PACKETS[0]);
const char* const FRAGMENTS[] = {"$", "#", "}", "*", "+", "-", "\x03", "#00", "00", ",", ":", ";"};
constexpr size_t FRAGMENT_COUNT = sizeof(FRAGMENTS) / sizeof(FRAGMENTS[0]);

struct MemoryTarget final : GdbTarget {
    std::vector<CpuState> cpus = std::vector<CpuState>(2);
    std::vector<u8> memory = std::vector<u8>(0x4000);
    bool running = false;
    std::vector<GdbStop> pending;

    unsigned vcpu_count() const override { return 2; }
    std::optional<CpuState> registers(unsigned vcpu) override { return cpus.at(vcpu); }
    bool set_registers(unsigned vcpu, const CpuState& state) override
    {
        cpus.at(vcpu) = state;
        return true;
    }
    size_t read_memory(unsigned, u64 address, std::span<u8> out, bool) override
    {
        size_t n = 0;
        for (; n < out.size() && address + n < memory.size() && address + n >= address; ++n)
            out[n] = memory[address + n];
        return n;
    }
    size_t write_memory(unsigned, u64 address, std::span<const u8> data, bool) override
    {
        size_t n = 0;
        for (; n < data.size() && address + n < memory.size() && address + n >= address; ++n)
            memory[address + n] = data[n];
        return n;
    }
    bool set_debug_points(const std::vector<u64>& b, const std::vector<Watchpoint>& w) override
    {
        if (b.size() > GdbSession::MAX_BREAKPOINTS || w.size() > GdbSession::MAX_WATCHPOINTS)
            std::abort();
        return true;
    }
    bool resume(std::optional<unsigned> step) override
    {
        running = true;
        pending.push_back(GdbStop{step ? GdbStop::Reason::Step : GdbStop::Reason::Breakpoint,
                                  step.value_or(1), 0x1000, WatchKind::Write, 0});
        return true;
    }
    void interrupt() override { pending.push_back(GdbStop{}); }
    bool attach() override { return true; }
    void kill() override {}
};

[[noreturn]] void fail(const char* what, const std::string& out)
{
    std::fprintf(stderr, "gdb_fuzz: %s: %.300s\n", what, out.c_str());
    std::abort();
}

// Everything a stub sends is '+', '-' or a packet with a good checksum.
void check_output(const std::string& out)
{
    GdbPacketParser parser(1 << 20);
    std::vector<GdbInput> inputs;
    parser.receive(out, inputs);
    for (const GdbInput& input : inputs)
        if (input.kind == GdbInput::Kind::Bad || input.kind == GdbInput::Kind::Interrupt)
            fail("malformed output", out);
    if (parser.buffered() != 0)
        fail("unterminated packet", out);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t mode = data[0];
    ++data;
    --size;
    std::string input;
    if (mode & 1) {
        for (size_t i = 0; i < size && input.size() < 16384; ++i) {
            const uint8_t pick = data[i];
            if (pick & 0x80)
                input += FRAGMENTS[pick % FRAGMENT_COUNT];
            else
                input += gdb_frame(PACKETS[pick % PACKET_COUNT]);
        }
    } else {
        input.assign(reinterpret_cast<const char*>(data), size);
    }
    MemoryTarget target;
    GdbSession session(target);
    const size_t chunk = 1 + (mode >> 1);
    for (size_t at = 0; at < input.size() && !session.closed(); at += chunk) {
        session.receive(std::string_view(input).substr(at, chunk));
        if (session.buffered_input() > GdbPacketParser::DEFAULT_MAX_PAYLOAD)
            fail("input held beyond one packet", input);
        // Stops arrive between pieces, as from the machine's thread.
        for (const GdbStop& stop : target.pending)
            session.report_stop(stop);
        target.pending.clear();
        check_output(session.take_output());
    }
    return 0;
}
