// The tap backend (tap_backend.h) on a real tap interface, watched from the
// host's side with a packet socket: what the adapter sends leaves the
// interface whole, what the interface transmits reaches the receiver. Needs
// /dev/net/tun and CAP_NET_ADMIN (to make the interface and the socket);
// without them the cases say so and check only the refusals.
#include "platform/net/tap_backend.h"

#include "platform/host/event_loop.h"

#include <doctest/doctest.h>

#include <cstring>
#include <net/if.h>
#include <netpacket/packet.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

constexpr const char* NAME = "vrdtaptest0";

// The interface up (a tap that is down drops what it is given), and a
// packet socket bound to it; -1 when this process may not.
int open_host_side()
{
    const int s = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (s < 0)
        return -1;
    ifreq request{};
    std::strncpy(request.ifr_name, NAME, IFNAMSIZ - 1);
    if (::ioctl(s, SIOCGIFFLAGS, &request) < 0) {
        ::close(s);
        return -1;
    }
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
    sockaddr_ll address{};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_ALL);
    address.sll_ifindex = static_cast<int>(if_nametoindex(NAME));
    if (::ioctl(s, SIOCSIFFLAGS, &request) < 0 ||
        ::bind(s, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0) {
        ::close(s);
        return -1;
    }
    timeval timeout{2, 0};
    ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    return s;
}

std::vector<u8> test_frame(u8 fill)
{
    // A frame of an EtherType nobody handles, so the host's stack sends
    // nothing of its own in between.
    std::vector<u8> f(100, fill);
    const u8 header[14] = {0x52, 0x54, 0x00, 1, 2, 3, 0x52, 0x54, 0x00, 4, 5, 6, 0x88, 0xB5};
    std::copy(std::begin(header), std::end(header), f.begin());
    return f;
}

} // namespace

TEST_CASE("A tap backend's frames leave the host's interface, and the interface's reach its receiver")
{
    EventLoop loop;
    auto made = TapBackend::create(loop, TapOptions{NAME});
    if (made.is_error()) {
        MESSAGE("no tap here (" << made.error().message << "): only the refusals are checked");
        CHECK(made.error().message.find("tap interface vrdtaptest0") != std::string::npos);
        return;
    }
    std::unique_ptr<TapBackend> tap = made.release_value();
    CHECK(tap->interface_name() == NAME);
    // A second attach to the same interface is refused while this one holds it.
    auto second = TapBackend::create(loop, TapOptions{NAME});
    REQUIRE(second.is_error());
    CHECK(second.error().message.find("cannot attach to tap interface vrdtaptest0") != std::string::npos);

    const int host = open_host_side();
    if (host < 0) {
        MESSAGE("no packet socket here: the frames are not checked");
        return;
    }
    std::vector<std::vector<u8>> received;
    tap->set_receiver([&](std::vector<u8> f) { received.push_back(std::move(f)); });
    // The adapter sends: the host reads it from the interface.
    const std::vector<u8> out = test_frame(0xA5);
    tap->send(out);
    std::vector<u8> got(2000);
    ssize_t n = 0;
    do // skip what the host's stack itself sent (router solicitations when it came up)
        n = ::recv(host, got.data(), got.size(), 0);
    while (n > 0 && !(got[12] == 0x88 && got[13] == 0xB5));
    REQUIRE(n == static_cast<ssize_t>(out.size()));
    got.resize(static_cast<size_t>(n));
    CHECK(got == out);
    // The host transmits on the interface: the backend reads it on the loop.
    const std::vector<u8> in = test_frame(0x5A);
    REQUIRE(::send(host, in.data(), in.size(), 0) == static_cast<ssize_t>(in.size()));
    LoopTimer done(loop, [&] { loop.stop(); });
    done.start(200);
    loop.run();
    bool found = false;
    for (const std::vector<u8>& f : received)
        found = found || f == in;
    CHECK(found);
    ::close(host);
}

TEST_CASE("A tap backend refuses a name no interface can have")
{
    EventLoop loop;
    auto made = TapBackend::create(loop, TapOptions{"bad/name"});
    REQUIRE(made.is_error());
    CHECK(made.error().message.find("not a network interface name") != std::string::npos);
}
