// Tests for sharded checkpoints (sharded.hpp, sharded_writer.hpp):
//   - the transformers fixture gpt2_tiny_sharded opens as one collection (folder, index file,
//     symlinked Hugging Face cache layout) with every tensor equal to the unsharded file's;
//   - index parsing: every refused shard name and malformed index, with exact messages;
//   - validate(): missing shards, tensors missing from a shard, in two shards, not in the map,
//     wrong total_size;
//   - save_sharded reproduces the fixture byte for byte, and follows huggingface_hub's split;
//   - threads opening shards lazily at the same time.
#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>
#include <safetensors/sharded.hpp>
#include <safetensors/sharded_writer.hpp>

#include "support/bytes.hpp"
#include "support/platform.hpp"
#include "support/temp_dir.hpp"
#include "support/errors.hpp"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace st = safetensors;
namespace fs = std::filesystem;
using test_support::error_of;
using test_support::temp_dir;

namespace {

const std::string sharded_dir = test_support::data_path("reference/model/gpt2_tiny_sharded");
const std::string single_path = test_support::data_path("reference/model/gpt2_tiny/model.safetensors");
const std::string fixture_index = sharded_dir + "/model.safetensors.index.json";

std::string shard_file(int n) { return "model-0000" + std::to_string(n) + "-of-00005.safetensors"; }

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    REQUIRE(out.good());
}

std::string read_text(const std::string& path) {
    const auto bytes = test_support::read_all(path);
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::string content_of(const st::tensor_view& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.byte_size()); }

// Every tensor of the collection equals the unsharded file's, and the two hold the same names.
void check_equal_to_single(const st::sharded_file& model) {
    const auto single = st::open(single_path);
    REQUIRE(model.size() == single.size());
    CHECK(model.sorted_keys() == single.sorted_keys());
    for (const st::tensor_view& view : model) {
        CAPTURE(view.name());
        const st::tensor_view want = single.tensor(view.name());
        CHECK(view.dtype() == want.dtype());
        CHECK(std::vector<std::uint64_t>(view.shape().begin(), view.shape().end()) ==
              std::vector<std::uint64_t>(want.shape().begin(), want.shape().end()));
        CHECK(content_of(view) == content_of(want));
    }
}

