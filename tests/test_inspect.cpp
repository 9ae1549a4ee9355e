// Tests for the safetensors-inspect tool (examples/inspect.cpp), run as a subprocess with its
// standard output, standard error and exit status captured separately:
//   - every malformed reference fixture gets the reference's verdict (deserialize.ok), with
//     one error line and empty output on rejection;
//   - for every valid fixture, --json matches the manifest (metadata, dtype, shape,
//     data_offsets, file order) and --dump of each tensor has the manifest's SHA-256;
//   - usage errors, --help, the table mode, and escaping of control characters.
// POSIX only (fork/exec); the build passes SAFETENSORS_INSPECT_EXE when it builds the tool.
#include <doctest/doctest.h>

#include "support/platform.hpp"

#if defined(SAFETENSORS_INSPECT_EXE) && !defined(_WIN32)

#include <safetensors/safetensors.hpp>

#include <nlohmann/json.hpp>

#include "support/bytes.hpp"
#include "support/json.hpp"
#include "support/cli.hpp"
#include "support/sha256.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#ifndef SAFETENSORS_TEST_DATA_DIR
#error "SAFETENSORS_TEST_DATA_DIR must be defined by the build"
#endif

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

const std::string reference_dir = std::string(SAFETENSORS_TEST_DATA_DIR) + "/reference/";

using test_support::run_result;
using test_support::check_error_shape;
using test_support::lines_of;
using test_support::shown;

run_result run_tool(const std::vector<std::string>& args) { return test_support::run_program(SAFETENSORS_INSPECT_EXE, args); }

bool has_line(const std::string& text, const std::string& line) {
    auto lines = lines_of(text);
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

// Bytes a terminal would act on: C0 controls other than newline, DEL, and C1 (C2 80..C2 9F).
bool has_raw_control(const std::string& text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if ((c < 0x20 && c != '\n') || c == 0x7f) return true;
        if (c == 0xC2 && i + 1 < text.size()) {
            auto next = static_cast<unsigned char>(text[i + 1]);
            if (next >= 0x80 && next <= 0x9F) return true;
        }
    }
    return false;
}

// A fresh directory for files written by a test, removed with its files at the end.
class tool_dir : public test_support::temp_dir {
public:
    std::string write(const std::string& name, const std::vector<std::byte>& bytes) {
        const std::string p = file(name);
        test_support::write_all(p, bytes);
        return p;
    }
};

// What a valid fixture should show: metadata (null or object), tensors (name -> dtype,
// shape, data_offsets, optional sha256), and the names in file order.
struct expectation {
    json metadata;
    json tensors;
    std::vector<std::string> order;
};

expectation expected_from_manifest(const json& entry) {
    expectation e;
    if (entry.contains("tensors")) {
        e.metadata = entry.at("metadata");
        e.tensors = entry.at("tensors");
        e.order = entry.at("key_order_in_file").get<std::vector<std::string>>();
        return e;
    }
    // Entries that only record the header text (f4.safetensors): derive it from the header.
    json header = json::parse(entry.at("header").get<std::string>());
    e.metadata = header.contains("__metadata__") ? header["__metadata__"] : json(nullptr);
    header.erase("__metadata__");
    e.tensors = header;
    std::vector<std::pair<std::uint64_t, std::string>> by_offset;
    for (auto it = header.begin(); it != header.end(); ++it)
        by_offset.emplace_back(it.value().at("data_offsets").at(0).get<std::uint64_t>(), it.key());
    std::sort(by_offset.begin(), by_offset.end());
    for (auto& p : by_offset) e.order.push_back(p.second);
    return e;
}

