// safetensors-hpp: what an HTTP range reader parses and builds, without any network code: the
// Range header, Content-Range values, the multipart/byteranges boundary and body (a push
// parser, for bodies that arrive in pieces), and Retry-After.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "../error.hpp"
#include "../span.hpp"
#include "checked.hpp"
#include "http_date.hpp"
#include "http_text.hpp"

namespace safetensors::detail::http {

// A Content-Range value: bytes first..last (inclusive) of a representation of `complete`
// bytes, when the server said (complete_known).
struct content_range {
    std::uint64_t first = 0, last = 0;
    std::uint64_t complete = 0;
    bool complete_known = false;
};

inline bool operator==(const content_range& a, const content_range& b) noexcept {
    return a.first == b.first && a.last == b.last && a.complete == b.complete && a.complete_known == b.complete_known;
}
inline bool operator!=(const content_range& a, const content_range& b) noexcept { return !(a == b); }

// The range unit and its one space: "bytes " (the unit is case-insensitive).
inline bool take_bytes_unit(std::string_view& value) noexcept {
    if (value.size() < 6 || !iequals(value.substr(0, 5), "bytes") || value[5] != ' ') return false;
    value.remove_prefix(6);
    return true;
}

// "bytes 0-499/1234" or "bytes 0-499/*" (RFC 9110 14.4), with optional whitespace around the
// value and nowhere else. Numbers are 1 to 19 decimal digits; first <= last, and last <
// complete when the complete length is known.
inline bool parse_content_range(std::string_view value, content_range& out) noexcept {
    value = trim_ows(value);
    if (!take_bytes_unit(value)) return false;
    const std::size_t dash = value.find('-');
    const std::size_t slash = value.find('/');
    if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return false;
    content_range r;
    if (!parse_u64(value.substr(0, dash), r.first) || !parse_u64(value.substr(dash + 1, slash - dash - 1), r.last))
        return false;
    const std::string_view complete = value.substr(slash + 1);
    if (complete != "*") {
        if (!parse_u64(complete, r.complete)) return false;
        r.complete_known = true;
    }
    if (r.first > r.last || (r.complete_known && r.last >= r.complete)) return false;
    out = r;
    return true;
}

// "bytes */1234", the Content-Range of a 416 answer: the complete length (0 allowed).
inline bool parse_unsatisfied_range(std::string_view value, std::uint64_t& complete) noexcept {
    value = trim_ows(value);
    if (!take_bytes_unit(value) || !take_literal(value, "*/")) return false;
    return parse_u64(value, complete);
}

// RFC 2046 5.1.1: 1 to 70 bchars, the last not a space.
inline bool is_valid_boundary(std::string_view boundary) noexcept {
    if (boundary.empty() || boundary.size() > 70 || boundary.back() == ' ') return false;
    constexpr std::string_view others = "'()+_,-./:=? ";
    for (char c : boundary)
        if (!is_digit(c) && !is_alpha(c) && others.find(c) == std::string_view::npos) return false;
    return true;
}

// A quoted-string (RFC 9110 5.6.4) at the start of text, unescaped into out.
inline bool take_quoted_string(std::string_view& text, std::string& out) {
    out.clear();
    if (text.empty() || text[0] != '"') return false;
    for (std::size_t i = 1; i < text.size(); ++i) {
        char c = text[i];
        if (c == '"') {
            text.remove_prefix(i + 1);
            return true;
        }
        if (c == '\\') {
            if (++i == text.size()) return false;
            c = text[i];
        }
        if (is_ctl(c) && c != '\t') return false;
        out.push_back(c);
    }
    return false;  // no closing quote
}

// One parameter of a media type, "name=value" (RFC 9110 5.6.6; no space around '='), the value
// a token or a quoted-string.
inline bool take_parameter(std::string_view& text, std::string_view& name, std::string& value) {
    std::size_t n = 0;
    while (n < text.size() && is_tchar(text[n])) ++n;
    name = text.substr(0, n);
    text.remove_prefix(n);
    if (name.empty() || !take_literal(text, "=")) return false;
    if (!text.empty() && text[0] == '"') return take_quoted_string(text, value);
    std::size_t v = 0;
    while (v < text.size() && is_tchar(text[v])) ++v;
    value.assign(text.substr(0, v));
    text.remove_prefix(v);
    return v > 0;
}

// The boundary of a Content-Type "multipart/byteranges; boundary=XYZ": type and parameter names
// case-insensitive, parameters in any order, the boundary quoted or not. A second boundary
// parameter, a malformed parameter or an invalid boundary (is_valid_boundary) gives false.
inline bool multipart_boundary(std::string_view content_type, std::string& boundary) {
    const std::size_t semicolon = content_type.find(';');
    if (!iequals(trim_ows(content_type.substr(0, semicolon)), "multipart/byteranges")) return false;
    std::string_view rest = semicolon == std::string_view::npos ? std::string_view() : content_type.substr(semicolon);
    std::string found, value;
    bool seen = false;
    while (!rest.empty()) {  // rest starts with ';'
        rest = trim_ows(rest.substr(1));
        if (rest.empty() || rest[0] == ';') continue;  // empty parameters are allowed
        std::string_view name;
        if (!take_parameter(rest, name, value)) return false;
        rest = trim_ows(rest);
        if (!rest.empty() && rest[0] != ';') return false;
        if (!iequals(name, "boundary")) continue;
        if (seen) return false;
        seen = true;
        found = value;
    }
    if (!seen || !is_valid_boundary(found)) return false;
    boundary = std::move(found);
    return true;
}

// Retry-After (RFC 9110 10.2.3): delta-seconds (any number of digits; huge ones clamp) or an
// HTTP-date (IMF-fixdate, RFC 850 or asctime), as seconds to wait from now_unix_seconds (0 for
// a date in the past), at most max_seconds. false when the value is neither.
inline bool parse_retry_after(std::string_view value, std::int64_t now_unix_seconds, std::uint64_t max_seconds,
                              std::uint64_t& seconds) noexcept {
    value = trim_ows(value);
    if (all_digits(value)) {
        std::uint64_t delta = 0;
        const bool fits = parse_u64(value, delta);
        seconds = !fits || delta > max_seconds ? max_seconds : delta;
        return true;
    }
    std::int64_t when = 0;
    if (!parse_http_date(value, now_unix_seconds, when)) return false;
    if (when <= now_unix_seconds) {
        seconds = 0;
        return true;
    }
    // when > now, so the unsigned difference is exact even where the signed one would overflow.
    const std::uint64_t wait = static_cast<std::uint64_t>(when) - static_cast<std::uint64_t>(now_unix_seconds);
    seconds = wait > max_seconds ? max_seconds : wait;
    return true;
}

// The Range header's value for sorted, non-overlapping inclusive ranges: "bytes=0-9,20-29".
// Throws errc::invalid_argument for no ranges, first > last, or ranges out of order or
// overlapping (adjacent ones are allowed).
inline std::string range_header(span<const std::pair<std::uint64_t, std::uint64_t>> inclusive_ranges) {
    if (inclusive_ranges.empty()) throw_error(errc::invalid_argument, "range_header: no ranges");
    std::string out = "bytes=";
    for (std::size_t i = 0; i < inclusive_ranges.size(); ++i) {
        const auto& r = inclusive_ranges[i];
        if (r.first > r.second) throw_error(errc::invalid_argument, "range_header: a range ends before it starts");
        if (i > 0 && r.first <= inclusive_ranges[i - 1].second)
            throw_error(errc::invalid_argument, "range_header: ranges overlap or are out of order");
        if (i > 0) out.push_back(',');
        out += std::to_string(r.first);
        out.push_back('-');
        out += std::to_string(r.second);
    }
    return out;
}

inline bool refused(const char*& why, const char* reason) noexcept {
    why = reason;
    return false;
}

// The headers of one body part (the text between its delimiter line and the empty line, each
// line ending in CRLF): exactly one valid Content-Range is required; names are case-insensitive;
// other fields (Content-Type) are ignored; folded lines, lines without a colon, names that are
// not tokens and control characters are refused. why: a fixed reason, never the header text.
inline bool parse_part_headers(std::string_view block, content_range& range, const char*& why) {
    bool found = false;
    while (!block.empty()) {
        const std::size_t end = block.find("\r\n");
        if (end == std::string_view::npos) return refused(why, "a part header line does not end in CRLF");
        const std::string_view line = block.substr(0, end);
        block.remove_prefix(end + 2);
        for (char c : line)
            if (is_ctl(c) && c != '\t') return refused(why, "control character in a part header");
        if (!line.empty() && is_ows(line[0])) return refused(why, "folded part header line");
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) return refused(why, "part header line without a colon");
        const std::string_view name = line.substr(0, colon);
        bool token = !name.empty();
        for (char c : name) token = token && is_tchar(c);
        if (!token) return refused(why, "malformed part header name");
        if (!iequals(name, "content-range")) continue;
        if (found) return refused(why, "two Content-Range headers in one part");
        if (!parse_content_range(line.substr(colon + 1), range)) return refused(why, "invalid Content-Range in a part");
        found = true;
    }
    if (!found) return refused(why, "a part has no Content-Range");
    return true;
}