// GPT-2's state_dict order (what save_pretrained walked to split the fixture).
std::vector<std::string> gpt2_state_dict_order() {
    std::vector<std::string> names = {"transformer.wte.weight", "transformer.wpe.weight"};
    for (int layer = 0; layer < 2; ++layer)
        for (const char* part : {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                                 "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                                 "mlp.c_proj.weight", "mlp.c_proj.bias"})
            names.push_back("transformer.h." + std::to_string(layer) + "." + part);
    names.push_back("transformer.ln_f.weight");
    names.push_back("transformer.ln_f.bias");
    return names;
}

// A folder with shards a.safetensors / b.safetensors holding the given tensors (4-byte U8
// tensors) and an index with the given weight_map and metadata JSON.
std::string make_checkpoint(const temp_dir& dir, const std::vector<std::string>& in_a, const std::vector<std::string>& in_b,
                            const std::string& index) {
    static const std::vector<std::uint8_t> bytes = {1, 2, 3, 4};
    for (const auto& [file, names] : {std::pair<std::string, const std::vector<std::string>*>{"a.safetensors", &in_a},
                                      {"b.safetensors", &in_b}}) {
        std::vector<st::tensor_ref> refs;
        for (const auto& n : *names) refs.emplace_back(n, st::dtype::U8, st::shape_ref{4}, bytes);
        st::save(dir.file(file), refs);
    }
    write_text(dir.file("model.safetensors.index.json"), index);
    return dir.file("model.safetensors.index.json");
}

} // namespace

TEST_CASE("index: the sharded fixture is one collection equal to the unsharded file") {
    for (const std::string& path : {sharded_dir, sharded_dir + "/", fixture_index}) {
        CAPTURE(path);
        const st::sharded_file model = st::open_sharded(path);
        CHECK(model.is_index());
        CHECK(model.index_path() == (path == fixture_index ? fixture_index : st::detail::as_folder(path) + "model.safetensors.index.json"));
        CHECK(model.shard_names() == std::vector<std::string>{shard_file(1), shard_file(2), shard_file(3), shard_file(4), shard_file(5)});
        check_equal_to_single(model);
        model.validate();
    }
    const st::sharded_file model = st::open_sharded(sharded_dir);
    // keys(): weight_map order (sorted in the file, as transformers writes it).
    const auto keys = model.keys();
    CHECK(keys.front() == "transformer.h.0.attn.c_attn.bias");
    CHECK(keys.back() == "transformer.wte.weight");
    CHECK(model.sorted_keys() == keys);
    CHECK(model.shard_name_of("transformer.wpe.weight") == shard_file(2));
    CHECK(model.shard_of("transformer.wte.weight") == 0);
    CHECK(model.file_for("transformer.ln_f.bias").size() == 4);
    CHECK(model.shard(4).source()->description() == sharded_dir + "/" + shard_file(5));
    CHECK(model.shard_path(2) == sharded_dir + "/" + shard_file(3));
    CHECK(model.contains("transformer.h.1.ln_1.bias"));
    CHECK_FALSE(model.contains("lm_head.weight"));
    CHECK_FALSE(model.find("lm_head.weight").has_value());
    CHECK(model.find("transformer.ln_f.bias")->byte_size() == 128);
    CHECK(model.tensor_at(0).name() == keys.front());
    CHECK(model["transformer.wte.weight"].shape()[0] == 300);

    // Shard metadata stays the shard's.
    CHECK(model.shard(0).metadata()->at("format") == "pt");

    // Views of shards slice like any view.
    const auto single = st::open(single_path);
    const st::tensor_view wte = model.tensor("transformer.wte.weight");
    const st::tensor rows = wte.slice("10:20, 4:").to_tensor();
    const st::tensor want = single.tensor("transformer.wte.weight").slice("10:20, 4:").to_tensor();
    CHECK(rows.byte_size() == 10 * 28 * 4);
    CHECK(std::memcmp(rows.data(), want.data(), want.byte_size()) == 0);
    CHECK(wte.split(0, 1, 3).to_tensor().byte_size() == 100 * 32 * 4);

    // A view outlives the collection that made it.
    st::tensor_view kept = st::open_sharded(sharded_dir).tensor("transformer.wpe.weight");
    CHECK(content_of(kept) == content_of(single.tensor("transformer.wpe.weight")));
}

TEST_CASE("index: metadata, raw JSON, and the lookup errors") {
    const st::sharded_file model = st::open_sharded(sharded_dir);
    REQUIRE(model.total_size().has_value());
    CHECK(*model.total_size() == 148480);
    REQUIRE(model.metadata_json() != nullptr);
    CHECK(*model.metadata_json() == nlohmann::json{{"total_parameters", 37120}, {"total_size", 148480}});
    REQUIRE(model.metadata() != nullptr);
    CHECK(model.metadata()->size() == 2);
    CHECK(model.metadata()->at("total_size") == "148480");
    CHECK(model.metadata()->at("total_parameters") == "37120");
    CHECK(model.index().raw_json() == read_text(fixture_index));

    auto e = error_of([&] { model.tensor("lm_head.weight"); });
    CHECK(e.code == st::errc::tensor_not_found);
    CHECK(e.message == "no tensor named \"lm_head.weight\" in index \"" + fixture_index + "\"");
    e = error_of([&] { model.shard(5); });
    CHECK(e.code == st::errc::out_of_range);
    CHECK(e.message == "shard index 5 is out of range (5 shards)");
    CHECK(model.try_tensor("nope").error().code() == st::errc::tensor_not_found);

    // Metadata values of any JSON type; "metadata": null and no metadata are the same.
    auto t = st::parse_index(R"({"metadata": {"note": "hi", "list": [1, "x"], "total_size": 0}, "weight_map": {}})");
    CHECK(t.metadata()->at("note") == "hi");
    CHECK(t.metadata()->at("list") == "[1,\"x\"]");
    CHECK(t.total_size() == std::optional<std::uint64_t>(0));
    CHECK(st::parse_index(R"({"metadata": null, "weight_map": {}})").metadata() == nullptr);
    CHECK(st::parse_index(R"({"weight_map": {}, "other": [{"x": 1}]})").metadata_json() == nullptr);
}

TEST_CASE("index: a folder or a file without an index is a collection of one shard") {
    const std::string folder = test_support::data_path("reference/model/gpt2_tiny");
    for (const std::string& path : {folder, single_path}) {
        CAPTURE(path);
        const st::sharded_file model = st::open_sharded(path);
        CHECK_FALSE(model.is_index());
        CHECK(model.shard_names() == std::vector<std::string>{"model.safetensors"});
        CHECK(model.metadata()->at("format") == "pt");
        CHECK(model.metadata_json() == nullptr);
        CHECK_FALSE(model.total_size().has_value());
        check_equal_to_single(model);
        model.validate();
        CHECK(model.keys() == st::open(single_path).keys());
    }
    temp_dir dir;
    auto e = error_of([&] { st::open_sharded(dir.str()); });
    CHECK(e.code == st::errc::file_not_found);
    CHECK(e.message == "folder \"" + dir.str() +
                           "\" holds neither \"model.safetensors.index.json\" nor \"model.safetensors\"");
}

TEST_CASE("index: unsafe shard names are refused") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"("")", "it is empty"},
        {R"("/etc/passwd")", "it is an absolute path"},
        {R"("\\server\\share.safetensors")", "it is an absolute path"},
        {R"(".")", "it is \".\""},
        {R"("..")", "it is \"..\""},
        {R"("../model.safetensors")", "it contains \"/\""},
        {R"("sub/model.safetensors")", "it contains \"/\""},
        {R"("..\\model.safetensors")", "it contains a backslash"},
        {R"("model.safetensors\u0000.txt")", "it contains a NUL byte"},
        {R"("C:model.safetensors")", "it contains \":\" (a drive or stream separator on Windows)"},
    };
    for (const auto& c : cases) {  // no structured bindings: clang 14 cannot capture them
        const std::string& json_name = c.first;
        const std::string& reason = c.second;
        CAPTURE(json_name);
        const std::string text = R"({"weight_map": {"ok": "a.safetensors", "w": )" + json_name + "}}";
        auto e = error_of([&] { st::parse_index(text); });
        CHECK(e.code == st::errc::unsafe_shard_name);
        const std::string shown = st::detail::quote(nlohmann::json::parse(json_name).get<std::string>());
        CHECK(e.message == "index: tensor \"w\" names shard " + shown + ", which is not a plain file name: " + reason);
    }
    // From a file, the message names it; nothing outside the folder is opened.
    temp_dir dir;
    const std::string index = dir.file("model.safetensors.index.json");
    write_text(index, R"({"weight_map": {"w": "../model.safetensors"}})");
    auto e = error_of([&] { st::open_sharded(index); });
    CHECK(e.code == st::errc::unsafe_shard_name);
    CHECK(e.message == "index \"" + index + "\": tensor \"w\" names shard \"../model.safetensors\", which is not a plain file name: it contains \"/\"");
}

