#include "tests/difftest/record.h"

#include "mmu/base/byte_reader.h"

#include <cpuid.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

namespace difftest {

namespace {

// Bytes after the last entry: TRAILER_MARK, the entry count (u64), so that a
// stream cut at an entry boundary is still caught, and the case digest (u64).
constexpr u8 TRAILER_MARK = 0xFF;
// Differing bytes closer than this are stored as one run.
constexpr size_t RUN_GAP = 4;

class Out {
public:
    explicit Out(std::vector<u8>& b) : m_b(b) {}
    void u8_(u8 v) { m_b.push_back(v); }
    void fixed(u64 v, unsigned n)
    {
        for (unsigned i = 0; i < n; ++i)
            m_b.push_back(static_cast<u8>(v >> (8 * i)));
    }
    void leb(u64 v)
    {
        do {
            u8 byte = v & 0x7F;
            v >>= 7;
            if (v)
                byte |= 0x80;
            m_b.push_back(byte);
        } while (v);
    }
    void bytes(const u8* p, size_t n) { m_b.insert(m_b.end(), p, p + n); }
    void str(const std::string& s)
    {
        leb(s.size());
        bytes(reinterpret_cast<const u8*>(s.data()), s.size());
    }
    // The runs of `now` that differ from `before`.
    void runs(const u8* before, const u8* now, size_t n)
    {
        struct Run {
            size_t at, len;
        };
        std::vector<Run> list;
        for (size_t i = 0; i < n; ++i) {
            if (before[i] == now[i])
                continue;
            if (!list.empty() && i - (list.back().at + list.back().len) < RUN_GAP)
                list.back().len = i + 1 - list.back().at;
            else
                list.push_back({i, 1});
        }
        leb(list.size());
        size_t end = 0;
        for (const Run& r : list) {
            leb(r.at - end);
            leb(r.len);
            bytes(now + r.at, r.len);
            end = r.at + r.len;
        }
    }

private:
    std::vector<u8>& m_b;
};

// The shared bounded reader, keeping the RecordReader's position: the
// position is written back when the reader goes.
class In : public ByteReader {
public:
    In(const std::vector<u8>& b, size_t& at) : ByteReader(b, at), m_at(at) {}
    ~In() { m_at = position(); }
    In(const In&) = delete;
    In& operator=(const In&) = delete;
    u64 leb() { return varint(); }
    void bytes(u8* p, size_t n) { read_into(p, n); }
    std::string str() { return string(); }
    void runs(u8* now, size_t n)
    {
        const u64 count = leb();
        size_t end = 0;
        for (u64 i = 0; ok() && i < count; ++i) {
            const u64 gap = leb(), len = leb();
            if (!ok() || gap > n - end || len > n - end - gap) {
                fail();
                return;
            }
            bytes(now + end + gap, len);
            end += gap + len;
        }
    }

private:
    size_t& m_at;
};

void put_fault(Out& o, const Result& r)
{
    o.u8_(r.vector);
    o.leb(r.error_code);
    o.leb(r.fault_address);
}

void get_fault(In& in, Result& r)
{
    r.faulted = true;
    r.vector = in.u8_();
    r.error_code = static_cast<u32>(in.leb());
    r.fault_address = in.leb();
}

std::string trimmed(const char* p, size_t n)
{
    std::string s(p, strnlen(p, n));
    const size_t b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
    return b == std::string::npos ? std::string{} : s.substr(b, e - b + 1);
}

} // namespace

u64 case_digest(u64 h, const TestCase& tc)
{
    auto mix = [&h](u64 v) {
        h ^= v;
        h *= 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    };
    auto mix_bytes = [&mix](const u8* p, size_t n) {
        for (size_t i = 0; i < n; i += 8) {
            u64 v = 0;
            std::memcpy(&v, p + i, std::min<size_t>(8, n - i));
            mix(v);
        }
    };
    mix(tc.length | u64(tc.mode32) << 8 | u64(tc.fp) << 9 | u64(tc.host_lacks) << 10 |
        u64(tc.raw) << 11 | u64(tc.may_be_unimplemented) << 12);
    mix_bytes(tc.bytes.data(), tc.length);
    for (u64 g : tc.init.gpr)
        mix(g);
    mix(tc.init.rflags);
    mix(tc.init.rip);
    mix_bytes(tc.data.data(), DATA_SIZE);
    if (tc.fp)
        mix_bytes(tc.fp_init.b.data(), fpimg::SIZE);
    return h;
}

const char* known_name(Known k)
{
    switch (k) {
    case Known::HostLacks:
        return "not run (host lacks the extension)";
    case Known::No32Bit:
        return "not run (host cannot run 32-bit code)";
    case Known::Unknown:
        return "unknown";
    case Known::FaultOnly:
        return "fault only";
    case Known::Full:
        return "full";
    }
    return "?";
}

HostIdentity HostIdentity::of_this_host()
{
    HostIdentity h;
    unsigned a, b, c, d;
    __cpuid(0, a, b, c, d);
    char vendor[12];
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    h.vendor.assign(vendor, 12);
    // CPUID.1:EAX with the extended family and model folded in (SDM Vol 2A CPUID).
    __cpuid(1, a, b, c, d);
    const u32 base_family = (a >> 8) & 0xF;
    h.stepping = a & 0xF;
    h.family = base_family == 0xF ? base_family + ((a >> 20) & 0xFF) : base_family;
    h.model = (a >> 4) & 0xF;
    if (base_family == 0x6 || base_family == 0xF)
        h.model |= ((a >> 16) & 0xF) << 4;
    __cpuid(0x80000000, a, b, c, d);
    if (a >= 0x80000004) {
        char brand[48];
        for (unsigned i = 0; i < 3; ++i) {
            __cpuid(0x80000002 + i, a, b, c, d);
            const unsigned words[4] = {a, b, c, d};
            std::memcpy(brand + 16 * i, words, 16);
        }
        h.brand = trimmed(brand, sizeof brand);
    }
    return h;
}

RecordWriter::~RecordWriter()
{
    if (m_file)
        gzclose(static_cast<gzFile>(m_file));
}

bool RecordWriter::open(const std::string& path, const RecordHeader& h, std::string& error)
{
    m_file = gzopen(path.c_str(), "wb9");
    if (!m_file) {
        error = "cannot create " + path;
        return false;
    }
    Out o(m_buffer);
    o.bytes(reinterpret_cast<const u8*>(RECORD_MAGIC), sizeof RECORD_MAGIC);
    o.fixed(RECORD_VERSION, 4);
    o.fixed(h.seed, 8);
    o.fixed(h.first, 8);
    o.fixed(h.count, 8);
    o.fixed(h.modes, 4);
    o.str(h.only);
    o.str(h.host.vendor);
    o.fixed(h.host.family, 4);
    o.fixed(h.host.model, 4);
    o.fixed(h.host.stepping, 4);
    o.str(h.host.brand);
    o.fixed(h.features.leaf1_ecx, 4);
    o.fixed(h.features.leaf1_edx, 4);
    o.fixed(h.features.leaf7_ebx, 4);
    o.str(h.source);
    flush();
    return !m_failed;
}

void RecordWriter::add(const TestCase& tc, Known known, const Result& r)
{
    Out o(m_buffer);
    o.u8_(static_cast<u8>(known));
    ++m_entries;
    if (known == Known::FaultOnly) {
        o.u8_(r.faulted);
        if (r.faulted)
            put_fault(o, r);
    } else if (known == Known::Full) {
        o.u8_(static_cast<u8>((r.ok ? 0 : 1) | (r.faulted ? 2 : 0)));
        if (!r.ok)
            o.str(r.error);
        if (r.faulted)
            put_fault(o, r);
        u16 changed = 0;
        for (unsigned i = 0; i < 16; ++i)
            if (r.regs.gpr[i] != tc.init.gpr[i])
                changed = static_cast<u16>(changed | (1u << i));
        o.leb(changed);
        for (unsigned i = 0; i < 16; ++i)
            if ((changed >> i) & 1)
                o.fixed(r.regs.gpr[i], 8);
        o.leb(r.regs.rflags ^ tc.init.rflags);
        o.leb(r.regs.rip ^ tc.init.rip);
        o.runs(tc.data.data(), r.data.data(), DATA_SIZE);
        if (tc.fp)
            o.runs(tc.fp_init.b.data(), r.fp.b.data(), fpimg::SIZE);
    }
    if (m_buffer.size() >= 64 * 1024)
        flush();
}

void RecordWriter::flush()
{
    if (!m_file || m_buffer.empty())
        return;
    if (gzwrite(static_cast<gzFile>(m_file), m_buffer.data(),
                static_cast<unsigned>(m_buffer.size())) != static_cast<int>(m_buffer.size()))
        m_failed = true;
    m_buffer.clear();
}

bool RecordWriter::finish(u64 digest, std::string& error)
{
    Out o(m_buffer);
    o.u8_(TRAILER_MARK);
    o.fixed(m_entries, 8);
    o.fixed(digest, 8);
    flush();
    const int closed = gzclose(static_cast<gzFile>(m_file));
    m_file = nullptr;
    if (m_failed || closed != Z_OK) {
        error = "writing the recording failed";
        return false;
    }
    return true;
}

bool RecordReader::open(const std::string& path, std::string& error)
{
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) {
        error = "cannot open " + path;
        return false;
    }
    u8 chunk[65536];
    for (;;) {
        const int n = gzread(f, chunk, sizeof chunk);
        if (n < 0) {
            int code = 0;
            error = std::string("corrupt or truncated stream (") + gzerror(f, &code) + ")";
            gzclose(f);
            return false;
        }
        if (n == 0)
            break;
        m_bytes.insert(m_bytes.end(), chunk, chunk + n);
    }
    int code = Z_OK;
    const std::string gz_error = gzerror(f, &code);
    gzclose(f);
    if (code != Z_OK) {
        error = "corrupt or truncated stream (" + gz_error + ")";
        return false;
    }

