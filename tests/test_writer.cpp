// The writer (writer.hpp): byte-exact output against the reference writer's own vectors and
// every reference fixture, validation before output, the streaming writer, atomic replacement
// under failures (a throwing data source, RLIMIT_FSIZE in a child process), data alignment,
// and the safetensors-rewrite tool when the build passes SAFETENSORS_REWRITE_EXE.
#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#if !defined(_WIN32)
#include <csignal>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#if defined(__linux__)
#include <sys/vfs.h>
#endif
#include <unistd.h>
#endif

#include "support/bytes.hpp"
#include "support/platform.hpp"
#include "support/temp_dir.hpp"
#include "support/errors.hpp"

namespace st = safetensors;
using st::dtype;
using st::errc;
using test_support::data_path;
using test_support::error_of;
using test_support::bytes_of;
using test_support::temp_dir;
using test_support::text_of;

namespace {

namespace fs = std::filesystem;

std::uint64_t length_prefix(const std::vector<std::byte>& file) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | std::to_integer<std::uint64_t>(file[static_cast<std::size_t>(i)]);
    return n;
}

// The N bytes of header (padding included) of a serialized file.
std::string header_of(const std::vector<std::byte>& file) {
    return std::string(reinterpret_cast<const char*>(file.data()) + 8, static_cast<std::size_t>(length_prefix(file)));
}

std::string le_prefix(std::uint64_t n) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out;
}

// A deterministic byte pattern, different per seed.
// Eight bytes per step: the big cases make 128 MiB of it, slow byte by byte under the sanitizers.
std::vector<std::byte> pattern(std::size_t size, unsigned seed) {
    std::vector<std::byte> out(size);
    std::uint64_t x = 88172645463325252u + seed * 7919u;
    for (std::size_t at = 0; at < size; at += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::memcpy(out.data() + at, &x, std::min<std::size_t>(8, size - at));
    }
    return out;
}

std::vector<std::string> fixture_files() {
    std::vector<std::string> files;
    const std::string root = std::string(SAFETENSORS_TEST_DATA_DIR) + "/reference";
    for (const auto& entry : fs::directory_iterator(root + "/valid"))
        if (entry.path().extension() == ".safetensors") files.push_back(entry.path().string());
    for (const auto& dir : fs::directory_iterator(root + "/model"))
        if (dir.is_directory())
            for (const auto& entry : fs::directory_iterator(dir.path()))
                if (entry.path().extension() == ".safetensors") files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    return files;
}

// Same tensors (name, dtype, shape, bytes) in the same file order, and the same metadata.
void check_same_content(const st::file& a, const st::file& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto x = a.tensor_at(i);
        const auto y = b.tensor_at(i);
        CHECK(x.name() == y.name());
        CHECK(x.dtype() == y.dtype());
        CHECK(x.shape() == y.shape());
        CHECK(std::equal(x.bytes().begin(), x.bytes().end(), y.bytes().begin(), y.bytes().end()));
    }
    REQUIRE((a.metadata() == nullptr) == (b.metadata() == nullptr));
    if (a.metadata()) CHECK(*a.metadata() == *b.metadata());
}

std::vector<float> iota_floats(std::size_t n) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i);
    return v;
}

} // namespace

// ---- Byte-exact output ---------------------------------------------------------------------

TEST_CASE("writer: the reference's own vectors") {
    const std::vector<float> values = iota_floats(6);
    const std::string data(reinterpret_cast<const char*>(values.data()), 24);

    // One F32 tensor attn.0 of shape [1,2,3] with 0..5: N = 64.
    const auto one = st::serialize({{"attn.0", dtype::F32, {1, 2, 3}, values}});
    const std::string json1 = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
    CHECK(text_of(one) == le_prefix(64) + json1 + std::string(64 - json1.size(), ' ') + data);

    // attn0 of shape [1,1,2,3]: N = 72 (the reference's "forced alignment" test).
    const auto two = st::serialize({{"attn0", dtype::F32, {1, 1, 2, 3}, values}});
    const std::string json2 = R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})";
    CHECK(length_prefix(two) == 72);
    CHECK(text_of(two) == le_prefix(72) + json2 + std::string(72 - json2.size(), ' ') + data);

    // No tensors, no metadata: "{}" and 6 spaces.
    CHECK(text_of(st::serialize({})) == le_prefix(8) + "{}      ");
    // Metadata only, as the reference writes it.
    CHECK(text_of(st::serialize({}, {{"framework", "pt"}})) ==
          le_prefix(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");
}

TEST_CASE("writer: no metadata and empty metadata are different files") {
    const std::vector<float> values = iota_floats(1);
    const auto none = st::serialize({{"x", dtype::F32, {}, values}});
    const auto empty = st::serialize({{"x", dtype::F32, {}, values}}, st::metadata_map{});
    CHECK(header_of(none) == R"({"x":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})" + std::string(3, ' '));
    CHECK(header_of(empty) == R"({"__metadata__":{},"x":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})" +
                                  std::string(1, ' '));
    CHECK(st::file::from_bytes(none).metadata() == nullptr);
    REQUIRE(st::file::from_bytes(empty).metadata() != nullptr);
    CHECK(st::file::from_bytes(empty).metadata()->empty());

    // All the ways to say "none".
    const st::metadata_map* null_map = nullptr;
    const std::optional<st::metadata_map> no_map;
    CHECK(st::serialize({{"x", dtype::F32, {}, values}}, nullptr) == none);
    CHECK(st::serialize({{"x", dtype::F32, {}, values}}, std::nullopt) == none);
    CHECK(st::serialize({{"x", dtype::F32, {}, values}}, null_map) == none);
    CHECK(st::serialize({{"x", dtype::F32, {}, values}}, no_map) == none);
    CHECK(st::serialize({{"x", dtype::F32, {}, values}}, std::optional<st::metadata_map>(st::metadata_map{})) == empty);
}

TEST_CASE("writer: zero tensors with empty metadata is a valid file (the reference writes broken JSON)") {
    const auto bytes = st::serialize({}, st::metadata_map{});
    CHECK(text_of(bytes) == le_prefix(24) + R"({"__metadata__":{}})" + "     ");
    const auto f = st::file::from_bytes(bytes);
    CHECK(f.empty());
    REQUIRE(f.metadata() != nullptr);
    CHECK(f.metadata()->empty());
    CHECK(st::is_canonical(f));
}

TEST_CASE("writer: tensor order is dtype descending, then name bytewise; zero-sized tensors stay in their group") {
    const std::vector<std::byte> zeros(16);
    const auto bytes = st::serialize({
        {"b", dtype::BOOL, {1}, zeros.data(), 1},
        {"a", dtype::F32, {1}, zeros.data(), 4},
        {"z", dtype::U64, {0}, nullptr, 0},
        {"c", dtype::F32, {2}, zeros.data(), 8},
        {"m", dtype::I8, {3}, zeros.data(), 3},
        {"e", dtype::F16, {0}, nullptr, 0},
        {"d", dtype::BF16, {1}, zeros.data(), 2},
        {"f", dtype::F4, {2}, zeros.data(), 1},
    });
    const std::string json =
        R"({"z":{"dtype":"U64","shape":[0],"data_offsets":[0,0]},)"
        R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
        R"("c":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
        R"("d":{"dtype":"BF16","shape":[1],"data_offsets":[12,14]},)"
        R"("e":{"dtype":"F16","shape":[0],"data_offsets":[14,14]},)"
        R"("m":{"dtype":"I8","shape":[3],"data_offsets":[14,17]},)"
        R"("f":{"dtype":"F4","shape":[2],"data_offsets":[17,18]},)"
        R"("b":{"dtype":"BOOL","shape":[1],"data_offsets":[18,19]}})";
    CHECK(header_of(bytes) == json + std::string((8 - json.size() % 8) % 8, ' '));

    // All 22 dtypes: the effective order listed in the format reference.
    std::vector<std::string> names;
    std::vector<st::tensor_ref> refs;
    const std::vector<std::byte> buffer(32);
    for (dtype t : st::all_dtypes) names.emplace_back(st::to_string(t));
    for (dtype t : st::all_dtypes)
        refs.emplace_back(names[static_cast<std::size_t>(t)], t, st::shape_ref{4}, buffer.data(),
                          st::byte_size(t, std::vector<std::uint64_t>{4}));
    const auto f = st::file::from_bytes(st::serialize(refs));
    const std::vector<std::string_view> expected = {
        "U64", "I64", "F64", "C64", "F32", "U32", "I32", "BF16", "F16", "U16", "I16",
        "F8_E5M2FNUZ", "F8_E4M3FNUZ", "F8_E8M0", "F8_E4M3", "F8_E5M2", "I8", "U8", "F6_E3M2", "F6_E2M3", "F4", "BOOL"};
    CHECK(f.keys() == expected);

    // Names compare as bytes: "" < "B" < "a" < "aa" < "\xc3\xa9" (é).
    const auto g = st::file::from_bytes(st::serialize({{"\xc3\xa9", dtype::U8, {1}, zeros.data(), 1},
                                                       {"aa", dtype::U8, {1}, zeros.data(), 1},
                                                       {"a", dtype::U8, {1}, zeros.data(), 1},
                                                       {"", dtype::U8, {1}, zeros.data(), 1},
                                                       {"B", dtype::U8, {1}, zeros.data(), 1}}));
    CHECK(g.keys() == std::vector<std::string_view>{"", "B", "a", "aa", "\xc3\xa9"});
}

TEST_CASE("writer: JSON escaping is serde_json's: quote, backslash and control characters only") {
    const std::string odd = std::string("q\"b\\s\n\t\r\b\f\x01\x1f", 12) + std::string(1, '\0') + "\x7f/\xc3\xa9\xe4\xb8\xad";
    const std::string escaped = R"(q\"b\\s\n\t\r\b\f\u0001\u001f\u0000)" + std::string("\x7f/\xc3\xa9\xe4\xb8\xad");
    const std::vector<std::byte> data(1);
    st::metadata_map metadata;
    metadata.insert(odd, odd);
    const auto bytes = st::serialize({{odd, dtype::U8, {1}, data}}, metadata);
    const std::string json = R"({"__metadata__":{")" + escaped + R"(":")" + escaped + R"("},")" + escaped +
                             R"(":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
    CHECK(header_of(bytes) == json + std::string((8 - json.size() % 8) % 8, ' '));
    const auto f = st::file::from_bytes(bytes);
    CHECK(f.keys() == std::vector<std::string_view>{odd});
    CHECK(f.metadata()->at(odd) == odd);
    CHECK(st::is_canonical(f));
}

