// safetensors-hpp: vectorized conversion kernels for x86 (AVX2 + F16C, and AVX-512F).
//
// Each kernel carries its own __attribute__((target(...))), so users compile with their usual
// flags and the library picks a kernel at run time (convert.hpp) only where the CPU has it.
// Only GCC and Clang on x86 targets other than Windows get these: MinGW's GCC cannot keep
// 32-byte stack alignment for AVX code (GCC bug 54412), and MSVC has no target attribute.
// Everywhere else SAFETENSORS_DETAIL_CONVERT_X86 is 0 and only the scalar kernels exist.
// Define SAFETENSORS_NO_SIMD to leave the vectorized kernels out everywhere.
//
// Every kernel handles whole vectors and leaves the tail (fewer elements than one iteration
// takes) to the scalar kernel, so the two agree bit for bit by construction of the tests.
#pragma once

#include "os_config.hpp"  // SAFETENSORS_DETAIL_AVX_STACK_OK

#if !defined(SAFETENSORS_NO_SIMD) && (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__x86_64__) || defined(__i386__)) && SAFETENSORS_DETAIL_AVX_STACK_OK
#define SAFETENSORS_DETAIL_CONVERT_X86 1
#else
#define SAFETENSORS_DETAIL_CONVERT_X86 0
#endif

#if SAFETENSORS_DETAIL_CONVERT_X86

#include <cpuid.h>

#include <cstddef>
#include <cstdint>

#include "convert_scalar.hpp"
#include "x86_vec.hpp"

namespace safetensors {
namespace detail {

// ---- CPU features (read once) -------------------------------------------------------------------

// __builtin_cpu_supports also checks that the OS saves the AVX/AVX-512 registers. Clang 14
// does not know "f16c", so that bit (CPUID leaf 1, ECX bit 29) is read directly; it needs
// the same OS support as AVX, which the "avx2" check already covers.
inline bool cpu_has_avx2_f16c() noexcept {
    static const bool yes = [] {
        __builtin_cpu_init();
        unsigned a = 0, b = 0, c = 0, d = 0;
        const bool f16c = __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & (1u << 29)) != 0;
        return __builtin_cpu_supports("avx2") != 0 && f16c;
    }();
    return yes;
}

inline bool cpu_has_avx512f() noexcept {
    static const bool yes = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") != 0;
    }();
    return yes;
}

// ---- AVX2 + F16C: 16 elements per iteration -----------------------------------------------------

__attribute__((target("avx2,f16c"))) inline void bf16_to_f32_avx2(const std::byte* src, std::byte* dst,
                                                                   std::size_t count) noexcept {
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {  // widen each 16-bit code to 32 bits, then shift it to the top
        const x86::m128i lo = x86::mm_loadu_si128(reinterpret_cast<const x86::m128i*>(src + 2 * i));
        const x86::m128i hi = x86::mm_loadu_si128(reinterpret_cast<const x86::m128i*>(src + 2 * i + 16));
        x86::mm256_storeu_si256(reinterpret_cast<x86::m256i*>(dst + 4 * i), x86::mm256_slli_epi32<16>(x86::mm256_cvtepu16_epi32(lo)));
        x86::mm256_storeu_si256(reinterpret_cast<x86::m256i*>(dst + 4 * i + 32),
                                x86::mm256_slli_epi32<16>(x86::mm256_cvtepu16_epi32(hi)));
    }
    bf16_to_f32_scalar(src + 2 * i, dst + 4 * i, count - i);
}

__attribute__((target("avx2,f16c"))) inline void f16_to_f32_avx2(const std::byte* src, std::byte* dst,
                                                                  std::size_t count) noexcept {
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const x86::m128i lo = x86::mm_loadu_si128(reinterpret_cast<const x86::m128i*>(src + 2 * i));
        const x86::m128i hi = x86::mm_loadu_si128(reinterpret_cast<const x86::m128i*>(src + 2 * i + 16));
        x86::mm256_storeu_ps(reinterpret_cast<float*>(dst + 4 * i), x86::mm256_cvtph_ps(lo));
        x86::mm256_storeu_ps(reinterpret_cast<float*>(dst + 4 * i + 32), x86::mm256_cvtph_ps(hi));
    }
    f16_to_f32_scalar(src + 2 * i, dst + 4 * i, count - i);
}

