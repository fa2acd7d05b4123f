#include "platform/net/slirp_backend.h"

#include "platform/host/event_loop.h"

#include <slirp/libslirp.h>
#include <uv.h>

#include <arpa/inet.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace {

constexpr const char *NETWORK = "10.0.2.0", *NETMASK = "255.255.255.0", *HOST = "10.0.2.2",
                     *DHCP_START = "10.0.2.15", *NAMESERVER = "10.0.2.3";
constexpr unsigned GUEST_ERRORS_SHOWN = 5;

in_addr address(const char* text)
{
    in_addr a{};
    inet_pton(AF_INET, text, &a);
    return a;
}

i64 now_ns()
{
    return static_cast<i64>(uv_hrtime());
}

// One slirp timer: a loop timer that calls slirp back when it expires.
struct SlirpTimer {
    SlirpTimerCb callback;
    void* callback_opaque;
    std::unique_ptr<LoopTimer> timer;
};

// The libuv handles that drive slirp. libuv frees nothing of ours: each
// handle's close callback counts down, and the last deletes the block.
struct Handles {
    uv_prepare_t prepare;
    uv_check_t check;
    uv_poll_t poll;
    uv_timer_t wake;
    int open = 0;
};

void close_handle(uv_handle_t* handle)
{
    uv_close(handle, [](uv_handle_t* h) {
        Handles* handles = static_cast<Handles*>(h->data);
        if (--handles->open == 0)
            delete handles;
    });
}

} // namespace

struct SlirpBackend::Impl {
    EventLoop& loop;
    Slirp* slirp = nullptr;
    std::mutex receiver_mutex;
    Receiver receiver; // guarded by receiver_mutex
    int epoll_fd = -1;
    Handles* handles = nullptr;
    // What the last slirp_pollfds_fill asked for; revents filled by poll().
    std::vector<pollfd> fds;
    std::unordered_map<int, u32> watched; // fd -> epoll events in the set
    unsigned guest_errors = 0;

    explicit Impl(EventLoop& l) : loop(l) {}
    ~Impl();
    bool start_handles();
    void before_wait();
    void after_wait();
    void watch(int fd, u32 events);
};

namespace {

SlirpBackend::Impl& impl_of(void* opaque)
{
    return *static_cast<SlirpBackend::Impl*>(opaque);
}

ssize_t send_packet(const void* data, size_t length, void* opaque)
{
    SlirpBackend::Impl& impl = impl_of(opaque);
    const u8* bytes = static_cast<const u8*>(data);
    std::lock_guard lock(impl.receiver_mutex);
    if (impl.receiver)
        impl.receiver(std::vector<u8>(bytes, bytes + length));
    return static_cast<ssize_t>(length);
}

void guest_error(const char* message, void* opaque)
{
    // The guest's mistakes are its own: a few lines, then silence.
    SlirpBackend::Impl& impl = impl_of(opaque);
    if (impl.guest_errors++ < GUEST_ERRORS_SHOWN)
        std::fprintf(stderr, "viridian: user network: guest error: %s\n", message);
}

int64_t clock_get_ns(void*)
{
    return now_ns();
}

void* timer_new(SlirpTimerCb callback, void* callback_opaque, void* opaque)
{
    auto* t = new SlirpTimer{callback, callback_opaque, nullptr};
    t->timer =
        std::make_unique<LoopTimer>(impl_of(opaque).loop, [t] { t->callback(t->callback_opaque); });
    return t;
}

void timer_free(void* timer, void*)
{
    delete static_cast<SlirpTimer*>(timer);
}

void timer_mod(void* timer, int64_t expire_ms, void*)
{
    const i64 delay = expire_ms - now_ns() / 1'000'000;
    static_cast<SlirpTimer*>(timer)->timer->start(delay > 0 ? static_cast<u64>(delay) : 0);
}

void register_poll_fd(int, void*) {}
void unregister_poll_fd(int, void*) {}
void notify(void*) {}

const SlirpCb CALLBACKS = {
    .send_packet = send_packet,
    .guest_error = guest_error,
    .clock_get_ns = clock_get_ns,
    .timer_new = timer_new,
    .timer_free = timer_free,
    .timer_mod = timer_mod,
    .register_poll_fd = register_poll_fd,
    .unregister_poll_fd = unregister_poll_fd,
    .notify = notify,
    .init_completed = nullptr,
    .timer_new_opaque = nullptr,
};

int add_poll(int fd, int events, void* opaque)
{
    SlirpBackend::Impl& impl = impl_of(opaque);
    short wanted = 0;
    if (events & SLIRP_POLL_IN)
        wanted |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        wanted |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        wanted |= POLLPRI;
    impl.fds.push_back({fd, wanted, 0});
    return static_cast<int>(impl.fds.size() - 1);
}

int get_revents(int index, void* opaque)
{
    SlirpBackend::Impl& impl = impl_of(opaque);
    if (index < 0 || static_cast<size_t>(index) >= impl.fds.size())
        return 0;
    const short r = impl.fds[index].revents;
    int events = 0;
    if (r & POLLIN)
        events |= SLIRP_POLL_IN;
    if (r & POLLOUT)
        events |= SLIRP_POLL_OUT;
    if (r & POLLPRI)
        events |= SLIRP_POLL_PRI;
    if (r & (POLLERR | POLLNVAL))
        events |= SLIRP_POLL_ERR;
    if (r & POLLHUP)
        events |= SLIRP_POLL_HUP;
    return events;
}

} // namespace

