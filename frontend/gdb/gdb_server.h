// The gdb stub on a socket (docs/gdb.md): listens on a Unix or TCP address
// on the event loop and serves one gdb at a time (a second connection is
// closed at once, as QEMU's gdbstub does). A client that connects stops
// the machine; one that goes away without `D` or `k` leaves it running with
// its breakpoints removed. Runs on the event loop's thread.
#pragma once

#include "frontend/gdb/gdb_session.h"
#include "platform/host/event_loop.h"

#include <memory>

class GdbServer {
public:
    static ErrorOr<std::unique_ptr<GdbServer>> listen(EventLoop& loop, GdbTarget& target,
                                                      const ListenAddress& address);
    ~GdbServer();
    GdbServer(const GdbServer&) = delete;
    GdbServer& operator=(const GdbServer&) = delete;

    // The target stopped (or its run ended: Reason::Exited).
    void report_stop(const GdbStop& stop);
    // Sends what is queued, then closes the client and stops listening.
    void close();

    bool connected() const { return m_session != nullptr; }
    u16 bound_port() const { return m_server ? m_server->bound_port() : 0; }

    // A client whose unsent replies pass this stops being read until they
    // drain.
    static constexpr size_t MAX_QUEUED_OUTPUT = 1 << 20;

private:
    explicit GdbServer(GdbTarget& target) : m_target(target) {}
    void accept(std::unique_ptr<StreamConnection> connection);
    void flush();
    void drop_client(bool detach);

    GdbTarget& m_target;
    std::unique_ptr<StreamServer> m_server;
    std::unique_ptr<GdbSession> m_session;
    std::unique_ptr<StreamConnection> m_connection;
};
