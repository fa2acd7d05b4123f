#include "platform/machine/snapshot.h"

#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

namespace {

constexpr char MAGIC[8] = {'V', 'R', 'D', 'N', 'S', 'N', 'A', 'P'};
// 2: page records (data or zero) in any order, the state after them.
constexpr u32 FORMAT_VERSION = 2;
constexpr u64 PAGE_BYTES = 4096;
// A record's tag: a RAM page index (its 4096 bytes follow), the index with
// ZERO_PAGE set (the page is zero), or STATE (the state's length and bytes,
// then END_MARKER and the end of the zlib stream).
constexpr u64 ZERO_PAGE = 1ull << 63;
constexpr u64 STATE = ~0ull;
constexpr u64 END_MARKER = 0x444E45'50414E53ull; // "SNAPEND" backwards, after the pages
// Larger header strings than these are not ours.
constexpr u32 MAX_HEADER_STRING = 1 << 16;
constexpr u64 MAX_STATE_BYTES = 256ull << 20;

void put_u32(std::string& out, u32 v) { out.append(reinterpret_cast<const char*>(&v), 4); }

// A zlib deflate stream onto a FILE*.
class Deflater {
public:
    explicit Deflater(std::FILE* out) : m_out(out) { m_ok = deflateInit(&m_z, Z_BEST_SPEED) == Z_OK; }
    ~Deflater() { deflateEnd(&m_z); }
    bool write(const void* data, size_t length) { return pump(data, length, Z_NO_FLUSH); }
    bool finish() { return pump(nullptr, 0, Z_FINISH); }
    bool ok() const { return m_ok; }
    u64 produced() const { return m_produced; }

private:
    bool pump(const void* data, size_t length, int flush)
    {
        if (!m_ok)
            return false;
        m_z.next_in = static_cast<Bytef*>(const_cast<void*>(data));
        m_z.avail_in = static_cast<uInt>(length);
        int status;
        do {
            m_z.next_out = m_buffer.data();
            m_z.avail_out = static_cast<uInt>(m_buffer.size());
            status = deflate(&m_z, flush);
            const size_t produced = m_buffer.size() - m_z.avail_out;
            if (status == Z_STREAM_ERROR || std::fwrite(m_buffer.data(), 1, produced, m_out) != produced)
                return m_ok = false;
            m_produced += produced;
        } while (m_z.avail_out == 0 || (flush == Z_FINISH && status != Z_STREAM_END));
        return true;
    }

    std::FILE* m_out;
    z_stream m_z{};
    std::array<Bytef, 1 << 16> m_buffer;
    bool m_ok = false;
    u64 m_produced = 0;
};

// A zlib inflate stream from a FILE*.
class Inflater {
public:
    explicit Inflater(std::FILE* in) : m_in(in) { m_ok = inflateInit(&m_z) == Z_OK; }
    ~Inflater() { inflateEnd(&m_z); }
    // Exactly `length` bytes, or false (truncated or damaged).
    bool read(void* data, size_t length)
    {
        m_z.next_out = static_cast<Bytef*>(data);
        m_z.avail_out = static_cast<uInt>(length);
        while (m_ok && m_z.avail_out > 0) {
            if (m_z.avail_in == 0 && !refill())
                return m_ok = false;
            const int status = inflate(&m_z, Z_NO_FLUSH);
            m_ended = status == Z_STREAM_END;
            if (m_ended && m_z.avail_out > 0)
                return m_ok = false;
            if (status != Z_OK && status != Z_STREAM_END)
                return m_ok = false;
        }
        return m_ok;
    }
    bool ok() const { return m_ok; }
    // The stream ends here, and its checksum (Adler-32) matches.
    bool finish()
    {
        if (m_ended)
            return m_ok;
        Bytef extra;
        m_z.next_out = &extra;
        m_z.avail_out = 1;
        while (m_ok) {
            if (m_z.avail_in == 0 && !refill())
                return m_ok = false;
            const int status = inflate(&m_z, Z_NO_FLUSH);
            if (status == Z_STREAM_END)
                return m_z.avail_out == 1;
            if (status != Z_OK || m_z.avail_out == 0)
                return m_ok = false;
        }
        return false;
    }

private:
    // More compressed input; false at the end of the file.
    bool refill()
    {
        const size_t got = std::fread(m_buffer.data(), 1, m_buffer.size(), m_in);
        m_z.next_in = m_buffer.data();
        m_z.avail_in = static_cast<uInt>(got);
        return got != 0;
    }

