// Cuts a QMP input byte stream into whole JSON values without parsing them,
// the job QEMU's JSON streamer does (qobject/json-streamer.c): the client
// may send several values in one write, split one value across writes and
// put whitespace between them. A value is complete when its brackets
// balance (or, at the top level, when a scalar ends).
//
// It also applies QEMU's input rules that a stock JSON parser does not know:
// - single-quoted strings and the \' escape (docs/interop/qmp-spec.rst,
//   "the server will accept an extension of 'single-quoted' strings") are
//   rewritten to standard JSON, so the parser only sees standard JSON;
// - a control character other than tab, CR and LF, or a byte that can never
//   appear in UTF-8 (0xC0, 0xC1, 0xF5-0xFF), is a lexical error that drops
//   the partial value: qmp-spec.rst tells clients to send one to bring the
//   parser back to a known-good state;
// - a value larger than max_value_bytes or nested deeper than max_depth is
//   refused; the rest of it is skipped (only its bracket depth is counted)
//   so memory stays bounded whatever the client sends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

struct JsonStreamLimits {
    size_t max_value_bytes = 1 << 20;
    uint64_t max_depth = 1024; // QEMU's MAX_NESTING
};

class JsonStream {
public:
    struct Item {
        bool is_error = false;
        // A whole value in standard JSON (to be parsed), or the error's
        // description ("JSON parse error, ...").
        std::string text;
    };
    using Sink = std::function<void(Item)>;

    explicit JsonStream(JsonStreamLimits limits = {}) : m_limits(limits) {}

    // Feeds bytes; calls `sink` for every value or error they complete.
    void feed(std::string_view bytes, const Sink& sink);

    // Bytes held for the value in progress (never above max_value_bytes).
    size_t buffered() const { return m_buffer.size(); }

private:
    void reset();
    void append(std::string_view text, const Sink& sink);
    void finish_value(const Sink& sink);
    void refuse(const char* desc, const Sink& sink);

    JsonStreamLimits m_limits;
    std::string m_buffer;
    uint64_t m_depth = 0;
    char m_quote = 0;         // the open string's quote, 0 outside strings
    bool m_escape = false;    // the previous byte in the string was a backslash
    bool m_scalar = false;    // a top-level number or keyword is in progress
    bool m_discarding = false; // the value in progress was refused
};
