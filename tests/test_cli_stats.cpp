// Tests for `safetensors stats` (tools/cli/stats.hpp), run as a subprocess:
//   - --json on every reference fixture (valid/, fnuz, model/gpt2_tiny and the sharded one, in
//     one run) agrees with float64 two-pass statistics computed here from values decoded
//     independently of the tool: the manifests' values where recorded, else the committed
//     dtype tables (F16, BF16, F8, F6, F4) and direct reads; counts exact;
//   - accuracy on hard cases (a large offset, values near the largest double), and the same
//     output whatever --threads;
//   - the table, --filter, several FILEs, --progress, usage errors.
// POSIX only (posix_spawn).
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
#include <map>
#include <string>
#include <vector>

namespace stats_test {

namespace st = safetensors;
using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;
using test_support::run_result;
using test_support::check_error_shape;
using test_support::lines_of;
using test_support::shown;
using test_support::raw_bytes_of;
using test_support::raw_tensor;
using test_support::save_raw;

const std::string reference = std::string(SAFETENSORS_TEST_DATA_DIR) + "/reference/";

run_result run_stats(std::vector<std::string> args) {
    args.insert(args.begin(), "stats");
    return test_support::run_program(SAFETENSORS_CLI_EXE, args);
}

// A manifest or table value (number, true/false, "nan", "inf", "-inf") as a double.
double as_double(const json& v) {
    if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
    if (v.is_string()) {
        const std::string s = v.get<std::string>();
        if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
        return s == "-inf" ? -HUGE_VAL : HUGE_VAL;
    }
    return v.get<double>();
}

// ---- Decoding without the tool ------------------------------------------------------------

// Every code of dtype t (F8, F6 or F4) as the committed table decodes it.
const std::vector<double>& small_float_table(st::dtype t) {
    static std::map<st::dtype, std::vector<double>> cache;
    auto it = cache.find(t);
    if (it != cache.end()) return it->second;
    const json table = test_support::read_json(reference + "dtype_tables/" + std::string(st::to_string(t)) + ".json");
    std::vector<double> values(table.size());
    for (std::size_t c = 0; c < values.size(); ++c) values[c] = as_double(table.at(std::to_string(c)));
    return cache.emplace(t, std::move(values)).first->second;
}

// F16 or BF16: the committed float32 bit patterns, indexed by code.
const std::vector<float>& half_table(st::dtype t) {
    static std::map<st::dtype, std::vector<float>> cache;
    auto it = cache.find(t);
    if (it != cache.end()) return it->second;
    const auto raw = test_support::read_all(reference + "dtype_tables/" + (t == st::dtype::F16 ? "f16_to_f32.bin" : "bf16_to_f32.bin"));
    REQUIRE(raw.size() == 65536 * 4);
    std::vector<float> values(65536);
    std::memcpy(values.data(), raw.data(), raw.size());
    return cache.emplace(t, std::move(values)).first->second;
}

template <class T>
T load(const std::byte* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// A tensor's elements as doubles (two per element for C64), read from its bytes.
std::vector<double> decode(const st::tensor_view& view) {
    const std::byte* p = view.data();
    const std::uint64_t n = view.element_count();
    std::vector<double> out;
    const st::dtype t = view.dtype();
    for (std::uint64_t i = 0; i < n; ++i) {
        switch (t) {
            case st::dtype::F64: out.push_back(load<double>(p + 8 * i)); break;
            case st::dtype::F32: out.push_back(load<float>(p + 4 * i)); break;
            case st::dtype::C64:
                out.push_back(load<float>(p + 8 * i));
                out.push_back(load<float>(p + 8 * i + 4));
                break;
            case st::dtype::F16:
            case st::dtype::BF16: out.push_back(half_table(t)[load<std::uint16_t>(p + 2 * i)]); break;
            case st::dtype::I64: out.push_back(static_cast<double>(load<std::int64_t>(p + 8 * i))); break;
            case st::dtype::U64: out.push_back(static_cast<double>(load<std::uint64_t>(p + 8 * i))); break;
            case st::dtype::I32: out.push_back(load<std::int32_t>(p + 4 * i)); break;
            case st::dtype::U32: out.push_back(load<std::uint32_t>(p + 4 * i)); break;
            case st::dtype::I16: out.push_back(load<std::int16_t>(p + 2 * i)); break;
            case st::dtype::U16: out.push_back(load<std::uint16_t>(p + 2 * i)); break;
            case st::dtype::I8: out.push_back(load<std::int8_t>(p + i)); break;
            case st::dtype::U8: out.push_back(load<std::uint8_t>(p + i)); break;
            case st::dtype::BOOL: out.push_back(load<std::uint8_t>(p + i) != 0 ? 1.0 : 0.0); break;
            case st::dtype::F4: {
                const auto byte = load<std::uint8_t>(p + i / 2);
                out.push_back(small_float_table(t)[i % 2 == 0 ? byte & 15u : byte >> 4]);
                break;
            }
            case st::dtype::F6_E2M3:
            case st::dtype::F6_E3M2: {
                const std::byte* g = p + 3 * (i / 4);
                const std::uint32_t v = load<std::uint8_t>(g) | (std::uint32_t{load<std::uint8_t>(g + 1)} << 8) |
                                        (std::uint32_t{load<std::uint8_t>(g + 2)} << 16);
                out.push_back(small_float_table(t)[(v >> (6 * (i % 4))) & 63u]);
                break;
            }
            default: out.push_back(small_float_table(t)[load<std::uint8_t>(p + i)]); break;  // the F8 formats
        }
    }
    return out;
}

// A manifest's "values" (flat; [re, im] for complex) as doubles.
std::vector<double> from_manifest(const json& values) {
    std::vector<double> out;
    for (const json& v : values) {
        if (v.is_array()) {
            out.push_back(as_double(v[0]));
            out.push_back(as_double(v[1]));
        } else {
            out.push_back(as_double(v));
        }
    }
    return out;
}

// ---- The expected statistics: float64, two passes ---------------------------------------------

struct expected {
    bool has_moments = false;
    double min = 0, max = 0, mean = 0, std = 0, abs_max = 0;
    std::uint64_t nan = 0, inf = 0, zeros = 0;
};

expected statistics(const std::vector<double>& values, bool complex) {
    expected e;
    if (complex) {
        for (std::size_t i = 0; i + 1 < values.size(); i += 2) {
            const double re = values[i], im = values[i + 1];
            if (std::isnan(re) || std::isnan(im)) ++e.nan;
            else if (std::isinf(re) || std::isinf(im)) ++e.inf;
            else if (re == 0 && im == 0) ++e.zeros;
        }
        return e;
    }
    std::vector<double> finite;
    for (double v : values) {
        if (std::isnan(v)) ++e.nan;
        else if (std::isinf(v)) ++e.inf;
        else {
            if (v == 0) ++e.zeros;
            finite.push_back(v);
        }
    }
    if (finite.empty()) return e;
    e.has_moments = true;
    e.min = *std::min_element(finite.begin(), finite.end());
    e.max = *std::max_element(finite.begin(), finite.end());
    for (double v : finite) e.abs_max = std::max(e.abs_max, std::fabs(v));
    // Compensated sums: a plain float64 sum of 2e5 values near 1e9 misses the mean by ~1e-5,
    // enough to move the standard deviation of the "offset" case by 1e-8 relative.
    const auto sum = [&finite](auto term) {
        double total = 0, c = 0;
        for (double v : finite) {
            const double y = term(v), t = total + y;
            c += std::fabs(total) >= std::fabs(y) ? (total - t) + y : (y - t) + total;
            total = t;
        }
        return total + c;
    };
    e.mean = sum([](double v) { return v; }) / static_cast<double>(finite.size());
    const double mean = e.mean;
    e.std = std::sqrt(sum([mean](double v) { return (v - mean) * (v - mean); }) / static_cast<double>(finite.size()));
    return e;
}

bool close(const json& got, double want, double relative, double absolute) {
    if (!got.is_number()) return false;
    return std::fabs(got.get<double>() - want) <= std::max(absolute, relative * std::fabs(want));
}

// One tensor's {"min", ...} against the expectation: min, max, abs_max exact (the same decoded
// values), mean and std within the tolerance, counts exact, null without finite values.
void check_tensor(const json& got, const expected& want, double relative = 1e-6, double absolute = 1e-9) {
    REQUIRE(got.is_object());
    CHECK(got.size() == 8);
    CHECK(got.at("nan").get<std::uint64_t>() == want.nan);
    CHECK(got.at("inf").get<std::uint64_t>() == want.inf);
    CHECK(got.at("zeros").get<std::uint64_t>() == want.zeros);
    if (!want.has_moments) {
        for (const char* key : {"min", "max", "mean", "std", "abs_max"}) CHECK(got.at(key).is_null());
        return;
    }
    CHECK(got.at("min").get<double>() == want.min);
    CHECK(got.at("max").get<double>() == want.max);
    CHECK(got.at("abs_max").get<double>() == want.abs_max);
    CHECK_MESSAGE(close(got.at("mean"), want.mean, relative, absolute), "mean ", got.at("mean").dump(), ", want ", want.mean);
    CHECK_MESSAGE(close(got.at("std"), want.std, relative, absolute), "std ", got.at("std").dump(), ", want ", want.std);
}

// Every tensor of an input, in the order the tool lists them (shard by shard, file order),
// with manifest values where given (name -> values).
void check_input(const ordered_json& got, const std::vector<st::tensor_view>& views, const json& recorded) {
    REQUIRE(got.is_object());
    CHECK(got.size() == views.size());
    auto it = got.begin();
    for (const st::tensor_view& view : views) {
        const std::string name(view.name());
        INFO("tensor: ", name);
        REQUIRE(it != got.end());
        CHECK(it.key() == name);
        ++it;
        const bool complex = view.dtype() == st::dtype::C64;
        const std::vector<double> values =
            recorded.contains(name) ? from_manifest(recorded[name]) : decode(view);
        REQUIRE(values.size() == view.element_count() * (complex ? 2 : 1));
        check_tensor(json::parse(got[name].dump()), statistics(values, complex));
    }
}

std::vector<st::tensor_view> views_of(const st::file& f) {
    std::vector<st::tensor_view> out;
    for (const st::tensor_view& v : f) out.push_back(v);
    return out;
}

TEST_CASE("stats: --json agrees with float64 statistics on every reference fixture") {
    const json manifest = test_support::read_json(reference + "valid/manifest.json");
    std::vector<std::string> files;
    for (auto it = manifest.begin(); it != manifest.end(); ++it) files.push_back(reference + "valid/" + it.key());
    files.push_back(reference + "valid/fnuz.safetensors");
    files.push_back(reference + "model/gpt2_tiny/model.safetensors");
    files.push_back(reference + "model/gpt2_tiny_sharded");
    std::vector<std::string> args = {"--json", "--threads", "3"};
    args.insert(args.end(), files.begin(), files.end());
    const run_result r = run_stats(args);
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.err.empty());
    const ordered_json out = ordered_json::parse(r.out);
    REQUIRE(out.size() == files.size());
    std::vector<std::string> keys;
    for (auto it = out.begin(); it != out.end(); ++it) keys.push_back(it.key());
    CHECK(keys == files);

    for (auto it = manifest.begin(); it != manifest.end(); ++it) {
        const std::string path = reference + "valid/" + it.key();
        INFO("fixture: ", path);
        json recorded = json::object();
        const json tensors = it.value().value("tensors", json::object());
        for (auto t = tensors.begin(); t != tensors.end(); ++t)
            if (t.value().contains("values")) recorded[t.key()] = t.value()["values"];
        const st::file f = st::open(path);
        check_input(out[path], views_of(f), recorded);
    }
    {
        json recorded = json::object();
        const json fnuz = test_support::read_json(reference + "valid/fnuz_manifest.json");
        for (auto t = fnuz.begin(); t != fnuz.end(); ++t) recorded[t.key()] = t.value()["values"];
        const std::string path = reference + "valid/fnuz.safetensors";
        INFO("fixture: ", path);
        const st::file f = st::open(path);
        check_input(out[path], views_of(f), recorded);
    }
    {
        const std::string path = reference + "model/gpt2_tiny/model.safetensors";
        INFO("fixture: ", path);
        const st::file f = st::open(path);
        check_input(out[path], views_of(f), json::object());
    }
    {
        const std::string path = reference + "model/gpt2_tiny_sharded";
        INFO("fixture: ", path);
        const st::sharded_file m = st::open_sharded(path);
        std::vector<st::tensor_view> views;
        for (std::size_t s = 0; s < m.shard_count(); ++s)
            for (const st::tensor_view& v : m.shard(s)) views.push_back(v);
        CHECK(views.size() == 28);
        check_input(out[path], views, json::object());
    }
}

TEST_CASE("stats: accurate on hard cases, and the same whatever --threads") {
    test_support::temp_dir dir;
    const std::string path = dir.file("hard.safetensors");
    // Deterministic pseudo-random numbers (a 64-bit LCG), so failures reproduce.
    std::uint64_t state = 42;
    const auto uniform = [&state] {
        state = state * 6364136223846793005u + 1442695040888963407u;
        return static_cast<double>(state >> 11) * 0x1p-53;
    };
    // A large offset: a sum of squares (one-pass textbook formula) would lose every digit.
    std::vector<double> offset(200000);
    for (double& v : offset) v = 1e9 + uniform();
    std::vector<float> wide(300000);
    for (float& v : wide) v = static_cast<float>((uniform() - 0.3) * 1e4);
    std::vector<std::int64_t> big(5000);
    for (std::int64_t& v : big) v = static_cast<std::int64_t>((uniform() - 0.5) * 9e18);
    const double top = std::numeric_limits<double>::max();
    save_raw(path, {
                   {"offset", st::dtype::F64, {200000}, raw_bytes_of(offset)},
                   {"wide", st::dtype::F32, {300, 1000}, raw_bytes_of(wide)},
                   {"big_i64", st::dtype::I64, {5000}, raw_bytes_of(big)},
                   // Near the largest double: sums and squares overflow unless handled.
                   {"extreme", st::dtype::F64, {4}, raw_bytes_of(std::vector<double>{top, -top, top, -top})},
                   {"huge_same", st::dtype::F64, {3}, raw_bytes_of(std::vector<double>{top, top, top})},
                   {"non_finite", st::dtype::F32, {3},
                    raw_bytes_of(std::vector<float>{std::numeric_limits<float>::quiet_NaN(), HUGE_VALF, -HUGE_VALF})},
               });

    const run_result one = run_stats({"--json", "--threads", "1", path});
    const run_result four = run_stats({"--json", "--threads", "4", path});
    REQUIRE_MESSAGE(one.status == 0, shown(one));
    REQUIRE_MESSAGE(four.status == 0, shown(four));
    CHECK(one.out == four.out);  // each tensor is read by one thread: the same arithmetic
    const json out = json::parse(one.out);
    const st::file f = st::open(path);
    // 1e-9 relative against the float64 two-pass computation.
    for (const std::string name : {"offset", "wide", "big_i64"}) {
        INFO("tensor: ", name);
        check_tensor(out.at(name), statistics(decode(f.tensor(name)), false), 1e-9, 0);
    }
    CHECK(out.at("offset").at("std").get<double>() > 0.28);  // 1/sqrt(12) = 0.2887
    // The two-pass computation overflows here; the statistics are known.
    const json& extreme = out.at("extreme");
    CHECK(extreme.at("mean").get<double>() == 0);
    CHECK(std::fabs(extreme.at("std").get<double>() / top - 1) < 1e-9);
    CHECK(extreme.at("abs_max").get<double>() == top);
    const json& same = out.at("huge_same");
    CHECK(same.at("mean").get<double>() == top);
    CHECK(same.at("std").get<double>() == 0);
    const json& non_finite = out.at("non_finite");
    CHECK(non_finite.at("mean").is_null());
    CHECK(non_finite.at("nan") == 1);
    CHECK(non_finite.at("inf") == 2);
}

TEST_CASE("stats: the table, --filter, several FILEs and --progress") {
    test_support::temp_dir dir;
    const std::string path = dir.file("small.safetensors");
    save_raw(path, {
                   {"a", st::dtype::F32, {4}, raw_bytes_of(std::vector<float>{1, -2, std::numeric_limits<float>::quiet_NaN(), HUGE_VALF})},
                   {"b", st::dtype::I8, {3}, {0, 0, 5}},
                   {"c", st::dtype::C64, {2}, raw_bytes_of(std::vector<float>{0, 0, 1, std::numeric_limits<float>::quiet_NaN()})},
                   {"d", st::dtype::F32, {0}, {}},
               });
    run_result r = run_stats({path});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.err.empty());
    // The reference layout puts C64 before F32 before I8.
    const std::string table = "NAME  DTYPE  SHAPE  MIN  MAX     MEAN      STD  ABS_MAX  NAN  INF  ZEROS\n"
                              "c     C64    [2]      -    -        -        -        -    1    0      1\n"
                              "a     F32    [4]     -2    1     -0.5      1.5        2    1    1      0\n"
                              "d     F32    [0]      -    -        -        -        -    0    0      0\n"
                              "b     I8     [3]      0    5  1.66667  2.35702        5    0    0      2\n";
    CHECK(r.out == "file: " + path + "\n\n" + table);

