// The HTTP(S) reader against nginx (the acceptance server): every reference fixture read over
// HTTP and HTTPS gives the local verdict and bytes; what a header-only open and a column part
// transfer (nginx's access log counts requests and bytes sent); sharded checkpoints; TLS
// verification; redirects nginx can make that Python's server cannot (https -> http).
#include <doctest/doctest.h>

#include <safetensors/http.hpp>
#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../support/errors.hpp"
#include "support/fixtures.hpp"
#include "support/servers.hpp"

namespace http_nginx_tests {

using safetensors::errc;
using test_support::error_of;

inline safetensors::http_options tls_options() {
    safetensors::http_options o;
    o.ca_file = http_test::ca_file();
    o.backoff_initial = std::chrono::milliseconds(10);
    o.backoff_max = std::chrono::milliseconds(100);
    return o;
}

using http_test::bytes_of;
using http_test::matrix_relative;

inline std::vector<std::string> fixtures(const std::string& folder) {
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(http_test::www_dir() + "/" + folder))
        if (entry.path().extension() == ".safetensors") out.push_back(folder + "/" + entry.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

// Requests and bytes nginx logged for uri since the log had `from` lines.
struct transferred {
    std::size_t requests = 0;
    std::uint64_t bytes = 0;
};
inline transferred logged_since(std::size_t from, const std::string& uri) {
    transferred t;
    const auto log = http_test::nginx().access_log();
    for (std::size_t i = from; i < log.size(); ++i) {
        if (log[i].uri != uri) continue;
        ++t.requests;
        t.bytes += log[i].bytes_sent;
    }
    return t;
}

// The same local and remote: keys, and every tensor's bytes (one at a time and through load()).
inline void check_same(const safetensors::file& remote, const safetensors::file& local) {
    REQUIRE(remote.keys() == local.keys());
    for (const auto& view : local) CHECK(bytes_of(remote.tensor(view.name())) == bytes_of(view));
    const auto loaded = safetensors::load(remote);
    for (const auto& view : local) {
        const auto& t = loaded.at(std::string(view.name()));
        CHECK(std::vector<std::byte>(t.bytes().begin(), t.bytes().end()) == bytes_of(view));
    }
}

} // namespace http_nginx_tests

using namespace http_nginx_tests;

TEST_CASE("http: every reference fixture over HTTP and HTTPS gives the local verdict and bytes") {
    auto all = fixtures("data/reference/valid");
    for (const auto& f : fixtures("data/reference/malformed")) all.push_back(f);
    all.push_back("data/reference/model/gpt2_tiny/model.safetensors");
    REQUIRE(all.size() > 70);
    for (const auto& relative : all) {
        const std::string path = http_test::www_dir() + "/" + relative;
        const auto local = error_of([&] { (void)safetensors::open(path); });
        for (const auto& address : {http_test::nginx().http_url(relative), http_test::nginx().https_url(relative)}) {
            INFO(address);
            const auto remote = error_of([&] { (void)safetensors::open_url(address, tls_options()); });
            CHECK(remote.code == local.code);
            if (local.code != errc::ok) {
                std::string expected = local.message;
                expected.replace(expected.find(safetensors::detail::quote(path)), safetensors::detail::quote(path).size(),
                                 safetensors::detail::quote(address));
                CHECK(remote.message == expected);
                CHECK(remote.path == address);
                continue;
            }
            check_same(safetensors::open_url(address, tls_options()), safetensors::open(path));
        }
    }
}

TEST_CASE("http: a header-only open transfers at most the header plus 64 KiB") {
    for (const std::string& relative : {std::string("data/reference/valid/slicing.safetensors"),
                                       std::string("data/reference/valid/many_tensors.safetensors"),
                                       std::string("data/reference/model/gpt2_tiny/model.safetensors"), matrix_relative()}) {
        INFO(relative);
        const auto local = safetensors::open(http_test::www_dir() + "/" + relative);
        const std::size_t before = http_test::nginx().access_log().size();
        const auto remote = safetensors::open_url(http_test::nginx().http_url(relative));
        CHECK(remote.keys() == local.keys());
        const auto t = logged_since(before, "/" + relative);
        const std::uint64_t header = local.header().data_offset();
        MESSAGE(relative << ": header " << header << " bytes, open: " << t.requests << " requests, " << t.bytes
                         << " bytes sent");
        CHECK(t.bytes <= header + 65536);
        CHECK(t.requests == (header > 32768 ? 2u : 1u));
    }
}

TEST_CASE("http: the 1/8 column part of a [4096, 4096] BF16 tensor transfers at most 1.25x its bytes in 64 requests") {
    const auto local = safetensors::open(http_test::www_dir() + "/" + matrix_relative());
    const auto remote = safetensors::open_url(http_test::nginx().http_url(matrix_relative()));
    const auto want = local.tensor("w").slice(":, 0:512");
    const auto part = remote.tensor("w").slice(":, 0:512");
    REQUIRE(part.runs().size() == 4096);
    std::vector<std::byte> got(static_cast<std::size_t>(part.byte_size())), expected(got.size());
    const std::size_t before = http_test::nginx().access_log().size();
    part.copy_to(got.data(), got.size());
    const auto t = logged_since(before, "/" + matrix_relative());
    want.copy_to(expected.data(), expected.size());
    CHECK(got == expected);
    MESSAGE("1/8 column part: " << got.size() << " bytes wanted, " << t.requests << " requests, " << t.bytes
                                << " bytes sent (" << static_cast<double>(t.bytes) / static_cast<double>(got.size()) << "x)");
    CHECK(t.requests <= 64);
    CHECK(static_cast<double>(t.bytes) <= 1.25 * static_cast<double>(got.size()));
}

TEST_CASE("http: load() of a 32 MiB file: parallel chunk requests, the local bytes") {
    const auto local = safetensors::open(http_test::www_dir() + "/" + matrix_relative());
    const auto remote = safetensors::open_url(http_test::nginx().https_url(matrix_relative()), tls_options());
    const std::size_t before = http_test::nginx().access_log().size();
    const auto loaded = safetensors::load(remote);
    const auto t = logged_since(before, "/" + matrix_relative());
    const auto& w = loaded.at("w");
    CHECK(std::vector<std::byte>(w.bytes().begin(), w.bytes().end()) == bytes_of(local.tensor("w")));
    CHECK(t.requests == 4);  // 8 MiB each
    CHECK(t.bytes < local.tensor("w").byte_size() + 4096);
}

namespace http_nginx_tests {
// 129 MiB of U8 (a pattern, so that a misplaced byte shows): a read split over two threads.
inline const std::string& split_relative() {
    static const std::string relative = [] {
        std::vector<std::uint8_t> values((std::size_t{129} << 20));  // 128 MiB and more after the first 32 KiB
        for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::uint8_t>((i * 2654435761u) >> 13);
        safetensors::save(http_test::gen_dir() + "/split.safetensors", {{"big", safetensors::dtype::U8, {values.size()}, values}});
        return std::string("gen/split.safetensors");
    }();
    return relative;
}
} // namespace http_nginx_tests

TEST_CASE("http: a read of 129 MiB runs on two threads (read_threads): every byte in place, progress summed") {
    const auto local = safetensors::open(http_test::local_path(split_relative()));
    auto options = tls_options();
    options.read_threads = 2;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
    std::vector<std::thread::id> callers;  // the calls come one at a time, from both threads
    options.progress = [&calls, &callers](std::uint64_t received, std::uint64_t total) {
        calls.emplace_back(received, total);
        if (std::find(callers.begin(), callers.end(), std::this_thread::get_id()) == callers.end())
            callers.push_back(std::this_thread::get_id());
    };
    const auto remote = safetensors::open_url(http_test::nginx().https_url(split_relative()), options);
    const std::size_t before = http_test::nginx().access_log().size();
    const auto view = remote.tensor("big");
    std::vector<std::byte> bytes(static_cast<std::size_t>(view.byte_size()));
    view.read_bytes(0, bytes.data(), bytes.size());
    const auto t = logged_since(before, "/" + split_relative());
    CHECK(std::memcmp(bytes.data(), local.tensor("big").data(), bytes.size()) == 0);
    CHECK(t.requests == 17);  // 8 MiB each, about half per thread
    CHECK(callers.size() == 2);
    REQUIRE(!calls.empty());
    const std::uint64_t requested = view.byte_size() - (std::uint64_t{32} << 10) + view.source_offset();
    CHECK(calls.back() == std::make_pair(requested, requested));
    for (std::size_t i = 1; i < calls.size(); ++i) CHECK(calls[i - 1].first <= calls[i].first);

    // A failure on either thread ends the read with it, once both have stopped.
    options.progress = [](std::uint64_t received, std::uint64_t) {
        if (received > 0) throw std::runtime_error("stop here");
    };
    const auto stopped = safetensors::open_url(http_test::nginx().https_url(split_relative()), options);
    CHECK_THROWS_WITH_AS(stopped.tensor("big").read_bytes(0, bytes.data(), bytes.size()), "stop here", std::runtime_error);
}

TEST_CASE("http: http_options::progress reports a read's bytes as they arrive, and its end") {
    auto options = tls_options();
    std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
    options.progress = [&calls](std::uint64_t received, std::uint64_t total) { calls.emplace_back(received, total); };
    const auto remote = safetensors::open_url(http_test::nginx().https_url(matrix_relative()), options);
    CHECK(calls.empty());  // the open is not a read
    const auto view = remote.tensor("w");
    std::vector<std::byte> bytes(static_cast<std::size_t>(view.byte_size()));
    view.read_bytes(0, bytes.data(), bytes.size());
    REQUIRE(!calls.empty());
    // Everything but the bytes the open fetched already (the file's first 32 KiB).
    const std::uint64_t requested = view.byte_size() - (std::uint64_t{32} << 10) + view.source_offset();
    CHECK(calls.back() == std::make_pair(requested, requested));
    for (std::size_t i = 1; i < calls.size(); ++i) CHECK(calls[i - 1].first <= calls[i].first);

    // A callback that throws stops the read with its exception.
    options.progress = [](std::uint64_t, std::uint64_t) { throw std::runtime_error("stop here"); };
    const auto stopped = safetensors::open_url(http_test::nginx().https_url(matrix_relative()), options);
    CHECK_THROWS_WITH_AS(stopped.tensor("w").read_bytes(0, bytes.data(), bytes.size()), "stop here", std::runtime_error);
}

TEST_CASE("http: several threads read one source at once") {
    const auto local = safetensors::open(http_test::www_dir() + "/" + matrix_relative());
    const auto remote = safetensors::open_url(http_test::nginx().http_url(matrix_relative()));
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k) {
        threads.emplace_back([&, k] {
            for (int i = 0; i < 8; ++i) {
                const int row = k * 512 + i * 64;  // 64 runs of 512 bytes, 7.5 KiB apart
                const std::string spec = std::to_string(row) + ":" + std::to_string(row + 64) + ", " +
                                         std::to_string(row) + ":" + std::to_string(row + 256);
                const auto a = remote.tensor("w").slice(spec).to_tensor();
                const auto b = local.tensor("w").slice(spec).to_tensor();
                if (!std::equal(a.bytes().begin(), a.bytes().end(), b.bytes().begin(), b.bytes().end())) ++wrong;
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(wrong == 0);
}

TEST_CASE("http: a sharded checkpoint from its index URL, shards at URLs next to it") {
    const std::string index = "data/reference/model/gpt2_tiny_sharded/model.safetensors.index.json";
    const auto local = safetensors::open_sharded(http_test::www_dir() + "/" + index);
    const auto remote = safetensors::open_sharded_url(http_test::nginx().https_url(index) + "?signature=SECRET", tls_options());
    REQUIRE(remote.keys() == local.keys());
    for (const auto& name : local.keys()) CHECK(bytes_of(remote.tensor(name)) == bytes_of(local.tensor(name)));
    // An index, named by its URL without the signed query; its metadata as on disk.
    CHECK(remote.is_index());
    CHECK(remote.index_path() == http_test::nginx().https_url(index) + "?...");
    CHECK(*remote.metadata_json() == *local.metadata_json());
}

TEST_CASE("https: a server whose CA is unknown is refused, unless ca_file names it") {
    const std::string relative = "data/reference/valid/slicing.safetensors";
    const std::string address = http_test::nginx().https_url(relative);
    const auto e = error_of([&] { (void)safetensors::open_url(address); });
    CHECK(e.code == errc::network_error);
    CHECK(e.message.rfind("\"" + address + "\": SSL peer certificate or SSH remote key was not OK: SSL certificate problem", 0) == 0);
    CHECK(e.path == address);
    CHECK(safetensors::open_url(address, tls_options()).size() == safetensors::open(http_test::www_dir() + "/" + relative).size());
}

TEST_CASE("https: a redirect to http or to file:// is refused") {
    const std::string to_http = http_test::nginx().https_url("to-http/x.safetensors");
    auto e = error_of([&] { (void)safetensors::open_url(to_http, tls_options()); });
    CHECK(e.code == errc::unsafe_redirect);
    CHECK(e.message == "\"" + to_http + "\": redirect from https to http (\"" +
                           http_test::nginx().http_url("data/reference/valid/slicing.safetensors") + "\") refused");
    const std::string to_file = http_test::nginx().http_url("to-file/x.safetensors");
    e = error_of([&] { (void)safetensors::open_url(to_file); });
    CHECK(e.code == errc::unsafe_redirect);
    CHECK(e.message == "\"" + to_file +
                           "\": redirect to \"file:///etc/passwd\" refused: unsupported URL scheme \"file\" (only http and https)");
}

TEST_CASE("http: a missing file is file_not_found") {
    const std::string address = http_test::nginx().http_url("data/missing.safetensors");
    const auto e = error_of([&] { (void)safetensors::open_url(address); });
    CHECK(e.code == errc::file_not_found);
    CHECK(e.message == "\"" + address + "\": not found (HTTP 404)");
    CHECK(e.path == address);
}
