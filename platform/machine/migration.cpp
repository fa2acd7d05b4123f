#include "platform/machine/migration.h"

#include "mmu/base/host_time.h"

#include <arpa/inet.h>
#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

constexpr u64 PAGE_BYTES = 4096;

} // namespace

const char* migration_status_name(MigrationProgress::Status status)
{
    switch (status) {
    case MigrationProgress::Status::Setup:
        return "setup";
    case MigrationProgress::Status::Active:
        return "active";
    case MigrationProgress::Status::Completed:
        return "completed";
    case MigrationProgress::Status::Failed:
        return "failed";
    case MigrationProgress::Status::Cancelled:
        return "cancelled";
    }
    return "failed";
}

MigrationSender::MigrationSender(Machine& machine, std::unique_ptr<SnapshotSink> sink)
    : m_machine(machine), m_sink(std::move(sink)), m_writer(m_sink->stream()), m_start_ns(host_monotonic_ns())
{
    m_progress.total_bytes = machine.memory().ram_page_count() * PAGE_BYTES;
    m_progress.remaining = m_progress.total_bytes;
}

MigrationSender::~MigrationSender()
{
    if (!finished())
        cancel();
}

bool MigrationSender::finished() const
{
    return m_progress.status != MigrationProgress::Status::Setup &&
           m_progress.status != MigrationProgress::Status::Active;
}

void MigrationSender::end(MigrationProgress::Status status)
{
    m_machine.memory().stop_dirty_log();
    if (m_sink) {
        ErrorOr<void> closed = m_sink->close(status == MigrationProgress::Status::Completed);
        if (closed.is_error() && status == MigrationProgress::Status::Completed) {
            status = MigrationProgress::Status::Failed;
            m_progress.error = closed.error().message;
        }
    }
    m_progress.status = status;
    m_progress.transferred = m_writer.bytes_written();
    update_rates();
}

void MigrationSender::cancel()
{
    if (!finished())
        end(MigrationProgress::Status::Cancelled);
}

void MigrationSender::fail(const std::string& why)
{
    if (finished())
        return;
    m_progress.error = why;
    end(MigrationProgress::Status::Failed);
}

void MigrationSender::update_rates()
{
    const u64 elapsed = host_monotonic_ns() - m_start_ns;
    m_progress.total_ms = elapsed / 1'000'000;
    if (elapsed == 0)
        return;
    const double seconds = static_cast<double>(elapsed) * 1e-9;
    m_progress.mbps = static_cast<double>(m_progress.transferred) * 8 / seconds / 1e6;
    m_progress.pages_per_second =
        static_cast<u64>(static_cast<double>(m_progress.normal + m_progress.duplicate) / seconds);
}

ErrorOr<void> MigrationSender::send_page(u64 page, bool skip_zero)
{
    const u8* bytes = m_machine.memory().ram_page_by_index(page);
    if (is_zero_page(bytes)) {
        ++m_progress.duplicate;
        // The first round sends no zero pages: the target's RAM starts so.
        return skip_zero ? ErrorOr<void>{} : m_writer.zero_page(page);
    }
    ++m_progress.normal;
    return m_writer.page(page, bytes);
}

bool MigrationSender::next_page(u64& page)
{
    const u64 pages = m_machine.memory().ram_page_count();
    if (m_first_round) {
        // Pages never written are zero on the target too: not looked at.
        while (m_cursor < pages && !PhysicalMemory::test_bit(m_populated, m_cursor)) {
            ++m_cursor;
            ++m_progress.duplicate;
            if (m_round_left)
                --m_round_left;
        }
        if (m_cursor >= pages)
            return false;
        page = m_cursor++;
        return true;
    }
    for (u64 word = m_cursor >> 6; word < m_dirty.size(); ++word) {
        const u64 bits = m_dirty[word] & (~0ull << (word == (m_cursor >> 6) ? (m_cursor & 63) : 0));
        if (bits) {
            page = (word << 6) + static_cast<u64>(std::countr_zero(bits));
            m_cursor = page + 1;
            return page < pages;
        }
    }
    m_cursor = m_dirty.size() * 64;
    return false;
}

void MigrationSender::end_round()
{
    const u64 now = host_monotonic_ns();
    m_machine.memory().collect_dirty(m_dirty);
    u64 dirty = 0;
    for (u64 word : m_dirty)
        dirty += static_cast<u64>(std::popcount(word));
    const u64 round_ns = std::max<u64>(now - m_round_start_ns, 1);
    m_progress.dirty_pages_rate = dirty * 1'000'000'000 / round_ns;
    m_round_start_ns = now;
    m_first_round = false;
    m_cursor = 0;
    m_round_left = dirty;
    m_progress.remaining = dirty * PAGE_BYTES;
    // Pages per nanosecond while sending, so the downtime of sending what is
    // dirty now can be foreseen.
    const double rate = m_busy_ns ? static_cast<double>(m_busy_pages) / static_cast<double>(m_busy_ns) : 0;
    const bool small = static_cast<double>(dirty) <= rate * MAX_DOWNTIME_NS;
    if (small || m_progress.dirty_sync_count >= MAX_ROUNDS) {
        stop_and_copy();
        return;
    }
    ++m_progress.dirty_sync_count;
}

void MigrationSender::stop_and_copy()
{
    // The guest does not run until step() returns, and then no more: what
    // is sent now is the machine's final state.
    const u64 start = host_monotonic_ns();
    const u64 bytes_before = m_writer.bytes_written();
    ++m_progress.dirty_sync_count;
    u64 page = 0;
    while (next_page(page)) {
        if (ErrorOr<void> sent = send_page(page, false); sent.is_error())
            return fail(sent.error().message);
    }
    if (ErrorOr<void> finished = m_writer.finish(m_machine); finished.is_error())
        return fail(finished.error().message);
    m_progress.remaining = 0;
    m_progress.downtime_bytes = m_writer.bytes_written() - bytes_before;
    end(MigrationProgress::Status::Completed);
    m_progress.downtime_ms = (host_monotonic_ns() - start) / 1'000'000;
}

