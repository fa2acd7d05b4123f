#include "platform/host/event_loop.h"

#include <uv.h>

#include <cstring>
#include <deque>
#include <fcntl.h>
#include <mutex>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

// Each wrapper's State lives on the heap and holds its libuv handle and
// callbacks. libuv may still call into a handle after uv_close() until the
// close callback runs (cancelled writes, for one), so the State is freed
// there and not in the wrapper's destructor. A callback may therefore
// destroy its own wrapper.
template <class State> void close_and_free(State* state, uv_handle_t* handle)
{
    handle->data = state;
    uv_close(handle, [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
}

std::string uv_message(int code) { return uv_strerror(code); }

} // namespace

// --- EventLoop ---

struct EventLoop::Impl {
    uv_loop_t loop;
    uv_async_t wakeup;
    std::mutex mutex;
    std::deque<Task> tasks; // guarded by mutex
    bool closed = false;    // guarded by mutex

    void run_posted()
    {
        std::deque<Task> ready;
        {
            std::lock_guard lock(mutex);
            ready.swap(tasks);
        }
        for (Task& task : ready)
            task();
    }
};

EventLoop::EventLoop() : m_impl(std::make_unique<Impl>())
{
    // Both fail only when the host is out of file descriptors or memory.
    if (uv_loop_init(&m_impl->loop) != 0 ||
        uv_async_init(&m_impl->loop, &m_impl->wakeup, [](uv_async_t* async) {
            static_cast<Impl*>(async->data)->run_posted();
        }) != 0)
        abort();
    m_impl->wakeup.data = m_impl.get();
}

EventLoop::~EventLoop()
{
    {
        std::lock_guard lock(m_impl->mutex);
        m_impl->closed = true;
        m_impl->tasks.clear();
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&m_impl->wakeup), nullptr);
    // Every wrapper should be gone by now; close what is left rather than
    // wait forever on it.
    uv_walk(
        &m_impl->loop,
        [](uv_handle_t* handle, void*) {
            if (!uv_is_closing(handle))
                uv_close(handle, nullptr);
        },
        nullptr);
    uv_run(&m_impl->loop, UV_RUN_DEFAULT);
    uv_loop_close(&m_impl->loop);
}

void EventLoop::run() { uv_run(&m_impl->loop, UV_RUN_DEFAULT); }

void EventLoop::stop() { uv_stop(&m_impl->loop); }

void EventLoop::finish_when_idle() { uv_unref(reinterpret_cast<uv_handle_t*>(&m_impl->wakeup)); }

bool EventLoop::post(Task task)
{
    std::lock_guard lock(m_impl->mutex);
    if (m_impl->closed)
        return false;
    m_impl->tasks.push_back(std::move(task));
    // Under the lock, so that the destructor cannot close the handle between
    // the check above and the send.
    uv_async_send(&m_impl->wakeup);
    return true;
}

uv_loop_s* EventLoop::uv() { return &m_impl->loop; }

// --- LoopTimer ---

struct LoopTimer::State {
    uv_timer_t handle;
    std::function<void()> callback;
};

LoopTimer::LoopTimer(EventLoop& loop, std::function<void()> callback) : m_state(new State)
{
    m_state->callback = std::move(callback);
    uv_timer_init(loop.uv(), &m_state->handle);
    m_state->handle.data = m_state;
}

LoopTimer::~LoopTimer() { close_and_free(m_state, reinterpret_cast<uv_handle_t*>(&m_state->handle)); }

void LoopTimer::start(u64 timeout_ms, u64 repeat_ms)
{
    uv_timer_start(
        &m_state->handle, [](uv_timer_t* timer) { static_cast<State*>(timer->data)->callback(); },
        timeout_ms, repeat_ms);
}

void LoopTimer::stop() { uv_timer_stop(&m_state->handle); }

// --- SignalWatcher ---

struct SignalWatcher::State {
    uv_signal_t handle;
    std::function<void(int)> callback;
};

SignalWatcher::SignalWatcher(EventLoop& loop, int signal_number, std::function<void(int)> callback)
    : m_state(new State)
{
    m_state->callback = std::move(callback);
    uv_signal_init(loop.uv(), &m_state->handle);
    m_state->handle.data = m_state;
    uv_signal_start(
        &m_state->handle,
        [](uv_signal_t* signal, int number) { static_cast<State*>(signal->data)->callback(number); },
        signal_number);
}

SignalWatcher::~SignalWatcher() { close_and_free(m_state, reinterpret_cast<uv_handle_t*>(&m_state->handle)); }

