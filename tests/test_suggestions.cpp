// "Did you mean": the bounded edit distance (detail/closest_name.hpp) against a plain
// Levenshtein, the closest-name search (ties, the bound), and the exact messages of the lookups
// that throw tensor_not_found, on a file, a sharded collection and 100,000 names.
#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>
#include <safetensors/detail/closest_name.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "support/bytes.hpp"
#include "support/errors.hpp"

namespace suggestions_test {

using safetensors::detail::bounded_edit_distance;
using safetensors::detail::closest_name;

// The textbook full table, for comparison.
std::size_t levenshtein(std::string_view a, std::string_view b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0u : 1u)});
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

std::optional<std::string_view> closest_in(const std::vector<std::string>& names, std::string_view query) {
    return closest_name(query, names.size(), [&](std::size_t k) { return std::string_view(names[k]); });
}

// A file of zero-size U8 tensors with these names, in this order.
safetensors::file file_of(const std::vector<std::string>& names) {
    std::string json = "{";
    for (const std::string& name : names)
        json += (json.size() > 1 ? "," : "") + std::string("\"") + name + "\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}";
    json += "}";
    return safetensors::file::from_bytes(test_support::make_file(json));
}

std::string missing_message(const safetensors::file& f, std::string_view name) {
    const auto e = test_support::error_of([&] { (void)f.tensor(name); });
    CHECK(e.code == safetensors::errc::tensor_not_found);
    return e.message;
}

static_assert(bounded_edit_distance("kitten", "sitting", 8) == 3);
static_assert(bounded_edit_distance("kitten", "sitting", 2) == 3);

} // namespace suggestions_test

TEST_CASE("bounded_edit_distance: the Levenshtein distance, or the bound plus one") {
    using namespace suggestions_test;
    CHECK(bounded_edit_distance("", "", 2) == 0);
    CHECK(bounded_edit_distance("", "ab", 2) == 2);
    CHECK(bounded_edit_distance("", "abc", 2) == 3);
    CHECK(bounded_edit_distance("abc", "", 2) == 3);
    CHECK(bounded_edit_distance("abc", "abc", 0) == 0);
    CHECK(bounded_edit_distance("abc", "abd", 0) == 1);
    CHECK(bounded_edit_distance("lm_head.weight", "lm_head.weights", 2) == 1);  // an insertion
    CHECK(bounded_edit_distance("lm_head.weights", "lm_head.weight", 2) == 1);  // a deletion
    CHECK(bounded_edit_distance("lm_head.weight", "lm_heat.weight", 2) == 1);   // a substitution
    CHECK(bounded_edit_distance("lm_haed.weight", "lm_head.weight", 2) == 2);   // a swap is two edits
    CHECK(bounded_edit_distance("xm_hexd.weighx", "lm_head.weight", 2) == 3);
    CHECK(bounded_edit_distance("xm_hexd.weighx", "lm_head.weight", 3) == 3);
    CHECK(bounded_edit_distance("a", "abcd", 2) == 3);                           // lengths 3 apart
    CHECK(bounded_edit_distance("abcdefgh", "stuvwxyz", 2) == 3);
    // Bounds above max_bounded_distance count as it.
    CHECK(bounded_edit_distance("aaaaaaaaaaaa", "bbbbbbbbbbbb", 100) == safetensors::detail::max_bounded_distance + 1);
    // One edit in the middle of long names.
    const std::string a(5000, 'x');
    std::string b = a;
    b[2500] = 'y';
    CHECK(bounded_edit_distance(a, b, 2) == 1);
    b.insert(100, "z");
    CHECK(bounded_edit_distance(a, b, 2) == 2);

    // Every pair of short strings over a small alphabet, against the full table, for each bound.
    std::mt19937 rng(12345);
    const auto random_string = [&rng] {
        std::string s(rng() % 9, 'a');
        for (char& c : s) c = static_cast<char>('a' + rng() % 3);
        return s;
    };
    for (int trial = 0; trial < 3000; ++trial) {
        const std::string x = random_string(), y = random_string();
        const std::size_t full = levenshtein(x, y);
        for (std::size_t bound = 0; bound <= 4; ++bound) {
            CAPTURE(x);
            CAPTURE(y);
            CAPTURE(bound);
            CHECK(bounded_edit_distance(x, y, bound) == std::min(full, bound + 1));
        }
    }
}

TEST_CASE("closest_name: within 2 edits, the first in the given order among ties") {
    using namespace suggestions_test;
    const std::vector<std::string> names = {"a.bias", "a.weight", "b.weight", "layer.10.weight"};
    CHECK(closest_in(names, "c.weight") == std::optional<std::string_view>("a.weight"));  // a tie: the first
    CHECK(closest_in(names, "b.weigth") == std::optional<std::string_view>("b.weight"));
    CHECK(closest_in(names, "a.bias") == std::optional<std::string_view>("a.bias"));       // present: itself
    CHECK(closest_in(names, "layer.1.weight") == std::optional<std::string_view>("layer.10.weight"));
    CHECK(closest_in(names, "a.bia") == std::optional<std::string_view>("a.bias"));
    CHECK(closest_in(names, "xyz.weight") == std::nullopt);  // 3 edits from each
    CHECK(closest_in(names, "") == std::nullopt);
    CHECK(closest_in({}, "a.bias") == std::nullopt);
    // A closer name later in the order wins over an earlier one further away.
    CHECK(closest_in({"ab.weight", "abc.weight"}, "abc.weigh") == std::optional<std::string_view>("abc.weight"));
}

