// safetensors-hpp: the few x86 SIMD intrinsics the library uses, for GCC and Clang, on the
// compilers' own builtins and vector extensions instead of <immintrin.h>.
//
// Why: <immintrin.h> declares every intrinsic of every x86 extension (AVX-512 alone is
// 16,000 lines with GCC); parsing it cost more than half as much as nlohmann/json.hpp, in
// every file that includes the umbrella header. Each function here is what the compiler's
// own header expands that intrinsic to (same builtin, same operands), so the generated code
// is the same. Names drop the leading underscore (mm256_add_epi32 is _mm256_add_epi32);
// operands that must be compile-time constants are template arguments. Each function has
// the target of the intrinsic it replaces, so it inlines into a kernel with that target.
//
// Only for GCC and Clang on x86 (the users: convert_x86.hpp, utf8.hpp); MSVC keeps
// <immintrin.h>.
#pragma once

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define SAFETENSORS_DETAIL_X86_VEC 1

// The casts between vector types are the headers' own; here they are not in a system header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuseless-cast"
#endif

namespace safetensors::detail::x86 {

#define SAFETENSORS_DETAIL_VEC(T, name, bytes) typedef T name __attribute__((vector_size(bytes)))
SAFETENSORS_DETAIL_VEC(char, v16qi, 16);
SAFETENSORS_DETAIL_VEC(unsigned char, v16qu, 16);
SAFETENSORS_DETAIL_VEC(signed char, v16qs, 16);
SAFETENSORS_DETAIL_VEC(short, v8hi, 16);
SAFETENSORS_DETAIL_VEC(unsigned short, v8hu, 16);
SAFETENSORS_DETAIL_VEC(long long, v2di, 16);
SAFETENSORS_DETAIL_VEC(unsigned long long, v2du, 16);
SAFETENSORS_DETAIL_VEC(char, v32qi, 32);
SAFETENSORS_DETAIL_VEC(short, v16hi, 32);
SAFETENSORS_DETAIL_VEC(unsigned short, v16hu, 32);
SAFETENSORS_DETAIL_VEC(int, v8si, 32);
SAFETENSORS_DETAIL_VEC(unsigned, v8su, 32);
SAFETENSORS_DETAIL_VEC(long long, v4di, 32);
SAFETENSORS_DETAIL_VEC(unsigned long long, v4du, 32);
SAFETENSORS_DETAIL_VEC(float, v8sf, 32);
SAFETENSORS_DETAIL_VEC(int, v16si, 64);
SAFETENSORS_DETAIL_VEC(unsigned, v16su, 64);
SAFETENSORS_DETAIL_VEC(unsigned long long, v8du, 64);
SAFETENSORS_DETAIL_VEC(float, v16sf, 64);
#undef SAFETENSORS_DETAIL_VEC

// The register types, and their unaligned forms for loads and stores (as the headers define them).
typedef long long m128i __attribute__((vector_size(16), may_alias));
typedef long long m128i_u __attribute__((vector_size(16), may_alias, aligned(1)));
typedef long long m256i __attribute__((vector_size(32), may_alias));
typedef long long m256i_u __attribute__((vector_size(32), may_alias, aligned(1)));
typedef float m256 __attribute__((vector_size(32), may_alias));
typedef float m256_u __attribute__((vector_size(32), may_alias, aligned(1)));
typedef long long m512i __attribute__((vector_size(64), may_alias));
typedef long long m512i_u __attribute__((vector_size(64), may_alias, aligned(1)));
typedef float m512 __attribute__((vector_size(64), may_alias));
typedef float m512_u __attribute__((vector_size(64), may_alias, aligned(1)));
typedef unsigned short mmask16;

constexpr int fround_to_nearest_int = 0x00;  // _MM_FROUND_TO_NEAREST_INT
constexpr int fround_cur_direction = 0x04;   // _MM_FROUND_CUR_DIRECTION
constexpr int cmp_eq_oq = 0x00;              // _CMP_EQ_OQ
constexpr int cmp_unord_q = 0x03;            // _CMP_UNORD_Q

#define SAFETENSORS_DETAIL_X86_FN(isa) __attribute__((always_inline, target(isa))) inline

// ---- SSE2 ---------------------------------------------------------------------------------------
SAFETENSORS_DETAIL_X86_FN("sse2") m128i mm_loadu_si128(const m128i_u* p) noexcept { return *p; }
SAFETENSORS_DETAIL_X86_FN("sse2") void mm_storeu_si128(m128i_u* p, m128i a) noexcept { *p = a; }
SAFETENSORS_DETAIL_X86_FN("sse2") m128i mm_setzero_si128() noexcept { return m128i{0, 0}; }
SAFETENSORS_DETAIL_X86_FN("sse2") m128i mm_or_si128(m128i a, m128i b) noexcept {
    return (m128i)((v2du)a | (v2du)b);
}
SAFETENSORS_DETAIL_X86_FN("sse2") m128i mm_cmpeq_epi8(m128i a, m128i b) noexcept {
    return (m128i)((v16qi)a == (v16qi)b);
}
SAFETENSORS_DETAIL_X86_FN("sse2") m128i mm_min_epu8(m128i a, m128i b) noexcept {
#if defined(__clang__)
    const v16qu x = (v16qu)a, y = (v16qu)b;
    return (m128i)(x < y ? x : y);  // Clang's header: __builtin_elementwise_min (Clang 14 and later)
#else
    return (m128i)__builtin_ia32_pminub128((v16qi)a, (v16qi)b);
#endif
}
SAFETENSORS_DETAIL_X86_FN("sse2") int mm_movemask_epi8(m128i a) noexcept {
    return __builtin_ia32_pmovmskb128((v16qi)a);
}
template <int N>
SAFETENSORS_DETAIL_X86_FN("sse2") m128i mm_srli_si128(m128i a) noexcept {
#if defined(__clang__)
    return (m128i)__builtin_ia32_psrldqi128_byteshift((v2di)a, N);
#else
    return (m128i)__builtin_ia32_psrldqi128(a, N * 8);
#endif
}

// ---- AVX ----------------------------------------------------------------------------------------
SAFETENSORS_DETAIL_X86_FN("avx") m256i mm256_loadu_si256(const m256i_u* p) noexcept { return *p; }
SAFETENSORS_DETAIL_X86_FN("avx") void mm256_storeu_si256(m256i_u* p, m256i a) noexcept { *p = a; }
SAFETENSORS_DETAIL_X86_FN("avx") m256 mm256_loadu_ps(const float* p) noexcept {
    return *reinterpret_cast<const m256_u*>(p);
}
SAFETENSORS_DETAIL_X86_FN("avx") void mm256_storeu_ps(float* p, m256 a) noexcept { *reinterpret_cast<m256_u*>(p) = a; }
SAFETENSORS_DETAIL_X86_FN("avx") m256 mm256_setzero_ps() noexcept { return m256{0, 0, 0, 0, 0, 0, 0, 0}; }
SAFETENSORS_DETAIL_X86_FN("avx") m256i mm256_set1_epi32(int a) noexcept {
    return (m256i)v8si{a, a, a, a, a, a, a, a};
}
SAFETENSORS_DETAIL_X86_FN("avx") m256 mm256_castsi256_ps(m256i a) noexcept { return (m256)a; }
SAFETENSORS_DETAIL_X86_FN("avx") m256i mm256_castps_si256(m256 a) noexcept { return (m256i)a; }
template <int P>
SAFETENSORS_DETAIL_X86_FN("avx") m256 mm256_cmp_ps(m256 a, m256 b) noexcept {
    return (m256)__builtin_ia32_cmpps256((v8sf)a, (v8sf)b, P);
}

// ---- AVX2 ---------------------------------------------------------------------------------------
SAFETENSORS_DETAIL_X86_FN("avx2") m256i mm256_add_epi32(m256i a, m256i b) noexcept {
    return (m256i)((v8su)a + (v8su)b);
}
SAFETENSORS_DETAIL_X86_FN("avx2") m256i mm256_and_si256(m256i a, m256i b) noexcept {
    return (m256i)((v4du)a & (v4du)b);
}
SAFETENSORS_DETAIL_X86_FN("avx2") m256i mm256_or_si256(m256i a, m256i b) noexcept {
    return (m256i)((v4du)a | (v4du)b);
}
template <int N>
SAFETENSORS_DETAIL_X86_FN("avx2") m256i mm256_slli_epi32(m256i a) noexcept {
    return (m256i)__builtin_ia32_pslldi256((v8si)a, N);
}
template <int N>
SAFETENSORS_DETAIL_X86_FN("avx2") m256i mm256_srli_epi32(m256i a) noexcept {
    return (m256i)__builtin_ia32_psrldi256((v8si)a, N);
}
SAFETENSORS_DETAIL_X86_FN("avx2") m256i mm256_cvtepu16_epi32(m128i a) noexcept {
#if defined(__clang__)
    return (m256i)__builtin_convertvector((v8hu)a, v8si);
#else
    return (m256i)__builtin_ia32_pmovzxwd256((v8hi)a);
#endif
}
SAFETENSORS_DETAIL_X86_FN("avx2") m256i mm256_cvtepu8_epi32(m128i a) noexcept {
#if defined(__clang__)
    return (m256i)__builtin_convertvector(__builtin_shufflevector((v16qu)a, (v16qu)a, 0, 1, 2, 3, 4, 5, 6, 7), v8si);
#else
    return (m256i)__builtin_ia32_pmovzxbd256((v16qi)a);
#endif
}
SAFETENSORS_DETAIL_X86_FN("avx2") m256i mm256_blendv_epi8(m256i a, m256i b, m256i mask) noexcept {
    return (m256i)__builtin_ia32_pblendvb256((v32qi)a, (v32qi)b, (v32qi)mask);
}
SAFETENSORS_DETAIL_X86_FN("avx2") m256i mm256_packus_epi32(m256i a, m256i b) noexcept {
    return (m256i)__builtin_ia32_packusdw256((v8si)a, (v8si)b);
}
template <int M>
SAFETENSORS_DETAIL_X86_FN("avx2") m256i mm256_permute4x64_epi64(m256i a) noexcept {
    return (m256i)__builtin_ia32_permdi256((v4di)a, M);
}
template <int Scale>
SAFETENSORS_DETAIL_X86_FN("avx2") m256 mm256_i32gather_ps(const float* base, m256i index) noexcept {
    const v8sf zero = (v8sf)mm256_setzero_ps();
    const v8sf all = (v8sf)mm256_cmp_ps<cmp_eq_oq>(zero, zero);
#if defined(__clang__)
    return (m256)__builtin_ia32_gatherd_ps256(zero, base, (v8si)index, all, Scale);
#else
    return (m256)__builtin_ia32_gathersiv8sf(zero, base, (v8si)index, all, Scale);
#endif
}

// ---- F16C ---------------------------------------------------------------------------------------
SAFETENSORS_DETAIL_X86_FN("f16c") m256 mm256_cvtph_ps(m128i a) noexcept {
    return (m256)__builtin_ia32_vcvtph2ps256((v8hi)a);
}
template <int Rounding>
SAFETENSORS_DETAIL_X86_FN("f16c") m128i mm256_cvtps_ph(m256 a) noexcept {
    return (m128i)__builtin_ia32_vcvtps2ph256((v8sf)a, Rounding);
}

// ---- AVX-512F -----------------------------------------------------------------------------------
// Only the zero-masking forms the kernels use (see convert_x86.hpp for why).
SAFETENSORS_DETAIL_X86_FN("avx512f") m512i mm512_loadu_si512(const void* p) noexcept {
    return *static_cast<const m512i_u*>(p);
}
SAFETENSORS_DETAIL_X86_FN("avx512f") void mm512_storeu_si512(void* p, m512i a) noexcept {
    *static_cast<m512i_u*>(p) = a;
}
SAFETENSORS_DETAIL_X86_FN("avx512f") m512 mm512_loadu_ps(const void* p) noexcept {
    return *static_cast<const m512_u*>(p);
}
SAFETENSORS_DETAIL_X86_FN("avx512f") void mm512_storeu_ps(void* p, m512 a) noexcept { *static_cast<m512_u*>(p) = a; }
SAFETENSORS_DETAIL_X86_FN("avx512f") m512 mm512_setzero_ps() noexcept {
    return m512{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
}
SAFETENSORS_DETAIL_X86_FN("avx512f") m512i mm512_setzero_si512() noexcept { return m512i{0, 0, 0, 0, 0, 0, 0, 0}; }
SAFETENSORS_DETAIL_X86_FN("avx512f") m512i mm512_set1_epi32(int a) noexcept {
    return (m512i)v16si{a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a};
}
SAFETENSORS_DETAIL_X86_FN("avx512f") m512 mm512_castsi512_ps(m512i a) noexcept { return (m512)a; }
SAFETENSORS_DETAIL_X86_FN("avx512f") m512i mm512_add_epi32(m512i a, m512i b) noexcept {
    return (m512i)((v16su)a + (v16su)b);
}
SAFETENSORS_DETAIL_X86_FN("avx512f") m512i mm512_and_si512(m512i a, m512i b) noexcept {
#if defined(__clang__)
    return (m512i)((v8du)a & (v8du)b);
#else
    return (m512i)((v16su)a & (v16su)b);  // GCC's header: 32-bit lanes (vpandd, vpord)
#endif
}
SAFETENSORS_DETAIL_X86_FN("avx512f") m512i mm512_or_si512(m512i a, m512i b) noexcept {
#if defined(__clang__)
    return (m512i)((v8du)a | (v8du)b);
#else
    return (m512i)((v16su)a | (v16su)b);  // GCC's header: 32-bit lanes (vpandd, vpord)
#endif
}
template <int N>
SAFETENSORS_DETAIL_X86_FN("avx512f") m512i mm512_maskz_slli_epi32(mmask16 k, m512i a) noexcept {
#if defined(__clang__)
    return (m512i)__builtin_ia32_selectd_512(k, (v16si)__builtin_ia32_pslldi512((v16si)a, N),
                                             (v16si)mm512_setzero_si512());
#else
    return (m512i)__builtin_ia32_pslldi512_mask((v16si)a, N, (v16si)mm512_setzero_si512(), k);
#endif
}
template <int N>
SAFETENSORS_DETAIL_X86_FN("avx512f") m512i mm512_maskz_srli_epi32(mmask16 k, m512i a) noexcept {
#if defined(__clang__)
    return (m512i)__builtin_ia32_selectd_512(k, (v16si)__builtin_ia32_psrldi512((v16si)a, N),
                                             (v16si)mm512_setzero_si512());
#else
    return (m512i)__builtin_ia32_psrldi512_mask((v16si)a, N, (v16si)mm512_setzero_si512(), k);
#endif
}
SAFETENSORS_DETAIL_X86_FN("avx512f") m512i mm512_maskz_cvtepu16_epi32(mmask16 k, m256i a) noexcept {
#if defined(__clang__)
    return (m512i)__builtin_ia32_selectd_512(k, (v16si)__builtin_convertvector((v16hu)a, v16si),
                                             (v16si)mm512_setzero_si512());
#else
    return (m512i)__builtin_ia32_pmovzxwd512_mask((v16hi)a, (v16si)mm512_setzero_si512(), k);
#endif
}
SAFETENSORS_DETAIL_X86_FN("avx512f") m512i mm512_maskz_cvtepu8_epi32(mmask16 k, m128i a) noexcept {
#if defined(__clang__)
    return (m512i)__builtin_ia32_selectd_512(k, (v16si)__builtin_convertvector((v16qu)a, v16si),
                                             (v16si)mm512_setzero_si512());
#else
    return (m512i)__builtin_ia32_pmovzxbd512_mask((v16qi)a, (v16si)mm512_setzero_si512(), k);
#endif
}
SAFETENSORS_DETAIL_X86_FN("avx512f") m512 mm512_maskz_cvtph_ps(mmask16 k, m256i a) noexcept {
    return (m512)__builtin_ia32_vcvtph2ps512_mask((v16hi)a, (v16sf)mm512_setzero_ps(), k, fround_cur_direction);
}
template <int Rounding>
SAFETENSORS_DETAIL_X86_FN("avx512f") m256i mm512_maskz_cvtps_ph(mmask16 k, m512 a) noexcept {
    return (m256i)__builtin_ia32_vcvtps2ph512_mask((v16sf)a, Rounding, v16hi{}, k);
}
SAFETENSORS_DETAIL_X86_FN("avx512f") m256i mm512_maskz_cvtepi32_epi16(mmask16 k, m512i a) noexcept {
    return (m256i)__builtin_ia32_pmovdw512_mask((v16si)a, v16hi{}, k);
}
template <int P>
SAFETENSORS_DETAIL_X86_FN("avx512f") mmask16 mm512_cmp_ps_mask(m512 a, m512 b) noexcept {
    return (mmask16)__builtin_ia32_cmpps512_mask((v16sf)a, (v16sf)b, P, (mmask16)-1, fround_cur_direction);
}
SAFETENSORS_DETAIL_X86_FN("avx512f") m512i mm512_mask_blend_epi32(mmask16 k, m512i a, m512i b) noexcept {
#if defined(__clang__)
    return (m512i)__builtin_ia32_selectd_512(k, (v16si)b, (v16si)a);
#else
    return (m512i)__builtin_ia32_blendmd_512_mask((v16si)a, (v16si)b, k);
#endif
}
template <int Scale>
SAFETENSORS_DETAIL_X86_FN("avx512f") m512 mm512_mask_i32gather_ps(m512 src, mmask16 k, m512i index,
                                                                  const float* base) noexcept {
    return (m512)__builtin_ia32_gathersiv16sf((v16sf)src, base, (v16si)index, k, Scale);
}

#undef SAFETENSORS_DETAIL_X86_FN

} // namespace safetensors::detail::x86

#pragma GCC diagnostic pop

#endif
