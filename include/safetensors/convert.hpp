// safetensors-hpp: dtype conversion into a caller's buffer, bit-exact and vectorized.
//
//   std::vector<float> w = safetensors::to_f32(f.tensor("lm_head.weight"));   // BF16, F16, F8, ... -> F32
//   safetensors::to_f32(view.slice(":8"), span<float>(buffer, n));            // a slice, no temporary
//   safetensors::tensor h = safetensors::convert_tensor(view, dtype::F16);    // F32 -> F16, owned
//   safetensors::bf16_to_f32(codes, floats);                                  // span to span
//
// What converts (can_convert):
//   to F32:        BF16, F16, all five F8 formats, F6_E2M3, F6_E3M2, F4 (exact: every value of
//                  these is a float), F32 (a copy), F64 and the integers (rounded to nearest
//                  even where a float cannot hold the value exactly). Not BOOL, not C64.
//   to BF16, F16:  F32, rounded to nearest even; NaN stays NaN (quiet, sign and top payload
//                  bits kept), overflow gives infinity; or the same dtype (a copy).
// Sub-byte sources unpack as dtype.hpp documents (F4 low nibble first; F6 4 codes in 3 bytes).
// Results are in host byte order (float, uint16_t), which is the file's order on every
// little-endian host. Source and destination must not overlap; neither needs any alignment.
//
// The kernels are chosen at run time: AVX-512F, or AVX2 + F16C, where the CPU has them (GCC
// and Clang on x86, not Windows; see detail/convert_x86.hpp), scalar code otherwise. Every path
// gives the same bits. convert_options::path forces one, for tests and benchmarks.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "detail/convert_scalar.hpp"
#include "detail/convert_x86.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "slice.hpp"
#include "span.hpp"
#include "tensor.hpp"
#include "view.hpp"

