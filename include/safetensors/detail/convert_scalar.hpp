// safetensors-hpp: the portable conversion kernels (every CPU, every compiler). The vectorized
// kernels in convert_x86.hpp must give the same bits; these define what "right" is.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../dtype.hpp"

namespace safetensors {
namespace detail {

// Kernels read `count` elements from src and write `count` elements to dst. Neither pointer
// needs any alignment (loads and stores go through memcpy), and the ranges must not overlap.
using convert_kernel = void (*)(const std::byte* src, std::byte* dst, std::size_t count);

inline void store_f32_bits(std::byte* dst, std::uint32_t bits) noexcept { std::memcpy(dst, &bits, 4); }
inline void store_u16(std::byte* dst, std::uint16_t v) noexcept { std::memcpy(dst, &v, 2); }
inline std::uint32_t load_f32_bits(const std::byte* src) noexcept { return load_le<std::uint32_t>(src); }

// ---- F32 -> 16-bit floats, round to nearest even ------------------------------------------------

// NaN keeps its sign and the top 7 payload bits and becomes quiet (as ml_dtypes does; torch's
// vectorized CPU path returns 0xFFFF for every NaN instead, so NaN compares by NaN-ness only).
inline std::uint16_t f32_bits_to_bf16(std::uint32_t x) noexcept {
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);
    // Adding 0x7fff plus the bit that will become the lowest kept one rounds half to even; a
    // carry out of the mantissa bumps the exponent, which is right up to and including infinity.
    return static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// Exactly what F16C's vcvtps2ph with round-to-nearest-even gives (and torch's table): overflow
// to infinity from 65520 up, subnormal results rounded, NaN quiet with the top 10 payload bits.
inline std::uint16_t f32_bits_to_f16(std::uint32_t bits) noexcept {
    const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
    const std::uint32_t x = bits & 0x7fffffffu;
    if (x >= 0x7f800000u)  // infinity or NaN
        return static_cast<std::uint16_t>(sign | (x == 0x7f800000u ? 0x7c00u : 0x7e00u | ((x >> 13) & 0x3ffu)));
    if (x >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520 rounds up to infinity
    if (x >= 0x38800000u) {  // a normal half (>= 2^-14): rebias by 112, round off 13 mantissa bits
        const std::uint32_t r = x - 0x38000000u;
        return static_cast<std::uint16_t>(sign | ((r + 0xfffu + ((r >> 13) & 1u)) >> 13));
    }
    if (x <= 0x33000000u) return sign;  // <= 2^-25: half of the smallest subnormal ties to 0
    // A half subnormal, in units of 2^-24: the float's significand shifted right by 126 - e,
    // with e in [102, 112], so the shift is 14..24. Rounding up to 0x400 gives the smallest normal.
    const std::uint32_t e = x >> 23;
    const std::uint32_t m = (x & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - e;
    std::uint32_t r = m >> shift;
    const std::uint32_t rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (r & 1u))) ++r;
    return static_cast<std::uint16_t>(sign | r);
}

// ---- Lookup tables for the formats with at most 256 codes ---------------------------------------

// Every code decoded once by the scalar decoders of dtype.hpp; built on first use
// (thread-safe static initialization) and exact by construction.
template <std::size_t N, class Decode>
std::array<float, N> make_table(Decode decode) noexcept {
    std::array<float, N> t{};
    for (std::size_t c = 0; c < N; ++c) t[c] = decode(static_cast<std::uint8_t>(c));
    return t;
}

// The table of an 8-bit, 6-bit or 4-bit float dtype (256, 64 or 16 meaningful entries).
inline const float* small_float_table(dtype t) noexcept {
    static const auto e5m2 = make_table<256>(f8_e5m2_to_float);
    static const auto e4m3 = make_table<256>(f8_e4m3_to_float);
    static const auto e8m0 = make_table<256>(f8_e8m0_to_float);
    static const auto e4m3fnuz = make_table<256>(f8_e4m3fnuz_to_float);
    static const auto e5m2fnuz = make_table<256>(f8_e5m2fnuz_to_float);
    static const auto e2m3 = make_table<64>(f6_e2m3_to_float);
    static const auto e3m2 = make_table<64>(f6_e3m2_to_float);
    static const auto e2m1 = make_table<16>(f4_to_float);
    switch (t) {
        case dtype::F8_E5M2: return e5m2.data();
        case dtype::F8_E4M3: return e4m3.data();
        case dtype::F8_E8M0: return e8m0.data();
        case dtype::F8_E4M3FNUZ: return e4m3fnuz.data();
        case dtype::F8_E5M2FNUZ: return e5m2fnuz.data();
        case dtype::F6_E2M3: return e2m3.data();
        case dtype::F6_E3M2: return e3m2.data();
        case dtype::F4: return e2m1.data();
        default: return nullptr;
    }
}

inline void store_f32(std::byte* dst, float f) noexcept { std::memcpy(dst, &f, 4); }

// ---- Scalar kernels -----------------------------------------------------------------------------

inline void bf16_to_f32_scalar(const std::byte* src, std::byte* dst, std::size_t count) noexcept {
    for (std::size_t i = 0; i < count; ++i)
        store_f32_bits(dst + 4 * i, std::uint32_t{load_le<std::uint16_t>(src + 2 * i)} << 16);
}

// f16_to_float, with NaN made quiet (sign and payload kept) as F16C's vcvtph2ps does, so every
// path gives the same bits.
inline void f16_to_f32_scalar(const std::byte* src, std::byte* dst, std::size_t count) noexcept {
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint16_t h = load_le<std::uint16_t>(src + 2 * i);
        const float f = f16_to_float(h);
        std::uint32_t bits;
        std::memcpy(&bits, &f, 4);
        if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0) bits |= 0x00400000u;
        store_f32_bits(dst + 4 * i, bits);
    }
}