void check_valid_fixture(const std::string& path, const expectation& expected) {
    INFO("fixture: ", path);
    run_result r = run_tool({"--json", path});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.err.empty());
    CHECK_FALSE(has_raw_control(r.out));
    ordered_json out = ordered_json::parse(r.out);
    REQUIRE(out.is_object());
    REQUIRE(out.size() == 2);
    REQUIRE(out.contains("metadata"));
    REQUIRE(out.contains("tensors"));
    CHECK(out.begin().key() == "metadata");

    // Metadata: equal to the manifest's, and in header order (as the library reads it).
    CHECK(json::parse(out["metadata"].dump()) == expected.metadata);
    auto f = safetensors::open(path);
    if (const auto* metadata = f.metadata()) {
        REQUIRE(out["metadata"].is_object());
        std::vector<std::string> library_order, tool_order;
        for (const auto& item : *metadata) library_order.push_back(item.first);
        for (auto it = out["metadata"].begin(); it != out["metadata"].end(); ++it) tool_order.push_back(it.key());
        CHECK(tool_order == library_order);
    } else {
        CHECK(out["metadata"].is_null());
    }

    const ordered_json& tensors = out["tensors"];
    REQUIRE(tensors.is_object());
    std::vector<std::string> order;
    for (auto it = tensors.begin(); it != tensors.end(); ++it) order.push_back(it.key());
    CHECK(order == expected.order);
    CHECK(tensors.size() == expected.tensors.size());

    // SAFETENSORS_TEST_DUMP_STRIDE=N (set by tests/CMakeLists.txt for sanitizer builds): in a
    // file of more than 64 tensors (many_tensors: 600 alike), --dump only every Nth tensor and
    // the last one; every tensor of the other files, and the JSON of every tensor, is checked.
    const char* stride_text = std::getenv("SAFETENSORS_TEST_DUMP_STRIDE");
    const bool strided = stride_text != nullptr && std::atoi(stride_text) > 0 && expected.tensors.size() > 64;
    const std::size_t stride = strided ? static_cast<std::size_t>(std::atoi(stride_text)) : 1;
    std::size_t position = 0;
    for (auto it = expected.tensors.begin(); it != expected.tensors.end(); ++it, ++position) {
        const std::string& name = it.key();
        const json& want = it.value();
        INFO("tensor: ", name);
        REQUIRE(tensors.contains(name));
        const ordered_json& got = tensors[name];
        CHECK(got.size() == 3);
        CHECK(got["dtype"].get<std::string>() == want.at("dtype").get<std::string>());
        CHECK(json::parse(got["shape"].dump()) == want.at("shape"));
        CHECK(json::parse(got["data_offsets"].dump()) == want.at("data_offsets"));
        if (position % stride != 0 && position + 1 != expected.tensors.size()) continue;

        run_result dump = run_tool({"--dump", name, path});
        REQUIRE_MESSAGE(dump.status == 0, shown(dump));
        CHECK(dump.err.empty());
        auto begin = want.at("data_offsets").at(0).get<std::uint64_t>();
        auto end = want.at("data_offsets").at(1).get<std::uint64_t>();
        CHECK(dump.out.size() == end - begin);
        if (want.contains("sha256"))
            CHECK(test_support::sha256_hex(dump.out.data(), dump.out.size()) == want["sha256"].get<std::string>());
        else
            CHECK(dump.out == std::string(reinterpret_cast<const char*>(f.tensor(name).data()),
                                          static_cast<std::size_t>(end - begin)));
    }
}

void check_manifest(const std::string& dir) {
    json manifest = test_support::read_json(reference_dir + dir + "/manifest.json");
    REQUIRE(manifest.size() > 0);
    for (auto it = manifest.begin(); it != manifest.end(); ++it)
        check_valid_fixture(reference_dir + dir + "/" + it.key(), expected_from_manifest(it.value()));
}

} // namespace

