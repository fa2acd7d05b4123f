#include "platform/firmware/aml_builder.h"

#include <cassert>

namespace aml {

namespace {
// Opcodes (ACPI 6.x 20.3).
constexpr u8 ZERO_OP = 0x00, ONE_OP = 0x01, NAME_OP = 0x08, BYTE_PREFIX = 0x0A, WORD_PREFIX = 0x0B,
             DWORD_PREFIX = 0x0C, STRING_PREFIX = 0x0D, QWORD_PREFIX = 0x0E, SCOPE_OP = 0x10,
             BUFFER_OP = 0x11, PACKAGE_OP = 0x12, METHOD_OP = 0x14, DUAL_NAME_PREFIX = 0x2E,
             MULTI_NAME_PREFIX = 0x2F, EXT_OP_PREFIX = 0x5B, DEVICE_OP = 0x82, ROOT_CHAR = '\\',
             PARENT_PREFIX = '^', LOCAL0_OP = 0x60, ARG0_OP = 0x68, STORE_OP = 0x70, IF_OP = 0xA0,
             ELSE_OP = 0xA1, RETURN_OP = 0xA4;

void append(Bytes& out, const Bytes& more)
{
    out.insert(out.end(), more.begin(), more.end());
}

// An opcode followed by operands. (Built with reserve + push_back: GCC 12's
// -Warray-bounds misfires on inserting into a one-element vector.)
Bytes op_then(u8 opcode, const Bytes& a, const Bytes& b = {})
{
    Bytes out;
    out.reserve(1 + a.size() + b.size());
    out.push_back(opcode);
    append(out, a);
    append(out, b);
    return out;
}

void append_le(Bytes& out, u64 value, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; ++i)
        out.push_back(static_cast<u8>(value >> (8 * i)));
}

Bytes with_pkg_length(std::initializer_list<u8> opcode, const Bytes& body)
{
    Bytes out(opcode);
    append(out, pkg_length(body.size()));
    append(out, body);
    return out;
}

Bytes joined(const TermList& terms)
{
    Bytes out;
    for (const Bytes& t : terms)
        append(out, t);
    return out;
}

bool valid_name_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9');
}
} // namespace

Bytes pkg_length(size_t body_length)
{
    // One byte holds up to 63; otherwise 1-3 more bytes follow the lead
    // byte's low nibble (20.2.4).
    if (body_length + 1 <= 0x3F)
        return {static_cast<u8>(body_length + 1)};
    for (unsigned extra = 1; extra <= 3; ++extra) {
        const size_t total = body_length + 1 + extra;
        if (total < (size_t(1) << (4 + 8 * extra))) {
            Bytes out{static_cast<u8>((extra << 6) | (total & 0xF))};
            for (unsigned i = 0; i < extra; ++i)
                out.push_back(static_cast<u8>(total >> (4 + 8 * i)));
            return out;
        }
    }
    assert(!"AML package too long");
    return {};
}

Bytes name_string(std::string_view path)
{
    Bytes out;
    while (!path.empty() && (path.front() == ROOT_CHAR || path.front() == PARENT_PREFIX)) {
        out.push_back(static_cast<u8>(path.front()));
        path.remove_prefix(1);
    }
    std::vector<std::string_view> segments;
    while (!path.empty()) {
        const size_t dot = path.find('.');
        segments.push_back(path.substr(0, dot));
        path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
    }
    if (segments.empty()) {
        out.push_back(0x00); // NullName
        return out;
    }
    if (segments.size() == 2)
        out.push_back(DUAL_NAME_PREFIX);
    else if (segments.size() > 2) {
        out.push_back(MULTI_NAME_PREFIX);
        out.push_back(static_cast<u8>(segments.size()));
    }
    for (std::string_view seg : segments) {
        assert(!seg.empty() && seg.size() <= 4);
        for (size_t i = 0; i < 4; ++i) {
            const char c = i < seg.size() ? seg[i] : '_';
            assert(valid_name_char(c, i == 0));
            out.push_back(static_cast<u8>(c));
        }
    }
    return out;
}

Bytes integer(u64 value)
{
    if (value == 0)
        return {ZERO_OP};
    if (value == 1)
        return {ONE_OP};
    Bytes out;
    if (value <= 0xFF) {
        out.push_back(BYTE_PREFIX);
        append_le(out, value, 1);
    } else if (value <= 0xFFFF) {
        out.push_back(WORD_PREFIX);
        append_le(out, value, 2);
    } else if (value <= 0xFFFFFFFF) {
        out.push_back(DWORD_PREFIX);
        append_le(out, value, 4);
    } else {
        out.push_back(QWORD_PREFIX);
        append_le(out, value, 8);
    }
    return out;
}