    // --filter, and --progress (standard error only: the same standard output).
    r = run_stats({"--filter", "^[ab]$", "--progress", path});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.out == "file: " + path + "\n\n" +
                       "NAME  DTYPE  SHAPE  MIN  MAX     MEAN      STD  ABS_MAX  NAN  INF  ZEROS\n"
                       "a     F32    [4]     -2    1     -0.5      1.5        2    1    1      0\n"
                       "b     I8     [3]      0    5  1.66667  2.35702        5    0    0      2\n");
    CHECK(r.err.find("reading [") != std::string::npos);
    CHECK(r.err.back() == '\n');

    // Several FILEs: a table each, a blank line between; --json: {FILE: {NAME: ...}}.
    const std::string scalar = reference + "valid/single_scalar_f32.safetensors";
    r = run_stats({path, scalar});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.out.rfind("file: " + path + "\n\n" + table + "\nfile: " + scalar + "\n\n", 0) == 0);
    r = run_stats({"--json", "--filter", "^(b|scalar_f32)$", path, scalar});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.out == "{\n"
                   "  \"" + path + "\": {\n"
                   "    \"b\": {\"min\": 0, \"max\": 5, \"mean\": 1.6666666666666667, \"std\": 2.357022603955158, "
                   "\"abs_max\": 5, \"nan\": 0, \"inf\": 0, \"zeros\": 2}\n"
                   "  },\n"
                   "  \"" + scalar + "\": {\n"
                   "    \"scalar_f32\": {\"min\": 42.5, \"max\": 42.5, \"mean\": 42.5, \"std\": 0, \"abs_max\": 42.5, "
                   "\"nan\": 0, \"inf\": 0, \"zeros\": 0}\n"
                   "  }\n"
                   "}\n");
}

