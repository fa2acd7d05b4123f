// One gdb connection as bytes in and bytes out (no transport, like
// frontend/qmp/qmp_session.h): the remote protocol's packets (gdb manual,
// "Packets", "General Query Packets", "Stop Reply Packets") answered against
// a GdbTarget. All-stop: one thread per vCPU, thread id = vCPU index + 1.
// Breakpoints and watchpoints are kept here and handed to the target as a
// whole set, which keeps them in the emulator (never 0xCC in guest memory).
//
// Single-threaded: runs on the event loop's thread.
#pragma once

#include "frontend/gdb/gdb_packet.h"
#include "frontend/gdb/gdb_target.h"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

class GdbSession {
public:
    // A session starts with the machine stopped (the server stops it when
    // gdb connects, as QEMU's gdbstub does).
    explicit GdbSession(GdbTarget& target);

    // Takes bytes from the client, in pieces of any size.
    void receive(std::string_view bytes);
    // The bytes to send to the client; the session forgets them.
    std::string take_output();
    size_t pending_output() const { return m_output.size(); }
    size_t buffered_input() const { return m_parser.buffered(); }

    // The target stopped. If gdb is waiting for a stop (after a resume or an
    // interrupt) it gets the stop reply; otherwise the stop is remembered
    // for `?`.
    void report_stop(const GdbStop& stop);
    bool running() const { return m_running; }
    // After `D` or `k`: the transport closes the connection once the output
    // is sent.
    bool closed() const { return m_closed; }
    // The client went away: every breakpoint and watchpoint is removed and a
    // stopped machine continues (as after `D`).
    void detach();

    // Limits on what a client may make the host keep.
    static constexpr size_t MAX_BREAKPOINTS = 4096;
    static constexpr size_t MAX_WATCHPOINTS = 64;
    static constexpr size_t MAX_WATCH_LENGTH = 4096;
    // The largest memory transfer in one m/M/X packet (fits PacketSize).
    static constexpr size_t MAX_MEMORY_TRANSFER = 0x1F00;

private:
    void handle(std::string_view packet);
    void send(std::string_view payload);
    void send_raw(std::string framed);
    std::optional<std::string> dispatch(std::string_view packet);
    std::string stop_reply(const GdbStop& stop) const;
    std::optional<std::string> query(std::string_view packet);
    std::optional<std::string> resume_packet(std::string_view packet);
    std::optional<std::string> v_packet(std::string_view packet);
    std::string breakpoint_packet(std::string_view packet);
    std::string read_memory(std::string_view args);
    std::string write_memory(std::string_view args, bool binary);
    std::string monitor(std::string_view hex_command);
    std::string monitor_command(std::string_view command);
    std::optional<std::string> resume(std::optional<unsigned> step);
    std::optional<unsigned> parse_thread(std::string_view text) const;
    bool update_target_points();

    GdbTarget& m_target;
    GdbPacketParser m_parser;
    std::string m_output;
    std::string m_last_sent; // resent on `-`
    bool m_no_ack = false;
    bool m_running = false;
    bool m_closed = false;
    unsigned m_g_thread = 0; // vCPU for registers and memory (Hg)
    unsigned m_c_thread = 0; // vCPU for s/c without a thread (Hc)
    bool m_physical = false;  // m/M/X address physical memory (monitor phys on)
    // Address → which kinds are set there: bit 0 Z0 (software), bit 1 Z1.
    std::map<u64, u8> m_breakpoints;
    std::vector<Watchpoint> m_watchpoints;
    std::optional<GdbStop> m_last_stop;
};
