// safetensors-hpp: overflow-checked arithmetic on sizes and offsets from untrusted files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

namespace safetensors::detail {

// Each returns false (and leaves out unspecified) when the exact result does not fit.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    return !__builtin_mul_overflow(a, b, &out);
#else
    if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
    out = a * b;
    return true;
#endif
}

inline bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    return !__builtin_add_overflow(a, b, &out);
#else
    if (b > std::numeric_limits<std::uint64_t>::max() - a) return false;
    out = a + b;
    return true;
#endif
}

// uint64_t -> size_t, which narrows on 32-bit hosts.
inline bool fits_size_t(std::uint64_t v) noexcept {
    return v <= static_cast<std::uint64_t>(std::numeric_limits<std::size_t>::max());
}

} // namespace safetensors::detail