TEST_CASE("stats: reports longer than the 64 KiB the tool writes at a time come out whole") {
    // 3,000 one-element tensors holding their index: JSON and table of 200-350 KB.
    test_support::temp_dir dir;
    const std::string path = dir.file("many.safetensors");
    const std::string copy = dir.file("copy.safetensors");
    constexpr std::size_t count = 3000;
    std::vector<raw_tensor> tensors;
    for (std::size_t i = 0; i < count; ++i)
        tensors.push_back({"t" + std::to_string(i), st::dtype::F32, {1}, raw_bytes_of(std::vector<float>{static_cast<float>(i)})});
    save_raw(path, tensors);
    save_raw(copy, tensors);
    std::vector<std::size_t> order(count);  // the file's: one dtype, so by name
    for (std::size_t i = 0; i < count; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [](std::size_t a, std::size_t b) { return "t" + std::to_string(a) < "t" + std::to_string(b); });

    run_result one = run_stats({"--json", path});
    REQUIRE_MESSAGE(one.status == 0, shown(one));
    CHECK(one.out.size() > 4 * 65536);
    const ordered_json report = ordered_json::parse(one.out);
    REQUIRE(report.size() == count);
    std::size_t k = 0;
    for (auto it = report.begin(); it != report.end(); ++it, ++k) {
        const std::size_t i = order[k];
        INFO("row ", k, ": t", i);
        CHECK(it.key() == "t" + std::to_string(i));
        CHECK(json::parse(it.value().dump()) == json{{"min", i}, {"max", i}, {"mean", i}, {"std", 0}, {"abs_max", i},
                                                     {"nan", 0}, {"inf", 0}, {"zeros", i == 0 ? 1 : 0}});
    }
    // Two inputs: one object whose values are the single reports, indented by two spaces.
    run_result both = run_stats({"--json", path, copy});
    REQUIRE_MESSAGE(both.status == 0, shown(both));
    const std::string nested = test_support::nested_report(one.out);
    CHECK(both.out == "{\n  \"" + path + "\": " + nested + ",\n  \"" + copy + "\": " + nested + "\n}\n");

    // The table: every row in file order, its columns aligned under the headings.
    run_result table = run_stats({path});
    REQUIRE_MESSAGE(table.status == 0, shown(table));
    CHECK(table.out.size() > 3 * 65536);
    const std::vector<std::string> lines = lines_of(table.out);
    REQUIRE(lines.size() == count + 3);  // title, blank line, headings, the rows
    const std::string& heading = lines[2];
    CHECK(heading.rfind("NAME ", 0) == 0);
    for (k = 0; k < count; ++k) {
        const std::string& line = lines[k + 3];
        const std::string value = std::to_string(order[k]);
        INFO("row ", k, ": ", line);
        CHECK(line.rfind("t" + value + " ", 0) == 0);
        CHECK(line.size() == heading.size());  // ZEROS right-aligned, last
        CHECK(line.compare(heading.find("DTYPE"), 4, "F32 ") == 0);
        CHECK(line.substr(heading.find("MEAN") + 4 - value.size(), value.size() + 1) == value + " ");
    }
    run_result both_tables = run_stats({path, copy});
    REQUIRE_MESSAGE(both_tables.status == 0, shown(both_tables));
    CHECK(both_tables.out == table.out + "\nfile: " + copy + table.out.substr(table.out.find('\n')));
}

