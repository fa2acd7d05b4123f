#include "platform/net/switch_port.h"

#include "platform/host/event_loop.h"

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <mutex>
#include <optional>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace {

// An Ethernet frame without FCS is at most 1514 bytes, or 1518 with a VLAN
// tag; the adapters hand out no larger ones (TSO is segmented before the
// backend). Anything longer that arrives is not from a viridian port.
constexpr size_t MAX_FRAME = 65535;
constexpr size_t MIN_FRAME = 14;
// A congested port holds this much before frames are dropped: enough for a
// TCP window of full frames.
constexpr int SOCKET_BUFFER = 4 << 20;
// Hosts come and go rarely; the directory is listed again at most this often
// when flooding (and at once when a port is found dead).
constexpr auto RELIST_INTERVAL = std::chrono::seconds(1);
// A hostile guest on some port can send frames from ever new addresses:
// the table is forgotten when it gets this big, and floods until relearned.
constexpr size_t MAX_ADDRESSES = 4096;
constexpr const char* PORT_PREFIX = "port-";

u64 mac_at(std::span<const u8> frame, size_t offset)
{
    u64 mac = 0;
    for (size_t i = 0; i < 6; ++i)
        mac = mac << 8 | frame[offset + i];
    return mac;
}

bool group_address(u64 mac) { return (mac >> 40) & 1; } // broadcast and multicast

ErrorOr<void> make_directory(const std::string& path)
{
    if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST)
        return {};
    return make_error("cannot create " + path + ": " + std::strerror(errno));
}

ErrorOr<void> make_directories(const std::string& path)
{
    for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1))
        TRY(make_directory(path.substr(0, slash)));
    return make_directory(path);
}

std::optional<sockaddr_un> unix_address(const std::string& path)
{
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path)
        return std::nullopt;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    return address;
}

// Whether a process reads the socket at `address` (connecting to a socket
// file nobody has open is refused).
bool port_alive(const sockaddr_un& address)
{
    const int probe = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return false;
    const bool alive = ::connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    ::close(probe);
    return alive;
}

} // namespace

struct SwitchPort::Impl {
    int fd = -1;
    std::string directory;
    std::string path;
    std::unique_ptr<FdWatcher> watcher;

    std::mutex receiver_mutex;
    Receiver receiver; // guarded by receiver_mutex

    std::mutex table_mutex; // guards what follows
    std::unordered_map<u64, std::string> ports_by_address;
    std::vector<std::string> ports; // the other ports, as last listed
    std::chrono::steady_clock::time_point listed{};

    ~Impl()
    {
        if (fd >= 0) {
            ::close(fd);
            ::unlink(path.c_str());
        }
    }

    void list_ports();
    void forget_port(const std::string& port);
    // False when the port is dead (and now forgotten).
    bool send_to(const std::string& port, std::span<const u8> frame);
    void flood(std::span<const u8> frame);
    void receive_pending();
};

void SwitchPort::Impl::list_ports()
{
    ports.clear();
    listed = std::chrono::steady_clock::now();
    DIR* dir = ::opendir(directory.c_str());
    if (!dir)
        return;
    const std::string own = path.substr(directory.size() + 1);
    while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name.rfind(PORT_PREFIX, 0) == 0 && name != own)
            ports.push_back(directory + "/" + name);
    }
    ::closedir(dir);
}

void SwitchPort::Impl::forget_port(const std::string& port)
{
    std::erase_if(ports_by_address, [&](const auto& entry) { return entry.second == port; });
    std::erase(ports, port);
}

bool SwitchPort::Impl::send_to(const std::string& port, std::span<const u8> frame)
{
    const std::optional<sockaddr_un> address = unix_address(port);
    if (!address)
        return true;
    if (::sendto(fd, frame.data(), frame.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&*address),
                 sizeof *address) >= 0)
        return true;
    // Refused: the socket file is there but nobody reads it (its process
    // ended without removing it); gone: removed meanwhile. A full queue
    // (EAGAIN) drops this frame only.
    if (errno == ECONNREFUSED || errno == ENOENT) {
        if (errno == ECONNREFUSED)
            ::unlink(port.c_str());
        forget_port(port);
        return false;
    }
    return true;
}

void SwitchPort::Impl::flood(std::span<const u8> frame)
{
    if (std::chrono::steady_clock::now() - listed >= RELIST_INTERVAL)
        list_ports();
    // send_to may drop dead ports from the list: walk a copy.
    const std::vector<std::string> targets = ports;
    for (const std::string& port : targets)
        send_to(port, frame);
}

