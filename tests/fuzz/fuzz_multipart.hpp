// fuzz_multipart: any bytes as a multipart/byteranges body, fed to detail::http::multipart_parser
// whole, in pieces of sizes the input chooses (empty pieces too) and, for short bodies, byte by
// byte. Every run must agree exactly: the same parts, the same bytes for each, the same verdict
// and the same error text. No part receives more bytes than its Content-Range announces, and a
// parse that finishes gave every part exactly that many. The same bytes are also read as a
// Content-Range, a Content-Type, a Retry-After value, a URL and an hf:// URL, whose results must be
// consistent (fuzz_http_values).
//
// Input: byte 0 picks the boundary (low 3 bits) and the part-header limit (high bit: 8192, else
// 64 + the middle bits); bytes 1-4 are the piece sizes, used in turn (each % 17); the rest is the body.
#pragma once

#include <safetensors/detail/http_ranges.hpp>
#include <safetensors/detail/http_url.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"

namespace fuzz {

namespace http = safetensors::detail::http;

struct multipart_part {
    http::content_range range;
    std::string data;
};

inline bool operator==(const multipart_part& a, const multipart_part& b) {
    return a.range == b.range && a.data == b.data;
}

// Records what the parser hands out and checks it never exceeds a part's announced length.
struct multipart_recorder final : http::multipart_parser::sink {
    std::vector<multipart_part> parts;

