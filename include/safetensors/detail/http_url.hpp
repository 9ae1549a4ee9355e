// safetensors-hpp: the URLs of an HTTP(S) reader: absolute http/https URLs parsed strictly,
// shard names resolved against an index's URL, URLs made safe for messages, the rule for where a
// token may go, and hf:// locations (huggingface_hub's HfFileSystem syntax) with their
// /resolve/ URLs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "http_text.hpp"

namespace safetensors::detail::http {

struct url {
    std::string scheme;  // "http" or "https"
    std::string host;    // lower case; an IPv6 literal keeps its brackets: "[::1]"
    std::string port;    // decimal without leading zeros; empty when the URL names none
    std::string path;    // starts with '/'; percent-escapes as given
    std::string query;   // without its '?'; empty when there is none
};

inline bool operator==(const url& a, const url& b) noexcept {
    return a.scheme == b.scheme && a.host == b.host && a.port == b.port && a.path == b.path && a.query == b.query;
}
inline bool operator!=(const url& a, const url& b) noexcept { return !(a == b); }

inline bool refuse_url(std::string& why, const char* reason) {
    why = reason;
    return false;
}

// scheme "://", the scheme lower-cased; only http and https.
inline bool take_scheme(std::string_view& text, std::string& scheme, std::string& why) {
    std::size_t n = 0;
    while (n < text.size() && (is_alpha(text[n]) || (n > 0 && (is_digit(text[n]) || text[n] == '+' ||
                                                               text[n] == '-' || text[n] == '.'))))
        ++n;
    if (n == 0 || n == text.size() || text[n] != ':') return refuse_url(why, "not an absolute URL (no scheme)");
    scheme = lowered(text.substr(0, n));
    if (scheme != "http" && scheme != "https") {
        why = "unsupported URL scheme \"" + (scheme.size() <= 16 ? scheme : scheme.substr(0, 16) + "...") +
              "\" (only http and https)";
        return false;
    }
    text.remove_prefix(n + 1);
    if (!take_literal(text, "//")) return refuse_url(why, "not an absolute URL (no // after the scheme)");
    return true;
}

// The inside of "[...]": hex digits, colons and (for an embedded IPv4 address) dots. Zone
// identifiers and IPvFuture are refused.
inline bool is_ipv6_literal(std::string_view inside) noexcept {
    if (inside.find(':') == std::string_view::npos) return false;
    for (char c : inside)
        if (!is_hex(c) && c != ':' && c != '.') return false;
    return true;
}

// 1 to 65535, written back without leading zeros. An empty port ("host:") is refused.
inline bool parse_port(std::string_view digits, std::string& port, std::string& why) {
    std::uint64_t value = 0;
    if (!parse_u64(digits, value) || value == 0 || value > 65535) return refuse_url(why, "invalid port (1 to 65535)");
    port = std::to_string(value);
    return true;
}

// host [":" port]. A reg-name host is unreserved characters only (an internationalised name must
// be given in its ASCII form); user information ("user:pass@") is refused, since credentials in
// a URL end up in logs and messages.
inline bool parse_authority(std::string_view authority, url& u, std::string& why) {
    if (authority.find('@') != std::string_view::npos)
        return refuse_url(why, "a user name or password in the URL is not accepted");
    std::string_view host = authority, rest;
    if (!authority.empty() && authority[0] == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos || !is_ipv6_literal(authority.substr(1, close - 1)))
            return refuse_url(why, "invalid IPv6 address in the URL");
        host = authority.substr(0, close + 1);
        rest = authority.substr(close + 1);
    } else {
        const std::size_t colon = authority.find(':');
        host = authority.substr(0, colon);
        rest = colon == std::string_view::npos ? std::string_view() : authority.substr(colon);
        for (char c : host)
            if (!is_unreserved(c)) return refuse_url(why, "invalid character in the URL's host");
    }
    if (host.empty()) return refuse_url(why, "no host in the URL");
    if (!rest.empty() && (rest[0] != ':' || !parse_port(rest.substr(1), u.port, why))) {
        if (rest[0] != ':') why = "invalid character after the URL's host";
        return false;
    }
    u.host = lowered(host);
    return true;
}

// A path (or, with in_query, a query): pchar, '/', '?' in a query, and %XX escapes.
inline bool is_valid_url_part(std::string_view text, bool in_query) noexcept {
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%') {
            if (text.size() - i < 3 || !is_hex(text[i + 1]) || !is_hex(text[i + 2])) return false;
            i += 2;
        } else if (!is_path_char(c) && c != '/' && !(in_query && c == '?')) {
            return false;
        }
    }
    return true;
}

