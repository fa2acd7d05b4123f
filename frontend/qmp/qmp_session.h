// The QEMU Machine Protocol (docs/interop/qmp-spec.rst in QEMU; docs/qmp.md)
// without any transport: a QmpSession is one client connection as bytes in
// and bytes out, so a socket, a pipe or a test can drive it. A QmpMonitor
// holds what all sessions of one machine share: the command registry, the
// clock that stamps events, and the list of sessions an event goes to.
//
// Single-threaded: the monitor, its sessions and the command handlers run on
// the event loop's thread.
#pragma once

#include "frontend/qmp/json_stream.h"
#include "frontend/qmp/qmp_commands.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

// qmp-spec.rst "Asynchronous events": seconds and microseconds since the
// Unix epoch, both -1 when the host time cannot be read.
struct QmpTimestamp {
    int64_t seconds = -1;
    int64_t microseconds = -1;
};
using QmpClock = std::function<QmpTimestamp()>;
QmpTimestamp qmp_host_time();

struct QmpLimits {
    JsonStreamLimits input;
    // Events are dropped (and counted) for a client whose unread output is
    // already this large, so a client that stops reading cannot make the
    // host buffer without bound. Replies are never dropped: the transport
    // stops reading a client's input while its output is backed up.
    size_t max_pending_output = 16 << 20;
};

class QmpSession;

class QmpMonitor {
public:
    explicit QmpMonitor(QmpCommands& commands, QmpClock clock = qmp_host_time, QmpLimits limits = {});
    ~QmpMonitor();
    QmpMonitor(const QmpMonitor&) = delete;
    QmpMonitor& operator=(const QmpMonitor&) = delete;

    // Queues {"timestamp", "event", "data"} to every session that finished
    // capabilities negotiation (qmp-spec.rst: none before). A null `data`
    // leaves the member out, as QEMU does for events without data.
    void emit_event(std::string_view name, const Json& data);
    void emit_event(std::string_view name);

    QmpCommands& commands() { return m_commands; }
    const QmpLimits& limits() const { return m_limits; }

private:
    friend class QmpSession;
    QmpCommands& m_commands;
    QmpClock m_clock;
    QmpLimits m_limits;
    std::vector<QmpSession*> m_sessions;
};

class QmpSession {
public:
    // Queues the greeting: the server speaks first (qmp-spec.rst "Server
    // Greeting").
    explicit QmpSession(QmpMonitor& monitor);
    ~QmpSession();
    QmpSession(const QmpSession&) = delete;
    QmpSession& operator=(const QmpSession&) = delete;

    // Takes bytes from the client, in pieces of any size; every request they
    // complete is answered in order.
    void receive(std::string_view bytes);

    // The bytes to send to the client (each message ends with CRLF, as the
    // spec says); the session forgets them.
    std::string take_output();
    size_t pending_output() const { return m_output.size(); }
    // Bytes held for a request not complete yet (bounded by the input limit).
    size_t buffered_input() const { return m_input.buffered(); }

    bool negotiated() const { return m_negotiated; }
    uint64_t dropped_events() const { return m_dropped_events; }

private:
    friend class QmpMonitor;
    void handle_item(JsonStream::Item item);
    void handle_request(const Json& request);
    QmpResult run(const std::string& name, const Json& args);
    void send_return(const Json& value, const Json* id);
    void send_error(const QmpError& error, const Json* id);
    void send_line(std::string line);
    void queue_event(std::string line);

    QmpMonitor* m_monitor;
    JsonStream m_input;
    std::string m_output;
    bool m_negotiated = false;
    uint64_t m_dropped_events = 0;
};

// QEMU's output spelling: ", " between members and ": " after keys, only
// ASCII (non-ASCII escaped as \uXXXX; invalid UTF-8 becomes U+FFFD).
std::string qmp_to_string(const Json& value);