TEST_CASE("index: malformed indexes are refused with exact messages") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"[]", "index must be a JSON object, got an array"},
        {"\"x\"", "index must be a JSON object, got \"x\""},
        {"{}", "index has no \"weight_map\""},
        {R"({"metadata": {}})", "index has no \"weight_map\""},
        {R"({"weight_map": []})", "index: \"weight_map\" must be an object, got an array"},
        {R"({"weight_map": null})", "index: \"weight_map\" must be an object, got null"},
        {R"({"weight_map": {"w": 5}})", "index: weight_map entry for tensor \"w\" must be a string (a shard file name), got 5"},
        {R"({"weight_map": {"w": ["a"]}})", "index: weight_map entry for tensor \"w\" must be a string (a shard file name), got an array"},
        {R"({"weight_map": {"w": "a", "w": "b"}})", "index: tensor \"w\" is listed twice in weight_map"},
        {R"({"weight_map": {"w": "a", "\u0077": "a"}})", "index: tensor \"w\" is listed twice in weight_map"},
        {R"({"weight_map": {}, "weight_map": {}})", "index: key \"weight_map\" is given twice"},
        {R"({"metadata": null, "metadata": {}, "weight_map": {}})", "index: key \"metadata\" is given twice"},
        {R"({"metadata": [], "weight_map": {}})", "index: \"metadata\" must be an object or null, got an array"},
        {R"({"metadata": "x", "weight_map": {}})", "index: \"metadata\" must be an object or null, got \"x\""},
        {R"({"metadata": {"a": 1, "a": 2}, "weight_map": {}})", "index: key \"a\" is given twice in \"metadata\""},
        {R"({"metadata": {"total_size": -1}, "weight_map": {}})", "index: metadata \"total_size\" must be an unsigned integer, got -1"},
        {R"({"metadata": {"total_size": 1.5}, "weight_map": {}})", "index: metadata \"total_size\" must be an unsigned integer, got 1.5"},
        {R"({"metadata": {"total_size": "10"}, "weight_map": {}})", "index: metadata \"total_size\" must be an unsigned integer, got \"10\""},
        {R"({"weight_map": {})", "invalid JSON in index at byte 18: parse error at line 1, column 18: syntax error while parsing object - unexpected end of input; expected '}'"},
        {R"({"weight_map": {}} x)", "invalid JSON in index at byte 20: parse error at line 1, column 20: syntax error while parsing value - invalid literal; "
                                   "last read: '\"weight_map\": {}} x'; expected end of input"},
        {"", "invalid JSON in index at byte 1: parse error at line 1, column 1: syntax error while parsing value - unexpected end of input; expected '[', '{', or a literal"},
        {std::string("{\"weight_map\": {}}\0", 19), "invalid JSON in index: NUL byte at byte 18"},
        {"\xEF\xBB\xBF{\"weight_map\": {}}", "invalid JSON in index: byte order mark at byte 0"},
        {"{\"weight_map\": {\"\xff\": \"a\"}}", "invalid UTF-8 in index at byte 17"},
        {"{\"x\": " + std::string(127, '[') + std::string(127, ']') + ", \"weight_map\": {}}", "index nests deeper than 127 levels"},
    };
    for (const auto& c : cases) {
        const std::string& text = c.first;
        const std::string& message = c.second;
        CAPTURE(text);
        auto e = error_of([&] { st::parse_index(text); });
        CHECK(e.code == st::errc::invalid_index);
        CHECK(e.message == message);
    }
    // 126 levels inside the top object are fine, as in a header.
    CHECK(st::parse_index("{\"x\": " + std::string(126, '[') + std::string(126, ']') + ", \"weight_map\": {}}").empty());

    // The size limit is checked before reading (a sparse file of max_index_size + 1 bytes).
    temp_dir dir;
    const std::string big = dir.file("model.safetensors.index.json");
    {
        std::ofstream out(big, std::ios::binary);
        out.seekp(static_cast<std::streamoff>(st::max_index_size));
        out.put(' ');
    }
    auto e = error_of([&] { st::open_sharded(dir.str()); });
    CHECK(e.code == st::errc::invalid_index);
    CHECK(e.message == "index \"" + big + "\" is too large: 100000001 bytes, the limit is 100000000");
    CHECK(e.path == big);
}