    bool on_part(const http::content_range& range) override {
        FUZZ_CHECK(range.first <= range.last);
        FUZZ_CHECK(!range.complete_known || range.last < range.complete);
        parts.push_back({range, {}});
        return true;
    }
    bool on_data(const char* data, std::size_t size) override {
        FUZZ_CHECK(!parts.empty() && data != nullptr && size > 0);
        multipart_part& part = parts.back();
        part.data.append(data, size);
        FUZZ_CHECK(part.data.size() <= part.range.last - part.range.first + 1);
        return true;
    }
};

struct multipart_outcome {
    std::vector<multipart_part> parts;
    bool fed = true;       // every feed() returned true
    bool finished = false; // finish() returned true
    std::string error;
    std::size_t parser_parts = 0;
};

inline bool operator==(const multipart_outcome& a, const multipart_outcome& b) {
    return a.parts == b.parts && a.fed == b.fed && a.finished == b.finished && a.error == b.error &&
           a.parser_parts == b.parser_parts;
}

// Feeds body in pieces of the given sizes, cycled (a 0 feeds an empty piece); stops at the first
// feed() that fails, as a transfer would, and then calls finish().
inline multipart_outcome multipart_run(const std::string& boundary, std::size_t header_limit, std::string_view body,
                                       const std::vector<std::size_t>& piece_sizes) {
    multipart_recorder recorder;
    http::multipart_parser parser(boundary, recorder, header_limit);
    multipart_outcome out;
    std::size_t at = 0;
    for (std::size_t i = 0; at < body.size() && out.fed; ++i) {
        const std::size_t size = std::min(piece_sizes[i % piece_sizes.size()], body.size() - at);
        out.fed = parser.feed(body.data() + at, size);
        at += size;
    }
    out.finished = parser.finish();
    out.error = parser.error();
    out.parser_parts = parser.parts();
    out.parts = std::move(recorder.parts);
    FUZZ_CHECK(out.finished == out.error.empty());
    FUZZ_CHECK(!out.finished || out.fed);
    FUZZ_CHECK(out.parser_parts == out.parts.size());
    FUZZ_CHECK(!parser.stopped_by_sink());
    if (out.finished) {
        FUZZ_CHECK(!out.parts.empty() && parser.done());
        for (const multipart_part& part : out.parts)
            FUZZ_CHECK(part.data.size() == part.range.last - part.range.first + 1);
    }
    for (char c : out.error) FUZZ_CHECK(c >= 0x20 && c < 0x7f);  // a fixed text, no body bytes
    return out;
}

inline const std::string& multipart_boundary_choice(std::uint8_t pick) {
    static const std::string boundaries[] = {
        "00000000000000000001", "THIS_STRING_SEPARATES", "a", "-", "3d6b6a416f9b5", "'()+_,-./:=? x", "--",
        "0123456789012345678901234567890123456789012345678901234567890123456789"};  // 70, the longest
    return boundaries[pick & 7];
}

// The same bytes as header values and URLs: whatever parses must be consistent.
inline void fuzz_http_values(std::string_view text) {
    http::content_range range;
    if (http::parse_content_range(text, range)) {
        FUZZ_CHECK(range.first <= range.last && (!range.complete_known || range.last < range.complete));
        const std::string again = "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
                                  (range.complete_known ? std::to_string(range.complete) : std::string("*"));
        http::content_range reparsed;
        FUZZ_CHECK(http::parse_content_range(again, reparsed) && reparsed == range);
    }
    std::uint64_t complete = 0, seconds = 0;
    (void)http::parse_unsatisfied_range(text, complete);
    std::string boundary;
    if (http::multipart_boundary(text, boundary)) FUZZ_CHECK(http::is_valid_boundary(boundary));
    if (http::parse_retry_after(text, 1767225600, 3600, seconds)) FUZZ_CHECK(seconds <= 3600);
    const std::string shown = http::redacted(text);
    const std::size_t question = shown.find('?');
    FUZZ_CHECK(question == std::string::npos || shown.compare(question, std::string::npos, "?...") == 0);
}

inline void fuzz_urls(std::string_view text) {
    http::url u;
    std::string why;
    if (http::parse_url(text, u, why)) {
        FUZZ_CHECK(u.path.size() >= 1 && u.path[0] == '/' && !u.host.empty());
        FUZZ_CHECK(u.host == http::lowered(u.host) && (u.scheme == "http" || u.scheme == "https"));
        http::url again;
        FUZZ_CHECK(http::parse_url(http::to_string(u), again, why) && again == u);
        const http::url shard = http::resolve_reference(u, text);
        http::url reparsed;
        FUZZ_CHECK(http::parse_url(http::to_string(shard), reparsed, why) && reparsed == shard);
        FUZZ_CHECK(http::same_origin_host(u, shard) && shard.query.empty());
    } else {
        FUZZ_CHECK(!why.empty());
    }
    http::hf_location loc;
    if (http::parse_hf_url(text, loc, why)) {
        FUZZ_CHECK(!loc.path.empty() && !loc.revision.empty());
        FUZZ_CHECK(http::parse_url(http::hf_resolve_url("https://huggingface.co/", loc), u, why));
        FUZZ_CHECK(u.host == "huggingface.co" && u.query.empty());
    }
}

inline int fuzz_multipart_one(const std::uint8_t* data, std::size_t size) {
    if (size < 5) return 0;
    const std::string& boundary = multipart_boundary_choice(data[0]);
    const std::size_t header_limit = (data[0] & 0x80) != 0 ? 8192 : 64 + ((data[0] >> 3) & 15) * 8;
    std::vector<std::size_t> pieces;
    for (std::size_t i = 1; i < 5; ++i) pieces.push_back(data[i] % 17);
    if (pieces[0] + pieces[1] + pieces[2] + pieces[3] == 0) pieces[0] = 1;
    const std::string_view body(reinterpret_cast<const char*>(data) + 5, size - 5);

    const multipart_outcome whole = multipart_run(boundary, header_limit, body, {body.size() + 1});
    FUZZ_CHECK(multipart_run(boundary, header_limit, body, pieces) == whole);
    if (body.size() <= 256) FUZZ_CHECK(multipart_run(boundary, header_limit, body, {1}) == whole);

    fuzz_http_values(body);
    fuzz_urls(body);
    return 0;
}

} // namespace fuzz