    In in(m_bytes, m_at);
    u8 magic[sizeof RECORD_MAGIC];
    in.bytes(magic, sizeof magic);
    if (!in.ok() || std::memcmp(magic, RECORD_MAGIC, sizeof magic) != 0) {
        error = path + ": not a cpu-difftest recording (bad magic)";
        return false;
    }
    const u32 version = static_cast<u32>(in.fixed(4));
    if (version != RECORD_VERSION) {
        error = path + ": recording format version " + std::to_string(version) +
                ", this build reads version " + std::to_string(RECORD_VERSION);
        return false;
    }
    RecordHeader& h = m_header;
    h.seed = in.fixed(8);
    h.first = in.fixed(8);
    h.count = in.fixed(8);
    h.modes = static_cast<u32>(in.fixed(4));
    h.only = in.str();
    h.host.vendor = in.str();
    h.host.family = static_cast<u32>(in.fixed(4));
    h.host.model = static_cast<u32>(in.fixed(4));
    h.host.stepping = static_cast<u32>(in.fixed(4));
    h.host.brand = in.str();
    h.features.leaf1_ecx = static_cast<u32>(in.fixed(4));
    h.features.leaf1_edx = static_cast<u32>(in.fixed(4));
    h.features.leaf7_ebx = static_cast<u32>(in.fixed(4));
    h.source = in.str();
    if (!in.ok()) {
        error = path + ": truncated header";
        return false;
    }
    return true;
}

