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
    return v <= std::uint64_t{std::numeric_limits<std::size_t>::max()};
}

// The conversion to size_t of a count already checked to fit (fits_size_t). A template, so the
// cast is not "useless" (g++ -Wuseless-cast) where uint64_t is size_t, and still explicit where
// it narrows (32-bit hosts).
template <class T>
constexpr std::size_t to_size(T value) noexcept {
    return static_cast<std::size_t>(value);
}
// The same for other integer conversions whose types coincide on some hosts only.
template <class To, class From>
constexpr To narrow(From value) noexcept {
    return static_cast<To>(value);
}

} // namespace safetensors::detail
