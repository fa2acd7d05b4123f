// The virtual switch (switch_port.h): ports in one directory find each other,
// flood what they do not know, learn where addresses live, and survive ports
// whose processes died.
#include "platform/net/switch_port.h"

#include "platform/host/event_loop.h"
#include "platform/net/switch_host_port.h"
#include "tests/platform/net/arp_frames.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

using Mac = std::array<u8, 6>;
constexpr Mac MAC_A = {0x52, 0x54, 0x00, 0, 0, 0xA};
constexpr Mac MAC_B = {0x52, 0x54, 0x00, 0, 0, 0xB};
constexpr Mac BROADCAST = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

std::vector<u8> frame(const Mac& to, const Mac& from, u8 payload, size_t size = 60)
{
    std::vector<u8> f(size, payload);
    std::copy(to.begin(), to.end(), f.begin());
    std::copy(from.begin(), from.end(), f.begin() + 6);
    f[12] = 0x08;
    f[13] = 0x00;
    return f;
}

struct TempDirectory {
    std::string path;
    TempDirectory()
    {
        char name[] = "/tmp/viridian-switch-test-XXXXXX";
        REQUIRE(::mkdtemp(name));
        path = name;
    }
    ~TempDirectory() { std::filesystem::remove_all(path); }
};

// A port and what it received.
struct Port {
    std::unique_ptr<SwitchPort> port;
    std::vector<std::vector<u8>> received;
};

std::unique_ptr<Port> plug(EventLoop& loop, const std::string& directory)
{
    SwitchOptions options;
    options.name = "test";
    options.directory = directory;
    auto made = SwitchPort::create(loop, options);
    REQUIRE_FALSE(made.is_error());
    auto port = std::make_unique<Port>();
    port->port = made.release_value();
    Port* raw = port.get();
    port->port->set_receiver([raw](std::vector<u8> f) { raw->received.push_back(std::move(f)); });
    return port;
}

// Runs the loop until the ports have read what was sent to them.
void settle(EventLoop& loop)
{
    LoopTimer done(loop, [&] { loop.stop(); });
    done.start(100);
    loop.run();
}

} // namespace

TEST_CASE("A broadcast on the switch reaches every other port, whole, and not its sender")
{
    TempDirectory dir;
    EventLoop loop;
    auto a = plug(loop, dir.path), b = plug(loop, dir.path), c = plug(loop, dir.path);
    const std::vector<u8> sent = frame(BROADCAST, MAC_A, 0x11, 1514);
    a->port->send(sent);
    settle(loop);
    CHECK(a->received.empty());
    REQUIRE(b->received.size() == 1);
    REQUIRE(c->received.size() == 1);
    CHECK(b->received[0] == sent);
    CHECK(c->received[0] == sent);
}

TEST_CASE("An address seen as a frame's source gets later frames alone; unknown ones are flooded")
{
    TempDirectory dir;
    EventLoop loop;
    auto a = plug(loop, dir.path), b = plug(loop, dir.path), c = plug(loop, dir.path);
    // B does not know A yet: flooded to A and C.
    b->port->send(frame(MAC_A, MAC_B, 1));
    settle(loop);
    CHECK(a->received.size() == 1);
    CHECK(c->received.size() == 1);
    // A learned B from that frame: its reply goes to B only.
    a->port->send(frame(MAC_B, MAC_A, 2));
    settle(loop);
    REQUIRE(b->received.size() == 1);
    CHECK(b->received[0][14] == 2);
    CHECK(c->received.size() == 1);
    // And B learned A from the reply.
    b->port->send(frame(MAC_A, MAC_B, 3));
    settle(loop);
    CHECK(a->received.size() == 2);
    CHECK(c->received.size() == 1);
}

TEST_CASE("A port whose process died is removed from the switch by the next flood")
{
    TempDirectory dir;
    EventLoop loop;
    auto a = plug(loop, dir.path), b = plug(loop, dir.path);
    // A socket file with nobody reading it, as a killed machine leaves.
    const std::string dead = dir.path + "/port-999999-0";
    {
        const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strcpy(address.sun_path, dead.c_str());
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        ::close(fd);
    }
    REQUIRE(std::filesystem::exists(dead));
    a->port->send(frame(BROADCAST, MAC_A, 4));
    settle(loop);
    CHECK(b->received.size() == 1);
    CHECK_FALSE(std::filesystem::exists(dead));
}

TEST_CASE("A port closes its socket file; frames too short or too long are neither sent nor delivered")
{
    TempDirectory dir;
    EventLoop loop;
    auto a = plug(loop, dir.path), b = plug(loop, dir.path);
    a->port->send(std::vector<u8>(13, 0xFF));
    settle(loop);
    CHECK(b->received.empty());
    // A datagram from something that is not a port, too short to be a frame.
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, b->port->path().c_str());
    REQUIRE(::sendto(fd, "tiny", 4, 0, reinterpret_cast<sockaddr*>(&address), sizeof address) == 4);
    ::close(fd);
    settle(loop);
    CHECK(b->received.empty());
    const std::string path = a->port->path();
    CHECK(std::filesystem::exists(path));
    a.reset();
    CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("Switch names are short and safe as a directory name")
{
    CHECK(SwitchPort::valid_name("lab-1.net_2"));
    CHECK_FALSE(SwitchPort::valid_name(""));
    CHECK_FALSE(SwitchPort::valid_name(".."));
    CHECK_FALSE(SwitchPort::valid_name("a/b"));
    CHECK_FALSE(SwitchPort::valid_name(std::string(33, 'x')));
    CHECK(SwitchPort::directory_for("lab").ends_with("/switch/lab"));
}

TEST_CASE("An internal switch's host port answers its machines as user-mode networking, and a switch has one")
{
    TempDirectory dir;
    EventLoop loop;
    SwitchOptions options;
    options.name = "test";
    options.directory = dir.path;
    auto made = SwitchHostPort::create(loop, options, {});
    REQUIRE_FALSE(made.is_error());
    std::unique_ptr<SwitchHostPort> host = made.release_value();
    REQUIRE(host);
    // A second machine asking for the host port finds it taken.
    auto second = SwitchHostPort::create(loop, options, {});
    REQUIRE_FALSE(second.is_error());
    CHECK_FALSE(second.value());

    auto machine = plug(loop, dir.path);
    machine->port->send(test_frames::arp_request(0x0A00020F, 0x0A000202));
    settle(loop);
    REQUIRE(machine->received.size() == 1);
    const std::vector<u8>& reply = machine->received[0];
    REQUIRE(reply.size() >= 42);
    CHECK(load_be16(reply, 20) == 2); // an ARP reply
    CHECK(load_be32(reply, 28) == 0x0A000202);
    CHECK(std::equal(test_frames::GUEST_MAC, test_frames::GUEST_MAC + 6, reply.begin()));

    // Once its holder is gone, the next one plugs the host port in again.
    host.reset();
    auto again = SwitchHostPort::create(loop, options, {});
    REQUIRE_FALSE(again.is_error());
    CHECK(again.value());
}
