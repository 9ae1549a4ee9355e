// Conformance with the reference implementation: every fixture it wrote opens with the
// recorded tensors, bytes, metadata and values; every malformed file gets its verdict.
#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <cmath>
#include <fstream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "support/bytes.hpp"
#include "support/sha256.hpp"

using nlohmann::json;
using test_support::data_path;

namespace {

json load_json(const std::string& relative) {
    std::ifstream in(data_path(relative));
    REQUIRE(in);
    return json::parse(in);
}

// The manifest's decoded value: a number, "nan"/"inf"/"-inf", a bool, or [re, im].
void check_value(const json& expected, double actual, const std::string& where) {
    INFO(where);
    if (expected.is_string()) {
        auto s = expected.get<std::string>();
        if (s == "nan") CHECK(std::isnan(actual));
        else if (s == "inf") CHECK(actual == INFINITY);
        else if (s == "-inf") CHECK(actual == -INFINITY);
        else FAIL("unexpected value string " << s);
    } else if (expected.is_boolean()) {
        CHECK(actual == (expected.get<bool>() ? 1.0 : 0.0));
    } else {
        CHECK(actual == expected.get<double>());
    }
}

void check_values(const safetensors::tensor_view& t, const json& values) {
    if (t.dtype() == safetensors::dtype::C64) {
        // Complex values are [re, im] pairs of F32.
        auto elements = t.to_vector<std::complex<float>>();
        REQUIRE(elements.size() == values.size());
        for (std::size_t i = 0; i < elements.size(); ++i) {
            check_value(values[i][0], elements[i].real(), std::string(t.name()) + " re " + std::to_string(i));
            check_value(values[i][1], elements[i].imag(), std::string(t.name()) + " im " + std::to_string(i));
        }
        return;
    }
    REQUIRE(values.size() == t.element_count());
    for (std::size_t i = 0; i < values.size(); ++i)
        check_value(values[i], t.element(i), std::string(t.name()) + "[" + std::to_string(i) + "]");
}

// Everything a manifest entry records about one file.
void check_against_manifest(const std::string& path, const json& expected) {
    INFO(path);
    auto bytes = test_support::read_all(path);
    CHECK(bytes.size() == expected["file_size"].get<std::uint64_t>());
    CHECK(test_support::sha256_hex(bytes.data(), bytes.size()) == expected["file_sha256"].get<std::string>());

    auto f = safetensors::open(path);
    CHECK(f.header().header_size() == expected["header_len"].get<std::uint64_t>());

    auto keys = f.keys();
    std::vector<std::string> order(keys.begin(), keys.end());
    CHECK(order == expected["key_order_in_file"].get<std::vector<std::string>>());

    if (expected["metadata"].is_null()) {
        CHECK(f.metadata() == nullptr);
    } else {
        REQUIRE(f.metadata() != nullptr);
        json actual = json::object();
        for (const auto& [k, v] : *f.metadata()) actual[k] = v;
        CHECK(actual == expected["metadata"]);
    }

    const json& tensors = expected["tensors"];
    CHECK(f.size() == tensors.size());
    for (const auto& item : tensors.items()) {  // no structured bindings: clang 14 cannot capture them
        const std::string name = item.key();
        const json& t = item.value();
        INFO(name);
        auto view = f.find(name);
        REQUIRE(view.has_value());
        CHECK(std::string(safetensors::to_string(view->dtype())) == t["dtype"].get<std::string>());
        std::vector<std::uint64_t> shape(view->shape().begin(), view->shape().end());
        CHECK(shape == t["shape"].get<std::vector<std::uint64_t>>());
        CHECK(view->data_offsets().first == t["data_offsets"][0].get<std::uint64_t>());
        CHECK(view->data_offsets().second == t["data_offsets"][1].get<std::uint64_t>());
        CHECK(test_support::sha256_hex(view->data(), view->byte_size()) == t["sha256"].get<std::string>());
        if (t.contains("values")) check_values(*view, t["values"]);
    }
}

} // namespace