void SwitchPort::Impl::receive_pending()
{
    std::vector<u8> buffer(MAX_FRAME + 1);
    for (;;) {
        sockaddr_un from{};
        socklen_t from_length = sizeof from;
        const ssize_t got = ::recvfrom(fd, buffer.data(), buffer.size(), MSG_DONTWAIT,
                                       reinterpret_cast<sockaddr*>(&from), &from_length);
        if (got < 0)
            return; // EAGAIN: all read
        const size_t length = static_cast<size_t>(got);
        if (length < MIN_FRAME || length > MAX_FRAME)
            continue;
        const std::span<const u8> frame(buffer.data(), length);
        const u64 source = mac_at(frame, 6);
        const size_t path_length = from_length > offsetof(sockaddr_un, sun_path)
                                       ? ::strnlen(from.sun_path, from_length - offsetof(sockaddr_un, sun_path))
                                       : 0;
        if (!group_address(source) && path_length) {
            std::lock_guard lock(table_mutex);
            if (ports_by_address.size() >= MAX_ADDRESSES)
                ports_by_address.clear();
            ports_by_address[source] = std::string(from.sun_path, path_length);
        }
        std::lock_guard lock(receiver_mutex);
        if (receiver)
            receiver(std::vector<u8>(frame.begin(), frame.end()));
    }
}

std::string SwitchPort::directory_for(const std::string& name)
{
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    const std::string base = runtime && *runtime == '/' ? std::string(runtime) + "/viridian"
                                                        : "/tmp/viridian-" + std::to_string(::getuid());
    return base + "/switch/" + name;
}

bool SwitchPort::valid_name(std::string_view name)
{
    if (name.empty() || name.size() > SwitchOptions::MAX_NAME || name == "." || name == "..")
        return false;
    for (const char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
            return false;
    return true;
}

ErrorOr<std::unique_ptr<SwitchPort>> SwitchPort::create(EventLoop& loop, const SwitchOptions& options)
{
    if (!valid_name(options.name))
        return make_error("switch name '" + options.name + "' is not 1 to 32 of A-Z a-z 0-9 _ . -");
    auto impl = std::make_shared<Impl>();
    impl->directory = options.directory.empty() ? directory_for(options.name) : options.directory;
    TRY(make_directories(impl->directory));
    // Unique among this host's ports: the process and a counter.
    static std::atomic<u32> ports_made{0};
    impl->path = impl->directory + "/" + PORT_PREFIX +
                 (options.port.empty() ? std::to_string(::getpid()) + "-" + std::to_string(ports_made++)
                                       : options.port);
    const std::optional<sockaddr_un> address = unix_address(impl->path);
    if (!address)
        return make_error("the switch's directory " + impl->directory + " is too long for a socket name");
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return make_error(std::string("cannot create a socket: ") + std::strerror(errno));
    const auto bind_port = [&] {
        return ::bind(fd, reinterpret_cast<const sockaddr*>(&*address), sizeof *address) == 0;
    };
    // A file of this name is left by an ended process (this pid's earlier
    // life, or a named port's last holder), unless a live one holds it.
    bool bound = bind_port();
    if (!bound && errno == EADDRINUSE) {
        if (!options.port.empty() && port_alive(*address)) {
            ::close(fd);
            return std::unique_ptr<SwitchPort>();
        }
        ::unlink(impl->path.c_str());
        bound = bind_port();
    }
    if (!bound) {
        const int error = errno;
        ::close(fd);
        return make_error("cannot bind " + impl->path + ": " + std::strerror(error));
    }
    impl->fd = fd;
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &SOCKET_BUFFER, sizeof SOCKET_BUFFER);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &SOCKET_BUFFER, sizeof SOCKET_BUFFER);
    Impl* raw = impl.get();
    impl->watcher = TRY(FdWatcher::create(loop, fd, [raw] { raw->receive_pending(); }));
    return std::unique_ptr<SwitchPort>(new SwitchPort(std::move(impl)));
}

SwitchPort::~SwitchPort()
{
    set_receiver({});
    m_impl->watcher.reset();
}

const std::string& SwitchPort::path() const { return m_impl->path; }

void SwitchPort::send(std::span<const u8> frame)
{
    if (frame.size() < MIN_FRAME || frame.size() > MAX_FRAME)
        return;
    std::lock_guard lock(m_impl->table_mutex);
    const u64 destination = mac_at(frame, 0);
    if (!group_address(destination)) {
        const auto known = m_impl->ports_by_address.find(destination);
        if (known != m_impl->ports_by_address.end()) {
            const std::string port = known->second; // send_to may erase the entry
            if (m_impl->send_to(port, frame))
                return;
            // Its port is gone: the address may live on elsewhere.
        }
    }
    m_impl->flood(frame);
}

void SwitchPort::set_receiver(Receiver receiver)
{
    std::lock_guard lock(m_impl->receiver_mutex);
    m_impl->receiver = std::move(receiver);
}
