// The host side of a running machine (docs/architecture.md "Threads"): one
// libuv loop on one thread serves the console, signals, timers and every
// socket (QMP now; disks, network and gdb later). The vCPUs run on another
// thread. The two meet in two queues: EventLoop::post hands work to the loop,
// CommandQueue (command_queue.h) hands commands to the machine.
//
// A thin wrapper: each handle is an object that closes its libuv handle when
// destroyed, and libuv types stay in the .cpp. Everything but
// EventLoop::post runs on the loop's thread only.
#pragma once

#include "mmu/base/error_or.h"
#include "mmu/base/types.h"

#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct uv_loop_s;

class EventLoop {
public:
    using Task = std::function<void()>;

    EventLoop();
    // Closes what is still open and runs the loop until libuv has released
    // every handle.
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Runs callbacks until stop() (or until nothing is left to wait for).
    void run();
    // Makes run() return once the current callback is done.
    void stop();
    // Makes run() return once nothing is left but posting: every handle is
    // closed and every write and shutdown request has completed (so the
    // last replies reach the clients). Tasks still posted until then run.
    void finish_when_idle();
    // Any thread: runs `task` on the loop's thread, in the order posted.
    // False (and the task dropped) once the loop is being destroyed.
    bool post(Task task);

    uv_loop_s* uv();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// A one-shot or repeating timer in host milliseconds. Host time only: the
// guest's timers run on the VirtualClock, never here.
class LoopTimer {
public:
    LoopTimer(EventLoop& loop, std::function<void()> callback);
    ~LoopTimer();
    LoopTimer(const LoopTimer&) = delete;
    LoopTimer& operator=(const LoopTimer&) = delete;

    void start(u64 timeout_ms, u64 repeat_ms = 0);
    void stop();

private:
    struct State;
    State* m_state;
};

// A POSIX signal, delivered on the loop's thread (libuv turns the
// asynchronous handler into a loop callback, so the callback may do anything).
class SignalWatcher {
public:
    SignalWatcher(EventLoop& loop, int signal_number, std::function<void(int)> callback);
    ~SignalWatcher();
    SignalWatcher(const SignalWatcher&) = delete;
    SignalWatcher& operator=(const SignalWatcher&) = delete;

private:
    struct State;
    State* m_state;
};

// Calls back whenever `fd` is readable (or hung up). The watcher does not
// read: the owner does, without blocking. Fails for descriptors that epoll
// cannot watch (regular files, /dev/null): read those directly.
class FdWatcher {
public:
    static ErrorOr<std::unique_ptr<FdWatcher>> create(EventLoop& loop, int fd, std::function<void()> on_readable);
    ~FdWatcher();
    FdWatcher(const FdWatcher&) = delete;
    FdWatcher& operator=(const FdWatcher&) = delete;

    void stop();

private:
    FdWatcher() = default;
    struct State;
    State* m_state = nullptr;
};

// Where a server listens: a Unix socket path or a TCP host and port (an
// empty host: every address, as QEMU's "tcp::PORT").
struct ListenAddress {
    enum class Kind : u8 { Unix, Tcp };
    Kind kind = Kind::Unix;
    std::string path; // Unix
    std::string host; // Tcp
    u16 port = 0;     // Tcp

    // "unix:PATH" or "tcp:HOST:PORT", as the messages show it.
    std::string describe() const;
};

// One accepted connection: bytes in through the reader, bytes out through
// write(). Destroying it closes the socket at once; close() first sends what
// is queued.
class StreamConnection {
public:
    ~StreamConnection();
    StreamConnection(const StreamConnection&) = delete;
    StreamConnection& operator=(const StreamConnection&) = delete;

    // `on_data` gets each piece read; `on_end` is called once when the peer
    // closes or the connection fails (the owner then destroys it).
    void start_reading(std::function<void(std::string_view)> on_data, std::function<void()> on_end);
    // Stops and restarts reading (backpressure: a client that does not read
    // its replies gets no further requests read).
    void pause_reading();
    void resume_reading();
    bool reading_paused() const;
    void write(std::string bytes);
    // Bytes handed to write() that the kernel has not taken yet.
    size_t queued_bytes() const;
    // Called when the queue has drained after a write.
    void set_on_drained(std::function<void()> callback);
    // Sends what is queued, then closes; no callback runs after this.
    void close();

private:
    friend class StreamServer;
    StreamConnection() = default;
    struct State;
    State* m_state = nullptr;
};

class StreamServer {
public:
    using OnConnection = std::function<void(std::unique_ptr<StreamConnection>)>;

    // Binds and listens. A Unix socket left behind by an earlier run (a
    // socket file, nothing else) is replaced, as QEMU does.
    static ErrorOr<std::unique_ptr<StreamServer>> listen(EventLoop& loop, const ListenAddress& address,
                                                         OnConnection on_connection);
    // Stops listening; removes the Unix socket file.
    ~StreamServer();
    StreamServer(const StreamServer&) = delete;
    StreamServer& operator=(const StreamServer&) = delete;

    const ListenAddress& address() const { return m_address; }
    // The port actually bound (for "tcp:HOST:0", which picks a free one).
    u16 bound_port() const;

private:
    StreamServer() = default;
    struct State;
    State* m_state = nullptr;
    ListenAddress m_address;
};
