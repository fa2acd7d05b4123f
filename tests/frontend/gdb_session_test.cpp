// A gdb session (frontend/gdb/gdb_session.h) against a fake target: the
// replies gdb's manual specifies ("Packets", "General Query Packets", "Stop
// Reply Packets"), and what the session asks of the target.
#include "frontend/gdb/gdb_registers.h"
#include "frontend/gdb/gdb_session.h"

#include <doctest/doctest.h>

#include <cstring>
#include <map>

namespace {

struct FakeTarget final : GdbTarget {
    std::vector<CpuState> cpus = std::vector<CpuState>(2);
    std::vector<u8> memory = std::vector<u8>(0x2000); // virtual 0x1000-0x2FFF
    std::vector<u64> breakpoints;
    std::vector<Watchpoint> watchpoints;
    std::optional<std::optional<unsigned>> resumed; // the last resume(step)
    int interrupts = 0, attaches = 0, kills = 0;
    bool reversible = false;

    unsigned vcpu_count() const override { return 2; }
    bool can_reverse() const override { return reversible; }
    std::optional<CpuState> registers(unsigned vcpu) override { return cpus.at(vcpu); }
    bool set_registers(unsigned vcpu, const CpuState& state) override
    {
        cpus.at(vcpu) = state;
        return true;
    }
    size_t read_memory(unsigned, u64 address, std::span<u8> out, bool) override
    {
        size_t n = 0;
        for (; n < out.size() && address + n >= 0x1000 && address + n < 0x3000; ++n)
            out[n] = memory[address + n - 0x1000];
        return n;
    }
    size_t write_memory(unsigned, u64 address, std::span<const u8> data, bool) override
    {
        size_t n = 0;
        for (; n < data.size() && address + n >= 0x1000 && address + n < 0x3000; ++n)
            memory[address + n - 0x1000] = data[n];
        return n;
    }
    bool set_debug_points(const std::vector<u64>& b, const std::vector<Watchpoint>& w) override
    {
        breakpoints = b;
        watchpoints = w;
        return true;
    }
    bool resume(std::optional<unsigned> step) override
    {
        resumed = step;
        return true;
    }
    std::optional<std::pair<unsigned, bool>> reversed; // the last reverse(vcpu, step)
    bool reverse(unsigned vcpu, bool step) override
    {
        reversed = {vcpu, step};
        return true;
    }
    void interrupt() override { ++interrupts; }
    bool attach() override
    {
        ++attaches;
        return true;
    }
    void kill() override { ++kills; }
};

// Sends one packet and returns the payloads of the packets that came back
// (acknowledgments dropped).
std::vector<std::string> exchange(GdbSession& session, std::string_view payload)
{
    session.receive(gdb_frame(payload));
    const std::string out = session.take_output();
    std::vector<std::string> replies;
    GdbPacketParser parser(1 << 20);
    std::vector<GdbInput> inputs;
    parser.receive(out, inputs);
    for (GdbInput& input : inputs)
        if (input.kind == GdbInput::Kind::Packet)
            replies.push_back(input.payload);
    return replies;
}

// Joins by appending (`"G" + std::string` trips GCC 12's false -Wrestrict
// positive at -O3).
std::string cat(std::string_view a, std::string_view b)
{
    std::string out(a);
    out += b;
    return out;
}

std::string one(GdbSession& session, std::string_view payload)
{
    const auto replies = exchange(session, payload);
    REQUIRE(replies.size() == 1);
    return replies[0];
}

} // namespace

TEST_CASE("gdb's qSupported is answered with the stub's features, reverse ones only when the target can")
{
    FakeTarget target;
    GdbSession session(target);
    const std::string reply = one(session, "qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386");
    CHECK(reply.find("PacketSize=4000") != std::string::npos);
    for (const char* feature : {"qXfer:features:read+", "vContSupported+", "swbreak+", "hwbreak+", "QStartNoAckMode+"})
        CHECK(reply.find(feature) != std::string::npos);
    CHECK(reply.find("Reverse") == std::string::npos);
    target.reversible = true;
    CHECK(one(session, "qSupported").find("ReverseStep+;ReverseContinue+") != std::string::npos);
}