TEST_CASE("every valid reference fixture matches its manifest") {
    json manifest = load_json("reference/valid/manifest.json");
    REQUIRE(manifest.size() >= 20);
    for (const auto& [file, expected] : manifest.items()) {
        if (expected.contains("tensors")) check_against_manifest(data_path("reference/valid/" + file), expected);
    }
}

TEST_CASE("F4 fixture: torch's float4_e2m1fn_x2 [2,2] is F4 [2,4], first element in the low nibble") {
    json manifest = load_json("reference/valid/manifest.json");
    const json& expected = manifest["f4.safetensors"];  // recorded as file hash + header only
    auto path = data_path("reference/valid/f4.safetensors");
    auto bytes = test_support::read_all(path);
    CHECK(test_support::sha256_hex(bytes.data(), bytes.size()) == expected["file_sha256"].get<std::string>());
    auto f = safetensors::open(path);
    std::string header(reinterpret_cast<const char*>(bytes.data()) + 8, f.header().header_size());
    CHECK(header == expected["header"].get<std::string>());
    auto q = f.tensor("q");
    CHECK(q.dtype() == safetensors::dtype::F4);
    CHECK(q.element_count() == 8);
    CHECK(q.byte_size() == 4);
    // Bytes 12 34 f0 0f: codes 2,1, 4,3, 0,f, f,0 (e2m1: 2 = 1.0, 1 = 0.5, 4 = 2.0, 3 = 1.5, f = -6).
    const double values[] = {1.0, 0.5, 2.0, 1.5, 0.0, -6.0, -6.0, 0.0};
    for (std::uint64_t i = 0; i < 8; ++i) CHECK(q.element(i) == values[i]);
}

TEST_CASE("the transformers checkpoints open, every shard") {
    json manifest = load_json("reference/model/manifest.json");
    REQUIRE(manifest.size() == 6);  // one single-file model, five shards
    for (const auto& [file, expected] : manifest.items())
        check_against_manifest(data_path("reference/model/" + file), expected);
}

TEST_CASE("F8 FNUZ tensors decode as torch decodes them") {
    json manifest = load_json("reference/valid/fnuz_manifest.json");
    auto f = safetensors::open(data_path("reference/valid/fnuz.safetensors"));
    for (const auto& [torch_name, expected] : manifest.items()) {
        auto d = safetensors::from_torch_name(torch_name);
        REQUIRE(d.has_value());
        // Find the tensor of that dtype (names are the file's own).
        bool found = false;
        for (auto t : f) {
            if (t.dtype() != *d) continue;
            found = true;
            std::string hex;
            static const char digits[] = "0123456789abcdef";
            for (auto b : t.bytes()) {
                hex.push_back(digits[std::to_integer<int>(b) >> 4]);
                hex.push_back(digits[std::to_integer<int>(b) & 15]);
            }
            CHECK(hex == expected["bytes_hex"].get<std::string>());
            check_values(t, expected["values"]);
        }
        CHECK(found);
    }
}

TEST_CASE("slicing fixture: its source tensors hold 0..119 in row-major order") {
    auto f = safetensors::open(data_path("reference/valid/slicing.safetensors"));
    for (auto name : {"x_f32", "x_i16", "x_bf16"}) {
        auto t = f.tensor(name);
        CHECK(t.shape() == safetensors::span<const std::uint64_t>(std::vector<std::uint64_t>{4, 6, 5}));
        for (std::uint64_t i = 0; i < t.element_count(); ++i) CHECK(t.element(i) == static_cast<double>(i));
    }
}

