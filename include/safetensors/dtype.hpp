// safetensors-hpp: the 22 element types of the format and everything that depends only on them:
// names (JSON and torch), bit sizes, overflow-checked shape arithmetic, bit-exact decoding of the
// small float formats, and reading one element of a raw little-endian buffer as a double.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "detail/checked.hpp"
#include "error.hpp"
#include "span.hpp"

namespace safetensors {

// The reference's enum order (increasing alignment). The writer sorts by it, so it must not change.
enum class dtype : std::uint8_t {
    BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ,
    I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64
};

inline constexpr std::size_t dtype_count = 22;

inline constexpr std::array<dtype, dtype_count> all_dtypes = {
    dtype::BOOL, dtype::F4, dtype::F6_E2M3, dtype::F6_E3M2, dtype::U8, dtype::I8,
    dtype::F8_E5M2, dtype::F8_E4M3, dtype::F8_E8M0, dtype::F8_E4M3FNUZ, dtype::F8_E5M2FNUZ,
    dtype::I16, dtype::U16, dtype::F16, dtype::BF16, dtype::I32, dtype::U32, dtype::F32,
    dtype::C64, dtype::F64, dtype::I64, dtype::U64};

constexpr std::size_t bit_size(dtype t) noexcept {
    switch (t) {
        case dtype::F4: return 4;
        case dtype::F6_E2M3: case dtype::F6_E3M2: return 6;
        case dtype::I16: case dtype::U16: case dtype::F16: case dtype::BF16: return 16;
        case dtype::I32: case dtype::U32: case dtype::F32: return 32;
        case dtype::C64: case dtype::F64: case dtype::I64: case dtype::U64: return 64;
        default: return 8;  // BOOL, U8, I8 and the five F8 formats
    }
}

constexpr bool is_sub_byte(dtype t) noexcept { return bit_size(t) < 8; }

constexpr bool is_complex(dtype t) noexcept { return t == dtype::C64; }

constexpr bool is_floating_point(dtype t) noexcept {
    switch (t) {
        case dtype::F4: case dtype::F6_E2M3: case dtype::F6_E3M2: case dtype::F8_E5M2:
        case dtype::F8_E4M3: case dtype::F8_E8M0: case dtype::F8_E4M3FNUZ:
        case dtype::F8_E5M2FNUZ: case dtype::F16: case dtype::BF16: case dtype::F32:
        case dtype::F64:
            return true;
        default:
            return false;
    }
}

// The exact names used in the JSON header.
constexpr std::string_view to_string(dtype t) noexcept {
    switch (t) {
        case dtype::BOOL: return "BOOL";
        case dtype::F4: return "F4";
        case dtype::F6_E2M3: return "F6_E2M3";
        case dtype::F6_E3M2: return "F6_E3M2";
        case dtype::U8: return "U8";
        case dtype::I8: return "I8";
        case dtype::F8_E5M2: return "F8_E5M2";
        case dtype::F8_E4M3: return "F8_E4M3";
        case dtype::F8_E8M0: return "F8_E8M0";
        case dtype::F8_E4M3FNUZ: return "F8_E4M3FNUZ";
        case dtype::F8_E5M2FNUZ: return "F8_E5M2FNUZ";
        case dtype::I16: return "I16";
        case dtype::U16: return "U16";
        case dtype::F16: return "F16";
        case dtype::BF16: return "BF16";
        case dtype::I32: return "I32";
        case dtype::U32: return "U32";
        case dtype::F32: return "F32";
        case dtype::C64: return "C64";
        case dtype::F64: return "F64";
        case dtype::I64: return "I64";
        case dtype::U64: return "U64";
    }
    return "?";  // unreachable for valid enumerators
}

// Prints to_string(t): std::cout << dtype::F32 prints F32. A template on the stream so that this
// header needs only <iosfwd>: whoever has a stream has its complete type.
template <class Traits>
std::basic_ostream<char, Traits>& operator<<(std::basic_ostream<char, Traits>& os, dtype t) {
    return os << to_string(t);
}

namespace detail {
// The first candidate whose name equals s; candidates share s's length, so at most 5 compares.
// Compared character by character: names are 2 to 11 bytes, too short to be worth a memcmp call.
template <std::size_t N>
constexpr std::optional<dtype> match_dtype(std::string_view s, const dtype (&candidates)[N]) noexcept {
    for (dtype t : candidates) {
        const std::string_view name = to_string(t);
        if (name.size() != s.size()) continue;
        std::size_t i = 0;
        while (i < s.size() && name[i] == s[i]) ++i;
        if (i == s.size()) return t;
    }
    return std::nullopt;
}
} // namespace detail

// Exact case only, like the reference. Called once per tensor while parsing a header (100k
// times for a large one), so it dispatches on length and first character and allocates nothing.
constexpr std::optional<dtype> parse_dtype(std::string_view s) noexcept {
    using detail::match_dtype;
    switch (s.size()) {
        case 2: {
            constexpr dtype c[] = {dtype::F4, dtype::U8, dtype::I8};
            return match_dtype(s, c);
        }
        case 3: {  // the first character picks the family; C64 is alone
            constexpr dtype i[] = {dtype::I16, dtype::I32, dtype::I64};
            constexpr dtype u[] = {dtype::U16, dtype::U32, dtype::U64};
            constexpr dtype f[] = {dtype::F16, dtype::F32, dtype::F64};
            constexpr dtype c[] = {dtype::C64};
            switch (s[0]) {
                case 'I': return match_dtype(s, i);
                case 'U': return match_dtype(s, u);
                case 'F': return match_dtype(s, f);
                case 'C': return match_dtype(s, c);
                default: return std::nullopt;
            }
        }
        case 4: {
            constexpr dtype c[] = {dtype::BOOL, dtype::BF16};
            return match_dtype(s, c);
        }
        case 7: {
            constexpr dtype c[] = {dtype::F8_E4M3, dtype::F8_E5M2, dtype::F8_E8M0,
                                   dtype::F6_E2M3, dtype::F6_E3M2};
            return match_dtype(s, c);
        }
        case 11: {
            constexpr dtype c[] = {dtype::F8_E4M3FNUZ, dtype::F8_E5M2FNUZ};
            return match_dtype(s, c);
        }
        default:
            return std::nullopt;
    }
}

// torch's dtype name without the "torch." prefix; F6 has no torch dtype. torch's F4 dtype,
// float4_e2m1fn_x2, holds two elements per item, so its shape's last dimension is halved.
constexpr std::optional<std::string_view> torch_name(dtype t) noexcept {
    switch (t) {
        case dtype::BOOL: return std::string_view("bool");
        case dtype::F4: return std::string_view("float4_e2m1fn_x2");
        case dtype::F6_E2M3: case dtype::F6_E3M2: return std::nullopt;
        case dtype::U8: return std::string_view("uint8");
        case dtype::I8: return std::string_view("int8");
        case dtype::F8_E5M2: return std::string_view("float8_e5m2");
        case dtype::F8_E4M3: return std::string_view("float8_e4m3fn");
        case dtype::F8_E8M0: return std::string_view("float8_e8m0fnu");
        case dtype::F8_E4M3FNUZ: return std::string_view("float8_e4m3fnuz");
        case dtype::F8_E5M2FNUZ: return std::string_view("float8_e5m2fnuz");
        case dtype::I16: return std::string_view("int16");
        case dtype::U16: return std::string_view("uint16");
        case dtype::F16: return std::string_view("float16");
        case dtype::BF16: return std::string_view("bfloat16");
        case dtype::I32: return std::string_view("int32");
        case dtype::U32: return std::string_view("uint32");
        case dtype::F32: return std::string_view("float32");
        case dtype::C64: return std::string_view("complex64");
        case dtype::F64: return std::string_view("float64");
        case dtype::I64: return std::string_view("int64");
        case dtype::U64: return std::string_view("uint64");
    }
    return std::nullopt;
}

// Accepts "float16" and "torch.float16", and the aliases torch itself defines for these dtypes
// (torch.half, float, double, short, int, long, cfloat).
constexpr std::optional<dtype> from_torch_name(std::string_view s) noexcept {
    constexpr std::string_view prefix = "torch.";
    if (s.substr(0, prefix.size()) == prefix) s.remove_prefix(prefix.size());
    for (dtype t : all_dtypes)
        if (torch_name(t) == s) return t;
    struct alias { std::string_view name; dtype type; };
    constexpr alias aliases[] = {{"half", dtype::F16},  {"float", dtype::F32}, {"double", dtype::F64},
                                 {"short", dtype::I16}, {"int", dtype::I32},   {"long", dtype::I64},
                                 {"cfloat", dtype::C64}};
    for (const alias& a : aliases)
        if (a.name == s) return a.type;
    return std::nullopt;
}

// The dtype a common other spelling means, for "did you mean" hints; parse_dtype stays exact,
// like the reference. Accepts the format's names in any case ("f32", "bf16"), torch's names
// and aliases (from_torch_name), the short forms "fp16", "fp32" and "fp64", and each of these
// after "torch.": "float32", "float", "fp32" and "torch.float32" are all F32.
constexpr std::optional<dtype> dtype_from_alias(std::string_view s) noexcept {
    if (auto t = from_torch_name(s)) return t;  // which takes "torch." itself
    constexpr std::string_view prefix = "torch.";
    if (s.substr(0, prefix.size()) == prefix) s.remove_prefix(prefix.size());
    struct alias { std::string_view name; dtype type; };
    constexpr alias aliases[] = {{"fp16", dtype::F16}, {"fp32", dtype::F32}, {"fp64", dtype::F64}};
    for (const alias& a : aliases)
        if (a.name == s) return a.type;
    constexpr std::size_t longest = 11;  // F8_E4M3FNUZ
    if (s.size() > longest) return std::nullopt;
    char upper[longest] = {};
    for (std::size_t i = 0; i < s.size(); ++i)
        upper[i] = s[i] >= 'a' && s[i] <= 'z' ? static_cast<char>(s[i] - 'a' + 'A') : s[i];
    return parse_dtype(std::string_view(upper, s.size()));
}

// ---- Shape arithmetic ---------------------------------------------------------------------------

enum class size_status { ok, overflow, not_whole_bytes };

// Left-to-right product, each step overflow-checked, exactly like the reference: so
// [0, 2^63, 2^63] is 0 but [2^63, 2^63, 0] overflows before it reaches the 0.
inline size_status checked_element_count(span<const std::uint64_t> shape, std::uint64_t& out) noexcept {
    std::uint64_t n = 1;
    for (std::uint64_t d : shape)
        if (!detail::checked_mul(n, d, n)) return size_status::overflow;
    out = n;
    return size_status::ok;
}

// count * bits must fit in 64 bits (the reference computes the size in bits), then whole bytes.
inline size_status checked_byte_size(dtype t, span<const std::uint64_t> shape, std::uint64_t& out) noexcept {
    std::uint64_t n = 0, bits = 0;
    if (checked_element_count(shape, n) != size_status::ok ||
        !detail::checked_mul(n, bit_size(t), bits))
        return size_status::overflow;
    if (bits % 8 != 0) return size_status::not_whole_bytes;
    out = bits / 8;
    return size_status::ok;
}

namespace detail {
// "[2, 3]" for messages. Shapes come from untrusted files, so very long ones are cut after
// limit dimensions.
inline std::string shape_to_string(span<const std::uint64_t> shape, std::size_t limit = 16) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        if (i == limit) {
            s += "... (" + std::to_string(shape.size()) + " dimensions)";
            break;
        }
        s += std::to_string(shape[i]);
    }
    return s + "]";
}
} // namespace detail

