// Tests for `safetensors verify` (tools/cli/verify.hpp) and the tool's SHA-256
// (tools/cli/sha256.hpp):
//   - SHA-256 on the standard vectors, fed whole and in pieces;
//   - every valid reference fixture and both model checkpoints verify in one call, and
//     --sha256 --per-tensor print the manifests' file and tensor SHA-256 values;
//   - a truncated file or a missing shard fails with one error line and exit 1;
//   - usage errors exit 2.
// The tool runs in a child process (posix_spawn): POSIX only, and only when the build defines
// SAFETENSORS_CLI_EXE. Few launches: one verify call takes many files.
#include <doctest/doctest.h>

#include "support/sha256.hpp"
#include "support/platform.hpp"

#include <algorithm>
#include <string>

namespace cli_verify_test {

TEST_CASE("sha256: the FIPS 180-4 vectors, fed whole and in pieces") {
    CHECK(cli::sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(cli::sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";  // 56 bytes: padding spills
    CHECK(cli::sha256_hex(two_blocks.data(), two_blocks.size()) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const std::string million(1000000, 'a');
    const std::string expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    CHECK(cli::sha256_hex(million.data(), million.size()) == expected);
    // Pieces of every size from 1 to 130 bytes, crossing block boundaries at every offset.
    cli::sha256 h;
    std::size_t at = 0;
    for (std::size_t piece = 1; at < million.size(); piece = piece % 130 + 1) {
        const std::size_t n = std::min(piece, million.size() - at);
        h.update(million.data() + at, n);
        at += n;
    }
    CHECK(h.hex_digest() == expected);
}

} // namespace cli_verify_test

#if defined(SAFETENSORS_CLI_EXE) && !defined(_WIN32)

#include <safetensors/safetensors.hpp>

#include <nlohmann/json.hpp>

#include "support/bytes.hpp"
#include "support/cli.hpp"
#include "support/sha256.hpp"
#include "support/temp_dir.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#ifndef SAFETENSORS_TEST_DATA_DIR
#error "SAFETENSORS_TEST_DATA_DIR must be defined by the build"
#endif

namespace cli_verify_test {

using json = nlohmann::json;
using test_support::run_result;
using test_support::check_error_shape;
using test_support::lines_of;
using test_support::shown;

const std::string reference = std::string(SAFETENSORS_TEST_DATA_DIR) + "/reference/";

run_result verify(std::vector<std::string> args) {
    args.insert(args.begin(), "verify");
    return test_support::run_program(SAFETENSORS_CLI_EXE, args);
}

json read_json(const std::string& path) {
    std::ifstream in(path);
    REQUIRE(in);
    return json::parse(in);
}

std::string file_sha256(const std::string& path) {
    const std::vector<std::byte> bytes = test_support::read_all(path);
    return test_support::sha256_hex(bytes.data(), bytes.size());
}

std::string ok_line(const std::string& path, std::size_t tensors, std::uint64_t bytes, const std::string& shards = "") {
    return "OK " + path + " (" + std::to_string(tensors) + (tensors == 1 ? " tensor" : " tensors") + shards + ", " +
           std::to_string(bytes) + " bytes)";
}

TEST_CASE("verify: every valid fixture and both models, with the manifests' SHA-256") {
    const json valid = read_json(reference + "valid/manifest.json");
    const json model = read_json(reference + "model/manifest.json");
    const json fnuz = read_json(reference + "valid/fnuz_manifest.json");

    // Expected output, input by input: the OK line, the file's hash, its tensors' hashes.
    std::vector<std::string> args = {"--sha256", "--per-tensor"};
    std::vector<std::string> expected;
    const auto expect_file = [&](const std::string& path, const json& entry) {
        expected.push_back(entry.at("file_sha256").get<std::string>() + "  " + path);
        if (!entry.contains("tensors")) {  // f4.safetensors records its header only
            for (const auto& view : safetensors::open(path)) {
                std::vector<std::byte> bytes(view.byte_size());
                view.copy_to(safetensors::span<std::byte>(bytes.data(), bytes.size()));
                expected.push_back(test_support::sha256_hex(bytes.data(), bytes.size()) + "  " + path + ":" +
                                   std::string(view.name()));
            }
            return;
        }
        for (const auto& name : entry.at("key_order_in_file"))
            expected.push_back(entry.at("tensors").at(name.get<std::string>()).at("sha256").get<std::string>() + "  " +
                               path + ":" + name.get<std::string>());
    };
    const auto counts = [](const std::string& path) {
        std::pair<std::size_t, std::uint64_t> n{0, 0};
        for (const auto& view : safetensors::sharded_file::open(path)) {
            ++n.first;
            n.second += view.byte_size();
        }
        return n;
    };
    for (auto it = valid.begin(); it != valid.end(); ++it) {
        const std::string path = reference + "valid/" + it.key();
        args.push_back(path);
        const auto [tensors, bytes] = counts(path);
        expected.push_back(ok_line(path, tensors, bytes));
        expect_file(path, it.value());
    }
    {  // fnuz.safetensors: its manifest has each tensor's bytes in hex, in file order e5m2 then e4m3
        const std::string path = reference + "valid/fnuz.safetensors";
        args.push_back(path);
        expected.push_back(ok_line(path, 2, 24));
        expected.push_back(file_sha256(path) + "  " + path);
        for (const char* name : {"float8_e5m2fnuz", "float8_e4m3fnuz"}) {
            const std::string hex = fnuz.at(name).at("bytes_hex").get<std::string>();
            std::vector<unsigned char> bytes;
            for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
                bytes.push_back(static_cast<unsigned char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
            expected.push_back(test_support::sha256_hex(bytes.data(), bytes.size()) + "  " + path + ":" + name);
        }
    }
    {  // a folder holding model.safetensors
        const std::string folder = reference + "model/gpt2_tiny";
        args.push_back(folder);
        expected.push_back(ok_line(folder, 28, 148480));
        expect_file(folder + "/model.safetensors", model.at("gpt2_tiny/model.safetensors"));
    }
    {  // a sharded folder: every shard in name order, then the index
        const std::string folder = reference + "model/gpt2_tiny_sharded";
        args.push_back(folder);
        expected.push_back(ok_line(folder, 28, 148480, " in 5 shards"));
        for (int s = 1; s <= 5; ++s) {
            const std::string shard = "model-0000" + std::to_string(s) + "-of-00005.safetensors";
            expect_file(folder + "/" + shard, model.at("gpt2_tiny_sharded/" + shard));
        }
        const std::string index = folder + "/model.safetensors.index.json";
        expected.push_back(file_sha256(index) + "  " + index);
    }

    const run_result r = verify(args);
    REQUIRE_MESSAGE(r.status == 0, shown(r));
    CHECK(r.err.empty());
    CHECK(lines_of(r.out) == expected);

    // Without --sha256: the OK lines only; an index given by its path names the index.
    const std::string index = reference + "model/gpt2_tiny_sharded/model.safetensors.index.json";
    const run_result plain = verify({reference + "valid/single_scalar_f32.safetensors", index});
    REQUIRE_MESSAGE(plain.status == 0, shown(plain));
    CHECK(lines_of(plain.out) == std::vector<std::string>{
                                     ok_line(reference + "valid/single_scalar_f32.safetensors", 1, 4),
                                     ok_line(index, 28, 148480, " in 5 shards")});
}

TEST_CASE("verify: a truncated file or a missing shard fails with one error line") {
    test_support::temp_dir dir;
    const std::vector<std::byte> whole = test_support::read_all(reference + "model/gpt2_tiny/model.safetensors");
    const std::string truncated = dir.file("truncated.safetensors");
    test_support::write_all(truncated, std::vector<std::byte>(whole.begin(), whole.end() - 100));
    // The good file first: its OK line must not reach stdout when a later input fails.
    run_result r = verify({"--sha256", reference + "valid/single_scalar_f32.safetensors", truncated});
    check_error_shape(r, 1);
    CHECK_MESSAGE(r.err.find("truncated.safetensors") != std::string::npos, r.err);

    const std::string sharded = dir.file("sharded");
    std::filesystem::copy(reference + "model/gpt2_tiny_sharded", sharded);
    std::filesystem::remove(sharded + "/model-00003-of-00005.safetensors");
    r = verify({sharded});
    check_error_shape(r, 1);
    CHECK_MESSAGE(r.err.find("model-00003-of-00005.safetensors") != std::string::npos, r.err);

    r = verify({dir.file("absent.safetensors")});
    check_error_shape(r, 1);
}

TEST_CASE("verify: usage errors exit 2") {
    const std::string file = reference + "valid/single_scalar_f32.safetensors";
    run_result r = verify({"--per-tensor", file});
    check_error_shape(r, 2);
    CHECK_MESSAGE(r.err.find("--sha256") != std::string::npos, r.err);
    check_error_shape(verify({}), 2);
}

} // namespace cli_verify_test

#else  // no tool, or not POSIX

#if defined(_WIN32)
TEST_CASE("verify: every case" * POSIX_ONLY("runs the tool in a child process through posix_spawn")) {}
#else
TEST_CASE("verify: skipped") {
    MESSAGE("test_cli_verify.cpp: skipped, SAFETENSORS_CLI_EXE is not defined (build with "
            "SAFETENSORS_BUILD_EXAMPLES=ON to test the safetensors tool)");
}
#endif

#endif