    std::FILE* m_in;
    z_stream m_z{};
    std::array<Bytef, 1 << 16> m_buffer;
    bool m_ok = false;
    bool m_ended = false; // inflate() reported the end of the stream (checksum verified)
};

} // namespace

std::string build_identity()
{
    return std::string("viridian ") + VIRIDIAN_VERSION + " (CpuState " +
           std::to_string(sizeof(CpuState)) + " bytes)";
}

bool is_zero_page(const u8* page)
{
    u64 word;
    for (u64 offset = 0; offset < PAGE_BYTES; offset += sizeof word) {
        std::memcpy(&word, page + offset, sizeof word);
        if (word)
            return false;
    }
    return true;
}

PhysicalMemory::DirtyBitmap populated_ram_pages(PhysicalMemory& memory)
{
    const u64 pages = memory.ram_page_count();
    PhysicalMemory::DirtyBitmap bits((pages + 63) / 64, ~0ull);
    // /proc/self/pagemap: one u64 per virtual page, bit 63 present, bit 62
    // swapped (Documentation/admin-guide/mm/pagemap.rst).
    const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bits;
    const u64 first = reinterpret_cast<uintptr_t>(memory.ram_page_by_index(0)) / PAGE_BYTES;
    std::vector<u64> entries(4096);
    for (u64 page = 0; page < pages; page += entries.size()) {
        const u64 count = std::min<u64>(entries.size(), pages - page);
        const ssize_t got = ::pread(fd, entries.data(), count * 8, static_cast<off_t>((first + page) * 8));
        if (got != static_cast<ssize_t>(count * 8))
            break; // the rest stays set: scanned the slow way
        for (u64 i = 0; i < count; ++i)
            if (!(entries[i] >> 62))
                bits[(page + i) >> 6] &= ~(1ull << ((page + i) & 63));
    }
    ::close(fd);
    return bits;
}

namespace {

ErrorOr<std::string> read_header_string(std::FILE* in, const char* what)
{
    u32 length = 0;
    if (std::fread(&length, 4, 1, in) != 1 || length > MAX_HEADER_STRING)
        return make_error(std::string("the snapshot's header is damaged (") + what + ")");
    std::string text(length, '\0');
    if (length && std::fread(text.data(), 1, length, in) != length)
        return make_error(std::string("the snapshot's header is damaged (") + what + ")");
    return text;
}

// Text from the file shown in a message: a damaged header may hold any
// bytes, and the refusal is one line on a terminal.
std::string printable(std::string text)
{
    for (char& c : text)
        if (c < 0x20 || c > 0x7E)
            c = '?';
    return text;
}

Error damaged(const std::string& what) { return make_error("the snapshot is truncated or damaged: " + what); }

} // namespace

std::string snapshot_configuration(const MachineConfig& c)
{
    return "memory=" + std::to_string(c.memory_bytes) + "\ncpus=" + std::to_string(c.cpu_count) +
           "\ncpu=" + std::string(cpu_vendor_name(c.cpu_vendor)) + "\ncpu-features=" + c.cpu_features +
           "\ndeterministic=" + (c.deterministic ? "on" : "off") +
           "\nenlightenments=" + (c.enlightenments ? "on" : "off") + "\n" +
           // Adapters added at run time: a machine started from the command
           // line has none, so their state has nowhere to go.
           (c.added_nics.empty() ? "" : "added-network-adapters=" + std::to_string(c.added_nics.size()) + "\n");
}

