// The safetensors tool with URL inputs, against the test servers: every reference fixture read
// over HTTP (and HTTPS with --ca-file) prints what the local file prints (inspect's table and
// --json, --dump), byte for byte, with the same exit status; a sharded checkpoint from its index
// URL and from hf:// (HF_ENDPOINT); the token (--token, HF_TOKEN) reaches the server and is
// never printed; a missing file names the URL without its query. Fixtures are batched several
// to a process where the tool takes several inputs, to keep the runs few.
#if defined(SAFETENSORS_CLI_EXE)

#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../support/cli.hpp"
#include "../support/errors.hpp"
#include "support/fixtures.hpp"
#include "support/servers.hpp"

namespace http_cli_tests {

using test_support::run_result;
using test_support::shown;

// The tool under env(1): HF_TOKEN and HF_ENDPOINT unset unless `environment` sets them, so the
// tester's own cannot reach the servers.
inline run_result run_tool(const std::string& exe, const std::vector<std::string>& args,
                           const std::vector<std::string>& environment = {}) {
    std::vector<std::string> all = {"-u", "HF_TOKEN", "-u", "HF_ENDPOINT"};
    all.insert(all.end(), environment.begin(), environment.end());
    all.push_back(exe);
    all.insert(all.end(), args.begin(), args.end());
    return test_support::run_program("/usr/bin/env", all);
}
inline run_result safetensors_cli(const std::vector<std::string>& args, const std::vector<std::string>& environment = {}) {
    return run_tool(SAFETENSORS_CLI_EXE, args, environment);
}
inline run_result inspect_cli(const std::vector<std::string>& args) { return run_tool(SAFETENSORS_INSPECT_EXE, args); }

inline std::string replaced(std::string text, const std::string& from, const std::string& to) {
    for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}


// Every .safetensors under data/reference (valid, malformed, model/gpt2_tiny), relative to www_dir().
inline std::vector<std::string> reference_fixtures() {
    std::vector<std::string> out;
    for (const char* folder : {"data/reference/valid", "data/reference/malformed"})
        for (const auto& entry : std::filesystem::directory_iterator(http_test::local_path(folder)))
            if (entry.path().extension() == ".safetensors")
                out.push_back(std::string(folder) + "/" + entry.path().filename().string());
    std::sort(out.begin(), out.end());
    out.push_back("data/reference/model/gpt2_tiny/model.safetensors");
    return out;
}

// The same run with local paths and with URLs: equal stdout and stderr once each path is
// replaced by its URL, and the same status.
inline void check_same_run(const run_result& local, const run_result& remote, const std::vector<std::string>& paths,
                           const std::vector<std::string>& urls) {
    std::string out = local.out, err = local.err;
    for (std::size_t i = 0; i < paths.size(); ++i) {
        out = replaced(out, paths[i], urls[i]);
        err = replaced(err, paths[i], urls[i]);
    }
    CHECK_MESSAGE(remote.status == local.status, shown(remote));
    CHECK(remote.out == out);
    CHECK(remote.err == err);
}

// inspect (table and --json) of every file in one run, local and over url_of.
template <class UrlOf>
void check_batch(const std::vector<std::string>& relatives, UrlOf url_of, const std::vector<std::string>& options) {
    std::vector<std::string> paths, urls;
    for (const std::string& relative : relatives) {
        paths.push_back(http_test::local_path(relative));
        urls.push_back(url_of(relative));
    }
    for (const bool json : {false, true}) {
        std::vector<std::string> local_args = paths, remote_args = options;
        remote_args.insert(remote_args.end(), urls.begin(), urls.end());
        if (json) {
            local_args.insert(local_args.begin(), "--json");
            remote_args.insert(remote_args.begin(), "--json");
        }
        const run_result local = inspect_cli(local_args);
        REQUIRE_MESSAGE(local.status == 0, shown(local));
        check_same_run(local, inspect_cli(remote_args), paths, urls);
    }
}

// The first tensor's name in file order; "" for a file without tensors or that does not open.
inline std::string first_tensor(const std::string& path) {
    std::string name;
    test_support::error_of([&] {
        const auto f = safetensors::open(path);
        if (f.size() != 0) name = std::string((*f.begin()).name());
    });
    return name;
}

inline bool opens(const std::string& path) {
    return test_support::error_of([&] { (void)safetensors::open(path); }).code == safetensors::errc::ok;
}

const char* const sharded_index = "data/reference/model/gpt2_tiny_sharded/model.safetensors.index.json";

} // namespace http_cli_tests

