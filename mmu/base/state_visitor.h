// One code path for saving and loading state (docs/coding-style.md "State"): a device's
// visit_state(StateVisitor&) names its fields once; the same function writes
// them to a snapshot or reads them back. Sections are named and versioned so
// a reader can reject a snapshot it does not understand.
#pragma once

#include "mmu/base/types.h"

#include <array>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

class StateVisitor {
public:
    enum class Mode { Save, Load };

    // A saver starts empty; a loader reads `bytes`.
    static StateVisitor saver() { return StateVisitor(Mode::Save, {}); }
    static StateVisitor loader(std::vector<u8> bytes) { return StateVisitor(Mode::Load, std::move(bytes)); }

    bool saving() const { return m_mode == Mode::Save; }
    bool loading() const { return m_mode == Mode::Load; }
    // False once a load met a missing section, a version mismatch or a short buffer.
    bool ok() const { return m_ok; }
    const std::string& error() const { return m_error; }
    const std::vector<u8>& bytes() const { return m_bytes; }
    // A load that meets a value it cannot accept (a configuration that
    // differs) stops here; the first reason is kept.
    void fail(std::string why)
    {
        if (m_ok)
            m_error = std::move(why);
        m_ok = false;
    }
    // Loading: every byte was consumed.
    bool at_end() const { return m_offset == m_bytes.size(); }
    // Raw bytes (RAM pages), saved and loaded as they are.
    void bytes_field(void* data, size_t length) { raw(data, length); }

    // Starts a named section; on load, checks name and version.
    void section(std::string_view name, u32 version)
    {
        std::string n(name);
        u32 len = static_cast<u32>(n.size());
        raw(&len, sizeof len);
        if (loading()) {
            if (!m_ok || len > 256)
                return fail("bad section header");
            n.resize(len);
        }
        raw(n.data(), len);
        u32 v = version;
        raw(&v, sizeof v);
        if (loading() && m_ok && (n != name || v != version))
            fail("section " + std::string(name) + " v" + std::to_string(version) + " expected, found " +
                 printable(n) + " v" + std::to_string(v));
    }

    // Integral, enum and bool fields, and fixed arrays of them.
    template <class T>
    void field(std::string_view /*name*/, T& value)
    {
        if constexpr (std::is_same_v<T, bool>) {
            u8 b = value ? 1 : 0;
            raw(&b, 1);
            if (loading())
                value = b != 0;
        } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
            raw(&value, sizeof value);
        } else if constexpr (requires { value.size(); value[0]; typename T::value_type; }) {
            if constexpr (requires { value.resize(0); }) {
                u64 n = value.size();
                raw(&n, sizeof n);
                if (loading()) {
                    if (!m_ok || n > m_bytes.size())
                        return fail("bad vector length");
                    value.resize(n);
                }
            }
            for (auto& element : value)
                field("", element);
        } else {
            static_assert(std::is_trivially_copyable_v<T>, "visit the members of this type");
            raw(&value, sizeof value);
        }
    }

private:
    // A name read from the stream, for a one-line message: a damaged one may
    // hold any bytes, a newline or a terminal escape among them.
    static std::string printable(std::string text)
    {
        for (char& c : text)
            if (c < 0x20 || c > 0x7E)
                c = '?';
        return text.empty() ? "nothing" : text;
    }

    StateVisitor(Mode mode, std::vector<u8> bytes) : m_mode(mode), m_bytes(std::move(bytes)) {}

    void raw(void* p, size_t n)
    {
        if (n == 0)
            return; // an empty buffer's data() may be null, which memcpy must not get
        if (saving()) {
            const u8* b = static_cast<const u8*>(p);
            m_bytes.insert(m_bytes.end(), b, b + n);
            return;
        }
        if (!m_ok)
            return;
        if (m_offset + n > m_bytes.size())
            return fail("state ends early");
        std::memcpy(p, m_bytes.data() + m_offset, n);
        m_offset += n;
    }
    Mode m_mode;
    std::vector<u8> m_bytes;
    size_t m_offset = 0;
    bool m_ok = true;
    std::string m_error;
};