TEST_CASE("index: missing shards") {
    temp_dir dir;
    fs::copy_file(fixture_index, dir.file("model.safetensors.index.json"));
    for (int n : {1, 3, 4, 5}) fs::copy_file(sharded_dir + "/" + shard_file(n), dir.file(shard_file(n)));
    const std::string index = dir.file("model.safetensors.index.json");
    const st::sharded_file model = st::open_sharded(dir.str());  // open touches no shard
    CHECK(model.tensor("transformer.wte.weight").byte_size() == 38400);
    const std::string expected = "missing shard \"" + shard_file(2) + "\" of index \"" + index + "\": cannot open \"" +
                                 dir.file(shard_file(2)) + "\": No such file or directory";
    auto e = error_of([&] { model.tensor("transformer.wpe.weight"); });
    CHECK(e.code == st::errc::missing_shard);
    CHECK(e.message == expected);
    e = error_of([&] { model.validate(); });
    CHECK(e.code == st::errc::missing_shard);
    CHECK(e.message == expected);
    // A failed open is retried next time: once the shard is there, it opens.
    fs::copy_file(sharded_dir + "/" + shard_file(2), dir.file(shard_file(2)));
    CHECK(model.tensor("transformer.wpe.weight").byte_size() == 8192);
    model.validate();

    // A shard that is not a safetensors file: its own error, naming the shard.
    write_text(dir.file("bad.safetensors"), "abc");
    write_text(index, R"({"weight_map": {"w": "bad.safetensors"}})");
    e = error_of([&] { st::open_sharded(index).tensor("w"); });
    CHECK(e.code == st::errc::header_too_small);
    CHECK(e.message == "shard \"bad.safetensors\" of index \"" + index + "\": header too small: \"" + dir.file("bad.safetensors") +
                           "\" has 3 bytes, fewer than the 8-byte length prefix");
}