// "[2, 3]", and "[]" for a scalar: every dimension, where messages cut long shapes.
inline std::string format_shape(span<const std::uint64_t> shape) { return detail::shape_to_string(shape, shape.size()); }

// Prints format_shape(shape): std::cout << view.shape() prints [2, 3]. Shapes are spans of
// uint64_t (tensor_view, tensor, tensor_slice); a std::vector shape prints through
// format_shape(), since this operator is found for our span only. A template for <iosfwd>,
// like the dtype one.
template <class Traits>
std::basic_ostream<char, Traits>& operator<<(std::basic_ostream<char, Traits>& os, span<const std::uint64_t> shape) {
    return os << format_shape(shape);
}

namespace detail {
// The element count of a shape already checked not to overflow (a file's, a tensor's).
constexpr std::uint64_t checked_shape_elements(span<const std::uint64_t> shape) noexcept {
    std::uint64_t n = 1;
    for (std::uint64_t d : shape) n *= d;
    return n;
}
} // namespace detail

inline std::uint64_t element_count(span<const std::uint64_t> shape) {
    std::uint64_t n = 0;
    if (checked_element_count(shape, n) != size_status::ok)
        detail::throw_error(errc::shape_overflow,
                            "element count of shape " + detail::shape_to_string(shape) + " overflows 64 bits");
    return n;
}

