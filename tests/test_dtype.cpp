// Tests for include/safetensors/dtype.hpp: names, sizes, shape arithmetic, and every decoder
// checked exhaustively against the reference tables in tests/data/reference/dtype_tables/.
#include <safetensors/dtype.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/bytes.hpp"
#include "support/json.hpp"

#ifndef SAFETENSORS_TEST_DATA_DIR
#error "SAFETENSORS_TEST_DATA_DIR must be defined by the build"
#endif

namespace st = safetensors;
using st::dtype;

namespace {

std::vector<unsigned char> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot open " << path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::uint64_t double_bits(double d) {
    std::uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    return u;
}

std::uint32_t float_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

// A table value is a number or one of the strings "nan", "inf", "-inf". Numbers compare bit for
// bit as float64 (so -0.0 differs from 0.0).
void check_value(double got, const nlohmann::json& want, const std::string& where) {
    INFO(where << ": got " << got << ", want " << want.dump());
    if (want.is_string()) {
        const std::string s = want.get<std::string>();
        if (s == "nan") CHECK(std::isnan(got));
        else if (s == "inf") CHECK(got == std::numeric_limits<double>::infinity());
        else if (s == "-inf") CHECK(got == -std::numeric_limits<double>::infinity());
        else FAIL("unexpected string in table: " << s);
    } else {
        CHECK(double_bits(got) == double_bits(want.get<double>()));
    }
}

// Every code of a table, decoded by the scalar decoder and by element_to_double.
template <class Decode>
void check_table(const std::string& file, unsigned codes, dtype t, Decode decode) {
    const nlohmann::json table = test_support::read_json(test_support::dtype_table_path(file));
    REQUIRE(table.size() == codes);
    for (unsigned code = 0; code < codes; ++code) {
        const nlohmann::json& want = table.at(std::to_string(code));
        check_value(decode(static_cast<std::uint8_t>(code)), want, file + " code " + std::to_string(code));
        if (bit_size(t) == 8) {
            const std::byte b{static_cast<unsigned char>(code)};
            check_value(st::element_to_double(t, &b, 0), want, file + " element code " + std::to_string(code));
        }
    }
}

// 65,536 little-endian float32 bit patterns indexed by the 16-bit code.
template <class Decode>
void check_16bit_table(const std::string& file, dtype t, Decode decode) {
    const std::vector<unsigned char> bytes = read_bytes(test_support::dtype_table_path(file));
    REQUIRE(bytes.size() == 65536u * 4);
    std::size_t mismatches = 0;
    for (std::uint32_t code = 0; code < 65536; ++code) {
        const unsigned char* p = &bytes[code * 4];
        const std::uint32_t want = p[0] | (p[1] << 8) | (p[2] << 16) | (std::uint32_t{p[3]} << 24);
        const float got = decode(static_cast<std::uint16_t>(code));
        const std::byte le[2] = {std::byte(code & 0xff), std::byte(code >> 8)};
        const double via_element = st::element_to_double(t, le, 0);
        const bool want_nan = (want & 0x7f800000u) == 0x7f800000u && (want & 0x7fffffu) != 0;
        bool ok;
        if (want_nan) {
            ok = std::isnan(got) && std::isnan(via_element);  // torch and numpy differ in NaN payloads
        } else {
            ok = float_bits(got) == want && double_bits(via_element) == double_bits(static_cast<double>(got));
        }
        if (!ok && ++mismatches <= 5) FAIL_CHECK(file << " code " << code << ": got " << float_bits(got) << ", want " << want);
    }
    CHECK(mismatches == 0);
}

std::string error_message(const std::function<void()>& f, st::errc& code) {
    try {
        f();
    } catch (const st::error& e) {
        code = e.code();
        return e.message();
    }
    code = st::errc::ok;
    return "(no exception)";
}

} // namespace