__attribute__((target("avx2,f16c"))) inline void f32_to_f16_avx2(const std::byte* src, std::byte* dst,
                                                                  std::size_t count) noexcept {
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const x86::m256 lo = x86::mm256_loadu_ps(reinterpret_cast<const float*>(src + 4 * i));
        const x86::m256 hi = x86::mm256_loadu_ps(reinterpret_cast<const float*>(src + 4 * i + 32));
        x86::mm_storeu_si128(reinterpret_cast<x86::m128i*>(dst + 2 * i), x86::mm256_cvtps_ph<x86::fround_to_nearest_int>(lo));
        x86::mm_storeu_si128(reinterpret_cast<x86::m128i*>(dst + 2 * i + 16), x86::mm256_cvtps_ph<x86::fround_to_nearest_int>(hi));
    }
    f32_to_f16_scalar(src + 4 * i, dst + 2 * i, count - i);
}

// f32_bits_to_bf16 on 8 lanes at a time, written out twice so no __m256i crosses a function
// boundary (that would change the ABI of a function compiled without AVX).
__attribute__((target("avx2,f16c"))) inline void f32_to_bf16_avx2(const std::byte* src, std::byte* dst,
                                                                   std::size_t count) noexcept {
    const x86::m256i one = x86::mm256_set1_epi32(1), bias = x86::mm256_set1_epi32(0x7fff), quiet = x86::mm256_set1_epi32(0x40);
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const x86::m256i a = x86::mm256_loadu_si256(reinterpret_cast<const x86::m256i*>(src + 4 * i));
        const x86::m256i b = x86::mm256_loadu_si256(reinterpret_cast<const x86::m256i*>(src + 4 * i + 32));
        const x86::m256i a_top = x86::mm256_srli_epi32<16>(a), b_top = x86::mm256_srli_epi32<16>(b);
        x86::m256i ra = x86::mm256_srli_epi32<16>(x86::mm256_add_epi32(x86::mm256_add_epi32(a, bias), x86::mm256_and_si256(a_top, one)));
        x86::m256i rb = x86::mm256_srli_epi32<16>(x86::mm256_add_epi32(x86::mm256_add_epi32(b, bias), x86::mm256_and_si256(b_top, one)));
        const x86::m256 fa = x86::mm256_castsi256_ps(a), fb = x86::mm256_castsi256_ps(b);
        ra = x86::mm256_blendv_epi8(ra, x86::mm256_or_si256(a_top, quiet), x86::mm256_castps_si256(x86::mm256_cmp_ps<x86::cmp_unord_q>(fa, fa)));
        rb = x86::mm256_blendv_epi8(rb, x86::mm256_or_si256(b_top, quiet), x86::mm256_castps_si256(x86::mm256_cmp_ps<x86::cmp_unord_q>(fb, fb)));
        // packus interleaves 128-bit lanes (a0-3 b0-3 a4-7 b4-7); the permute restores the order.
        const x86::m256i packed = x86::mm256_permute4x64_epi64<0xD8>(x86::mm256_packus_epi32(ra, rb));
        x86::mm256_storeu_si256(reinterpret_cast<x86::m256i*>(dst + 2 * i), packed);
    }
    f32_to_bf16_scalar(src + 4 * i, dst + 2 * i, count - i);
}

// F8: a gather from the 256-entry table of the dtype.
template <dtype T>
__attribute__((target("avx2,f16c"))) void f8_to_f32_avx2(const std::byte* src, std::byte* dst,
                                                          std::size_t count) noexcept {
    const float* table = small_float_table(T);
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const x86::m128i codes = x86::mm_loadu_si128(reinterpret_cast<const x86::m128i*>(src + i));
        const x86::m256i lo = x86::mm256_cvtepu8_epi32(codes), hi = x86::mm256_cvtepu8_epi32(x86::mm_srli_si128<8>(codes));
        x86::mm256_storeu_ps(reinterpret_cast<float*>(dst + 4 * i), x86::mm256_i32gather_ps<4>(table, lo));
        x86::mm256_storeu_ps(reinterpret_cast<float*>(dst + 4 * i + 32), x86::mm256_i32gather_ps<4>(table, hi));
    }
    f8_to_f32_scalar<T>(src + i, dst + 4 * i, count - i);
}