inline void f32_to_bf16_scalar(const std::byte* src, std::byte* dst, std::size_t count) noexcept {
    for (std::size_t i = 0; i < count; ++i) store_u16(dst + 2 * i, f32_bits_to_bf16(load_f32_bits(src + 4 * i)));
}

inline void f32_to_f16_scalar(const std::byte* src, std::byte* dst, std::size_t count) noexcept {
    for (std::size_t i = 0; i < count; ++i) store_u16(dst + 2 * i, f32_bits_to_f16(load_f32_bits(src + 4 * i)));
}

// One code per byte (the F8 formats).
template <dtype T>
void f8_to_f32_scalar(const std::byte* src, std::byte* dst, std::size_t count) noexcept {
    const float* table = small_float_table(T);
    for (std::size_t i = 0; i < count; ++i) store_f32(dst + 4 * i, table[std::to_integer<std::uint8_t>(src[i])]);
}

// F6: 4 codes in every 3 bytes, element j of a group at bits [6j, 6j + 6) of its 24-bit
// little-endian value (dtype.hpp). Callers pass whole groups (count % 4 == 0).
template <dtype T>
void f6_to_f32_scalar(const std::byte* src, std::byte* dst, std::size_t count) noexcept {
    const float* table = small_float_table(T);
    for (std::size_t g = 0; g < count / 4; ++g) {
        const std::byte* p = src + 3 * g;
        const std::uint32_t v = std::to_integer<std::uint32_t>(p[0]) | (std::to_integer<std::uint32_t>(p[1]) << 8) |
                                (std::to_integer<std::uint32_t>(p[2]) << 16);
        for (unsigned j = 0; j < 4; ++j) store_f32(dst + 16 * g + 4 * j, table[(v >> (6 * j)) & 0x3fu]);
    }
}

// F4: two codes per byte, the low nibble first. Callers pass whole bytes (count % 2 == 0).
inline void f4_to_f32_scalar(const std::byte* src, std::byte* dst, std::size_t count) noexcept {
    const float* table = small_float_table(dtype::F4);
    for (std::size_t i = 0; i < count / 2; ++i) {
        const auto b = std::to_integer<unsigned>(src[i]);
        store_f32(dst + 8 * i, table[b & 0x0fu]);
        store_f32(dst + 8 * i + 4, table[b >> 4]);
    }
}

// F32 to F32: the file's little-endian floats are the host's floats except on big-endian hosts.
inline void f32_copy_scalar(const std::byte* src, std::byte* dst, std::size_t count) noexcept {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (std::size_t i = 0; i < count; ++i) store_f32_bits(dst + 4 * i, load_f32_bits(src + 4 * i));
#else
    if (count != 0) std::memcpy(dst, src, 4 * count);
#endif
}

// Integers and F64: static_cast, which rounds to nearest even for magnitudes a float cannot
// hold exactly (above 2^24), like torch's .float().
template <class From>
void cast_to_f32_scalar(const std::byte* src, std::byte* dst, std::size_t count) noexcept {
    using bits_t = std::conditional_t<sizeof(From) == 1, std::uint8_t,
                   std::conditional_t<sizeof(From) == 2, std::uint16_t,
                   std::conditional_t<sizeof(From) == 4, std::uint32_t, std::uint64_t>>>;
    for (std::size_t i = 0; i < count; ++i)
        store_f32(dst + 4 * i, static_cast<float>(bit_cast_to<From>(load_le<bits_t>(src + sizeof(From) * i))));
}

} // namespace detail
} // namespace safetensors