// An absolute http or https URL (RFC 3986), strictly: no spaces, control characters or non-ASCII
// bytes anywhere (percent-encode them), no user information, a port in 1..65535, only valid
// characters and %XX escapes in the path and query. The path defaults to "/"; the fragment is
// dropped (it is never sent). why: the reason, without the URL (callers add redacted()).
inline bool parse_url(std::string_view text, url& out, std::string& why) {
    for (char c : text) {
        if (is_ctl(c) || c == ' ') return refuse_url(why, "space or control character in the URL");
        if (!is_ascii(c)) return refuse_url(why, "non-ASCII byte in the URL (percent-encode it)");
    }
    url u;
    if (!take_scheme(text, u.scheme, why)) return false;
    const std::size_t authority_end = text.find_first_of("/?#");
    if (!parse_authority(text.substr(0, authority_end), u, why)) return false;
    text = authority_end == std::string_view::npos ? std::string_view() : text.substr(authority_end);
    text = text.substr(0, text.find('#'));
    const std::size_t question = text.find('?');
    const std::string_view path = text.substr(0, question);
    const std::string_view query = question == std::string_view::npos ? std::string_view() : text.substr(question + 1);
    if (!is_valid_url_part(path, false) || !is_valid_url_part(query, true))
        return refuse_url(why, "invalid character or percent-escape in the URL's path or query");
    u.path = path.empty() ? "/" : std::string(path);
    u.query = std::string(query);
    out = std::move(u);
    return true;
}

// scheme://host[:port]
inline std::string origin_text(const url& u) {
    std::string out = u.scheme + "://" + u.host;
    if (!u.port.empty()) out += ":" + u.port;
    return out;
}

inline std::string to_string(const url& u) {
    return origin_text(u) + u.path + (u.query.empty() ? std::string() : "?" + u.query);
}

// For messages: the query (signed URLs and tokens live there) shown as "?...".
inline std::string redacted(const url& u) { return origin_text(u) + u.path + (u.query.empty() ? "" : "?..."); }

// The same for any text, parsable or not: nothing from the first '?' or '#' on (a query is
// shown as "?..."), and no user information before the host.
inline std::string redacted(std::string_view url_text) {
    url u;
    std::string why;
    if (parse_url(url_text, u, why)) return redacted(u);
    const std::size_t cut = url_text.find_first_of("?#");
    std::string out(url_text.substr(0, cut));
    const std::size_t scheme_end = out.find("://");
    const std::size_t authority = scheme_end == std::string::npos ? 0 : scheme_end + 3;
    std::size_t authority_end = out.find('/', authority);
    if (authority_end == std::string::npos) authority_end = out.size();
    const std::size_t at = std::string_view(out).substr(authority, authority_end - authority).rfind('@');
    if (at != std::string::npos) out.erase(authority, at + 1);
    if (cut != std::string_view::npos && url_text[cut] == '?') out += "?...";
    return out;
}

// How messages and output name a URL the caller gave: an hf:// URL as given (it carries no
// secret), any other redacted.
inline std::string shown_url(std::string_view url_text) {
    if (url_text.size() >= 5 && iequals(url_text.substr(0, 5), "hf://")) return std::string(url_text);
    return redacted(url_text);
}

inline std::string_view effective_port(const url& u) noexcept {
    if (!u.port.empty()) return u.port;
    return u.scheme == "https" ? "443" : "80";
}

// Whether a credential meant for a may be sent to b: the same origin (RFC 6454), that is the
// same scheme, host and port (80 and 443 when the URL names none). No exception, not even for
// http to https: a redirect to another host, port or scheme goes without the token.
inline bool same_origin_host(const url& a, const url& b) noexcept {
    return a.scheme == b.scheme && a.host == b.host && effective_port(a) == effective_port(b);
}

// A reference's bytes as a path: pchar, '/' and valid %XX escapes kept, every other byte
// (spaces, non-ASCII, '?', '#', a '%' without two hex digits) percent-encoded.
inline std::string reference_as_path(std::string_view reference) {
    std::string out;
    for (std::size_t i = 0; i < reference.size(); ++i) {
        const char c = reference[i];
        const bool escape = c == '%' && reference.size() - i >= 3 && is_hex(reference[i + 1]) && is_hex(reference[i + 2]);
        if (escape || is_path_char(c) || c == '/')
            out.push_back(c);
        else
            append_percent_encoded(out, c);
    }
    return out;
}