TEST_CASE("inspect: malformed fixtures get the reference's verdict") {
    json verdicts = test_support::read_json(reference_dir + "malformed/verdicts.json");
    // Documented deviations: the reference (a serde map) silently keeps the last of two
    // tensors with the same name; this library rejects duplicate tensor names
    // (errc::duplicate_tensor), so the tool exits 1 where the reference accepts.
    const std::set<std::string> rejected_by_design = {"duplicate_key", "duplicate_key_different"};
    REQUIRE(verdicts.size() >= 50);
    std::size_t accepted = 0, rejected = 0;
    for (auto it = verdicts.begin(); it != verdicts.end(); ++it) {
        const std::string& name = it.key();
        const std::string path = reference_dir + "malformed/" + name + ".safetensors";
        bool ok = it.value().at("deserialize").at("ok").get<bool>();
        if (rejected_by_design.count(name)) {
            CHECK(ok);  // still a deviation from the reference
            ok = false;
        }
        INFO("fixture: ", name, " expected ", ok ? "accepted" : "rejected");
        for (const char* flag : {"", "--json"}) {
            std::vector<std::string> args;
            if (*flag) args.push_back(flag);
            args.push_back(path);
            run_result r = run_tool(args);
            INFO("mode: ", *flag ? flag : "table", "; ", shown(r));
            if (ok) {
                CHECK(r.status == 0);
                CHECK(r.err.empty());
                CHECK_FALSE(r.out.empty());
            } else {
                check_error_shape(r, 1);
                // The line carries the library's own message.
                auto opened = safetensors::try_open(path);
                REQUIRE_FALSE(opened.ok());
                CHECK(r.err == "error: " + opened.error().message() + "\n");
            }
        }
        (ok ? accepted : rejected) += 1;
    }
    MESSAGE("malformed fixtures: ", accepted, " accepted, ", rejected, " rejected (",
            rejected_by_design.size(), " of them by design: duplicate tensor names)");
}

TEST_CASE("inspect: --json and --dump match valid/manifest.json") {
    check_manifest("valid");
}

TEST_CASE("inspect: --json and --dump match model/manifest.json") {
    check_manifest("model");
}

TEST_CASE("inspect: --dump of the FNUZ fixture gives the reference's bytes") {
    json manifest = test_support::read_json(reference_dir + "valid/fnuz_manifest.json");
    const std::string path = reference_dir + "valid/fnuz.safetensors";
    REQUIRE(manifest.size() == 2);
    for (auto it = manifest.begin(); it != manifest.end(); ++it) {
        INFO("tensor: ", it.key());
        run_result r = run_tool({"--dump", it.key(), path});
        REQUIRE_MESSAGE(r.status == 0, shown(r));
        static const char hex[] = "0123456789abcdef";
        std::string got;
        for (char c : r.out) {
            got.push_back(hex[static_cast<unsigned char>(c) >> 4]);
            got.push_back(hex[static_cast<unsigned char>(c) & 15]);
        }
        CHECK(got == it.value().at("bytes_hex").get<std::string>());
    }
}

TEST_CASE("dump: the subcommand writes what inspect --dump writes, sliced too, and names flags in errors") {
    const std::string path = reference_dir + "valid/slicing.safetensors";
    const auto dump = [](std::vector<std::string> args) {
        args.insert(args.begin(), "dump");
        return test_support::run_program(SAFETENSORS_CLI_EXE, args);
    };
    run_result whole = dump({path, "x_f32"});
    REQUIRE_MESSAGE(whole.status == 0, shown(whole));
    CHECK(whole.out == run_tool({"--dump", "x_f32", path}).out);
    CHECK(whole.out.size() == 4 * 6 * 5 * 4);
    run_result part = dump({path, "x_i16", "--slice", "1, :, 3"});
    REQUIRE_MESSAGE(part.status == 0, shown(part));
    CHECK(part.out == run_tool({"--dump", "x_i16", "--slice", "1, :, 3", path}).out);
    const std::vector<std::int16_t> want = {33, 38, 43, 48, 53, 58};  // x_i16 holds 0..119 in row-major order
    REQUIRE(part.out.size() == want.size() * 2);
    CHECK(std::memcmp(part.out.data(), want.data(), part.out.size()) == 0);
    check_error_shape(dump({path, "no_such"}), 1);
    check_error_shape(dump({path}), 2);
    check_error_shape(dump({path, "x_f32", "--slice", "9"}), 1);
}

