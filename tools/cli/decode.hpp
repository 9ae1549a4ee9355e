// safetensors command: any tensor's elements as float64, read in chunks through the checked
// path (read_bytes: a file truncated after open is an error, not a SIGBUS).
//
// Every floating-point dtype up to 32 bits decodes exactly (through the library's F32
// conversion, then widened); F64 is read as is; integers are converted to the nearest double
// (exact up to 2^53); BOOL is 0 or 1; C64 gives two doubles per element (real, imaginary).
#pragma once

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace cli {

namespace st = safetensors;

enum class value_kind { floating, integer, boolean, complex };

inline value_kind kind_of(st::dtype t) noexcept {
    switch (t) {
        case st::dtype::BOOL: return value_kind::boolean;
        case st::dtype::C64: return value_kind::complex;
        case st::dtype::U8:
        case st::dtype::I8:
        case st::dtype::U16:
        case st::dtype::I16:
        case st::dtype::U32:
        case st::dtype::I32:
        case st::dtype::U64:
        case st::dtype::I64: return value_kind::integer;
        default: return value_kind::floating;
    }
}

// Doubles per element: 2 for C64 (real, imaginary), else 1.
inline std::size_t values_per_element(st::dtype t) noexcept { return t == st::dtype::C64 ? 2 : 1; }

namespace detail {

template <class T>
void widen(const std::byte* bytes, std::size_t count, double* out) noexcept {
    for (std::size_t i = 0; i < count; ++i) {
        T v;
        std::memcpy(&v, bytes + i * sizeof(T), sizeof(T));
        out[i] = static_cast<double>(v);
    }
}

} // namespace detail

// Decodes count elements of dtype t (whole bytes: for F4 and F6 a count the packing fills)
// into out, which holds count * values_per_element(t) doubles. scratch is reused between calls.
inline void decode(st::dtype t, const std::byte* bytes, std::size_t count, double* out, std::vector<float>& scratch) {
    using st::dtype;
    switch (t) {
        case dtype::BOOL:
            for (std::size_t i = 0; i < count; ++i) out[i] = bytes[i] != std::byte{0} ? 1.0 : 0.0;
            return;
        case dtype::U8: return detail::widen<std::uint8_t>(bytes, count, out);
        case dtype::I8: return detail::widen<std::int8_t>(bytes, count, out);
        case dtype::U16: return detail::widen<std::uint16_t>(bytes, count, out);
        case dtype::I16: return detail::widen<std::int16_t>(bytes, count, out);
        case dtype::U32: return detail::widen<std::uint32_t>(bytes, count, out);
        case dtype::I32: return detail::widen<std::int32_t>(bytes, count, out);
        case dtype::U64: return detail::widen<std::uint64_t>(bytes, count, out);
        case dtype::I64: return detail::widen<std::int64_t>(bytes, count, out);
        case dtype::F64: return detail::widen<double>(bytes, count, out);
        case dtype::F32: return detail::widen<float>(bytes, count, out);
        case dtype::C64: return detail::widen<float>(bytes, 2 * count, out);
        default: break;
    }
    // The small floats: every value is a float, so F32 is exact.
    scratch.resize(count);
    const std::uint64_t in_bytes = count * st::bit_size(t) / 8;
    st::convert(t, st::span<const std::byte>(bytes, static_cast<std::size_t>(in_bytes)), dtype::F32,
                st::span<std::byte>(reinterpret_cast<std::byte*>(scratch.data()), count * sizeof(float)));
    std::copy(scratch.begin(), scratch.end(), out);
}

// Calls sink(values, element_count) for consecutive chunks of source's elements (a
// tensor_view or a tensor_slice), in row-major order; values holds element_count *
// values_per_element doubles. chunk_elements is rounded to a multiple of 8 (whole bytes for
// every packing).
template <class Source, class Sink>
void for_each_chunk(const Source& source, Sink&& sink, std::size_t chunk_elements = std::size_t(1) << 16) {
    const st::dtype t = source.dtype();
    const std::uint64_t bits = st::bit_size(t);
    const std::uint64_t total_bytes = source.byte_size();
    const std::uint64_t total = bits == 0 ? 0 : total_bytes * 8 / bits;
    chunk_elements = std::max<std::size_t>(8, chunk_elements / 8 * 8);
    std::vector<std::byte> raw;
    std::vector<double> values;
    std::vector<float> scratch;
    for (std::uint64_t done = 0; done < total;) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(total - done, chunk_elements));
        const std::uint64_t first_byte = done * bits / 8;
        const std::uint64_t end_byte = (done + n) * bits / 8;
        raw.resize(static_cast<std::size_t>(end_byte - first_byte));
        source.read_bytes(first_byte, raw.data(), raw.size());
        values.resize(n * values_per_element(t));
        decode(t, raw.data(), n, values.data(), scratch);
        sink(static_cast<const double*>(values.data()), n);
        done += n;
    }
}

} // namespace cli