inline void drop_last_segment(std::string& path) {
    const std::size_t slash = path.rfind('/');
    path.erase(slash == std::string::npos ? 0 : slash);
}

// RFC 3986 5.2.4: "." and ".." segments removed ("/a/b/../c" is "/a/c"; ".." never climbs above
// the root).
inline std::string remove_dot_segments(std::string_view in) {
    std::string out;
    while (!in.empty()) {
        if (take_literal(in, "../") || take_literal(in, "./")) continue;
        if (starts_with(in, "/./") || in == "/.") {
            in = in.size() == 2 ? std::string_view("/") : in.substr(2);
        } else if (starts_with(in, "/../") || in == "/..") {
            in = in.size() == 3 ? std::string_view("/") : in.substr(3);
            drop_last_segment(out);
        } else if (in == "." || in == "..") {
            in = {};
        } else {
            const std::size_t next = in.find('/', 1);
            out.append(in.substr(0, next));
            in = next == std::string_view::npos ? std::string_view() : in.substr(next);
        }
    }
    return out;
}

// RFC 3986 5.2 for a reference that is a relative path (a shard's file name from the index):
// it replaces the last segment of base's path ("/org/model.safetensors.index.json" with
// "sub/x.safetensors" is "/org/sub/x.safetensors"; one starting with '/' replaces the whole path),
// dot segments are removed, scheme, host and port are base's, and base's query is dropped (a
// signed query string belongs to the index object only). The reference is only ever a path:
// bytes a path cannot hold are percent-encoded (reference_as_path), so it never changes the
// scheme, host or query. An empty reference gives base's folder.
inline url resolve_reference(const url& base, std::string_view relative) {
    url out;
    out.scheme = base.scheme;
    out.host = base.host;
    out.port = base.port;
    const std::string reference = reference_as_path(relative);
    std::string merged;
    if (!reference.empty() && reference[0] == '/') {
        merged = reference;
    } else {
        const std::size_t slash = base.path.rfind('/');
        merged = slash == std::string::npos ? std::string("/") : base.path.substr(0, slash + 1);
        merged += reference;
    }
    out.path = remove_dot_segments(merged);
    if (out.path.empty()) out.path = "/";
    return out;
}

// hf://[datasets/|spaces/]ORG/REPO[@REVISION]/PATH, as huggingface_hub's HfFileSystem reads it,
// with these choices: ORG/REPO is required (a legacy one-segment id such as "gpt2" cannot be told
// from a path without asking the Hub); REVISION ends at the next '/', except the Hub's own
// "refs/pr/N" and "refs/convert/NAME", and is percent-decoded ("refs%2Fpr%2F1" works too); a
// revision with '@', a space or a control character is refused; PATH is required, taken
// literally (no decoding), with no empty, "." or ".." segment.
struct hf_location {
    std::string repo_type;         // "", "datasets" or "spaces"
    std::string repo_id;           // ORG/REPO
    std::string revision = "main"; // decoded
    std::string path;              // in the repository, no leading '/'
};

inline bool operator==(const hf_location& a, const hf_location& b) noexcept {
    return a.repo_type == b.repo_type && a.repo_id == b.repo_id && a.revision == b.revision && a.path == b.path;
}

// One part of a repository id, as huggingface_hub's validate_repo_id: [A-Za-z0-9_.-], not
// starting or ending with '-' or '.'.
inline bool is_hf_repo_part(std::string_view part, std::size_t max_size) noexcept {
    auto word = [](char c) { return is_digit(c) || is_alpha(c) || c == '_'; };
    if (part.empty() || part.size() > max_size || !word(part.front()) || !word(part.back())) return false;
    for (char c : part)
        if (!word(c) && c != '-' && c != '.') return false;
    return true;
}

// ORG/REPO: both parts valid, the name at most 96 characters, no "--" or "..", no ".git" end.
inline bool is_hf_repo_id(std::string_view id) noexcept {
    const std::size_t slash = id.find('/');
    if (slash == std::string_view::npos || !is_hf_repo_part(id.substr(0, slash), id.size()) ||
        !is_hf_repo_part(id.substr(slash + 1), 96))
        return false;
    const bool ends_git = id.size() >= 4 && id.substr(id.size() - 4) == ".git";
    return id.find("--") == std::string_view::npos && id.find("..") == std::string_view::npos && !ends_git;
}

