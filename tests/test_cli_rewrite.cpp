// Tests for `safetensors rewrite`'s editing options (tools/cli/rewrite.hpp), run as a child
// process: --to-dtype against NumPy's astype rounding (the committed tables), --filter,
// --exclude and --rename through `inspect --json`, sharded input, --max-shard-size output, and
// the progress line. The options rewrite shares with safetensors-rewrite 0.1 are in
// test_writer.cpp.
#include <doctest/doctest.h>

#include "support/platform.hpp"

#if defined(SAFETENSORS_CLI_EXE) && !defined(_WIN32)

#include <safetensors/safetensors.hpp>

#include <nlohmann/json.hpp>

#include "support/bytes.hpp"
#include "support/cli.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

namespace st = safetensors;
using test_support::data_path;
using test_support::run_result;
using test_support::shown;
using test_support::temp_dir;

run_result run_cli(const std::vector<std::string>& args) { return test_support::run_program(SAFETENSORS_CLI_EXE, args); }

template <class T>
std::vector<T> table_of(const std::string& name) {
    const auto bytes = test_support::read_all(test_support::dtype_table_path(name));
    std::vector<T> out(bytes.size() / sizeof(T));
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
    return out;
}

template <class T>
std::vector<T> values_of(const st::tensor_view& view) {
    std::vector<T> out(static_cast<std::size_t>(view.element_count()));
    if (!out.empty()) std::memcpy(out.data(), view.data(), out.size() * sizeof(T));
    return out;
}

// What --to-dtype converts: the floating-point dtypes (F64 and the ones to_f32 decodes exactly).
bool is_floating(st::dtype t) {
    using st::dtype;
    for (dtype i : {dtype::I8, dtype::U8, dtype::I16, dtype::U16, dtype::I32, dtype::U32, dtype::I64, dtype::U64})
        if (t == i) return false;
    return t == dtype::F64 || (t != dtype::BOOL && t != dtype::C64 && st::can_convert(t, dtype::F32));
}

// NumPy's float32 -> float16 for NaN: sign, the top ten payload bits, never infinity's pattern.
std::uint16_t numpy_nan_f16(std::uint32_t bits) {
    auto h = static_cast<std::uint16_t>(0x7c00u + ((bits & 0x7fffffu) >> 13));
    if (h == 0x7c00u) ++h;
    return static_cast<std::uint16_t>(h | ((bits >> 16) & 0x8000u));
}

// The names of `inspect --json FILE`, with dtype and shape, in file order.
std::vector<std::string> inspect_rows(const std::string& path) {
    const run_result r = run_cli({"inspect", "--json", path});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    const auto report = nlohmann::ordered_json::parse(r.out);
    std::vector<std::string> rows;
    for (const auto& [name, t] : report["tensors"].items())
        rows.push_back(name + " " + t["dtype"].get<std::string>() + " " + t["shape"].dump());
    return rows;
}

} // namespace