TEST_CASE("index: validate() finds shards and weight_map that disagree") {
    temp_dir dir;
    SUBCASE("a listed tensor missing from its shard") {
        const auto index = make_checkpoint(dir, {"a"}, {"b"}, R"({"weight_map": {"a": "a.safetensors", "c": "a.safetensors", "b": "b.safetensors"}})");
        const auto model = st::open_sharded(index);
        CHECK(model.tensor("a").byte_size() == 4);
        const std::string expected =
            "tensor \"c\": the weight_map of index \"" + index + "\" puts it in shard \"a.safetensors\", which has no such tensor";
        auto e = error_of([&] { model.tensor("c"); });
        CHECK(e.code == st::errc::index_mismatch);
        CHECK(e.message == expected);
        CHECK_THROWS_AS(model.find("c"), st::error);
        e = error_of([&] { model.validate(); });
        CHECK(e.code == st::errc::index_mismatch);
        CHECK(e.message == expected);
    }
    SUBCASE("a tensor in two shards") {
        const auto index = make_checkpoint(dir, {"a"}, {"a", "b"}, R"({"weight_map": {"a": "a.safetensors", "b": "b.safetensors"}})");
        const auto model = st::open_sharded(index);
        CHECK(model.tensor("a").source()->description() == dir.file("a.safetensors"));  // lookups follow the map
        auto e = error_of([&] { model.validate(); });
        CHECK(e.code == st::errc::index_mismatch);
        CHECK(e.message == "tensor \"a\" is in two shards: \"a.safetensors\" (where the weight_map of index \"" + index +
                               "\" puts it) and \"b.safetensors\"");
    }
    SUBCASE("a tensor the weight_map does not list") {
        const auto index = make_checkpoint(dir, {"a", "x"}, {"b"}, R"({"weight_map": {"a": "a.safetensors", "b": "b.safetensors"}})");
        auto e = error_of([&] { st::open_sharded(index).validate(); });
        CHECK(e.code == st::errc::index_mismatch);
        CHECK(e.message == "shard \"a.safetensors\" holds tensor \"x\", which the weight_map of index \"" + index +
                               "\" does not list");
    }
    SUBCASE("a wrong total_size") {
        const auto index = make_checkpoint(dir, {"a"}, {"b"},
                                           R"({"metadata": {"total_size": 9}, "weight_map": {"a": "a.safetensors", "b": "b.safetensors"}})");
        auto e = error_of([&] { st::open_sharded(index).validate(); });
        CHECK(e.code == st::errc::index_mismatch);
        CHECK(e.message == "metadata \"total_size\" of index \"" + index + "\" is 9, but the shards hold 8 bytes of tensors");
        write_text(index, R"({"metadata": {"total_size": 8}, "weight_map": {"a": "a.safetensors", "b": "b.safetensors"}})");
        st::open_sharded(index).validate();
    }
}

TEST_CASE("index: the Hugging Face cache layout (snapshots/<rev>/ links into blobs/)" *
          POSIX_ONLY("symbolic links need a privilege on Windows")) {
#if !defined(_WIN32)
    temp_dir dir;
    const fs::path blobs = dir.path / "models--tiny" / "blobs";
    const fs::path snapshot = dir.path / "models--tiny" / "snapshots" / "0123abcd";
    fs::create_directories(blobs);
    fs::create_directories(snapshot);
    std::vector<std::string> files = {"model.safetensors.index.json"};
    for (int n = 1; n <= 5; ++n) files.push_back(shard_file(n));
    int blob = 0;
    for (const auto& name : files) {
        const std::string hash = "blob" + std::to_string(blob++);  // blobs are named by hash, not by file name
        fs::copy_file(sharded_dir + "/" + name, blobs / hash);
        fs::create_symlink(fs::path("..") / ".." / "blobs" / hash, snapshot / name);
    }
    for (const std::string& path : {snapshot.string(), (snapshot / "model.safetensors.index.json").string()}) {
        CAPTURE(path);
        const auto model = st::open_sharded(path);
        CHECK(model.shard_path(0) == (snapshot / shard_file(1)).string());
        check_equal_to_single(model);
        model.validate();
    }
#endif
}