inline std::uint64_t byte_size(dtype t, span<const std::uint64_t> shape) {
    std::uint64_t n = 0;
    const size_status status = checked_byte_size(t, shape, n);
    if (status == size_status::ok) return n;
    const std::string what = detail::shape_to_string(shape) + " of dtype " + std::string(to_string(t));
    if (status == size_status::overflow)
        detail::throw_error(errc::shape_overflow, "size in bits of shape " + what + " overflows 64 bits");
    // not_whole_bytes: count * bits was computed without overflow, so recomputing it is safe.
    const std::uint64_t bits = element_count(shape) * bit_size(t);
    detail::throw_error(errc::misaligned_sub_byte,
                        "shape " + what + " is not a whole number of bytes (" + std::to_string(bits) + " bits)");
}

// ---- Scalar decoding ----------------------------------------------------------------------------
// Every value of every format below is exactly representable as a float, so the results are exact.

namespace detail {

inline float float_from_bits(std::uint32_t bits) noexcept {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// A finite sign/exponent/mantissa code with IEEE-style subnormals (exponent field 0). Callers
// handle their format's NaN and infinity codes first. Negating 0 gives -0, as the formats do.
inline float decode_minifloat(unsigned code, int exp_bits, int man_bits, int bias) noexcept {
    const unsigned man = code & ((1u << man_bits) - 1);
    const int exp = static_cast<int>((code >> man_bits) & ((1u << exp_bits) - 1));
    const bool negative = (code >> (exp_bits + man_bits)) & 1u;
    const float magnitude =
        exp == 0 ? std::ldexp(static_cast<float>(man), 1 - bias - man_bits)
                 : std::ldexp(static_cast<float>(man | (1u << man_bits)), exp - bias - man_bits);
    return negative ? -magnitude : magnitude;
}

} // namespace detail

// IEEE binary16. NaN payloads are kept (shifted into the float's mantissa), like numpy.
inline float f16_to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = (h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu;
    const std::uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return detail::float_from_bits(sign | 0x7f800000u | (man << 13));
    if (exp != 0) return detail::float_from_bits(sign | ((exp + 112) << 23) | (man << 13));
    // Subnormal (or zero): man * 2^-24 is exact in float; the sign is ORed in to keep -0.
    const float magnitude = static_cast<float>(man) * 5.9604644775390625e-8f;
    std::uint32_t bits;
    std::memcpy(&bits, &magnitude, sizeof bits);
    return detail::float_from_bits(bits | sign);
}

// bfloat16 is the top half of a float32.
inline float bf16_to_float(std::uint16_t h) noexcept {
    return detail::float_from_bits(static_cast<std::uint32_t>(h) << 16);
}

// E4M3 "fn": bias 7, no infinities, NaN only at S.1111.111 (so the maximum is 448).
inline float f8_e4m3_to_float(std::uint8_t c) noexcept {
    if ((c & 0x7f) == 0x7f) return std::numeric_limits<float>::quiet_NaN();
    return detail::decode_minifloat(c, 4, 3, 7);
}

// E5M2: IEEE-like, bias 15, exponent 31 is infinity (mantissa 0) or NaN.
inline float f8_e5m2_to_float(std::uint8_t c) noexcept {
    if ((c & 0x7c) == 0x7c) {
        if (c & 0x03) return std::numeric_limits<float>::quiet_NaN();
        return (c & 0x80) ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
    }
    return detail::decode_minifloat(c, 5, 2, 15);
}

// E8M0 (OCP MX scale): unsigned power of two, 2^(c-127); 255 is NaN. 2^-127 is a float subnormal.
inline float f8_e8m0_to_float(std::uint8_t c) noexcept {
    if (c == 0xff) return std::numeric_limits<float>::quiet_NaN();
    return std::ldexp(1.0f, static_cast<int>(c) - 127);
}

// The "fnuz" formats (AMD/Graphcore): no infinities, no negative zero; 0x80 is the only NaN, and
// the bias is one more than in the IEEE-like formats.
inline float f8_e4m3fnuz_to_float(std::uint8_t c) noexcept {
    if (c == 0x80) return std::numeric_limits<float>::quiet_NaN();
    return detail::decode_minifloat(c, 4, 3, 8);
}

inline float f8_e5m2fnuz_to_float(std::uint8_t c) noexcept {
    if (c == 0x80) return std::numeric_limits<float>::quiet_NaN();
    return detail::decode_minifloat(c, 5, 2, 16);
}

// The OCP MX sub-byte formats have no NaN or infinity: every code is finite. Bits above the
// code's width are ignored.
inline float f6_e2m3_to_float(std::uint8_t code6) noexcept {
    return detail::decode_minifloat(code6 & 0x3fu, 2, 3, 1);
}
inline float f6_e3m2_to_float(std::uint8_t code6) noexcept {
    return detail::decode_minifloat(code6 & 0x3fu, 3, 2, 3);
}
inline float f4_to_float(std::uint8_t code4) noexcept {  // E2M1
    return detail::decode_minifloat(code4 & 0x0fu, 2, 1, 1);
}

// ---- Element access -----------------------------------------------------------------------------

namespace detail {
// Little-endian load from any address: memcpy is safe for unaligned data and compiles to one
// load. The file's data is little-endian, so big-endian hosts reverse the bytes.
template <class U>
inline U load_le(const std::byte* p) noexcept {
    unsigned char b[sizeof(U)];
    std::memcpy(b, p, sizeof b);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    std::reverse(b, b + sizeof b);
#endif
    U v;
    std::memcpy(&v, b, sizeof v);
    return v;
}

template <class T, class U>
inline T bit_cast_to(U u) noexcept {
    static_assert(sizeof(T) == sizeof(U), "size mismatch");
    T t;
    std::memcpy(&t, &u, sizeof t);
    return t;
}
} // namespace detail

// The index-th element of a tensor's raw bytes as a double; the caller guarantees index is below
// the element count. Integers and BOOL are exact (BOOL gives the byte's value, 0..255, since the
// format does not check it), except I64/U64 magnitudes above 2^53, which round to nearest.
// Sub-byte packing:
//   F4: element i is in byte i/2, the LOW nibble for even i (torch float4_e2m1fn_x2, OCP MX).
//   F6: each group of 4 elements fills 3 bytes; element j of a group is bits [6j, 6j+6) of the
//       group's 24-bit little-endian value.
// C64 has two components and no single double value: it throws errc::dtype_mismatch.
inline double element_to_double(dtype t, const std::byte* data, std::uint64_t index) {
    using detail::bit_cast_to;
    using detail::load_le;
    // Kept 64-bit: F4 packs two elements per byte, so on a 32-bit host an element index can
    // exceed size_t where the byte offsets computed from it cannot.
    const std::uint64_t i = index;
    const auto byte_at = [&](std::uint64_t k) { return std::to_integer<std::uint8_t>(data[detail::to_size(k)]); };
    switch (t) {
        case dtype::BOOL:
        case dtype::U8: return byte_at(i);
        case dtype::I8: return static_cast<std::int8_t>(byte_at(i));
        case dtype::F4: {
            const std::uint8_t b = byte_at(i / 2);
            return f4_to_float(static_cast<std::uint8_t>(i % 2 == 0 ? b & 0x0f : b >> 4));
        }
        case dtype::F6_E2M3:
        case dtype::F6_E3M2: {
            const std::uint64_t group = i / 4, j = i % 4;
            const std::uint32_t v = byte_at(3 * group) | (std::uint32_t{byte_at(3 * group + 1)} << 8) |
                                    (std::uint32_t{byte_at(3 * group + 2)} << 16);
            const auto code = static_cast<std::uint8_t>((v >> (6 * j)) & 0x3fu);
            return t == dtype::F6_E2M3 ? f6_e2m3_to_float(code) : f6_e3m2_to_float(code);
        }
        case dtype::F8_E5M2: return f8_e5m2_to_float(byte_at(i));
        case dtype::F8_E4M3: return f8_e4m3_to_float(byte_at(i));
        case dtype::F8_E8M0: return f8_e8m0_to_float(byte_at(i));
        case dtype::F8_E4M3FNUZ: return f8_e4m3fnuz_to_float(byte_at(i));
        case dtype::F8_E5M2FNUZ: return f8_e5m2fnuz_to_float(byte_at(i));
        case dtype::I16: return bit_cast_to<std::int16_t>(load_le<std::uint16_t>(data + 2 * i));
        case dtype::U16: return load_le<std::uint16_t>(data + 2 * i);
        case dtype::F16: return f16_to_float(load_le<std::uint16_t>(data + 2 * i));
        case dtype::BF16: return bf16_to_float(load_le<std::uint16_t>(data + 2 * i));
        case dtype::I32: return bit_cast_to<std::int32_t>(load_le<std::uint32_t>(data + 4 * i));
        case dtype::U32: return load_le<std::uint32_t>(data + 4 * i);
        case dtype::F32: return bit_cast_to<float>(load_le<std::uint32_t>(data + 4 * i));
        case dtype::F64: return bit_cast_to<double>(load_le<std::uint64_t>(data + 8 * i));
        case dtype::I64:
            return static_cast<double>(bit_cast_to<std::int64_t>(load_le<std::uint64_t>(data + 8 * i)));
        case dtype::U64: return static_cast<double>(load_le<std::uint64_t>(data + 8 * i));
        case dtype::C64: break;
    }
    detail::throw_error(errc::dtype_mismatch, "element_to_double: dtype " + std::string(to_string(t)) +
                                                  " has two components and no single value");
}

} // namespace safetensors