TEST_CASE("A gdb session acknowledges packets until QStartNoAckMode, and resends on a nack")
{
    FakeTarget target;
    GdbSession session(target);
    session.receive(gdb_frame("qC"));
    const std::string first = session.take_output();
    CHECK(first == cat("+", gdb_frame("QC1")));
    session.receive("-");
    CHECK(session.take_output() == gdb_frame("QC1"));
    session.receive("$g#00"); // bad checksum
    CHECK(session.take_output() == "-");
    session.receive(gdb_frame("QStartNoAckMode"));
    CHECK(session.take_output() == cat("+", gdb_frame("OK")));
    session.receive(gdb_frame("qC"));
    CHECK(session.take_output() == gdb_frame("QC1"));
}

TEST_CASE("The target description is read in pieces and names the x86-64 features")
{
    FakeTarget target;
    GdbSession session(target);
    std::string xml;
    for (u64 offset = 0;;) {
        char request[64];
        std::snprintf(request, sizeof request, "qXfer:features:read:target.xml:%llx,200",
                      static_cast<unsigned long long>(offset));
        const std::string reply = one(session, request);
        REQUIRE(!reply.empty());
        xml += reply.substr(1);
        offset += reply.size() - 1;
        if (reply[0] == 'l')
            break;
        REQUIRE(reply[0] == 'm');
    }
    CHECK(xml == gdb_target_xml());
    for (const char* feature : {"org.gnu.gdb.i386.core", "org.gnu.gdb.i386.sse", "org.gnu.gdb.i386.avx",
                                "org.gnu.gdb.i386.segments", "\"fs_base\"", "\"ymm15h\"", "\"cr3\"", "\"efer\""})
        CHECK(xml.find(feature) != std::string::npos);
    CHECK(one(session, "qXfer:features:read:other.xml:0,100") == "E00");
}

TEST_CASE("The g packet carries every register in the target description's order")
{
    FakeTarget target;
    target.cpus[0].gpr[RBX] = 0x1122334455667788;
    target.cpus[0].rip = 0xFFFFFFFF81000000;
    target.cpus[0].fpu.xmm[1] = {0x0102030405060708, 0x1112131415161718};
    target.cpus[0].fpu.ymm_high[1] = {0xAA, 0xBB};
    target.cpus[0].seg[FS].base = 0x7000;
    GdbSession session(target);
    std::string bytes;
    REQUIRE(gdb_unhex(one(session, "g"), bytes));
    CHECK(bytes.size() == 16 * 8 + 8 + 4 + 6 * 4 + 8 * 10 + 8 * 4 + 16 * 16 + 4 + 16 + 16 * 16 + 7 * 8);
    u64 rbx, rip;
    std::memcpy(&rbx, bytes.data() + 8, 8); // gdb's order: rax, rbx, ...
    std::memcpy(&rip, bytes.data() + 16 * 8, 8);
    CHECK(rbx == 0x1122334455667788);
    CHECK(rip == 0xFFFFFFFF81000000);
    CHECK(one(session, "p29") == "08070605040302011817161514131211"); // xmm1 is register 41
    CHECK(one(session, "p3c") == "aa00000000000000bb00000000000000"); // ymm1h is register 60
    CHECK(one(session, "p39") == "0070000000000000");                 // fs_base
}

TEST_CASE("P and G write registers of the selected thread; control registers stay read-only")
{
    FakeTarget target;
    GdbSession session(target);
    CHECK(one(session, "Hg2") == "OK");
    CHECK(one(session, "P0=efbeadde00000000") == "OK");
    CHECK(target.cpus[1].gpr[RAX] == 0xDEADBEEF);
    CHECK(target.cpus[0].gpr[RAX] == 0);
    CHECK(one(session, "P4b=0100000000000000") == "E22"); // cr0
    CHECK(one(session, cat("P4b=", gdb_hex(gdb_read_register(target.cpus[1], 75)))) == "OK");
    std::string all = gdb_read_registers(target.cpus[1]);
    const u64 rip = 0x42;
    std::memcpy(all.data() + 16 * 8, &rip, 8); // rip follows the 16 GPRs
    CHECK(one(session, cat("G", gdb_hex(all))) == "OK");
    CHECK(target.cpus[1].rip == 0x42);
    CHECK(one(session, "G123") == "E22");
}

