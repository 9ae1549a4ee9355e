// safetensors-hpp: strict UTF-8 validation of header bytes (the reference checks it before JSON).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace safetensors::detail {

// Returns the offset of the first byte of the first invalid sequence, or size when the
// whole range is valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
inline std::size_t find_invalid_utf8(const unsigned char* s, std::size_t size) noexcept {
    std::size_t i = 0;
    while (i < size) {
        // Headers are almost all ASCII: skip 8 bytes at a time while no high bit is set.
        if (i + 8 <= size) {
            std::uint64_t word;
            std::memcpy(&word, s + i, 8);
            if ((word & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t n;
        unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0) lo = 0xA0;        // overlong
            if (c == 0xED) hi = 0x9F;        // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0) lo = 0x90;        // overlong
            if (c == 0xF4) hi = 0x8F;        // above U+10FFFF
        } else {
            return i;
        }
        if (i + n > size) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (std::size_t k = 2; k < n; ++k)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += n;
    }
    return size;
}

} // namespace safetensors::detail