Bytes string(std::string_view text)
{
    Bytes out;
    out.reserve(text.size() + 2);
    out.push_back(STRING_PREFIX);
    for (char c : text)
        out.push_back(static_cast<u8>(c));
    out.push_back(0);
    return out;
}

u32 eisa_id_value(std::string_view id)
{
    // Three letters of five bits each, then four hex digits, stored big-endian.
    assert(id.size() == 7);
    const auto hex = [](char c) -> u32 { return c <= '9' ? c - '0' : (c & ~0x20) - 'A' + 10; };
    const u32 letters = (u32(id[0] - 0x40) << 10) | (u32(id[1] - 0x40) << 5) | u32(id[2] - 0x40);
    const u32 digits = (hex(id[3]) << 12) | (hex(id[4]) << 8) | (hex(id[5]) << 4) | hex(id[6]);
    const u32 big_endian = (letters << 16) | digits;
    return ((big_endian >> 24) & 0xFF) | ((big_endian >> 8) & 0xFF00) |
           ((big_endian << 8) & 0xFF0000) | ((big_endian << 24) & 0xFF000000);
}

Bytes eisa_id(std::string_view id)
{
    Bytes out{DWORD_PREFIX};
    append_le(out, eisa_id_value(id), 4);
    return out;
}

Bytes buffer(std::span<const u8> data)
{
    Bytes body = integer(data.size());
    body.insert(body.end(), data.begin(), data.end());
    return with_pkg_length({BUFFER_OP}, body);
}

Bytes package(const TermList& elements)
{
    assert(elements.size() <= 255);
    Bytes body{static_cast<u8>(elements.size())};
    append(body, joined(elements));
    return with_pkg_length({PACKAGE_OP}, body);
}

Bytes ref(std::string_view path)
{
    return name_string(path);
}

Bytes arg(unsigned n)
{
    assert(n <= 6);
    return {static_cast<u8>(ARG0_OP + n)};
}

Bytes local(unsigned n)
{
    assert(n <= 7);
    return {static_cast<u8>(LOCAL0_OP + n)};
}

Bytes name(std::string_view name, const Bytes& value)
{
    return op_then(NAME_OP, name_string(name), value);
}

Bytes scope(std::string_view path, const TermList& body)
{
    Bytes inner = name_string(path);
    append(inner, joined(body));
    return with_pkg_length({SCOPE_OP}, inner);
}

Bytes device(std::string_view name, const TermList& body)
{
    Bytes inner = name_string(name);
    append(inner, joined(body));
    return with_pkg_length({EXT_OP_PREFIX, DEVICE_OP}, inner);
}

Bytes method(std::string_view name, unsigned arg_count, bool serialized, const TermList& body)
{
    assert(arg_count <= 7);
    Bytes inner = name_string(name);
    inner.push_back(static_cast<u8>(arg_count | (serialized ? 0x08 : 0)));
    append(inner, joined(body));
    return with_pkg_length({METHOD_OP}, inner);
}

Bytes return_value(const Bytes& value)
{
    return op_then(RETURN_OP, value);
}

Bytes if_then(const Bytes& predicate, const TermList& body)
{
    Bytes inner = predicate;
    append(inner, joined(body));
    return with_pkg_length({IF_OP}, inner);
}

Bytes else_do(const TermList& body)
{
    return with_pkg_length({ELSE_OP}, joined(body));
}

Bytes store(const Bytes& source, const Bytes& target)
{
    return op_then(STORE_OP, source, target);
}

// ---- Resource descriptors (ACPI 6.x 6.4) ----

namespace {
constexpr u8 SMALL_IRQ = 0x04, SMALL_IO = 0x08, SMALL_END = 0x0F;
constexpr u8 LARGE_MEMORY32_FIXED = 0x86, LARGE_DWORD_ADDRESS = 0x87, LARGE_WORD_ADDRESS = 0x88,
             LARGE_EXTENDED_IRQ = 0x89, LARGE_QWORD_ADDRESS = 0x8A;
constexpr u8 RESOURCE_MEMORY = 0, RESOURCE_IO = 1, RESOURCE_BUS = 2;
// General flags of address space descriptors: producer, positive decode,
// minimum and maximum fixed.
constexpr u8 ADDRESS_PRODUCER_FIXED = (1u << 2) | (1u << 3);

u8 small_tag(u8 type, u8 length)
{
    return static_cast<u8>((type << 3) | length);
}
} // namespace