TEST_CASE("inspect: table mode") {
    const std::string path = reference_dir + "valid/lora_metadata.safetensors";
    run_result r = run_tool({path});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.err.empty());
    CHECK_FALSE(has_raw_control(r.out));
    json manifest = test_support::read_json(reference_dir + "valid/manifest.json")["lora_metadata.safetensors"];

    // Every tensor, in file order.
    std::size_t previous = 0;
    for (const auto& name : manifest["key_order_in_file"]) {
        auto at = r.out.find(name.get<std::string>());
        CHECK_MESSAGE(at != std::string::npos, name.get<std::string>());
        CHECK(at >= previous);
        previous = at;
    }
    CHECK(r.out.find("tensors: 4\n") != std::string::npos);
    // Totals: exact bytes and binary units (changed with the summary: was "total bytes: 642").
    CHECK(r.out.find("total bytes: 642 (642 B)\n") != std::string::npos);
    CHECK(r.out.find("header size: 840 bytes") != std::string::npos);

    // Metadata: ss_tag_frequency holds JSON in a string and is pretty-printed (2-space
    // indent below the key's own 2-space indent); plain values are quoted.
    CHECK(has_line(r.out, "  ss_tag_frequency = {"));
    CHECK(has_line(r.out, "    \"100_coloredic0n\": {"));
    CHECK(has_line(r.out, "      \"coloredic0n icon a blue pen\": 1,"));
    CHECK(has_line(r.out, "      \"a raven\": 2"));
    CHECK(has_line(r.out, "  ss_network_dim = \"4\""));
    CHECK(has_line(r.out, "  ss_bucket_info = \"null\""));
    CHECK(has_line(r.out, "  empty = \"\""));
    // Metadata in header order.
    auto f = safetensors::open(path);
    previous = 0;
    for (const auto& item : *f.metadata()) {
        auto at = r.out.find("\n  " + item.first + " = ");
        CHECK_MESSAGE(at != std::string::npos, item.first);
        CHECK(at >= previous);
        previous = at;
    }

    SUBCASE("a file without tensors or metadata") {
        run_result empty = run_tool({reference_dir + "valid/no_tensors.safetensors"});
        CHECK(empty.status == 0);
        CHECK(empty.out.find("tensors: 0\n") != std::string::npos);
        CHECK(empty.out.find("metadata: none\n") != std::string::npos);
    }
}

TEST_CASE("inspect: control characters from the file never reach the terminal") {
    tool_dir dir;
    // Name "a ESC[31m b DEL CSI(C1) c", metadata key/value with C0, DEL and C1 controls, a
    // metadata value holding JSON with an escaped ESC and a raw C1 inside, and one nested
    // deeper than the pretty-printer's limit (shown as a plain string).
    std::string deep(100, '[');
    deep += std::string(100, ']');
    std::string json_header =
        "{\"a\\u001b[31mb\\u007f\\u009bc\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
        "\"__metadata__\":{\"k\\u001b]0;title\\u0007\":\"v\\u009b\\u007f\\r\\n\","
        "\"ss_json\":\"{\\\"x\\\\u001by\\\": [1, \\\"\\u0085\\u007f\\\"]}\","
        "\"ss_deep\":\"" + deep + "\"}}";
    while ((8 + json_header.size()) % 8 != 0) json_header.push_back(' ');
    const std::string path = dir.write("controls.safetensors", test_support::make_file(json_header, "\x01\x02"));
    const std::string name = "a\x1b[31mb\x7f\xc2\x9b" "c";

    run_result table = run_tool({path});
    REQUIRE_MESSAGE(table.status == 0, shown(table));
    CHECK(table.out.find('\x1b') == std::string::npos);
    CHECK(table.out.find('\x07') == std::string::npos);
    CHECK(table.out.find('\r') == std::string::npos);
    CHECK_FALSE(has_raw_control(table.out));
    CHECK(table.out.find("a\\x1b[31mb\\x7f\\u009bc") != std::string::npos);
    CHECK(has_line(table.out, "  ss_json = {"));
    CHECK(table.out.find("\"" + deep + "\"") != std::string::npos);

    run_result as_json = run_tool({"--json", path});
    REQUIRE_MESSAGE(as_json.status == 0, shown(as_json));
    CHECK_FALSE(has_raw_control(as_json.out));
    json parsed = json::parse(as_json.out);
    CHECK(parsed["tensors"].contains(name));
    CHECK(parsed["metadata"]["k\x1b]0;title\x07"] == "v\xc2\x9b\x7f\r\n");

    run_result dump = run_tool({"--dump", name, path});
    CHECK(dump.status == 0);
    CHECK(dump.out == std::string("\x01\x02", 2));

    // An error message that names the tensor is escaped too.
    run_result missing = run_tool({"--dump", "x\x1b[2J", path});
    check_error_shape(missing, 1);
    CHECK(missing.err.find('\x1b') == std::string::npos);
}