TEST_CASE("index: save_sharded reproduces the transformers fixture byte for byte") {
    const auto single = st::open(single_path);
    std::vector<st::tensor_ref> refs;
    for (const auto& name : gpt2_state_dict_order()) refs.emplace_back(single.tensor(name));
    REQUIRE(refs.size() == single.size());

    temp_dir dir;
    st::sharded_write_options options;
    options.max_shard_size = 40'000;  // max_shard_size="40KB"
    options.write.sync = false;
    const st::sharded_write_result written = st::save_sharded(dir.str(), refs, options);
    CHECK(written.total_size == 148480);
    CHECK(written.total_parameters == 37120);
    CHECK(written.index_file == dir.file("model.safetensors.index.json"));
    REQUIRE(written.shard_files.size() == 5);
    for (int n = 1; n <= 5; ++n) {
        CAPTURE(n);
        CHECK(written.shard_files[static_cast<std::size_t>(n - 1)] == dir.file(shard_file(n)));
        CHECK(test_support::read_all(dir.file(shard_file(n))) == test_support::read_all(sharded_dir + "/" + shard_file(n)));
    }
    CHECK(read_text(written.index_file) == read_text(fixture_index));
    st::open_sharded(dir.str()).validate();

    // The same split from plan_shards: wte alone, then wpe and layer 0's attention, ...
    const auto plan = st::plan_shards(refs, 40'000);
    REQUIRE(plan.size() == 5);
    CHECK(plan[0] == std::vector<std::size_t>{0});
    CHECK(plan[1].size() == 9);
    CHECK(plan[4] == std::vector<std::size_t>{24, 25, 26, 27});
}

TEST_CASE("index: save_sharded options and the split rule") {
    std::vector<std::uint8_t> bytes(100, 7);
    const auto tensor = [&](const char* name, std::uint64_t n) {
        return st::tensor_ref(name, st::dtype::U8, st::shape_ref{n}, bytes.data(), n);
    };
    SUBCASE("a tensor larger than the maximum gets its own shard, placed before the one being filled") {
        const std::vector<st::tensor_ref> refs = {tensor("a", 10), tensor("big", 100), tensor("b", 10), tensor("c", 40)};
        const auto plan = st::plan_shards(refs, 50);
        CHECK(plan == std::vector<std::vector<std::size_t>>{{1}, {0, 2}, {3}});
        CHECK(st::plan_shards(refs, 1000) == std::vector<std::vector<std::size_t>>{{0, 1, 2, 3}});
        CHECK(st::plan_shards(std::vector<st::tensor_ref>{}, 10) == std::vector<std::vector<std::size_t>>{{}});
        // Exactly the maximum still fits.
        CHECK(st::plan_shards(std::vector<st::tensor_ref>{tensor("a", 25), tensor("b", 25)}, 50).size() == 1);
    }
    SUBCASE("one shard: <prefix>.safetensors and no index, as transformers writes") {
        temp_dir dir;
        st::sharded_write_options options;
        options.write.sync = false;
        const auto written = st::save_sharded(dir.str(), std::vector<st::tensor_ref>{tensor("a", 10)}, options);
        CHECK(written.index_file.empty());
        CHECK(written.shard_files == std::vector<std::string>{dir.file("model.safetensors")});
        CHECK_FALSE(fs::exists(dir.file("model.safetensors.index.json")));
        CHECK(st::open_sharded(dir.str()).tensor("a").byte_size() == 10);
    }
    SUBCASE("prefix, metadata of the index and of the shards") {
        temp_dir dir;
        st::sharded_write_options options;
        options.write.sync = false;
        options.max_shard_size = 20;
        options.prefix = "adapter";
        options.shard_metadata = std::nullopt;
        options.total_parameters = false;
        options.index_metadata = {{"format", "pt"}, {"note", "caf\xc3\xa9"}};
        const std::vector<st::tensor_ref> refs = {tensor("z", 10), tensor("\xc3\xa9", 20)};
        const auto written = st::save_sharded(dir.str(), refs, options);
        CHECK(written.shard_files == std::vector<std::string>{dir.file("adapter-00001-of-00002.safetensors"),
                                                              dir.file("adapter-00002-of-00002.safetensors")});
        CHECK(read_text(dir.file("adapter.safetensors.index.json")) ==
              "{\n  \"metadata\": {\n    \"format\": \"pt\",\n    \"note\": \"caf\\u00e9\",\n    \"total_size\": 30\n  },\n"
              "  \"weight_map\": {\n    \"z\": \"adapter-00001-of-00002.safetensors\",\n"
              "    \"\\u00e9\": \"adapter-00002-of-00002.safetensors\"\n  }\n}\n");
        const auto model = st::open_sharded(dir.file("adapter.safetensors.index.json"));
        CHECK(model.shard(0).metadata() == nullptr);
        CHECK(model.metadata()->at("note") == "caf\xc3\xa9");
        model.validate();
    }
    SUBCASE("errors come before any file is written") {
        temp_dir dir;
        st::sharded_write_options options;
        options.max_shard_size = 10;
        const std::vector<st::tensor_ref> dup = {tensor("a", 10), tensor("a", 10)};
        auto e = error_of([&] { st::save_sharded(dir.str(), dup, options); });
        CHECK(e.code == st::errc::duplicate_name);
        CHECK(e.message == "\"" + dir.str() + "\": duplicate tensor name \"a\"");
        const std::vector<st::tensor_ref> short_data = {tensor("a", 10), st::tensor_ref("b", st::dtype::F32, {4}, bytes.data(), 10)};
        e = error_of([&] { st::save_sharded(dir.str(), short_data, options); });
        CHECK(e.code == st::errc::invalid_tensor);
        CHECK(e.message == "\"" + dir.str() + "\": tensor \"b\": 10 bytes given, but dtype F32 with shape [4] needs 16");
        options.prefix = "../model";
        e = error_of([&] { st::save_sharded(dir.str(), std::vector<st::tensor_ref>{tensor("a", 1)}, options); });
        CHECK(e.code == st::errc::invalid_argument);
        CHECK(e.message == "\"" + dir.str() + "\": sharded_write_options::prefix \"../model\" is not a plain file name: it contains \"/\"");
        options.prefix = "model";
        options.index_metadata = {{"total_size", 1}};
        e = error_of([&] { st::save_sharded(dir.str(), std::vector<st::tensor_ref>{tensor("a", 1)}, options); });
        CHECK(e.code == st::errc::invalid_argument);
        CHECK(e.message == "\"" + dir.str() + "\": sharded_write_options::index_metadata must not set \"total_size\": it is computed from the tensors");
        options.index_metadata = {{"note", "\xff"}};
        e = error_of([&] { st::save_sharded(dir.str(), dup, options); });
        CHECK(e.code == st::errc::duplicate_name);  // names are checked first
        options.index_metadata = nlohmann::json::array();
        e = error_of([&] { st::save_sharded(dir.str(), std::vector<st::tensor_ref>{tensor("a", 1)}, options); });
        CHECK(e.code == st::errc::invalid_argument);
        CHECK(fs::is_empty(dir.path));
    }
}

TEST_CASE("index: threads open shards lazily and safely") {
    const auto single = st::open(single_path);
    const std::vector<std::string> names = gpt2_state_dict_order();
    for (int round = 0; round < 20; ++round) {
        const st::sharded_file model = st::open_sharded(sharded_dir);  // no shard open yet
        constexpr int thread_count = 8;
        std::vector<std::thread> threads;
        std::atomic<int> mismatches{0};
        std::vector<const st::file*> seen(thread_count * 5, nullptr);
        for (int t = 0; t < thread_count; ++t)
            threads.emplace_back([&, t] {
                for (std::size_t k = 0; k < names.size(); ++k) {
                    const std::string& name = names[(k + static_cast<std::size_t>(t) * 3) % names.size()];
                    const st::tensor_view view = model.tensor(name);
                    if (content_of(view) != content_of(single.tensor(name))) ++mismatches;
                }
                for (std::size_t s = 0; s < 5; ++s) seen[static_cast<std::size_t>(t) * 5 + s] = &model.shard(s);
            });
        for (auto& thread : threads) thread.join();
        CHECK(mismatches.load() == 0);
        // Every thread got the same file object for each shard: each was opened once.
        for (int t = 1; t < thread_count; ++t)
            for (std::size_t s = 0; s < 5; ++s) CHECK(seen[static_cast<std::size_t>(t) * 5 + s] == seen[s]);
    }
}