TEST_CASE("file::tensor: the message suggests the closest name") {
    using namespace suggestions_test;
    // File order b, a; sorted order a, b: the tie goes to the bytewise first.
    const safetensors::file f = file_of({"b.weight", "a.weight", "lm_head.weight"});
    CHECK(missing_message(f, "c.weight") == "no tensor named \"c.weight\" in \"buffer\" (did you mean \"a.weight\"?)");
    CHECK(missing_message(f, "lm_haed.weight") ==
          "no tensor named \"lm_haed.weight\" in \"buffer\" (did you mean \"lm_head.weight\"?)");
    CHECK(missing_message(f, "xm_hexd.weighx") == "no tensor named \"xm_hexd.weighx\" in \"buffer\"");  // 3 edits
    CHECK(test_support::error_of([&] { (void)f["b.weigh"]; }).message ==
          "no tensor named \"b.weigh\" in \"buffer\" (did you mean \"b.weight\"?)");
    // find() and contains() only answer.
    CHECK(f.find("lm_haed.weight") == std::nullopt);
    CHECK_FALSE(f.contains("lm_haed.weight"));

    const std::string path = test_support::data_path("reference/valid/all_dtypes.safetensors");
    CHECK(missing_message(safetensors::open(path), "scalar_f33") ==
          "no tensor named \"scalar_f33\" in \"" + path + "\" (did you mean \"scalar_f32\"?)");
    // The suggested name is escaped like any name from a file.
    CHECK(missing_message(file_of({"a\\u001bb"}), "a\x1b") == "no tensor named \"a\\x1b\" in \"buffer\" (did you mean \"a\\x1bb\"?)");
}

TEST_CASE("file::tensor: 100,000 names, one suggestion") {
    using namespace suggestions_test;
    std::vector<std::string> names;
    names.reserve(100'000);
    for (int i = 0; i < 100'000; ++i) names.push_back("model.layers." + std::to_string(i) + ".mlp.weight");
    const safetensors::file f = file_of(names);
    REQUIRE(f.size() == 100'000);
    // Deleting any 0 of 100000 gives 10000, the only name 1 edit away; names 2 edits away
    // (1000, 10001, ...) come first in sorted order, and give way to it.
    CHECK(missing_message(f, "model.layers.100000.mlp.weight") ==
          "no tensor named \"model.layers.100000.mlp.weight\" in \"buffer\" (did you mean \"model.layers.10000.mlp.weight\"?)");
    CHECK(missing_message(f, "model.layers.5000.mlp.wieght") ==
          "no tensor named \"model.layers.5000.mlp.wieght\" in \"buffer\" (did you mean \"model.layers.5000.mlp.weight\"?)");
    CHECK(missing_message(f, "model.layers.7.attn.weight") == "no tensor named \"model.layers.7.attn.weight\" in \"buffer\"");
}

TEST_CASE("sharded_file: tensor, shard_of and try_tensor suggest the closest name") {
    const std::string dir = test_support::data_path("reference/model/gpt2_tiny_sharded");
    const std::string index = dir + "/model.safetensors.index.json";
    const safetensors::sharded_file model = safetensors::open_sharded(dir);
    auto e = test_support::error_of([&] { (void)model.tensor("transformer.wte.weigth"); });
    CHECK(e.code == safetensors::errc::tensor_not_found);
    CHECK(e.message == "no tensor named \"transformer.wte.weigth\" in index \"" + index +
                           "\" (did you mean \"transformer.wte.weight\"?)");
    // h.0 and h.1 are both 1 edit away: the bytewise first.
    e = test_support::error_of([&] { (void)model.shard_of("transformer.h.2.ln_1.bias"); });
    CHECK(e.message == "no tensor named \"transformer.h.2.ln_1.bias\" in index \"" + index +
                           "\" (did you mean \"transformer.h.0.ln_1.bias\"?)");
    e = test_support::error_of([&] { (void)model.try_tensor("transformer.ln_f.bia").value(); });
    CHECK(e.message == "no tensor named \"transformer.ln_f.bia\" in index \"" + index +
                           "\" (did you mean \"transformer.ln_f.bias\"?)");
    e = test_support::error_of([&] { (void)model["lm_head.weight"]; });
    CHECK(e.message == "no tensor named \"lm_head.weight\" in index \"" + index + "\"");
    CHECK(model.find("transformer.wte.weigth") == std::nullopt);
    CHECK_FALSE(model.contains("transformer.wte.weigth"));

    // A single file opened as a collection.
    const std::string single = test_support::data_path("reference/model/gpt2_tiny/model.safetensors");
    e = test_support::error_of([&] { (void)safetensors::open_sharded(single).tensor("transformer.wpe.weigh"); });
    CHECK(e.message == "no tensor named \"transformer.wpe.weigh\" in \"" + single + "\" (did you mean \"transformer.wpe.weight\"?)");
}