// The length of "refs/pr/DIGITS" or "refs/convert/WORD" at the start of text when it is followed
// by '/' or the end; 0 otherwise.
inline std::size_t hf_special_ref_length(std::string_view text) noexcept {
    const bool pr = starts_with(text, "refs/pr/");
    if (!pr && !starts_with(text, "refs/convert/")) return 0;
    const std::size_t start = pr ? 8 : 13;
    std::size_t n = start;
    while (n < text.size() && (is_digit(text[n]) || (!pr && (is_alpha(text[n]) || text[n] == '_')))) ++n;
    return n > start && (n == text.size() || text[n] == '/') ? n : 0;
}

inline bool take_hf_revision(std::string_view& text, hf_location& loc, std::string& why) {
    if (!take_literal(text, "@")) return true;  // "main"
    std::size_t length = hf_special_ref_length(text);
    if (length == 0) length = text.find('/');
    const std::string_view raw = text.substr(0, length);
    text = length == std::string_view::npos ? std::string_view() : text.substr(length);
    if (!percent_decoded(raw, loc.revision)) return refuse_url(why, "invalid percent-escape in the hf:// revision");
    if (loc.revision.empty()) return refuse_url(why, "empty revision after '@' in the hf:// URL");
    for (char c : loc.revision) {
        if (c == '@') return refuse_url(why, "'@' in an hf:// revision is not accepted");
        if (is_ctl(c) || c == ' ') return refuse_url(why, "space or control character in the hf:// revision");
    }
    return true;
}

inline bool take_hf_path(std::string_view text, hf_location& loc, std::string& why) {
    if (!take_literal(text, "/") || text.empty()) return refuse_url(why, "no file path after the repository in the hf:// URL");
    for (std::string_view rest = text; !rest.empty();) {
        const std::size_t slash = rest.find('/');
        const std::string_view segment = rest.substr(0, slash);
        if (segment.empty() || segment == "." || segment == "..")
            return refuse_url(why, "empty, \".\" or \"..\" segment in the hf:// path");
        rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
        if (slash != std::string_view::npos && rest.empty()) return refuse_url(why, "the hf:// path ends in '/'");
    }
    loc.path = std::string(text);
    return true;
}

// See hf_location for the grammar and the choices made. why: the reason, without the text.
inline bool parse_hf_url(std::string_view text, hf_location& out, std::string& why) {
    for (char c : text)
        if (is_ctl(c)) return refuse_url(why, "control character in the hf:// URL");
    if (text.size() < 5 || !iequals(text.substr(0, 5), "hf://")) return refuse_url(why, "not an hf:// URL");
    text.remove_prefix(5);
    hf_location loc;
    for (std::string_view type : {std::string_view("datasets"), std::string_view("spaces")}) {
        if (starts_with(text, type) && text.substr(type.size(), 1) == "/") {
            loc.repo_type = std::string(type);
            text.remove_prefix(type.size() + 1);
            break;
        }
    }
    const std::size_t slash = text.find('/');
    const std::size_t repo_end = slash == std::string_view::npos ? slash : text.find_first_of("@/", slash + 1);
    loc.repo_id = std::string(text.substr(0, repo_end));
    if (!is_hf_repo_id(loc.repo_id))
        return refuse_url(why, "expected hf://[datasets/|spaces/]ORG/REPO[@REVISION]/PATH with a valid ORG/REPO");
    text = repo_end == std::string_view::npos ? std::string_view() : text.substr(repo_end);
    if (!take_hf_revision(text, loc, why) || !take_hf_path(text, loc, why)) return false;
    out = std::move(loc);
    return true;
}

// {endpoint}/[datasets/|spaces/]ORG/REPO/resolve/{REVISION}/{PATH}, as huggingface_hub's
// hf_hub_url writes it: the revision with every byte but unreserved ones percent-encoded
// ("refs/pr/1" is "refs%2Fpr%2F1"), the path the same but keeping '/'. Trailing slashes of the
// endpoint ("https://huggingface.co/") are dropped.
inline std::string hf_resolve_url(std::string_view endpoint, const hf_location& loc) {
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.remove_suffix(1);
    std::string out(endpoint);
    out += '/';
    if (!loc.repo_type.empty()) out += loc.repo_type + "/";
    out += loc.repo_id;
    out += "/resolve/";
    out += percent_encoded(loc.revision, [](char c) { return is_unreserved(c); });
    out += '/';
    out += percent_encoded(loc.path, [](char c) { return is_unreserved(c) || c == '/'; });
    return out;
}

} // namespace safetensors::detail::http