TEST_CASE("Memory reads and writes go to the target; unreachable memory is E14 or a short read")
{
    FakeTarget target;
    GdbSession session(target);
    CHECK(one(session, "M1000,4:01020304") == "OK");
    CHECK(one(session, "m1000,4") == "01020304");
    CHECK(one(session, std::string("X1004,2:#\x05")) == "OK"); // framing escapes the '#'
    CHECK(one(session, "X1004,0:") == "OK");                     // the probe gdb sends first
    CHECK(target.memory[4] == '#');
    CHECK(target.memory[5] == 5);
    CHECK(one(session, "m5000,4") == "E14");
    CHECK(one(session, "m2ffe,4").size() == 4); // two bytes before the hole
    CHECK(one(session, "M5000,1:00") == "E14");
    CHECK(one(session, "m1000") == "E22");
    // A huge length is cut to what one packet carries.
    CHECK(one(session, "m1000,ffffffffffff").size() <= 2 * GdbSession::MAX_MEMORY_TRANSFER);
}

TEST_CASE("Breakpoints and watchpoints go to the target as one set, removed one by one")
{
    FakeTarget target;
    GdbSession session(target);
    CHECK(one(session, "Z0,1000,1") == "OK");
    CHECK(one(session, "Z1,2000,1") == "OK");
    CHECK(one(session, "Z2,3000,8") == "OK");
    CHECK(one(session, "Z3,3100,4") == "OK");
    CHECK(one(session, "Z4,3200,1") == "OK");
    CHECK(target.breakpoints == std::vector<u64>{0x1000, 0x2000});
    REQUIRE(target.watchpoints.size() == 3);
    CHECK(target.watchpoints[1] == Watchpoint{0x3100, 4, WatchKind::Read});
    CHECK(one(session, "z0,1000,1") == "OK");
    CHECK(one(session, "z2,3000,8") == "OK");
    CHECK(target.breakpoints == std::vector<u64>{0x2000});
    CHECK(target.watchpoints.size() == 2);
    CHECK(one(session, "Z2,3000,0") == "E22");
    CHECK(one(session, "Z9,3000,1") == "");
}

TEST_CASE("Continue and step resume the target; the stop reply names the thread and the reason")
{
    FakeTarget target;
    GdbSession session(target);
    CHECK(one(session, "Z0,1000,1") == "OK");
    CHECK(exchange(session, "vCont;c").empty());
    REQUIRE(target.resumed);
    CHECK(!*target.resumed);
    CHECK(session.running());
    session.report_stop(GdbStop{GdbStop::Reason::Breakpoint, 1, 0x1000, WatchKind::Write, 0});
    CHECK(session.take_output() == gdb_frame("T05swbreak:;thread:2;"));
    CHECK(one(session, "qC") == "QC2"); // the stopped thread is selected
    CHECK(exchange(session, "vCont;s:1;c").empty());
    CHECK(*target.resumed == 0u);
    session.report_stop(GdbStop{GdbStop::Reason::Step, 0, 0, WatchKind::Write, 0});
    CHECK(session.take_output() == gdb_frame("T05thread:1;"));
    CHECK(exchange(session, "c").empty());
    session.report_stop(GdbStop{GdbStop::Reason::Watchpoint, 0, 0x3000, WatchKind::Access, 0});
    CHECK(session.take_output() == gdb_frame("T05awatch:3000;thread:1;"));
    CHECK(one(session, "Z1,2000,1") == "OK");
    CHECK(exchange(session, "c").empty());
    session.report_stop(GdbStop{GdbStop::Reason::Breakpoint, 0, 0x2000, WatchKind::Write, 0});
    CHECK(session.take_output() == gdb_frame("T05hwbreak:;thread:1;"));
    CHECK(one(session, "vCont?") == "vCont;c;C;s;S");
    CHECK(one(session, "?") == "T05hwbreak:;thread:1;");
}

TEST_CASE("Ctrl-C interrupts a running target and the stop comes back as SIGINT")
{
    FakeTarget target;
    GdbSession session(target);
    session.receive("\x03");
    CHECK(target.interrupts == 0); // not running: nothing to stop
    CHECK(exchange(session, "c").empty());
    session.receive("\x03");
    CHECK(target.interrupts == 1);
    session.report_stop(GdbStop{GdbStop::Reason::Interrupt, 0, 0, WatchKind::Write, 0});
    CHECK(session.take_output() == gdb_frame("T02thread:1;"));
}