void ResourceTemplate::large(u8 tag, const Bytes& body)
{
    m_bytes.push_back(tag);
    append_le(m_bytes, body.size(), 2);
    append(m_bytes, body);
}

ResourceTemplate& ResourceTemplate::io(u16 min, u16 max, u8 alignment, u8 length)
{
    m_bytes.push_back(small_tag(SMALL_IO, 7));
    m_bytes.push_back(0x01); // decodes 16 address bits
    append_le(m_bytes, min, 2);
    append_le(m_bytes, max, 2);
    m_bytes.push_back(alignment);
    m_bytes.push_back(length);
    return *this;
}

ResourceTemplate& ResourceTemplate::irq_no_flags(u16 irq_mask)
{
    m_bytes.push_back(small_tag(SMALL_IRQ, 2));
    append_le(m_bytes, irq_mask, 2);
    return *this;
}

ResourceTemplate& ResourceTemplate::irq(u16 irq_mask, bool edge, bool active_low, bool shared)
{
    m_bytes.push_back(small_tag(SMALL_IRQ, 3));
    append_le(m_bytes, irq_mask, 2);
    m_bytes.push_back(static_cast<u8>((edge ? 1 : 0) | (active_low ? 8 : 0) | (shared ? 0x10 : 0)));
    return *this;
}

ResourceTemplate& ResourceTemplate::memory32_fixed(u32 base, u32 length, bool writable)
{
    Bytes body{static_cast<u8>(writable ? 1 : 0)};
    append_le(body, base, 4);
    append_le(body, length, 4);
    large(LARGE_MEMORY32_FIXED, body);
    return *this;
}

ResourceTemplate& ResourceTemplate::word_bus_number(u16 min, u16 max)
{
    Bytes body{RESOURCE_BUS, ADDRESS_PRODUCER_FIXED, 0};
    append_le(body, 0, 2); // granularity
    append_le(body, min, 2);
    append_le(body, max, 2);
    append_le(body, 0, 2); // translation offset
    append_le(body, u32(max) - min + 1, 2);
    large(LARGE_WORD_ADDRESS, body);
    return *this;
}

ResourceTemplate& ResourceTemplate::word_io(u16 min, u16 max)
{
    Bytes body{RESOURCE_IO, ADDRESS_PRODUCER_FIXED, 0x03}; // EntireRange
    append_le(body, 0, 2);
    append_le(body, min, 2);
    append_le(body, max, 2);
    append_le(body, 0, 2);
    append_le(body, u32(max) - min + 1, 2);
    large(LARGE_WORD_ADDRESS, body);
    return *this;
}

ResourceTemplate& ResourceTemplate::dword_memory(u32 min, u32 max, bool cacheable, bool writable)
{
    Bytes body{RESOURCE_MEMORY, ADDRESS_PRODUCER_FIXED,
               static_cast<u8>((writable ? 1 : 0) | (cacheable ? 2 : 0))};
    append_le(body, 0, 4);
    append_le(body, min, 4);
    append_le(body, max, 4);
    append_le(body, 0, 4);
    append_le(body, u64(max) - min + 1, 4);
    large(LARGE_DWORD_ADDRESS, body);
    return *this;
}

ResourceTemplate& ResourceTemplate::qword_memory(u64 min, u64 max, bool cacheable, bool writable)
{
    Bytes body{RESOURCE_MEMORY, ADDRESS_PRODUCER_FIXED,
               static_cast<u8>((writable ? 1 : 0) | (cacheable ? 2 : 0))};
    append_le(body, 0, 8);
    append_le(body, min, 8);
    append_le(body, max, 8);
    append_le(body, 0, 8);
    append_le(body, max - min + 1, 8);
    large(LARGE_QWORD_ADDRESS, body);
    return *this;
}

ResourceTemplate& ResourceTemplate::interrupt(u32 gsi, bool edge, bool active_low, bool shared)
{
    // Flags: consumer (0), edge (1), active low (2), shared (3).
    Bytes body{static_cast<u8>(1 | (edge ? 2 : 0) | (active_low ? 4 : 0) | (shared ? 8 : 0)), 1};
    append_le(body, gsi, 4);
    large(LARGE_EXTENDED_IRQ, body);
    return *this;
}

Bytes ResourceTemplate::descriptors() const
{
    Bytes out = m_bytes;
    out.push_back(small_tag(SMALL_END, 1));
    out.push_back(0); // checksum: 0 means "treat as valid"
    return out;
}

Bytes ResourceTemplate::build() const
{
    const Bytes d = descriptors();
    return buffer(d);
}

} // namespace aml
