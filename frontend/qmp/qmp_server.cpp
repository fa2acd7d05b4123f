#include "frontend/qmp/qmp_server.h"

ErrorOr<std::unique_ptr<QmpServer>> QmpServer::listen(EventLoop& loop, QmpMonitor& monitor,
                                                      const ListenAddress& address,
                                                      std::function<void()> on_connection)
{
    std::unique_ptr<QmpServer> server(new QmpServer(monitor));
    server->m_on_connection = std::move(on_connection);
    QmpServer* self = server.get();
    server->m_server = TRY(StreamServer::listen(
        loop, address, [self](std::unique_ptr<StreamConnection> c) { self->accept(std::move(c)); }));
    return server;
}

QmpServer::~QmpServer() = default;

void QmpServer::accept(std::unique_ptr<StreamConnection> connection)
{
    const u64 id = m_next_id++;
    Client& client = m_clients[id];
    client.connection = std::move(connection);
    client.session = std::make_unique<QmpSession>(m_monitor); // queues the greeting
    StreamConnection& stream = *client.connection;
    stream.set_on_drained([&stream] { stream.resume_reading(); });
    stream.start_reading(
        [this, id](std::string_view bytes) {
            auto it = m_clients.find(id);
            if (it == m_clients.end())
                return;
            it->second.session->receive(bytes);
            // The commands may have closed the server (nothing else removes
            // clients inside receive), so look the client up again.
            it = m_clients.find(id);
            if (it != m_clients.end())
                flush(it->second);
        },
        [this, id] { m_clients.erase(id); });
    flush(client);
    if (m_on_connection)
        m_on_connection();
}

void QmpServer::flush(Client& client)
{
    client.connection->write(client.session->take_output());
    if (client.connection->queued_bytes() > MAX_QUEUED_REPLIES)
        client.connection->pause_reading();
}

void QmpServer::flush()
{
    for (auto& [id, client] : m_clients)
        flush(client);
}

void QmpServer::close()
{
    for (auto& [id, client] : m_clients) {
        client.connection->write(client.session->take_output());
        client.connection->close();
    }
    m_clients.clear();
    m_server.reset();
}
