#include "platform/replay/recording.h"

#include "mmu/base/byte_reader.h"
#include "platform/machine/snapshot.h"

#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace replay {

namespace {

constexpr char MAGIC[8] = {'V', 'R', 'D', 'N', 'R', 'P', 'L', 'Y'};
constexpr size_t PREAMBLE = sizeof MAGIC + 4 + 4; // magic, version, header length
// After a finished recording's event stream (version 3 on), which a killed
// recording never has: the marker, then the CRC-32 and the length of the
// stream as decompressed. zlib's Adler-32 lets some damage through on
// repetitive records (a changed back-reference whose sums still match);
// the CRC-32 does not.
constexpr char END_MARKER[8] = {'V', 'R', 'D', 'N', 'D', 'O', 'N', 'E'};
constexpr size_t END_TRAILER = sizeof END_MARKER + 4 + 8;
constexpr u32 FIRST_VERSION_WITH_END_MARKER = 3;
// Larger than these is not a recording of ours.
constexpr u32 MAX_HEADER = 1 << 20;
constexpr u64 MAX_STRING = 1 << 16;
constexpr u64 MAX_LIST = 1 << 12;
constexpr u64 MAX_STREAM = 1ull << 30;
constexpr u64 MAX_FRAME = 1 << 16;
constexpr u64 MAX_VCPUS = 1 << 10;
constexpr u8 MAX_END_KIND = 8; // RunOutcome::Kind::Checkpoint

void put_u32(std::string& out, u32 v)
{
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string& out, u64 v)
{
    for (int i = 0; i < 8; ++i)
        out.push_back(static_cast<char>(v >> (8 * i)));
}
std::string end_trailer(u32 stream_crc, u64 stream_length)
{
    std::string out(END_MARKER, sizeof END_MARKER);
    put_u32(out, stream_crc);
    put_u64(out, stream_length);
    return out;
}

// LEB128: most numbers in the stream (deltas, small counts) take a byte.
void put_varint(std::string& out, u64 v)
{
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7F) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}
void put_string(std::string& out, const std::string& s)
{
    put_varint(out, s.size());
    out += s;
}

std::string encode_header(const RecordingHeader& h)
{
    std::string body;
    put_string(body, h.build);
    put_varint(body, h.args.size());
    for (const std::string& arg : h.args)
        put_string(body, arg);
    put_varint(body, h.files.size());
    for (const FileIdentity& f : h.files) {
        put_string(body, f.role);
        put_string(body, f.path);
        put_varint(body, f.size);
        put_u64(body, f.hash);
    }
    body.push_back(h.input_can_wake ? 1 : 0);
    put_varint(body, h.sync_interval);
    put_u64(body, h.rng_seed);

    std::string out(MAGIC, sizeof MAGIC);
    put_u32(out, FORMAT_VERSION);
    put_u32(out, static_cast<u32>(body.size()));
    out += body;
    put_u32(out, static_cast<u32>(crc32(0, reinterpret_cast<const Bytef*>(body.data()),
                                        static_cast<uInt>(body.size()))));
    return out;
}

void encode_record(std::string& out, const Record& r, u64& last_poll)
{
    out.push_back(static_cast<char>(r.type));
    put_varint(out, r.poll - last_poll);
    last_poll = r.poll;
    put_varint(out, r.retired);
    switch (r.type) {
    case Record::Type::Input:
        out.push_back(static_cast<char>(r.input.kind));
        put_varint(out, r.input.value);
        put_varint(out, r.input.bytes.size());
        out.append(reinterpret_cast<const char*>(r.input.bytes.data()), r.input.bytes.size());
        break;
    case Record::Type::Sync:
        put_varint(out, r.vcpus.size());
        for (const VcpuSync& v : r.vcpus) {
            put_varint(out, v.retired);
            put_u64(out, v.state_hash);
        }
        put_u64(out, r.memory_hash);
        put_varint(out, r.dirty_pages);
        break;
    case Record::Type::End:
        out.push_back(static_cast<char>(r.end_kind));
        put_u32(out, static_cast<u32>(r.end_status));
        put_varint(out, r.total_retired);
        break;
    }
}