TEST_CASE("writer: escaping reads eight bytes at a time, and every byte value at every position agrees with one at a time") {
    // The escape serde_json writes for one byte, or the byte itself.
    const auto one = [](unsigned char c) -> std::string {
        switch (c) {
            case '"': return "\\\"";
            case '\\': return "\\\\";
            case '\b': return "\\b";
            case '\t': return "\\t";
            case '\n': return "\\n";
            case '\f': return "\\f";
            case '\r': return "\\r";
            default: break;
        }
        if (c >= 0x20) return std::string(1, static_cast<char>(c));
        static const char hex[] = "0123456789abcdef";
        return std::string("\\u00") + hex[c >> 4] + hex[c & 15];
    };
    std::size_t cases = 0;
    for (unsigned value = 0; value < 256; ++value) {
        for (std::size_t at = 0; at < 38; ++at) {
            // 19 bytes: two whole words and a tail of three; the second round puts a 0x1f below
            // the byte, whose borrow reaches it.
            std::string text(19, 'a');
            text[at % 19] = static_cast<char>(value);
            if (at > 19) text[at % 19 - 1] = '\x1f';
            std::string want = "\"";
            for (char c : text) want += one(static_cast<unsigned char>(c));
            want += '"';
            std::string got;
            st::detail::append_json_string(got, text);
            CAPTURE(value);
            CAPTURE(at);
            CHECK(got == want);
            ++cases;
        }
    }
    CHECK(cases == 256 * 38);
    std::string got;
    st::detail::append_json_string(got, "");
    CHECK(got == "\"\"");
}

TEST_CASE("writer: metadata keeps insertion order") {
    st::metadata_map metadata;
    for (const char* key : {"zeta", "alpha", "mu", "beta"}) metadata.insert(key, std::string(key) + "!");
    const auto bytes = st::serialize({}, metadata);
    CHECK(header_of(bytes).rfind(R"({"__metadata__":{"zeta":"zeta!","alpha":"alpha!","mu":"mu!","beta":"beta!"}})", 0) == 0);
    const auto f = st::file::from_bytes(bytes);
    std::vector<std::string> keys;
    for (const auto& kv : *f.metadata()) keys.push_back(kv.first);
    CHECK(keys == std::vector<std::string>{"zeta", "alpha", "mu", "beta"});
}

TEST_CASE("writer: every input form gives the same bytes") {
    const std::vector<float> values = iota_floats(6);
    const std::vector<std::uint64_t> shape{2, 3};
    const auto expected = st::serialize({{"w", dtype::F32, {2, 3}, values.data(), 24}});

    const st::span<const std::byte> byte_span(reinterpret_cast<const std::byte*>(values.data()), 24);
    CHECK(st::serialize({{"w", dtype::F32, shape, byte_span}}) == expected);
    CHECK(st::serialize({{"w", dtype::F32, st::span<const std::uint64_t>(shape), values}}) == expected);
    CHECK(st::serialize({{"w", dtype::F32, {2, 3}, st::span<const float>(values.data(), values.size())}}) == expected);

    const st::tensor owned("w", dtype::F32, {2, 3}, values.data(), 24);
    CHECK(st::serialize({owned}) == expected);

    const auto f = st::file::from_bytes(expected);
    CHECK(st::serialize({f.tensor("w")}) == expected);
    CHECK(st::serialize(std::vector<st::tensor_view>{f.tensor("w")}) == expected);
    const std::vector<st::tensor_ref> refs{f.tensor("w")};
    CHECK(st::serialize(refs) == expected);
    CHECK(st::serialize(st::span<const st::tensor_ref>(refs)) == expected);
    CHECK(st::serialize(f) == expected);

    // tensor_map (Python's dict): the keys are the names.
    st::tensor_map map;
    map.emplace("w", st::tensor("ignored", dtype::F32, {2, 3}, values.data(), 24));
    CHECK(st::serialize(map) == expected);
    CHECK(st::serialize(st::load(f)) == expected);

    // The owned-shape form outlives its braced list.
    const st::tensor_ref kept("w", dtype::F32, {2, 3}, values);
    std::vector<std::uint64_t> scribble(64, 99);  // reuse the stack/heap the list may have used
    CHECK(kept.shape() == st::span<const std::uint64_t>(shape));
    CHECK(st::serialize({kept}) == expected);
}

// ---- Canonical round trips -------------------------------------------------------------------

TEST_CASE("writer: every reference fixture round-trips byte for byte (valid/ and model/)") {
    const auto files = fixture_files();
    CHECK(files.size() == 28);  // 22 valid files, one single-file model, 5 shards
    temp_dir dir;
    for (const auto& path : files) {
        CAPTURE(path);
        const auto original = test_support::read_all(path);
        const auto f = st::open(path);
        CHECK(st::is_canonical(f));
        CHECK(st::serialize(f) == original);

        const std::string out = dir.file("out.safetensors");
        st::save(out, f);
        CHECK(test_support::read_all(out) == original);

        // From tensor_refs in reverse file order, with the metadata passed separately.
        std::vector<st::tensor_ref> refs;
        for (const auto& view : f) refs.emplace_back(view);
        std::reverse(refs.begin(), refs.end());
        st::save(out, refs, f.metadata(), st::write_options{8, false});
        CHECK(test_support::read_all(out) == original);

        // From owned copies (load()), which lose nothing either.
        CHECK(st::serialize(st::load(f), f.metadata()) == original);
    }
    CHECK(dir.entries() == std::vector<std::string>{"out.safetensors"});
}

TEST_CASE("writer: the LoRA file with many metadata keys keeps them in order") {
    const std::string path = data_path("reference/valid/lora_metadata.safetensors");
    const auto f = st::open(path);
    REQUIRE(f.metadata() != nullptr);
    CHECK(f.metadata()->size() >= 9);
    // A copy of the map, edited and written: the order of the kept keys does not change.
    st::metadata_map edited = *f.metadata();
    edited.erase("ss_seed");
    edited.set("ss_network_dim", "8");
    edited.insert("added", "last");
    const auto g = st::file::from_bytes(st::serialize(st::detail::refs_of(f), edited));
    std::vector<std::string> keys;
    for (const auto& kv : *g.metadata()) keys.push_back(kv.first);
    std::vector<std::string> expected;
    for (const auto& kv : *f.metadata())
        if (kv.first != "ss_seed") expected.push_back(kv.first);
    expected.push_back("added");
    CHECK(keys == expected);
    CHECK(g.metadata()->at("ss_network_dim") == "8");
    CHECK(st::serialize(st::detail::refs_of(f), *f.metadata()) == test_support::read_all(path));
}