// --- FdWatcher ---

struct FdWatcher::State {
    uv_poll_t handle;
    std::function<void()> on_readable;
    int fd = -1;
    int saved_flags = -1;
};

ErrorOr<std::unique_ptr<FdWatcher>> FdWatcher::create(EventLoop& loop, int fd, std::function<void()> on_readable)
{
    auto state = std::make_unique<State>();
    state->fd = fd;
    // uv_poll_init makes the descriptor non-blocking; a terminal on stdin is
    // shared with the shell that started us, so its flags come back at the end.
    state->saved_flags = fcntl(fd, F_GETFL);
    if (const int error = uv_poll_init(loop.uv(), &state->handle, fd); error != 0)
        return make_error("cannot watch descriptor " + std::to_string(fd) + ": " + uv_message(error));
    state->on_readable = std::move(on_readable);
    state->handle.data = state.get();
    uv_poll_start(&state->handle, UV_READABLE | UV_DISCONNECT, [](uv_poll_t* poll, int, int) {
        static_cast<State*>(poll->data)->on_readable();
    });
    std::unique_ptr<FdWatcher> watcher(new FdWatcher);
    watcher->m_state = state.release();
    return watcher;
}

FdWatcher::~FdWatcher()
{
    if (m_state->saved_flags >= 0)
        fcntl(m_state->fd, F_SETFL, m_state->saved_flags);
    close_and_free(m_state, reinterpret_cast<uv_handle_t*>(&m_state->handle));
}

void FdWatcher::stop() { uv_poll_stop(&m_state->handle); }

// --- ListenAddress ---

std::string ListenAddress::describe() const
{
    if (kind == Kind::Unix)
        return "unix:" + path;
    return "tcp:" + host + ":" + std::to_string(port);
}

// --- StreamConnection ---

struct StreamConnection::State {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    };
    std::function<void(std::string_view)> on_data;
    std::function<void()> on_end;
    std::function<void()> on_drained;
    size_t queued = 0;
    bool reading = false; // the owner asked to read
    bool paused = false;
    bool ended = false;   // on_end was called
    bool closing = false; // no more callbacks to the owner
    char buffer[64 * 1024];

    void end()
    {
        if (ended || closing)
            return;
        ended = true;
        uv_read_stop(&stream);
        if (on_end)
            on_end();
    }
    void start()
    {
        uv_read_start(
            &stream,
            [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                auto* s = static_cast<State*>(h->data);
                *buf = uv_buf_init(s->buffer, sizeof s->buffer);
            },
            [](uv_stream_t* st, ssize_t nread, const uv_buf_t* buf) {
                auto* s = static_cast<State*>(st->data);
                if (s->closing)
                    return;
                if (nread > 0)
                    s->on_data(std::string_view(buf->base, static_cast<size_t>(nread)));
                else if (nread < 0) // UV_EOF or a socket error
                    s->end();
            });
    }
};

namespace {
struct WriteRequest {
    uv_write_t req;
    std::string bytes;
};
} // namespace

StreamConnection::~StreamConnection()
{
    if (!m_state)
        return;
    m_state->closing = true;
    close_and_free(m_state, &m_state->handle);
}

void StreamConnection::start_reading(std::function<void(std::string_view)> on_data, std::function<void()> on_end)
{
    m_state->on_data = std::move(on_data);
    m_state->on_end = std::move(on_end);
    m_state->reading = true;
    if (!m_state->paused)
        m_state->start();
}

void StreamConnection::pause_reading()
{
    if (m_state->paused)
        return;
    m_state->paused = true;
    uv_read_stop(&m_state->stream);
}

void StreamConnection::resume_reading()
{
    if (!m_state->paused)
        return;
    m_state->paused = false;
    if (m_state->reading && !m_state->ended)
        m_state->start();
}

bool StreamConnection::reading_paused() const { return m_state->paused; }

void StreamConnection::write(std::string bytes)
{
    if (bytes.empty() || m_state->ended)
        return;
    auto* request = new WriteRequest;
    request->bytes = std::move(bytes);
    request->req.data = m_state;
    uv_buf_t buf = uv_buf_init(request->bytes.data(), static_cast<unsigned>(request->bytes.size()));
    m_state->queued += request->bytes.size();
    const int error = uv_write(&request->req, &m_state->stream, &buf, 1, [](uv_write_t* req, int status) {
        auto* request = reinterpret_cast<WriteRequest*>(req);
        auto* s = static_cast<State*>(req->data);
        s->queued -= request->bytes.size();
        delete request;
        if (s->closing)
            return;
        if (status != 0)
            s->end();
        else if (s->queued == 0 && s->on_drained)
            s->on_drained();
    });
    if (error != 0) {
        m_state->queued -= request->bytes.size();
        delete request;
        m_state->end();
    }
}