TEST_CASE("inspect: usage and lookup errors") {
    const std::string lora = reference_dir + "valid/lora_metadata.safetensors";

    SUBCASE("--help") {
        for (const char* flag : {"--help", "-h"}) {
            run_result r = run_tool({flag});
            CHECK(r.status == 0);
            CHECK(r.err.empty());
            for (const char* option : {"--json", "--dump NAME", "--slice SPEC", "--sort KEY", "--filter REGEX", "--help",
                                       "index.json", "folder"})
                CHECK_MESSAGE(r.out.find(option) != std::string::npos, option);
        }
    }
    SUBCASE("a missing tensor names it") {
        run_result r = run_tool({"--dump", "no.such.tensor", lora});
        check_error_shape(r, 1);
        CHECK(r.err.find("no.such.tensor") != std::string::npos);
    }
    SUBCASE("a missing file") {
        run_result r = run_tool({reference_dir + "valid/does_not_exist.safetensors"});
        check_error_shape(r, 1);
        CHECK(r.err.find("does_not_exist.safetensors") != std::string::npos);
    }
    SUBCASE("bad usage") {
        const std::vector<std::vector<std::string>> cases = {
            {},                                 // no FILE
            {"--bogus", lora},                  // unknown option
            {"--slice", "0:1", lora},           // not an option yet; without --dump never valid
            {"--dump", "x", lora, lora},        // --dump with two FILEs
            {"--dump"},                         // --dump without NAME
            {"--json", "--dump", "x", lora},    // conflicting modes
            {"--dump", "a", "--dump", "b", lora},
            {"--sort", "bytes", lora},          // not a sort key
            {"--sort", "name", "--sort", "size", lora},
            {"--filter", "(", lora},            // not a regular expression
            {"--dump", "x", "--filter", "x", lora},
            {"--dump", "x", "--sort", "name", lora},
        };
        for (const auto& args : cases) {
            run_result r = run_tool(args);
            INFO("args: ", args.size(), " ", args.empty() ? std::string() : args.front());
            check_error_shape(r, 2);
        }
    }
    SUBCASE("-- ends the options") {
        run_result r = run_tool({"--json", "--", lora});
        CHECK(r.status == 0);
        run_result dash = run_tool({"--", "-not-a-file"});
        check_error_shape(dash, 1);
        CHECK(dash.err.find("-not-a-file") != std::string::npos);
    }
    SUBCASE("--dump=NAME") {
        run_result r = run_tool({"--dump=lora_unet_down_blocks_0_attentions_0_proj_in.alpha", lora});
        CHECK(r.status == 0);
        CHECK(test_support::sha256_hex(r.out.data(), r.out.size()) ==
              "08a2afecc9feaef6737f055c177a56a363d28a78d7b259b8c5f66b32174f2e7d");
    }
}

