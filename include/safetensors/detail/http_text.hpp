// safetensors-hpp: the ASCII character classes and small text steps that HTTP header values and
// URLs are parsed with (RFC 9110, RFC 3986). Locale-free: every test is on the byte's value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace safetensors::detail::http {

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_hex(char c) noexcept { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
inline bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }
// A control character or DEL (HTAB included: callers that allow it test it first).
inline bool is_ctl(char c) noexcept { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }
inline bool is_ascii(char c) noexcept { return static_cast<unsigned char>(c) < 0x80; }

inline char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string lowered(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = lower(c);
    return out;
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

inline bool starts_with(std::string_view text, std::string_view prefix) noexcept {
    return text.substr(0, prefix.size()) == prefix;
}

// Removes literal from the front of text when text starts with it.
inline bool take_literal(std::string_view& text, std::string_view literal) noexcept {
    if (!starts_with(text, literal)) return false;
    text.remove_prefix(literal.size());
    return true;
}

inline std::string_view trim_ows(std::string_view text) noexcept {
    while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
    return text;
}

// tchar (RFC 9110 5.6.2): what a header name, a token or a media type is made of.
inline bool is_tchar(char c) noexcept {
    if (is_digit(c) || is_alpha(c)) return true;
    constexpr std::string_view others = "!#$%&'*+-.^_`|~";
    return others.find(c) != std::string_view::npos;
}

// unreserved (RFC 3986 2.3): never percent-encoded.
inline bool is_unreserved(char c) noexcept {
    return is_digit(c) || is_alpha(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// pchar without the percent sign (RFC 3986 3.3): unreserved, sub-delims, ':' and '@'.
inline bool is_path_char(char c) noexcept {
    constexpr std::string_view sub_delims_colon_at = "!$&'()*+,;=:@";
    return is_unreserved(c) || sub_delims_colon_at.find(c) != std::string_view::npos;
}

// 1 to 19 decimal digits and nothing else (no sign, no space): 19 digits always fit 64 bits.
inline bool parse_u64(std::string_view digits, std::uint64_t& out) noexcept {
    if (digits.empty() || digits.size() > 19) return false;
    std::uint64_t value = 0;
    for (char c : digits) {
        if (!is_digit(c)) return false;
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    out = value;
    return true;
}

inline bool all_digits(std::string_view text) noexcept {
    if (text.empty()) return false;
    for (char c : text)
        if (!is_digit(c)) return false;
    return true;
}

inline int hex_value(char c) noexcept {
    if (is_digit(c)) return c - '0';
    return lower(c) - 'a' + 10;
}

// "%XX" with upper-case hex digits, as RFC 3986 2.1 recommends (and Python's quote writes).
inline void append_percent_encoded(std::string& out, char c) {
    constexpr char hex[] = "0123456789ABCDEF";
    const auto byte = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(hex[byte >> 4]);
    out.push_back(hex[byte & 15]);
}

// Every byte that keep(c) refuses written as %XX.
template <class Keep>
std::string percent_encoded(std::string_view text, Keep keep) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (keep(c))
            out.push_back(c);
        else
            append_percent_encoded(out, c);
    }
    return out;
}

// %XX escapes decoded; false when a '%' is not followed by two hex digits.
inline bool percent_decoded(std::string_view text, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out.push_back(text[i]);
            continue;
        }
        if (text.size() - i < 3 || !is_hex(text[i + 1]) || !is_hex(text[i + 2])) return false;
        out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
        i += 2;
    }
    return true;
}

} // namespace safetensors::detail::http