bool RecordReader::next(const TestCase& tc, Known& known, Result& r, std::string& error)
{
    In in(m_bytes, m_at);
    const u8 k = in.u8_();
    if (!in.ok() || k > static_cast<u8>(Known::Full)) {
        error = in.ok() && k == TRAILER_MARK ? "the recording ends early"
                                             : "malformed entry (unknown kind)";
        return false;
    }
    known = static_cast<Known>(k);
    r = Result{};
    r.regs = tc.init;
    r.data = tc.data;
    r.fp = tc.fp_init;
    if (known == Known::FaultOnly) {
        if (in.u8_())
            get_fault(in, r);
    } else if (known == Known::Full) {
        const u8 bits = in.u8_();
        if (bits & 1) {
            r.ok = false;
            r.error = in.str();
        }
        if (bits & 2)
            get_fault(in, r);
        const u64 changed = in.leb();
        for (unsigned i = 0; i < 16; ++i)
            if ((changed >> i) & 1)
                r.regs.gpr[i] = in.fixed(8);
        r.regs.rflags ^= in.leb();
        r.regs.rip ^= in.leb();
        in.runs(r.data.data(), DATA_SIZE);
        if (tc.fp)
            in.runs(r.fp.b.data(), fpimg::SIZE);
    }
    if (!in.ok()) {
        error = "malformed or truncated entry";
        return false;
    }
    ++m_entries;
    return true;
}

bool RecordReader::finish(u64 digest, std::string& error)
{
    In in(m_bytes, m_at);
    const u8 mark = in.u8_();
    const u64 entries = in.fixed(8);
    const u64 recorded_digest = in.fixed(8);
    if (!in.ok() || mark != TRAILER_MARK || entries != m_entries || !in.at_end()) {
        error = "bad trailer (entries beyond the header's count, or a damaged end)";
        return false;
    }
    if (recorded_digest != digest) {
        error = "the generator no longer makes the cases this file was recorded from "
                "(tests/difftest/generator.cpp changed since)";
        return false;
    }
    return true;
}

} // namespace difftest