TEST_CASE("inspect: --dump --slice agrees with the reference on every recorded expression") {
    json manifest = test_support::read_json(reference_dir + "valid/manifest.json");
    const json& slices = manifest["slicing.safetensors"]["slices"];
    const std::string path = reference_dir + "valid/slicing.safetensors";
    std::size_t checked = 0;
    for (const auto& by_tensor : slices.items()) {  // no structured bindings: clang 14 cannot capture them
        const std::string tensor = by_tensor.key();
        for (const auto& by_label : by_tensor.value().items()) {
            const std::string label = by_label.key();
            const json& expected = by_label.value();
            INFO(tensor << " [" << expected["spec"].get<std::string>() << "] (" << label << ")");
            run_result r = run_tool({"--dump", tensor, "--slice", expected["spec"].get<std::string>(), path});
            if (expected.contains("error")) {
                check_error_shape(r, 1);
            } else {
                CHECK(r.status == 0);
                CHECK(r.err.empty());
                CHECK(test_support::sha256_hex(r.out.data(), r.out.size()) == expected["sha256"].get<std::string>());
            }
            ++checked;
        }
    }
    CHECK(checked == 60);
    // A malformed spec: exit 1, one error line, nothing on stdout.
    run_result bad = run_tool({"--dump", "x_f32", "--slice", "1:x", path});
    check_error_shape(bad, 1);
    CHECK(bad.err == "error: tensor \"x_f32\": invalid index expression \"1:x\": unexpected \"x\" at offset 2 (expected an integer, "
                     "':', '...' or ',')\n");
}

TEST_CASE("inspect: a sharded checkpoint is one table") {
    const std::string folder = reference_dir + "model/gpt2_tiny_sharded";
    const std::string index = folder + "/model.safetensors.index.json";
    const std::string single = reference_dir + "model/gpt2_tiny/model.safetensors";
    json manifest = test_support::read_json(reference_dir + "model/manifest.json");
    json weight_map = test_support::read_json(index)["weight_map"];

    for (const std::string& path : {folder, index}) {
        INFO("path: ", path);
        run_result r = run_tool({"--json", path});
        REQUIRE_MESSAGE(r.status == 0, shown(r));
        CHECK(r.err.empty());
        ordered_json out = ordered_json::parse(r.out);
        CHECK(out.begin().key() == "metadata");
        CHECK(json::parse(out["metadata"].dump()) == json{{"total_parameters", 37120}, {"total_size", 148480}});
        CHECK(json::parse(out["shards"].dump()) ==
              json{"model-00001-of-00005.safetensors", "model-00002-of-00005.safetensors", "model-00003-of-00005.safetensors",
                   "model-00004-of-00005.safetensors", "model-00005-of-00005.safetensors"});
        const ordered_json& tensors = out["tensors"];
        REQUIRE(tensors.size() == weight_map.size());
        std::string previous_shard;
        for (auto it = tensors.begin(); it != tensors.end(); ++it) {
            INFO("tensor: ", it.key());
            const std::string shard = it.value()["shard"].get<std::string>();
            CHECK(shard == weight_map[it.key()].get<std::string>());
            CHECK(shard >= previous_shard);  // shard by shard
            previous_shard = shard;
            const json& want = manifest["gpt2_tiny_sharded/" + shard]["tensors"][it.key()];
            CHECK(it.value()["dtype"].get<std::string>() == want["dtype"].get<std::string>());
            CHECK(json::parse(it.value()["shape"].dump()) == want["shape"]);
            CHECK(json::parse(it.value()["data_offsets"].dump()) == want["data_offsets"]);
        }
    }

    // --dump and --slice through the index give the unsharded file's bytes.
    for (const char* name : {"transformer.wte.weight", "transformer.h.1.mlp.c_proj.bias"}) {
        run_result a = run_tool({"--dump", name, folder});
        run_result b = run_tool({"--dump", name, single});
        REQUIRE_MESSAGE(a.status == 0, shown(a));
        CHECK(a.out == b.out);
        run_result sa = run_tool({"--dump", name, "--slice", "1:3", index});
        run_result sb = run_tool({"--dump", name, "--slice", "1:3", single});
        REQUIRE_MESSAGE(sa.status == 0, shown(sa));
        CHECK(sa.out == sb.out);
    }

    run_result table = run_tool({folder});
    REQUIRE_MESSAGE(table.status == 0, shown(table));
    CHECK(has_line(table.out, "index: " + index));
    CHECK(table.out.find("NAME                                DTYPE  SHAPE          SIZE  DATA_OFFSETS    SHARD\n") != std::string::npos);
    CHECK(has_line(table.out, "transformer.wte.weight              F32    [300, 32]  37.5 KiB  [0, 38400]      model-00001-of-00005.safetensors"));
    CHECK(has_line(table.out, "tensors: 28"));
    CHECK(has_line(table.out, "total bytes: 148480 (145.0 KiB)"));
    CHECK(has_line(table.out, "by dtype:"));
    CHECK(has_line(table.out, "  F32         28 tensors, 148480 bytes (145.0 KiB)"));
    CHECK(has_line(table.out, "shards: 5"));
    CHECK(has_line(table.out, "  model-00001-of-00005.safetensors  1 tensor, 38400 bytes (37.5 KiB)"));
    CHECK(has_line(table.out, "  model-00003-of-00005.safetensors  6 tensors, 33664 bytes (32.9 KiB)"));
    CHECK(has_line(table.out, "metadata: 2 entries"));
    CHECK(has_line(table.out, "  total_size = 148480"));

    // A broken checkpoint: one error line, nothing on stdout.
    run_result missing = run_tool({"--json", reference_dir + "model/gpt2_tiny"});  // no index: the single file
    CHECK(missing.status == 0);
    run_result nothing = run_tool({reference_dir + "model/does_not_exist.safetensors.index.json"});
    check_error_shape(nothing, 1);
    CHECK(nothing.err == "error: cannot open \"" + reference_dir + "model/does_not_exist.safetensors.index.json\": No such file or directory\n");
}

