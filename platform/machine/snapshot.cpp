#include "platform/machine/snapshot.h"

#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr char MAGIC[8] = {'V', 'R', 'D', 'N', 'S', 'N', 'A', 'P'};
constexpr u32 FORMAT_VERSION = 1;
constexpr u64 PAGE_BYTES = 4096;
constexpr u64 END_OF_PAGES = ~0ull;
constexpr u64 END_MARKER = 0x444E45'50414E53ull; // "SNAPEND" backwards, after the pages
// Larger header strings than these are not ours.
constexpr u32 MAX_HEADER_STRING = 1 << 16;
constexpr u64 MAX_STATE_BYTES = 256ull << 20;

// The build a snapshot comes from: the version and the sizes of the
// structures saved as they are laid out in memory.
std::string build_identity()
{
    return std::string("viridian ") + VIRIDIAN_VERSION + " (CpuState " +
           std::to_string(sizeof(CpuState)) + " bytes)";
}

void put_u32(std::string& out, u32 v) { out.append(reinterpret_cast<const char*>(&v), 4); }

// A zlib deflate stream onto a FILE*.
class Deflater {
public:
    explicit Deflater(std::FILE* out) : m_out(out) { m_ok = deflateInit(&m_z, Z_BEST_SPEED) == Z_OK; }
    ~Deflater() { deflateEnd(&m_z); }
    bool write(const void* data, size_t length) { return pump(data, length, Z_NO_FLUSH); }
    bool finish() { return pump(nullptr, 0, Z_FINISH); }
    bool ok() const { return m_ok; }

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
        } while (m_z.avail_out == 0 || (flush == Z_FINISH && status != Z_STREAM_END));
        return true;
    }

    std::FILE* m_out;
    z_stream m_z{};
    std::array<Bytef, 1 << 16> m_buffer;
    bool m_ok = false;
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

bool all_zero(const u8* page)
{
    u64 word;
    for (u64 offset = 0; offset < PAGE_BYTES; offset += sizeof word) {
        std::memcpy(&word, page + offset, sizeof word);
        if (word)
            return false;
    }
    return true;
}

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
           "\nenlightenments=" + (c.enlightenments ? "on" : "off") + "\n";
}

ErrorOr<void> save_snapshot(Machine& machine, std::FILE* out)
{
    StateVisitor state = StateVisitor::saver();
    machine.visit_state(state);
    if (!state.ok())
        return make_error("cannot save the machine: " + state.error());

    std::string header(MAGIC, sizeof MAGIC);
    put_u32(header, FORMAT_VERSION);
    const std::string build = build_identity();
    put_u32(header, static_cast<u32>(build.size()));
    header += build;
    const std::string config = snapshot_configuration(machine.config());
    put_u32(header, static_cast<u32>(config.size()));
    header += config;
    if (std::fwrite(header.data(), 1, header.size(), out) != header.size())
        return make_error(std::string("cannot write the snapshot: ") + std::strerror(errno));

    Deflater z(out);
    const u64 state_bytes = state.bytes().size();
    bool ok = z.ok() && z.write(&state_bytes, sizeof state_bytes) &&
              z.write(state.bytes().data(), state.bytes().size());
    PhysicalMemory& memory = machine.memory();
    const u64 pages = memory.ram_page_count(); // both RAM ranges, in order
    for (u64 page = 0; ok && page < pages; ++page) {
        const u8* bytes = memory.ram_page_by_index(page);
        if (all_zero(bytes))
            continue;
        ok = z.write(&page, sizeof page) && z.write(bytes, PAGE_BYTES);
    }
    ok = ok && z.write(&END_OF_PAGES, sizeof END_OF_PAGES) && z.write(&END_MARKER, sizeof END_MARKER) &&
         z.finish() && std::fflush(out) == 0;
    if (!ok)
        return make_error(std::string("cannot write the snapshot: ") +
                          (errno ? std::strerror(errno) : "compression failed"));
    return {};
}

ErrorOr<void> save_snapshot_file(Machine& machine, const std::string& path)
{
    const std::string temporary = path + ".tmp";
    std::FILE* out = std::fopen(temporary.c_str(), "wb");
    if (!out)
        return make_error("cannot create '" + temporary + "': " + std::strerror(errno));
    ErrorOr<void> saved = save_snapshot(machine, out);
    const bool synced = !saved.is_error() && ::fsync(fileno(out)) == 0;
    const int sync_error = errno;
    std::fclose(out);
    if (saved.is_error() || !synced) {
        std::remove(temporary.c_str());
        return saved.is_error() ? saved : make_error("cannot write '" + temporary + "': " + std::strerror(sync_error));
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0) {
        const int rename_error = errno;
        std::remove(temporary.c_str());
        return make_error("cannot rename '" + temporary + "' to '" + path + "': " + std::strerror(rename_error));
    }
    return {};
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

    Inflater z(in);
    u64 state_bytes = 0;
    if (!z.read(&state_bytes, sizeof state_bytes) || state_bytes > MAX_STATE_BYTES)
        return damaged("machine state");
    std::vector<u8> bytes(state_bytes);
    if (!z.read(bytes.data(), bytes.size()))
        return damaged("machine state");

    // RAM first: pages the snapshot does not list are zero.
    PhysicalMemory& memory = machine.memory();
    const u64 pages = memory.ram_page_count(); // both RAM ranges, in order
    std::vector<bool> listed(pages, false);
    for (;;) {
        u64 page = 0;
        if (!z.read(&page, sizeof page))
            return damaged("RAM");
        if (page == END_OF_PAGES)
            break;
        if (page >= pages || listed[page])
            return damaged("a RAM page out of place");
        listed[page] = true;
        if (!z.read(memory.ram_page_by_index(page), PAGE_BYTES))
            return damaged("RAM");
    }
    u64 end = 0;
    if (!z.read(&end, sizeof end) || end != END_MARKER || !z.finish())
        return damaged("end marker or checksum");
    for (u64 page = 0; page < pages; ++page) {
        u8* p = memory.ram_page_by_index(page);
        if (!listed[page] && !all_zero(p))
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

ErrorOr<void> save_snapshot_exec(Machine& machine, const std::string& command)
{
    std::FILE* pipe = ::popen(command.c_str(), "w");
    if (!pipe)
        return make_error("cannot run '" + command + "': " + std::strerror(errno));
    ErrorOr<void> saved = save_snapshot(machine, pipe);
    const std::optional<std::string> failure = command_failure(::pclose(pipe));
    if (saved.is_error())
        return saved;
    if (failure)
        return make_error("the snapshot command '" + command + "' failed: " + *failure);
    return {};
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