TEST_CASE("writer: valid files that are not canonical are rewritten canonically") {
    std::size_t rewritten = 0;
    for (const auto& entry : fs::directory_iterator(data_path("reference/malformed"))) {
        if (entry.path().extension() != ".safetensors") continue;
        const std::string path = entry.path().string();
        auto opened = st::try_open(path);
        if (!opened) continue;
        CAPTURE(path);
        const st::file& f = *opened;
        const auto bytes = st::serialize(f);
        const auto g = st::file::from_bytes(bytes);
        CHECK(st::is_canonical(g));
        check_same_content(f, g);
        CHECK(st::serialize(g) == bytes);  // idempotent
        CHECK(st::is_canonical(f) == (bytes == test_support::read_all(path)));
        ++rewritten;
    }
    CHECK(rewritten >= 14);

    // Specific reasons a file is not canonical; each JSON is padded to a multiple of 8 unless
    // the padding is the point.
    auto canonical = [](const std::string& json, const std::string& data, bool pad = true) {
        const std::string padded = pad ? json + std::string((8 - json.size() % 8) % 8, ' ') : json;
        return st::is_canonical(st::file::from_bytes(test_support::make_file(padded, data)));
    };
    const std::string d4(4, '\0');
    const std::string a = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
    CHECK(canonical("{" + a + "}", d4));
    CHECK_FALSE(canonical("{" + a + "}", d4, false));                           // unpadded
    CHECK_FALSE(canonical("{" + a + "}" + std::string(10, ' '), d4, false));     // 8 spaces too many
    CHECK_FALSE(canonical("{" + a + "}\n", d4));                                 // other whitespace
    CHECK_FALSE(canonical(R"({"a": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", d4));  // a space
    CHECK_FALSE(canonical(R"({"a":{"shape":[1],"dtype":"F32","data_offsets":[0,4]}})", d4));  // field order
    CHECK_FALSE(canonical(R"({"\u0061":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", d4));  // an escape
    CHECK_FALSE(canonical(R"({"__metadata__":null,)" + a + "}", d4));  // null metadata is "none"
    CHECK_FALSE(canonical("{" + a + R"(,"__metadata__":{}})", d4));  // metadata last
    CHECK(canonical(R"({"__metadata__":{},)" + a + "}", d4));
    // Wrong order: I8 before F32 in the data.
    CHECK_FALSE(canonical(R"({"i":{"dtype":"I8","shape":[4],"data_offsets":[0,4]},)"
                          R"("f":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                          std::string(8, '\0')));
    CHECK(canonical(R"({"f":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                    R"("i":{"dtype":"I8","shape":[4],"data_offsets":[4,8]}})",
                    std::string(8, '\0')));
}

// ---- What tensor_ref owns, and typed data -------------------------------------------------------

TEST_CASE("writer: tensor_ref owns its name: names built in a loop do not dangle") {
    // The natural loop: a std::string made per iteration, gone before save() runs. Under ASan
    // this read freed memory when tensor_ref kept a string_view.
    const std::vector<float> data(4, 1.5f);
    std::vector<st::tensor_ref> refs;
    for (int layer = 0; layer < 20; ++layer) {
        std::string name = "model.layers." + std::to_string(layer) + ".mlp.down_proj.weight.with_a_long_suffix";
        refs.emplace_back(name, dtype::F32, std::vector<std::uint64_t>{2, 2}, data);
    }
    const auto f = st::file::from_bytes(st::serialize(refs));
    REQUIRE(f.size() == 20);
    CHECK(f.contains("model.layers.7.mlp.down_proj.weight.with_a_long_suffix"));
    CHECK(f.tensor("model.layers.19.mlp.down_proj.weight.with_a_long_suffix").to_vector<float>() == data);
}

TEST_CASE("writer: tensor_ref owns its shape: shapes built in a loop do not dangle") {
    const std::vector<std::uint8_t> data(24, 7);
    std::vector<st::tensor_ref> refs;
    for (std::uint64_t i = 1; i <= 4; ++i) {
        std::vector<std::uint64_t> shape = {i, 24 / i};  // freed at the end of each iteration
        refs.emplace_back("t" + std::to_string(i), dtype::U8, shape, data);
        refs.emplace_back(st::tensor_ref("s" + std::to_string(i), dtype::U8, st::span<const std::uint64_t>(shape), data));
    }
    const auto f = st::file::from_bytes(st::serialize(refs));
    REQUIRE(f.size() == 8);
    for (std::uint64_t i = 1; i <= 4; ++i) {
        const auto t = f.tensor("t" + std::to_string(i));
        CHECK(std::vector<std::uint64_t>(t.shape().begin(), t.shape().end()) == std::vector<std::uint64_t>{i, 24 / i});
        CHECK(f.tensor("s" + std::to_string(i)).shape()[0] == i);
    }
}

TEST_CASE("writer: typed data is checked against the dtype") {
    const std::vector<float> floats(4, 1.f);
    auto e = error_of([&] { st::tensor_ref("w", dtype::F16, {4}, floats); });
    CHECK(e.code == errc::dtype_mismatch);
    CHECK(e.message == "tensor \"w\": float data cannot be written as F16: pass std::uint16_t (its bits) or std::byte data");
    e = error_of([&] { st::tensor_ref("w", dtype::I32, {4}, floats); });
    CHECK(e.code == errc::dtype_mismatch);
    CHECK(e.message == "tensor \"w\": float data cannot be written as I32: pass std::int32_t or std::byte data");
    const std::vector<std::uint8_t> codes(4);
    e = error_of([&] { st::tensor_ref("q", dtype::F4, {8}, codes); });
    CHECK(e.code == errc::dtype_mismatch);
    CHECK(e.message == "tensor \"q\": uint8_t data cannot be written as F4: pass std::byte (elements smaller than a "
                       "byte are packed) data");
    e = error_of([&] { st::tensor_ref("u", dtype::I8, {4}, st::span<const std::uint8_t>(codes)); });
    CHECK(e.code == errc::dtype_mismatch);
    const std::vector<double> doubles(2);
    CHECK(error_of([&] { st::save("unused.safetensors", {{"d", dtype::F32, {2}, doubles}}); }).code == errc::dtype_mismatch);

    // What is accepted: the natural type, the same-width unsigned integer for raw float codes,
    // uint8_t or bool for BOOL, and std::byte or a pointer for anything.
    const std::vector<std::uint16_t> halves(4, 0x3c00);
    const std::vector<bool> unused;  // std::vector<bool> itself does not compile (no data())
    (void)unused;
    const bool flags[2] = {true, false};
    const std::vector<std::byte> raw(4);
    const std::vector<long long> longs = {1, -2};
    const auto f = st::file::from_bytes(st::serialize({
        {"f16", dtype::F16, {4}, halves},
        {"bf16", dtype::BF16, {4}, halves},
        {"f8", dtype::F8_E4M3, {4}, codes},
        {"b8", dtype::BOOL, {4}, codes},
        {"b", dtype::BOOL, {2}, st::span<const bool>(flags, 2)},
        {"f4", dtype::F4, {8}, raw},
        {"i64", dtype::I64, {2}, longs},
        {"p", dtype::F32, {1}, raw.data(), 4},
    }));
    CHECK(f.size() == 8);
    CHECK(f.tensor("i64").to_vector<long long>() == longs);
    CHECK(f.tensor("b").to_vector<std::uint8_t>() == std::vector<std::uint8_t>{1, 0});
    static_assert(!std::is_constructible<st::tensor_ref, const char*, dtype, st::shape_ref, const std::vector<bool>&>::value,
                  "std::vector<bool> is refused at compile time");
    static_assert(!std::is_constructible<st::tensor_ref, const char*, st::shape_ref, const std::vector<bool>&>::value,
                  "std::vector<bool> is refused at compile time");
}

TEST_CASE("writer: without a dtype, it is deduced from the element type") {
    const std::vector<float> f32 = {1.f, 2.f};
    const std::vector<double> f64 = {1.0};
    const std::vector<long long> ll = {5};
    const std::vector<std::int64_t> i64 = {6};
    const std::vector<std::uint16_t> u16 = {7};
    const std::vector<std::int8_t> i8 = {-1};
    const std::vector<std::uint8_t> u8 = {1};
    const bool flag[1] = {true};
    const auto f = st::file::from_bytes(st::serialize({
        {"f32", {2}, f32},
        {"f64", {1}, f64},
        {"ll", {1}, ll},
        {"i64", {1}, i64},
        {"u16", {1}, u16},
        {"i8", {1}, i8},
        {"u8", {1}, u8},
        {"bool", {1}, st::span<const bool>(flag, 1)},
    }));
    CHECK(f["f32"].dtype() == dtype::F32);
    CHECK(f["f64"].dtype() == dtype::F64);
    CHECK(f["ll"].dtype() == dtype::I64);
    CHECK(f["i64"].dtype() == dtype::I64);
    CHECK(f["u16"].dtype() == dtype::U16);
    CHECK(f["i8"].dtype() == dtype::I8);
    CHECK(f["u8"].dtype() == dtype::U8);
    CHECK(f["bool"].dtype() == dtype::BOOL);
    CHECK(f["f32"].to_vector<float>() == f32);
}

TEST_CASE("writer: save_sharded creates its folder and missing parents") {
    temp_dir dir;
    const std::vector<float> data(4, 2.f);
    st::sharded_write_options options;
    options.max_shard_size = 16;
    const std::string folder = dir.file("out/nested/checkpoint");
    const auto written = st::save_sharded(folder, {{"a", dtype::F32, {4}, data}, {"b", dtype::F32, {4}, data}}, options);
    CHECK(written.shard_files.size() == 2);
    CHECK(st::open_sharded(folder).tensor("b").to_vector<float>() == data);
    // Again into the same, now existing, folder.
    CHECK(st::save_sharded(folder, {{"a", dtype::F32, {4}, data}}, options).shard_files.size() == 1);
    // A file in the way of a folder to create.
    test_support::write_all(dir.file("plain"), bytes_of("x"));
    const auto e = error_of([&] { st::save_sharded(dir.file("plain/sub"), {{"a", dtype::F32, {4}, data}}, options); });
    CHECK(e.code == errc::file_not_found);
    CHECK(e.message == "cannot create the folder \"" + dir.file("plain/sub") + "\": Not a directory");
    CHECK(e.system_code == std::errc::not_a_directory);
}

// ---- Validation ------------------------------------------------------------------------------

TEST_CASE("writer: every validation error, with its code and message, before any output") {
    temp_dir dir;
    const std::string target = dir.file("model.safetensors");
    const std::vector<float> four(4);
    // Each failing write must leave the folder exactly as it was: one old file, untouched.
    test_support::write_all(target, bytes_of("old contents"));
    // Each error names the target (error::path() and the message), except one thrown before
    // save() runs: building its metadata argument.
    auto check = [&](errc code, const std::string& message, auto&& write, bool names_target = true) {
        const auto e = error_of([&] { write(target); });
        CHECK(e.code == code);
        CHECK(e.message == (names_target ? "\"" + target + "\": " + message : message));
        CHECK(e.path == (names_target ? target : ""));
        CHECK(text_of(test_support::read_all(target)) == "old contents");
        CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
    };

    check(errc::duplicate_name, "duplicate tensor name \"a\"", [&](const std::string& p) {
        st::save(p, {{"a", dtype::F32, {4}, four}, {"b", dtype::F32, {4}, four}, {"a", dtype::I32, {4}, four.data(), 16}});
    });
    check(errc::reserved_name, "tensor name \"__metadata__\" is reserved for the header's metadata",
          [&](const std::string& p) { st::save(p, {{"__metadata__", dtype::F32, {4}, four}}); });
    check(errc::invalid_tensor, "tensor \"w\": 12 bytes given, but dtype F32 with shape [2, 2] needs 16",
          [&](const std::string& p) { st::save(p, {{"w", dtype::F32, {2, 2}, four.data(), 12}}); });
    check(errc::invalid_tensor, "tensor \"w\": 20 bytes given, but dtype F32 with shape [2, 2] needs 16",
          [&](const std::string& p) { st::save(p, {{"w", dtype::F32, {2, 2}, four.data(), 20}}); });
    check(errc::invalid_tensor, "tensor \"w\": null data pointer for 16 bytes",
          [&](const std::string& p) { st::save(p, {{"w", dtype::F32, {2, 2}, nullptr, 16}}); });
    check(errc::misaligned_sub_byte, "tensor \"q\": shape [3] of dtype F4 is not a whole number of bytes (12 bits)",
          [&](const std::string& p) { st::save(p, {{"q", dtype::F4, {3}, four.data(), 1}}); });
    check(errc::misaligned_sub_byte,
          "tensor \"s\": shape [2, 3] of dtype F6_E2M3 is not a whole number of bytes (36 bits)",
          [&](const std::string& p) { st::save(p, {{"s", dtype::F6_E2M3, {2, 3}, four.data(), 4}}); });
    check(errc::shape_overflow, "tensor \"big\": size in bits of shape [4294967296, 4294967296] of dtype F32 overflows 64 bits",
          [&](const std::string& p) { st::save(p, {{"big", dtype::F32, {1ull << 32, 1ull << 32}, four}}); });
    // Left to right, like the reference: a later 0 does not rescue an overflowing prefix.
    check(errc::shape_overflow,
          "tensor \"z\": size in bits of shape [9223372036854775808, 9223372036854775808, 0] of dtype U8 overflows 64 bits",
          [&](const std::string& p) { st::save(p, {{"z", dtype::U8, {1ull << 63, 1ull << 63, 0}, nullptr, 0}}); });
    check(errc::shape_overflow, "tensor \"b\": size in bits of shape [2305843009213693952] of dtype U8 overflows 64 bits",
          [&](const std::string& p) { st::save(p, {{"b", dtype::U8, {1ull << 61}, nullptr, 0}}); });
    check(errc::invalid_tensor, "tensor \"x\": invalid dtype value 200",
          [&](const std::string& p) { st::save(p, {{"x", static_cast<dtype>(200), {4}, four}}); });
    check(errc::invalid_tensor, "tensor name \"a\xc3\" is not valid UTF-8 (byte 1)",
          [&](const std::string& p) { st::save(p, {{"a\xc3", dtype::F32, {4}, four}}); });
    check(errc::invalid_metadata, "metadata key \"\xff\" is not valid UTF-8 (byte 0)",
          [&](const std::string& p) { st::save(p, {}, {{"\xff", "v"}}); });
    check(errc::invalid_metadata, "metadata value for key \"k\": \"\xed\xa0\x80\" is not valid UTF-8 (byte 0)",
          [&](const std::string& p) { st::save(p, {}, {{"k", "\xed\xa0\x80"}}); });  // a surrogate
    check(errc::duplicate_metadata_key, "duplicate metadata key \"k\"",
          [&](const std::string& p) { st::save(p, {}, {{"k", "1"}, {"k", "2"}}); }, false);
    check(errc::invalid_argument, "write_options::alignment must be a positive multiple of 8, got 12",
          [&](const std::string& p) { st::save(p, {}, {}, st::write_options{12, true}); });
    check(errc::invalid_argument, "write_options::alignment must be a positive multiple of 8, got 0",
          [&](const std::string& p) { st::save(p, {}, {}, st::write_options{0, true}); });
    check(errc::file_too_large, "the data section would be larger than 2^64 bytes", [&](const std::string& p) {
        // Each tensor alone is fine (2^61 - 1 bytes, 2^64 - 8 bits); nine of them are not.
        std::vector<st::tensor_ref> decls;
        for (char name = 'a'; name < 'j'; ++name) decls.push_back({std::string(1, name), dtype::U8, {(1ull << 61) - 1}});
        st::stream_writer(p, decls);
    });
    // Streaming declarations are checked the same way, before the temporary file exists.
    check(errc::duplicate_name, "duplicate tensor name \"x\"", [&](const std::string& p) {
        st::stream_writer(p, {{"x", dtype::F32, {1}}, {"x", dtype::F32, {2}}});
    });
    check(errc::header_too_large, "header too large: more than 100000000 bytes of JSON, the limit readers enforce",
          [&](const std::string& p) { st::save(p, {}, {}, st::write_options{std::uint64_t{1} << 40, true}); });
}

TEST_CASE("writer: the header limit is 100,000,000 bytes, padding included") {
    // {"__metadata__":{"k":"<value>"}} is 25 bytes of JSON around the value.
    st::metadata_map metadata;
    metadata.insert("k", std::string(100'000'000 - 25, 'v'));
    std::uint64_t bytes_out = 0;
    {
        st::stream_writer exact([&](const std::byte*, std::size_t size) { bytes_out += size; }, {}, metadata);
        CHECK(exact.header_size() == 100'000'000);
        exact.commit();
    }
    CHECK(bytes_out == 100'000'008);
    metadata.set("k", std::string(100'000'000 - 24, 'v'));  // 100,000,001 bytes, padded to 100,000,008
    const auto e = error_of([&] { st::stream_writer([](const std::byte*, std::size_t) {}, {}, metadata); });
    CHECK(e.code == errc::header_too_large);
    CHECK(e.message == "header too large: more than 100000000 bytes of JSON, the limit readers enforce");
}

// ---- Alignment -------------------------------------------------------------------------------

TEST_CASE("writer: write_options::alignment pads the header so the data starts at a multiple") {
    const auto original = test_support::read_all(data_path("reference/valid/all_dtypes.safetensors"));
    const auto f = st::file::from_bytes(original);
    for (std::uint64_t alignment : {8u, 16u, 64u, 4096u, 24u}) {
        CAPTURE(alignment);
        const auto aligned = st::serialize(f, st::write_options{alignment, true});
        const auto g = st::file::from_bytes(aligned);
        CHECK(g.header().data_offset() % alignment == 0);
        CHECK(g.header().header_size() % 8 == 0);
        check_same_content(f, g);
        CHECK(st::is_canonical(g, st::write_options{alignment, true}));
        CHECK(st::is_canonical(g) == (alignment == 8));
        const std::string json = header_of(aligned);
        CHECK(json.find_last_not_of(' ') + 1 == header_of(original).find_last_not_of(' ') + 1);
        CHECK(st::serialize(g) == original);  // back to the reference layout
    }
    // A 4096-aligned file with tensors written to disk; data_offset() is 4096.
    temp_dir dir;
    const std::vector<float> values = iota_floats(6);
    st::save(dir.file("a.safetensors"), {{"attn.0", dtype::F32, {1, 2, 3}, values}}, {}, st::write_options{4096, false});
    const auto bytes = test_support::read_all(dir.file("a.safetensors"));
    CHECK(bytes.size() == 4096 + 24);
    CHECK(length_prefix(bytes) == 4088);
    CHECK(st::open(dir.file("a.safetensors"))["attn.0"].to_vector<float>() == values);
}

// ---- Streaming ---------------------------------------------------------------------------------

namespace {

struct stream_case {
    std::vector<st::tensor_ref> decls;
    std::vector<std::vector<std::byte>> data;  // by declaration
    st::metadata_map metadata;

    stream_case() {
        decls = {{"w", dtype::F32, {3000}}, {"bytes", dtype::U8, {10007}}, {"half", dtype::F16, {2, 4099}},
                 {"empty", dtype::F64, {0, 5}}, {"flag", dtype::BOOL, {1}}, {"big", dtype::I64, {70000}}};
        for (std::size_t i = 0; i < decls.size(); ++i)
            data.push_back(pattern(static_cast<std::size_t>(st::byte_size(decls[i].dtype(), decls[i].shape())),
                                   static_cast<unsigned>(i)));
        metadata.insert("format", "pt");
    }
    std::vector<std::byte> expected() const {
        std::vector<st::tensor_ref> refs;
        for (std::size_t i = 0; i < decls.size(); ++i)
            refs.emplace_back(decls[i].name(), decls[i].dtype(), decls[i].shape(), data[i]);
        return st::serialize(refs, metadata);
    }
    const std::vector<std::byte>& bytes_of(std::string_view name) const {
        for (std::size_t i = 0; i < decls.size(); ++i)
            if (decls[i].name() == name) return data[i];
        throw std::runtime_error("no such tensor");
    }
};

// Supplies every tensor in the order the writer asks for, in chunks of chunk bytes.
void supply_in_order(st::stream_writer& w, const stream_case& c, std::size_t chunk) {
    for (std::size_t i = 0; i < w.size(); ++i) {
        const auto& bytes = c.bytes_of(w.tensor(i).name);
        for (std::size_t done = 0; done < bytes.size(); done += chunk)
            w.write(i, bytes.data() + done, std::min(chunk, bytes.size() - done));
    }
}

} // namespace

TEST_CASE("writer: streaming in file order, chunks of 1, 7 and 4097 bytes, to a file and to a sink") {
    const stream_case c;
    const auto expected = c.expected();
    temp_dir dir;
    for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{4097}, std::size_t{1} << 20}) {
        CAPTURE(chunk);
        st::stream_writer w(dir.file("s.safetensors"), c.decls, c.metadata, st::write_options{8, false});
        CHECK(w.seekable());
        CHECK(w.file_size() == expected.size());
        CHECK(w.data_offset() == 8 + length_prefix(expected));
        supply_in_order(w, c, chunk);
        CHECK(w.next() == w.size());
        w.commit();
        CHECK(w.committed());
        CHECK(test_support::read_all(dir.file("s.safetensors")) == expected);

        std::vector<std::byte> out;
        st::stream_writer s([&](const std::byte* p, std::size_t n) { out.insert(out.end(), p, p + n); }, c.decls,
                            c.metadata);
        CHECK_FALSE(s.seekable());
        supply_in_order(s, c, chunk);
        s.commit();
        CHECK(out == expected);
    }
    CHECK(dir.entries() == std::vector<std::string>{"s.safetensors"});
}

