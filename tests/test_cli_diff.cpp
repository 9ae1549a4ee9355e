// Tests for `safetensors diff` (tools/cli/diff.hpp, tools/cli/compare.hpp), run as a child
// process with its output and exit status captured:
//   - a checkpoint equals its sharded and re-sharded copies (exit 0);
//   - one changed element is found and named (exit 1), in text, JSON and --quiet;
//   - names only in A or B, dtype, shape and metadata changes;
//   - --atol/--rtol, NaN at the same position, -0 and +0, inf, exact 64-bit integers;
//   - errors exit 2 with one error line.
// POSIX only (posix_spawn); the build passes SAFETENSORS_CLI_EXE when it builds the tool.
#include <doctest/doctest.h>

#include "support/platform.hpp"

#if defined(SAFETENSORS_CLI_EXE) && !defined(_WIN32)

#include <safetensors/safetensors.hpp>

#include <nlohmann/json.hpp>

#include "support/bytes.hpp"
#include "support/cli.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#ifndef SAFETENSORS_TEST_DATA_DIR
#error "SAFETENSORS_TEST_DATA_DIR must be defined by the build"
#endif

namespace cli_diff_test {

namespace st = safetensors;
using json = nlohmann::json;
using test_support::run_result;
using test_support::check_error_shape;
using test_support::lines_of;
using test_support::shown;

const std::string model = std::string(SAFETENSORS_TEST_DATA_DIR) + "/reference/model/";

run_result diff(std::vector<std::string> args) {
    args.insert(args.begin(), "diff");
    return test_support::run_program(SAFETENSORS_CLI_EXE, args);
}

st::write_options no_sync() {
    st::write_options o;
    o.sync = false;
    return o;
}

float f32_from_bits(std::uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

TEST_CASE("diff: a checkpoint equals its sharded and re-sharded copies") {
    run_result r = diff({model + "gpt2_tiny", model + "gpt2_tiny_sharded"});
    CHECK_MESSAGE(r.status == 0, shown(r));
    CHECK(r.out == "equal: 28 tensors\n");
    CHECK(r.err.empty());

    // Re-sharded into 8 shards by rewrite: index against index (total_size and
    // total_parameters are left out of the index metadata), and single file against index.
    test_support::temp_dir dir;
    const std::string resharded = dir.file("resharded");
    r = test_support::run_program(SAFETENSORS_CLI_EXE, {"rewrite", "--no-sync", "--max-shard-size", "20KB",
                                                        model + "gpt2_tiny_sharded", resharded});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    r = diff({model + "gpt2_tiny_sharded/model.safetensors.index.json", resharded});
    CHECK_MESSAGE(r.status == 0, shown(r));
    r = diff({"--json", model + "gpt2_tiny/model.safetensors", resharded});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    const json out = json::parse(r.out);
    CHECK(out.at("equal") == true);
    CHECK(out.at("only_in_a").empty());
    CHECK(out.at("only_in_b").empty());
    CHECK(out.at("changed").empty());
    CHECK(out.at("metadata") == json::parse(R"({"only_in_a": {}, "only_in_b": {}, "changed": {}})"));
    CHECK(out.at("index_metadata").is_null());  // one side is not an index

    // A key of its own in the index metadata: a difference between two indexes, not against
    // a single file (which has nowhere to keep it).
    json index = json::parse(test_support::text_of(test_support::read_all(resharded + "/model.safetensors.index.json")));
    index["metadata"]["note"] = "re-sharded";
    test_support::write_all(resharded + "/model.safetensors.index.json", test_support::bytes_of(index.dump(2)));
    r = diff({model + "gpt2_tiny_sharded", resharded});
    CHECK_MESSAGE(r.status == 1, shown(r));
    CHECK(lines_of(r.out) ==
          std::vector<std::string>{"index metadata only in B: \"note\" = \"re-sharded\"",
                                   "different: 0 only in A, 0 only in B, 0 of 28 in both changed, 1 metadata difference"});
    r = diff({model + "gpt2_tiny", resharded});
    CHECK_MESSAGE(r.status == 0, shown(r));
}

TEST_CASE("diff: one changed element is found and named") {
    test_support::temp_dir dir;
    const std::string original = model + "gpt2_tiny/model.safetensors";
    const std::string changed = dir.file("changed.safetensors");
    const std::string name = "transformer.h.1.mlp.c_fc.weight";
    std::vector<std::byte> bytes = test_support::read_all(original);
    std::uint64_t offset = 0, elements = 0;
    {
        const st::file f = st::open(original);
        offset = f.tensor(name).source_offset() + 7 * sizeof(float);  // element 7
        elements = f.tensor(name).element_count();
    }
    float before, after;
    std::memcpy(&before, bytes.data() + offset, sizeof before);
    after = before + 0.5f;
    std::memcpy(bytes.data() + offset, &after, sizeof after);
    test_support::write_all(changed, bytes);

    run_result r = diff({original, changed});
    CHECK_MESSAGE(r.status == 1, shown(r));
    CHECK(r.err.empty());
    const std::vector<std::string> lines = lines_of(r.out);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].rfind("values differ: " + name + ": 1 of " + std::to_string(elements) +
                             " elements differ, max abs diff 0.5",
                         0) == 0);
    CHECK(lines[1] == "different: 0 only in A, 0 only in B, 1 of 28 in both changed, 0 metadata differences");