TEST_CASE("every malformed fixture gets the reference's verdict, except the documented deviations") {
    json verdicts = load_json("reference/malformed/verdicts.json");
    // We refuse duplicate tensor names, which the reference silently resolves (last wins).
    const std::set<std::string> deviations = {"duplicate_key", "duplicate_key_different"};
    REQUIRE(verdicts.size() == 56);
    std::size_t accepted = 0, rejected = 0;
    for (const auto& item : verdicts.items()) {
        const std::string name = item.key();
        const json& verdict = item.value();
        INFO(name);
        const json& expected = verdict["deserialize"];
        auto r = safetensors::try_open(data_path("reference/malformed/" + name + ".safetensors"));
        if (deviations.count(name)) {
            CHECK(expected["ok"].get<bool>());
            REQUIRE(!r);
            CHECK(r.error().code() == safetensors::errc::duplicate_tensor);
            CHECK(r.error().message() == "\"" + r.error().path() + "\": duplicate tensor name \"t\"");
            continue;
        }
        CHECK(r.ok() == expected["ok"].get<bool>());
        if (r.ok()) {
            ++accepted;
            const json& tensors = expected["tensors"];
            CHECK(r->size() == tensors.size());
            for (const auto& [tname, t] : tensors.items()) {
                auto view = r->find(tname);
                REQUIRE(view.has_value());
                CHECK(std::string(safetensors::to_string(view->dtype())) == t[0].get<std::string>());
                std::vector<std::uint64_t> shape(view->shape().begin(), view->shape().end());
                CHECK(shape == t[1].get<std::vector<std::uint64_t>>());
                CHECK(test_support::sha256_hex(view->data(), view->byte_size()) == t[2].get<std::string>());
            }
        } else {
            ++rejected;
            CHECK(!r.error().message().empty());
        }
    }
    CHECK(accepted == 14);
    CHECK(rejected == 40);
}

TEST_CASE("malformed fixtures: the error says what is wrong") {
    // Each message names the file: the path, quoted, then what is wrong with it.
    auto message = [](const std::string& name) {
        const std::string path = data_path("reference/malformed/" + name + ".safetensors");
        auto r = safetensors::try_open(path);
        REQUIRE(!r);
        CHECK(r.error().path() == path);
        const std::string prefix = "\"" + path + "\": ";
        const std::string& text = r.error().message();
        if (text.rfind(prefix, 0) == 0) return std::make_pair(r.error().code(), text.substr(prefix.size()));
        CHECK(text.find("\"" + path + "\"") != std::string::npos);  // named inside the message
        return std::make_pair(r.error().code(), text);
    };
    using safetensors::errc;
    CHECK(message("file_7_bytes").first == errc::header_too_small);
    CHECK(message("header_len_huge").first == errc::header_too_large);
    CHECK(message("header_len_beyond_file").first == errc::invalid_header_length);
    CHECK(message("header_invalid_utf8") == std::make_pair(errc::invalid_utf8, std::string("invalid UTF-8 in header at byte 3")));
    CHECK(message("pad_trailing_nul").first == errc::invalid_json);
    CHECK(message("trailing_comma").first == errc::invalid_json);
    CHECK(message("header_not_object_array") ==
          std::make_pair(errc::invalid_header, std::string("header must be a JSON object, got an array")));
    CHECK(message("metadata_value_number") ==
          std::make_pair(errc::invalid_metadata, std::string("metadata value for key \"a\" must be a string, got 1")));
    CHECK(message("missing_shape") == std::make_pair(errc::invalid_tensor_entry, std::string("tensor \"t\": missing field \"shape\"")));
    CHECK(message("negative_dim") ==
          std::make_pair(errc::invalid_tensor_entry,
                         std::string("tensor \"t\": field \"shape\" dimension 0 must be an unsigned integer, got -1")));
    CHECK(message("lowercase_dtype").first == errc::unknown_dtype);
    CHECK(message("overlap") ==
          std::make_pair(errc::invalid_offsets,
                         std::string("invalid offset for tensor \"b\": data_offsets [4, 12], expected it to begin at 8")));
    CHECK(message("shape_product_overflow").first == errc::shape_overflow);
    CHECK(message("size_mismatch_short").first == errc::size_mismatch);
    CHECK(message("trailing_bytes_after_data") ==
          std::make_pair(errc::incomplete_coverage,
                         std::string("incomplete metadata, file not fully covered: tensors cover 16 bytes of a 20-byte data section")));
    CHECK(message("offsets_beyond_data") ==
          std::make_pair(errc::incomplete_coverage,
                         std::string("file is truncated: 4 bytes missing (the tensors need a 16-byte data section, the file has 12)")));
}
