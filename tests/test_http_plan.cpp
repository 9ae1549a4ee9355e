// How the HTTP reader plans a read (detail/http_plan.hpp, no network): targets sorted and
// merged into pieces, large pieces cut in chunks, small ones grouped in multi-range requests,
// the single-range fallback with the gap rule; bytes delivered to every target they overlap;
// what has arrived and what is left after an answer that stopped early or skipped a range.
#include <doctest/doctest.h>

#include <safetensors/detail/http_plan.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace http_plan_tests {

using safetensors::byte_range;
using safetensors::detail::http::piece;
namespace plan_ns = safetensors::detail::http;

inline safetensors::span<const byte_range> span_of(const std::vector<byte_range>& ranges) { return {ranges.data(), ranges.size()}; }

} // namespace http_plan_tests

// Qualified names only: the unit tests are unity builds, and short names collide.
using http_plan_tests::byte_range;
using http_plan_tests::piece;
using http_plan_tests::span_of;
namespace plan_ns = safetensors::detail::http;

TEST_CASE("http plan: targets sorted, empty ones dropped, merged into pieces by the gap") {
    char a[10], b[10], c[10];
    const std::vector<byte_range> ranges = {{100, 10, b}, {0, 10, a}, {50, 0, c}, {115, 10, c}};
    const plan_ns::target_set targets(span_of(ranges));
    CHECK(targets.pieces(0) == std::vector<piece>{{0, 10}, {100, 110}, {115, 125}});
    CHECK(targets.pieces(5) == std::vector<piece>{{0, 10}, {100, 125}});
    CHECK(targets.pieces(90) == std::vector<piece>{{0, 125}});
    CHECK(plan_ns::target_set(span_of({})).empty());
}

TEST_CASE("http plan: delivered bytes reach every target they overlap, in any order") {
    std::string object(200, '\0');
    for (std::size_t i = 0; i < object.size(); ++i) object[i] = static_cast<char>('a' + i % 26);
    std::vector<char> whole(100), inner(10), same(10), late(30);
    const std::vector<byte_range> ranges = {
        {20, 100, whole.data()}, {50, 10, inner.data()}, {50, 10, same.data()}, {150, 30, late.data()}};
    const plan_ns::target_set targets(span_of(ranges));
    targets.deliver(150, object.data() + 150, 50);  // a later part first
    for (std::uint64_t at = 0; at < 150; at += 7)   // then the rest in odd pieces
        targets.deliver(at, object.data() + at, static_cast<std::size_t>(std::min<std::uint64_t>(7, 150 - at)));
    CHECK(std::string(whole.begin(), whole.end()) == object.substr(20, 100));
    CHECK(std::string(inner.begin(), inner.end()) == object.substr(50, 10));
    CHECK(std::string(same.begin(), same.end()) == object.substr(50, 10));
    CHECK(std::string(late.begin(), late.end()) == object.substr(150, 30));
}

TEST_CASE("http plan: a 1/8 column part is 64 multi-range requests; large reads are 8 MiB chunks") {
    std::vector<piece> runs;
    for (std::uint64_t row = 0; row < 4096; ++row) runs.push_back({80 + row * 8192, 80 + row * 8192 + 1024});
    const auto requests = plan_ns::plan(runs, true, 64, 4096);
    REQUIRE(requests.size() == 64);
    for (const auto& r : requests) CHECK(r.size() == 64);
    CHECK(requests[1].front() == runs[64]);

    const std::uint64_t mib = std::uint64_t{1} << 20;
    const auto big = plan_ns::plan({{0, 20 * mib}}, true, 64, 4096);
    REQUIRE(big.size() == 3);
    CHECK(big[0] == std::vector<piece>{{0, 8 * mib}});
    CHECK(big[2] == std::vector<piece>{{16 * mib, 20 * mib}});
    // Many small pieces: a request stops at 64 ranges or 8 MiB, whichever comes first.
    std::vector<piece> medium;
    for (std::uint64_t i = 0; i < 10; ++i) medium.push_back({i * 2 * mib, i * 2 * mib + mib});
    const auto grouped = plan_ns::plan(medium, true, 64, 4096);
    REQUIRE(grouped.size() == 2);
    CHECK(grouped[0].size() == 8);
}

TEST_CASE("http plan: without multi-range requests, single ranges with gaps up to coalesce_gap fetched through") {
    const std::vector<piece> pieces = {{0, 100}, {1000, 1100}, {10000, 10100}, {12000, 12100}};
    const auto requests = plan_ns::plan(pieces, false, 64, 4096);
    REQUIRE(requests.size() == 2);
    CHECK(requests[0] == std::vector<piece>{{0, 1100}});
    CHECK(requests[1] == std::vector<piece>{{10000, 12100}});
    CHECK(plan_ns::plan(pieces, true, 1, 0).size() == 4);  // max_ranges 1: single ranges too
}

TEST_CASE("http plan: coverage counts what arrived from each piece's start; the rest is asked again") {
    plan_ns::coverage got({{0, 100}, {200, 300}, {400, 500}});
    got.arrived(0, 60);
    got.arrived(250, 50);  // leaves a hole at 200..250: not counted
    got.arrived(400, 100);
    CHECK(got.received() == 160);
    CHECK(got.remaining() == std::vector<piece>{{60, 100}, {200, 300}});
    got.arrived(40, 80);  // overlaps what arrived, reaches past the piece
    got.arrived(200, 100);
    CHECK(got.remaining().empty());
    CHECK(got.received() == 300);
}