    r = diff({"--json", original, changed});
    CHECK_MESSAGE(r.status == 1, shown(r));
    const json out = json::parse(r.out);
    CHECK(out.at("equal") == false);
    REQUIRE(out.at("changed").size() == 1);
    const json& t = out.at("changed").at(name);
    CHECK(t.at("values_equal") == false);
    CHECK(t.at("elements") == elements);
    CHECK(t.at("mismatched") == 1);
    const double abs = static_cast<double>(after) - static_cast<double>(before);
    CHECK(t.at("max_abs_diff").get<double>() == abs);
    CHECK(t.at("max_rel_diff").get<double>() == abs / std::abs(static_cast<double>(after)));
    CHECK_FALSE(t.contains("dtype"));

    r = diff({"--quiet", changed, original});
    CHECK_MESSAGE(r.status == 1, shown(r));
    CHECK(r.out.empty());
    CHECK(r.err.empty());
}

TEST_CASE("diff: names, dtypes, shapes and metadata") {
    test_support::temp_dir dir;
    const std::vector<float> six = {1, 2, 3, 4, 5, 6};
    const std::vector<double> six_f64 = {1, 2, 3, 4, 5, 6};
    const std::vector<std::int32_t> ints_a = {1, 2}, ints_b = {1, 3};
    const std::string a = dir.file("a.safetensors"), b = dir.file("b.safetensors");
    st::save(a,
             {{"same", st::dtype::F32, {2, 3}, six},
              {"to_f64", st::dtype::F32, {2, 3}, six},
              {"reshaped", st::dtype::F32, {6}, six},
              {"ints", st::dtype::I32, {2}, ints_a},
              {"gone", st::dtype::F32, {6}, six}},
             {{"format", "pt"}, {"step", "1"}, {"old", "x"}}, no_sync());
    st::save(b,
             {{"same", st::dtype::F32, {2, 3}, six},
              {"to_f64", st::dtype::F64, {2, 3}, six_f64},
              {"reshaped", st::dtype::F32, {2, 3}, six},
              {"ints", st::dtype::I32, {2}, ints_b},
              {"new\x01name", st::dtype::F32, {6}, six}},
             {{"format", "pt"}, {"step", "2"}, {"new", "y"}}, no_sync());

    run_result r = diff({a, b});
    CHECK_MESSAGE(r.status == 1, shown(r));
    CHECK(lines_of(r.out) == std::vector<std::string>{
                                 "only in A: gone",
                                 "only in B: new\\x01name",  // escaped for the terminal
                                 "values differ: ints: 1 of 2 elements differ, max abs diff 1, max rel diff 0.333333",
                                 "shape changed: reshaped: [6] -> [2, 3]",
                                 "dtype changed: to_f64: F32 -> F64 (values equal)",
                                 "metadata only in A: \"old\" = \"x\"",
                                 "metadata only in B: \"new\" = \"y\"",
                                 "metadata changed: \"step\": \"1\" -> \"2\"",
                                 "different: 1 only in A, 1 only in B, 3 of 4 in both changed, 3 metadata differences"});

    r = diff({"--json", a, b});
    CHECK_MESSAGE(r.status == 1, shown(r));
    const json out = json::parse(r.out);
    CHECK(out.at("equal") == false);
    CHECK(out.at("only_in_a") == json::array({"gone"}));
    CHECK(out.at("only_in_b") == json::array({"new\x01name"}));
    const json& changed = out.at("changed");
    CHECK(changed.size() == 3);
    CHECK(changed.at("reshaped") == json::parse(R"({"shape": [[6], [2, 3]]})"));
    CHECK(changed.at("to_f64").at("dtype") == json::array({"F32", "F64"}));
    CHECK(changed.at("to_f64").at("values_equal") == true);
    CHECK(changed.at("ints").at("mismatched") == 1);
    CHECK(out.at("metadata") ==
          json::parse(R"({"only_in_a": {"old": "x"}, "only_in_b": {"new": "y"}, "changed": {"step": ["1", "2"]}})"));
}