bool SlirpBackend::Impl::start_handles()
{
    // Each turn of the loop: before it waits, slirp says which sockets it
    // wants and how long it may sleep (the epoll set and the wake timer
    // follow); after the wait, one poll() with no timeout gives slirp what
    // is ready. The epoll set is one descriptor libuv watches, so slirp's
    // sockets, which come and go, are never libuv's.
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        return false;
    handles = new Handles;
    uv_loop_t* uv = loop.uv();
    uv_prepare_init(uv, &handles->prepare);
    uv_check_init(uv, &handles->check);
    uv_timer_init(uv, &handles->wake);
    if (uv_poll_init(uv, &handles->poll, epoll_fd) != 0) {
        delete handles;
        handles = nullptr;
        return false;
    }
    handles->open = 4;
    for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&handles->prepare),
                           reinterpret_cast<uv_handle_t*>(&handles->check),
                           reinterpret_cast<uv_handle_t*>(&handles->wake),
                           reinterpret_cast<uv_handle_t*>(&handles->poll)})
        h->data = this;
    uv_prepare_start(&handles->prepare,
                     [](uv_prepare_t* h) { static_cast<Impl*>(h->data)->before_wait(); });
    uv_check_start(&handles->check,
                   [](uv_check_t* h) { static_cast<Impl*>(h->data)->after_wait(); });
    uv_poll_start(&handles->poll, UV_READABLE, [](uv_poll_t*, int, int) {});
    return true;
}

void SlirpBackend::Impl::watch(int fd, u32 events)
{
    // A descriptor slirp closed and reopened under the same number left the
    // set when it closed: MOD fails with ENOENT and it is added again.
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &event) != 0 && errno == ENOENT)
        (void)epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
}

void SlirpBackend::Impl::before_wait()
{
    fds.clear();
    uint32_t timeout_ms = 1000;
    slirp_pollfds_fill(slirp, &timeout_ms, add_poll, this);
    std::unordered_map<int, u32> now;
    for (const pollfd& p : fds)
        now[p.fd] |= (p.events & POLLIN ? EPOLLIN : 0u) | (p.events & POLLOUT ? EPOLLOUT : 0u) |
                     (p.events & POLLPRI ? EPOLLPRI : 0u);
    for (const auto& [fd, events] : watched)
        if (!now.contains(fd))
            (void)epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    for (const auto& [fd, events] : now)
        watch(fd, events);
    watched = std::move(now);
    // The wake timer only ends the loop's wait; after_wait does the work.
    uv_timer_start(
        &handles->wake, [](uv_timer_t*) {}, timeout_ms, 0);
}