bool valid_input_kind(u8 kind, u32 version)
{
    if (kind == static_cast<u8>(HostInput::Kind::Medium))
        return version >= 2;
    return kind >= 1 && kind <= 6;
}

// The decompressed event stream; `cut_short` says the input ended inside
// it (the bytes decoded up to there are returned: the writer flushes at
// every sync record, so a killed recording's prefix decodes).
ErrorOr<std::vector<u8>> inflate_stream(std::span<const u8> in, bool& cut_short)
{
    cut_short = false;
    z_stream z{};
    if (inflateInit(&z) != Z_OK)
        return make_error("cannot start zlib");
    std::vector<u8> out;
    std::array<u8, 1 << 16> chunk;
    z.next_in = const_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(std::min<size_t>(in.size(), 1u << 30));
    int status = Z_OK;
    while (status == Z_OK) {
        z.next_out = chunk.data();
        z.avail_out = static_cast<uInt>(chunk.size());
        status = inflate(&z, Z_NO_FLUSH);
        out.insert(out.end(), chunk.data(), chunk.data() + (chunk.size() - z.avail_out));
        if (out.size() > MAX_STREAM) {
            status = Z_MEM_ERROR;
            break;
        }
        if (status == Z_BUF_ERROR && z.avail_in == 0)
            break; // the input ended inside the stream
    }
    const uInt left = z.avail_in;
    inflateEnd(&z);
    if (status == Z_STREAM_END && left == 0)
        return out;
    if (status == Z_STREAM_END)
        return make_error("damaged: bytes after the end of the event stream");
    if (status == Z_BUF_ERROR) {
        cut_short = true;
        return out;
    }
    return make_error("damaged: the event stream does not decompress");
}

} // namespace

std::string recording_build_identity() { return build_identity(); }

u64 content_hash(std::span<const u8> bytes, u64 seed)
{
    // A multiply-rotate hash over 8-byte words (the shape of xxHash's
    // rounds): fast enough to hash every dirty page at each sync record.
    constexpr u64 K1 = 0x9E3779B185EBCA87ull, K2 = 0xC2B2AE3D27D4EB4Full;
    u64 h = seed ^ (bytes.size() * K1);
    size_t i = 0;
    for (; i + 8 <= bytes.size(); i += 8) {
        u64 w;
        std::memcpy(&w, bytes.data() + i, 8);
        h ^= w * K2;
        h = ((h << 31) | (h >> 33)) * K1;
    }
    for (; i < bytes.size(); ++i)
        h = (h ^ bytes[i]) * K1;
    h ^= h >> 33;
    h *= K2;
    h ^= h >> 29;
    return h;
}

ErrorOr<FileIdentity> identify_file(const std::string& role, const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return make_error(role + " '" + path + "': " + std::strerror(errno));
    FileIdentity id{role, path, 0, 0};
    std::vector<u8> buffer(1 << 20);
    u64 h = 0;
    for (;;) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            const int saved = errno;
            ::close(fd);
            return make_error(role + " '" + path + "': " + std::strerror(saved));
        }
        if (n == 0)
            break;
        h = content_hash({buffer.data(), static_cast<size_t>(n)}, h);
        id.size += static_cast<u64>(n);
    }
    ::close(fd);
    id.hash = h;
    return id;
}

namespace {

// A killed recording: its records to the last sync record, where the replay
// stops as if the host had stopped it. Without a sync record there is
// nothing a replay could check, so nothing to replay.
ErrorOr<Recording> replayable_prefix(Recording rec)
{
    size_t last_sync = rec.records.size();
    for (size_t i = 0; i < rec.records.size(); ++i)
        if (rec.records[i].type == Record::Type::Sync)
            last_sync = i;
    if (last_sync == rec.records.size())
        return make_error("truncated: the event stream does not end and holds no sync record to replay to "
                          "(was the recording killed at once?)");
    rec.records.resize(last_sync + 1);
    Record end;
    end.type = Record::Type::End;
    end.poll = rec.records.back().poll;
    end.retired = rec.records.back().retired;
    end.end_kind = static_cast<u8>(RunOutcome::Kind::HostStop);
    rec.records.push_back(end);
    rec.cut_short = true;
    return rec;
}

} // namespace