TEST_CASE("writer: streaming tells the order it wants: tensor(), find(), next(), written()") {
    const stream_case c;
    std::vector<std::byte> out;
    st::stream_writer w([&](const std::byte* p, std::size_t n) { out.insert(out.end(), p, p + n); }, c.decls);
    std::vector<std::string_view> order;
    for (std::size_t i = 0; i < w.size(); ++i) order.push_back(w.tensor(i).name);
    CHECK(order == std::vector<std::string_view>{"big", "empty", "w", "half", "bytes", "flag"});
    CHECK(w.tensor(2).dtype == dtype::F32);
    CHECK(w.tensor(2).shape == c.decls[0].shape());
    CHECK(w.tensor(1).begin == 560000);
    CHECK(w.tensor(1).byte_size() == 0);
    CHECK(w.find("half") == std::optional<std::size_t>(3));
    CHECK(w.find("nope") == std::nullopt);
    CHECK(w.next() == 0);
    const auto& big = c.bytes_of("big");
    w.write("big", big.data(), big.size() - 1);
    CHECK(w.written(0) == big.size() - 1);
    CHECK(w.next() == 0);
    w.write(std::string_view("big"), st::span<const std::byte>(big.data() + big.size() - 1, 1));
    CHECK(w.next() == 2);  // "empty" has no bytes to wait for
    CHECK(error_of([&] { (void)w.tensor(6); }).code == errc::out_of_range);
}