using namespace http_cli_tests;

TEST_CASE("cli over http: every reference fixture prints what the local file prints (table, --json, --dump)") {
    const auto& nginx = http_test::nginx();
    std::vector<std::string> good;
    std::size_t refused = 0, dumped = 0;
    for (const std::string& relative : reference_fixtures()) {
        INFO(relative);
        const std::string path = http_test::local_path(relative), url = nginx.http_url(relative);
        if (!opens(path)) {  // one run each: the first error ends a run
            ++refused;
            const run_result local = inspect_cli({"--json", path});
            CHECK(local.status == 1);
            check_same_run(local, inspect_cli({"--json", url}), {path}, {url});
            continue;
        }
        good.push_back(relative);
        const std::string name = first_tensor(path);
        if (name.empty()) continue;
        ++dumped;
        const run_result local = inspect_cli({"--dump", name, path});
        REQUIRE_MESSAGE(local.status == 0, shown(local));
        check_same_run(local, inspect_cli({"--dump", name, url}), {path}, {url});
    }
    MESSAGE(good.size() << " fixtures open, " << refused << " refused, " << dumped << " dumped");
    CHECK(good.size() > 30);
    CHECK(refused > 30);
    check_batch(good, [&](const std::string& r) { return nginx.http_url(r); }, {});
    check_batch(good, [&](const std::string& r) { return nginx.https_url(r); }, {"--ca-file", http_test::ca_file()});
}

TEST_CASE("cli over https: --dump and --slice with --ca-file; without it the certificate is refused") {
    const auto& nginx = http_test::nginx();
    const std::string relative = "data/reference/valid/slicing.safetensors";
    const std::string path = http_test::local_path(relative), url = nginx.https_url(relative);
    for (const std::vector<std::string>& dump :
         {std::vector<std::string>{"dump", "x_f32"}, {"dump", "x_i16", "--slice", "1, :, 3"}, {"dump", "v", "--slice", "::3"}}) {
        std::vector<std::string> local_args = dump, remote_args = dump;
        local_args.insert(local_args.begin() + 1, path);
        remote_args.insert(remote_args.begin() + 1, url);
        remote_args.insert(remote_args.end(), {"--ca-file", http_test::ca_file()});
        const run_result local = safetensors_cli(local_args);
        REQUIRE_MESSAGE(local.status == 0, shown(local));
        check_same_run(local, safetensors_cli(remote_args), {path}, {url});
    }
    const run_result refused = safetensors_cli({"inspect", url});
    test_support::check_error_shape(refused, 1);
    CHECK(refused.err.rfind("error: \"" + url + "\": SSL peer certificate or SSH remote key was not OK: ", 0) == 0);
    const run_result missing_ca = safetensors_cli({"inspect", "--ca-file", http_test::work_dir().file("none.pem"), url});
    test_support::check_error_shape(missing_ca, 2);
    CHECK(missing_ca.err == "error: --ca-file: File does not exist: " + http_test::work_dir().file("none.pem") + "\n");
}

