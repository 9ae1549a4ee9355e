// safetensors-hpp: JSON string escaping exactly as the reference writer (serde_json) does it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace safetensors::detail {

// Whether any byte of word is '"', '\\' or below 0x20 (a borrow can only add bytes above a
// flagged one, so "any" is exact).
inline bool has_byte_to_escape(std::uint64_t word) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    const std::uint64_t quote = word ^ (ones * '"');
    const std::uint64_t backslash = word ^ (ones * '\\');
    return ((((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | ((word - ones * 0x20) & ~word)) & highs) != 0;
}

// Appends text as a quoted JSON string. Only '"', '\\' and the control characters U+0000..U+001F
// are escaped: \b \t \n \f \r in short form, the others as \u00XX with lowercase hex. Everything
// else, DEL, '/' and non-ASCII UTF-8 included, is copied raw. This is serde_json's output, so
// headers written with it are byte-identical to the reference writer's. The caller checks UTF-8.
inline void append_json_string(std::string& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    out.push_back('"');
    // Eight bytes at a time through plain text: values of 100 MB (the header limit) pass here.
    const char* run = text.data();  // start of the pending run of bytes that need no escape
    const char* const end = text.data() + text.size();
    for (const char* p = run; p != end;) {
        if (end - p >= 8) {
            std::uint64_t word;
            std::memcpy(&word, p, 8);
            if (!has_byte_to_escape(word)) {
                p += 8;
                continue;
            }
        }
        const auto c = static_cast<unsigned char>(*p++);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(run, static_cast<std::size_t>(p - 1 - run));
        run = p;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\t': out += "\\t"; break;
            case '\n': out += "\\n"; break;
            case '\f': out += "\\f"; break;
            case '\r': out += "\\r"; break;
            default:
                out += "\\u00";
                out.push_back(hex[c >> 4]);
                out.push_back(hex[c & 15]);
        }
    }
    out.append(run, static_cast<std::size_t>(end - run));
    out.push_back('"');
}

} // namespace safetensors::detail