TEST_CASE("writer: a seekable file takes tensors in any order, even interleaved") {
    const stream_case c;
    const auto expected = c.expected();
    temp_dir dir;
    const std::string path = dir.file("s.safetensors");
    SUBCASE("reverse order") {
        st::stream_writer w(path, c.decls, c.metadata, st::write_options{8, false});
        for (std::size_t i = w.size(); i-- > 0;) {
            const auto& bytes = c.bytes_of(w.tensor(i).name);
            for (std::size_t done = 0; done < bytes.size(); done += 4097)
                w.write(i, bytes.data() + done, std::min<std::size_t>(4097, bytes.size() - done));
        }
        w.commit();
    }
    SUBCASE("round robin, 7 bytes at a time, by name") {
        st::stream_writer w(path, c.decls, c.metadata, st::write_options{8, false});
        std::vector<std::size_t> done(c.decls.size());
        for (bool progress = true; progress;) {
            progress = false;
            for (std::size_t i = 0; i < c.decls.size(); ++i) {
                const std::size_t n = std::min<std::size_t>(7, c.data[i].size() - done[i]);
                if (n == 0) continue;
                w.write(c.decls[i].name(), c.data[i].data() + done[i], n);
                done[i] += n;
                progress = true;
            }
        }
        w.commit();
    }
    CHECK(test_support::read_all(path) == expected);
    CHECK(dir.entries() == std::vector<std::string>{"s.safetensors"});
}

