// safetensors-hpp: files read over HTTP(S) with range requests, on libcurl. Optional: not in
// safetensors.hpp; link the CMake target safetensors::http (safetensors + CURL::libcurl).
//
//   auto f = safetensors::open_url("https://example.com/model.safetensors");      // one request
//   auto t = f.tensor("lm_head.weight").slice(":, 0:512").to_tensor();           // its runs only
//   auto s = safetensors::open_sharded_url("hf://org/model/model.safetensors.index.json", opts);
//
// URLs: http://, https:// and hf://[datasets/|spaces/]ORG/REPO[@REVISION]/PATH (resolved to
// {hf_endpoint}/[TYPE/]ORG/REPO/resolve/{REVISION}/PATH). The file is pinned at open: its size
// and ETag (or Last-Modified) are checked on every later answer, and a change is
// errc::remote_changed, never bytes of two versions. Nothing fetched is kept, but the open's
// first 32 KiB (cache_reads() in read_cache.hpp keeps more). Views over it copy (copy_to,
// to_tensor, load ...); what hands out pointers throws errc::not_addressable. Errors name the URL
// without its query (signed URLs carry secrets there), never the token. See http_options.hpp
// for timeouts, retries, redirects and the rest; the library reads no environment variable.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "detail/http_source.hpp"
#include "detail/http_url.hpp"
#include "error.hpp"
#include "file.hpp"
#include "http_options.hpp"
#include "sharded.hpp"
#include "source.hpp"

namespace safetensors {
namespace detail::http {

// An http(s) URL to fetch, and how messages show it (the hf:// URL as given, else redacted).
struct location {
    std::string address;
    std::string shown;
    bool is_hf = false;
    hf_location hf;
};

inline location locate(const std::string& text, const http_options& o) {
    location out;
    std::string why;
    out.shown = shown_url(text);
    if (text.size() >= 5 && iequals(std::string_view(text).substr(0, 5), "hf://")) {
        if (!parse_hf_url(text, out.hf, why))
            throw safetensors::error(errc::invalid_url, "invalid URL " + quote(text) + ": " + why, text);
        out.is_hf = true;
        out.address = hf_resolve_url(o.hf_endpoint, out.hf);
        return out;
    }
    out.address = text;
    return out;
}

// hf://[TYPE/]ORG/REPO[@REVISION]/PATH for messages.
inline std::string hf_text(const hf_location& loc) {
    std::string out = "hf://" + (loc.repo_type.empty() ? std::string() : loc.repo_type + "/") + loc.repo_id;
    if (loc.revision != "main") out += "@" + percent_encoded(loc.revision, [](char c) { return is_unreserved(c); });
    return out + "/" + loc.path;
}

inline std::shared_ptr<const url_source> open_location(const std::shared_ptr<client>& c, const location& where) {
    return open_remote(c, where.address, where.shown);
}

// Where the shard name of an index at `index` is: next to it (the URL as given, not where it
// redirected; its query dropped); for hf://, in the same repository at the commit the index was
// read at, when the hub named it.
inline location shard_location(const location& index, const std::string& commit, const std::string& name,
                               const http_options& o) {
    location out;
    if (index.is_hf) {
        out.is_hf = true;
        out.hf = index.hf;
        if (!commit.empty()) out.hf.revision = commit;
        const std::size_t slash = index.hf.path.rfind('/');
        out.hf.path = (slash == std::string::npos ? std::string() : index.hf.path.substr(0, slash + 1)) + name;
        out.address = hf_resolve_url(o.hf_endpoint, out.hf);
        out.shown = hf_text(out.hf);
        return out;
    }
    url base;
    std::string why;
    parse_url(index.address, base, why);  // it opened, so it parses
    out.address = to_string(resolve_reference(base, name));
    out.shown = redacted(out.address);
    return out;
}


} // namespace detail::http

// A source over the file at url (http://, https:// or hf://): opened with one request, which
// pins its size and identity. Thread-safe; several threads may read it at once.
inline std::shared_ptr<const source> open_url_source(const std::string& url, const http_options& options = {}) {
    detail::http::check_options(options);
    const auto where = detail::http::locate(url, options);
    return detail::http::open_location(std::make_shared<detail::http::client>(options), where);
}

// Opens the safetensors file at url: the header comes in one request (two when it is longer
// than 32 KiB), checked with the same limits as a local file's.
inline file open_url(const std::string& url, const http_options& options = {}) {
    detail::http::check_options(options);
    const auto where = detail::http::locate(url, options);
    return detail::about_path(where.shown, [&] {
        return file::from_source(detail::http::open_location(std::make_shared<detail::http::client>(options), where));
    });
}

// A sharded checkpoint from the URL of its model.safetensors.index.json. Shards are opened when
// first needed, at URLs resolved against the index URL as given (an hf:// index's shards at the
// commit the hub named for it); shard names are checked as for files on disk. The index and its
// shards share one pool of connections.
inline sharded_file open_sharded_url(const std::string& index_url, const http_options& options = {}) {
    detail::http::check_options(options);
    const auto where = detail::http::locate(index_url, options);
    const auto c = std::make_shared<detail::http::client>(options);
    return detail::about_path(where.shown, [&] {
        const auto index_source = detail::http::open_location(c, where);
        index_table index = parse_index(detail::read_index_text(*index_source, "index"));
        const std::string commit = where.is_hf ? index_source->remote().repo_commit : std::string();
        return sharded_file::from_index(std::move(index), [c, where, commit](const std::string& name) {
            return std::shared_ptr<const source>(
                detail::http::open_location(c, detail::http::shard_location(where, commit, name, c->options)));
        }, where.shown);
    });
}

} // namespace safetensors