struct SnapshotWriter::Impl {
    explicit Impl(std::FILE* out) : out(out), z(out) {}
    std::FILE* out;
    Deflater z;
    u64 header_bytes = 0;
};

SnapshotWriter::SnapshotWriter(std::FILE* out) : m_impl(std::make_unique<Impl>(out)) {}
SnapshotWriter::~SnapshotWriter() = default;

u64 SnapshotWriter::bytes_written() const { return m_impl->header_bytes + m_impl->z.produced(); }

namespace {

Error write_failed() { return make_error(std::string("cannot write the snapshot: ") + (errno ? std::strerror(errno) : "compression failed")); }

} // namespace

ErrorOr<void> SnapshotWriter::begin(const MachineConfig& config)
{
    std::string header(MAGIC, sizeof MAGIC);
    put_u32(header, FORMAT_VERSION);
    const std::string build = build_identity();
    put_u32(header, static_cast<u32>(build.size()));
    header += build;
    const std::string text = snapshot_configuration(config);
    put_u32(header, static_cast<u32>(text.size()));
    header += text;
    errno = 0;
    if (!m_impl->z.ok() || std::fwrite(header.data(), 1, header.size(), m_impl->out) != header.size())
        return write_failed();
    m_impl->header_bytes = header.size();
    return {};
}

ErrorOr<void> SnapshotWriter::page(u64 index, const u8* bytes)
{
    errno = 0;
    if (!m_impl->z.write(&index, sizeof index) || !m_impl->z.write(bytes, PAGE_BYTES))
        return write_failed();
    return {};
}

ErrorOr<void> SnapshotWriter::zero_page(u64 index)
{
    errno = 0;
    const u64 tag = index | ZERO_PAGE;
    if (!m_impl->z.write(&tag, sizeof tag))
        return write_failed();
    return {};
}

ErrorOr<void> SnapshotWriter::finish(Machine& machine)
{
    StateVisitor state = StateVisitor::saver();
    machine.visit_state(state);
    if (!state.ok())
        return make_error("cannot save the machine: " + state.error());
    errno = 0;
    const u64 state_bytes = state.bytes().size();
    Deflater& z = m_impl->z;
    if (!z.write(&STATE, sizeof STATE) || !z.write(&state_bytes, sizeof state_bytes) ||
        !z.write(state.bytes().data(), state.bytes().size()) || !z.write(&END_MARKER, sizeof END_MARKER) ||
        !z.finish() || std::fflush(m_impl->out) != 0)
        return write_failed();
    return {};
}

ErrorOr<void> save_snapshot(Machine& machine, std::FILE* out)
{
    // Refuse a machine that cannot be saved before writing anything.
    StateVisitor probe = StateVisitor::saver();
    machine.visit_state(probe);
    if (!probe.ok())
        return make_error("cannot save the machine: " + probe.error());
    SnapshotWriter writer(out);
    TRY(writer.begin(machine.config()));
    PhysicalMemory& memory = machine.memory();
    const u64 pages = memory.ram_page_count(); // both RAM ranges, in order
    const PhysicalMemory::DirtyBitmap populated = populated_ram_pages(memory);
    for (u64 page = 0; page < pages; ++page) {
        const u8* bytes = memory.ram_page_by_index(page);
        if (PhysicalMemory::test_bit(populated, page) && !is_zero_page(bytes))
            TRY(writer.page(page, bytes));
    }
    return writer.finish(machine);
}

SnapshotSink::~SnapshotSink()
{
    if (m_file)
        (void)close(false);
}

ErrorOr<std::unique_ptr<SnapshotSink>> SnapshotSink::file(const std::string& path)
{
    const std::string temporary = path + ".tmp";
    std::FILE* out = std::fopen(temporary.c_str(), "wb");
    if (!out)
        return make_error("cannot create '" + temporary + "': " + std::strerror(errno));
    return std::unique_ptr<SnapshotSink>(new SnapshotSink(Kind::File, out, path));
}

