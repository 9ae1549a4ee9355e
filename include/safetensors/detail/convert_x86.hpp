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
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "convert_scalar.hpp"

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
        const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
        const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i + 16));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 4 * i), _mm256_slli_epi32(_mm256_cvtepu16_epi32(lo), 16));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 4 * i + 32),
                            _mm256_slli_epi32(_mm256_cvtepu16_epi32(hi), 16));
    }
    bf16_to_f32_scalar(src + 2 * i, dst + 4 * i, count - i);
}

__attribute__((target("avx2,f16c"))) inline void f16_to_f32_avx2(const std::byte* src, std::byte* dst,
                                                                  std::size_t count) noexcept {
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
        const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i + 16));
        _mm256_storeu_ps(reinterpret_cast<float*>(dst + 4 * i), _mm256_cvtph_ps(lo));
        _mm256_storeu_ps(reinterpret_cast<float*>(dst + 4 * i + 32), _mm256_cvtph_ps(hi));
    }
    f16_to_f32_scalar(src + 2 * i, dst + 4 * i, count - i);
}

__attribute__((target("avx2,f16c"))) inline void f32_to_f16_avx2(const std::byte* src, std::byte* dst,
                                                                  std::size_t count) noexcept {
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m256 lo = _mm256_loadu_ps(reinterpret_cast<const float*>(src + 4 * i));
        const __m256 hi = _mm256_loadu_ps(reinterpret_cast<const float*>(src + 4 * i + 32));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i), _mm256_cvtps_ph(lo, _MM_FROUND_TO_NEAREST_INT));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i + 16), _mm256_cvtps_ph(hi, _MM_FROUND_TO_NEAREST_INT));
    }
    f32_to_f16_scalar(src + 4 * i, dst + 2 * i, count - i);
}

// f32_bits_to_bf16 on 8 lanes at a time, written out twice so no __m256i crosses a function
// boundary (that would change the ABI of a function compiled without AVX).
__attribute__((target("avx2,f16c"))) inline void f32_to_bf16_avx2(const std::byte* src, std::byte* dst,
                                                                   std::size_t count) noexcept {
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), quiet = _mm256_set1_epi32(0x40);
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 4 * i));
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 4 * i + 32));
        const __m256i a_top = _mm256_srli_epi32(a, 16), b_top = _mm256_srli_epi32(b, 16);
        __m256i ra = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(a, bias), _mm256_and_si256(a_top, one)), 16);
        __m256i rb = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, bias), _mm256_and_si256(b_top, one)), 16);
        const __m256 fa = _mm256_castsi256_ps(a), fb = _mm256_castsi256_ps(b);
        ra = _mm256_blendv_epi8(ra, _mm256_or_si256(a_top, quiet), _mm256_castps_si256(_mm256_cmp_ps(fa, fa, _CMP_UNORD_Q)));
        rb = _mm256_blendv_epi8(rb, _mm256_or_si256(b_top, quiet), _mm256_castps_si256(_mm256_cmp_ps(fb, fb, _CMP_UNORD_Q)));
        // packus interleaves 128-bit lanes (a0-3 b0-3 a4-7 b4-7); the permute restores the order.
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(ra, rb), 0xD8);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * i), packed);
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
        const __m128i codes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
        const __m256i lo = _mm256_cvtepu8_epi32(codes), hi = _mm256_cvtepu8_epi32(_mm_srli_si128(codes, 8));
        _mm256_storeu_ps(reinterpret_cast<float*>(dst + 4 * i), _mm256_i32gather_ps(table, lo, 4));
        _mm256_storeu_ps(reinterpret_cast<float*>(dst + 4 * i + 32), _mm256_i32gather_ps(table, hi, 4));
    }
    f8_to_f32_scalar<T>(src + i, dst + 4 * i, count - i);
}

// ---- AVX-512F: 16 elements per vector -----------------------------------------------------------
// The zero-masking forms with an all-ones mask are the plain instructions; they are used because
// the plain intrinsics start from _mm512_undefined_*(), which GCC 12 reports as
// -Wmaybe-uninitialized (GCC bug 105593).

__attribute__((target("avx512f"))) inline void bf16_to_f32_avx512(const std::byte* src, std::byte* dst,
                                                                   std::size_t count) noexcept {
    const __mmask16 all = 0xffff;
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
        _mm512_storeu_si512(dst + 4 * i, _mm512_maskz_slli_epi32(all, _mm512_maskz_cvtepu16_epi32(all, codes), 16));
    }
    bf16_to_f32_scalar(src + 2 * i, dst + 4 * i, count - i);
}

__attribute__((target("avx512f"))) inline void f16_to_f32_avx512(const std::byte* src, std::byte* dst,
                                                                  std::size_t count) noexcept {
    const __mmask16 all = 0xffff;
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
        _mm512_storeu_ps(dst + 4 * i, _mm512_maskz_cvtph_ps(all, codes));
    }
    f16_to_f32_scalar(src + 2 * i, dst + 4 * i, count - i);
}

__attribute__((target("avx512f"))) inline void f32_to_f16_avx512(const std::byte* src, std::byte* dst,
                                                                  std::size_t count) noexcept {
    const __mmask16 all = 0xffff;
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m512 v = _mm512_loadu_ps(src + 4 * i);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * i), _mm512_maskz_cvtps_ph(all, v, _MM_FROUND_TO_NEAREST_INT));
    }
    f32_to_f16_scalar(src + 4 * i, dst + 2 * i, count - i);
}

__attribute__((target("avx512f"))) inline void f32_to_bf16_avx512(const std::byte* src, std::byte* dst,
                                                                   std::size_t count) noexcept {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff), quiet = _mm512_set1_epi32(0x40);
    const __mmask16 all = 0xffff;
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m512i x = _mm512_loadu_si512(src + 4 * i);
        const __m512i top = _mm512_maskz_srli_epi32(all, x, 16);
        const __m512i rounded =
            _mm512_maskz_srli_epi32(all, _mm512_add_epi32(_mm512_add_epi32(x, bias), _mm512_and_si512(top, one)), 16);
        const __m512 f = _mm512_castsi512_ps(x);
        const __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
        const __m512i result = _mm512_mask_blend_epi32(nan, rounded, _mm512_or_si512(top, quiet));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * i), _mm512_maskz_cvtepi32_epi16(all, result));
    }
    f32_to_bf16_scalar(src + 4 * i, dst + 2 * i, count - i);
}

// At -O0, g++'s _mm512_mask_i32gather_ps is a macro that passes the mask to a builtin taking a
// short. (The unmasked gather warns at -O2 instead: its source is _mm512_undefined_ps().)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
#endif
template <dtype T>
__attribute__((target("avx512f"))) void f8_to_f32_avx512(const std::byte* src, std::byte* dst,
                                                          std::size_t count) noexcept {
    const float* table = small_float_table(T);
    const __mmask16 all = 0xffff;
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m512i codes = _mm512_maskz_cvtepu8_epi32(all, _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
        _mm512_storeu_ps(dst + 4 * i, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), all, codes, table, 4));
    }
    f8_to_f32_scalar<T>(src + i, dst + 4 * i, count - i);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

} // namespace detail
} // namespace safetensors

#endif // SAFETENSORS_DETAIL_CONVERT_X86
