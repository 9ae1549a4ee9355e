// safetensors-hpp: strict UTF-8 validation of header bytes (the reference checks it before JSON).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

// GCC and Clang get the SSE2 intrinsics from x86_vec.hpp (the same code, without parsing
// <emmintrin.h> and the headers it pulls in); MSVC from <emmintrin.h>.
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_vec.hpp"
#define SAFETENSORS_UTF8_SSE2 1
#elif defined(_M_X64)
#include <emmintrin.h>
#define SAFETENSORS_UTF8_SSE2 1
#endif

namespace safetensors::detail {

// Length of the valid multi-byte sequence starting at s[i] (whose lead byte is >= 0x80), or 0
// when it is invalid: no overlongs, no surrogates, nothing above U+10FFFF, not truncated.
inline std::size_t utf8_sequence_length(const unsigned char* s, std::size_t i, std::size_t size) noexcept {
    const unsigned char c = s[i];
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
        return 0;
    }
    if (n > size - i) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if ((s[i + k] & 0xC0) != 0x80) return 0;
    return n;
}

// Returns the offset of the first byte of the first invalid sequence, or size when the
// whole range is valid UTF-8.
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
        if (s[i] < 0x80) {
            ++i;
            continue;
        }
        const std::size_t n = utf8_sequence_length(s, i, size);
        if (n == 0) return i;
        i += n;
    }
    return size;
}

// What a header needs checked before nlohmann sees it, found in one pass over the bytes (a
// 10 MB header does not stay in cache between two passes).
struct header_bytes_scan {
    std::size_t invalid_utf8;  // offset of the first invalid sequence, or size
    std::size_t first_nul;     // offset of the first NUL byte, or size (not searched past invalid UTF-8)
};

namespace utf8_fast {
// True when the 32 bytes at p are all ASCII and none is NUL: the usual case, and the only
// one that needs no byte-by-byte look.
inline bool plain_ascii_32(const unsigned char* p) noexcept {
#if defined(SAFETENSORS_UTF8_SSE2) && defined(SAFETENSORS_DETAIL_X86_VEC)
    const x86::m128i a = x86::mm_loadu_si128(reinterpret_cast<const x86::m128i*>(p));
    const x86::m128i b = x86::mm_loadu_si128(reinterpret_cast<const x86::m128i*>(p + 16));
    // High bit set in either half, or a zero byte in either (min of the two is then zero).
    const x86::m128i zero = x86::mm_cmpeq_epi8(x86::mm_min_epu8(a, b), x86::mm_setzero_si128());
    return x86::mm_movemask_epi8(x86::mm_or_si128(x86::mm_or_si128(a, b), zero)) == 0;
#elif defined(SAFETENSORS_UTF8_SSE2)
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
    // High bit set in either half, or a zero byte in either (min of the two is then zero).
    const __m128i zero = _mm_cmpeq_epi8(_mm_min_epu8(a, b), _mm_setzero_si128());
    return _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), zero)) == 0;
#else
    for (int k = 0; k < 4; ++k) {
        std::uint64_t w;
        std::memcpy(&w, p + 8 * k, 8);
        const std::uint64_t has_zero = (w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull;
        if ((w & 0x8080808080808080ull) | has_zero) return false;
    }
    return true;
#endif
}
} // namespace utf8_fast

inline header_bytes_scan scan_header_bytes(const unsigned char* s, std::size_t size) noexcept {
    header_bytes_scan result{size, size};
    std::size_t i = 0;
    while (i < size) {
        if (size - i >= 32 && utf8_fast::plain_ascii_32(s + i)) {
            i += 32;
            continue;
        }
        // Byte by byte to the end of this block (a sequence may run past it).
        const std::size_t block_end = size - i >= 32 ? i + 32 : size;
        while (i < block_end) {
            const unsigned char c = s[i];
            if (c == 0) {
                if (result.first_nul == size) result.first_nul = i;
                ++i;
            } else if (c < 0x80) {
                ++i;
            } else {
                const std::size_t n = utf8_sequence_length(s, i, size);
                if (n == 0) {
                    result.invalid_utf8 = i;
                    return result;
                }
                i += n;
            }
        }
    }
    return result;
}

} // namespace safetensors::detail