TEST_CASE("diff: --atol and --rtol, NaN, -0, inf and 64-bit integers") {
    test_support::temp_dir dir;
    const float inf = std::numeric_limits<float>::infinity();
    // Element 0 differs by 1.0005f - 1 (about 5.0e-4); the rest are equal by value although
    // NaN payloads and the sign of zero make the bytes differ.
    const std::vector<float> va = {1.0f, 2.0f, f32_from_bits(0x7fc00000), inf, -0.0f, -inf};
    const std::vector<float> vb = {1.0005f, 2.0f, f32_from_bits(0x7fc00001), inf, 0.0f, -inf};
    const std::string a = dir.file("a.safetensors"), b = dir.file("b.safetensors");
    st::save(a, {{"t", st::dtype::F32, {6}, va}}, {}, no_sync());
    st::save(b, {{"t", st::dtype::F32, {6}, vb}}, {}, no_sync());

    CHECK(diff({"-q", a, b}).status == 1);
    CHECK(diff({"-q", "--atol", "1e-3", a, b}).status == 0);
    CHECK(diff({"-q", "--atol", "1e-4", a, b}).status == 1);
    CHECK(diff({"-q", "--rtol=1e-3", a, b}).status == 0);
    CHECK(diff({"-q", "--rtol=1e-4", "--atol=1e-4", a, b}).status == 1);

    // NaN against a number and inf against a finite value are never within tolerance (the
    // difference shows as "inf"); 2^53 and 2^53 + 1 are told apart (float64 cannot).
    const std::vector<float> na = {f32_from_bits(0x7fc00000), 1.0f, inf}, nb = {1.0f, 1.0f, 3.0f};
    const std::vector<std::int64_t> ia = {std::int64_t{1} << 53}, ib = {(std::int64_t{1} << 53) + 1};
    const std::vector<std::int64_t> same = {-5, std::numeric_limits<std::int64_t>::min()};
    st::save(a, {{"n", st::dtype::F32, {3}, na}, {"i", st::dtype::I64, {1}, ia}, {"s", st::dtype::I64, {2}, same}}, {},
             no_sync());
    st::save(b, {{"n", st::dtype::F32, {3}, nb}, {"i", st::dtype::I64, {1}, ib}, {"s", st::dtype::I64, {2}, same}}, {},
             no_sync());
    run_result r = diff({"--json", "--atol", "1e300", a, b});
    CHECK_MESSAGE(r.status == 1, shown(r));
    const json out = json::parse(r.out);
    CHECK(out.at("changed").size() == 1);  // i: |diff| 1 is within --atol 1e300
    const json& n = out.at("changed").at("n");
    CHECK(n.at("mismatched") == 2);
    CHECK(n.at("max_abs_diff") == "inf");
    CHECK(n.at("max_rel_diff") == "inf");
    r = diff({"--json", a, b});
    CHECK_MESSAGE(r.status == 1, shown(r));
    const json exact = json::parse(r.out);
    const json& i = exact.at("changed").at("i");
    CHECK(i.at("mismatched") == 1);
    CHECK(i.at("max_abs_diff") == 1.0);
}

TEST_CASE("diff: errors exit 2 with one error line") {
    const std::string file = model + "gpt2_tiny/model.safetensors";
    run_result r = diff({file, model + "no_such_file.safetensors"});
    check_error_shape(r, 2);
    CHECK_MESSAGE(r.err.find("no_such_file.safetensors") != std::string::npos, r.err);
    r = diff({"--atol", "-1", file, file});
    check_error_shape(r, 2);
    CHECK(r.err == "error: --atol needs a finite number >= 0, got \"-1\"\n");
    check_error_shape(diff({"--json", "--quiet", file, file}), 2);
    check_error_shape(diff({file}), 2);
}

} // namespace cli_diff_test

#else  // no tool, or not POSIX

#if defined(_WIN32)
TEST_CASE("diff: every case" * POSIX_ONLY("runs the tool in a child process through posix_spawn")) {}
#else
TEST_CASE("diff: skipped") {
    MESSAGE("test_cli_diff.cpp: skipped, SAFETENSORS_CLI_EXE is not defined (build with "
            "SAFETENSORS_BUILD_EXAMPLES=ON to test the safetensors tool)");
}
#endif

#endif
