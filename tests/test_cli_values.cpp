// Tests for `safetensors values` (tools/cli/values.hpp), run as a subprocess:
//   - --json gives every code of every 8-, 6- and 4-bit float dtype, and all 65536 codes of
//     F16 and BF16, exactly as the committed reference tables decode them;
//   - --json equals the values recorded in valid/manifest.json (and fnuz_manifest.json) for
//     every tensor that has them, nested following the shape;
//   - the text output (NumPy's array printing) of small tensors, exactly; summarisation;
//   - --slice against the reference's slices; usage errors and a missing tensor.
// Few processes: many tensors go into one file and one run. POSIX only (posix_spawn).
#include <doctest/doctest.h>

#include "support/platform.hpp"

#if defined(SAFETENSORS_CLI_EXE) && !defined(_WIN32)

#include <safetensors/safetensors.hpp>

#include <nlohmann/json.hpp>

#include "support/bytes.hpp"
#include "support/json.hpp"
#include "support/cli.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace values_test {

namespace st = safetensors;
using json = nlohmann::json;
using test_support::run_result;
using test_support::check_error_shape;
using test_support::lines_of;
using test_support::shown;
using test_support::raw_bytes_of;
using test_support::raw_tensor;
using test_support::save_raw;

const std::string reference = std::string(SAFETENSORS_TEST_DATA_DIR) + "/reference/";

run_result run_values(std::vector<std::string> args) {
    args.insert(args.begin(), "values");
    return test_support::run_program(SAFETENSORS_CLI_EXE, args);
}

// A tensor's JSON values flattened in row-major order, checking that the nesting follows shape
// (a scalar for rank 0). Complex elements ([re, im]) stay whole.
void flatten(const json& v, const std::vector<std::uint64_t>& shape, std::size_t axis, std::vector<json>& out) {
    if (axis == shape.size()) {
        out.push_back(v);
        return;
    }
    REQUIRE(v.is_array());
    REQUIRE(v.size() == shape[axis]);
    for (const json& item : v) flatten(item, shape, axis + 1, out);
}

std::vector<json> flat(const json& v, const std::vector<std::uint64_t>& shape) {
    std::vector<json> out;
    flatten(v, shape, 0, out);
    return out;
}

// A JSON value from the tool against an expected double: "nan", "inf", "-inf" as strings, any
// other value as an exactly equal number (zeros with their sign).
bool same_value(const json& got, double want) {
    if (std::isnan(want)) return got == "nan";
    if (std::isinf(want)) return got == (want < 0 ? "-inf" : "inf");
    if (!got.is_number()) return false;
    const double g = got.get<double>();
    return g == want && std::signbit(g) == std::signbit(want);
}

// A manifest or table value (a number, true/false, or "nan"/"inf"/"-inf") as a double.
double expected_double(const json& v) {
    if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
    if (v.is_string()) {
        const std::string s = v.get<std::string>();
        if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
        return s == "-inf" ? -HUGE_VAL : HUGE_VAL;
    }
    return v.get<double>();
}

// One manifest value against the tool's: integers compared as integers (exact for I64/U64).
void check_manifest_value(const json& got, const json& want) {
    if (want.is_array()) {  // complex: [re, im]
        REQUIRE(got.is_array());
        REQUIRE(got.size() == 2);
        CHECK(same_value(got[0], expected_double(want[0])));
        CHECK(same_value(got[1], expected_double(want[1])));
    } else if (want.is_number_integer()) {
        REQUIRE(got.is_number_integer());
        if (want.is_number_unsigned()) CHECK(got.get<std::uint64_t>() == want.get<std::uint64_t>());
        else CHECK(got.get<std::int64_t>() == want.get<std::int64_t>());
    } else {
        CHECK_MESSAGE(same_value(got, expected_double(want)), "got ", got.dump(), ", want ", want.dump());
    }
}

// Every tensor of a manifest entry that records values, against one --json run of the file.
void check_manifest_file(const std::string& path, const json& tensors) {
    INFO("fixture: ", path);
    const run_result r = run_values({"--json", path});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.err.empty());
    const json out = json::parse(r.out);
    for (auto it = tensors.begin(); it != tensors.end(); ++it) {
        if (!it.value().contains("values")) continue;
        INFO("tensor: ", it.key());
        REQUIRE(out.contains(it.key()));
        const std::vector<json> got = flat(out[it.key()], it.value().at("shape").get<std::vector<std::uint64_t>>());
        const json& want = it.value()["values"];
        REQUIRE(got.size() == want.size());
        for (std::size_t i = 0; i < got.size(); ++i) check_manifest_value(got[i], want[i]);
    }
}

