// Values read from a byte buffer that a damaged or hostile file supplied
// (recordings, test corpora): no read goes past the end. A read that would
// fails the reader — ok() is false from then on — and returns zero or
// empty, so a parser checks ok() once after a group of reads.
#pragma once

#include "mmu/base/byte_order.h"
#include "mmu/base/types.h"

#include <cstring>
#include <span>
#include <string>
#include <vector>

class ByteReader {
public:
    explicit ByteReader(std::span<const u8> bytes, size_t start = 0) : m_bytes(bytes), m_pos(start)
    {
        if (start > bytes.size())
            m_ok = false;
    }
    bool ok() const { return m_ok; }
    bool at_end() const { return m_pos == m_bytes.size(); }
    size_t position() const { return m_pos; }
    // Marks the input bad (a value out of its range).
    void fail() { m_ok = false; }

    u8 u8_()
    {
        if (!need(1))
            return 0;
        return m_bytes[m_pos++];
    }
    // `n` bytes (1 to 8), little-endian.
    u64 fixed(unsigned n)
    {
        if (!need(n))
            return 0;
        const u64 v = load_le(m_bytes, m_pos, n);
        m_pos += n;
        return v;
    }
    // An unsigned LEB128 number of at most 10 bytes.
    u64 varint()
    {
        u64 v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
            const u8 b = u8_();
            if (!m_ok)
                return 0;
            v |= u64{b & 0x7Fu} << shift;
            if (!(b & 0x80))
                return v;
        }
        m_ok = false;
        return 0;
    }
    // A varint that must not exceed `max` (a list's length).
    u64 count(u64 max)
    {
        const u64 n = varint();
        if (n > max)
            m_ok = false;
        return m_ok ? n : 0;
    }
    // A varint length, at most `max`, then that many bytes.
    std::string string(u64 max = ~0ull)
    {
        const u64 n = count(max);
        if (!need(n))
            return {};
        std::string s(reinterpret_cast<const char*>(m_bytes.data() + m_pos), n);
        m_pos += n;
        return s;
    }
    std::vector<u8> bytes(u64 n)
    {
        if (!need(n))
            return {};
        std::vector<u8> out(m_bytes.begin() + static_cast<std::ptrdiff_t>(m_pos),
                            m_bytes.begin() + static_cast<std::ptrdiff_t>(m_pos + n));
        m_pos += n;
        return out;
    }
    void read_into(u8* out, size_t n)
    {
        if (!need(n))
            return;
        std::memcpy(out, m_bytes.data() + m_pos, n);
        m_pos += n;
    }

private:
    bool need(u64 n)
    {
        if (!m_ok || n > m_bytes.size() - m_pos)
            m_ok = false;
        return m_ok;
    }
    std::span<const u8> m_bytes;
    size_t m_pos = 0;
    bool m_ok = true;
};
