#include "frontend/gdb/gdb_server.h"

ErrorOr<std::unique_ptr<GdbServer>> GdbServer::listen(EventLoop& loop, GdbTarget& target,
                                                      const ListenAddress& address)
{
    std::unique_ptr<GdbServer> server(new GdbServer(target));
    GdbServer* self = server.get();
    server->m_server = TRY(StreamServer::listen(
        loop, address, [self](std::unique_ptr<StreamConnection> c) { self->accept(std::move(c)); }));
    return server;
}

GdbServer::~GdbServer() = default;

void GdbServer::accept(std::unique_ptr<StreamConnection> connection)
{
    if (m_session) {
        connection->close(); // one debugger at a time
        return;
    }
    if (!m_target.attach()) {
        connection->close(); // the machine has ended
        return;
    }
    m_connection = std::move(connection);
    m_session = std::make_unique<GdbSession>(m_target);
    StreamConnection& stream = *m_connection;
    stream.set_on_drained([&stream] { stream.resume_reading(); });
    stream.start_reading(
        [this](std::string_view bytes) {
            if (!m_session)
                return;
            m_session->receive(bytes);
            flush();
        },
        [this] { drop_client(true); });
}

void GdbServer::flush()
{
    if (!m_session)
        return;
    m_connection->write(m_session->take_output());
    if (m_session->closed()) {
        drop_client(false); // D or k: the session has done what they ask
        return;
    }
    if (m_connection->queued_bytes() > MAX_QUEUED_OUTPUT)
        m_connection->pause_reading();
}

void GdbServer::drop_client(bool detach)
{
    if (!m_session)
        return;
    if (detach)
        m_session->detach();
    m_session.reset();
    // close() sends what is queued; destroying the connection afterwards is
    // safe (no callback runs after close()).
    m_connection->close();
    m_connection.reset();
}

void GdbServer::report_stop(const GdbStop& stop)
{
    if (!m_session)
        return;
    m_session->report_stop(stop);
    flush();
}

void GdbServer::close()
{
    if (m_session) {
        m_connection->write(m_session->take_output());
        m_session.reset();
        m_connection->close();
        m_connection.reset();
    }
    m_server.reset();
}
