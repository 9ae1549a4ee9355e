// safetensors-hpp: bytewise order of tensor names, inline: names share long prefixes
// ("model.layers.12.mlp."), and a first open in a fresh process pays for binding memcmp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include "x86_vec.hpp"
#endif

namespace safetensors::detail {

// The first of the eight bytes at a and b (read as x and y) that differ; x != y.
inline std::size_t first_different_byte(const char* a, const char* b, std::uint64_t x, std::uint64_t y) noexcept {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    (void)a, (void)b;
    return static_cast<std::size_t>(__builtin_ctzll(x ^ y)) / 8;
#else
    (void)x, (void)y;
    std::size_t k = 0;
    while (a[k] == b[k]) ++k;
    return k;
#endif
}

// Bytewise a < b: sixteen bytes at a time with SSE2, then eight (the last eight overlapping
// the ones before).
inline bool name_less(std::string_view a, std::string_view b) noexcept {
    const std::size_t common = a.size() < b.size() ? a.size() : b.size();
    if (common < 8) {
        for (std::size_t i = 0; i < common; ++i)
            if (a[i] != b[i]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
        return a.size() < b.size();
    }
    std::size_t i = 0;
#if defined(SAFETENSORS_DETAIL_X86_VEC) && defined(__SSE2__)
    for (; i + 16 <= common; i += 16) {
        const auto x = x86::mm_loadu_si128(reinterpret_cast<const x86::m128i_u*>(a.data() + i));
        const auto y = x86::mm_loadu_si128(reinterpret_cast<const x86::m128i_u*>(b.data() + i));
        const auto equal = static_cast<unsigned>(x86::mm_movemask_epi8(x86::mm_cmpeq_epi8(x, y)));
        if (equal != 0xFFFFu) {
            const std::size_t at = i + static_cast<std::size_t>(__builtin_ctz(~equal));
            return static_cast<unsigned char>(a[at]) < static_cast<unsigned char>(b[at]);
        }
    }
    if (i == common) return a.size() < b.size();
#endif
    for (;; i += 8) {
        if (i + 8 > common) i = common - 8;
        std::uint64_t x, y;
        std::memcpy(&x, a.data() + i, 8);
        std::memcpy(&y, b.data() + i, 8);
        if (x != y) {
            const std::size_t at = i + first_different_byte(a.data() + i, b.data() + i, x, y);
            return static_cast<unsigned char>(a[at]) < static_cast<unsigned char>(b[at]);
        }
        if (i + 8 == common) return a.size() < b.size();
    }
}

} // namespace safetensors::detail
