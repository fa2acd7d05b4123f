// The event loop's pieces (platform/host/): posting across threads, timers,
// signals, the socket server, and the command queue the machine drains.
#include "platform/host/command_queue.h"
#include "platform/host/event_loop.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

std::string socket_path(const char* name)
{
    return "/tmp/viridian-test-" + std::to_string(::getpid()) + "-" + name + ".sock";
}

// A blocking client on the test's own thread side.
int connect_unix(const std::string& path)
{
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

std::string read_until_closed(int fd)
{
    std::string all;
    char buffer[4096];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;)
        all.append(buffer, static_cast<size_t>(n));
    return all;
}

} // namespace

TEST_CASE("A task posted from another thread runs on the event loop's thread")
{
    EventLoop loop;
    const std::thread::id loop_thread = std::this_thread::get_id();
    std::thread::id ran_on;
    std::thread poster([&] {
        loop.post([&] {
            ran_on = std::this_thread::get_id();
            loop.stop();
        });
    });
    loop.run();
    poster.join();
    CHECK(ran_on == loop_thread);
}

TEST_CASE("Posted tasks run in the order they were posted")
{
    EventLoop loop;
    std::string order;
    for (char c : std::string("abc"))
        loop.post([&order, c] { order += c; });
    loop.post([&] { loop.stop(); });
    loop.run();
    CHECK(order == "abc");
}

TEST_CASE("A loop timer fires after its timeout, and a repeating one until stopped")
{
    EventLoop loop;
    int ticks = 0;
    LoopTimer repeating(loop, [&] {
        if (++ticks == 3)
            loop.stop();
    });
    const auto start = Clock::now();
    repeating.start(5, 5);
    loop.run();
    CHECK(ticks == 3);
    CHECK(Clock::now() - start >= std::chrono::milliseconds(14));
}

TEST_CASE("A signal is delivered as a loop callback")
{
    EventLoop loop;
    int received = 0;
    SignalWatcher watcher(loop, SIGUSR1, [&](int number) {
        received = number;
        loop.stop();
    });
    loop.post([] { ::raise(SIGUSR1); });
    loop.run();
    CHECK(received == SIGUSR1);
}

TEST_CASE("An fd watcher refuses a descriptor that epoll cannot watch")
{
    EventLoop loop;
    std::FILE* file = std::tmpfile();
    ErrorOr<std::unique_ptr<FdWatcher>> watcher = FdWatcher::create(loop, fileno(file), [] {});
    CHECK(watcher.is_error());
    std::fclose(file);
}

TEST_CASE("An fd watcher calls back when its pipe has data")
{
    EventLoop loop;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::string got;
    std::unique_ptr<FdWatcher> watcher;
    watcher = FdWatcher::create(loop, fds[0], [&] {
                  char buffer[16];
                  const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
                  got.append(buffer, static_cast<size_t>(n > 0 ? n : 0));
                  watcher.reset(); // a callback may destroy its own watcher
                  loop.stop();
              }).release_value();
    REQUIRE(::write(fds[1], "hi", 2) == 2);
    loop.run();
    CHECK(got == "hi");
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("A Unix socket server echoes to a client, and a closed connection flushes first")
{
    EventLoop loop;
    const std::string path = socket_path("echo");
    std::unique_ptr<StreamConnection> connection;
    std::unique_ptr<StreamServer> server;
    ListenAddress address;
    address.path = path;
    server = StreamServer::listen(loop, address, [&](std::unique_ptr<StreamConnection> accepted) {
                 connection = std::move(accepted);
                 connection->write("hello\n");
                 connection->start_reading(
                     [&](std::string_view bytes) {
                         connection->write("echo:" + std::string(bytes));
                         // close() sends what is queued before it closes.
                         connection->close();
                         server.reset();
                         loop.finish_when_idle();
                     },
                     [] {});
             }).release_value();
    std::string received;
    std::thread client([&] {
        const int fd = connect_unix(path);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, "ping", 4) == 4);
        received = read_until_closed(fd);
        ::close(fd);
    });
    loop.run();
    client.join();
    CHECK(received == "hello\necho:ping");
    CHECK(::access(path.c_str(), F_OK) != 0); // the socket file is removed
}

