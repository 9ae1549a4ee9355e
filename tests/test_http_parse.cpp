// The HTTP reader's parsing layer, without a network: Content-Range values, the Range header,
// the multipart/byteranges boundary and the push parser for its body (fed whole, split at every
// point and byte by byte, which must all agree), Retry-After and HTTP-dates, URLs (parsing,
// resolving shard names, redaction, the same-origin rule) and hf:// locations.
#include <doctest/doctest.h>

#include <safetensors/detail/http_ranges.hpp>
#include <safetensors/detail/http_url.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/errors.hpp"

namespace http_parse_test {

namespace http = safetensors::detail::http;
using range_pair = std::pair<std::uint64_t, std::uint64_t>;

std::optional<http::content_range> content_range_of(std::string_view value) {
    http::content_range r;
    if (!http::parse_content_range(value, r)) return std::nullopt;
    return r;
}

http::content_range range_of(std::uint64_t first, std::uint64_t last, std::optional<std::uint64_t> complete) {
    http::content_range r;
    r.first = first;
    r.last = last;
    r.complete = complete.value_or(0);
    r.complete_known = complete.has_value();
    return r;
}

std::optional<std::uint64_t> unsatisfied_of(std::string_view value) {
    std::uint64_t complete = 0;
    if (!http::parse_unsatisfied_range(value, complete)) return std::nullopt;
    return complete;
}

std::optional<std::string> boundary_of(std::string_view content_type) {
    std::string boundary = "unchanged";
    if (!http::multipart_boundary(content_type, boundary)) {
        CHECK(boundary == "unchanged");
        return std::nullopt;
    }
    return boundary;
}

// Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
constexpr std::int64_t http_parse_example_now = 784111777;

std::optional<std::uint64_t> retry_after_of(std::string_view value, std::int64_t now = http_parse_example_now,
                                            std::uint64_t max_seconds = 3600) {
    std::uint64_t seconds = 0;
    if (!http::parse_retry_after(value, now, max_seconds, seconds)) return std::nullopt;
    return seconds;
}

std::string range_header_of(const std::vector<range_pair>& ranges) { return http::range_header(ranges); }

// ---- the multipart parser's runs -------------------------------------------------------------

struct recorded_part {
    http::content_range range;
    std::string data;
    bool operator==(const recorded_part& o) const { return range == o.range && data == o.data; }
};

struct recorder final : http::multipart_parser::sink {
    std::vector<recorded_part> parts;
    std::size_t stop_after_bytes = ~std::size_t{0};
    std::size_t bytes = 0;