void SlirpBackend::Impl::after_wait()
{
    if (!fds.empty())
        (void)::poll(fds.data(), fds.size(), 0);
    slirp_pollfds_poll(slirp, 0, get_revents, this);
    fds.clear();
}

SlirpBackend::Impl::~Impl()
{
    if (slirp)
        slirp_cleanup(slirp);
    if (handles) {
        uv_prepare_stop(&handles->prepare);
        uv_check_stop(&handles->check);
        uv_timer_stop(&handles->wake);
        uv_poll_stop(&handles->poll);
        for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&handles->prepare),
                               reinterpret_cast<uv_handle_t*>(&handles->check),
                               reinterpret_cast<uv_handle_t*>(&handles->wake),
                               reinterpret_cast<uv_handle_t*>(&handles->poll)}) {
            h->data = handles;
            close_handle(h);
        }
    }
    if (epoll_fd >= 0)
        ::close(epoll_fd);
}

ErrorOr<std::unique_ptr<SlirpBackend>> SlirpBackend::create(EventLoop& loop,
                                                            const SlirpOptions& options)
{
    auto impl = std::make_shared<Impl>(loop);
    SlirpConfig config{};
    config.version = 4;
    config.restricted = options.restricted ? 1 : 0;
    config.in_enabled = true;
    config.vnetwork = address(NETWORK);
    config.vnetmask = address(NETMASK);
    config.vhost = address(HOST);
    config.in6_enabled = false;
    config.vdhcp_start = address(DHCP_START);
    config.vnameserver = address(NAMESERVER);
    impl->slirp = slirp_new(&config, &CALLBACKS, impl.get());
    if (!impl->slirp)
        return make_error("user network: libslirp could not start");
    for (const SlirpOptions::HostForward& f : options.forwards) {
        in_addr host{};
        in_addr guest = config.vdhcp_start;
        if (!f.host_address.empty() && inet_pton(AF_INET, f.host_address.c_str(), &host) != 1)
            return make_error("hostfwd: " + f.host_address + " is not an IPv4 address");
        if (!f.guest_address.empty() && inet_pton(AF_INET, f.guest_address.c_str(), &guest) != 1)
            return make_error("hostfwd: " + f.guest_address + " is not an IPv4 address");
        if (slirp_add_hostfwd(impl->slirp, f.udp ? 1 : 0, host, f.host_port, guest, f.guest_port) !=
            0)
            return make_error("hostfwd: cannot listen on " + std::string(f.udp ? "udp" : "tcp") +
                              " " + (f.host_address.empty() ? "*" : f.host_address) + ":" +
                              std::to_string(f.host_port) + ": " + std::strerror(errno));
    }
    if (!impl->start_handles())
        return make_error("user network: cannot watch slirp's sockets: " +
                          std::string(std::strerror(errno)));
    return std::unique_ptr<SlirpBackend>(new SlirpBackend(std::move(impl)));
}

SlirpBackend::~SlirpBackend()
{
    set_receiver({});
}

void SlirpBackend::send(std::span<const u8> frame)
{
    // From the machine's thread: slirp runs on the loop's, so the frame
    // goes there (a task that finds the backend gone drops it).
    std::weak_ptr<Impl> weak = m_impl;
    m_impl->loop.post([weak, bytes = std::vector<u8>(frame.begin(), frame.end())] {
        if (std::shared_ptr<Impl> impl = weak.lock())
            slirp_input(impl->slirp, bytes.data(), static_cast<int>(bytes.size()));
    });
}

void SlirpBackend::set_receiver(Receiver receiver)
{
    std::lock_guard lock(m_impl->receiver_mutex);
    m_impl->receiver = std::move(receiver);
}
