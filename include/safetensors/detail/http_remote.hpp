// safetensors-hpp: what every request for one remote file shares (http.hpp): the options and
// connection pool of the open call (client), the URL, the identity pinned at open, and what the
// reader has learnt about the server since (where it redirects, whether it answers multi-range
// requests).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "../error.hpp"
#include "../http_options.hpp"
#include "curl_handles.hpp"
#include "http_url.hpp"

namespace safetensors::detail::http {

// The options and the connection pool of one open_url / open_sharded_url call, shared by
// every file it opens (an index and its shards reuse the same connections).
struct client {
    explicit client(http_options o) : options(std::move(o)) {}
    http_options options;
    session_pool sessions;
};

// What the first response said about the file; every later response must agree.
struct pinned {
    std::uint64_t size = 0;
    std::string etag;           // empty when the server sent none
    std::string last_modified;  // compared only when there is no ETag
};

class remote_object {
public:
    // target: a parsed http(s) URL; shown: how messages name the file.
    remote_object(std::shared_ptr<http::client> c, const url& target, std::string shown_as)
        : client(std::move(c)), origin(target), shown(std::move(shown_as)), current_(to_string(target)) {}

    const std::shared_ptr<http::client> client;
    const url origin;         // as asked for (an hf:// URL resolved): the token goes to its host only
    const std::string shown;  // the URL as messages show it (redacted)
    pinned pin;               // set once, by the open, before any other request
    std::string repo_commit;  // X-Repo-Commit of the first response (hf), else empty
    std::atomic<bool> multi_range{true};  // false once the server answered one with one range

    // Where requests go: the URL, or where the server last redirected it (checked hops only).
    std::string current_url() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return current_;
    }
    void moved_to(std::string now_at) {
        std::lock_guard<std::mutex> lock(mutex_);
        current_ = std::move(now_at);
    }

    // An error about this file: the message starts with the shown URL, path() is it.
    [[noreturn]] void fail(errc code, const std::string& what) const { throw make_error(code, what); }
    safetensors::error make_error(errc code, const std::string& what) const {
        return safetensors::error(code, quote(shown) + ": " + what, shown);
    }

private:
    mutable std::mutex mutex_;
    std::string current_;
};

} // namespace safetensors::detail::http