TEST_CASE("cli over http: an index URL prints what the local index prints; stats, values, verify, diff, rewrite") {
    const auto& nginx = http_test::nginx();
    const std::string index = http_test::local_path(sharded_index), url = nginx.http_url(sharded_index);
    const std::string folder = index.substr(0, index.rfind('/') + 1), url_folder = url.substr(0, url.rfind('/') + 1);
    const std::vector<std::vector<std::string>> commands = {
        {"inspect", "--json"},
        {"inspect"},
        {"dump", "transformer.h.1.mlp.c_fc.weight"},
        {"verify", "--sha256", "--per-tensor"},
        {"stats", "--json", "--threads", "2"},
        {"values", "--json", "transformer.ln_f.bias", "transformer.h.0.attn.c_attn.bias"},
    };
    for (const auto& command : commands) {
        INFO(command.front());
        std::vector<std::string> local_args = command, remote_args = command;
        local_args.push_back(index);
        remote_args.push_back(url);
        if (command.front() == "dump" || command.front() == "values") {  // FILE before NAME
            std::rotate(local_args.begin() + 1 + (command.front() == "values"), local_args.end() - 1, local_args.end());
            std::rotate(remote_args.begin() + 1 + (command.front() == "values"), remote_args.end() - 1, remote_args.end());
        }
        const run_result local = safetensors_cli(local_args);
        REQUIRE_MESSAGE(local.status == 0, shown(local));
        check_same_run(local, safetensors_cli(remote_args), {folder}, {url_folder});
    }
    const run_result same = safetensors_cli({"diff", url, index});
    CHECK_MESSAGE(same.status == 0, shown(same));
    CHECK(same.out.find("equal") != std::string::npos);
    const std::string copied = http_test::work_dir().file("cli-rewrite.safetensors");
    const std::string expected = http_test::work_dir().file("cli-rewrite-local.safetensors");
    REQUIRE(safetensors_cli({"rewrite", index, expected, "--to-dtype", "BF16", "--no-sync"}).status == 0);
    const run_result rewritten = safetensors_cli({"rewrite", url, copied, "--to-dtype", "BF16", "--no-sync"});
    REQUIRE_MESSAGE(rewritten.status == 0, shown(rewritten));
    std::ifstream a(copied, std::ios::binary), b(expected, std::ios::binary);
    CHECK(std::string(std::istreambuf_iterator<char>(a), {}) == std::string(std::istreambuf_iterator<char>(b), {}));
}

TEST_CASE("cli over http: --token and HF_TOKEN reach the URL's host, hf:// follows HF_ENDPOINT, no token is printed") {
    const auto& server = http_test::fault_server();
    const std::string relative = "data/reference/valid/slicing.safetensors";
    const std::string token = "cli-secret-token-0123456789";
    const run_result local = safetensors_cli({"inspect", "--json", http_test::local_path(relative)});
    const auto tool_requests = [&] {  // without the test's own (/_reset, /_stats)
        std::vector<nlohmann::json> out;
        for (const auto& request : server.requests())
            if (request.at("path").get<std::string>().rfind("/_", 0) != 0) out.push_back(request);
        return out;
    };
    const auto authorizations = [&] {
        std::vector<std::string> out;
        for (const auto& request : tool_requests()) out.push_back(request.at("authorization").get<std::string>());
        return out;
    };

    server.reset();
    run_result r = safetensors_cli({"inspect", "--json", "--token", token, server.url(relative + "?id=cli-token")});
    CHECK_MESSAGE(r.status == 0, shown(r));
    CHECK(r.out == local.out);
    CHECK(authorizations() == std::vector<std::string>{"Bearer " + token});

    server.reset();  // HF_TOKEN, and an hf:// URL resolved at HF_ENDPOINT (the fault server answers as the hub)
    const std::string endpoint = "HF_ENDPOINT=" + server.url("");
    r = safetensors_cli({"inspect", "--json", "hf://org/repo/" + relative}, {"HF_TOKEN=" + token, endpoint});
    CHECK_MESSAGE(r.status == 0, shown(r));
    CHECK(r.out == local.out);
    CHECK(authorizations() == std::vector<std::string>{"Bearer " + token});
    CHECK(tool_requests().at(0).at("path") == "/org/repo/resolve/main/" + relative);

    server.reset();  // --token '' overrides HF_TOKEN
    r = safetensors_cli({"inspect", "--json", "--token", "", server.url(relative + "?id=cli-none")}, {"HF_TOKEN=" + token});
    CHECK(r.status == 0);
    CHECK(authorizations() == std::vector<std::string>{""});

    // Never printed: not by the tool's errors, nor by CLI11's, which quote arguments they did not expect.
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"inspect", "--token", token, server.url("data/missing.safetensors?id=cli-404")},
          {"--token", token, "inspect", server.url(relative)},
          {"inspect", "--token=" + token, "--token", token, server.url(relative)},
          {"inspect", "--token", token, server.url(relative + "?mode=status&code=403&n=9&id=cli-403")}}) {
        r = safetensors_cli(args, {"HF_TOKEN=" + token});
        INFO(shown(r));
        CHECK(r.status != 0);
        CHECK(r.err.find(token) == std::string::npos);
        CHECK(r.out.find(token) == std::string::npos);
    }
    CHECK(safetensors_cli({"--token", token, "inspect", "x.safetensors"}).err ==
          "error: The following arguments were not expected: <token> --token\n");
}