TEST_CASE("writer: streaming errors: too many or too few bytes, wrong order on a sink, misuse") {
    const stream_case c;
    std::vector<std::byte> out;
    st::stream_writer w([&](const std::byte* p, std::size_t n) { out.insert(out.end(), p, p + n); }, c.decls);
    const std::vector<std::byte> big(600000);

    auto e = error_of([&] { w.write("w", big.data(), 1); });
    CHECK(e.code == errc::stream_error);
    CHECK(e.message ==
          "tensor \"w\" cannot be written yet: the output is not seekable, so bytes must come in file order, and tensor "
          "\"big\" is next");
    e = error_of([&] { w.write("big", big.data(), 560001); });
    CHECK(e.code == errc::stream_error);
    CHECK(e.message == "tensor \"big\": 560001 bytes given, but only 560000 of its 560000 bytes remain");
    w.write("big", big.data(), 559990);  // still usable after a refused write
    e = error_of([&] { w.write("big", big.data(), 11); });
    CHECK(e.message == "tensor \"big\": 11 bytes given, but only 10 of its 560000 bytes remain");
    e = error_of([&] { w.write("nope", big.data(), 1); });
    CHECK(e.code == errc::tensor_not_found);
    CHECK(e.message == "no tensor named \"nope\" was declared");
    e = error_of([&] { w.write("bgi", big.data(), 1); });  // two edits from "big"
    CHECK(e.message == "no tensor named \"bgi\" was declared (did you mean \"big\"?)");
    e = error_of([&] { w.write(std::size_t{6}, big.data(), 1); });
    CHECK(e.code == errc::out_of_range);
    CHECK(e.message == "tensor index 6 is out of range (6 tensors)");
    e = error_of([&] { w.commit(); });
    CHECK(e.code == errc::stream_error);
    CHECK(e.message == "cannot commit: tensor \"big\" has 559990 of its 560000 bytes (5 tensors are incomplete)");
    w.write("big", big.data(), 10);
    w.write("w", big.data(), 12000);
    w.write("half", big.data(), 16396);
    w.write("bytes", big.data(), 10007);
    e = error_of([&] { w.commit(); });
    CHECK(e.message == "cannot commit: tensor \"flag\" has 0 of its 1 bytes");
    w.write("flag", big.data(), 1);
    w.commit();
    e = error_of([&] { w.write("flag", big.data(), 0); });
    CHECK(e.code == errc::stream_error);
    CHECK(e.message == "stream_writer is already committed");
    CHECK(error_of([&] { w.commit(); }).message == "stream_writer is already committed");

    st::stream_writer moved(std::move(w));
    CHECK(moved.committed());
    CHECK(error_of([&] { w.commit(); }).message == "stream_writer was moved from");  // NOLINT(bugprone-use-after-move)

    CHECK(error_of([&] { st::stream_writer(st::stream_writer::sink_function{}, {}); }).code == errc::invalid_argument);
}

TEST_CASE("writer: a tensor_ref without bytes is a declaration") {
    const st::tensor_ref d("x", dtype::F32, {2, 3});
    CHECK(d.name() == "x");
    CHECK(d.dtype() == dtype::F32);
    CHECK(d.shape() == st::span<const std::uint64_t>(std::vector<std::uint64_t>{2, 3}));
    CHECK(d.byte_size() == 0);
    CHECK(d.data() == nullptr);
    // save() and serialize() check its 0 bytes like any others: fine for an empty tensor only.
    const auto e = error_of([&] { st::serialize({d}); });
    CHECK(e.code == errc::invalid_tensor);
    CHECK(e.message == "tensor \"x\": 0 bytes given, but dtype F32 with shape [2, 3] needs 24");
    CHECK(st::serialize({{"e", dtype::F32, {0, 2}}}) == st::serialize({{"e", dtype::F32, {0, 2}, std::vector<float>{}}}));
    // stream_writer takes the name, dtype and shape of any tensor_ref; its bytes come through write().
    const std::vector<float> values{1, 2, 3, 4, 5, 6};
    std::vector<std::byte> out;
    st::stream_writer w([&](const std::byte* p, std::size_t n) { out.insert(out.end(), p, p + n); },
                        {{"x", dtype::F32, {2, 3}, values}});
    w.write("x", values.data(), values.size() * sizeof(float));
    w.commit();
    CHECK(out == st::serialize({{"x", dtype::F32, {2, 3}, values}}));
}

TEST_CASE("writer: an exception from the sink aborts the stream") {
    int calls = 0;
    st::stream_writer w(
        [&](const std::byte*, std::size_t) {
            if (++calls == 2) throw std::runtime_error("sink is full");
        },
        {{"a", dtype::U8, {1u << 20}}});
    const std::vector<std::byte> data(1u << 20);
    CHECK_THROWS_WITH_AS(w.write("a", data.data(), data.size()), "sink is full", std::runtime_error);
    const auto e = error_of([&] { w.write("a", data.data(), 1); });
    CHECK(e.code == errc::stream_error);
    CHECK(e.message == "stream_writer was aborted by an earlier error");
}

// ---- Atomic replacement --------------------------------------------------------------------------

TEST_CASE("writer: a data source that throws halfway leaves the target as it was and no temporary file") {
    temp_dir dir;
    const std::string target = dir.file("model.safetensors");
    test_support::write_all(target, bytes_of("previous"));
    const std::vector<std::byte> chunk(1000, std::byte{7});
    auto produce = [&](st::stream_writer& w) {
        for (int i = 0; i < 100; ++i) {
            if (i == 50) throw std::runtime_error("data source failed");
            w.write("t", chunk.data(), chunk.size());
        }
    };
    CHECK_THROWS_WITH_AS(
        [&] {
            st::stream_writer w(target, {{"t", dtype::U8, {100000}}});
            CHECK(dir.entries().size() == 2);  // the target and the temporary file
            produce(w);
            w.commit();
        }(),
        "data source failed", std::runtime_error);
    CHECK(text_of(test_support::read_all(target)) == "previous");
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});

    // abort() discards at once; a later commit is refused.
    st::stream_writer w(target, {{"t", dtype::U8, {1}}});
    w.write("t", chunk.data(), 1);
    w.abort();
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
    CHECK(error_of([&] { w.commit(); }).code == errc::stream_error);
    CHECK(text_of(test_support::read_all(target)) == "previous");

    // A writer that is moved over is discarded too.
    st::stream_writer first(target, {{"t", dtype::U8, {1}}});
    first = st::stream_writer(target, {{"u", dtype::U8, {1}}});
    CHECK(dir.entries().size() == 2);
    first.write("u", chunk.data(), 1);
    first.commit();
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
    CHECK(st::open(target).contains("u"));
}

TEST_CASE("writer: save replaces the target; failures before the rename leave it untouched") {
    temp_dir dir;
    const std::string target = dir.file("m.safetensors");
    const std::vector<float> values = iota_floats(4);
    st::save(target, {{"a", dtype::F32, {4}, values}});
    st::save(target, {{"b", dtype::F32, {2, 2}, values}}, {{"v", "2"}});
    const auto f = st::open(target);
    CHECK(f.keys() == std::vector<std::string_view>{"b"});
    CHECK(f.metadata()->at("v") == "2");
    CHECK(dir.entries() == std::vector<std::string>{"m.safetensors"});

    // The target is a folder: refused before anything is written; the folder and its contents stay.
    fs::create_directory(dir.file("folder"));
    test_support::write_all(dir.file("folder/inside"), bytes_of("x"));
    auto e = error_of([&] { st::save(dir.file("folder"), {{"a", dtype::F32, {4}, values}}); });
    CHECK(e.code == errc::not_regular_file);
    CHECK(e.message == "cannot write \"" + dir.file("folder") + "\": it is a directory");
    CHECK(e.path == dir.file("folder"));
    CHECK(e.system_code == std::errc::is_a_directory);
    CHECK(fs::is_directory(dir.file("folder")));
    CHECK(dir.entries() == std::vector<std::string>{"folder", "m.safetensors"});

    // A folder that does not exist, and a file where a folder should be.
    e = error_of([&] { st::save(dir.file("missing/m.safetensors"), {}); });
    CHECK(e.code == errc::file_not_found);
    CHECK(e.message == "cannot write \"" + dir.file("missing/m.safetensors") + "\": the folder \"" +
                           dir.file("missing") + "\" does not exist");
    CHECK(e.system_code == std::errc::no_such_file_or_directory);
    e = error_of([&] { st::save(dir.file("m.safetensors/x.safetensors"), {}); });
    CHECK(e.code == errc::file_not_found);
    CHECK(e.message == "cannot write \"" + dir.file("m.safetensors/x.safetensors") + "\": \"" +
                           dir.file("m.safetensors") + "\" is not a folder");
    CHECK(e.system_code == std::errc::not_a_directory);
    // A path that names a folder.
    e = error_of([&] { st::save(dir.str() + "/", {}); });
    CHECK(e.code == errc::invalid_argument);
    CHECK(e.message == "cannot write to \"" + dir.str() + "/\": the path names a folder, not a file");
    CHECK(error_of([&] { st::save("", {}); }).code == errc::invalid_argument);
}

TEST_CASE("writer: a long target name still gets a temporary file beside it") {
    temp_dir dir;
    const std::string name = std::string(240, 'n') + ".st";  // within NAME_MAX (255)
    st::save(dir.file(name), {});
    CHECK(dir.entries() == std::vector<std::string>{name});
}

