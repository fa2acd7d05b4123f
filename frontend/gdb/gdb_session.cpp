#include "frontend/gdb/gdb_session.h"

#include "frontend/gdb/gdb_registers.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <initializer_list>

namespace {

// gdb's signal numbers in stop replies (gdb/signals.def).
constexpr int SIGNAL_INT = 2, SIGNAL_TRAP = 5;

std::optional<u64> parse_hex(std::string_view text)
{
    if (text.empty() || text.size() > 16)
        return std::nullopt;
    u64 value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
    if (ec != std::errc{} || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

std::string hex_number(u64 value)
{
    char buffer[20];
    std::snprintf(buffer, sizeof buffer, "%llx", static_cast<unsigned long long>(value));
    return buffer;
}

// Joins pieces by appending (`"T" + std::string` trips GCC 12's false
// -Wrestrict positive at -O3).
std::string cat(std::initializer_list<std::string_view> pieces)
{
    std::string out;
    for (std::string_view piece : pieces)
        out += piece;
    return out;
}

std::string hex_byte(unsigned value)
{
    char buffer[4];
    std::snprintf(buffer, sizeof buffer, "%02x", value & 0xFF);
    return buffer;
}

// "ADDR,LENGTH" (m, M, X, Z, qXfer offsets).
bool parse_address_length(std::string_view text, u64& address, u64& length)
{
    const size_t comma = text.find(',');
    if (comma == std::string_view::npos)
        return false;
    const auto a = parse_hex(text.substr(0, comma)), l = parse_hex(text.substr(comma + 1));
    if (!a || !l)
        return false;
    address = *a;
    length = *l;
    return true;
}

// Errors gdb prints as numbers; E14 is EFAULT, as gdbserver and QEMU send
// for memory that cannot be reached, E22 EINVAL for a malformed request.
constexpr const char* E_FAULT = "E14";
constexpr const char* E_INVALID = "E22";
constexpr const char* E_GONE = "E01";

} // namespace

GdbSession::GdbSession(GdbTarget& target) : m_target(target) {}

void GdbSession::receive(std::string_view bytes)
{
    std::vector<GdbInput> inputs;
    m_parser.receive(bytes, inputs);
    for (GdbInput& input : inputs) {
        if (m_closed)
            return;
        switch (input.kind) {
        case GdbInput::Kind::Packet:
            if (!m_no_ack)
                m_output += '+';
            handle(input.payload);
            break;
        case GdbInput::Kind::Bad:
            if (!m_no_ack)
                m_output += '-';
            break;
        case GdbInput::Kind::Nack:
            if (!m_no_ack && !m_last_sent.empty())
                m_output += m_last_sent;
            break;
        case GdbInput::Kind::Ack:
            break;
        case GdbInput::Kind::Interrupt:
            // Only a running machine is stopped; the stop reply follows
            // from the target (report_stop).
            if (m_running)
                m_target.interrupt();
            break;
        }
    }
}

std::string GdbSession::take_output()
{
    std::string out;
    out.swap(m_output);
    return out;
}

void GdbSession::send(std::string_view payload) { send_raw(gdb_frame(payload)); }

void GdbSession::send_raw(std::string framed)
{
    m_output += framed;
    if (!m_no_ack)
        m_last_sent = std::move(framed);
}

void GdbSession::handle(std::string_view packet)
{
    const bool start_no_ack = packet == "QStartNoAckMode";
    if (std::optional<std::string> reply = dispatch(packet))
        send(*reply);
    // The OK to QStartNoAckMode is still acknowledged; nothing after it is
    // (gdb manual, "Packet Acknowledgment").
    if (start_no_ack) {
        m_no_ack = true;
        m_last_sent.clear();
    }
}

std::string GdbSession::stop_reply(const GdbStop& stop) const
{
    if (stop.reason == GdbStop::Reason::Exited)
        return cat({"W", hex_byte(static_cast<unsigned>(stop.status))});
    const int signal = stop.reason == GdbStop::Reason::Interrupt ? SIGNAL_INT : SIGNAL_TRAP;
    std::string reply = cat({"T", hex_byte(signal)});
    switch (stop.reason) {
    case GdbStop::Reason::Breakpoint: {
        const auto it = m_breakpoints.find(stop.address);
        const bool software = it == m_breakpoints.end() || (it->second & 1);
        reply += software ? "swbreak:;" : "hwbreak:;";
        break;
    }
    case GdbStop::Reason::Watchpoint:
        reply += stop.watch == WatchKind::Write  ? "watch:"
                 : stop.watch == WatchKind::Read ? "rwatch:"
                                                 : "awatch:";
        reply += hex_number(stop.address) + ";";
        break;
    default:
        break;
    }
    if (stop.history_begin)
        reply += "replaylog:begin;";
    reply += cat({"thread:", hex_number(stop.vcpu + 1), ";"});
    return reply;
}

void GdbSession::report_stop(const GdbStop& stop)
{
    // An interrupt that crossed a stop on its way (a breakpoint hit just
    // before) has nothing left to stop.
    if (!m_running && stop.reason == GdbStop::Reason::Interrupt)
        return;
    GdbStop seen = stop;
    // Ctrl-C stops the whole machine; it is reported on the thread gdb
    // resumed last (QEMU reports its current CPU likewise).
    if (seen.reason == GdbStop::Reason::Interrupt)
        seen.vcpu = m_c_thread;
    if (seen.vcpu >= m_target.vcpu_count())
        seen.vcpu = 0;
    m_last_stop = seen;
    if (seen.reason != GdbStop::Reason::Exited) {
        m_g_thread = m_c_thread = seen.vcpu;
    }
    if (!m_running)
        return;
    m_running = false;
    send(stop_reply(seen));
    if (seen.reason == GdbStop::Reason::Exited)
        m_closed = true;
}

void GdbSession::detach()
{
    m_breakpoints.clear();
    m_watchpoints.clear();
    update_target_points();
    if (!m_running)
        m_target.resume(std::nullopt);
    m_running = true;
}

bool GdbSession::update_target_points()
{
    std::vector<u64> addresses;
    addresses.reserve(m_breakpoints.size());
    for (const auto& [address, kinds] : m_breakpoints)
        addresses.push_back(address);
    return m_target.set_debug_points(addresses, m_watchpoints);
}

std::optional<unsigned> GdbSession::parse_thread(std::string_view text) const
{
    // "p<pid>.<tid>" (multiprocess syntax), "-1" (all), "0" (any), or a
    // thread id in hex.
    if (text.starts_with('p')) {
        const size_t dot = text.find('.');
        if (dot == std::string_view::npos)
            return m_g_thread;
        text = text.substr(dot + 1);
    }
    if (text == "-1" || text == "0")
        return m_g_thread;
    const std::optional<u64> id = parse_hex(text);
    if (!id || *id == 0 || *id > m_target.vcpu_count())
        return std::nullopt;
    return static_cast<unsigned>(*id - 1);
}

std::optional<std::string> GdbSession::dispatch(std::string_view packet)
{
    if (packet.empty())
        return "";
    const std::string_view args = packet.substr(1);
    switch (packet[0]) {
    case '?': {
        // Before any stop (gdb just attached): stopped by a trap on the
        // selected thread, as QEMU answers.
        GdbStop stop{GdbStop::Reason::Step, m_g_thread, 0, WatchKind::Write, 0};
        return stop_reply(m_last_stop.value_or(stop));
    }
    case 'g': {
        const std::optional<CpuState> state = m_target.registers(m_g_thread);
        if (!state)
            return E_GONE;
        return gdb_hex(gdb_read_registers(*state));
    }
    case 'G': {
        std::string bytes;
        if (!gdb_unhex(args, bytes))
            return E_INVALID;
        std::optional<CpuState> state = m_target.registers(m_g_thread);
        if (!state)
            return E_GONE;
        if (!gdb_write_registers(*state, bytes))
            return E_INVALID;
        return m_target.set_registers(m_g_thread, *state) ? "OK" : E_GONE;
    }
    case 'p': {
        const std::optional<u64> n = parse_hex(args);
        if (!n || *n >= GDB_REGISTER_COUNT)
            return E_INVALID;
        const std::optional<CpuState> state = m_target.registers(m_g_thread);
        if (!state)
            return E_GONE;
        return gdb_hex(gdb_read_register(*state, static_cast<unsigned>(*n)));
    }
    case 'P': {
        const size_t eq = args.find('=');
        std::string bytes;
        const std::optional<u64> n = parse_hex(args.substr(0, eq));
        if (eq == std::string_view::npos || !n || *n >= GDB_REGISTER_COUNT ||
            !gdb_unhex(args.substr(eq + 1), bytes))
            return E_INVALID;
        std::optional<CpuState> state = m_target.registers(m_g_thread);
        if (!state)
            return E_GONE;
        if (!gdb_write_register(*state, static_cast<unsigned>(*n), bytes))
            return E_INVALID;
        return m_target.set_registers(m_g_thread, *state) ? "OK" : E_GONE;
    }
    case 'm':
        return read_memory(args);
    case 'M':
        return write_memory(args, false);
    case 'X':
        return write_memory(args, true);
    case 'Z':
    case 'z':
        return breakpoint_packet(packet);
    case 'c':
    case 's':
    case 'C':
    case 'S':
        return resume_packet(packet);
    case 'v':
        return v_packet(packet);
    case 'b':
        // bs, bc: reverse step and continue (gdb manual, "Packets"); only
        // offered (qSupported) by a target that can.
        if (!m_target.can_reverse() || (packet != "bs" && packet != "bc"))
            return "";
        if (!m_target.reverse(m_c_thread, packet == "bs"))
            return E_GONE;
        m_running = true;
        return std::nullopt;
    case 'H': {
        if (args.empty())
            return E_INVALID;
        const std::optional<unsigned> thread = parse_thread(args.substr(1));
        if (!thread)
            return E_INVALID;
        if (args[0] == 'g')
            m_g_thread = *thread;
        else if (args[0] == 'c')
            m_c_thread = *thread;
        else
            return E_INVALID;
        return "OK";
    }
    case 'T':
        return parse_thread(args) ? "OK" : E_INVALID;
    case 'q':
    case 'Q':
        return query(packet);
    case 'D':
        detach();
        m_closed = true;
        return "OK";
    case 'k':
        m_closed = true;
        m_target.kill();
        return std::nullopt; // no reply (gdb manual, "k")
    default:
        return ""; // unsupported: the empty reply
    }
}

std::string GdbSession::read_memory(std::string_view args)
{
    u64 address, length;
    if (!parse_address_length(args, address, length))
        return E_INVALID;
    length = std::min<u64>(length, MAX_MEMORY_TRANSFER);
    std::string bytes(length, '\0');
    const size_t got = m_target.read_memory(
        m_g_thread, address, {reinterpret_cast<u8*>(bytes.data()), bytes.size()}, m_physical);
    if (got == 0 && length != 0)
        return E_FAULT;
    // A short read is a success with fewer bytes (gdb manual, "m").
    bytes.resize(got);
    return gdb_hex(bytes);
}

std::string GdbSession::write_memory(std::string_view args, bool binary)
{
    const size_t colon = args.find(':');
    u64 address, length;
    if (colon == std::string_view::npos || !parse_address_length(args.substr(0, colon), address, length))
        return E_INVALID;
    std::string bytes;
    const std::string_view data = args.substr(colon + 1);
    if (binary)
        bytes = std::string(data);
    else if (!gdb_unhex(data, bytes))
        return E_INVALID;
    if (bytes.size() != length)
        return E_INVALID;
    if (length == 0)
        return "OK"; // X with no data probes for binary download support
    const size_t wrote = m_target.write_memory(
        m_g_thread, address, {reinterpret_cast<const u8*>(bytes.data()), bytes.size()}, m_physical);
    return wrote == bytes.size() ? "OK" : E_FAULT;
}

std::string GdbSession::breakpoint_packet(std::string_view packet)
{
    // Z<type>,<addr>,<kind>[;cond...]: conditions and commands are not
    // offered (qSupported), so anything after the kind is ignored.
    const bool insert = packet[0] == 'Z';
    std::string_view rest = packet.substr(1);
    rest = rest.substr(0, rest.find(';'));
    const size_t first = rest.find(',');
    if (first == std::string_view::npos)
        return E_INVALID;
    const std::optional<u64> type = parse_hex(rest.substr(0, first));
    u64 address, kind;
    if (!type || !parse_address_length(rest.substr(first + 1), address, kind))
        return E_INVALID;
    if (*type > 4)
        return ""; // unknown types: unsupported
    if (*type <= 1) {
        const u8 bit = *type == 0 ? 1 : 2;
        if (insert) {
            if (!m_breakpoints.contains(address) && m_breakpoints.size() >= MAX_BREAKPOINTS)
                return E_INVALID;
            m_breakpoints[address] |= bit;
        } else if (auto it = m_breakpoints.find(address); it != m_breakpoints.end()) {
            it->second &= static_cast<u8>(~bit);
            if (!it->second)
                m_breakpoints.erase(it);
        }
    } else {
        if (kind == 0 || kind > MAX_WATCH_LENGTH)
            return E_INVALID;
        const WatchKind watch = *type == 2 ? WatchKind::Write : *type == 3 ? WatchKind::Read : WatchKind::Access;
        const Watchpoint w{address, kind, watch};
        const auto it = std::find(m_watchpoints.begin(), m_watchpoints.end(), w);
        if (insert) {
            if (it == m_watchpoints.end()) {
                if (m_watchpoints.size() >= MAX_WATCHPOINTS)
                    return E_INVALID;
                m_watchpoints.push_back(w);
            }
        } else if (it != m_watchpoints.end()) {
            m_watchpoints.erase(it);
        }
    }
    return update_target_points() ? "OK" : E_GONE;
}

std::optional<std::string> GdbSession::resume(std::optional<unsigned> step)
{
    if (!m_target.resume(step))
        return E_GONE;
    m_running = true;
    return std::nullopt; // the stop reply comes with report_stop
}

std::optional<std::string> GdbSession::resume_packet(std::string_view packet)
{
    // c [addr], s [addr], C sig[;addr], S sig[;addr]: the signal is
    // meaningless to a machine and ignored; an address moves RIP first.
    std::string_view address_text = packet.substr(1);
    if (packet[0] == 'C' || packet[0] == 'S') {
        const size_t semicolon = address_text.find(';');
        address_text = semicolon == std::string_view::npos ? std::string_view() : address_text.substr(semicolon + 1);
    }
    if (!address_text.empty()) {
        const std::optional<u64> address = parse_hex(address_text);
        if (!address)
            return E_INVALID;
        std::optional<CpuState> state = m_target.registers(m_c_thread);
        if (!state)
            return E_GONE;
        state->rip = *address;
        if (!m_target.set_registers(m_c_thread, *state))
            return E_GONE;
    }
    const bool step = packet[0] == 's' || packet[0] == 'S';
    return resume(step ? std::optional<unsigned>(m_c_thread) : std::nullopt);
}

std::optional<std::string> GdbSession::v_packet(std::string_view packet)
{
    if (packet == "vCont?")
        return "vCont;c;C;s;S";
    if (packet == "vMustReplyEmpty")
        return "";
    if (packet == "vKill" || packet.starts_with("vKill;")) {
        m_closed = true;
        m_target.kill();
        return "OK";
    }
    if (!packet.starts_with("vCont;"))
        return "";
    // vCont;action[:thread];...: the first action that applies to a thread
    // wins (gdb manual, "vCont"). In all-stop a step of one thread leaves the
    // others stopped here: the step ends the resumption before they would run.
    std::optional<unsigned> step;
    bool any = false;
    std::string_view rest = packet.substr(6);
    while (!rest.empty()) {
        const size_t semicolon = rest.find(';');
        std::string_view action = rest.substr(0, semicolon);
        rest = semicolon == std::string_view::npos ? std::string_view() : rest.substr(semicolon + 1);
        const size_t colon = action.find(':');
        const std::string_view verb = action.substr(0, colon);
        std::optional<unsigned> thread;
        if (colon != std::string_view::npos) {
            thread = parse_thread(action.substr(colon + 1));
            if (!thread)
                return E_INVALID;
        }
        if (verb.empty())
            return E_INVALID;
        if (verb[0] == 's' || verb[0] == 'S') {
            if (!step)
                step = thread.value_or(m_c_thread);
            any = true;
        } else if (verb[0] == 'c' || verb[0] == 'C') {
            any = true;
        } else if (verb[0] != 't') {
            return E_INVALID; // r (range step) is not offered
        }
    }
    if (!any)
        return E_INVALID;
    return resume(step);
}

std::optional<std::string> GdbSession::query(std::string_view packet)
{
    if (packet.starts_with("qSupported")) {
        std::string features = cat({"PacketSize=", hex_number(GdbPacketParser::DEFAULT_MAX_PAYLOAD)});
        features += ";qXfer:features:read+;vContSupported+;swbreak+;hwbreak+;QStartNoAckMode+";
        if (m_target.can_reverse())
            features += ";ReverseStep+;ReverseContinue+";
        return features;
    }
    if (packet == "QStartNoAckMode")
        return "OK";
    if (packet.starts_with("qXfer:features:read:")) {
        std::string_view rest = packet.substr(20);
        const size_t colon = rest.find(':');
        if (colon == std::string_view::npos)
            return E_INVALID;
        if (rest.substr(0, colon) != "target.xml")
            return "E00"; // no such annex
        u64 offset, length;
        if (!parse_address_length(rest.substr(colon + 1), offset, length))
            return E_INVALID;
        const std::string_view xml = gdb_target_xml();
        if (offset >= xml.size())
            return "l";
        length = std::min<u64>(length, MAX_MEMORY_TRANSFER);
        const std::string_view piece = xml.substr(offset, length);
        return cat({offset + piece.size() >= xml.size() ? "l" : "m", piece});
    }
    if (packet == "qfThreadInfo") {
        std::string reply = "m";
        for (unsigned i = 0; i < m_target.vcpu_count(); ++i)
            reply += cat({i ? "," : "", hex_number(i + 1)});
        return reply;
    }
    if (packet == "qsThreadInfo")
        return "l";
    if (packet == "qC")
        return cat({"QC", hex_number(m_g_thread + 1)});
    if (packet == "qAttached" || packet.starts_with("qAttached:"))
        return "1"; // attached to a running machine: detaching leaves it running
    if (packet.starts_with("qThreadExtraInfo,")) {
        const std::optional<unsigned> thread = parse_thread(packet.substr(17));
        if (!thread)
            return E_INVALID;
        std::string text = cat({"CPU#", std::to_string(*thread)});
        if (const std::string state = m_target.thread_state(*thread); !state.empty())
            text += cat({" [", state, "]"});
        return gdb_hex(text);
    }
    if (packet.starts_with("qRcmd,"))
        return monitor(packet.substr(6));
    // QEMU's physical-memory mode packets (gdbstub/system.c), for clients
    // that use them.
    if (packet == "qqemu.PhyMemMode")
        return m_physical ? "1" : "0";
    if (packet == "Qqemu.PhyMemMode:1" || packet == "Qqemu.PhyMemMode:0") {
        m_physical = packet.back() == '1';
        return "OK";
    }
    return "";
}

std::string GdbSession::monitor(std::string_view hex_command)
{
    std::string command;
    if (!gdb_unhex(hex_command, command))
        return E_INVALID;
    const std::string text = monitor_command(command);
    // The output as O packets (hex), then the final OK (gdb manual, "qRcmd").
    constexpr size_t CHUNK = 0x400;
    for (size_t at = 0; at < text.size(); at += CHUNK)
        send(cat({"O", gdb_hex(std::string_view(text).substr(at, CHUNK))}));
    return "OK";
}

std::string GdbSession::monitor_command(std::string_view command)
{
    while (!command.empty() && command.back() == ' ')
        command.remove_suffix(1);
    if (command == "help" || command.empty())
        return "viridian monitor commands:\n"
               "  help                 this text\n"
               "  info registers       the selected vCPU's registers, system ones included\n"
               "  info cpus            every vCPU: thread, RIP, halted or running\n"
               "  info replay          record or replay, its file, the instruction count now\n"
               "  phys on|off          m/M/X packets address physical (on) or virtual (off) memory\n"
               "  phys                 which of the two is in effect\n";
    if (command == "phys on" || command == "phys off") {
        m_physical = command == "phys on";
        return std::string("memory accesses are ") + (m_physical ? "physical\n" : "virtual\n");
    }
    if (command == "phys")
        return std::string("memory accesses are ") + (m_physical ? "physical\n" : "virtual\n");
    const auto line = [](const char* name, u64 value) {
        char buffer[64];
        std::snprintf(buffer, sizeof buffer, "%-8s 0x%016llx\n", name, static_cast<unsigned long long>(value));
        return std::string(buffer);
    };
    if (command == "info registers" || command == "info reg") {
        const std::optional<CpuState> s = m_target.registers(m_g_thread);
        if (!s)
            return "the machine has stopped running\n";
        std::string out = cat({"CPU#", std::to_string(m_g_thread), "\n"});
        const char* names[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                               "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
        for (unsigned i = 0; i < 16; ++i)
            out += line(names[i], s->gpr[i]);
        out += line("rip", s->rip) + line("rflags", s->rflags);
        const char* segs[] = {"es", "cs", "ss", "ds", "fs", "gs"};
        for (unsigned i = 0; i < SEG_COUNT; ++i) {
            char buffer[96];
            std::snprintf(buffer, sizeof buffer, "%-8s 0x%04x base 0x%016llx limit 0x%08x attr 0x%04x\n",
                          segs[i], s->seg[i].selector, static_cast<unsigned long long>(s->seg[i].base),
                          s->seg[i].limit, s->seg[i].attr);
            out += buffer;
        }
        out += line("gdt", s->gdtr.base) + line("idt", s->idtr.base);
        out += line("cr0", s->cr0) + line("cr2", s->cr2) + line("cr3", s->cr3) + line("cr4", s->cr4) +
               line("cr8", s->cr8) + line("efer", s->msr.efer);
        for (unsigned i = 0; i < 8; ++i)
            out += line(cat({"dr", std::to_string(i)}).c_str(), s->dr[i]);
        return out;
    }
    if (command == "info replay")
        return m_target.replay_info();
    if (command == "info cpus") {
        std::string out;
        for (unsigned i = 0; i < m_target.vcpu_count(); ++i) {
            const std::optional<CpuState> s = m_target.registers(i);
            if (!s)
                return "the machine has stopped running\n";
            char buffer[96];
            std::snprintf(buffer, sizeof buffer, "%c CPU #%u: thread %u rip 0x%016llx%s\n",
                          i == m_g_thread ? '*' : ' ', i, i + 1, static_cast<unsigned long long>(s->rip),
                          s->events.halted ? " (halted)" : "");
            out += buffer;
        }
        return out;
    }
    return cat({"unknown command '", command, "'; try 'monitor help'\n"});
}
