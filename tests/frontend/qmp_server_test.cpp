// QMP over a Unix socket (frontend/qmp/qmp_server): each client its own
// session, events to every negotiated client.
#include "frontend/qmp/qmp_server.h"

#include <nlohmann/json.hpp>

#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace {

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

// Reads one CRLF-terminated message.
Json read_message(int fd)
{
    std::string line;
    char c;
    while (::read(fd, &c, 1) == 1) {
        line += c;
        if (line.ends_with("\r\n"))
            return Json::parse(line);
    }
    return Json();
}

void send(int fd, const std::string& text) { REQUIRE(::write(fd, text.data(), text.size()) == ssize_t(text.size())); }

} // namespace

TEST_CASE("Two QMP clients on one socket each get a greeting and their own replies, and both get events")
{
    EventLoop loop;
    QmpCommands commands;
    QmpMonitor monitor(commands, [] { return QmpTimestamp{1, 2}; });
    ListenAddress address;
    address.path = "/tmp/viridian-test-" + std::to_string(::getpid()) + "-qmp.sock";
    int connections = 0;
    std::unique_ptr<QmpServer> server =
        QmpServer::listen(loop, monitor, address, [&] { ++connections; }).release_value();
    commands.add("fire", {}, [&](const Json&) -> QmpResult {
        monitor.emit_event("TEST");
        server->flush();
        return Json::object();
    });
    Json a_greeting, b_greeting, a_reply, b_reply, a_event, b_event, a_fire;
    std::thread clients([&] {
        const int a = connect_unix(address.path);
        const int b = connect_unix(address.path);
        REQUIRE(a >= 0);
        REQUIRE(b >= 0);
        a_greeting = read_message(a);
        b_greeting = read_message(b);
        send(a, R"({"execute": "qmp_capabilities", "id": "a"})");
        send(b, R"({"execute": "qmp_capabilities", "id": "b"})");
        a_reply = read_message(a);
        b_reply = read_message(b);
        send(a, R"({"execute": "fire"})");
        a_event = read_message(a); // the event comes before the reply
        a_fire = read_message(a);
        b_event = read_message(b);
        ::close(a);
        ::close(b);
        loop.post([&] {
            server->close();
            loop.finish_when_idle();
        });
    });
    loop.run();
    clients.join();
    CHECK(connections == 2);
    CHECK(a_greeting.contains("QMP"));
    CHECK(b_greeting.contains("QMP"));
    CHECK(a_reply == Json{{"return", Json::object()}, {"id", "a"}});
    CHECK(b_reply == Json{{"return", Json::object()}, {"id", "b"}});
    CHECK(a_event.value("event", "") == "TEST");
    CHECK(a_fire == Json{{"return", Json::object()}});
    CHECK(b_event.value("event", "") == "TEST");
}

TEST_CASE("A QMP client that disconnects mid-request is forgotten without harm")
{
    EventLoop loop;
    QmpCommands commands;
    QmpMonitor monitor(commands);
    ListenAddress address;
    address.path = "/tmp/viridian-test-" + std::to_string(::getpid()) + "-qmp2.sock";
    std::unique_ptr<QmpServer> server = QmpServer::listen(loop, monitor, address).release_value();
    std::thread client([&] {
        const int fd = connect_unix(address.path);
        REQUIRE(fd >= 0);
        read_message(fd);
        send(fd, R"({"execute": "qmp_capa)");
        ::close(fd);
        // Let the loop see the hang-up, then look.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        loop.post([&] {
            CHECK(server->client_count() == 0);
            server->close();
            loop.finish_when_idle();
        });
    });
    loop.run();
    client.join();
}
