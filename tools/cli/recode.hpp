// safetensors command: a floating-point tensor's bytes in another floating-point dtype (F16,
// BF16 or F32), rounded to nearest even as NumPy's astype rounds, read in chunks through the
// checked path. rewrite --to-dtype uses it.
#pragma once

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "decode.hpp"

namespace cli {

// Whether --to-dtype converts a tensor of dtype t: floating point only (integers, BOOL and C64
// are copied as they are).
inline bool recodable(st::dtype t) noexcept { return kind_of(t) == value_kind::floating; }

namespace recode_detail {

inline std::uint32_t bits_of(float f) noexcept {
    std::uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}

// F64 -> F32 rounded to odd: a following F32 -> F16/BF16 round to nearest even then rounds
// the double correctly (F32 keeps more than two bits beyond either), as NumPy's direct
// double -> half conversion does. NaN is handled by the caller.
inline float round_to_odd(double d) noexcept {
    float f = static_cast<float>(d);
    if (static_cast<double>(f) == d) return f;
    if (std::fabs(static_cast<double>(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);  // toward zero
    std::uint32_t b = bits_of(f) | 1u;
    std::memcpy(&f, &b, 4);
    return f;
}

// NumPy's NaN -> F16: sign, the top ten payload bits, and never the infinity pattern (no
// forced quiet bit, unlike F16C). mantissa_shift: 13 from F32, 42 from F64.
inline std::uint16_t numpy_f16_nan(bool negative, std::uint64_t mantissa, int mantissa_shift) noexcept {
    auto h = static_cast<std::uint16_t>(0x7c00u + (mantissa >> mantissa_shift));
    if (h == 0x7c00u) ++h;
    return static_cast<std::uint16_t>(h | (negative ? 0x8000u : 0u));
}

} // namespace recode_detail

// Converts count elements of dtype from (raw little-endian bytes) to dtype to (F16, BF16 or
// F32) into out (count * bit_size(to) / 8 bytes). floats is scratch reused between calls.
inline void recode(st::dtype from, const std::byte* in, std::size_t count, st::dtype to, std::byte* out,
                   std::vector<float>& floats) {
    using st::dtype;
    const std::size_t in_bytes = static_cast<std::size_t>(count * st::bit_size(from) / 8);
    if (from == to) {
        std::memcpy(out, in, in_bytes);
        return;
    }
    floats.resize(count);
    if (from == dtype::F64) {
        for (std::size_t i = 0; i < count; ++i) {
            double d;
            std::memcpy(&d, in + 8 * i, 8);
            floats[i] = to == dtype::F32 ? static_cast<float>(d) : recode_detail::round_to_odd(d);
        }
    } else {
        st::convert(from, st::span<const std::byte>(in, in_bytes), dtype::F32,
                    st::span<std::byte>(reinterpret_cast<std::byte*>(floats.data()), count * 4));
    }
    if (to == dtype::F32) {
        std::memcpy(out, floats.data(), count * 4);
        return;
    }
    st::convert(dtype::F32, st::span<const std::byte>(reinterpret_cast<const std::byte*>(floats.data()), count * 4), to,
                st::span<std::byte>(out, count * 2));
    if (to != dtype::F16) return;
    // NaN payloads as NumPy writes them (the library quiets NaN, as F16C and torch do).
    for (std::size_t i = 0; i < count; ++i) {
        if (!std::isnan(floats[i])) continue;
        std::uint16_t h;
        if (from == dtype::F64) {
            std::uint64_t b;
            std::memcpy(&b, in + 8 * i, 8);
            h = recode_detail::numpy_f16_nan(b >> 63, b & 0xfffffffffffffull, 42);
        } else if (from == dtype::F32) {
            std::uint32_t b;
            std::memcpy(&b, in + 4 * i, 4);
            h = recode_detail::numpy_f16_nan(b >> 31, b & 0x7fffffu, 13);
        } else {
            const std::uint32_t b = recode_detail::bits_of(floats[i]);  // exact: F32 holds every small float
            h = recode_detail::numpy_f16_nan(b >> 31, b & 0x7fffffu, 13);
        }
        std::memcpy(out + 2 * i, &h, 2);
    }
}

// Writes source's bytes converted to dtype to through write(const std::byte*, size_t), in
// chunks; progress(bytes_read) after each.
template <class Write, class Progress>
void recode_tensor(const st::tensor_view& source, st::dtype to, Write&& write, Progress&& progress) {
    const st::dtype from = source.dtype();
    const std::uint64_t bits = st::bit_size(from);
    const std::uint64_t total = source.element_count();
    constexpr std::size_t chunk = std::size_t(1) << 20;  // elements; a multiple of 8 (whole bytes)
    std::vector<std::byte> in, out;
    std::vector<float> floats;
    for (std::uint64_t done = 0; done < total;) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(total - done, chunk));
        const std::uint64_t first = done * bits / 8, end = (done + n) * bits / 8;
        in.resize(static_cast<std::size_t>(end - first));
        source.read_bytes(first, in.data(), in.size());
        out.resize(static_cast<std::size_t>(n * st::bit_size(to) / 8));
        recode(from, in.data(), n, to, out.data(), floats);
        write(out.data(), out.size());
        progress(in.size());
        done += n;
    }
}

} // namespace cli