// A push parser for a multipart/byteranges body (RFC 9110 14.6, RFC 2046 5.1.1), fed in pieces of
// any size as they arrive; body bytes go to the sink as they are read, never buffered.
//
// Grammar: an optional preamble (at most max_part_header_bytes, discarded), then parts, each a
// delimiter line "--boundary" (preceded by CRLF, except at the very start of the body), transport
// padding (spaces, tabs), CRLF, header lines, an empty line, then the body up to the next CRLF
// "--boundary"; the close delimiter "--boundary--" ends the body and whatever follows (the
// epilogue) is ignored. Lines end in CRLF only, a bare LF is an error: no server sends LF-only
// multipart, and a body's delimiter is CRLF "--boundary" by definition, so tolerating LF in the
// lines around it would only make malformed answers look valid.
//
// Checks: each part has exactly one valid Content-Range; its body is exactly last - first + 1
// bytes, so a delimiter that comes sooner is an error (a server whose boundary occurs in the
// data violates RFC 2046, and the response is refused) and so is a missing delimiter after that
// many bytes (the sink never receives more than announced); parts agree on the complete length
// where they state it; at least one part. The order and overlap of the ranges are the caller's
// to check (against what it asked for).
//
// Memory: the part headers being read (at most max_part_header_bytes) and nothing else: bytes
// that may start a delimiter are a prefix of the delimiter, so holding them back means counting
// them. The bytes the sink receives, the parts and the verdict do not depend on how the body was
// split into feed() calls.
class multipart_parser {
public:
    // on_part once per part when its headers are complete; on_data with body bytes of the
    // current part, in order (possibly many calls). Returning false from either stops the parse
    // (feed() returns false, stopped_by_sink() is true).
    struct sink {
        virtual bool on_part(const content_range& range) = 0;
        virtual bool on_data(const char* data, std::size_t size) = 0;
        virtual ~sink() = default;
    };

