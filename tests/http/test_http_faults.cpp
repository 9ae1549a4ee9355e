// The HTTP reader against tests/http/fault_server.py: each injected fault gives its documented
// outcome (a retry that resumes, a fallback, or the error code and message), a token never
// reaches another host, no secret appears in a message, and nothing hangs (short timeouts).
#include <doctest/doctest.h>

#include <safetensors/http.hpp>
#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "../support/bytes.hpp"
#include "../support/errors.hpp"
#include "support/fixtures.hpp"
#include "support/servers.hpp"

namespace http_fault_tests {

using safetensors::errc;
using test_support::error_of;
using namespace std::chrono_literals;

// gpt2_tiny (151,080 bytes, a 2,600-byte header): past the open's first 32 KiB, every read
// goes to the server.
const std::string gpt2 = "data/reference/model/gpt2_tiny/model.safetensors";


// The file at relative with a fault query, and how messages show that URL.
inline std::string faulty(const std::string& query, const std::string& relative = gpt2) {
    return http_test::fault_server().url(relative + "?" + query);
}
inline std::string shown(const std::string& relative = gpt2) { return http_test::fault_server().url(relative) + "?..."; }

// Short timeouts and backoffs: a fault costs milliseconds.
inline safetensors::http_options quick() {
    safetensors::http_options o;
    o.connect_timeout = 2s;
    o.stall_timeout = 300ms;
    o.max_attempts = 3;
    o.backoff_initial = 10ms;
    o.backoff_max = 50ms;
    return o;
}

// The requests the server logged for this query (in order).
inline std::vector<nlohmann::json> requests_for(const std::string& query, const std::string& relative = gpt2) {
    std::vector<nlohmann::json> out;
    for (const auto& r : http_test::fault_server().requests())
        if (r["path"] == "/" + relative + "?" + query) out.push_back(r);
    return out;
}

inline std::vector<std::byte> local_bytes(std::uint64_t offset, std::size_t n) {
    static const auto all = test_support::read_all(http_test::local_path(gpt2));
    return {all.begin() + static_cast<std::ptrdiff_t>(offset), all.begin() + static_cast<std::ptrdiff_t>(offset + n)};
}

inline std::vector<std::byte> remote_bytes(const safetensors::source& s, std::uint64_t offset, std::size_t n) {
    std::vector<std::byte> out(n);
    s.read_at(offset, out.data(), n);
    return out;
}

// Ten 100-byte ranges 1,000 bytes apart, past the open's first bytes.
inline std::vector<safetensors::byte_range> scattered(std::vector<std::byte>& into) {
    into.assign(1000, std::byte{0});
    std::vector<safetensors::byte_range> ranges;
    for (std::size_t i = 0; i < 10; ++i) ranges.push_back({60000 + i * 1000, 100, into.data() + i * 100});
    return ranges;
}
inline std::vector<std::byte> scattered_local() {
    std::vector<std::byte> out;
    for (std::size_t i = 0; i < 10; ++i) {
        const auto part = local_bytes(60000 + i * 1000, 100);
        out.insert(out.end(), part.begin(), part.end());
    }
    return out;
}

inline bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace http_fault_tests

using namespace http_fault_tests;

TEST_CASE("faults: a connection dropped mid-body is retried from the bytes received") {
    const std::string q = "mode=drop&skip=1&n=2&id=resume";
    const auto src = safetensors::open_url_source(faulty(q), quick());
    CHECK(remote_bytes(*src, 40000, 100000) == local_bytes(40000, 100000));
    const auto log = requests_for(q);
    REQUIRE(log.size() == 4);  // the open, two dropped attempts, the rest
    CHECK(log[1]["range"] == "bytes=40000-139999");
    CHECK(log[2]["range"] == "bytes=" + std::to_string(40000 + log[1]["body_bytes"].get<int>()) + "-139999");
    CHECK(log[3]["range"] == "bytes=" + std::to_string(40000 + log[1]["body_bytes"].get<int>() + log[2]["body_bytes"].get<int>()) +
                                 "-139999");
}

TEST_CASE("faults: a connection dropped on every attempt is network_error after max_attempts") {
    const auto src = safetensors::open_url_source(faulty("mode=drop&skip=1&id=always"), quick());
    const auto e = error_of([&] { (void)remote_bytes(*src, 40000, 100000); });
    CHECK(e.code == errc::network_error);
    CHECK(e.message.rfind("\"" + shown() + "\": Transferred a partial file: transfer closed with ", 0) == 0);
    CHECK(ends_with(e.message, " bytes remaining to read (3 attempts)"));
    CHECK(e.path == shown());
}

TEST_CASE("faults: 503 and 429 are retried (Retry-After honoured), then remote_error") {
    const auto src = safetensors::open_url_source(faulty("mode=status&code=503&skip=1&n=2&id=503"), quick());
    CHECK(remote_bytes(*src, 50000, 1000) == local_bytes(50000, 1000));
    CHECK(requests_for("mode=status&code=503&skip=1&n=2&id=503").size() == 4);

    auto e = error_of([&] { (void)safetensors::open_url_source(faulty("mode=status&code=503&id=503-always"), quick()); });
    CHECK(e.code == errc::remote_error);
    CHECK(e.message == "\"" + shown() + "\": HTTP 503 (3 attempts)");

    auto o = quick();
    o.backoff_max = 2s;  // Retry-After is honoured up to backoff_max
    const auto start = std::chrono::steady_clock::now();
    const auto slow = safetensors::open_url_source(faulty("mode=status&code=429&retry_after=1&n=1&id=429"), o);
    CHECK(std::chrono::steady_clock::now() - start >= 900ms);
    CHECK(remote_bytes(*slow, 0, 100) == local_bytes(0, 100));
}

TEST_CASE("faults: a file that changes after the open is remote_changed") {
    const auto src = safetensors::open_url_source(faulty("mode=etag&id=etag"), quick());
    auto e = error_of([&] { (void)remote_bytes(*src, 50000, 1000); });
    CHECK(e.code == errc::remote_changed);
    CHECK(e.message == "\"" + shown() + "\": the file changed since it was opened: ETag \"\\\"v1\\\"\", now \"\\\"v2\\\"\"");

    const auto grown = safetensors::open_url_source(faulty("mode=size&id=size"), quick());
    e = error_of([&] { (void)remote_bytes(*grown, 50000, 1000); });
    CHECK(e.code == errc::remote_changed);
    CHECK(e.message == "\"" + shown() + "\": the file changed since it was opened: 151080 bytes, now 151081");
}

TEST_CASE("faults: a server that ignores Range: small files whole, large ones range_not_supported unless allowed") {
    const std::string small = "data/reference/valid/slicing.safetensors";
    const auto f = safetensors::open_url(faulty("mode=ignore_range&id=small", small), quick());
    const auto local = safetensors::open(http_test::local_path(small));
    for (const auto& view : local) CHECK(http_test::bytes_of(f.tensor(view.name())) == http_test::bytes_of(view));

    const std::string big = http_test::matrix_relative();
    const auto e = error_of([&] { (void)safetensors::open_url(faulty("mode=ignore_range&id=big", big), quick()); });
    CHECK(e.code == errc::range_not_supported);
    CHECK(e.message == "\"" + shown(big) +
                           "\": the server ignores Range requests (HTTP 200 with the whole file, 33554512 bytes); set "
                           "http_options::allow_full_download to download it whole");
    auto o = quick();
    o.allow_full_download = true;
    const auto whole = safetensors::open_url(faulty("mode=ignore_range&id=allowed", big), o);
    const auto row = whole.tensor("w").slice("100:101").to_tensor();
    const auto local_row = safetensors::open(http_test::local_path(big)).tensor("w").slice("100:101").to_tensor();
    CHECK(std::equal(row.bytes().begin(), row.bytes().end(), local_row.bytes().begin(), local_row.bytes().end()));
    CHECK(requests_for("mode=ignore_range&id=allowed", big).size() == 1);
}

TEST_CASE("faults: a multi-range request answered with one range falls back to coalesced single ranges") {
    for (const std::string& mode : {std::string("merge"), std::string("first")}) {
        INFO(mode);
        const std::string q = "mode=" + mode + "&id=fallback";
        const auto src = safetensors::open_url_source(faulty(q), quick());
        std::vector<std::byte> got;
        const auto ranges = scattered(got);
        src->read_ranges(safetensors::span<const safetensors::byte_range>(ranges.data(), ranges.size()));
        CHECK(got == scattered_local());
        std::vector<std::byte> again;
        const auto more = scattered(again);
        src->read_ranges(safetensors::span<const safetensors::byte_range>(more.data(), more.size()));
        CHECK(again == scattered_local());
        const auto log = requests_for(q);
        REQUIRE(log.size() >= 3);
        CHECK(log[1]["range"].get<std::string>().find(',') != std::string::npos);  // multi-range, answered with one
        CHECK(log.back()["range"] == "bytes=60000-69099");  // coalesced: gaps under coalesce_gap
        CHECK(log.size() == (mode == "merge" ? 3u : 4u));
    }
}

TEST_CASE("faults: a wrong Content-Range or a malformed multipart answer is invalid_response") {
    auto e = error_of([&] { (void)safetensors::open_url_source(faulty("mode=bad_range&id=bad"), quick()); });
    CHECK(e.code == errc::invalid_response);
    CHECK(e.message == "\"" + shown() + "\": Content-Range \"bytes 1-32768/151080\" does not match Range: bytes=0-32767");

    const auto src = safetensors::open_url_source(faulty("mode=bad_part&id=part"), quick());
    std::vector<std::byte> got;
    const auto ranges = scattered(got);
    e = error_of([&] { src->read_ranges(safetensors::span<const safetensors::byte_range>(ranges.data(), ranges.size())); });
    CHECK(e.code == errc::invalid_response);
    CHECK(e.message == "\"" + shown() + "\": malformed multipart/byteranges answer: a part's body is shorter than its Content-Range");
}

TEST_CASE("faults: a stalled answer is dropped after stall_timeout and retried") {
    const auto start = std::chrono::steady_clock::now();
    const auto src = safetensors::open_url_source(faulty("mode=stall&seconds=3&skip=1&n=1&id=stall"), quick());
    CHECK(remote_bytes(*src, 50000, 1000) == local_bytes(50000, 1000));
    CHECK(std::chrono::steady_clock::now() - start < 2s);

    auto o = quick();
    o.max_attempts = 2;
    const auto e = error_of([&] { (void)safetensors::open_url_source(faulty("mode=stall&seconds=3&id=stall-always"), o); });
    CHECK(e.code == errc::network_error);
    CHECK(e.message == "\"" + shown() + "\": no data for 300 ms (http_options::stall_timeout) (2 attempts)");
}

TEST_CASE("faults: redirects: the token goes to the URL's own host only; file:// and loops are refused") {
    auto o = quick();
    o.bearer_token = "TOKEN-SECRET";
    const auto same = safetensors::open_url_source(faulty("mode=redirect&to=same&id=same"), o);
    CHECK(remote_bytes(*same, 50000, 1000) == local_bytes(50000, 1000));

    http_test::fault_server().reset();
    const auto other = safetensors::open_url_source(faulty("mode=redirect&to=other&id=other"), o);
    CHECK(remote_bytes(*other, 50000, 1000) == local_bytes(50000, 1000));
    std::size_t to_other = 0;
    for (const auto& r : http_test::fault_server().requests()) {
        INFO(r.dump());
        if (r["path"].get<std::string>().rfind("/_", 0) == 0) continue;  // the test's own
        if (r["host"] == "127.0.0.2") {
            ++to_other;
            CHECK(r["authorization"] == "");
        } else {
            CHECK(r["authorization"] == "Bearer TOKEN-SECRET");
        }
        CHECK(r["accept_encoding"] == "identity");
    }
    CHECK(to_other == 2);  // the open's, then the read goes there directly

    // Where it led refuses later (a signed URL that expired): the URL is asked again, once.
    http_test::fault_server().reset();
    const auto expiring =
        safetensors::open_url_source(faulty("mode=redirect&to=other&n=2&then=mode%3Dstatus%26code%3D403%26skip%3D1%26n%3D1"), o);
    CHECK(remote_bytes(*expiring, 50000, 1000) == local_bytes(50000, 1000));
    std::vector<std::string> hops;
    for (const auto& r : http_test::fault_server().requests())
        if (r["path"].get<std::string>().rfind("/_", 0) != 0) hops.push_back(r["host"].get<std::string>() + " " + std::to_string(r["status"].get<int>()));
    CHECK(hops == std::vector<std::string>{"127.0.0.1 302", "127.0.0.2 206", "127.0.0.2 403", "127.0.0.1 302", "127.0.0.2 206"});

    auto e = error_of([&] { (void)safetensors::open_url_source(faulty("mode=redirect&to=file&id=file"), o); });
    CHECK(e.code == errc::unsafe_redirect);
    CHECK(e.message == "\"" + shown() +
                           "\": redirect to \"file:///etc/passwd\" refused: unsupported URL scheme \"file\" (only http and https)");
    e = error_of([&] { (void)safetensors::open_url_source(faulty("mode=redirect&to=loop&id=loop"), o); });
    CHECK(e.code == errc::unsafe_redirect);
    CHECK(e.message == "\"" + shown() + "\": more than 10 redirects (http_options::max_redirects)");
    CHECK(e.message.find("SECRET") == std::string::npos);
}

TEST_CASE("faults: HTTP statuses: 404 file_not_found, 401 and 403 permission_denied, others remote_error") {
    const auto code_of = [](int status) {
        return error_of([&] {
            (void)safetensors::open_url_source(faulty("mode=status&code=" + std::to_string(status) + "&sig=SECRET"), quick());
        });
    };
    auto e = code_of(404);
    CHECK(e.code == errc::file_not_found);
    CHECK(e.message == "\"" + shown() + "\": not found (HTTP 404)");
    e = code_of(403);
    CHECK(e.code == errc::permission_denied);
    CHECK(e.message == "\"" + shown() + "\": access denied (HTTP 403)");
    CHECK(code_of(401).code == errc::permission_denied);
    e = error_of([] { (void)safetensors::open_url_source(faulty("mode=status&code=404&body_bytes=300000"), quick()); });
    CHECK(e.code == errc::file_not_found);  // a long error page is not read to its end
    CHECK(e.message == "\"" + shown() + "\": not found (HTTP 404)");
    e = code_of(418);
    CHECK(e.code == errc::remote_error);
    CHECK(e.message == "\"" + shown() + "\": unexpected answer HTTP 418");
    CHECK(e.path == shown());
}

TEST_CASE("faults: invalid URLs and options") {
    auto e = error_of([] { (void)safetensors::open_url("ftp://example.com/model.safetensors"); });
    CHECK(e.code == errc::invalid_url);
    CHECK(e.message == "invalid URL \"ftp://example.com/model.safetensors\": unsupported URL scheme \"ftp\" (only http and https)");
    e = error_of([] { (void)safetensors::open_url("hf://gpt2/model.safetensors"); });
    CHECK(e.code == errc::invalid_url);
    CHECK(e.message == "invalid URL \"hf://gpt2/model.safetensors\": no file path after the repository in the hf:// URL");
    safetensors::http_options o;
    o.max_attempts = 0;
    e = error_of([&] { (void)safetensors::open_url(faulty("id=options"), o); });
    CHECK(e.code == errc::invalid_argument);
    CHECK(e.message == "http_options::max_attempts must be at least 1");
}

TEST_CASE("faults: nothing listening is network_error after max_attempts") {
    const std::string address = "http://127.0.0.1:" + std::to_string(http_test::free_port()) + "/x.safetensors";
    const auto e = error_of([&] { (void)safetensors::open_url(address, quick()); });
    CHECK(e.code == errc::network_error);
    CHECK(e.message.rfind("\"" + address + "\": Couldn't connect to server: Failed to connect to 127.0.0.1 port ", 0) == 0);
    CHECK(ends_with(e.message, " (3 attempts)"));
}

TEST_CASE("faults: reads reuse the open's connection (keep-alive)") {
    const std::string q = "id=keepalive";
    const auto src = safetensors::open_url_source(faulty(q), quick());
    for (std::uint64_t at = 40000; at < 140000; at += 20000) CHECK(remote_bytes(*src, at, 5000) == local_bytes(at, 5000));
    std::set<int> connections;
    const auto log = requests_for(q);
    for (const auto& r : log) connections.insert(r["connection"].get<int>());
    CHECK(log.size() == 6);
    CHECK(connections.size() == 1);
}

TEST_CASE("faults: hf:// URLs resolve against hf_endpoint; an index's shards are read at the commit it named") {
    auto o = quick();
    o.hf_endpoint = http_test::fault_server().url("");
    const std::string folder = "data/reference/model/gpt2_tiny_sharded/";
    http_test::fault_server().reset();
    const auto s = safetensors::open_sharded_url("hf://org/repo@refs%2Fpr%2F1/" + folder + "model.safetensors.index.json", o);
    const auto local = safetensors::open_sharded(http_test::local_path(folder + "model.safetensors.index.json"));
    REQUIRE(s.keys() == local.keys());
    for (const auto& name : local.keys()) CHECK(http_test::bytes_of(s.tensor(name)) == http_test::bytes_of(local.tensor(name)));
    std::vector<nlohmann::json> log;
    for (const auto& r : http_test::fault_server().requests())
        if (r["path"].get<std::string>().rfind("/_", 0) != 0) log.push_back(r);
    REQUIRE(log.size() > 5);
    CHECK(log[0]["path"] == "/org/repo/resolve/refs%2Fpr%2F1/" + folder + "model.safetensors.index.json");
    for (std::size_t i = 1; i < log.size(); ++i)
        CHECK(log[i]["path"].get<std::string>().rfind("/org/repo/resolve/0123456789abcdef0123456789abcdef01234567/" + folder, 0) == 0);
}