u64 MigrationSender::running_slice_ns(u64 guest_ran_ns)
{
    return std::clamp(guest_ran_ns, MIN_RUNNING_SLICE_NS, MAX_RUNNING_SLICE_NS);
}

u64 MigrationSender::guest_ran_ns() const
{
    return m_last_step_end_ns ? host_monotonic_ns() - m_last_step_end_ns : 0;
}

bool MigrationSender::step_beside_guest() { return step(running_slice_ns(guest_ran_ns())); }

bool MigrationSender::step(u64 budget_ns)
{
    // Whichever way the slice ends: a slice in an idle wait that left the
    // old time would make the next one beside the guest count the wait as
    // the guest's running time, and take the thread for up to
    // MAX_RUNNING_SLICE_NS after a guest that ran for a moment.
    const bool done = send_slice(budget_ns);
    m_last_step_end_ns = host_monotonic_ns();
    return done;
}

bool MigrationSender::send_slice(u64 budget_ns)
{
    if (finished())
        return true;
    const u64 start = host_monotonic_ns();
    if (m_progress.status == MigrationProgress::Status::Setup) {
        if (ErrorOr<void> begun = m_writer.begin(m_machine.config()); begun.is_error()) {
            fail(begun.error().message);
            return true;
        }
        // A machine that cannot be saved (the test devices) fails now, not
        // after the rounds.
        StateVisitor probe = StateVisitor::saver();
        m_machine.visit_state(probe);
        if (!probe.ok()) {
            fail("cannot save the machine: " + probe.error());
            return true;
        }
        m_machine.memory().start_dirty_log();
        // After the log starts: a page first written later is in the log.
        m_populated = populated_ram_pages(m_machine.memory());
        m_progress.status = MigrationProgress::Status::Active;
        m_progress.setup_ms = (start - m_start_ns) / 1'000'000;
        m_progress.dirty_sync_count = 1;
        m_round_start_ns = start;
        m_round_left = m_machine.memory().ram_page_count();
    }
    u64 looked = 0;
    const u64 normal_before = m_progress.normal;
    for (;;) {
        // The clock is read every few pages: a page costs about a microsecond.
        if ((looked & 31) == 0 && looked && host_monotonic_ns() - start >= budget_ns)
            break;
        u64 page = 0;
        if (!next_page(page)) {
            // The guest runs before the next round: it is what dirties pages.
            end_round();
            if (finished())
                return true;
            break;
        }
        ++looked;
        if (m_round_left)
            --m_round_left;
        if (ErrorOr<void> sent = send_page(page, m_first_round); sent.is_error()) {
            fail(sent.error().message);
            return true;
        }
    }
    // The rate of pages sent with their bytes: the last copy is mostly
    // such pages, and zero pages would make it look far faster than it is.
    m_busy_ns += host_monotonic_ns() - start;
    m_busy_pages += m_progress.normal - normal_before;
    m_progress.remaining = m_round_left * PAGE_BYTES;
    m_progress.transferred = m_writer.bytes_written();
    update_rates();
    return false;
}

namespace {

ErrorOr<addrinfo*> resolve(const std::string& host, u16 port, bool passive)
{
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    const int status = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
    if (status != 0)
        return make_error("cannot resolve '" + host + "': " + ::gai_strerror(status));
    return found;
}

std::string describe(const std::string& host, u16 port) { return "tcp:" + host + ":" + std::to_string(port); }

} // namespace

ErrorOr<int> migration_connect(const std::string& host, u16 port)
{
    addrinfo* found = TRY(resolve(host, port, false));
    int error = ECONNREFUSED;
    for (addrinfo* a = found; a; a = a->ai_next) {
        const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            error = errno;
            continue;
        }
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            ::freeaddrinfo(found);
            // A target that stops reading fails the migration instead of
            // blocking the machine's thread for ever.
            timeval timeout{30, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
            return fd;
        }
        error = errno;
        ::close(fd);
    }
    ::freeaddrinfo(found);
    return make_error("cannot connect to " + describe(host, port) + ": " + std::strerror(error));
}

ErrorOr<int> migration_listen(const std::string& host, u16 port)
{
    addrinfo* found = TRY(resolve(host, port, true));
    int error = EADDRNOTAVAIL;
    for (addrinfo* a = found; a; a = a->ai_next) {
        const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            error = errno;
            continue;
        }
        const int on = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1) == 0) {
            ::freeaddrinfo(found);
            return fd;
        }
        error = errno;
        ::close(fd);
    }
    ::freeaddrinfo(found);
    return make_error("cannot listen on " + describe(host, port) + ": " + std::strerror(error));
}

ErrorOr<int> migration_accept(int listener, const std::function<bool()>& keep_waiting)
{
    for (;;) {
        pollfd waiting{listener, POLLIN, 0};
        const int ready = ::poll(&waiting, 1, 100);
        if (ready < 0 && errno != EINTR)
            return make_error(std::string("cannot wait for the incoming migration: ") + std::strerror(errno));
        if (ready > 0) {
            const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd >= 0)
                return fd;
            if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                return make_error(std::string("cannot accept the incoming migration: ") + std::strerror(errno));
        }
        if (keep_waiting && !keep_waiting())
            return make_error("no incoming migration arrived");
    }
}