TEST_CASE("writer: rewriting a file onto its own path") {
    temp_dir dir;
    const std::string path = dir.file("self.safetensors");
    const auto original = test_support::read_all(data_path("reference/valid/all_dtypes.safetensors"));
    test_support::write_all(path, original);
    {
        const auto f = st::open(path);  // mapped while it is replaced
#if defined(_WIN32)
        // Windows cannot replace a file that is open or mapped: one documented error, the
        // target keeps its content and no temporary file is left.
        const auto e = error_of([&] { st::save(path, f); });
        CHECK(e.code == errc::file_in_use);
        CHECK(e.message == "cannot replace \"" + path + "\": the file is in use (open or mapped by this or another process)");
        CHECK(dir.entries() == std::vector<std::string>{"self.safetensors"});
#else
        st::save(path, f);
#endif
    }
    CHECK(test_support::read_all(path) == original);
}

TEST_CASE("writer: a symlink target is replaced by a regular file; what it pointed to is untouched" *
          POSIX_ONLY("symbolic links need a privilege on Windows")) {
#if !defined(_WIN32)
    temp_dir dir;
    const std::string real = dir.file("real.safetensors");
    const std::string link = dir.file("link.safetensors");
    test_support::write_all(real, bytes_of("real contents"));
    REQUIRE(::symlink("real.safetensors", link.c_str()) == 0);
    st::save(link, {});
    struct stat st_link {};
    REQUIRE(::lstat(link.c_str(), &st_link) == 0);
    CHECK(S_ISREG(st_link.st_mode));
    CHECK(text_of(test_support::read_all(real)) == "real contents");
    CHECK(st::open(link).empty());
#endif
}

TEST_CASE("writer: the new file's mode follows the umask" *
          POSIX_ONLY("umask and POSIX file modes")) {
#if !defined(_WIN32)
    temp_dir dir;
    const mode_t old_mask = ::umask(027);
    st::save(dir.file("a.safetensors"), {});
    ::umask(002);
    st::save(dir.file("b.safetensors"), {});
    ::umask(old_mask);
    struct stat a {}, b {};
    REQUIRE(::stat(dir.file("a.safetensors").c_str(), &a) == 0);
    REQUIRE(::stat(dir.file("b.safetensors").c_str(), &b) == 0);
    CHECK((a.st_mode & 0777) == 0640);
    CHECK((b.st_mode & 0777) == 0664);
#endif
}

TEST_CASE("writer: keep_in_cache = false writes the same bytes and leaves little of them cached" *
          POSIX_ONLY("measures page-cache residency with mmap and mincore")) {
#if !defined(_WIN32)
    temp_dir dir;
    const std::string path = dir.file("big.safetensors");
    constexpr std::size_t tensor_size = std::size_t{32} << 20;  // 4 x 32 MiB: several writeback rounds
    std::vector<std::vector<std::byte>> data;
    std::vector<std::string> names;
    for (unsigned i = 0; i < 4; ++i) {
        data.push_back(pattern(tensor_size, i));
        names.push_back("t" + std::to_string(i));
    }
    st::write_options options;
    options.keep_in_cache = false;
    auto check_file = [&] {
        const auto f = st::open(path);
        REQUIRE(f.size() == 4);
        for (unsigned i = 0; i < 4; ++i) {
            const auto bytes = f[names[i]].bytes();
            REQUIRE(bytes.size() == data[i].size());
            CHECK(std::memcmp(bytes.data(), data[i].data(), bytes.size()) == 0);
        }
    };
    // The share of the file's pages in the page cache (mincore on a fresh mapping).
    auto cached_fraction = [&] {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        struct stat info {};
        REQUIRE(::fstat(fd, &info) == 0);
        const auto size = static_cast<std::size_t>(info.st_size);
        void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
        ::close(fd);
        REQUIRE(map != MAP_FAILED);
        const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
        std::vector<unsigned char> resident((size + page - 1) / page);
        REQUIRE(::mincore(map, size, resident.data()) == 0);
        ::munmap(map, size);
        return static_cast<double>(std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return r & 1; })) /
               static_cast<double>(resident.size());
    };

    std::vector<st::tensor_ref> refs;
    for (unsigned i = 0; i < 4; ++i) refs.emplace_back(names[i], dtype::U8, st::shape_ref{tensor_size}, data[i]);
    st::save(path, refs, {}, options);
#if defined(__linux__)
    // On tmpfs/ramfs the page cache is the storage, so nothing can be dropped.
    struct statfs fs_info {};
    REQUIRE(::statfs(dir.path.c_str(), &fs_info) == 0);
    // f_type is a signed word (int on 32-bit hosts): compare its low 32 bits, unsigned.
    const auto fs_type = static_cast<std::uint32_t>(fs_info.f_type);
    const bool memory_fs = fs_type == 0x01021994u /* TMPFS_MAGIC */ || fs_type == 0x858458f6u /* RAMFS */;
    if (memory_fs)
        MESSAGE("the test folder is in memory (tmpfs): page-cache residency not checked");
    else
        CHECK(cached_fraction() < 0.75);  // at most about two 32 MiB windows of 128 stay cached
#else
    (void)cached_fraction;
#endif
    check_file();

    // Streaming, out of order (last tensor first), in 3 MiB chunks.
    {
        std::vector<st::tensor_ref> decls;
        for (unsigned i = 0; i < 4; ++i) decls.push_back({names[i], dtype::U8, {tensor_size}});
        st::stream_writer w(path, decls, {}, options);
        for (unsigned i = 4; i-- > 0;)
            for (std::size_t done = 0; done < tensor_size; done += 3 << 20)
                w.write(names[i], data[i].data() + done, std::min<std::size_t>(3 << 20, tensor_size - done));
        w.commit();
    }
    check_file();
    CHECK(dir.entries() == std::vector<std::string>{"big.safetensors"});
#endif
}

#if !defined(_WIN32)
namespace {

// Runs body in a child process limited to limit bytes per file (RLIMIT_FSIZE binds root too),
// with SIGXFSZ ignored so a write past the limit fails with EFBIG. Returns the exit status.
template <class Body>
int in_child_with_file_limit(rlim_t limit, Body body) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::signal(SIGXFSZ, SIG_IGN);
        struct rlimit r {limit, limit};
        if (::setrlimit(RLIMIT_FSIZE, &r) != 0) ::_exit(90);
        int status = 91;
        try {
            status = body();
        } catch (...) {
            status = 92;
        }
        ::_exit(status);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

} // namespace
#endif  // !_WIN32

TEST_CASE("writer: a file-size limit (RLIMIT_FSIZE) fails the write cleanly" *
          POSIX_ONLY("sets RLIMIT_FSIZE in a forked child")) {
#if !defined(_WIN32)
    temp_dir dir;
    const std::string target = dir.file("model.safetensors");
    const auto previous = test_support::read_all(data_path("reference/valid/lora_metadata.safetensors"));
    test_support::write_all(target, previous);
    const std::vector<std::byte> big = pattern(1 << 20, 3);
    const std::string expected_message = "cannot write \"" + target + "\": File too large";

    // 1 MiB of tensor against a 64 KiB limit, through save() ...
    CHECK(in_child_with_file_limit(64 << 10, [&] {
              const auto e = error_of([&] { st::save(target, {{"big", dtype::U8, {1 << 20}, big}}); });
              if (e.code != errc::write_failed) return 1;
              return e.message == expected_message ? 0 : 2;
          }) == 0);
    CHECK(test_support::read_all(target) == previous);
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});

    // ... and through the streaming writer, in small chunks that fill the staging buffer.
    CHECK(in_child_with_file_limit(64 << 10, [&] {
              const auto e = error_of([&] {
                  st::stream_writer w(target, {{"big", dtype::U8, {1 << 20}}});
                  for (std::size_t done = 0; done < big.size(); done += 4097)
                      w.write("big", big.data() + done, std::min<std::size_t>(4097, big.size() - done));
                  w.commit();
              });
              if (e.code != errc::write_failed) return 1;
              return e.message == expected_message ? 0 : 2;
          }) == 0);
    CHECK(test_support::read_all(target) == previous);
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});

    // The same write under a limit it fits in succeeds.
    CHECK(in_child_with_file_limit(2 << 20, [&] {
              st::save(target, {{"big", dtype::U8, {1 << 20}, big}});
              return 0;
          }) == 0);
    CHECK(st::open(target)["big"].byte_size() == big.size());
#endif
}

// ---- safetensors-rewrite ------------------------------------------------------------------------

#if defined(SAFETENSORS_REWRITE_EXE) && !defined(_WIN32)