// Codes packed as the format packs them: F8 one per byte; F4 two per byte, the first in the low
// nibble; F6 four in three bytes, element j at bits [6j, 6j + 6) of their little-endian 24-bit value.
std::vector<std::uint8_t> pack(const std::vector<std::uint32_t>& codes, unsigned bits) {
    std::vector<std::uint8_t> out;
    if (bits == 8) {
        for (std::uint32_t c : codes) out.push_back(static_cast<std::uint8_t>(c));
        return out;
    }
    if (bits == 4) {
        for (std::size_t i = 0; i < codes.size(); i += 2)
            out.push_back(static_cast<std::uint8_t>(codes[i] | (codes[i + 1] << 4)));
        return out;
    }
    for (std::size_t i = 0; i < codes.size(); i += 4) {
        const std::uint32_t v = codes[i] | (codes[i + 1] << 6) | (codes[i + 2] << 12) | (codes[i + 3] << 18);
        for (int b = 0; b < 3; ++b) out.push_back(static_cast<std::uint8_t>(v >> (8 * b)));
    }
    return out;
}

// tests/data/reference/dtype_tables/<name>: 65536 float32 bit patterns, indexed by code.
std::vector<float> f32_table(const std::string& name) {
    const std::vector<std::byte> raw = test_support::read_all(reference + "dtype_tables/" + name);
    REQUIRE(raw.size() == 65536 * 4);
    std::vector<float> out(65536);
    std::memcpy(out.data(), raw.data(), raw.size());
    return out;
}

TEST_CASE("values: --json gives every code of the small float dtypes as the reference tables decode them") {
    test_support::temp_dir dir;
    const std::string path = dir.file("codes.safetensors");
    const std::vector<std::string> tables = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ",
                                             "F6_E2M3", "F6_E3M2", "F4"};
    std::vector<raw_tensor> tensors;
    for (const std::string& name : tables) {
        const auto parsed = st::parse_dtype(name);
        REQUIRE(parsed);
        const st::dtype t = *parsed;
        const std::uint32_t count = 1u << st::bit_size(t);
        std::vector<std::uint32_t> codes(count);
        for (std::uint32_t c = 0; c < count; ++c) codes[c] = c;
        tensors.push_back({name, t, {count}, pack(codes, static_cast<unsigned>(st::bit_size(t)))});
    }
    std::vector<std::uint16_t> all16(65536);
    for (std::uint32_t c = 0; c < 65536; ++c) all16[c] = static_cast<std::uint16_t>(c);
    // Two dimensions: the nesting is checked too.
    tensors.push_back({"F16", st::dtype::F16, {256, 256}, raw_bytes_of(all16)});
    tensors.push_back({"BF16", st::dtype::BF16, {256, 256}, raw_bytes_of(all16)});
    save_raw(path, tensors);

    const run_result r = run_values({"--json", path});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.err.empty());
    const json out = json::parse(r.out);
    CHECK(out.size() == tables.size() + 2);
    for (const std::string& name : tables) {
        INFO("dtype: ", name);
        const json table = test_support::read_json(reference + "dtype_tables/" + name + ".json");
        const auto count = static_cast<std::uint64_t>(table.size());
        REQUIRE(out.contains(name));
        const std::vector<json> got = flat(out[name], {count});
        std::size_t mismatches = 0;
        for (std::uint64_t c = 0; c < count; ++c)
            if (!same_value(got[c], expected_double(table.at(std::to_string(c))))) {
                if (++mismatches <= 5) FAIL_CHECK("code ", c, ": got ", got[c].dump(), ", table ", table.at(std::to_string(c)).dump());
            }
        CHECK(mismatches == 0);
    }
    for (const std::string name : {"F16", "BF16"}) {
        INFO("dtype: ", name);
        const std::vector<float> table = f32_table(name == "F16" ? "f16_to_f32.bin" : "bf16_to_f32.bin");
        REQUIRE(out.contains(name));
        const std::vector<json> got = flat(out[name], {256, 256});
        std::size_t mismatches = 0;
        for (std::size_t c = 0; c < 65536; ++c)
            if (!same_value(got[c], static_cast<double>(table[c]))) {
                if (++mismatches <= 5) FAIL_CHECK("code ", c, ": got ", got[c].dump(), ", table ", table[c]);
            }
        CHECK(mismatches == 0);
    }
}

TEST_CASE("values: --json equals the values of valid/manifest.json and fnuz_manifest.json") {
    const json manifest = test_support::read_json(reference + "valid/manifest.json");
    std::size_t files = 0;
    for (auto it = manifest.begin(); it != manifest.end(); ++it) {
        const json& tensors = it.value().value("tensors", json::object());
        if (std::none_of(tensors.begin(), tensors.end(), [](const json& t) { return t.contains("values"); })) continue;
        check_manifest_file(reference + "valid/" + it.key(), tensors);
        ++files;
    }
    CHECK(files >= 15);
    // The FNUZ fixture records its tensors as {bytes_hex, values}; their shape is [count].
    const json fnuz = test_support::read_json(reference + "valid/fnuz_manifest.json");
    json tensors = json::object();
    for (auto it = fnuz.begin(); it != fnuz.end(); ++it)
        tensors[it.key()] = {{"shape", {it.value()["values"].size()}}, {"values", it.value()["values"]}};
    check_manifest_file(reference + "valid/fnuz.safetensors", tensors);
}

