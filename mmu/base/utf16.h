// UTF-16 (as Windows formats store text: VHD and VHDX parent locators,
// Hyper-V's key-value pairs) to and from UTF-8.
#pragma once

#include "mmu/base/types.h"

#include <span>
#include <string>
#include <vector>

// UTF-16 (little- or big-endian) to UTF-8, up to the first NUL; unpaired
// surrogates become U+FFFD.
inline std::string utf16_to_utf8(std::span<const u8> bytes, bool big_endian = false)
{
    std::string out;
    auto unit = [&](size_t i) -> u32 {
        return big_endian ? (u32{bytes[2 * i]} << 8) | bytes[2 * i + 1]
                          : (u32{bytes[2 * i + 1]} << 8) | bytes[2 * i];
    };
    size_t count = bytes.size() / 2;
    for (size_t i = 0; i < count; ++i) {
        u32 c = unit(i);
        if (c == 0)
            break;
        if (c >= 0xD800 && c < 0xDC00 && i + 1 < count && unit(i + 1) >= 0xDC00 &&
            unit(i + 1) < 0xE000) {
            c = 0x10000 + ((c - 0xD800) << 10) + (unit(i + 1) - 0xDC00);
            ++i;
        } else if (c >= 0xD800 && c < 0xE000) {
            c = 0xFFFD;
        }
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xC0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xE0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        }
    }
    return out;
}

// UTF-8 to UTF-16; bytes that are not UTF-8 become U+FFFD.
inline std::vector<u8> utf8_to_utf16(const std::string& text, bool big_endian = false)
{
    std::vector<u8> out;
    auto put = [&](u32 unit) {
        u8 high = static_cast<u8>(unit >> 8), low = static_cast<u8>(unit);
        out.push_back(big_endian ? high : low);
        out.push_back(big_endian ? low : high);
    };
    for (size_t i = 0; i < text.size();) {
        u8 lead = static_cast<u8>(text[i]);
        size_t length = lead < 0x80 ? 1 : lead >> 5 == 6 ? 2 : lead >> 4 == 14 ? 3 : lead >> 3 == 30 ? 4 : 0;
        u32 c = 0xFFFD;
        if (length == 1) {
            c = lead;
        } else if (length > 1 && i + length <= text.size()) {
            c = lead & (0x7F >> length);
            for (size_t k = 1; k < length; ++k) {
                u8 next = static_cast<u8>(text[i + k]);
                if ((next & 0xC0) != 0x80) {
                    c = 0xFFFD;
                    length = 1;
                    break;
                }
                c = (c << 6) | (next & 0x3F);
            }
        } else {
            length = 1;
        }
        i += length;
        if (c >= 0x10000) {
            put(0xD800 + ((c - 0x10000) >> 10));
            put(0xDC00 + ((c - 0x10000) & 0x3FF));
        } else {
            put(c);
        }
    }
    return out;
}
