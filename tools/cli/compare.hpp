// safetensors command: how diff compares the elements of two tensors of the same shape, in
// chunks through the checked path (memory stays at a few MiB whatever the tensor's size).
//
// Two values are equal when a == b (so -0 == +0 and inf == inf of the same sign), when both
// are NaN, or, with a tolerance, when both are finite and |a - b| <= atol + rtol * |b|
// (NumPy's isclose, b being the second input). Chunks whose raw bytes are identical (same
// dtype) are equal without decoding. Values are decoded to float64 (decode.hpp); same-dtype
// I64 and U64 are compared as integers, since float64 cannot tell 2^53 from 2^53 + 1. C64
// compares its real and imaginary parts as two values (against a real tensor: x as x + 0i).
#pragma once

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "decode.hpp"

namespace cli {

struct tolerance {
    double atol = 0;
    double rtol = 0;
};

// The comparison of two tensors' elements. max_abs is max |a - b|, max_rel max |a - b| / |b|,
// over all elements: NaN against a number, inf against anything else, and x != 0 against 0
// (for max_rel) count as infinite.
struct value_stats {
    std::uint64_t elements = 0;
    std::uint64_t mismatched = 0;  // elements not equal (a C64 element: either part)
    double max_abs = 0;
    double max_rel = 0;
};

namespace compare_detail {

constexpr double infinity = std::numeric_limits<double>::infinity();

inline void note(value_stats& s, double abs, double b_magnitude) noexcept {
    const double rel = std::isinf(abs) ? infinity : b_magnitude == 0 ? (abs == 0 ? 0 : infinity) : abs / b_magnitude;
    s.max_abs = std::max(s.max_abs, abs);
    s.max_rel = std::max(s.max_rel, rel);
}

// One pair of values: whether they are equal (see the top); the differences go into s.
inline bool same_value(double a, double b, const tolerance& tol, value_stats& s) noexcept {
    if (a == b) return true;
    const bool a_nan = std::isnan(a), b_nan = std::isnan(b);
    if (a_nan && b_nan) return true;
    const double abs = a_nan || b_nan ? infinity : std::fabs(a - b);
    note(s, abs, std::fabs(b));
    // Past this point b is finite when abs is: inf only equals the same inf.
    return std::isfinite(abs) && abs <= tol.atol + tol.rtol * std::fabs(b);
}

// Same-dtype 64-bit integers, exactly: |a - b| is computed in 64 bits, then rounded.
template <class T>
void compare_integers(const std::byte* a, const std::byte* b, std::size_t count, const tolerance& tol,
                      value_stats& s) noexcept {
    for (std::size_t i = 0; i < count; ++i) {
        T x, y;
        std::memcpy(&x, a + i * sizeof(T), sizeof(T));
        std::memcpy(&y, b + i * sizeof(T), sizeof(T));
        if (x == y) continue;
        // Modulo 2^64 the difference is exact, and it is below 2^64 for any two values of T.
        const std::uint64_t ux = static_cast<std::uint64_t>(x), uy = static_cast<std::uint64_t>(y);
        const double abs = static_cast<double>(x > y ? ux - uy : uy - ux);
        const double b_magnitude = std::fabs(static_cast<double>(y));
        note(s, abs, b_magnitude);
        if (!(abs <= tol.atol + tol.rtol * b_magnitude)) ++s.mismatched;
    }
}

// Decoded values, per_a and per_b doubles per element (1, or 2 for C64).
inline void compare_values(const double* a, std::size_t per_a, const double* b, std::size_t per_b, std::size_t count,
                           const tolerance& tol, value_stats& s) noexcept {
    const std::size_t parts = std::max(per_a, per_b);
    for (std::size_t i = 0; i < count; ++i) {
        bool equal = true;
        for (std::size_t p = 0; p < parts; ++p) {
            const double x = p < per_a ? a[i * per_a + p] : 0.0;
            const double y = p < per_b ? b[i * per_b + p] : 0.0;
            equal = same_value(x, y, tol, s) && equal;
        }
        if (!equal) ++s.mismatched;
    }
}

// Consecutive elements of one tensor: raw bytes through read_bytes, decoded on request.
class element_reader {
public:
    explicit element_reader(const st::tensor_view& view) : view_(view), bits_(st::bit_size(view.dtype())) {}

    // The raw bytes of elements [first, first + count); first is a multiple of 8, so packed
    // dtypes (F4, F6) start on a byte.
    const std::byte* read(std::uint64_t first, std::size_t count) {
        const std::uint64_t begin = first * bits_ / 8, end = (first + count) * bits_ / 8;
        raw_.resize(static_cast<std::size_t>(end - begin));
        view_.read_bytes(begin, raw_.data(), raw_.size());
        count_ = count;
        return raw_.data();
    }
    std::size_t raw_size() const noexcept { return raw_.size(); }

    // The elements read last, values_per_element doubles each.
    const double* decoded() {
        values_.resize(count_ * values_per_element(view_.dtype()));
        decode(view_.dtype(), raw_.data(), count_, values_.data(), scratch_);
        return values_.data();
    }

private:
    const st::tensor_view& view_;
    std::uint64_t bits_;
    std::size_t count_ = 0;
    std::vector<std::byte> raw_;
    std::vector<double> values_;
    std::vector<float> scratch_;
};

} // namespace compare_detail

// Compares a and b (the same shape; any dtypes) chunk by chunk. bytes_read grows as chunks are
// read (for a progress line). The comparison ends early, its stats then partial, once stop is
// set, or with first_only at the first chunk that differs (enough to know "different").
inline value_stats compare_tensors(const st::tensor_view& a, const st::tensor_view& b, const tolerance& tol,
                                   std::atomic<std::uint64_t>& bytes_read, const std::atomic<bool>& stop,
                                   bool first_only = false, std::size_t chunk_elements = std::size_t(1) << 16) {
    using compare_detail::element_reader;
    value_stats s;
    s.elements = a.element_count();
    const bool same_dtype = a.dtype() == b.dtype();
    element_reader ra(a), rb(b);
    chunk_elements = std::max<std::size_t>(8, chunk_elements / 8 * 8);
    for (std::uint64_t done = 0; done < s.elements && !stop.load(std::memory_order_relaxed);) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(s.elements - done, chunk_elements));
        const std::byte* pa = ra.read(done, n);
        const std::byte* pb = rb.read(done, n);
        bytes_read.fetch_add(ra.raw_size() + rb.raw_size(), std::memory_order_relaxed);
        done += n;
        if (same_dtype && std::memcmp(pa, pb, ra.raw_size()) == 0) continue;  // n > 0: never empty
        if (same_dtype && a.dtype() == st::dtype::I64)
            compare_detail::compare_integers<std::int64_t>(pa, pb, n, tol, s);
        else if (same_dtype && a.dtype() == st::dtype::U64)
            compare_detail::compare_integers<std::uint64_t>(pa, pb, n, tol, s);
        else
            compare_detail::compare_values(ra.decoded(), values_per_element(a.dtype()), rb.decoded(),
                                           values_per_element(b.dtype()), n, tol, s);
        if (first_only && s.mismatched != 0) break;
    }
    return s;
}

} // namespace cli