TEST_CASE("stats: usage errors and unreadable input") {
    const std::string path = reference + "valid/single_scalar_f32.safetensors";
    run_result r = run_stats({});
    check_error_shape(r, 2);
    r = run_stats({"--threads", "0", path});
    check_error_shape(r, 2);
    CHECK(r.err == "error: --threads needs a whole number from 1 to 1024, got \"0\"\n");
    r = run_stats({"--progress", "--no-progress", path});
    check_error_shape(r, 2);
    CHECK(r.err == "error: --progress and --no-progress cannot be used together\n");
    r = run_stats({"--filter", "(", path});
    check_error_shape(r, 2);
    CHECK(r.err.rfind("error: invalid --filter regular expression \"(\": ", 0) == 0);
    // A missing or malformed input is an error (exit 1) before anything is printed.
    r = run_stats({path, reference + "malformed/file_empty.safetensors"});
    check_error_shape(r, 1);
}

} // namespace stats_test

#else  // no tool, or not POSIX

#if defined(_WIN32)
TEST_CASE("stats: every case" * POSIX_ONLY("runs the tool in a child process through posix_spawn")) {}
#else
TEST_CASE("stats: skipped") {
    MESSAGE("test_cli_stats.cpp: skipped, SAFETENSORS_CLI_EXE is not defined (build with "
            "SAFETENSORS_BUILD_EXAMPLES=ON to test the safetensors tool)");
}
#endif

#endif