TEST_SUITE("dtype") {

TEST_CASE("enum order and values match the reference") {
    static_assert(st::dtype_count == 22);
    static_assert(sizeof(dtype) == 1);
    const dtype order[] = {dtype::BOOL, dtype::F4, dtype::F6_E2M3, dtype::F6_E3M2, dtype::U8, dtype::I8,
                           dtype::F8_E5M2, dtype::F8_E4M3, dtype::F8_E8M0, dtype::F8_E4M3FNUZ,
                           dtype::F8_E5M2FNUZ, dtype::I16, dtype::U16, dtype::F16, dtype::BF16, dtype::I32,
                           dtype::U32, dtype::F32, dtype::C64, dtype::F64, dtype::I64, dtype::U64};
    REQUIRE(std::size(order) == st::all_dtypes.size());
    for (std::size_t i = 0; i < st::dtype_count; ++i) {
        CAPTURE(i);
        CHECK(static_cast<std::size_t>(order[i]) == i);
        CHECK(st::all_dtypes[i] == order[i]);
    }
}

TEST_CASE("bit sizes and categories") {
    const std::size_t bits[] = {8, 4, 6, 6, 8, 8, 8, 8, 8, 8, 8, 16, 16, 16, 16, 32, 32, 32, 64, 64, 64, 64};
    static_assert(st::bit_size(dtype::BF16) == 16);
    for (std::size_t i = 0; i < st::dtype_count; ++i) {
        const dtype t = st::all_dtypes[i];
        CAPTURE(st::to_string(t));
        CHECK(st::bit_size(t) == bits[i]);
        CHECK(st::is_sub_byte(t) == (t == dtype::F4 || t == dtype::F6_E2M3 || t == dtype::F6_E3M2));
        CHECK(st::is_complex(t) == (t == dtype::C64));
        const std::string_view name = st::to_string(t);
        const bool floating = (name[0] == 'F' || name == "BF16");
        CHECK(st::is_floating_point(t) == floating);
    }
    CHECK_FALSE(st::is_floating_point(dtype::C64));
    CHECK(st::is_floating_point(dtype::F8_E8M0));
}

TEST_CASE("JSON names round trip for all 22 dtypes") {
    const char* names[] = {"BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3",
                           "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32",
                           "U32", "F32", "C64", "F64", "I64", "U64"};
    for (std::size_t i = 0; i < st::dtype_count; ++i) {
        const dtype t = st::all_dtypes[i];
        CHECK(st::to_string(t) == names[i]);
        CHECK(st::parse_dtype(names[i]) == t);
        CHECK(st::parse_dtype(st::to_string(t)) == t);
    }
    static_assert(st::parse_dtype("F8_E4M3FNUZ") == dtype::F8_E4M3FNUZ);
    static_assert(!st::parse_dtype("F8_E4M3FN").has_value());
}

TEST_CASE("parse_dtype rejects anything but the exact names") {
    const char* bad[] = {"f32", "F128", "", " F32", "F32 ", "bf16", "Bool", "BOOLEAN",
                         "F8_E4M3FN", "F8_E4M3fnuz", "F6", "F8", "C128", "F", "I", "U1", "F8_E4M3FNU",
                         "F8_E5M3", "F6_E3M3", "X16", "BF1", "float32"};
    for (std::string_view s : bad) {
        CAPTURE(s);
        CHECK_FALSE(st::parse_dtype(s).has_value());
    }
    CHECK_FALSE(st::parse_dtype(std::string_view("F32\0", 4)).has_value());
    CHECK_FALSE(st::parse_dtype(std::string_view("F3", 2)).has_value());
}

TEST_CASE("torch names both ways") {
    const std::pair<dtype, const char*> names[] = {
        {dtype::BOOL, "bool"},          {dtype::F4, "float4_e2m1fn_x2"},
        {dtype::U8, "uint8"},           {dtype::I8, "int8"},
        {dtype::F8_E5M2, "float8_e5m2"}, {dtype::F8_E4M3, "float8_e4m3fn"},
        {dtype::F8_E8M0, "float8_e8m0fnu"}, {dtype::F8_E4M3FNUZ, "float8_e4m3fnuz"},
        {dtype::F8_E5M2FNUZ, "float8_e5m2fnuz"}, {dtype::I16, "int16"},
        {dtype::U16, "uint16"},         {dtype::F16, "float16"},
        {dtype::BF16, "bfloat16"},      {dtype::I32, "int32"},
        {dtype::U32, "uint32"},         {dtype::F32, "float32"},
        {dtype::C64, "complex64"},      {dtype::F64, "float64"},
        {dtype::I64, "int64"},          {dtype::U64, "uint64"}};
    for (const auto& entry : names) {
        const dtype t = entry.first;
        const char* name = entry.second;
        INFO(name);
        CHECK(st::torch_name(t) == std::string_view(name));
        CHECK(st::from_torch_name(name) == t);
        CHECK(st::from_torch_name(std::string("torch.") + name) == t);
    }
    CHECK_FALSE(st::torch_name(dtype::F6_E2M3).has_value());
    CHECK_FALSE(st::torch_name(dtype::F6_E3M2).has_value());
    // Every dtype with a torch name round trips.
    for (dtype t : st::all_dtypes)
        if (auto n = st::torch_name(t)) CHECK(st::from_torch_name(*n) == t);

    const std::pair<const char*, dtype> aliases[] = {{"half", dtype::F16},  {"float", dtype::F32},
                                                     {"double", dtype::F64}, {"long", dtype::I64},
                                                     {"int", dtype::I32},    {"short", dtype::I16},
                                                     {"cfloat", dtype::C64}};
    for (const auto& entry : aliases) {
        const char* name = entry.first;
        const dtype t = entry.second;
        INFO(name);
        CHECK(st::from_torch_name(name) == t);
        CHECK(st::from_torch_name(std::string("torch.") + name) == t);
    }
    const char* bad[] = {"", "torch.", "Float32", "torch.torch.float32", "torch float32", "float8_e4m3",
                         "complex128", "cdouble", "torch.complex32", "F32", "float6_e2m3fn", "torch.Float",
                         "float4_e2m1fn", " float32", "TORCH.float32"};
    for (std::string_view s : bad) {
        CAPTURE(s);
        CHECK_FALSE(st::from_torch_name(s).has_value());
    }
}

TEST_CASE("dtype_from_alias: the other spellings of each dtype, for hints") {
    const std::pair<const char*, dtype> aliases[] = {
        {"float32", dtype::F32}, {"float", dtype::F32},   {"fp32", dtype::F32},   {"f32", dtype::F32},
        {"float16", dtype::F16}, {"half", dtype::F16},    {"fp16", dtype::F16},   {"f16", dtype::F16},
        {"bfloat16", dtype::BF16}, {"bf16", dtype::BF16}, {"float64", dtype::F64}, {"double", dtype::F64},
        {"fp64", dtype::F64},    {"int64", dtype::I64},   {"long", dtype::I64},   {"int32", dtype::I32},
        {"int", dtype::I32},     {"int16", dtype::I16},   {"short", dtype::I16},  {"int8", dtype::I8},
        {"uint8", dtype::U8},    {"uint16", dtype::U16},  {"uint32", dtype::U32}, {"uint64", dtype::U64},
        {"bool", dtype::BOOL},   {"complex64", dtype::C64}, {"cfloat", dtype::C64},
        {"float8_e4m3fn", dtype::F8_E4M3}, {"float8_e5m2", dtype::F8_E5M2}, {"f8_e4m3fnuz", dtype::F8_E4M3FNUZ},
        {"F8_e5m2", dtype::F8_E5M2}, {"Bool", dtype::BOOL}, {"i64", dtype::I64}, {"u8", dtype::U8}};
    for (const auto& entry : aliases) {
        const std::string name = entry.first;
        INFO(name);
        CHECK(st::dtype_from_alias(name) == entry.second);
        CHECK(st::dtype_from_alias("torch." + name) == entry.second);
        CHECK_FALSE(st::parse_dtype(name).has_value());  // parse_dtype stays exact
    }
    // Every name in any case, and every torch name.
    for (dtype t : st::all_dtypes) {
        std::string lower(st::to_string(t));
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        CHECK(st::dtype_from_alias(st::to_string(t)) == t);
        CHECK(st::dtype_from_alias(lower) == t);
        if (auto n = st::torch_name(t)) CHECK(st::dtype_from_alias(*n) == t);
    }
    static_assert(st::dtype_from_alias("torch.float32") == dtype::F32);
    const char* bad[] = {"", "torch.", "float128", "f128", "fp8", "int4", "F8_E4M3FNUZZ", "torch.torch.float32",
                         " float32", "float32 ", "TORCH.float32", "complex128", "float8_e4m3"};
    for (std::string_view s : bad) {
        CAPTURE(s);
        CHECK_FALSE(st::dtype_from_alias(s).has_value());
    }
}

TEST_CASE("printing dtypes and shapes") {
    std::ostringstream os;
    os << dtype::F32 << ' ' << dtype::F8_E4M3FNUZ << ' ' << std::setw(6) << dtype::BF16 << '|';
    CHECK(os.str() == "F32 F8_E4M3FNUZ   BF16|");

    const std::vector<std::uint64_t> shape{2, 3}, scalar;
    std::vector<std::uint64_t> rank20(20, 1);
    rank20.back() = 7;
    os.str("");
    os << st::span<const std::uint64_t>(shape) << ' ' << st::span<const std::uint64_t>(scalar);
    CHECK(os.str() == "[2, 3] []");
    os.str("");
    os << st::span<std::uint64_t>(rank20);  // a writable span converts
    CHECK(os.str() == "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 7]");
    // format_shape takes a vector too, and prints every dimension where messages cut.
    CHECK(st::format_shape(shape) == "[2, 3]");
    CHECK(st::format_shape(scalar) == "[]");
    CHECK(st::format_shape(rank20) == os.str());
    CHECK(st::detail::shape_to_string(rank20) == "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, ... (20 dimensions)]");
}

TEST_CASE("element_count") {
    using shape = std::vector<std::uint64_t>;
    const std::uint64_t big = std::uint64_t{1} << 63;
    CHECK(st::element_count(shape{}) == 1);  // a scalar
    CHECK(st::element_count(shape{2, 3, 4}) == 24);
    CHECK(st::element_count(shape{0, 3}) == 0);
    CHECK(st::element_count(shape{0, big, big}) == 0);  // the 0 comes first
    CHECK(st::element_count(shape{std::numeric_limits<std::uint64_t>::max()}) ==
          std::numeric_limits<std::uint64_t>::max());

    std::uint64_t out = 7;
    CHECK(st::checked_element_count(shape{big, big, 0}, out) == st::size_status::overflow);
    CHECK(st::checked_element_count(shape{0, big, big}, out) == st::size_status::ok);
    CHECK(out == 0);
    CHECK(st::checked_element_count(shape{big, 2}, out) == st::size_status::overflow);
    CHECK(st::checked_element_count(shape{big, 1}, out) == st::size_status::ok);
    CHECK(out == big);

    st::errc code{};
    CHECK(error_message([&] { st::element_count(shape{big, big, 0}); }, code) ==
          "element count of shape [9223372036854775808, 9223372036854775808, 0] overflows 64 bits");
    CHECK(code == st::errc::shape_overflow);
    CHECK_THROWS_AS(st::element_count(shape{big, 2}), st::error);
}

TEST_CASE("byte_size") {
    using shape = std::vector<std::uint64_t>;
    const std::uint64_t big = std::uint64_t{1} << 63;
    CHECK(st::byte_size(dtype::F32, shape{}) == 4);
    CHECK(st::byte_size(dtype::F32, shape{2, 3}) == 24);
    CHECK(st::byte_size(dtype::C64, shape{3}) == 24);
    CHECK(st::byte_size(dtype::BOOL, shape{2, 5}) == 10);
    CHECK(st::byte_size(dtype::F4, shape{4}) == 2);
    CHECK(st::byte_size(dtype::F4, shape{2, 4}) == 4);
    CHECK(st::byte_size(dtype::F6_E2M3, shape{4}) == 3);
    CHECK(st::byte_size(dtype::F6_E3M2, shape{2, 8}) == 12);
    CHECK(st::byte_size(dtype::F4, shape{0}) == 0);
    CHECK(st::byte_size(dtype::F64, shape{0, big, big}) == 0);

    std::uint64_t out = 0;
    CHECK(st::checked_byte_size(dtype::F4, shape{3}, out) == st::size_status::not_whole_bytes);
    CHECK(st::checked_byte_size(dtype::F6_E2M3, shape{2}, out) == st::size_status::not_whole_bytes);
    CHECK(st::checked_byte_size(dtype::U8, shape{big, big, 0}, out) == st::size_status::overflow);
    // The reference sizes in bits: 2^58 F64 elements are 2^61 bytes but 2^64 bits, which overflows.
    CHECK(st::checked_byte_size(dtype::F64, shape{std::uint64_t{1} << 58}, out) == st::size_status::overflow);
    CHECK(st::checked_byte_size(dtype::F64, shape{std::uint64_t{1} << 57}, out) == st::size_status::ok);
    CHECK(out == std::uint64_t{1} << 60);
    CHECK(st::checked_byte_size(dtype::U8, shape{std::uint64_t{1} << 60}, out) == st::size_status::ok);
    CHECK(out == std::uint64_t{1} << 60);
    CHECK(st::checked_byte_size(dtype::U8, shape{std::uint64_t{1} << 60, 2}, out) == st::size_status::overflow);

    st::errc code{};
    CHECK(error_message([&] { st::byte_size(dtype::F4, shape{3}); }, code) ==
          "shape [3] of dtype F4 is not a whole number of bytes (12 bits)");
    CHECK(code == st::errc::misaligned_sub_byte);
    CHECK(error_message([&] { st::byte_size(dtype::F6_E2M3, shape{2}); }, code) ==
          "shape [2] of dtype F6_E2M3 is not a whole number of bytes (12 bits)");
    CHECK(code == st::errc::misaligned_sub_byte);
    CHECK(error_message([&] { st::byte_size(dtype::F6_E3M2, shape{3, 5}); }, code) ==
          "shape [3, 5] of dtype F6_E3M2 is not a whole number of bytes (90 bits)");
    CHECK(code == st::errc::misaligned_sub_byte);
    CHECK(error_message([&] { st::byte_size(dtype::F64, shape{std::uint64_t{1} << 62}); }, code) ==
          "size in bits of shape [4611686018427387904] of dtype F64 overflows 64 bits");
    CHECK(code == st::errc::shape_overflow);
    CHECK(error_message([&] { st::byte_size(dtype::I8, shape{big, big, 0}); }, code) ==
          "size in bits of shape [9223372036854775808, 9223372036854775808, 0] of dtype I8 overflows 64 bits");
    CHECK(code == st::errc::shape_overflow);
    // Shapes come from untrusted files: a very long one is cut in messages.
    const shape ones(40, 1);
    CHECK(error_message([&] { st::byte_size(dtype::F4, ones); }, code) ==
          "shape [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, ... (40 dimensions)] of dtype F4 is not a whole number of bytes (4 bits)");
    CHECK_THROWS_WITH_AS(st::byte_size(dtype::F4, shape{1}),
                         "[safetensors.error.214] shape [1] of dtype F4 is not a whole number of bytes (4 bits)",
                         st::error);
}

TEST_CASE("8-bit float decoders match the tables for all 256 codes") {
    check_table("F8_E4M3.json", 256, dtype::F8_E4M3, st::f8_e4m3_to_float);
    check_table("F8_E5M2.json", 256, dtype::F8_E5M2, st::f8_e5m2_to_float);
    check_table("F8_E8M0.json", 256, dtype::F8_E8M0, st::f8_e8m0_to_float);
    check_table("F8_E4M3FNUZ.json", 256, dtype::F8_E4M3FNUZ, st::f8_e4m3fnuz_to_float);
    check_table("F8_E5M2FNUZ.json", 256, dtype::F8_E5M2FNUZ, st::f8_e5m2fnuz_to_float);
    // Spot checks that do not depend on the tables.
    CHECK(st::f8_e4m3_to_float(0x7e) == 448.0f);
    CHECK(st::f8_e5m2_to_float(0x7b) == 57344.0f);
    CHECK(st::f8_e8m0_to_float(127) == 1.0f);
    CHECK(std::signbit(st::f8_e4m3_to_float(0x80)));
    CHECK(st::f8_e4m3fnuz_to_float(0x7f) == 240.0f);
}

TEST_CASE("sub-byte float decoders match the tables") {
    check_table("F6_E2M3.json", 64, dtype::F6_E2M3, st::f6_e2m3_to_float);
    check_table("F6_E3M2.json", 64, dtype::F6_E3M2, st::f6_e3m2_to_float);
    check_table("F4.json", 16, dtype::F4, st::f4_to_float);
}

TEST_CASE("f16 and bf16 decoders match the tables for all 65,536 codes") {
    check_16bit_table("f16_to_f32.bin", dtype::F16, st::f16_to_float);
    check_16bit_table("bf16_to_f32.bin", dtype::BF16, st::bf16_to_float);
    CHECK(st::f16_to_float(0x0001) == 5.9604644775390625e-8f);
    CHECK(float_bits(st::f16_to_float(0x8000)) == 0x80000000u);
    CHECK(st::f16_to_float(0x7bff) == 65504.0f);
}

TEST_CASE("fnuz fixture bytes decode to torch's values") {
    const nlohmann::json manifest = test_support::read_json(test_support::data_path("reference/valid/fnuz_manifest.json"));
    const std::pair<const char*, dtype> kinds[] = {{"float8_e4m3fnuz", dtype::F8_E4M3FNUZ},
                                                   {"float8_e5m2fnuz", dtype::F8_E5M2FNUZ}};
    for (const auto& entry : kinds) {
        const char* name = entry.first;
        const dtype t = entry.second;
        INFO(name);
        REQUIRE(st::from_torch_name(name) == t);
        const std::string hex = manifest.at(name).at("bytes_hex").get<std::string>();
        const nlohmann::json& values = manifest.at(name).at("values");
        REQUIRE(hex.size() == 2 * values.size());
        std::vector<std::byte> bytes;
        for (std::size_t i = 0; i < hex.size(); i += 2)
            bytes.push_back(std::byte(std::stoul(hex.substr(i, 2), nullptr, 16)));
        for (std::size_t i = 0; i < values.size(); ++i)
            check_value(st::element_to_double(t, bytes.data(), i), values[i], std::string(name) + " #" + std::to_string(i));
    }
}

TEST_CASE("element_to_double: sub-byte packing") {
    // F4: element i in byte i/2, low nibble first. Codes 1,2 | 7,15 -> 0.5, 1.0, 6.0, -6.0.
    const std::byte f4[] = {std::byte{0x21}, std::byte{0xf7}};
    CHECK(st::element_to_double(dtype::F4, f4, 0) == 0.5);
    CHECK(st::element_to_double(dtype::F4, f4, 1) == 1.0);
    CHECK(st::element_to_double(dtype::F4, f4, 2) == 6.0);
    CHECK(st::element_to_double(dtype::F4, f4, 3) == -6.0);

    // F6: groups of 4 codes in 3 bytes, element j at bits [6j, 6j+6) of the little-endian 24 bits.
    // Group 0 codes 1, 8, 33, 63 -> 0xFE1201; group 1 codes 5, 40, 62, 31 -> 0x7FEA05.
    const std::byte f6[] = {std::byte{0x01}, std::byte{0x12}, std::byte{0xfe},
                            std::byte{0x05}, std::byte{0xea}, std::byte{0x7f}};
    const double e2m3[] = {0.125, 1.0, -0.125, -7.5, 0.625, -1.0, -7.0, 7.5};
    for (std::uint64_t i = 0; i < 8; ++i) {
        CAPTURE(i);
        CHECK(st::element_to_double(dtype::F6_E2M3, f6, i) == e2m3[i]);
    }
    const std::uint8_t codes[] = {1, 8, 33, 63, 5, 40, 62, 31};
    for (std::uint64_t i = 0; i < 8; ++i)
        CHECK(double_bits(st::element_to_double(dtype::F6_E3M2, f6, i)) ==
              double_bits(st::f6_e3m2_to_float(codes[i])));
    // The bytes of the reference fixture malformed/f6_e2m3 (01 02 03): codes 1, 8, 48, 0.
    const std::byte fixture[] = {std::byte{1}, std::byte{2}, std::byte{3}};
    CHECK(st::element_to_double(dtype::F6_E2M3, fixture, 0) == 0.125);
    CHECK(st::element_to_double(dtype::F6_E2M3, fixture, 1) == 1.0);
    CHECK(st::element_to_double(dtype::F6_E2M3, fixture, 2) == -2.0);
    CHECK(st::element_to_double(dtype::F6_E2M3, fixture, 3) == 0.0);
}

TEST_CASE("element_to_double: integers, BOOL, wide floats, unaligned data") {
    const std::byte b[] = {std::byte{0}, std::byte{1}, std::byte{2}, std::byte{255}};
    CHECK(st::element_to_double(dtype::BOOL, b, 2) == 2.0);  // any byte is valid in files
    CHECK(st::element_to_double(dtype::BOOL, b, 3) == 255.0);
    CHECK(st::element_to_double(dtype::U8, b, 3) == 255.0);
    CHECK(st::element_to_double(dtype::I8, b, 3) == -1.0);

    // One spare byte in front so the values sit at odd addresses.
    std::vector<std::byte> buf(1 + 3 * 8);
    auto put = [&](std::size_t index, std::size_t width, std::uint64_t v) {
        for (std::size_t k = 0; k < width; ++k) buf[1 + index * width + k] = std::byte((v >> (8 * k)) & 0xff);
    };
    const std::byte* data = buf.data() + 1;

    put(0, 8, static_cast<std::uint64_t>(std::int64_t{-5}));
    put(1, 8, std::uint64_t{1} << 53);
    put(2, 8, std::uint64_t{1} << 63);
    CHECK(st::element_to_double(dtype::I64, data, 0) == -5.0);
    CHECK(st::element_to_double(dtype::I64, data, 1) == 9007199254740992.0);
    CHECK(st::element_to_double(dtype::I64, data, 2) == -9223372036854775808.0);
    CHECK(st::element_to_double(dtype::U64, data, 2) == 9223372036854775808.0);
    put(0, 8, std::numeric_limits<std::uint64_t>::max());
    CHECK(st::element_to_double(dtype::U64, data, 0) == 18446744073709551616.0);  // rounds to 2^64
    CHECK(st::element_to_double(dtype::I64, data, 0) == -1.0);
    put(0, 8, double_bits(-0.1));
    CHECK(st::element_to_double(dtype::F64, data, 0) == -0.1);

    put(1, 4, 0xfffffffeu);
    CHECK(st::element_to_double(dtype::I32, data, 1) == -2.0);
    CHECK(st::element_to_double(dtype::U32, data, 1) == 4294967294.0);
    put(1, 4, float_bits(3.25f));
    CHECK(st::element_to_double(dtype::F32, data, 1) == 3.25);

    put(3, 2, 0x8000);
    CHECK(st::element_to_double(dtype::I16, data, 3) == -32768.0);
    CHECK(st::element_to_double(dtype::U16, data, 3) == 32768.0);
    put(3, 2, 0x3c00);
    CHECK(st::element_to_double(dtype::F16, data, 3) == 1.0);
    put(3, 2, 0xc040);
    CHECK(st::element_to_double(dtype::BF16, data, 3) == -3.0);
}

TEST_CASE("element_to_double refuses C64") {
    const std::byte b[8] = {};
    CHECK_THROWS_AS(st::element_to_double(dtype::C64, b, 0), st::error);
    st::errc code{};
    CHECK(error_message([&] { st::element_to_double(dtype::C64, b, 0); }, code) ==
          "element_to_double: dtype C64 has two components and no single value");
    CHECK(code == st::errc::dtype_mismatch);
}

} // TEST_SUITE