ErrorOr<Recording> parse_recording(std::span<const u8> bytes)
{
    if (bytes.size() < PREAMBLE || std::memcmp(bytes.data(), MAGIC, sizeof MAGIC) != 0)
        return make_error("not a viridian recording");
    ByteReader pre(bytes.subspan(sizeof MAGIC, 8));
    const u32 version = static_cast<u32>(pre.fixed(4));
    const u32 header_length = static_cast<u32>(pre.fixed(4));
    if (version < OLDEST_FORMAT_VERSION || version > FORMAT_VERSION)
        return make_error("a recording of format version " + std::to_string(version) +
                          "; this viridian reads versions " + std::to_string(OLDEST_FORMAT_VERSION) + " to " +
                          std::to_string(FORMAT_VERSION));
    if (header_length > MAX_HEADER || bytes.size() - PREAMBLE < u64{header_length} + 4)
        return make_error("truncated or damaged: the header is cut short");
    const std::span<const u8> body = bytes.subspan(PREAMBLE, header_length);
    ByteReader crc_reader(bytes.subspan(PREAMBLE + header_length, 4));
    if (crc_reader.fixed(4) != crc32(0, body.data(), static_cast<uInt>(body.size())))
        return make_error("damaged: the header's checksum does not match");

    Recording rec;
    RecordingHeader& h = rec.header;
    ByteReader r(body);
    h.build = r.string(MAX_STRING);
    if (r.ok() && h.build != recording_build_identity())
        return make_error("recorded by " + h.build + "; this is " + recording_build_identity() +
                          " (a recording replays only in the build that made it)");
    const u64 argc = r.count(MAX_LIST);
    for (u64 i = 0; i < argc && r.ok(); ++i)
        h.args.push_back(r.string(MAX_STRING));
    const u64 files = r.count(MAX_LIST);
    for (u64 i = 0; i < files && r.ok(); ++i) {
        FileIdentity f;
        f.role = r.string(MAX_STRING);
        f.path = r.string(MAX_STRING);
        f.size = r.varint();
        f.hash = r.fixed(8);
        h.files.push_back(std::move(f));
    }
    const u8 can_wake = r.u8_();
    h.input_can_wake = can_wake == 1;
    h.sync_interval = r.varint();
    h.rng_seed = r.fixed(8);
    if (!r.ok() || !r.at_end() || can_wake > 1)
        return make_error("damaged: the header does not parse");

    std::span<const u8> packed = bytes.subspan(PREAMBLE + header_length + 4);
    const bool marked = version >= FIRST_VERSION_WITH_END_MARKER && packed.size() >= END_TRAILER &&
                        std::memcmp(packed.data() + packed.size() - END_TRAILER, END_MARKER,
                                    sizeof END_MARKER) == 0;
    std::span<const u8> trailer;
    if (marked) {
        trailer = packed.last(END_TRAILER).subspan(sizeof END_MARKER);
        packed = packed.first(packed.size() - END_TRAILER);
    }
    bool cut_short = false;
    ErrorOr<std::vector<u8>> stream = inflate_stream(packed, cut_short);
    if (stream.is_error())
        return stream.error();
    if (marked) { // it finished: its stream is whole, and says so
        ByteReader t(trailer);
        const u64 crc = t.fixed(4), length = t.fixed(8);
        const std::vector<u8>& raw = stream.value();
        if (cut_short || length != raw.size() ||
            crc != crc32(0, raw.data(), static_cast<uInt>(raw.size())))
            return make_error("damaged: the event stream does not match its checksum");
    }
    ByteReader s(stream.value());
    u64 poll = 0;
    bool ended = false;
    while (!s.at_end() && s.ok() && !ended) {
        Record rr;
        const u8 type = s.u8_();
        poll += s.varint();
        rr.poll = poll;
        rr.retired = s.varint();
        switch (type) {
        case static_cast<u8>(Record::Type::Input): {
            rr.type = Record::Type::Input;
            const u8 kind = s.u8_();
            if (!valid_input_kind(kind, version))
                return make_error("damaged: an input of unknown kind " + std::to_string(kind));
            rr.input.kind = static_cast<HostInput::Kind>(kind);
            const u64 value = s.varint();
            if (value > 0xFF)
                return make_error("damaged: an input's value is out of range");
            rr.input.value = static_cast<u32>(value);
            rr.input.bytes = s.bytes(s.count(MAX_FRAME));
            if (s.ok() && rr.input.kind == HostInput::Kind::Medium && !decode_medium(rr.input.bytes))
                return make_error("damaged: a tray or medium input does not parse");
            break;
        }
        case static_cast<u8>(Record::Type::Sync): {
            rr.type = Record::Type::Sync;
            const u64 n = s.count(MAX_VCPUS);
            for (u64 i = 0; i < n && s.ok(); ++i) {
                VcpuSync v;
                v.retired = s.varint();
                v.state_hash = s.fixed(8);
                rr.vcpus.push_back(v);
            }
            rr.memory_hash = s.fixed(8);
            rr.dirty_pages = s.varint();
            break;
        }
        case static_cast<u8>(Record::Type::End):
            rr.type = Record::Type::End;
            rr.end_kind = s.u8_();
            rr.end_status = static_cast<i32>(s.fixed(4));
            rr.total_retired = s.varint();
            if (rr.end_kind > MAX_END_KIND)
                return make_error("damaged: the end record names no known outcome");
            ended = true;
            break;
        default:
            return make_error("damaged: a record of unknown type " + std::to_string(type));
        }
        if (s.ok())
            rec.records.push_back(std::move(rr));
    }
    if (cut_short && ended)
        return make_error("truncated: the event stream's end is cut short");
    if (cut_short)
        return replayable_prefix(std::move(rec));
    if (!s.ok())
        return make_error("damaged: a record is cut short");
    if (!ended)
        return make_error("truncated: no end record (the recording did not finish)");
    if (!s.at_end())
        return make_error("damaged: records after the end record");
    return rec;
}

