// safetensors command: numbers and text: the shortest decimal that reads back as the same
// value (of a double, or of a narrower float format), JSON's form of it, where NaN and the
// infinities, which JSON lacks, are the strings "nan", "inf" and "-inf"; and whole numbers
// given on the command line.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

namespace cli {

// "%.*e" with digits significant digits (1 to 32): d.ddde+XX, correctly rounded (C library).
inline std::string scientific_text(double x, int digits) {
    char text[48];  // "-d." + up to 31 digits + "e-308"
    std::snprintf(text, sizeof text, "%.*e", digits - 1, x);
    return text;
}

// The fewest significant digits (1 to 17) whose correctly rounded text reads back as x, where
// same(parsed) says whether a parsed double stands for x. More digits are never farther from
// x, so reading back is monotonic in the count and a binary search finds it.
template <class Same>
int shortest_digits(double x, Same&& same) {
    int low = 1, high = 17;  // 17 digits always read back as the double itself
    while (low < high) {
        const int mid = (low + high) / 2;
        if (same(std::strtod(scientific_text(x, mid).c_str(), nullptr))) high = mid;
        else low = mid + 1;
    }
    return low;
}

// A finite double as the shortest text that reads back as it ("0.1", "1e+30", "65504"; "-0.0",
// since JSON readers take "-0" for the integer 0).
inline std::string shortest_text(double x) {
    if (x == 0 && std::signbit(x)) return "-0.0";
    // Whole numbers below 2^53 (every integer dtype, most small floats) skip the search.
    if (x == std::trunc(x) && std::fabs(x) < 9007199254740992.0) return std::to_string(static_cast<std::int64_t>(x));
#if defined(__cpp_lib_to_chars)
    // The same shortest round trip, a hundred times faster (it matters for --json of a large tensor).
    char text[32];
    return std::string(text, std::to_chars(text, text + sizeof text, x).ptr);
#else
    const int digits = shortest_digits(x, [x](double parsed) { return parsed == x; });
    char text[40];
    std::snprintf(text, sizeof text, "%.*g", digits, x);
    return text;
#endif
}

// x as a JSON value: the shortest number text, or "nan", "inf", "-inf" as strings.
inline void append_json_number(std::string& out, double x) {
    if (std::isnan(x)) out += "\"nan\"";
    else if (std::isinf(x)) out += x < 0 ? "\"-inf\"" : "\"inf\"";
    else out += shortest_text(x);
}

// A flag's whole number: digits only (strtoull would take a sign, spaces and "0x"), at most
// 19 of them, so it fits in 64 bits.
inline std::optional<std::uint64_t> parse_whole_number(const std::string& text) {
    if (text.empty() || text.size() > 19) return std::nullopt;
    std::uint64_t n = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

} // namespace cli