namespace {

struct tool_result {
    int status = -1;
    std::string out;
    std::string err;
};

// Runs the tool with stdout and stderr in files of dir. With file_limit, under RLIMIT_FSIZE and
// with SIGXFSZ at its default (fatal) action, so the tool must ignore it itself.
tool_result run_rewrite(const temp_dir& dir, const std::vector<std::string>& args, rlim_t file_limit = RLIM_INFINITY) {
    const std::string out_path = (dir.path.parent_path() / (dir.path.filename().string() + ".stdout")).string();
    const std::string err_path = (dir.path.parent_path() / (dir.path.filename().string() + ".stderr")).string();
    std::vector<std::string> storage{SAFETENSORS_REWRITE_EXE};
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : storage) argv.push_back(&s[0]);
    argv.push_back(nullptr);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0) ::_exit(120);
        ::dup2(out, 1);
        ::dup2(err, 2);
        std::signal(SIGXFSZ, SIG_DFL);
        if (file_limit != RLIM_INFINITY) {
            struct rlimit r {file_limit, file_limit};
            if (::setrlimit(RLIMIT_FSIZE, &r) != 0) ::_exit(121);
        }
        ::execv(argv[0], argv.data());
        ::_exit(122);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    tool_result result;
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.out = text_of(test_support::read_all(out_path));
    result.err = text_of(test_support::read_all(err_path));
    std::remove(out_path.c_str());
    std::remove(err_path.c_str());
    return result;
}

} // namespace

TEST_CASE("rewrite tool: every reference fixture is reproduced byte for byte") {
    temp_dir dir;
    for (const auto& path : fixture_files()) {
        CAPTURE(path);
        const auto r = run_rewrite(dir, {path, dir.file("out.safetensors"), "--no-sync"});
        CHECK(r.status == 0);
        CHECK(r.out.empty());
        CHECK(r.err.empty());
        CHECK(test_support::read_all(dir.file("out.safetensors")) == test_support::read_all(path));
    }
    // Standard output as OUT.
    const std::string lora = data_path("reference/valid/lora_metadata.safetensors");
    const auto r = run_rewrite(dir, {lora, "-"});
    CHECK(r.status == 0);
    CHECK(bytes_of(r.out) == test_support::read_all(lora));
    CHECK(dir.entries() == std::vector<std::string>{"out.safetensors"});
}

TEST_CASE("rewrite tool: metadata edits, --only, --align, and non-canonical input") {
    temp_dir dir;
    const std::string lora = data_path("reference/valid/lora_metadata.safetensors");
    const std::string out = dir.file("out.safetensors");
    const auto in = st::open(lora);

    auto r = run_rewrite(dir, {"--set-metadata", "ss_seed=42", lora, "--drop-metadata", "empty", out,
                               "--set-metadata=new=a=b", "--drop-metadata", "absent"});
    REQUIRE(r.status == 0);
    auto f = st::open(out);
    st::metadata_map expected = *in.metadata();
    expected.set("ss_seed", "42");
    expected.erase("empty");
    expected.set("new", "a=b");
    CHECK(*f.metadata() == expected);
    CHECK(f.keys() == in.keys());

    const std::string alpha = "lora_unet_down_blocks_0_attentions_0_proj_in.alpha";
    const std::string down = "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight";
    r = run_rewrite(dir, {lora, out, "--only", alpha, "--only", down, "--only", alpha, "--align", "4096"});
    REQUIRE(r.status == 0);
    f = st::open(out);
    CHECK(f.keys() == std::vector<std::string_view>{down, alpha});
    CHECK(f.header().data_offset() == 4096);
    CHECK(*f.metadata() == *in.metadata());
    CHECK(st::is_canonical(f, st::write_options{4096, true}));
    CHECK(std::equal(f[alpha].bytes().begin(), f[alpha].bytes().end(), in[alpha].bytes().begin()));

    // Metadata created on a file that has none; dropping every key leaves an empty map.
    const std::string plain = data_path("reference/valid/single_scalar_f32.safetensors");
    REQUIRE(run_rewrite(dir, {plain, out, "--set-metadata", "format=pt"}).status == 0);
    CHECK(st::open(out).metadata()->at("format") == "pt");
    REQUIRE(run_rewrite(dir, {out, out, "--drop-metadata", "format"}).status == 0);  // in place
    REQUIRE(st::open(out).metadata() != nullptr);
    CHECK(st::open(out).metadata()->empty());

    // A valid but non-canonical file comes out canonical.
    const std::string odd = data_path("reference/malformed/out_of_order_in_json_ok.safetensors");
    REQUIRE(run_rewrite(dir, {odd, out}).status == 0);
    CHECK(st::is_canonical(st::open(out)));
    check_same_content(st::open(odd), st::open(out));
    CHECK(dir.entries() == std::vector<std::string>{"out.safetensors"});
}

TEST_CASE("rewrite tool: errors give status 1 (2 for usage), one line on stderr, and leave OUT alone") {
    temp_dir dir;
    const std::string out = dir.file("out.safetensors");
    test_support::write_all(out, bytes_of("keep me"));
    const std::string lora = data_path("reference/valid/lora_metadata.safetensors");
    struct failing {
        std::vector<std::string> args;
        std::string err;  // the whole line, or its start when it does not end in a newline
        int status;
    };
    // Usage errors (status 2) name the flag; errors from the files give status 1.
    const std::vector<failing> cases = {
        {{lora}, "error: OUT is required\n", 2},
        {{lora, out, "--align", "12"}, "error: --align needs a positive multiple of 8, got \"12\"\n", 2},
        {{lora, out, "--align", "-8"}, "error: --align needs a positive multiple of 8, got \"-8\"\n", 2},
        {{lora, out, "--only", "nope"}, "error: no tensor named \"nope\" in \"" + lora + "\"\n", 1},
        {{lora, out, "--set-metadata", "novalue"}, "error: --set-metadata needs KEY=VALUE, got \"novalue\"\n", 2},
        {{lora, out, "--bogus"}, "error: The following argument was not expected: --bogus\n", 2},
        {{lora, out, "--only"}, "error: --only: 1 required NAME missing\n", 2},
        {{lora, out, "--to-dtype", "F8_E4M3"}, "error: --to-dtype: F8_E4M3 not in {F16,BF16,F32}\n", 2},
        {{lora, out, "--max-shard-size", "5XB"},
         "error: --max-shard-size needs a positive size such as 5GB, 500MB or 2GiB, got \"5XB\"\n", 2},
        {{lora, out, "--rename", "("}, "error: --rename needs REGEX=REPLACEMENT, got \"(\"\n", 2},
        {{lora, out, "--rename", "(=x"}, "error: invalid --rename regular expression \"(\": ", 2},
        {{lora, out, "--rename", "^lora_.*=x"}, "error: --rename gives tensors \"lora_", 1},
        {{dir.file("missing"), out}, "error: cannot open \"" + dir.file("missing") + "\": No such file or directory\n", 1},
        {{data_path("reference/malformed/duplicate_key.safetensors"), out},
         "error: \"" + data_path("reference/malformed/duplicate_key.safetensors") + "\": duplicate tensor name \"t\"\n", 1},
    };
    for (const auto& c : cases) {
        CAPTURE(c.args);
        const auto r = run_rewrite(dir, c.args);
        CHECK(r.status == c.status);
        CHECK(r.out.empty());
        if (c.err.back() == '\n') CHECK(r.err == c.err);
        else CHECK(r.err.rfind(c.err, 0) == 0);  // the regex library's words follow
        CHECK(text_of(test_support::read_all(out)) == "keep me");
        CHECK(dir.entries() == std::vector<std::string>{"out.safetensors"});
    }

    // A file-size limit: the tool ignores SIGXFSZ, so it reports EFBIG and cleans up.
    const std::string big = data_path("reference/valid/all_dtypes.safetensors");
    const auto r = run_rewrite(dir, {big, out}, 4096);
    CHECK(r.status == 1);
    CHECK(r.err == "error: cannot write \"" + out + "\": File too large\n");
    CHECK(text_of(test_support::read_all(out)) == "keep me");
    CHECK(dir.entries() == std::vector<std::string>{"out.safetensors"});
}

TEST_CASE("rewrite tool: --help documents every option") {
    temp_dir dir;
    const auto r = run_rewrite(dir, {"--help"});
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    for (const char* option : {"--set-metadata K=V", "--drop-metadata K", "--only NAME", "--align N", "--no-sync",
                               "--help", "symbolic link", "umask", "byte for byte"})
        CHECK_MESSAGE(r.out.find(option) != std::string::npos, option);
}

#elif defined(_WIN32)

TEST_CASE("rewrite tool: every case" * POSIX_ONLY("runs the tool in a child process through fork and exec")) {}

#endif  // SAFETENSORS_REWRITE_EXE