    // boundary: as multipart_boundary() returns it (an invalid one fails the first feed()).
    // max_part_header_bytes bounds each part's headers (the empty line included) and, with the
    // delimiter's length added, the preamble.
    multipart_parser(std::string boundary, sink& out, std::size_t max_part_header_bytes = 8192)
        : delimiter_("\r\n--" + boundary), out_(out), max_header_bytes_(max_part_header_bytes) {
        if (!is_valid_boundary(boundary)) fail("invalid multipart boundary");
    }

    // false: the body is malformed (error() says why) or the sink stopped the parse; every later
    // call returns false too.
    bool feed(const char* data, std::size_t size) {
        const char* p = data;
        const char* const end = data + size;
        while (state_ != state::failed && state_ != state::epilogue && p != end) {
            if (state_ == state::preamble)
                scan_preamble(p, end);
            else if (state_ == state::body)
                scan_body(p, end);
            else if (state_ == state::headers)
                scan_headers(p, end);
            else
                scan_delimiter_line(*p++);
        }
        return state_ != state::failed;
    }

    // The end of the body: true only when the close delimiter was seen.
    bool finish() {
        switch (state_) {
            case state::epilogue: return true;
            case state::failed: return false;
            case state::preamble: return fail("no multipart delimiter in the body");
            case state::headers: return fail("the body ends inside a part's headers");
            case state::body:
                return fail(remaining_ == 0 ? "the body ends without the closing delimiter" : "the body ends inside a part");
            default: return fail("the body ends without the closing delimiter");
        }
    }

    // Why the parse failed (empty while it has not): a fixed text, never bytes of the body.
    const std::string& error() const noexcept { return error_; }
    bool stopped_by_sink() const noexcept { return stopped_; }
    bool done() const noexcept { return state_ == state::epilogue; }
    // Parts whose headers were read.
    std::size_t parts() const noexcept { return parts_; }

private:
    enum class state { preamble, body, after_boundary, close_dash, padding, line_feed, headers, epilogue, failed };

    bool fail(const char* why) {
        if (state_ != state::failed) error_ = why;
        state_ = state::failed;
        return false;
    }
    bool stop() {
        stopped_ = true;
        return fail("the receiver stopped the transfer");
    }

    // Discards bytes up to the first delimiter, which may lack its CRLF at the very start
    // (matched_ starts at 2, as if the CRLF had been seen).
    void scan_preamble(const char*& p, const char* end) {
        for (; p != end; ++p) {
            if (++preamble_bytes_ > max_header_bytes_ + delimiter_.size()) {
                fail("no multipart delimiter at the start of the body");
                return;
            }
            if (*p == delimiter_[matched_]) {
                if (++matched_ < delimiter_.size()) continue;
                ++p;
                delimiter_seen();
                return;
            }
            matched_ = *p == '\r' ? 1 : 0;
        }
    }