size_t StreamConnection::queued_bytes() const { return m_state->queued; }

void StreamConnection::set_on_drained(std::function<void()> callback) { m_state->on_drained = std::move(callback); }

void StreamConnection::close()
{
    if (!m_state)
        return;
    State* state = m_state;
    m_state = nullptr;
    state->closing = true;
    uv_read_stop(&state->stream);
    // A shutdown request completes after the queued writes; then close.
    auto* shutdown = new uv_shutdown_t;
    shutdown->data = state;
    const int error = uv_shutdown(shutdown, &state->stream, [](uv_shutdown_t* req, int) {
        auto* s = static_cast<State*>(req->data);
        delete req;
        close_and_free(s, &s->handle);
    });
    if (error != 0) {
        delete shutdown;
        close_and_free(state, &state->handle);
    }
}

// --- StreamServer ---

struct StreamServer::State {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    };
    ListenAddress::Kind kind;
    uv_loop_t* loop;
    OnConnection on_connection;
};

ErrorOr<std::unique_ptr<StreamServer>> StreamServer::listen(EventLoop& loop, const ListenAddress& address,
                                                            OnConnection on_connection)
{
    auto* state = new State;
    state->kind = address.kind;
    state->loop = loop.uv();
    state->on_connection = std::move(on_connection);
    const auto fail = [&](const std::string& what, int error) -> Error {
        close_and_free(state, &state->handle);
        return make_error("cannot listen on " + address.describe() + ": " + what +
                          (error ? uv_message(error) : std::string()));
    };
    if (address.kind == ListenAddress::Kind::Unix) {
        uv_pipe_init(loop.uv(), &state->pipe, 0);
        state->handle.data = state;
        if (address.path.empty() || address.path.size() >= sizeof(sockaddr_un::sun_path))
            return fail("the path must be 1 to " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                            " bytes long",
                        0);
        struct stat info;
        if (::lstat(address.path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode))
            ::unlink(address.path.c_str());
        if (const int error = uv_pipe_bind(&state->pipe, address.path.c_str()); error != 0)
            return fail("", error);
    } else {
        uv_tcp_init(loop.uv(), &state->tcp);
        state->handle.data = state;
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        addrinfo* found = nullptr;
        const std::string port = std::to_string(address.port);
        if (const int error = ::getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(),
                                            port.c_str(), &hints, &found);
            error != 0)
            return fail(gai_strerror(error), 0);
        const int error = uv_tcp_bind(&state->tcp, found->ai_addr, 0);
        ::freeaddrinfo(found);
        if (error != 0)
            return fail("", error);
    }
    const int error = uv_listen(&state->stream, 16, [](uv_stream_t* server, int status) {
        auto* s = static_cast<State*>(server->data);
        if (status != 0)
            return;
        std::unique_ptr<StreamConnection> connection(new StreamConnection);
        auto* c = new StreamConnection::State;
        if (s->kind == ListenAddress::Kind::Unix)
            uv_pipe_init(s->loop, &c->pipe, 0);
        else
            uv_tcp_init(s->loop, &c->tcp);
        c->handle.data = c;
        connection->m_state = c;
        if (uv_accept(server, &c->stream) != 0)
            return; // the connection's destructor closes the handle
        s->on_connection(std::move(connection));
    });
    if (error != 0)
        return fail("", error);
    std::unique_ptr<StreamServer> server(new StreamServer);
    server->m_state = state;
    server->m_address = address;
    return server;
}

StreamServer::~StreamServer()
{
    close_and_free(m_state, &m_state->handle);
    if (m_address.kind == ListenAddress::Kind::Unix)
        ::unlink(m_address.path.c_str());
}

u16 StreamServer::bound_port() const
{
    if (m_state->kind != ListenAddress::Kind::Tcp)
        return 0;
    sockaddr_storage name{};
    int length = sizeof name;
    if (uv_tcp_getsockname(&m_state->tcp, reinterpret_cast<sockaddr*>(&name), &length) != 0)
        return 0;
    if (name.ss_family == AF_INET)
        return ntohs(reinterpret_cast<sockaddr_in*>(&name)->sin_port);
    if (name.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<sockaddr_in6*>(&name)->sin6_port);
    return 0;
}