// ---- AVX-512F: 16 elements per vector -----------------------------------------------------------
// The zero-masking forms with an all-ones mask are the plain instructions; they are used because
// the plain intrinsics start from _mm512_undefined_*(), which GCC 12 reports as
// -Wmaybe-uninitialized (GCC bug 105593). The intrinsics are x86_vec.hpp's (not <immintrin.h>).

// BF16 or F16 to F32: BF16 is the top half of an F32 (widen and shift), F16 goes through vcvtph2ps.
template <dtype From>
__attribute__((target("avx512f"))) void half_to_f32_avx512(const std::byte* src, std::byte* dst, std::size_t count) noexcept {
    static_assert(From == dtype::BF16 || From == dtype::F16, "BF16 or F16 only");
    const x86::mmask16 all = 0xffff;
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const x86::m256i codes = x86::mm256_loadu_si256(reinterpret_cast<const x86::m256i*>(src + 2 * i));
        if constexpr (From == dtype::BF16)
            x86::mm512_storeu_si512(dst + 4 * i, x86::mm512_maskz_slli_epi32<16>(all, x86::mm512_maskz_cvtepu16_epi32(all, codes)));
        else
            x86::mm512_storeu_ps(dst + 4 * i, x86::mm512_maskz_cvtph_ps(all, codes));
    }
    if constexpr (From == dtype::BF16)
        bf16_to_f32_scalar(src + 2 * i, dst + 4 * i, count - i);
    else
        f16_to_f32_scalar(src + 2 * i, dst + 4 * i, count - i);
}

__attribute__((target("avx512f"))) inline void f32_to_f16_avx512(const std::byte* src, std::byte* dst,
                                                                  std::size_t count) noexcept {
    const x86::mmask16 all = 0xffff;
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const x86::m512 v = x86::mm512_loadu_ps(src + 4 * i);
        x86::mm256_storeu_si256(reinterpret_cast<x86::m256i*>(dst + 2 * i), x86::mm512_maskz_cvtps_ph<x86::fround_to_nearest_int>(all, v));
    }
    f32_to_f16_scalar(src + 4 * i, dst + 2 * i, count - i);
}

__attribute__((target("avx512f"))) inline void f32_to_bf16_avx512(const std::byte* src, std::byte* dst,
                                                                   std::size_t count) noexcept {
    const x86::m512i one = x86::mm512_set1_epi32(1), bias = x86::mm512_set1_epi32(0x7fff), quiet = x86::mm512_set1_epi32(0x40);
    const x86::mmask16 all = 0xffff;
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const x86::m512i x = x86::mm512_loadu_si512(src + 4 * i);
        const x86::m512i top = x86::mm512_maskz_srli_epi32<16>(all, x);
        const x86::m512i rounded =
            x86::mm512_maskz_srli_epi32<16>(all, x86::mm512_add_epi32(x86::mm512_add_epi32(x, bias), x86::mm512_and_si512(top, one)));
        const x86::m512 f = x86::mm512_castsi512_ps(x);
        const x86::mmask16 nan = x86::mm512_cmp_ps_mask<x86::cmp_unord_q>(f, f);
        const x86::m512i result = x86::mm512_mask_blend_epi32(nan, rounded, x86::mm512_or_si512(top, quiet));
        x86::mm256_storeu_si256(reinterpret_cast<x86::m256i*>(dst + 2 * i), x86::mm512_maskz_cvtepi32_epi16(all, result));
    }
    f32_to_bf16_scalar(src + 4 * i, dst + 2 * i, count - i);
}

template <dtype T>
__attribute__((target("avx512f"))) void f8_to_f32_avx512(const std::byte* src, std::byte* dst,
                                                          std::size_t count) noexcept {
    const float* table = small_float_table(T);
    const x86::mmask16 all = 0xffff;
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const x86::m512i codes = x86::mm512_maskz_cvtepu8_epi32(all, x86::mm_loadu_si128(reinterpret_cast<const x86::m128i*>(src + i)));
        x86::mm512_storeu_ps(dst + 4 * i, x86::mm512_mask_i32gather_ps<4>(x86::mm512_setzero_ps(), all, codes, table));
    }
    f8_to_f32_scalar<T>(src + i, dst + 4 * i, count - i);
}

} // namespace detail
} // namespace safetensors

#endif // SAFETENSORS_DETAIL_CONVERT_X86