    // Body bytes to the sink, up to the next delimiter. A CR and what follows it are held back
    // while they match the delimiter; on a mismatch they are body bytes after all (the CR is the
    // delimiter's only CR, so no later byte of the held ones can start a new match).
    void scan_body(const char*& p, const char* end) {
        while (p != end) {
            if (matched_ == 0) {
                const void* cr = std::memchr(p, '\r', static_cast<std::size_t>(end - p));
                const char* run_end = cr != nullptr ? static_cast<const char*>(cr) : end;
                if (!deliver(p, static_cast<std::size_t>(run_end - p))) return;
                p = run_end;
                if (p == end) return;
                matched_ = 1;
                ++p;
            } else if (*p == delimiter_[matched_]) {
                ++p;
                if (++matched_ == delimiter_.size()) return delimiter_seen();
            } else {
                if (!deliver(delimiter_.data(), matched_)) return;
                matched_ = 0;  // *p is looked at again as the start of a run
            }
        }
    }

    // n body bytes of the current part; past the announced length, only what fits is delivered
    // (so the sink receives the same bytes however the body was split) and the parse fails.
    bool deliver(const char* data, std::size_t n) {
        if (n == 0) return true;
        if (std::uint64_t{n} > remaining_) {
            const std::size_t fitting = to_size(remaining_);  // < n, so it fits
            remaining_ = 0;
            if (fitting > 0 && !out_.on_data(data, fitting)) return stop();
            return fail("a part's body is longer than its Content-Range");
        }
        remaining_ -= n;
        return out_.on_data(data, n) || stop();
    }

    void delimiter_seen() {
        matched_ = 0;
        if (state_ == state::body && remaining_ != 0) {
            fail("a part's body is shorter than its Content-Range");
            return;
        }
        state_ = state::after_boundary;
    }

    // After "--boundary": "--" (the close delimiter), or transport padding and CRLF.
    void scan_delimiter_line(char c) {
        switch (state_) {
            case state::after_boundary:
                if (c == '-' || c == '\r' || is_ows(c))
                    state_ = c == '-' ? state::close_dash : c == '\r' ? state::line_feed : state::padding;
                else
                    fail("malformed multipart delimiter line");
                return;
            case state::close_dash:
                if (c != '-')
                    fail("malformed multipart delimiter line");
                else if (parts_ == 0)
                    fail("a multipart body without parts");
                else
                    state_ = state::epilogue;
                return;
            case state::padding:
                if (c == '\r')
                    state_ = state::line_feed;
                else if (!is_ows(c))
                    fail("malformed multipart delimiter line");
                return;
            default:  // line_feed
                if (c != '\n') {
                    fail("a multipart delimiter line does not end in CRLF");
                    return;
                }
                header_.clear();
                state_ = state::headers;
        }
    }

    // Header lines up to the empty line (at once when the part has no headers: then it has no
    // Content-Range, which start_part reports).
    void scan_headers(const char*& p, const char* end) {
        while (p != end) {
            const char c = *p++;
            if (c == '\n' && (header_.empty() || header_.back() != '\r')) {
                fail("a part header line ends in LF without CR");
                return;
            }
            if (header_.size() == max_header_bytes_) {
                fail("a part's headers are too long");
                return;
            }
            header_.push_back(c);
            const std::size_t n = header_.size();
            if (header_ == "\r\n" || (n >= 4 && header_.compare(n - 4, 4, "\r\n\r\n") == 0)) {
                start_part();
                return;
            }
        }
    }

    void start_part() {
        content_range range;
        const char* why = nullptr;
        if (!parse_part_headers(std::string_view(header_).substr(0, header_.size() - 2), range, why)) {
            fail(why);
            return;
        }
        if (parts_ > 0 && range.complete_known && complete_known_ && range.complete != complete_) {
            fail("parts disagree on the complete length");
            return;
        }
        if (range.complete_known) complete_ = range.complete;
        complete_known_ = complete_known_ || range.complete_known;
        remaining_ = range.last - range.first + 1;  // at most 10^19: numbers have 19 digits at most
        ++parts_;
        state_ = state::body;
        header_.clear();
        if (!out_.on_part(range)) stop();
    }

    std::string delimiter_;  // CRLF "--" boundary
    sink& out_;
    std::size_t max_header_bytes_;
    state state_ = state::preamble;
    std::size_t matched_ = 2;        // bytes of delimiter_ matched (and held back) so far
    std::uint64_t remaining_ = 0;    // body bytes the current part still has to deliver
    std::size_t preamble_bytes_ = 0;
    std::string header_;
    std::size_t parts_ = 0;
    std::uint64_t complete_ = 0;
    bool complete_known_ = false;
    bool stopped_ = false;
    std::string error_;
};

} // namespace safetensors::detail::http