TEST_CASE("Threads are the vCPUs, numbered from one")
{
    FakeTarget target;
    target.cpus[1].events.halted = true;
    GdbSession session(target);
    CHECK(one(session, "qfThreadInfo") == "m1,2");
    CHECK(one(session, "qsThreadInfo") == "l");
    CHECK(one(session, "T2") == "OK");
    CHECK(one(session, "T3") == "E22");
    CHECK(one(session, "Hg3") == "E22");
    CHECK(one(session, "Hc-1") == "OK");
    std::string text;
    REQUIRE(gdb_unhex(one(session, "qThreadExtraInfo,2"), text));
    CHECK(text == "CPU#1 [halted]");
}

TEST_CASE("Monitor commands answer with O packets then OK, and switch to physical memory")
{
    FakeTarget target;
    GdbSession session(target);
    auto replies = exchange(session, cat("qRcmd,", gdb_hex("help")));
    REQUIRE(replies.size() >= 2);
    CHECK(replies[0][0] == 'O');
    CHECK(replies.back() == "OK");
    replies = exchange(session, cat("qRcmd,", gdb_hex("phys on")));
    CHECK(one(session, "qqemu.PhyMemMode") == "1");
    CHECK(one(session, "Qqemu.PhyMemMode:0") == "OK");
    replies = exchange(session, cat("qRcmd,", gdb_hex("info registers")));
    std::string text, piece;
    for (size_t i = 0; i + 1 < replies.size(); ++i) {
        REQUIRE(gdb_unhex(std::string_view(replies[i]).substr(1), piece));
        text += piece;
    }
    CHECK(text.find("cr3") != std::string::npos);
}

TEST_CASE("Detach removes every breakpoint and resumes; kill ends the run")
{
    FakeTarget target;
    GdbSession session(target);
    CHECK(one(session, "Z0,1000,1") == "OK");
    CHECK(one(session, "D") == "OK");
    CHECK(target.breakpoints.empty());
    REQUIRE(target.resumed);
    CHECK(session.closed());
    FakeTarget other;
    GdbSession killed(other);
    CHECK(exchange(killed, "k").empty());
    CHECK(other.kills == 1);
    CHECK(killed.closed());
}

TEST_CASE("Unknown gdb packets get the empty reply")
{
    FakeTarget target;
    GdbSession session(target);
    CHECK(one(session, "qTStatus") == "");
    CHECK(one(session, "vFile:open:x") == "");
    CHECK(one(session, "!") == "");
    CHECK(one(session, "bc") == "");
}

TEST_CASE("A gdb client cannot make the session keep unbounded breakpoints")
{
    FakeTarget target;
    GdbSession session(target);
    for (size_t i = 0; i < GdbSession::MAX_BREAKPOINTS; ++i)
        session.receive(gdb_frame(cat(cat("Z0,", std::to_string(i + 1)), ",1")));
    (void)session.take_output();
    CHECK(one(session, "Z0,ffffffff,1") == "E22");
    CHECK(target.breakpoints.size() == GdbSession::MAX_BREAKPOINTS);
}

TEST_CASE("bs and bc run the target backwards; the start of its history is replaylog:begin")
{
    FakeTarget target;
    GdbSession session(target);
    // Not offered: the empty reply, nothing asked of the target.
    CHECK(one(session, "bc").empty());
    CHECK_FALSE(target.reversed);
    target.reversible = true;
    CHECK(one(session, "Hc2") == "OK");
    CHECK(exchange(session, "bs").empty());
    REQUIRE(target.reversed);
    CHECK(*target.reversed == std::pair<unsigned, bool>{1, true});
    session.report_stop(GdbStop{GdbStop::Reason::Step, 1, 0, WatchKind::Write, 0, false});
    CHECK(session.take_output().find("T05thread:2;") != std::string::npos);
    CHECK(exchange(session, "bc").empty());
    CHECK(*target.reversed == std::pair<unsigned, bool>{1, false});
    GdbStop begin{GdbStop::Reason::Step, 0, 0, WatchKind::Write, 0, true};
    session.report_stop(begin);
    CHECK(session.take_output().find("T05replaylog:begin;thread:1;") != std::string::npos);
    CHECK(one(session, "bx").empty());
}

TEST_CASE("monitor info replay asks the target, which says when record/replay is not active")
{
    FakeTarget target;
    GdbSession session(target);
    const std::vector<std::string> replies = exchange(session, cat("qRcmd,", gdb_hex("info replay")));
    REQUIRE(replies.size() == 2);
    CHECK(replies[0] == cat("O", gdb_hex("Record/replay is not active\n")));
    CHECK(replies[1] == "OK");
}
