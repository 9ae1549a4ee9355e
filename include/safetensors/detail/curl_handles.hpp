// safetensors-hpp: the libcurl handles of the HTTP reader (http.hpp), owned and reused.
//
// A session is one curl multi handle and the easy handles that have run in it. Connections
// belong to the multi handle's cache, so a session reused for the next read reuses its
// keep-alive connections (and TLS sessions): one session per read in progress, kept in a pool
// that every source of one open_url / open_sharded_url call shares. A session is used by one
// thread at a time; the pool hands them out under a lock, so a source may be read from
// several threads at once.
#pragma once

#include <curl/curl.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "curl_api.hpp"

#if LIBCURL_VERSION_NUM < 0x074200
#error "safetensors/http.hpp needs libcurl 7.66 or later (curl_multi_poll)"
#endif

namespace safetensors::detail::http {

// curl_global_init once per process, before the first handle (thread-safe: a function-local
// static). Never cleaned up: handles may live until exit.
inline void global_init() {
    static const CURLcode status = curl().global_init(CURL_GLOBAL_DEFAULT);
    if (status != CURLE_OK)
        throw_error(errc::network_error, std::string("libcurl failed to initialize: ") + curl().easy_strerror(status));
}

struct easy_delete {
    void operator()(CURL* handle) const noexcept { curl().easy_cleanup(handle); }
};
using easy_handle = std::unique_ptr<CURL, easy_delete>;

struct multi_delete {
    void operator()(CURLM* handle) const noexcept { curl().multi_cleanup(handle); }
};
using multi_handle = std::unique_ptr<CURLM, multi_delete>;

struct slist_delete {
    void operator()(curl_slist* list) const noexcept { curl().slist_free_all(list); }
};
// A request's header lines (curl_slist), owned.
class header_list {
public:
    void add(const std::string& line) {
        curl_slist* grown = curl().slist_append(list_.get(), line.c_str());
        if (grown == nullptr) throw std::bad_alloc();
        if (!list_) list_.reset(grown);
    }
    curl_slist* get() const noexcept { return list_.get(); }

private:
    std::unique_ptr<curl_slist, slist_delete> list_;
};

// A multi handle and the easy handles that have run in it (idle ones kept for the next request).
class session {
public:
    session() : multi_(curl().multi_init()) {
        if (!multi_) throw std::bad_alloc();
    }
    CURLM* multi() const noexcept { return multi_.get(); }

    // An easy handle with every option reset (its connection cache stays in the multi handle).
    easy_handle take_easy() {
        if (idle_.empty()) {
            easy_handle fresh(curl().easy_init());
            if (!fresh) throw std::bad_alloc();
            return fresh;
        }
        easy_handle handle = std::move(idle_.back());
        idle_.pop_back();
        curl().easy_reset(handle.get());
        return handle;
    }
    void give_back(easy_handle handle) {
        if (handle) idle_.push_back(std::move(handle));
    }

private:
    // Declared first, destroyed last: easy handles go before the multi handle they ran in.
    multi_handle multi_;
    std::vector<easy_handle> idle_;
};

// Sessions handed out one per read in progress, and kept for the next read (at most
// max_idle of them; more were only needed while that many reads overlapped).
class session_pool {
public:
    explicit session_pool(std::size_t max_idle = 8) : max_idle_(max_idle) {}

    std::unique_ptr<session> take() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!idle_.empty()) {
                std::unique_ptr<session> s = std::move(idle_.back());
                idle_.pop_back();
                return s;
            }
        }
        global_init();
        return std::unique_ptr<session>(new session());
    }
    void give_back(std::unique_ptr<session> s) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (idle_.size() < max_idle_) idle_.push_back(std::move(s));
    }

private:
    std::mutex mutex_;
    std::vector<std::unique_ptr<session>> idle_;
    std::size_t max_idle_;
};

// A session taken from a pool for one read, given back when the read ends (thrown or not).
class session_lease {
public:
    explicit session_lease(session_pool& pool) : pool_(pool), session_(pool.take()) {}
    ~session_lease() {
        try {
            pool_.give_back(std::move(session_));
        } catch (...) {  // a full vector that cannot grow: the session is freed instead
        }
    }
    session_lease(const session_lease&) = delete;
    session_lease& operator=(const session_lease&) = delete;
    session& operator*() const noexcept { return *session_; }
    session* operator->() const noexcept { return session_.get(); }

private:
    session_pool& pool_;
    std::unique_ptr<session> session_;
};

} // namespace safetensors::detail::http
