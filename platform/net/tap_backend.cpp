#include "platform/net/tap_backend.h"

#include "platform/host/event_loop.h"

#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace {

// Frames as the adapters make them: a header at least, and at most a
// 64 KiB packet with its Ethernet header (a tap's MTU may be raised).
constexpr size_t MIN_FRAME = 14, MAX_FRAME = 65536 + 14;

} // namespace

struct TapBackend::Impl {
    int fd = -1;
    std::string name;
    std::unique_ptr<FdWatcher> watcher;
    std::mutex receiver_mutex;
    Receiver receiver; // guarded by receiver_mutex

    ~Impl()
    {
        watcher.reset();
        if (fd >= 0)
            ::close(fd);
    }

    void receive_pending()
    {
        std::vector<u8> buffer(MAX_FRAME);
        for (;;) {
            const ssize_t got = ::read(fd, buffer.data(), buffer.size());
            if (got < 0)
                return; // EAGAIN: all read (or the interface went away)
            const size_t length = static_cast<size_t>(got);
            if (length < MIN_FRAME)
                continue;
            std::lock_guard lock(receiver_mutex);
            if (receiver)
                receiver(std::vector<u8>(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(length)));
        }
    }
};

bool TapBackend::valid_name(std::string_view name)
{
    if (name.empty() || name.size() > TapOptions::MAX_NAME)
        return false;
    for (const char c : name)
        if (c == '/' || c == ':' || c <= ' ' || c == 0x7F)
            return false;
    return true;
}

ErrorOr<std::unique_ptr<TapBackend>> TapBackend::create(EventLoop& loop, const TapOptions& options)
{
    if (!options.ifname.empty() && !valid_name(options.ifname))
        return make_error("ifname=" + options.ifname + " is not a network interface name (1 to 15 characters)");
    const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        const int error = errno;
        return make_error(std::string("cannot open /dev/net/tun: ") + std::strerror(error) +
                          (error == ENOENT ? " (no tun driver on this host)" : ""));
    }
    ifreq request{};
    request.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(request.ifr_name, options.ifname.c_str(), IFNAMSIZ - 1);
    if (::ioctl(fd, TUNSETIFF, &request) < 0) {
        const int error = errno;
        ::close(fd);
        const std::string which = options.ifname.empty() ? "a new tap interface" : "tap interface " + options.ifname;
        std::string hint;
        if (error == EPERM)
            hint = " (make it for this user first: ip tuntap add dev NAME mode tap user $USER)";
        else if (error == EBUSY)
            hint = " (another program holds it)";
        else if (error == EINVAL)
            hint = " (is it a tun interface, not a tap?)";
        return make_error("cannot attach to " + which + ": " + std::strerror(error) + hint);
    }
    auto impl = std::make_shared<Impl>();
    impl->fd = fd;
    impl->name = request.ifr_name;
    Impl* raw = impl.get();
    impl->watcher = TRY(FdWatcher::create(loop, fd, [raw] { raw->receive_pending(); }));
    return std::unique_ptr<TapBackend>(new TapBackend(std::move(impl)));
}

TapBackend::~TapBackend() = default;

void TapBackend::send(std::span<const u8> frame)
{
    // One write is one frame. A full queue (the host not reading) loses
    // it, as a congested link drops.
    if (frame.size() >= MIN_FRAME && frame.size() <= MAX_FRAME)
        (void)!::write(m_impl->fd, frame.data(), frame.size());
}

void TapBackend::set_receiver(Receiver receiver)
{
    std::lock_guard lock(m_impl->receiver_mutex);
    m_impl->receiver = std::move(receiver);
}

const std::string& TapBackend::interface_name() const { return m_impl->name; }
