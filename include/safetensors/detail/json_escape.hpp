// safetensors-hpp: JSON string escaping exactly as the reference writer (serde_json) does it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace safetensors::detail {

// Appends text as a quoted JSON string. Only '"', '\\' and the control characters U+0000..U+001F
// are escaped: \b \t \n \f \r in short form, the others as \u00XX with lowercase hex. Everything
// else, DEL, '/' and non-ASCII UTF-8 included, is copied raw. This is serde_json's output, so
// headers written with it are byte-identical to the reference writer's. The caller checks UTF-8.
inline void append_json_string(std::string& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t run = 0;  // start of the pending run of bytes that need no escape
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(text.data() + run, i - run);
        run = i + 1;
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
    out.append(text.data() + run, text.size() - run);
    out.push_back('"');
}

} // namespace safetensors::detail
