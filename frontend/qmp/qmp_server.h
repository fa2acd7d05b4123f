// QMP over sockets (docs/qmp.md "Connecting"): listens on a Unix or TCP
// address on the event loop and gives each connection its own QmpSession
// of one QmpMonitor, so several clients can talk to the machine at once.
// Runs on the event loop's thread.
#pragma once

#include "frontend/qmp/qmp_session.h"
#include "platform/host/event_loop.h"

#include <functional>
#include <map>
#include <memory>

class QmpServer {
public:
    // `on_connection` is told of each client that connects (the frontend
    // starts a machine that waits for its first client then).
    static ErrorOr<std::unique_ptr<QmpServer>> listen(EventLoop& loop, QmpMonitor& monitor,
                                                      const ListenAddress& address,
                                                      std::function<void()> on_connection = {});
    ~QmpServer();
    QmpServer(const QmpServer&) = delete;
    QmpServer& operator=(const QmpServer&) = delete;

    // Sends every client what its session has queued (after an event).
    void flush();
    // Sends what is queued, then closes every connection and stops listening.
    void close();

    size_t client_count() const { return m_clients.size(); }
    u16 bound_port() const { return m_server ? m_server->bound_port() : 0; }

    // A client whose unsent replies pass this stops being read until they
    // drain (QmpLimits: replies are never dropped).
    static constexpr size_t MAX_QUEUED_REPLIES = 1 << 20;

private:
    QmpServer(QmpMonitor& monitor) : m_monitor(monitor) {}
    struct Client {
        std::unique_ptr<QmpSession> session;
        std::unique_ptr<StreamConnection> connection;
    };
    void accept(std::unique_ptr<StreamConnection> connection);
    void flush(Client& client);

    QmpMonitor& m_monitor;
    std::unique_ptr<StreamServer> m_server;
    std::function<void()> m_on_connection;
    std::map<u64, Client> m_clients;
    u64 m_next_id = 0;
};