ErrorOr<Recording> read_recording(const std::string& path)
{
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (!file)
        return make_error(path + ": " + std::strerror(errno));
    std::vector<u8> bytes;
    std::array<u8, 1 << 16> chunk;
    while (const size_t n = std::fread(chunk.data(), 1, chunk.size(), file))
        bytes.insert(bytes.end(), chunk.data(), chunk.data() + n);
    const bool failed = std::ferror(file);
    std::fclose(file);
    if (failed)
        return make_error(path + ": cannot read");
    ErrorOr<Recording> parsed = parse_recording(bytes);
    if (parsed.is_error())
        return make_error(path + ": " + parsed.error().message);
    return parsed;
}

std::vector<u8> serialize_recording(const Recording& recording)
{
    std::string out = encode_header(recording.header);
    std::string stream;
    u64 last = 0;
    for (const Record& r : recording.records)
        encode_record(stream, r, last);
    uLongf length = compressBound(stream.size());
    std::vector<u8> packed(length);
    compress2(packed.data(), &length, reinterpret_cast<const Bytef*>(stream.data()), stream.size(),
              Z_BEST_SPEED);
    std::vector<u8> bytes(out.begin(), out.end());
    bytes.insert(bytes.end(), packed.begin(), packed.begin() + static_cast<std::ptrdiff_t>(length));
    const std::string trailer =
        end_trailer(static_cast<u32>(crc32(0, reinterpret_cast<const Bytef*>(stream.data()),
                                          static_cast<uInt>(stream.size()))),
                    stream.size());
    bytes.insert(bytes.end(), trailer.begin(), trailer.end());
    return bytes;
}