TEST_CASE("inspect: reports longer than the 64 KiB the tool writes at a time come out whole") {
    // 3,000 tensors: about 250 KB of JSON and 150 KB of table, written in several pieces.
    tool_dir dir;
    const std::string path = dir.file("many.safetensors");
    const std::string copy = dir.file("copy.safetensors");
    constexpr std::size_t count = 3000;
    const float zero = 0;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < count; ++i) names.push_back("layers." + std::to_string(i) + ".weight");
    std::vector<safetensors::tensor_ref> tensors;
    for (const std::string& name : names) tensors.emplace_back(name, safetensors::dtype::F32, safetensors::shape_ref{1}, &zero, 4);
    safetensors::save(path, tensors);
    safetensors::save(copy, tensors);
    std::sort(names.begin(), names.end());  // the file's order: one dtype, so by name

    run_result one = run_tool({"--json", path});
    REQUIRE_MESSAGE(one.status == 0, shown(one));
    CHECK(one.err.empty());
    CHECK(one.out.size() > 3 * 65536);
    const ordered_json report = ordered_json::parse(one.out);
    const ordered_json& listed = report["tensors"];
    REQUIRE(listed.size() == count);
    std::size_t i = 0;
    for (auto it = listed.begin(); it != listed.end(); ++it, ++i) {
        INFO("tensor ", i);
        CHECK(it.key() == names[i]);
        CHECK(json::parse(it.value()["data_offsets"].dump()) == json{4 * i, 4 * i + 4});
    }

    // Two inputs: one object whose values are the single reports, indented by two spaces.
    run_result other = run_tool({"--json", copy});
    run_result both = run_tool({"--json", path, copy});
    REQUIRE_MESSAGE(both.status == 0, shown(both));
    CHECK(both.out == "{\n  \"" + path + "\": " + test_support::nested_report(one.out) + ",\n  \"" + copy +
                          "\": " + test_support::nested_report(other.out) + "\n}\n");

    // The table: every row in file order, its columns aligned under the headings.
    run_result table = run_tool({path});
    REQUIRE_MESSAGE(table.status == 0, shown(table));
    CHECK(table.out.size() > 2 * 65536);
    const std::vector<std::string> lines = lines_of(table.out);
    const auto heading = std::find_if(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("NAME ", 0) == 0; });
    REQUIRE(heading != lines.end());
    REQUIRE(static_cast<std::size_t>(lines.end() - heading) > count + 1);
    const std::size_t dtype_column = heading->find("DTYPE");
    for (std::size_t k = 0; k < count; ++k) {
        const std::string& line = heading[static_cast<std::ptrdiff_t>(k + 1)];
        INFO("row ", k, ": ", line);
        CHECK(line.rfind(names[k] + " ", 0) == 0);
        CHECK(line.compare(dtype_column, 4, "F32 ") == 0);
        CHECK(line.size() == heading->size() - std::string("DATA_OFFSETS").size() +
                                 std::string("[" + std::to_string(4 * k) + ", " + std::to_string(4 * k + 4) + "]").size());
    }
    CHECK(heading[static_cast<std::ptrdiff_t>(count + 1)].empty());
    CHECK(has_line(table.out, "tensors: 3000"));
    // Two inputs: the reports one after another, a blank line between them.
    run_result other_table = run_tool({copy});
    run_result both_tables = run_tool({path, copy});
    REQUIRE_MESSAGE(both_tables.status == 0, shown(both_tables));
    CHECK(both_tables.out == table.out + "\n" + other_table.out);
}