    bool on_part(const http::content_range& range) override {
        parts.push_back({range, {}});
        return true;
    }
    bool on_data(const char* data, std::size_t size) override {
        REQUIRE(!parts.empty());
        REQUIRE(size > 0);
        parts.back().data.append(data, size);
        bytes += size;
        return bytes <= stop_after_bytes;
    }
};

struct outcome {
    std::vector<recorded_part> parts;
    bool ok = false;  // every feed() and finish() returned true
    std::string error;
    bool operator==(const outcome& o) const { return parts == o.parts && ok == o.ok && error == o.error; }
};

// Feeds body in the given pieces (split points, ascending), stopping at the first failed feed().
outcome parse_pieces(const std::string& boundary, std::string_view body, const std::vector<std::size_t>& cuts,
                     std::size_t header_limit = 8192) {
    recorder sink;
    http::multipart_parser parser(boundary, sink, header_limit);
    bool fed = true;
    std::size_t at = 0;
    for (std::size_t i = 0; i <= cuts.size() && fed; ++i) {
        const std::size_t end = i < cuts.size() ? cuts[i] : body.size();
        fed = parser.feed(body.data() + at, end - at);
        at = end;
    }
    outcome out;
    out.ok = parser.finish() && fed;
    out.error = parser.error();
    out.parts = std::move(sink.parts);
    CHECK(out.ok == out.error.empty());
    return out;
}

// The body fed whole, split in two at every point, byte by byte and in three at every pair of
// points when at most 96 bytes: every run must give the same outcome, which is returned.
outcome parse_all_ways(const std::string& boundary, std::string_view body, std::size_t header_limit = 8192) {
    const outcome whole = parse_pieces(boundary, body, {}, header_limit);
    for (std::size_t cut = 0; cut <= body.size(); ++cut) {
        CAPTURE(cut);
        CHECK(parse_pieces(boundary, body, {cut}, header_limit) == whole);
    }
    std::vector<std::size_t> every_byte;
    for (std::size_t i = 1; i < body.size(); ++i) every_byte.push_back(i);
    CHECK(parse_pieces(boundary, body, every_byte, header_limit) == whole);
    if (body.size() <= 96) {
        for (std::size_t a = 0; a <= body.size(); ++a)
            for (std::size_t b = a; b <= body.size(); ++b) {
                CAPTURE(a);
                CAPTURE(b);
                REQUIRE(parse_pieces(boundary, body, {a, b}, header_limit) == whole);
            }
    }
    return whole;
}

const std::string nginx_boundary = "00000000000000000001";

// A 206 answer to "Range: bytes=0-3,50-59" exactly as nginx writes it (ngx_http_range_filter):
// CRLF before every delimiter, Content-Type then Content-Range in each part, CRLF after the close
// delimiter. The bodies hold CR, LF, dashes and the boundary's digits.
const std::string nginx_body =
    "\r\n--00000000000000000001\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Range: bytes 0-3/100\r\n"
    "\r\n"
    "\r\n-\r"
    "\r\n--00000000000000000001\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Range: bytes 50-59/100\r\n"
    "\r\n"
    "--0000000\n"
    "\r\n--00000000000000000001--\r\n";

// One part as nginx writes it, for bodies built in tests.
std::string nginx_part(const std::string& boundary, const std::string& content_range, const std::string& data) {
    return "\r\n--" + boundary + "\r\nContent-Type: application/octet-stream\r\nContent-Range: " + content_range +
           "\r\n\r\n" + data;
}
std::string close_delimiter(const std::string& boundary) { return "\r\n--" + boundary + "--\r\n"; }

// ---- URLs ------------------------------------------------------------------------------------

std::optional<http::url> url_of(std::string_view text) {
    http::url u;
    std::string why;
    if (!http::parse_url(text, u, why)) return std::nullopt;
    CHECK(why.empty());
    return u;
}

// The reason parse_url gives for refusing text (empty when it accepts it).
std::string url_refusal(std::string_view text) {
    http::url u;
    std::string why;
    if (http::parse_url(text, u, why)) return {};
    CHECK(!why.empty());
    return why;
}

std::string resolved(std::string_view base, std::string_view reference) {
    const auto u = url_of(base);
    REQUIRE(u);
    return http::to_string(http::resolve_reference(*u, reference));
}

bool same_origin(std::string_view a, std::string_view b) {
    const auto ua = url_of(a), ub = url_of(b);
    REQUIRE(ua);
    REQUIRE(ub);
    return http::same_origin_host(*ua, *ub);
}

std::optional<http::hf_location> hf_of(std::string_view text) {
    http::hf_location loc;
    std::string why;
    if (!http::parse_hf_url(text, loc, why)) {
        CHECK(!why.empty());
        return std::nullopt;
    }
    return loc;
}

http::hf_location hf_location_of(std::string type, std::string id, std::string revision, std::string path) {
    http::hf_location loc;
    loc.repo_type = std::move(type);
    loc.repo_id = std::move(id);
    loc.revision = std::move(revision);
    loc.path = std::move(path);
    return loc;
}

// The test cases stay in the namespace too: the unit tests are built as unity translation units,
// where a using-directive would meet other files' names.

TEST_CASE("http: Content-Range values that parse") {
    CHECK(content_range_of("bytes 0-499/1234") == range_of(0, 499, 1234));
    CHECK(content_range_of("bytes 0-499/*") == range_of(0, 499, std::nullopt));
    CHECK(content_range_of("BYTES 5-5/6") == range_of(5, 5, 6));
    CHECK(content_range_of("Bytes 7-7/*") == range_of(7, 7, std::nullopt));
    CHECK(content_range_of(" \tbytes 0-0/1 \t") == range_of(0, 0, 1));
    CHECK(content_range_of("bytes 00-09/10") == range_of(0, 9, 10));
    // 19 digits, the most a value may have.
    CHECK(content_range_of("bytes 0-9999999999999999998/9999999999999999999") ==
          range_of(0, 9999999999999999998u, 9999999999999999999u));
    CHECK(content_range_of("bytes 9999999999999999999-9999999999999999999/*") ==
          range_of(9999999999999999999u, 9999999999999999999u, std::nullopt));
}

TEST_CASE("http: malformed Content-Range values are refused") {
    const char* bad[] = {
        "", "bytes", "bytes ", "bytes 0-499", "bytes 0-499/", "bytes -499/1234", "bytes 0-/1234",
        "bytes -1-5/10",                             // negative
        "bytes +1-5/10", "bytes 1-+5/10", "bytes 1-5/+10",
        "bytes 1 0-20/30", "bytes 0-2 0/30", "bytes 0-20/3 0", "bytes 0 -1/2", "bytes 0- 1/2", "bytes 0-1 /2",
        "bytes 0-1/ 2",                               // spaces inside
        "bytes  0-1/2", "bytes\t0-1/2", "bytes0-1/2", // one space after the unit, exactly
        "bytes 00000000000000000001-2/3",             // 20 digits
        "bytes 0-18446744073709551616/*",             // 2^64: overflow
        "bytes 0-1/99999999999999999999",             // 20 digits
        "bytes 5-4/10",                               // first > last
        "bytes 0-10/10", "bytes 0-11/10", "bytes 0-0/0", // last >= complete
        "bytes=0-1/2", "bytes: 0-1/2",                // typos
        "bits 0-1/2", "items 0-1/2", "byte 0-1/2", "bytesx 0-1/2", // other units
        "bytes */10",                                 // unsatisfied: not a range
        "bytes 0-1/2x", "bytes 0x1-2/3", "bytes 1-2/3/4", "bytes 1-2-3/4", "bytes 1/2-3", "bytes 0-1/**",
        "bytes 0-1/2,3-4/5", "bytes 0-1/2\r\n", "bytes 1.0-2/3"};
    for (const char* value : bad) {
        CAPTURE(value);
        CHECK_FALSE(content_range_of(value));
    }
}

TEST_CASE("http: the complete length of a 416 answer") {
    CHECK(unsatisfied_of("bytes */1234") == 1234u);
    CHECK(unsatisfied_of("bytes */0") == 0u);
    CHECK(unsatisfied_of(" Bytes */5 ") == 5u);
    CHECK(unsatisfied_of("bytes */9999999999999999999") == 9999999999999999999u);
    for (const char* value : {"bytes */*", "bytes 0-1/2", "bytes */-1", "bytes * /5", "bytes */ 5", "bytes=*/5",
                              "bytes */", "bytes */18446744073709551616", "bytes */5 6"}) {
        CAPTURE(value);
        CHECK_FALSE(unsatisfied_of(value));
    }
}

TEST_CASE("http: the boundary of multipart/byteranges") {
    CHECK(boundary_of("multipart/byteranges; boundary=00000000000000000001") == std::string("00000000000000000001"));
    CHECK(boundary_of("multipart/byteranges;boundary=3d6b6a416f9b5") == std::string("3d6b6a416f9b5"));
    CHECK(boundary_of("Multipart/ByteRanges; BOUNDARY=\"a b\"") == std::string("a b"));
    CHECK(boundary_of("multipart/byteranges; charset=utf-8; boundary=THIS_STRING_SEPARATES") ==
          std::string("THIS_STRING_SEPARATES"));
    CHECK(boundary_of("multipart/byteranges; boundary=x; foo=\"b;a=r\"") == std::string("x"));
    CHECK(boundary_of(" multipart/byteranges ;; boundary=x ; ") == std::string("x"));
    CHECK(boundary_of("multipart/byteranges; boundary=\"'()+_,-./:=? x\"") == std::string("'()+_,-./:=? x"));
    CHECK(boundary_of("multipart/byteranges; boundary=\"a\\bc\"") == std::string("abc"));  // a quoted-pair
    const std::string seventy(70, 'z');
    CHECK(boundary_of("multipart/byteranges; boundary=" + seventy) == seventy);

    const std::string refused[] = {
        "multipart/mixed; boundary=x", "text/plain", "multipart/byteranges", "multipart/byteranges;",
        "multipart/byteranges; boundary=", "multipart/byteranges; boundary=\"\"",
        "multipart/byteranges; boundary=" + std::string(71, 'z'),  // too long
        "multipart/byteranges; boundary=\"ab \"",                   // ends in a space
        "multipart/byteranges; boundary=x; boundary=y",             // twice
        "multipart/byteranges; boundary=x y", "multipart/byteranges; boundary = x",
        "multipart/byteranges; boundary=\"unterminated", "multipart/byteranges; boundary=a:b",
        "multipart/byteranges; boundary=a!b",                       // a token, but '!' is no bchar
        "multipart/byteranges; boundary=\"a\\\"b\"", "multipart/byteranges; boundary=\"a\tb\"",
        "multipart/byteranges boundary=x", "multipart/byteranges; =x", "multipart/byteranges; boundary",
        "multipart/byteranges; boundary=x junk", "multipart/byteranges-x; boundary=x"};
    for (const std::string& value : refused) {
        CAPTURE(value);
        CHECK_FALSE(boundary_of(value));
    }
}

TEST_CASE("http: Retry-After as delta-seconds") {
    CHECK(retry_after_of("120") == 120u);
    CHECK(retry_after_of("0") == 0u);
    CHECK(retry_after_of(" 5\t") == 5u);
    CHECK(retry_after_of("007") == 7u);
    CHECK(retry_after_of("3600") == 3600u);
    CHECK(retry_after_of("3601") == 3600u);  // clamped
    CHECK(retry_after_of("100000", 0, 60) == 60u);
    CHECK(retry_after_of("99999999999999999999999999") == 3600u);  // beyond 64 bits: clamped too
    for (const char* value : {"", " ", "-1", "+1", "1.5", "1 2", "soon", "0x10", "1e3"}) {
        CAPTURE(value);
        CHECK_FALSE(retry_after_of(value));
    }
}

TEST_CASE("http: Retry-After as an HTTP-date") {
    // The three forms of RFC 9110 5.6.7, a minute after "now".
    CHECK(retry_after_of("Sun, 06 Nov 1994 08:50:37 GMT") == 60u);
    CHECK(retry_after_of("Sunday, 06-Nov-94 08:50:37 GMT") == 60u);
    CHECK(retry_after_of("Sun Nov  6 08:50:37 1994") == 60u);
    CHECK(retry_after_of("Sun, 06 Nov 1994 08:49:37 GMT") == 0u);  // now
    CHECK(retry_after_of("Sat, 05 Nov 1994 08:49:37 GMT") == 0u);  // past
    CHECK(retry_after_of("Thu, 01 Jan 1970 00:00:00 GMT") == 0u);
    CHECK(retry_after_of("Sun, 06 Nov 1994 10:49:37 GMT") == 3600u);  // two hours: clamped
    CHECK(retry_after_of("Fri, 31 Dec 9999 23:59:59 GMT") == 3600u);
    CHECK(retry_after_of("Sun, 06 Nov 1994 08:49:38 GMT", http_parse_example_now, 0) == 0u);
    CHECK(retry_after_of("Sat, 29 Feb 2020 00:00:00 GMT", 1582934400 - 10) == 10u);  // a leap day
    CHECK(retry_after_of("Wed, 31 Dec 2025 23:59:60 GMT", 1767225600 - 1) == 1u);     // a leap second
    // Weekdays are not checked against dates.
    CHECK(retry_after_of("Mon, 06 Nov 1994 08:50:37 GMT") == 60u);

    const char* bad[] = {
        "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37", "Sun, 6 Nov 1994 08:49:37 GMT",
        "sun, 06 Nov 1994 08:49:37 GMT", "Sun, 06 nov 1994 08:49:37 GMT", "Sun 06 Nov 1994 08:49:37 GMT",
        "Sun,  06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 94 08:49:37 GMT", "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 31 Feb 2026 00:00:00 GMT", "Fri, 29 Feb 2019 00:00:00 GMT", "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 32 Jan 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT x", "Sun, 06-Nov-94 08:49:37 GMT", "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994", "Sun Nov 06 08:49:37 94",
        "Sun Nov  6 08:49:37 1994 GMT", "2026-01-01T00:00:00Z"};
    for (const char* value : bad) {
        CAPTURE(value);
        CHECK_FALSE(retry_after_of(value));
    }
}

TEST_CASE("http: HTTP-date arithmetic and RFC 850 two-digit years") {
    CHECK(http::days_from_civil(1970, 1, 1) == 0);
    CHECK(http::days_from_civil(2000, 3, 1) == 11017);
    CHECK(http::days_from_civil(1969, 12, 31) == -1);
    CHECK(http::year_of_unix_seconds(0) == 1970);
    CHECK(http::year_of_unix_seconds(-1) == 1969);
    CHECK(http::year_of_unix_seconds(951782400) == 2000);  // 2000-02-29
    CHECK(http::year_of_unix_seconds(1767225599) == 2025);
    CHECK(http::year_of_unix_seconds(1767225600) == 2026);
    std::int64_t when = 0;
    REQUIRE(http::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", 0, when));
    CHECK(when == http_parse_example_now);
    // Seen from 2026: "94" is 1994 (2094 is more than 50 years ahead), "70" is 2070 (it is not).
    constexpr std::int64_t new_year_2026 = 1767225600;
    REQUIRE(http::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", new_year_2026, when));
    CHECK(when == http_parse_example_now);
    REQUIRE(http::parse_http_date("Tuesday, 01-Jan-70 00:00:00 GMT", new_year_2026, when));
    CHECK(when == http::days_from_civil(2070, 1, 1) * 86400);
    CHECK(retry_after_of("Tuesday, 01-Jan-70 00:00:00 GMT", new_year_2026) == 3600u);
}

TEST_CASE("http: the Range header") {
    CHECK(range_header_of({{0, 9}, {20, 29}}) == "bytes=0-9,20-29");
    CHECK(range_header_of({{5, 5}}) == "bytes=5-5");
    CHECK(range_header_of({{0, 9}, {10, 19}}) == "bytes=0-9,10-19");  // adjacent: allowed
    CHECK(range_header_of({{0, 18446744073709551615u}}) == "bytes=0-18446744073709551615");
    using safetensors::errc;
    using test_support::error_of;
    CHECK(error_of([] { range_header_of({}); }).code == errc::invalid_argument);
    CHECK(error_of([] { range_header_of({{5, 4}}); }).code == errc::invalid_argument);
    CHECK(error_of([] { range_header_of({{0, 9}, {9, 19}}); }).code == errc::invalid_argument);   // overlap
    CHECK(error_of([] { range_header_of({{20, 29}, {0, 9}}); }).code == errc::invalid_argument);  // order
}

TEST_CASE("http: multipart parser on an nginx answer, at every split") {
    const outcome result = parse_all_ways(nginx_boundary, nginx_body);
    CHECK(result.ok);
    CHECK(result.error.empty());
    REQUIRE(result.parts.size() == 2);
    CHECK(result.parts[0].range == range_of(0, 3, 100));
    CHECK(result.parts[0].data == "\r\n-\r");
    CHECK(result.parts[1].range == range_of(50, 59, 100));
    CHECK(result.parts[1].data == "--0000000\n");
}

TEST_CASE("http: multipart parser: delimiter variants and lookalikes in the data") {
    // No CRLF before the first delimiter, a preamble, transport padding, lower-case names, no
    // Content-Type, an epilogue: all accepted.
    std::string body = "--b\r\nContent-range:bytes 0-2/*\r\n\r\nabc\r\n--b \t \r\ncontent-type: x\r\n"
                       "CONTENT-RANGE: bytes 3-3/*\r\n\r\nd\r\n--b--  \r\nepilogue --b\r\n";
    outcome result = parse_all_ways("b", body);
    CHECK(result.ok);
    REQUIRE(result.parts.size() == 2);
    CHECK(result.parts[0].data == "abc");
    CHECK(result.parts[1].range == range_of(3, 3, std::nullopt));

    result = parse_all_ways("b", "preamble --b\r\n\r\n--b\r\nContent-Range: bytes 0-0/1\r\n\r\nz\r\n--b--");
    CHECK(result.ok);
    REQUIRE(result.parts.size() == 1);
    CHECK(result.parts[0].data == "z");

    // The boundary inside the data without CRLF "--" before it, and a delimiter's beginning that
    // turns out to be data: body bytes, delivered in full.
    const std::string data = "--00000000000000000001\n--00000000000000000001\r\n-00000000000000000001"
                             "\r\n--0000000000000000000\r\n--00000000000000000002\r\r\r";
    body = nginx_part(nginx_boundary, "bytes 10-" + std::to_string(10 + data.size() - 1) + "/1000", data) +
           close_delimiter(nginx_boundary);
    result = parse_all_ways(nginx_boundary, body);
    CHECK(result.ok);
    REQUIRE(result.parts.size() == 1);
    CHECK(result.parts[0].data == data);
}

TEST_CASE("http: multipart parser errors") {
    const std::string& b = nginx_boundary;
    const auto error_of_body = [](const std::string& boundary, const std::string& body, std::size_t limit = 8192) {
        const outcome result = parse_all_ways(boundary, body, limit);
        CHECK_FALSE(result.ok);
        return result.error;
    };
    CHECK(error_of_body(b, "\r\n--" + b + "\r\nContent-Type: application/octet-stream\r\n\r\nabcd" + close_delimiter(b)) ==
          "a part has no Content-Range");
    CHECK(error_of_body(b, "\r\n--" + b + "\r\n\r\nabcd" + close_delimiter(b)) == "a part has no Content-Range");
    CHECK(error_of_body(b, nginx_part(b, "bytes 0-9/100", "abcd") + close_delimiter(b)) ==
          "a part's body is shorter than its Content-Range");
    CHECK(error_of_body(b, nginx_part(b, "bytes 0-3/100", "abcd") + nginx_part(b, "bytes 8-8/100", "") +
                               close_delimiter(b)) == "a part's body is shorter than its Content-Range");
    CHECK(error_of_body(b, nginx_part(b, "bytes 0-3/100", "abcdef") + close_delimiter(b)) ==
          "a part's body is longer than its Content-Range");
    CHECK(error_of_body(b, nginx_part(b, "bytes 0-3/100", "abcd")) == "the body ends without the closing delimiter");
    CHECK(error_of_body(b, nginx_part(b, "bytes 0-3/100", "abcd") + "\r\n--" + b + "\r\n") ==
          "the body ends inside a part's headers");
    CHECK(error_of_body(b, nginx_part(b, "bytes 0-3/100", "ab")) == "the body ends inside a part");
    CHECK(error_of_body(b, nginx_part(b, "bytes 0-3/100", "abcd") + "\r\n--" + b) ==
          "the body ends without the closing delimiter");
    CHECK(error_of_body(b, "") == "no multipart delimiter in the body");
    CHECK(error_of_body(b, "<html>502 Bad Gateway</html>") == "no multipart delimiter in the body");
    CHECK(error_of_body(b, std::string(400, 'x'), 256) == "no multipart delimiter at the start of the body");
    CHECK(error_of_body(b, "\r\n--" + b + "--\r\n") == "a multipart body without parts");
    CHECK(error_of_body(b, "\r\n--" + b + "X\r\n") == "malformed multipart delimiter line");
    CHECK(error_of_body(b, "\r\n--" + b + " x\r\n") == "malformed multipart delimiter line");
    CHECK(error_of_body(b, "\r\n--" + b + "-x") == "malformed multipart delimiter line");
    CHECK(error_of_body(b, "\r\n--" + b + "\rx") == "a multipart delimiter line does not end in CRLF");
    CHECK(error_of_body(b, "\r\n--" + b + "\nContent-Range: bytes 0-0/1\n\nx\n--" + b + "--\n") ==
          "malformed multipart delimiter line");
    CHECK(error_of_body(b, "\r\n--" + b + "\r\nContent-Range: bytes 0-0/1\n\nx" + close_delimiter(b)) ==
          "a part header line ends in LF without CR");
    CHECK(error_of_body(b, nginx_part(b, "bytes 0-3", "abcd") + close_delimiter(b)) == "invalid Content-Range in a part");
    CHECK(error_of_body(b, "\r\n--" + b + "\r\nContent-Range: bytes 0-0/1\r\ncontent-range: bytes 0-0/1\r\n\r\nx" +
                               close_delimiter(b)) == "two Content-Range headers in one part");
    CHECK(error_of_body(b, "\r\n--" + b + "\r\nContent-Range: bytes 0-0/1\r\n folded\r\n\r\nx" + close_delimiter(b)) ==
          "folded part header line");
    CHECK(error_of_body(b, "\r\n--" + b + "\r\nno colon\r\n\r\nx" + close_delimiter(b)) ==
          "part header line without a colon");
    CHECK(error_of_body(b, "\r\n--" + b + "\r\nContent-Range : bytes 0-0/1\r\n\r\nx" + close_delimiter(b)) ==
          "malformed part header name");
    CHECK(error_of_body(b, "\r\n--" + b + "\r\nX: a\rb\r\n\r\nx" + close_delimiter(b)) ==
          "control character in a part header");
    CHECK(error_of_body(b, nginx_part(b, "bytes 0-0/100", "a") + nginx_part(b, "bytes 5-5/200", "b") +
                               close_delimiter(b)) == "parts disagree on the complete length");
    // The header limit counts a part's header bytes, the empty line included.
    const std::string part = nginx_part(b, "bytes 0-0/1", "z") + close_delimiter(b);
    const std::size_t header_bytes = part.find("\r\n\r\n") + 4 - (4 + b.size() + 2);
    CHECK(parse_all_ways(b, part, header_bytes).ok);
    CHECK(error_of_body(b, part, header_bytes - 1) == "a part's headers are too long");
}

TEST_CASE("http: multipart parser: never more bytes than announced, and the sink may stop") {
    const std::string& b = nginx_boundary;
    outcome result = parse_pieces(b, nginx_part(b, "bytes 0-3/100", "abcdefgh") + close_delimiter(b), {});
    REQUIRE(result.parts.size() == 1);
    CHECK(result.parts[0].data == "abcd");
    // Held-back bytes that turn out to be data count too.
    result = parse_all_ways(b, nginx_part(b, "bytes 0-3/100", "ab\r\n--0") + close_delimiter(b));
    REQUIRE(result.parts.size() == 1);
    CHECK(result.parts[0].data == "ab\r\n");
    CHECK(result.error == "a part's body is longer than its Content-Range");

    recorder sink;
    sink.stop_after_bytes = 2;
    http::multipart_parser parser(b, sink);
    CHECK_FALSE(parser.feed(nginx_body.data(), nginx_body.size()));
    CHECK(parser.stopped_by_sink());
    CHECK(parser.error() == "the receiver stopped the transfer");
    CHECK_FALSE(parser.feed("x", 1));  // stays failed
    CHECK_FALSE(parser.finish());
    CHECK(parser.error() == "the receiver stopped the transfer");

    recorder unused;
    http::multipart_parser invalid("bad\r\nboundary", unused);
    CHECK_FALSE(invalid.feed(nginx_body.data(), nginx_body.size()));
    CHECK(invalid.error() == "invalid multipart boundary");
    CHECK_FALSE(invalid.stopped_by_sink());

    recorder counted;
    http::multipart_parser done(b, counted);
    CHECK(done.feed(nullptr, 0));
    CHECK(done.feed(nginx_body.data(), nginx_body.size()));
    CHECK(done.done());
    CHECK(done.parts() == 2);
    CHECK(done.feed("any epilogue", 12));
    CHECK(done.finish());
}

TEST_CASE("http: URLs that parse") {
    auto u = url_of("https://huggingface.co/org/repo/resolve/main/model.safetensors");
    REQUIRE(u);
    CHECK(u->scheme == "https");
    CHECK(u->host == "huggingface.co");
    CHECK(u->port.empty());
    CHECK(u->path == "/org/repo/resolve/main/model.safetensors");
    CHECK(u->query.empty());

    u = url_of("HTTPS://Example.COM:8443/a%20B/c?x=1&y=%2F/?#fragment");
    REQUIRE(u);
    CHECK(u->scheme == "https");
    CHECK(u->host == "example.com");
    CHECK(u->port == "8443");
    CHECK(u->path == "/a%20B/c");
    CHECK(u->query == "x=1&y=%2F/?");
    CHECK(http::to_string(*u) == "https://example.com:8443/a%20B/c?x=1&y=%2F/?");

    CHECK(http::to_string(*url_of("http://example.com")) == "http://example.com/");
    CHECK(http::to_string(*url_of("http://example.com?q")) == "http://example.com/?q");
    CHECK(http::to_string(*url_of("http://example.com#f")) == "http://example.com/");
    CHECK(http::to_string(*url_of("http://example.com:080/")) == "http://example.com:80/");
    CHECK(http::to_string(*url_of("http://[::1]:8080/x")) == "http://[::1]:8080/x");
    CHECK(url_of("http://[2001:DB8::1]/")->host == "[2001:db8::1]");
    CHECK(url_of("http://[::ffff:192.0.2.1]/")->host == "[::ffff:192.0.2.1]");
    CHECK(url_of("http://127.0.0.1:65535/")->port == "65535");
    CHECK(url_of("http://a.b-c_d~e/:@!$&'()*+,;=")->path == "/:@!$&'()*+,;=");
}

TEST_CASE("http: URLs that are refused, with a reason") {
    CHECK(url_refusal("file:///etc/passwd") == "unsupported URL scheme \"file\" (only http and https)");
    CHECK(url_refusal("FTP://host/x") == "unsupported URL scheme \"ftp\" (only http and https)");
    CHECK(url_refusal("s3://bucket/key") == "unsupported URL scheme \"s3\" (only http and https)");
    CHECK(url_refusal("hf://org/repo/x") == "unsupported URL scheme \"hf\" (only http and https)");
    CHECK(url_refusal("https://user:pass@host/x") == "a user name or password in the URL is not accepted");
    CHECK(url_refusal("https://user@host/x") == "a user name or password in the URL is not accepted");
    for (const char* port : {"https://host:0/", "https://host:65536/", "https://host:/", "https://host:8x/",
                             "https://host:-1/", "https://host:99999999999999999999/"}) {
        CAPTURE(port);
        CHECK(url_refusal(port) == "invalid port (1 to 65535)");
    }
    CHECK(url_refusal("https://ho st/") == "space or control character in the URL");
    CHECK(url_refusal("https://host/a b") == "space or control character in the URL");
    CHECK(url_refusal(" https://host/") == "space or control character in the URL");
    CHECK(url_refusal("https://host/\x01") == "space or control character in the URL");
    CHECK(url_refusal("https://host/a\tb") == "space or control character in the URL");
    CHECK(url_refusal("https://host/\xc3\xa9") == "non-ASCII byte in the URL (percent-encode it)");
    for (const char* text : {"//host/x", "host/x", "/x", "", ":x", "1http://host/"}) {
        CAPTURE(text);
        CHECK(url_refusal(text) == "not an absolute URL (no scheme)");
    }
    CHECK(url_refusal("https:/host/x") == "not an absolute URL (no // after the scheme)");
    CHECK(url_refusal("https:host") == "not an absolute URL (no // after the scheme)");
    CHECK(url_refusal("https://") == "no host in the URL");
    CHECK(url_refusal("https:///x") == "no host in the URL");
    CHECK(url_refusal("https://:80/") == "no host in the URL");
    CHECK(url_refusal("https://[zz]/") == "invalid IPv6 address in the URL");
    CHECK(url_refusal("https://[::1/") == "invalid IPv6 address in the URL");
    CHECK(url_refusal("https://[fe80::1%25eth0]/") == "invalid IPv6 address in the URL");
    CHECK(url_refusal("https://[::1]x/") == "invalid character after the URL's host");
    CHECK(url_refusal("https://ho%41st/") == "invalid character in the URL's host");
    CHECK(url_refusal("https://a,b/") == "invalid character in the URL's host");
    for (const char* text : {"https://host/%zz", "https://host/%4", "https://host/a<b", "https://host/a\"b",
                             "https://host/a\\b", "https://host/{x}", "https://host/?a|b", "https://host/a^b"}) {
        CAPTURE(text);
        CHECK(url_refusal(text) == "invalid character or percent-escape in the URL's path or query");
    }
}

TEST_CASE("http: shard names resolved against an index URL") {
    const std::string index = "https://cdn.example.com:8443/org/repo/resolve/main/model.safetensors.index.json"
                              "?X-Amz-Signature=abc&X-Amz-Credential=k";
    CHECK(resolved(index, "model-00001-of-00002.safetensors") ==
          "https://cdn.example.com:8443/org/repo/resolve/main/model-00001-of-00002.safetensors");
    CHECK(resolved(index, "sub/x.safetensors") == "https://cdn.example.com:8443/org/repo/resolve/main/sub/x.safetensors");
    CHECK(resolved(index, "a b#?.safetensors") ==
          "https://cdn.example.com:8443/org/repo/resolve/main/a%20b%23%3F.safetensors");
    CHECK(resolved(index, "%41%zz%4") == "https://cdn.example.com:8443/org/repo/resolve/main/%41%25zz%254");
    CHECK(resolved(index, "\xc3\xa9t\xc3\xa9.safetensors") ==
          "https://cdn.example.com:8443/org/repo/resolve/main/%C3%A9t%C3%A9.safetensors");
    CHECK(resolved(index, "a\\b\"<>") == "https://cdn.example.com:8443/org/repo/resolve/main/a%5Cb%22%3C%3E");
    CHECK(resolved(index, "../x") == "https://cdn.example.com:8443/org/repo/resolve/x");
    CHECK(resolved(index, "./a/./b/../c") == "https://cdn.example.com:8443/org/repo/resolve/main/a/c");
    CHECK(resolved(index, "../../../../../../x") == "https://cdn.example.com:8443/x");
    CHECK(resolved(index, "/abs/x") == "https://cdn.example.com:8443/abs/x");
    CHECK(resolved(index, "https://evil.example/x") ==
          "https://cdn.example.com:8443/org/repo/resolve/main/https://evil.example/x");  // a path, same host
    CHECK(resolved(index, "") == "https://cdn.example.com:8443/org/repo/resolve/main/");
    CHECK(resolved("http://host", "x.safetensors") == "http://host/x.safetensors");
    CHECK(resolved("http://host/dir/", "x.safetensors") == "http://host/dir/x.safetensors");
    CHECK(resolved("http://host/a/b/", "..") == "http://host/a/");
}

TEST_CASE("http: URLs in messages and where a token may go") {
    auto u = url_of("https://host.example:8443/a/b.json?X-Amz-Signature=secret");
    REQUIRE(u);
    CHECK(http::redacted(*u) == "https://host.example:8443/a/b.json?...");
    CHECK(http::redacted(*url_of("https://host/a")) == "https://host/a");
    CHECK(http::redacted("https://host/a?token=secret#f") == "https://host/a?...");
    CHECK(http::redacted("https://user:secret@host/p?token=abc") == "https://host/p?...");
    CHECK(http::redacted("ftp://u:p@h/x#frag?y") == "ftp://h/x");
    CHECK(http::redacted("user:secret@host/x") == "host/x");
    CHECK(http::redacted("not a url ?token=1") == "not a url ?...");
    CHECK(http::redacted("https://h/a@b?x") == "https://h/a@b?...");
    CHECK(http::redacted("") == "");

    CHECK(same_origin("https://h/a", "https://h:443/b?x"));
    CHECK(same_origin("HTTPS://H.example/", "https://h.example/x"));
    CHECK(same_origin("http://h/", "http://h:80/"));
    CHECK_FALSE(same_origin("http://h/", "https://h/"));
    CHECK_FALSE(same_origin("https://h/", "http://h/"));
    CHECK_FALSE(same_origin("https://h/", "https://h:8443/"));
    CHECK_FALSE(same_origin("https://huggingface.co/", "https://cdn-lfs.huggingface.co/"));
    CHECK_FALSE(same_origin("https://h.example/", "https://h.example.evil/"));
}

TEST_CASE("http: hf:// locations") {
    CHECK(hf_of("hf://org/repo/model.safetensors") == hf_location_of("", "org/repo", "main", "model.safetensors"));
    CHECK(hf_of("HF://org/repo/sub/model.safetensors") ==
          hf_location_of("", "org/repo", "main", "sub/model.safetensors"));
    CHECK(hf_of("hf://datasets/org/data/train/x.safetensors") ==
          hf_location_of("datasets", "org/data", "main", "train/x.safetensors"));
    CHECK(hf_of("hf://spaces/org/app/x.safetensors") == hf_location_of("spaces", "org/app", "main", "x.safetensors"));
    CHECK(hf_of("hf://org/repo@v1.0/x") == hf_location_of("", "org/repo", "v1.0", "x"));
    CHECK(hf_of("hf://org/repo@0123abcd/a/b") == hf_location_of("", "org/repo", "0123abcd", "a/b"));
    CHECK(hf_of("hf://org/repo@refs/pr/1/model.safetensors") ==
          hf_location_of("", "org/repo", "refs/pr/1", "model.safetensors"));
    CHECK(hf_of("hf://org/repo@refs%2Fpr%2F1/model.safetensors") ==
          hf_location_of("", "org/repo", "refs/pr/1", "model.safetensors"));
    CHECK(hf_of("hf://datasets/org/data@refs/convert/parquet/x") ==
          hf_location_of("datasets", "org/data", "refs/convert/parquet", "x"));
    CHECK(hf_of("hf://org/repo@refs/heads/x") == hf_location_of("", "org/repo", "refs", "heads/x"));
    CHECK(hf_of("hf://org/repo/a@b c.safetensors") == hf_location_of("", "org/repo", "main", "a@b c.safetensors"));
    CHECK(hf_of("hf://My_Org.x/Repo-1.2/x") == hf_location_of("", "My_Org.x/Repo-1.2", "main", "x"));

    const char* refused[] = {"hf://org/repo", "hf://org/repo/", "hf://org/repo@main", "hf://org/repo@main/",
                             "hf://gpt2/model.safetensors",  // one-segment ids are not accepted
                             "hf://org/repo@/x", "hf://org/repo@a@b/x", "hf://org/repo@a%40b/x", "hf://org/repo@%zz/x",
                             "hf://org/repo@a%20b/x", "hf://org/re--po/x", "hf://org/re..po/x", "hf://org/repo.git/x",
                             "hf://org/-repo/x", "hf://org/repo./x", "hf://or g/repo/x", "hf://org/repo/../x",
                             "hf://org/repo/a//b", "hf://org/repo/./x", "hf://org/repo/a/", "hf://datasets/org",
                             "hf://datasets/org/data", "hf://", "hf:/org/repo/x", "https://org/repo/x", "hf://org/repo/a\nb"};
    for (const char* text : refused) {
        CAPTURE(text);
        CHECK_FALSE(hf_of(text));
    }
    // A name of 96 characters at most, as the Hub's.
    CHECK(hf_of("hf://org/" + std::string(96, 'a') + "/x"));
    CHECK_FALSE(hf_of("hf://org/" + std::string(97, 'a') + "/x"));
    std::string why;
    http::hf_location loc;
    CHECK_FALSE(http::parse_hf_url("hf://org/repo", loc, why));
    CHECK(why == "no file path after the repository in the hf:// URL");
}

TEST_CASE("http: hf:// resolve URLs") {
    const std::string endpoint = "https://huggingface.co";
    CHECK(http::hf_resolve_url(endpoint, *hf_of("hf://org/repo/model.safetensors")) ==
          "https://huggingface.co/org/repo/resolve/main/model.safetensors");
    CHECK(http::hf_resolve_url("https://huggingface.co//", *hf_of("hf://org/repo/model.safetensors")) ==
          "https://huggingface.co/org/repo/resolve/main/model.safetensors");
    CHECK(http::hf_resolve_url(endpoint, *hf_of("hf://datasets/org/data/train/x.safetensors")) ==
          "https://huggingface.co/datasets/org/data/resolve/main/train/x.safetensors");
    CHECK(http::hf_resolve_url(endpoint, *hf_of("hf://spaces/org/app@v1/x")) ==
          "https://huggingface.co/spaces/org/app/resolve/v1/x");
    CHECK(http::hf_resolve_url(endpoint, *hf_of("hf://org/repo@refs/pr/1/model.safetensors")) ==
          "https://huggingface.co/org/repo/resolve/refs%2Fpr%2F1/model.safetensors");
    CHECK(http::hf_resolve_url("http://localhost:8080/mirror/",
                               hf_location_of("", "org/repo", "a+b~c", "dir/a b#?%.safetensors")) ==
          "http://localhost:8080/mirror/org/repo/resolve/a%2Bb~c/dir/a%20b%23%3F%25.safetensors");
    const auto u = url_of(http::hf_resolve_url(endpoint, *hf_of("hf://org/repo@refs/pr/1/a b/c.safetensors")));
    REQUIRE(u);
    CHECK(u->path == "/org/repo/resolve/refs%2Fpr%2F1/a%20b/c.safetensors");
}

} // namespace http_parse_test