TEST_CASE("rewrite --to-dtype: NumPy's astype rounding for F32, integers untouched") {
    temp_dir dir;
    // Every sample of the committed table: edge cases, then random bit patterns (NaNs included).
    const auto samples = table_of<std::uint32_t>("f32_samples.bin");
    const auto to_f16 = table_of<std::uint16_t>("f32_to_f16.bin");
    const auto to_bf16 = table_of<std::uint16_t>("f32_to_bf16.bin");
    REQUIRE(samples.size() == to_f16.size());
    const std::vector<std::int32_t> ints = {-7, 0, 1, 2147483647};
    const std::vector<std::uint8_t> mask = {1, 0, 1};
    const std::string in = dir.file("in.safetensors");
    st::save(in, {st::tensor_ref("x", st::dtype::F32, {samples.size()}, samples.data(), samples.size() * 4),
                  st::tensor_ref("i", st::dtype::I32, {ints.size()}, ints),
                  st::tensor_ref("m", st::dtype::BOOL, {mask.size()}, mask)});

    const std::string half = dir.file("half.safetensors");
    run_result r = run_cli({"rewrite", in, half, "--to-dtype", "F16", "--no-sync"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    const st::file f = st::open(half);
    CHECK(f["x"].dtype() == st::dtype::F16);
    const auto got = values_of<std::uint16_t>(f["x"]);
    std::size_t mismatches = 0, nans = 0;
    for (std::size_t k = 0; k < samples.size(); ++k) {
        float v;
        std::memcpy(&v, &samples[k], 4);
        // torch's table and NumPy agree except on NaN payloads, where NumPy keeps the bits.
        const std::uint16_t want = std::isnan(v) ? numpy_nan_f16(samples[k]) : to_f16[k];
        nans += std::isnan(v);
        mismatches += got[k] != want;
    }
    CHECK(nans > 0);
    CHECK(mismatches == 0);
    CHECK(f["i"].dtype() == st::dtype::I32);
    CHECK(values_of<std::int32_t>(f["i"]) == ints);
    CHECK(f["m"].dtype() == st::dtype::BOOL);
    CHECK(values_of<std::uint8_t>(f["m"]) == mask);

    // BF16 (round to nearest even; NaN by NaN-ness) and back to F32 (exact).
    const std::string brain = dir.file("bf16.safetensors");
    r = run_cli({"rewrite", in, brain, "--to-dtype", "BF16", "--no-sync"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    const auto bf = values_of<std::uint16_t>(st::open(brain)["x"]);
    mismatches = 0;
    for (std::size_t k = 0; k < samples.size(); ++k) {
        const bool nan = (samples[k] & 0x7fffffffu) > 0x7f800000u;
        mismatches += nan ? (bf[k] & 0x7fffu) <= 0x7f80u : bf[k] != to_bf16[k];
    }
    CHECK(mismatches == 0);
    const std::string back = dir.file("back.safetensors");
    r = run_cli({"rewrite", brain, back, "--to-dtype", "F32", "--no-sync"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    const auto wide = values_of<std::uint32_t>(st::open(back)["x"]);
    mismatches = 0;
    for (std::size_t k = 0; k < bf.size(); ++k) mismatches += wide[k] != (std::uint32_t{bf[k]} << 16);
    CHECK(mismatches == 0);
}

TEST_CASE("rewrite --to-dtype: every small float converts exactly; F64 rounds once") {
    temp_dir dir;
    const std::string all = data_path("reference/valid/all_dtypes.safetensors");
    const std::string out = dir.file("f32.safetensors");
    run_result r = run_cli({"rewrite", all, out, "--to-dtype", "F32", "--no-sync"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    const st::file in = st::open(all), f = st::open(out);
    REQUIRE(in.size() == f.size());
    for (const st::tensor_view& v : in) {
        CAPTURE(v.name());
        const st::tensor_view w = f[v.name()];
        CHECK(w.shape().size() == v.shape().size());
        if (!is_floating(v.dtype())) {
            CHECK(w.dtype() == v.dtype());
            CHECK(std::equal(w.bytes().begin(), w.bytes().end(), v.bytes().begin(), v.bytes().end()));
            continue;
        }
        CHECK(w.dtype() == st::dtype::F32);
        const std::vector<float> want = st::to_f32(v);
        const auto got = values_of<float>(w);
        REQUIRE(got.size() == want.size());
        for (std::size_t k = 0; k < got.size(); ++k)
            CHECK((got[k] == want[k] || (std::isnan(got[k]) && std::isnan(want[k]))));
    }

    // F64 -> F16 rounds the double once: 1 + 2^-11 + 2^-40 is just above the tie between 1 and
    // 1 + 2^-10, so it rounds up; through F32 first it would tie and round to even (down).
    const std::vector<double> doubles = {1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40), 65520.0, -0.0, 1e-9};
    const std::string d = dir.file("f64.safetensors");
    st::save(d, {st::tensor_ref("d", st::dtype::F64, {doubles.size()}, doubles)});
    r = run_cli({"rewrite", d, out, "--to-dtype", "F16", "--no-sync"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(values_of<std::uint16_t>(st::open(out)["d"]) == std::vector<std::uint16_t>{0x3c01, 0x7c00, 0x8000, 0x0000});
}

TEST_CASE("rewrite --filter, --exclude and --rename round-trip through inspect --json") {
    temp_dir dir;
    const std::string model = data_path("reference/model/gpt2_tiny/model.safetensors");
    const std::string out = dir.file("out.safetensors");
    const run_result r = run_cli({"rewrite", model, out, "--filter", "^transformer\\.h\\.", "--exclude", "bias$",
                                  "--rename", "^transformer\\.h\\.(\\d+)\\.=layers.$1.", "--rename", "\\.attn\\.=.self_attn.",
                                  "--no-sync"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    std::vector<std::string> expected;
    const st::file in = st::open(model);
    for (const auto& row : inspect_rows(model)) {
        const std::string name = row.substr(0, row.find(' '));
        if (name.rfind("transformer.h.", 0) != 0 || name.size() < 4 || name.compare(name.size() - 4, 4, "bias") == 0)
            continue;
        std::string renamed = "layers." + name.substr(14);
        const auto at = renamed.find(".attn.");
        if (at != std::string::npos) renamed.replace(at, 6, ".self_attn.");
        expected.push_back(renamed + row.substr(row.find(' ')));
    }
    REQUIRE(!expected.empty());
    std::vector<std::string> got = inspect_rows(out);
    std::sort(expected.begin(), expected.end());
    std::sort(got.begin(), got.end());
    CHECK(got == expected);
    const st::file f = st::open(out);
    const auto a = in["transformer.h.0.attn.c_attn.weight"].bytes();
    const auto b = f["layers.0.self_attn.c_attn.weight"].bytes();
    CHECK(std::equal(a.begin(), a.end(), b.begin(), b.end()));
}

TEST_CASE("rewrite: a sharded checkpoint in, one file or shards out") {
    temp_dir dir;
    const std::string sharded = data_path("reference/model/gpt2_tiny_sharded");
    const st::file single = st::open(data_path("reference/model/gpt2_tiny/model.safetensors"));
    const auto same_tensors = [&](const auto& checkpoint) {
        std::size_t n = 0;
        for (const st::tensor_view& v : single) {
            CAPTURE(v.name());
            const st::tensor_view w = checkpoint.tensor(v.name());
            CHECK(w.dtype() == v.dtype());
            CHECK(std::equal(w.bytes().begin(), w.bytes().end(), v.bytes().begin(), v.bytes().end()));
            ++n;
        }
        CHECK(n == checkpoint.size());
    };

    const std::string one = dir.file("one.safetensors");
    run_result r = run_cli({"rewrite", sharded, one, "--no-sync"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    same_tensors(st::open(one));
    CHECK(st::open(one).metadata()->at("format") == "pt");  // the shards' own metadata

    const std::string folder = dir.file("resharded");
    r = run_cli({"rewrite", one, folder, "--max-shard-size", "40KB", "--no-sync", "--progress"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.err.find("rewriting [####################] 100%") != std::string::npos);
    const st::sharded_file resharded = st::open_sharded(folder);
    resharded.validate();
    same_tensors(resharded);
    CHECK(resharded.shard_count() > 1);
    CHECK(resharded.shard_names().front() ==
          "model-00001-of-0000" + std::to_string(resharded.shard_count()) + ".safetensors");
    for (std::size_t s = 0; s < resharded.shard_count(); ++s) {
        const auto& shard = resharded.shard(s);
        CHECK((shard.header().data_size() <= 40000 || shard.size() == 1));
    }
    CHECK(resharded.total_size() == std::optional<std::uint64_t>(148480));
    CHECK(resharded.metadata_json()->at("total_parameters") == 37120);

    // Sharded in, sharded out, through the index file; a limit above the total gives one file.
    const std::string whole = dir.file("whole");
    r = run_cli({"rewrite", sharded + "/model.safetensors.index.json", whole, "--max-shard-size", "1GB", "--no-sync"});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    same_tensors(st::open(whole + "/model.safetensors"));
    CHECK(!st::detail::is_directory(whole + "/model.safetensors.index.json"));

    r = run_cli({"rewrite", one, "-", "--max-shard-size", "1GB"});
    CHECK(r.status == 2);
    CHECK(r.err == "error: --max-shard-size needs a folder as OUT, not \"-\"\n");
}

#else  // no tool, or not POSIX

#if defined(_WIN32)
TEST_CASE("rewrite --to-dtype: every case" * POSIX_ONLY("runs the tool in a child process through posix_spawn")) {}
#else
TEST_CASE("rewrite --to-dtype: skipped") {
    MESSAGE("test_cli_rewrite.cpp: skipped, SAFETENSORS_CLI_EXE is not defined (build with SAFETENSORS_BUILD_EXAMPLES=ON)");
}
#endif

#endif
