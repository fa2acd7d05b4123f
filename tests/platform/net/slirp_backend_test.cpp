// libslirp on the event loop: frames in from an adapter, frames out to it.
#include "platform/net/slirp_backend.h"

#include "platform/host/event_loop.h"
#include "platform/net/frame_bytes.h"
#include "tests/platform/net/arp_frames.h"

#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace net;

using namespace test_frames;

TEST_CASE("The user network answers an ARP request for the host at 10.0.2.2")
{
    EventLoop loop;
    auto created = SlirpBackend::create(loop, {});
    REQUIRE_FALSE(created.is_error());
    std::unique_ptr<SlirpBackend> backend = created.release_value();
    std::vector<std::vector<u8>> received;
    backend->set_receiver([&](std::vector<u8> frame) {
        received.push_back(std::move(frame));
        loop.stop();
    });
    LoopTimer timeout(loop, [&] { loop.stop(); });
    timeout.start(5000);
    backend->send(arp_request(0x0A00020F, 0x0A000202));
    loop.run();
    REQUIRE(received.size() == 1);
    const std::vector<u8>& reply = received[0];
    REQUIRE(reply.size() >= 42);
    CHECK(load_be16(reply, 12) == 0x0806);
    CHECK(load_be16(reply, 20) == 2); // reply
    CHECK(load_be32(reply, 28) == 0x0A000202);
    CHECK(std::equal(GUEST_MAC, GUEST_MAC + 6, reply.begin()));
    backend.reset();
}

TEST_CASE("A hostfwd on a host port already taken fails with a message")
{
    const int taken = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(taken >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(taken, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(taken, 1) == 0);
    socklen_t length = sizeof a;
    REQUIRE(::getsockname(taken, reinterpret_cast<sockaddr*>(&a), &length) == 0);

    EventLoop loop;
    SlirpOptions options;
    options.forwards.push_back({false, "127.0.0.1", ntohs(a.sin_port), "", 22});
    auto created = SlirpBackend::create(loop, options);
    REQUIRE(created.is_error());
    CHECK(created.error().message.find("hostfwd") != std::string::npos);
    ::close(taken);
}