ErrorOr<std::unique_ptr<SnapshotSink>> SnapshotSink::exec(const std::string& command)
{
    std::FILE* pipe = ::popen(command.c_str(), "w");
    if (!pipe)
        return make_error("cannot run '" + command + "': " + std::strerror(errno));
    return std::unique_ptr<SnapshotSink>(new SnapshotSink(Kind::Exec, pipe, command));
}

ErrorOr<std::unique_ptr<SnapshotSink>> SnapshotSink::socket(int fd, const std::string& name)
{
    std::FILE* out = ::fdopen(fd, "wb");
    if (!out) {
        ::close(fd);
        return make_error("cannot use the connection to " + name + ": " + std::strerror(errno));
    }
    return std::unique_ptr<SnapshotSink>(new SnapshotSink(Kind::Socket, out, name));
}

ErrorOr<void> save_snapshot_file(Machine& machine, const std::string& path)
{
    std::unique_ptr<SnapshotSink> sink = TRY(SnapshotSink::file(path));
    ErrorOr<void> saved = save_snapshot(machine, sink->stream());
    ErrorOr<void> closed = sink->close(!saved.is_error());
    return saved.is_error() ? saved : closed;
}

ErrorOr<void> load_snapshot(Machine& machine, std::FILE* in)
{
    if (machine.retired() != 0)
        return make_error("a snapshot loads only into a machine that has not run");
    char magic[sizeof MAGIC];
    u32 version = 0;
    if (std::fread(magic, 1, sizeof magic, in) != sizeof magic || std::memcmp(magic, MAGIC, sizeof MAGIC) != 0)
        return make_error("not a viridian snapshot (no VRDNSNAP signature)");
    if (std::fread(&version, 4, 1, in) != 1 || version != FORMAT_VERSION)
        return make_error("snapshot format " + std::to_string(version) + " is not the format this viridian reads (" +
                          std::to_string(FORMAT_VERSION) + ")");
    const std::string build = TRY(read_header_string(in, "build"));
    if (build != build_identity())
        return make_error("the snapshot was made by " + printable(build) + "; this is " + build_identity());
    const std::string config = TRY(read_header_string(in, "configuration"));
    const std::string ours = snapshot_configuration(machine.config());
    if (config != ours) {
        // Name the first line that differs.
        size_t line = 0;
        while (line < config.size() && line < ours.size() && config[line] == ours[line])
            ++line;
        line = config.rfind('\n', line == 0 ? 0 : line - 1);
        line = line == std::string::npos ? 0 : line + 1;
        const std::string theirs = config.substr(line, config.find('\n', line) - line);
        const std::string mine = ours.substr(line, ours.find('\n', line) - line);
        return make_error("the snapshot's machine differs: it has " + printable(theirs) + ", this one " + mine);
    }

    // RAM first: pages no record names are zero. A page may come more than
    // once (live migration sends the pages written meanwhile again): the
    // last record wins.
    Inflater z(in);
    PhysicalMemory& memory = machine.memory();
    const u64 pages = memory.ram_page_count(); // both RAM ranges, in order
    std::vector<bool> listed(pages, false);
    for (;;) {
        u64 tag = 0;
        if (!z.read(&tag, sizeof tag))
            return damaged("RAM");
        if (tag == STATE)
            break;
        const u64 page = tag & ~ZERO_PAGE;
        if (page >= pages)
            return damaged("a RAM page out of place");
        listed[page] = true;
        if (tag & ZERO_PAGE)
            std::memset(memory.ram_page_by_index(page), 0, PAGE_BYTES);
        else if (!z.read(memory.ram_page_by_index(page), PAGE_BYTES))
            return damaged("RAM");
    }
    u64 state_bytes = 0;
    if (!z.read(&state_bytes, sizeof state_bytes) || state_bytes > MAX_STATE_BYTES)
        return damaged("machine state");
    std::vector<u8> bytes(state_bytes);
    if (!z.read(bytes.data(), bytes.size()))
        return damaged("machine state");
    u64 end = 0;
    if (!z.read(&end, sizeof end) || end != END_MARKER || !z.finish())
        return damaged("end marker or checksum");
    const PhysicalMemory::DirtyBitmap populated = populated_ram_pages(memory);
    for (u64 page = 0; page < pages; ++page) {
        u8* p = memory.ram_page_by_index(page);
        if (!listed[page] && PhysicalMemory::test_bit(populated, page) && !is_zero_page(p))
            std::memset(p, 0, PAGE_BYTES);
    }

    StateVisitor state = StateVisitor::loader(std::move(bytes));
    machine.visit_state(state);
    if (!state.ok())
        return make_error("cannot load the snapshot: " + state.error());
    if (!state.at_end())
        return damaged("machine state longer than this build reads");
    return {};
}