namespace safetensors {

// Which kernels convert. automatic takes the fastest this CPU supports.
enum class convert_path : std::uint8_t { automatic, scalar, avx2, avx512 };

inline constexpr std::array<convert_path, 3> all_convert_paths = {convert_path::scalar, convert_path::avx2,
                                                                  convert_path::avx512};

constexpr std::string_view to_string(convert_path p) noexcept {
    switch (p) {
        case convert_path::automatic: return "automatic";
        case convert_path::scalar: return "scalar";
        case convert_path::avx2: return "avx2";  // AVX2 + F16C
        case convert_path::avx512: return "avx512";  // AVX-512F
    }
    return "?";
}

// Whether this build and this CPU can run path (automatic and scalar always can).
inline bool convert_path_supported(convert_path p) noexcept {
    switch (p) {
        case convert_path::automatic:
        case convert_path::scalar: return true;
#if SAFETENSORS_DETAIL_CONVERT_X86
        case convert_path::avx2: return detail::cpu_has_avx2_f16c();
        case convert_path::avx512: return detail::cpu_has_avx512f();
#else
        case convert_path::avx2:
        case convert_path::avx512: return false;
#endif
    }
    return false;
}

// What automatic resolves to here.
inline convert_path best_convert_path() noexcept {
    if (convert_path_supported(convert_path::avx512)) return convert_path::avx512;
    if (convert_path_supported(convert_path::avx2)) return convert_path::avx2;
    return convert_path::scalar;
}

struct convert_options {
    convert_path path = convert_path::automatic;
};

constexpr bool can_convert(dtype from, dtype to) noexcept {
    switch (to) {
        case dtype::F32: return from != dtype::BOOL && from != dtype::C64;
        case dtype::BF16:
        case dtype::F16: return from == dtype::F32 || from == to;
        default: return false;
    }
}

namespace detail {

inline void copy_u16_scalar(const std::byte* src, std::byte* dst, std::size_t count) noexcept {
    for (std::size_t i = 0; i < count; ++i) store_u16(dst + 2 * i, load_le<std::uint16_t>(src + 2 * i));
}

// The scalar kernel of a supported pair (can_convert), or nullptr.
inline convert_kernel scalar_kernel(dtype from, dtype to) noexcept {
    if (to == dtype::BF16) return from == dtype::F32 ? f32_to_bf16_scalar : from == to ? copy_u16_scalar : nullptr;
    if (to == dtype::F16) return from == dtype::F32 ? f32_to_f16_scalar : from == to ? copy_u16_scalar : nullptr;
    if (to != dtype::F32) return nullptr;
    switch (from) {
        case dtype::BF16: return bf16_to_f32_scalar;
        case dtype::F16: return f16_to_f32_scalar;
        case dtype::F32: return f32_copy_scalar;
        case dtype::F8_E5M2: return f8_to_f32_scalar<dtype::F8_E5M2>;
        case dtype::F8_E4M3: return f8_to_f32_scalar<dtype::F8_E4M3>;
        case dtype::F8_E8M0: return f8_to_f32_scalar<dtype::F8_E8M0>;
        case dtype::F8_E4M3FNUZ: return f8_to_f32_scalar<dtype::F8_E4M3FNUZ>;
        case dtype::F8_E5M2FNUZ: return f8_to_f32_scalar<dtype::F8_E5M2FNUZ>;
        case dtype::F6_E2M3: return f6_to_f32_scalar<dtype::F6_E2M3>;
        case dtype::F6_E3M2: return f6_to_f32_scalar<dtype::F6_E3M2>;
        case dtype::F4: return f4_to_f32_scalar;
        case dtype::F64: return cast_to_f32_scalar<double>;
        case dtype::I8: return cast_to_f32_scalar<std::int8_t>;
        case dtype::U8: return cast_to_f32_scalar<std::uint8_t>;
        case dtype::I16: return cast_to_f32_scalar<std::int16_t>;
        case dtype::U16: return cast_to_f32_scalar<std::uint16_t>;
        case dtype::I32: return cast_to_f32_scalar<std::int32_t>;
        case dtype::U32: return cast_to_f32_scalar<std::uint32_t>;
        case dtype::I64: return cast_to_f32_scalar<std::int64_t>;
        case dtype::U64: return cast_to_f32_scalar<std::uint64_t>;
        case dtype::BOOL:
        case dtype::C64: return nullptr;
    }
    return nullptr;
}

#if SAFETENSORS_DETAIL_CONVERT_X86
// The vectorized kernel of a pair on an x86 path, or nullptr where that pair has none.
inline convert_kernel x86_kernel(dtype from, dtype to, convert_path path) noexcept {
    const bool wide = path == convert_path::avx512;
    if (from == dtype::F32 && to == dtype::BF16) return wide ? f32_to_bf16_avx512 : f32_to_bf16_avx2;
    if (from == dtype::F32 && to == dtype::F16) return wide ? f32_to_f16_avx512 : f32_to_f16_avx2;
    if (to != dtype::F32) return nullptr;
    switch (from) {
        case dtype::BF16: return wide ? half_to_f32_avx512<dtype::BF16> : bf16_to_f32_avx2;
        case dtype::F16: return wide ? half_to_f32_avx512<dtype::F16> : f16_to_f32_avx2;
        case dtype::F8_E5M2: return wide ? f8_to_f32_avx512<dtype::F8_E5M2> : f8_to_f32_avx2<dtype::F8_E5M2>;
        case dtype::F8_E4M3: return wide ? f8_to_f32_avx512<dtype::F8_E4M3> : f8_to_f32_avx2<dtype::F8_E4M3>;
        case dtype::F8_E8M0: return wide ? f8_to_f32_avx512<dtype::F8_E8M0> : f8_to_f32_avx2<dtype::F8_E8M0>;
        case dtype::F8_E4M3FNUZ:
            return wide ? f8_to_f32_avx512<dtype::F8_E4M3FNUZ> : f8_to_f32_avx2<dtype::F8_E4M3FNUZ>;
        case dtype::F8_E5M2FNUZ:
            return wide ? f8_to_f32_avx512<dtype::F8_E5M2FNUZ> : f8_to_f32_avx2<dtype::F8_E5M2FNUZ>;
        default: return nullptr;
    }
}
#endif

// The path to run: automatic resolved, a forced path checked against this CPU.
inline convert_path resolve_path(convert_path path) {
    if (path == convert_path::automatic) return best_convert_path();
    if (!convert_path_supported(path))
        throw_error(errc::invalid_argument, "convert_options: path " + std::string(to_string(path)) +
                                                " is not supported by this CPU or build (best: " +
                                                std::string(to_string(best_convert_path())) + ")");
    return path;
}

// "tensor "w": " or "" for span conversions, followed by the subject of the sentence.
inline std::string convert_prefix(std::string_view name, bool named) {
    return named ? "tensor " + quote(name) + ": " : std::string("convert: ");
}

// The kernel for from -> to on the chosen path. Throws unsupported_dtype for other pairs.
inline convert_kernel kernel_for(dtype from, dtype to, const convert_options& options, const std::string& prefix) {
    if (!can_convert(from, to))
        throw_error(errc::unsupported_dtype, prefix + "conversion from " + std::string(safetensors::to_string(from)) +
                                                 " to " + std::string(safetensors::to_string(to)) + " is not supported");
    const convert_path path = resolve_path(options.path);
#if SAFETENSORS_DETAIL_CONVERT_X86
    if (path != convert_path::scalar)
        if (convert_kernel k = x86_kernel(from, to, path)) return k;
#else
    (void)path;
#endif
    return scalar_kernel(from, to);
}

// Bytes of count elements of an output dtype (F32, BF16 or F16), overflow-checked.
inline std::uint64_t output_bytes(dtype to, std::uint64_t count, const std::string& prefix) {
    std::uint64_t bytes = 0;
    if (!checked_mul(count, bit_size(to) / 8, bytes))
        throw_error(errc::shape_overflow, prefix + std::to_string(count) + " elements of " +
                                              std::string(safetensors::to_string(to)) + " overflow 64 bits");
    return bytes;
}

// Checks that destination holds count elements of `to`.
inline void check_destination(dtype from, dtype to, std::uint64_t count, span<std::byte> destination,
                              const std::string& prefix) {
    const std::uint64_t needed = output_bytes(to, count, prefix);
    if (needed > destination.size())
        throw_error(errc::out_of_range, prefix + "converting " + elements_text(count) + " from " +
                                            std::string(safetensors::to_string(from)) + " to " +
                                            std::string(safetensors::to_string(to)) + " needs " +
                                            std::to_string(needed) + " bytes, destination holds " +
                                            std::to_string(destination.size()));
    if (needed != 0 && destination.data() == nullptr)
        throw_error(errc::invalid_argument, prefix + "destination is null");
}

// Elements in `bytes` whole bytes of dtype t: F6 packs 4 in 3 bytes, F4 2 in 1. Returns false
// when the bytes end inside an element (or an F6 group).
inline bool whole_elements(dtype t, std::uint64_t bytes, std::uint64_t& count) noexcept {
    switch (t) {
        case dtype::F4: return checked_mul(bytes, 2, count);
        case dtype::F6_E2M3:
        case dtype::F6_E3M2:
            if (bytes % 3 != 0) return false;
            count = bytes / 3 * 4;
            return true;
        default: {
            const std::uint64_t size = bit_size(t) / 8;
            if (bytes % size != 0) return false;
            count = bytes / size;
            return true;
        }
    }
}

// Offset in bytes of output element `index`; index <= a count whose output size was checked.
inline std::size_t output_offset(dtype to, std::uint64_t index) noexcept {
    return detail::to_size(index * (bit_size(to) / 8));
}

} // namespace detail

// ---- Span to span -------------------------------------------------------------------------------

// Converts every element of source (raw little-endian bytes of dtype from, whole elements)
// into destination (at least as many elements of dtype to) and returns the element count.
inline std::uint64_t convert(dtype from, span<const std::byte> source, dtype to, span<std::byte> destination,
                             const convert_options& options = {}) {
    const std::string prefix = detail::convert_prefix({}, false);
    const detail::convert_kernel kernel = detail::kernel_for(from, to, options, prefix);
    std::uint64_t count = 0;
    if (!detail::whole_elements(from, source.size(), count))
        detail::throw_error(errc::invalid_argument, prefix + "source of " + std::to_string(source.size()) +
                                                        " bytes is not a whole number of " +
                                                        std::string(to_string(from)) +
                                                        (from == dtype::F6_E2M3 || from == dtype::F6_E3M2
                                                             ? " groups (4 elements in 3 bytes)"
                                                             : " elements"));
    detail::check_destination(from, to, count, destination, prefix);
    if (count != 0) kernel(source.data(), destination.data(), detail::to_size(count));
    return count;
}

namespace detail {
template <class In, class Out>
void convert_typed(dtype from, span<const In> in, dtype to, span<Out> out, const convert_options& options) {
    // Elements of In and Out are whole, so these byte counts cannot overflow a size_t.
    convert(from, span<const std::byte>(reinterpret_cast<const std::byte*>(in.data()), in.size() * sizeof(In)), to,
            span<std::byte>(reinterpret_cast<std::byte*>(out.data()), out.size() * sizeof(Out)), options);
}
} // namespace detail

// Typed primitives on host-order codes: out must hold at least in.size() elements.
inline void bf16_to_f32(span<const std::uint16_t> in, span<float> out, const convert_options& options = {}) {
    detail::convert_typed(dtype::BF16, in, dtype::F32, out, options);
}
inline void f16_to_f32(span<const std::uint16_t> in, span<float> out, const convert_options& options = {}) {
    detail::convert_typed(dtype::F16, in, dtype::F32, out, options);
}
inline void f32_to_bf16(span<const float> in, span<std::uint16_t> out, const convert_options& options = {}) {
    detail::convert_typed(dtype::F32, in, dtype::BF16, out, options);
}
inline void f32_to_f16(span<const float> in, span<std::uint16_t> out, const convert_options& options = {}) {
    detail::convert_typed(dtype::F32, in, dtype::F16, out, options);
}

// ---- Tensors and slices -------------------------------------------------------------------------

namespace detail {
inline span<std::byte> as_bytes(span<float> out) noexcept {
    return {reinterpret_cast<std::byte*>(out.data()), out.size() * sizeof(float)};
}
inline std::string_view tensor_name_of(const tensor_view& t) noexcept { return t.name(); }
inline std::string_view tensor_name_of(const tensor& t) noexcept { return t.name(); }
inline std::string_view tensor_name_of(const tensor_slice& s) noexcept { return s.view().name(); }
} // namespace detail

// The whole tensor into destination (at least element_count() elements of dtype to).
// Reads the mapping directly, like tensor_view::data(); over a reader (a source that is not
// addressable) through a bounded buffer, a chunk at a time.
namespace detail {
// Converts count elements of dtype from whose packed bytes read(offset, buffer, n) fetches,
// a chunk at a time: chunks of whole bytes and whole F6 groups (a multiple of 8 elements),
// so the kernel sees what it would have seen in one pass.
template <class Read>
void convert_through_reads(dtype from, std::uint64_t count, dtype to, std::byte* destination,
                           convert_kernel kernel, Read&& read) {
    constexpr std::uint64_t chunk_elements = std::uint64_t{1} << 16;  // at most 1 MiB of C64
    const std::uint64_t bits = bit_size(from);
    std::vector<std::byte> buffer(to_size((std::min(count, chunk_elements) * bits + 7) / 8));
    for (std::uint64_t done = 0; done < count;) {
        const std::uint64_t n = std::min(count - done, chunk_elements);
        read(done * bits / 8, buffer.data(), to_size((n * bits + 7) / 8));  // the file holds whole bytes
        kernel(buffer.data(), destination + output_offset(to, done), to_size(n));
        done += n;
    }
}

// A whole tensor, view or owned: its bytes are contiguous.
template <class Tensor>
void convert_whole(const Tensor& t, dtype to, span<std::byte> destination, const convert_options& options) {
    const std::string prefix = convert_prefix(t.name(), true);
    const convert_kernel kernel = kernel_for(t.dtype(), to, options, prefix);
    check_destination(t.dtype(), to, t.element_count(), destination, prefix);
    if (t.element_count() != 0) kernel(t.data(), destination.data(), to_size(t.element_count()));
}
} // namespace detail

inline void convert(const tensor_view& t, dtype to, span<std::byte> destination, const convert_options& options = {}) {
    if (t.source()->addressable()) return detail::convert_whole(t, to, destination, options);
    const std::string prefix = detail::convert_prefix(t.name(), true);
    const detail::convert_kernel kernel = detail::kernel_for(t.dtype(), to, options, prefix);
    detail::check_destination(t.dtype(), to, t.element_count(), destination, prefix);
    detail::convert_through_reads(t.dtype(), t.element_count(), to, destination.data(), kernel,
                                  [&t](std::uint64_t at, std::byte* out, std::size_t n) { t.read_bytes(at, out, n); });
}
inline void convert(const tensor& t, dtype to, span<std::byte> destination, const convert_options& options = {}) {
    detail::convert_whole(t, to, destination, options);
}

// The slice's elements, packed in row-major order: each run of source bytes is converted
// straight from the mapping (over a reader, the packed runs through a bounded buffer) (a sub-byte slice's runs are whole bytes and, for F6, whole groups).
inline void convert(const tensor_slice& s, dtype to, span<std::byte> destination, const convert_options& options = {}) {
    const std::string prefix = detail::convert_prefix(s.view().name(), true);
    const detail::convert_kernel kernel = detail::kernel_for(s.dtype(), to, options, prefix);
    detail::check_destination(s.dtype(), to, s.element_count(), destination, prefix);
    if (!s.view().source()->addressable())  // a reader: the packed runs, a chunk at a time
        return detail::convert_through_reads(
            s.dtype(), s.element_count(), to, destination.data(), kernel,
            [&s](std::uint64_t at, std::byte* out, std::size_t n) { s.read_bytes(at, out, n); });
    const std::byte* base = s.view().source()->data() + s.view().source_offset();
    std::uint64_t done = 0;  // output elements written so far
    s.for_each_run([&](std::uint64_t offset, std::uint64_t length) {
        std::uint64_t n = 0;
        detail::whole_elements(s.dtype(), length, n);  // always whole: slice.hpp refuses other sub-byte slices
        kernel(base + offset, destination.data() + detail::output_offset(to, done), detail::to_size(n));
        done += n;
    });
}

// To float: destination holds at least element_count() floats.
template <class Tensor>
void to_f32(const Tensor& t, span<float> destination, const convert_options& options = {}) {
    convert(t, dtype::F32, detail::as_bytes(destination), options);
}

// To a new vector of floats.
template <class Tensor>
std::vector<float> to_f32(const Tensor& t, const convert_options& options = {}) {
    const std::uint64_t count = t.element_count();
    std::uint64_t bytes = 0;
    if (!detail::checked_mul(count, sizeof(float), bytes) || !detail::fits_size_t(bytes))
        detail::throw_error(errc::file_too_large, detail::convert_prefix(detail::tensor_name_of(t), true) +
                                                      detail::elements_text(count) + " of F32 do not fit in memory");
    std::vector<float> out(static_cast<std::size_t>(count));
    to_f32(t, span<float>(out), options);
    return out;
}

// An owned tensor of dtype to with the same name and shape (a slice: the slice's shape).
template <class Tensor>
tensor convert_tensor(const Tensor& t, dtype to, const convert_options& options = {}) {
    const std::string_view name = detail::tensor_name_of(t);
    // Refuse an unsupported pair before allocating anything.
    detail::kernel_for(t.dtype(), to, options, detail::convert_prefix(name, true));
    tensor out(std::string(name), to, std::vector<std::uint64_t>(t.shape().begin(), t.shape().end()));
    convert(t, to, out.bytes(), options);
    return out;
}

// Non-throwing: the element count, or the error convert() would have thrown.
template <class Tensor>
result<std::uint64_t> try_convert(const Tensor& t, dtype to, span<std::byte> destination,
                                  const convert_options& options = {}) noexcept {
    return detail::capture([&] {
        convert(t, to, destination, options);
        return t.element_count();
    });
}

} // namespace safetensors