TEST_CASE("values: text output follows NumPy's array printing") {
    test_support::temp_dir dir;
    const std::string path = dir.file("small.safetensors");
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<float> ramp(12);
    for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = 1.5f * static_cast<float>(i);
    std::vector<std::int32_t> long_ramp(2000);
    for (std::size_t i = 0; i < long_ramp.size(); ++i) long_ramp[i] = static_cast<std::int32_t>(i);
    std::vector<float> grid(40 * 50);
    for (std::size_t i = 0; i < grid.size(); ++i) grid[i] = 10 + 0.5f * static_cast<float>(i);
    save_raw(path, {
                   {"a", st::dtype::F32, {2, 3}, raw_bytes_of(std::vector<float>{1, 2.5f, -3, 4, 5.25f, 6})},
                   {"b", st::dtype::I64, {3}, raw_bytes_of(std::vector<std::int64_t>{-1, 9007199254740993, 42})},
                   {"c", st::dtype::BOOL, {2, 2}, {1, 0, 0, 1}},
                   {"d", st::dtype::F64, {4}, raw_bytes_of(std::vector<double>{1e-5, 1, 100, nan})},
                   {"e", st::dtype::C64, {2}, raw_bytes_of(std::vector<float>{1, 2, -3.5f, 0.25f})},
                   {"f", st::dtype::F16, {}, raw_bytes_of(std::vector<std::uint16_t>{0x7bff})},  // 65504
                   {"g", st::dtype::U8, {0}, {}},
                   {"h", st::dtype::F32, {12}, raw_bytes_of(ramp)},
                   {"i", st::dtype::U64, {2}, raw_bytes_of(std::vector<std::uint64_t>{0, 18446744073709551615u})},
                   {"long", st::dtype::I32, {2000}, raw_bytes_of(long_ramp)},
                   {"grid", st::dtype::F32, {40, 50}, raw_bytes_of(grid)},
               });

    // NAMEs in the order given, each after its header line, a blank line between tensors.
    run_result r = run_values({path, "a", "b", "c", "d", "e", "f", "g", "h", "i"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.err.empty());
    CHECK(r.out == "a: F32 [2, 3]\n"
                   "[[ 1.  ,  2.5 , -3.  ],\n"
                   " [ 4.  ,  5.25,  6.  ]]\n"
                   "\n"
                   "b: I64 [3]\n"
                   "[              -1, 9007199254740993,               42]\n"
                   "\n"
                   "c: BOOL [2, 2]\n"
                   "[[ True, False],\n"
                   " [False,  True]]\n"
                   "\n"
                   "d: F64 [4]\n"
                   "[1.e-05, 1.e+00, 1.e+02,    nan]\n"
                   "\n"
                   "e: C64 [2]\n"
                   "[    (1.+2.j), (-3.5+0.25j)]\n"
                   "\n"
                   "f: F16 []\n"
                   "65504.\n"
                   "\n"
                   "g: U8 [0]\n"
                   "[]\n"
                   "\n"
                   "h: F32 [12]\n"
                   "[ 0. ,  1.5,  3. ,  4.5,  6. ,  7.5,  9. , 10.5, 12. , 13.5, 15. , 16.5]\n"
                   "\n"
                   "i: U64 [2]\n"
                   "[                   0, 18446744073709551615]\n");

    // Past the threshold (1000): the first and last 3 along each axis, "..." between.
    r = run_values({path, "long", "grid"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.out == "long: I32 [2000]\n"
                   "[   0,    1,    2, ..., 1997, 1998, 1999]\n"
                   "\n"
                   "grid: F32 [40, 50]\n"
                   "[[  10. ,   10.5,   11. , ...,   33.5,   34. ,   34.5],\n"
                   " [  35. ,   35.5,   36. , ...,   58.5,   59. ,   59.5],\n"
                   " [  60. ,   60.5,   61. , ...,   83.5,   84. ,   84.5],\n"
                   " ...,\n"
                   " [ 935. ,  935.5,  936. , ...,  958.5,  959. ,  959.5],\n"
                   " [ 960. ,  960.5,  961. , ...,  983.5,  984. ,  984.5],\n"
                   " [ 985. ,  985.5,  986. , ..., 1008.5, 1009. , 1009.5]]\n");

    // --threshold, --edgeitems, --precision; the format comes from the elements shown.
    r = run_values({"--threshold", "5", "--edgeitems", "1", "--precision", "2", path, "a", "h"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.out == "a: F32 [2, 3]\n"
                   "[[ 1., ..., -3.],\n"
                   " [ 4., ...,  6.]]\n"
                   "\n"
                   "h: F32 [12]\n"
                   "[ 0. , ..., 16.5]\n");
    r = run_values({"--precision", "1", path, "a"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.out == "a: F32 [2, 3]\n"
                   "[[ 1. ,  2.5, -3. ],\n"
                   " [ 4. ,  5.2,  6. ]]\n");

    // Without NAME: every tensor, in file order.
    r = run_values({path});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    std::vector<std::string> headers;
    for (std::size_t at = 0; at < r.out.size();) {
        const std::size_t end = r.out.find('\n', at);
        const std::string line = r.out.substr(at, end - at);
        if (line.find(": ") != std::string::npos && line[0] != '[' && line[0] != ' ') headers.push_back(line.substr(0, line.find(':')));
        at = end + 1;
    }
    std::vector<std::string> file_order;
    for (const st::tensor_view& view : st::open(path)) file_order.emplace_back(view.name());
    CHECK(headers == file_order);
}

TEST_CASE("values: --slice selects from each NAME as the reference slices") {
    const std::string path = reference + "valid/slicing.safetensors";
    const json slices = test_support::read_json(reference + "valid/manifest.json")["slicing.safetensors"]["slices"];
    // A few of the recorded expressions (test_inspect.cpp checks them all through --dump).
    for (const char* key : {"ellipsis_1_2", "i_1_s_all_i_3", "s_1_3_s_neg4_neg1_s_0_5", "s_all_all_step2", "s_2_1"}) {
        const std::string spec = slices["x_f32"][key]["spec"].get<std::string>();
        INFO("slice: ", spec);
        const run_result r = run_values({"--json", "--slice", spec, path, "x_f32", "x_i16", "x_bf16"});
        REQUIRE_MESSAGE(r.status == 0, shown(r));
        const json out = json::parse(r.out);
        for (const std::string name : {"x_f32", "x_i16", "x_bf16"}) {
            INFO("tensor: ", name);
            const json& want = slices[name][key];
            const std::vector<json> got = flat(out.at(name), want["shape"].get<std::vector<std::uint64_t>>());
            REQUIRE(got.size() == want["values"].size());
            for (std::size_t i = 0; i < got.size(); ++i) CHECK(same_value(got[i], want["values"][i].get<double>()));
        }
    }
    // The text names the slice and shows the sliced shape.
    run_result r = run_values({"--slice", "1, :, 3", path, "x_i16"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.out == "x_i16[1, :, 3]: I16 [6]\n[33, 38, 43, 48, 53, 58]\n");
    // An index the reference refuses: an error (exit 1), nothing printed.
    r = run_values({"--slice", "4", path, "x_f32"});
    check_error_shape(r, 1);
}

TEST_CASE("values: usage errors and a missing tensor") {
    const std::string path = reference + "valid/single_scalar_f32.safetensors";
    run_result r = run_values({});
    check_error_shape(r, 2);
    r = run_values({"--precision", "x", path});
    check_error_shape(r, 2);
    CHECK(r.err == "error: --precision needs a whole number from 0 to 30, got \"x\"\n");
    r = run_values({"--edgeitems", "0", path});
    check_error_shape(r, 2);
    CHECK(r.err == "error: --edgeitems needs a positive whole number, got \"0\"\n");
    r = run_values({"--threshold", "-1", path});
    check_error_shape(r, 2);
    r = run_values({"--slice", "0", path});
    check_error_shape(r, 2);
    CHECK(r.err == "error: --slice needs at least one NAME\n");
    r = run_values({"--json", "--threshold", "10", path});
    check_error_shape(r, 2);
    CHECK(r.err == "error: --threshold does not apply to --json\n");
    // A name the file lacks: exit 1, the line names it, even after a name that exists.
    r = run_values({path, "scalar_f32", "no_such_tensor"});
    check_error_shape(r, 1);
    CHECK(r.err.find("no_such_tensor") != std::string::npos);
    // The scalar itself, for contrast.
    r = run_values({path, "scalar_f32"});
    CHECK(r.status == 0);
    CHECK(r.out == "scalar_f32: F32 []\n42.5\n");
}

} // namespace values_test

#else  // no tool, or not POSIX

#if defined(_WIN32)
TEST_CASE("values: every case" * POSIX_ONLY("runs the tool in a child process through posix_spawn")) {}
#else
TEST_CASE("values: skipped") {
    MESSAGE("test_cli_values.cpp: skipped, SAFETENSORS_CLI_EXE is not defined (build with "
            "SAFETENSORS_BUILD_EXAMPLES=ON to test the safetensors tool)");
}
#endif

#endif