struct RecordingWriter::Impl {
    std::string path, temporary;
    std::FILE* file = nullptr;
    z_stream z{};
    bool deflating = false;
    u64 last_poll = 0;
    u64 written = 0;
    std::string pending; // encoded records not yet deflated
    u32 stream_crc = 0;     // of every record deflated so far, as encoded
    u64 stream_length = 0;

    ~Impl()
    {
        if (deflating)
            deflateEnd(&z);
        if (file)
            std::fclose(file);
    }

    ErrorOr<void> pump(int flush)
    {
        stream_crc = static_cast<u32>(crc32(stream_crc, reinterpret_cast<const Bytef*>(pending.data()),
                                            static_cast<uInt>(pending.size())));
        stream_length += pending.size();
        z.next_in = reinterpret_cast<Bytef*>(pending.data());
        z.avail_in = static_cast<uInt>(pending.size());
        std::array<u8, 1 << 16> chunk;
        int status;
        do {
            z.next_out = chunk.data();
            z.avail_out = static_cast<uInt>(chunk.size());
            status = deflate(&z, flush);
            const size_t produced = chunk.size() - z.avail_out;
            if (status == Z_STREAM_ERROR || std::fwrite(chunk.data(), 1, produced, file) != produced)
                return make_error(temporary + ": cannot write: " + std::strerror(errno));
            written += produced;
        } while (z.avail_out == 0 || (flush == Z_FINISH && status != Z_STREAM_END));
        pending.clear();
        return {};
    }
};

RecordingWriter::RecordingWriter(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
RecordingWriter::~RecordingWriter()
{
    // Not finished: the prefix stays in PATH.tmp, PATH is never half written.
}

ErrorOr<std::unique_ptr<RecordingWriter>> RecordingWriter::create(const std::string& path,
                                                                  const RecordingHeader& header)
{
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    impl->temporary = path + ".tmp";
    impl->file = std::fopen(impl->temporary.c_str(), "wb");
    if (!impl->file)
        return make_error("--record: cannot create '" + impl->temporary + "': " + std::strerror(errno));
    if (deflateInit(&impl->z, Z_BEST_SPEED) != Z_OK)
        return make_error("--record: cannot start zlib");
    impl->deflating = true;
    const std::string head = encode_header(header);
    if (std::fwrite(head.data(), 1, head.size(), impl->file) != head.size())
        return make_error("--record: cannot write '" + impl->temporary + "': " + std::strerror(errno));
    impl->written = head.size();
    return std::unique_ptr<RecordingWriter>(new RecordingWriter(std::move(impl)));
}

ErrorOr<void> RecordingWriter::append(const Record& record)
{
    encode_record(m_impl->pending, record, m_impl->last_poll);
    if (m_impl->pending.size() >= (1u << 16))
        return m_impl->pump(Z_NO_FLUSH);
    return {};
}

ErrorOr<void> RecordingWriter::flush()
{
    TRY(m_impl->pump(Z_SYNC_FLUSH));
    if (std::fflush(m_impl->file) != 0)
        return make_error(m_impl->temporary + ": cannot write: " + std::strerror(errno));
    return {};
}

ErrorOr<void> RecordingWriter::finish(const Record& end)
{
    encode_record(m_impl->pending, end, m_impl->last_poll);
    TRY(m_impl->pump(Z_FINISH));
    const std::string trailer = end_trailer(m_impl->stream_crc, m_impl->stream_length);
    if (std::fwrite(trailer.data(), 1, trailer.size(), m_impl->file) != trailer.size())
        return make_error(m_impl->temporary + ": cannot write: " + std::strerror(errno));
    m_impl->written += trailer.size();
    std::FILE* file = std::exchange(m_impl->file, nullptr);
    const bool synced = std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
    if (std::fclose(file) != 0 || !synced)
        return make_error(m_impl->temporary + ": cannot write: " + std::strerror(errno));
    if (std::rename(m_impl->temporary.c_str(), m_impl->path.c_str()) != 0)
        return make_error("cannot rename '" + m_impl->temporary + "' to '" + m_impl->path +
                          "': " + std::strerror(errno));
    return {};
}

u64 RecordingWriter::bytes_written() const { return m_impl->written; }

} // namespace replay