TEST_CASE("cli over http: a missing file or index names the URL without its query") {
    const auto& nginx = http_test::nginx();
    for (const std::string relative : {"data/missing.safetensors", "data/missing/model.safetensors.index.json"}) {
        const std::string url = nginx.http_url(relative);
        const run_result r = safetensors_cli({"inspect", url + "?X-Amz-Signature=SECRET"});
        test_support::check_error_shape(r, 1);
        CHECK(r.err == "error: \"" + url + "?...\": not found (HTTP 404)\n");
    }
    // A shard the index names but the server lacks: missing_shard, the shard's URL in the message.
    const std::string index = "gen/cli-missing-shard/model.safetensors.index.json";
    std::filesystem::create_directories(http_test::gen_dir() + "/cli-missing-shard");
    http_test::write_text(http_test::local_path(index), R"({"weight_map": {"w": "model-00001-of-00001.safetensors"}})");
    const run_result r = safetensors_cli({"inspect", nginx.http_url(index)});
    test_support::check_error_shape(r, 1);
    CHECK(r.err == "error: missing shard \"model-00001-of-00001.safetensors\" of index \"" + nginx.http_url(index) +
                       "\": \"" + nginx.http_url("gen/cli-missing-shard/model-00001-of-00001.safetensors") +
                       "\": not found (HTTP 404)\n");
}

#endif

namespace http_cli_tests {
// 64 MiB of U8, the smallest transfer that gets a progress line.
inline const std::string& large_relative() {
    static const std::string relative = [] {
        std::vector<std::uint8_t> values(std::size_t{64} << 20, 7);
        safetensors::save(http_test::gen_dir() + "/large.safetensors", {{"big", safetensors::dtype::U8, {values.size()}, values}});
        return std::string("gen/large.safetensors");
    }();
    return relative;
}
} // namespace http_cli_tests

TEST_CASE("cli over http: a long --dump shows a progress line on a terminal, and only there") {
    const std::string url = http_test::nginx().http_url(large_relative());
    // script(1) gives the tool a terminal; standard output goes to /dev/null inside it.
    const std::string command = "env -u HF_TOKEN " + std::string(SAFETENSORS_CLI_EXE) + " dump " + url + " big >/dev/null";
    const run_result on_terminal = test_support::run_program("/usr/bin/script", {"-qec", command, "/dev/null"});
    REQUIRE_MESSAGE(on_terminal.status == 0, shown(on_terminal));
    CHECK(on_terminal.out.find("fetching [") != std::string::npos);
    CHECK(on_terminal.out.find("] 100% 64.0 MiB of 64.0 MiB") != std::string::npos);
    const run_result piped = safetensors_cli({"dump", url, "big"});
    REQUIRE_MESSAGE(piped.status == 0, shown(piped));
    CHECK(piped.err.empty());
    CHECK(piped.out.size() == (std::size_t{64} << 20));
}