TEST_CASE("A TCP server on port 0 reports the port it bound")
{
    EventLoop loop;
    ListenAddress address;
    address.kind = ListenAddress::Kind::Tcp;
    address.host = "127.0.0.1";
    address.port = 0;
    ErrorOr<std::unique_ptr<StreamServer>> server =
        StreamServer::listen(loop, address, [](std::unique_ptr<StreamConnection>) {});
    REQUIRE_FALSE(server.is_error());
    CHECK(server.value()->bound_port() != 0);
}

TEST_CASE("A server on a path that is not a socket fails with one message and leaves the file")
{
    EventLoop loop;
    char path[] = "/tmp/viridian-test-fileXXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    ListenAddress address;
    address.path = path;
    ErrorOr<std::unique_ptr<StreamServer>> server =
        StreamServer::listen(loop, address, [](std::unique_ptr<StreamConnection>) {});
    REQUIRE(server.is_error());
    CHECK(server.error().message.find("cannot listen on unix:") == 0);
    CHECK(::access(path, F_OK) == 0);
    ::unlink(path);
}

TEST_CASE("Commands posted to the machine's queue run in order on the thread that drains it")
{
    CommandQueue queue;
    std::string order;
    std::thread poster([&] {
        queue.post([&] { order += 'a'; });
        queue.post([&] { order += 'b'; });
    });
    poster.join();
    CHECK(queue.run_pending() == 2);
    CHECK(order == "ab");
    CHECK(queue.run_pending() == 0);
}

TEST_CASE("A machine waiting on its command queue wakes as soon as a command is posted")
{
    CommandQueue queue;
    std::thread poster([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        queue.post([] {});
    });
    const auto start = Clock::now();
    queue.wait_for(10'000'000'000); // 10 s unless woken
    const auto waited = Clock::now() - start;
    poster.join();
    CHECK(waited < std::chrono::seconds(2));
    CHECK(queue.run_pending() == 1);
}

TEST_CASE("call() waits for the machine's thread to run the command")
{
    CommandQueue queue;
    std::atomic<bool> stop{false};
    std::thread machine([&] {
        while (!stop) {
            queue.wait_for(1'000'000);
            queue.run_pending();
        }
    });
    int value = 0;
    CHECK(queue.call([&] { value = 42; }, 5'000'000'000));
    CHECK(value == 42);
    stop = true;
    machine.join();
}

TEST_CASE("call() on a queue that closes with the command unrun returns false at once")
{
    CommandQueue queue;
    std::thread closer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        queue.close();
    });
    const auto start = Clock::now();
    CHECK_FALSE(queue.call([] {}, 10'000'000'000));
    CHECK(Clock::now() - start < std::chrono::seconds(2));
    closer.join();
    CHECK_FALSE(queue.post([] {}));
}

TEST_CASE("Device work runs on its own, in order, and leaves the other commands queued in theirs")
{
    CommandQueue queue;
    std::vector<std::string> ran;
    int heard = 0;
    queue.set_post_listener([&] { ++heard; });
    queue.post([&] { ran.push_back("stop"); });
    queue.post_device_work([&] { ran.push_back("disk 1"); });
    queue.post([&] { ran.push_back("cont"); });
    queue.post_device_work([&] { ran.push_back("frame 2"); });
    CHECK(heard == 4);
    CHECK(queue.run_device_work() == 2);
    CHECK(ran == std::vector<std::string>{"disk 1", "frame 2"});
    CHECK(queue.run_device_work() == 0);
    queue.set_post_listener({});
    queue.post_device_work([&] { ran.push_back("disk 3"); });
    CHECK(heard == 4);
    CHECK(queue.run_pending() == 3);
    CHECK(ran == std::vector<std::string>{"disk 1", "frame 2", "stop", "cont", "disk 3"});
}