TEST_CASE("inspect: --sort and --filter") {
    const std::string single = reference_dir + "model/gpt2_tiny/model.safetensors";
    const auto names_of = [](const run_result& r) {
        std::vector<std::string> names;
        ordered_json out = ordered_json::parse(r.out);
        for (auto it = out["tensors"].begin(); it != out["tensors"].end(); ++it) names.push_back(it.key());
        return names;
    };
    const auto f = safetensors::open(single);
    std::vector<std::string> file_order;
    for (auto name : f.keys()) file_order.emplace_back(name);

    run_result r = run_tool({"--json", "--sort", "offset", single});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(names_of(r) == file_order);
    r = run_tool({"--json", "--sort=name", single});
    std::vector<std::string> sorted = file_order;
    std::sort(sorted.begin(), sorted.end());
    CHECK(names_of(r) == sorted);
    r = run_tool({"--json", "--sort", "size", single});
    std::vector<std::string> by_size = names_of(r);
    REQUIRE(by_size.size() == file_order.size());
    CHECK(by_size[0] == "transformer.wte.weight");  // 38400 bytes
    CHECK(by_size[1] == "transformer.h.0.mlp.c_fc.weight");  // 16384, the first of four in file order
    for (std::size_t i = 1; i < by_size.size(); ++i)
        CHECK(f.tensor(by_size[i - 1]).byte_size() >= f.tensor(by_size[i]).byte_size());

    r = run_tool({"--json", "--filter", "^transformer\\.h\\.1\\..*bias$", single});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(names_of(r) == std::vector<std::string>{"transformer.h.1.attn.c_attn.bias", "transformer.h.1.attn.c_proj.bias",
                                                  "transformer.h.1.ln_1.bias", "transformer.h.1.ln_2.bias",
                                                  "transformer.h.1.mlp.c_fc.bias", "transformer.h.1.mlp.c_proj.bias"});
    r = run_tool({"--filter", "ln_f", "--sort", "name", single});
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(has_line(r.out, "tensors: 2 of 28 (--filter)"));
    CHECK(has_line(r.out, "total bytes: 256 (256 B)"));
    CHECK(r.out.find("transformer.ln_f.bias ") < r.out.find("transformer.ln_f.weight "));
    r = run_tool({"--json", "--filter", "no such name", single});
    CHECK(r.status == 0);
    CHECK(names_of(r).empty());

    run_result bad = run_tool({"--filter", "(", single});
    check_error_shape(bad, 2);
    CHECK(bad.err.rfind("error: invalid --filter regular expression \"(\": ", 0) == 0);
    bad = run_tool({"--sort", "bytes", single});
    check_error_shape(bad, 2);
    CHECK(bad.err == "error: --sort needs size, name or offset, got \"bytes\"\n");
}

#else  // no tool, or not POSIX

#if defined(_WIN32)
TEST_CASE("inspect: every case" * POSIX_ONLY("runs the tool in a child process through posix_spawn")) {}
#else
TEST_CASE("inspect: skipped") {
    MESSAGE("test_inspect.cpp: skipped, SAFETENSORS_INSPECT_EXE is not defined (build with "
            "SAFETENSORS_BUILD_EXAMPLES=ON to test the safetensors-inspect tool)");
}
#endif

#endif