ErrorOr<void> load_snapshot_file(Machine& machine, const std::string& path)
{
    std::FILE* in = std::fopen(path.c_str(), "rb");
    if (!in)
        return make_error("cannot open '" + path + "': " + std::strerror(errno));
    ErrorOr<void> loaded = load_snapshot(machine, in);
    std::fclose(in);
    return loaded;
}

namespace {

// pclose's status of a command: empty when it exited with 0.
std::optional<std::string> command_failure(int status)
{
    if (status == -1)
        return std::string(std::strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return std::nullopt;
    if (WIFEXITED(status))
        return "it exited with status " + std::to_string(WEXITSTATUS(status));
    return std::string("it was killed by a signal");
}

} // namespace

ErrorOr<void> SnapshotSink::close(bool complete)
{
    std::FILE* file = std::exchange(m_file, nullptr);
    if (!file)
        return {};
    switch (m_kind) {
    case Kind::File: {
        const std::string temporary = m_name + ".tmp";
        const bool synced = complete && std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
        const int sync_error = errno;
        std::fclose(file);
        if (!synced) {
            std::remove(temporary.c_str());
            if (!complete)
                return {};
            return make_error("cannot write '" + temporary + "': " + std::strerror(sync_error));
        }
        if (std::rename(temporary.c_str(), m_name.c_str()) != 0) {
            const int rename_error = errno;
            std::remove(temporary.c_str());
            return make_error("cannot rename '" + temporary + "' to '" + m_name + "': " + std::strerror(rename_error));
        }
        return {};
    }
    case Kind::Exec: {
        const std::optional<std::string> failure = command_failure(::pclose(file));
        if (complete && failure)
            return make_error("the snapshot command '" + m_name + "' failed: " + *failure);
        return {};
    }
    case Kind::Socket:
        if (std::fclose(file) != 0 && complete)
            return make_error("cannot send the machine to " + m_name + ": " + std::strerror(errno));
        return {};
    }
    return {};
}

ErrorOr<void> save_snapshot_exec(Machine& machine, const std::string& command)
{
    std::unique_ptr<SnapshotSink> sink = TRY(SnapshotSink::exec(command));
    ErrorOr<void> saved = save_snapshot(machine, sink->stream());
    ErrorOr<void> closed = sink->close(!saved.is_error());
    return saved.is_error() ? saved : closed;
}

ErrorOr<void> load_snapshot_exec(Machine& machine, const std::string& command)
{
    std::FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe)
        return make_error("cannot run '" + command + "': " + std::strerror(errno));
    ErrorOr<void> loaded = load_snapshot(machine, pipe);
    // Drain what is left so the command does not die of SIGPIPE on a refusal.
    char sink[4096];
    while (std::fread(sink, 1, sizeof sink, pipe) > 0) {
    }
    const std::optional<std::string> failure = command_failure(::pclose(pipe));
    if (loaded.is_error())
        return loaded;
    if (failure)
        return make_error("the snapshot command '" + command + "' failed: " + *failure);
    return {};
}

ErrorOr<void> load_snapshot_socket(Machine& machine, int fd)
{
    std::FILE* in = ::fdopen(fd, "rb");
    if (!in) {
        ::close(fd);
        return make_error(std::string("cannot read the incoming migration: ") + std::strerror(errno));
    }
    ErrorOr<void> loaded = load_snapshot(machine, in);
    std::fclose(in);
    return loaded;
}
