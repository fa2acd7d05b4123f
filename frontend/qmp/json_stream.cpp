#include "frontend/qmp/json_stream.h"

namespace {

// Bytes QEMU's lexer rejects wherever they appear (qobject/json-lexer.c):
// they can never start or continue a UTF-8 sequence.
bool never_utf8(unsigned char byte)
{
    return byte == 0xC0 || byte == 0xC1 || byte >= 0xF5;
}

bool is_space(unsigned char byte)
{
    return byte == ' ' || byte == '\t' || byte == '\r' || byte == '\n';
}

// What ends a top-level number or keyword.
bool ends_scalar(unsigned char byte)
{
    return is_space(byte) || byte == '{' || byte == '}' || byte == '[' || byte == ']' || byte == '"' ||
           byte == '\'' || byte == ',' || byte == ':';
}

} // namespace

void JsonStream::reset()
{
    m_buffer.clear();
    m_depth = 0;
    m_quote = 0;
    m_escape = false;
    m_scalar = false;
    m_discarding = false;
}

void JsonStream::refuse(const char* desc, const Sink& sink)
{
    sink(Item{true, desc});
    m_buffer.clear();
    m_buffer.shrink_to_fit();
    m_discarding = true;
}

void JsonStream::append(std::string_view text, const Sink& sink)
{
    if (m_discarding)
        return;
    if (m_buffer.size() + text.size() > m_limits.max_value_bytes) {
        // QEMU's streamer counts the same thing (the bytes of all tokens of
        // one value) under this name.
        refuse("JSON token size limit exceeded", sink);
        return;
    }
    m_buffer.append(text);
}

void JsonStream::finish_value(const Sink& sink)
{
    if (!m_discarding && !m_buffer.empty()) {
        Item item{false, std::move(m_buffer)};
        m_buffer = std::string();
        sink(std::move(item));
    }
    reset();
}

void JsonStream::feed(std::string_view bytes, const Sink& sink)
{
    for (char ch : bytes) {
        const auto byte = static_cast<unsigned char>(ch);
        const bool control = byte < 0x20 && (m_quote || !is_space(byte));
        if (control || never_utf8(byte)) {
            // Lexical error: QEMU reports the stray text and starts afresh
            // with the next byte (qmp-spec.rst, "Forcing the JSON parser
            // into known-good state").
            sink(Item{true, std::string("JSON parse error, stray '") + ch + "'"});
            reset();
            continue;
        }

        if (m_quote) {
            if (m_escape) {
                m_escape = false;
                if (ch == '\'')
                    append("'", sink); // QEMU's extra escape, not standard JSON
                else
                    append(std::string{'\\', ch}, sink);
            } else if (ch == '\\') {
                m_escape = true; // held back until the next byte says what it escapes
            } else if (ch == m_quote) {
                append("\"", sink);
                m_quote = 0;
                if (m_depth == 0)
                    finish_value(sink);
            } else if (ch == '"') {
                append("\\\"", sink); // a double quote inside a single-quoted string
            } else {
                append(std::string_view(&ch, 1), sink);
            }
            continue;
        }

        if (m_scalar) {
            if (!ends_scalar(byte)) {
                append(std::string_view(&ch, 1), sink);
                continue;
            }
            finish_value(sink);
        }

        switch (ch) {
        case ' ':
        case '\t':
        case '\r':
        case '\n':
            if (m_depth > 0)
                append(std::string_view(&ch, 1), sink);
            break;
        case '"':
        case '\'':
            m_quote = ch;
            append("\"", sink);
            break;
        case '{':
        case '[':
            ++m_depth;
            if (m_depth > m_limits.max_depth && !m_discarding)
                refuse("JSON nesting depth limit exceeded", sink);
            else
                append(std::string_view(&ch, 1), sink);
            break;
        case '}':
        case ']':
            // A closing bracket with nothing open is a value of its own,
            // which the parser then refuses, as QEMU does.
            if (m_depth > 0)
                --m_depth;
            append(std::string_view(&ch, 1), sink);
            if (m_depth == 0)
                finish_value(sink);
            break;
        default:
            append(std::string_view(&ch, 1), sink);
            if (m_depth == 0) {
                if (ch == ',' || ch == ':')
                    finish_value(sink);
                else
                    m_scalar = true;
            }
            break;
        }
    }
}
