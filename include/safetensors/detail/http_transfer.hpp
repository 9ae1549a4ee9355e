// safetensors-hpp: one HTTP request of the reader (http.hpp) on a curl easy handle: the
// request's options and headers, the response's headers checked (status, Content-Range,
// identity) before any body byte is used, the body routed into the read's destinations
// (one range, multipart/byteranges, or a whole body), and what the attempt ended with.
#pragma once

#include <curl/curl.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "curl_handles.hpp"
#include "http_plan.hpp"
#include "http_ranges.hpp"
#include "http_remote.hpp"
#include "http_text.hpp"
#include "http_url.hpp"

namespace safetensors::detail::http {

using clock = std::chrono::steady_clock;

// A server that ignores Range may send at most this much before the reader gives up.
constexpr std::uint64_t max_ignored_range_bytes = std::uint64_t{1} << 20;
// Bytes of an error page read (and dropped) before the connection is dropped instead.
constexpr std::uint64_t max_discarded_bytes = std::uint64_t{64} << 10;

// One request and its attempts: the pieces it asks for and how much of each has arrived.
struct job {
    job(std::vector<piece> pieces, std::string where) : got(std::move(pieces)), at(std::move(where)) {}
    coverage got;
    std::string at;                // the URL the next attempt goes to
    unsigned failures = 0;         // failed attempts so far
    unsigned redirects = 0;
    bool asked_again = false;      // the URL asked for was asked again after a refusal where it led
    clock::time_point not_before{};
};

// The open's request captures the body (the start of the file, or all of it when the server
// ignores Range) and sets the pinned identity instead of checking it.
struct opening {
    pinned pin;
    std::string repo_commit;
    std::vector<std::byte> body;
    bool whole = false;  // body is the whole file (a 200 answer)
};

enum class verdict { complete, retry, redirect, fail };

struct attempt_result {
    verdict kind = verdict::complete;
    std::optional<safetensors::error> failure;  // retry and fail: what went wrong
    std::chrono::milliseconds wait{0};          // retry: the server's Retry-After, if any
    std::string location;                       // redirect: the absolute target
    bool one_range_answer = false;              // a multi-range request answered with one range
};

inline bool retryable(CURLcode code) noexcept {
    switch (code) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM: return true;
        default: return false;
    }
}

// A count for a curl option that takes a long, clamped (a template: no cast is useless for
// every integer type it is used with).
template <class T>
long as_long(T value) noexcept {
    if (value < 0) return 0;
    return value > std::numeric_limits<long>::max() ? std::numeric_limits<long>::max() : static_cast<long>(value);
}

inline bool is_redirect(long status) noexcept {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}
inline bool is_transient(long status) noexcept {
    return status == 429 || (status >= 500 && status <= 599 && status != 501 && status != 505);
}

// The response headers the reader uses (of the last header block: a redirect's are replaced).
struct response_headers {
    std::string content_range, content_type, etag, last_modified, retry_after;
    bool has_content_length = false;
};

class transfer final : private multipart_parser::sink {
public:
    // targets: where the bytes go (null for the open, which captures them in opened).
    transfer(remote_object& remote, job& j, const target_set* targets, opening* opened, easy_handle easy)
        : remote_(remote), job_(j), targets_(targets), opened_(opened), easy_(std::move(easy)) {}
    transfer(const transfer&) = delete;
    transfer& operator=(const transfer&) = delete;

    CURL* easy() const noexcept { return easy_.get(); }
    easy_handle release() noexcept { return std::move(easy_); }
    job& owner() const noexcept { return job_; }
    clock::time_point last_activity() const noexcept { return last_activity_; }

    void configure() {
        const http_options& o = remote_.client->options;
        CURL* e = easy_.get();
        curl().easy_setopt(e, CURLOPT_URL, job_.at.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85: the _STR forms; the bit masks are deprecated there
        curl().easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl().easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
        curl().easy_setopt(e, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
        curl().easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl().easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // each hop is checked here (finish)
        curl().easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl().easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl().easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
        if (!o.ca_file.empty()) curl().easy_setopt(e, CURLOPT_CAINFO, o.ca_file.c_str());
        curl().easy_setopt(e, CURLOPT_PROXY, o.proxy.c_str());  // "": none, and no environment
        curl().easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, as_long(o.connect_timeout.count()));
        curl().easy_setopt(e, CURLOPT_USERAGENT, o.user_agent.c_str());
        curl().easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);
        curl().easy_setopt(e, CURLOPT_ERRORBUFFER, error_text_);
        curl().easy_setopt(e, CURLOPT_HEADERFUNCTION, &transfer::header_callback);
        curl().easy_setopt(e, CURLOPT_HEADERDATA, this);
        curl().easy_setopt(e, CURLOPT_WRITEFUNCTION, &transfer::body_callback);
        curl().easy_setopt(e, CURLOPT_WRITEDATA, this);
        build_headers();
        curl().easy_setopt(e, CURLOPT_HTTPHEADER, headers_.get());
        curl().easy_setopt(e, CURLOPT_PRIVATE, this);
        last_activity_ = clock::now();
    }

    // The attempt is over (code from curl, or stalled when the reader stopped it): classify.
    attempt_result finish(CURLcode code, bool stalled) {
        if (failure_) return failed(verdict::fail, std::move(*failure_));
        if (stalled)
            return failed(verdict::retry, error(errc::network_error, "no data for " + std::to_string(remote_.client->options.stall_timeout.count()) +
                                                                         " ms (http_options::stall_timeout)"));
        if (code != CURLE_OK && !cut_short_) {
            std::string text = curl().easy_strerror(code);
            if (error_text_[0] != '\0') text += ": " + std::string(error_text_);
            return failed(retryable(code) ? verdict::retry : verdict::fail, error(errc::network_error, text));
        }
        return by_status();
    }

private:
    enum class body_mode { discard, one_range, multipart, whole };

    safetensors::error error(errc code, const std::string& what) const { return remote_.make_error(code, what); }

    static attempt_result failed(verdict kind, safetensors::error e) {
        attempt_result r;
        r.kind = kind;
        r.failure = std::move(e);
        return r;
    }

    // Stops the transfer (a callback returns 0) with this failure, unless one is recorded.
    bool stop(errc code, const std::string& what) {
        if (!failure_) failure_ = error(code, what);
        return false;
    }

    void build_headers() {
        const auto& pieces = job_.got.remaining();
        std::vector<std::pair<std::uint64_t, std::uint64_t>> inclusive;
        for (const piece& p : pieces) inclusive.emplace_back(p.begin, p.end - 1);
        asked_ = pieces;
        headers_.add("Range: " + range_header(span<const std::pair<std::uint64_t, std::uint64_t>>(inclusive.data(), inclusive.size())));
        headers_.add("Accept-Encoding: identity");
        const std::string& token = remote_.client->options.bearer_token;
        // Only to the host the caller named: not to a CDN or any other host a redirect leads to.
        url now;
        std::string why;
        if (!token.empty() && parse_url(job_.at, now, why) && same_origin_host(now, remote_.origin))
            headers_.add("Authorization: Bearer " + token);
    }

    // Nothing may be thrown through libcurl: a failure stops the transfer and is kept for finish().
    static std::size_t header_callback(char* data, std::size_t, std::size_t n, void* self) noexcept {
        auto* t = static_cast<transfer*>(self);
        return t->guarded([&] { return t->on_header(std::string_view(data, n)); }) ? n : 0;
    }
    static std::size_t body_callback(char* data, std::size_t, std::size_t n, void* self) noexcept {
        auto* t = static_cast<transfer*>(self);
        return t->guarded([&] { return t->on_body(data, n); }) ? n : 0;
    }
    template <class F>
    bool guarded(F&& f) noexcept {
        try {
            return f();
        } catch (const safetensors::error& e) {
            if (!failure_) failure_ = e;
        } catch (...) {  // std::bad_alloc: the one other exception these steps can throw
            if (!failure_) failure_ = safetensors::error(errc::io_error, "out of memory", {}, errno_code(ENOMEM));
        }
        return false;
    }

    bool on_header(std::string_view line) {
        last_activity_ = clock::now();
        if (starts_with(line, "HTTP/")) {  // a new response: forget an earlier block's headers
            response_ = response_headers();
            return true;
        }
        if (line == "\r\n" || line == "\n") return headers_done();
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) return true;
        const std::string_view name = line.substr(0, colon);
        const std::string value(trim_ows(line.substr(colon + 1, line.find_last_not_of("\r\n") - colon)));
        if (iequals(name, "content-range")) response_.content_range = value;
        else if (iequals(name, "content-type")) response_.content_type = value;
        else if (iequals(name, "etag")) response_.etag = value;
        else if (iequals(name, "last-modified")) response_.last_modified = value;
        else if (iequals(name, "retry-after")) response_.retry_after = value;
        else if (iequals(name, "x-repo-commit") && opened_ != nullptr && opened_->repo_commit.empty())
            opened_->repo_commit = value;  // from the first response that has it (the hub's redirect)
        else if (iequals(name, "content-length")) response_.has_content_length = true;
        return true;
    }

    long status() const noexcept {
        long code = 0;
        curl().easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &code);
        return code;
    }

    // The end of a header block: decide what the body is, check it against what was asked.
    bool headers_done() {
        status_ = status();
        mode_ = body_mode::discard;
        if (status_ == 206) {
            if (!check_identity()) return false;
            std::string boundary;
            if (multipart_boundary(response_.content_type, boundary)) {
                parser_.emplace(boundary, static_cast<multipart_parser::sink&>(*this));
                mode_ = body_mode::multipart;
                return true;
            }
            return start_one_range();
        }
        if (status_ == 200) return start_whole();
        return true;
    }

    bool check_identity() {
        if (opened_ != nullptr) {
            opened_->pin.etag = response_.etag;
            opened_->pin.last_modified = response_.last_modified;
            return true;
        }
        const pinned& pin = remote_.pin;
        if (!pin.etag.empty() && !response_.etag.empty() && response_.etag != pin.etag)
            return stop(errc::remote_changed, "the file changed since it was opened: ETag " + quote(pin.etag) + ", now " +
                                                  quote(response_.etag));
        if (pin.etag.empty() && !pin.last_modified.empty() && !response_.last_modified.empty() &&
            response_.last_modified != pin.last_modified)
            return stop(errc::remote_changed, "the file changed since it was opened: Last-Modified " +
                                                  quote(pin.last_modified) + ", now " + quote(response_.last_modified));
        return true;
    }

    // A size from the server: at open it is the size; later it must be the pinned one.
    bool check_size(std::uint64_t complete) {
        if (opened_ != nullptr) {
            opened_->pin.size = complete;
            return true;
        }
        if (complete != remote_.pin.size)
            return stop(errc::remote_changed, "the file changed since it was opened: " +
                                                  std::to_string(remote_.pin.size) + " bytes, now " +
                                                  std::to_string(complete));
        return true;
    }

    bool start_one_range() {
        content_range r;
        if (!parse_content_range(response_.content_range, r) || !r.complete_known)
            return stop(errc::invalid_response, "invalid Content-Range " + quote(response_.content_range) +
                                                    " in a 206 answer to Range: " + shown_ranges());
        if (!check_size(r.complete)) return false;
        // One range for several asked: the first of them, or the run from the first to the last.
        if (r.first != asked_.front().begin || r.last >= asked_.back().end)
            return stop(errc::invalid_response, "Content-Range " + quote(response_.content_range) +
                                                    " does not match Range: " + shown_ranges());
        at_ = r.first;
        left_ = r.last - r.first + 1;
        mode_ = body_mode::one_range;
        return true;
    }

    // 200: the whole file. The open keeps it when it is small or whole downloads are allowed;
    // any other request is refused (the server ignores Range), before a byte is read.
    bool start_whole() {
        const http_options& o = remote_.client->options;
        curl_off_t length = -1;
        curl().easy_getinfo(easy_.get(), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        const bool fits = length >= 0 && static_cast<std::uint64_t>(length) <= max_ignored_range_bytes;
        if (opened_ == nullptr || (!fits && !o.allow_full_download && length >= 0))
            return stop(errc::range_not_supported, ignored_range_message(length));
        if (length >= 0) {
            if (!fits_size_t(static_cast<std::uint64_t>(length)))
                return stop(errc::file_too_large, std::to_string(length) + " bytes do not fit in memory");
            opened_->body.reserve(static_cast<std::size_t>(length));
        }
        at_ = 0;
        left_ = length >= 0 ? static_cast<std::uint64_t>(length) : UINT64_MAX;
        mode_ = body_mode::whole;
        return true;
    }

    std::string ignored_range_message(curl_off_t length) const {
        return "the server ignores Range requests (HTTP 200 with the whole file" +
               (length >= 0 ? ", " + std::to_string(length) + " bytes" : std::string()) +
               "); set http_options::allow_full_download to download it whole";
    }

    bool on_body(const char* data, std::size_t n) {
        last_activity_ = clock::now();
        switch (mode_) {
            case body_mode::multipart:
                if (parser_->feed(data, n)) return true;
                return parser_->stopped_by_sink() ? false : stop(errc::invalid_response, "malformed multipart/byteranges answer: " + parser_->error());
            case body_mode::one_range:
                if (n > left_)
                    return stop(errc::invalid_response, "more bytes than its Content-Range " + quote(response_.content_range) + " says");
                return take(data, n);
            case body_mode::whole: return take_whole(data, n);
            case body_mode::discard: break;
        }
        discarded_ += n;
        cut_short_ = discarded_ > max_discarded_bytes;  // a long error page: the connection goes instead
        return !cut_short_;
    }

    bool take_whole(const char* data, std::size_t n) {
        const bool allowed = remote_.client->options.allow_full_download;
        if (n > left_) return stop(errc::invalid_response, "more bytes than its Content-Length says");
        if (!allowed && opened_->body.size() + n > max_ignored_range_bytes)
            return stop(errc::range_not_supported, ignored_range_message(-1));
        return take(data, n);
    }

    // Body bytes at object offset at_.
    bool take(const char* data, std::size_t n) {
        if (opened_ != nullptr) {
            const auto* bytes = reinterpret_cast<const std::byte*>(data);
            opened_->body.insert(opened_->body.end(), bytes, bytes + n);
        } else {
            targets_->deliver(at_, data, n);
            job_.got.arrived(at_, n);
        }
        at_ += n;
        left_ -= n;
        return true;
    }

    bool on_part(const content_range& r) override {
        if (r.complete_known && !check_size(r.complete)) return false;
        if (r.first < asked_.front().begin || r.last >= asked_.back().end)
            return stop(errc::invalid_response, "a part's Content-Range (bytes " + std::to_string(r.first) + "-" +
                                                    std::to_string(r.last) + ") is outside Range: " + shown_ranges());
        at_ = r.first;
        left_ = r.last - r.first + 1;
        return true;
    }
    bool on_data(const char* data, std::size_t n) override { return take(data, n); }

    // The Range asked for, shortened for messages.
    std::string shown_ranges() const {
        std::string out = "bytes=";
        for (std::size_t i = 0; i < asked_.size() && i < 3; ++i)
            out += (i ? "," : "") + std::to_string(asked_[i].begin) + "-" + std::to_string(asked_[i].end - 1);
        if (asked_.size() > 3) out += ",... (" + std::to_string(asked_.size()) + " ranges)";
        return out;
    }

    attempt_result by_status() {
        if (is_redirect(status_)) return redirect();
        if (is_transient(status_)) return transient();
        if (expired()) return ask_again();
        if (status_ == 404) return failed(verdict::fail, error(errc::file_not_found, "not found (HTTP 404)"));
        if (status_ == 401 || status_ == 403)
            return failed(verdict::fail, error(errc::permission_denied, "access denied (HTTP " + std::to_string(status_) + ")"));
        if (status_ == 416) return unsatisfiable();
        if (status_ != 200 && status_ != 206)
            return failed(verdict::fail, error(errc::remote_error, "unexpected answer HTTP " + std::to_string(status_)));
        return body_complete();
    }

    // Refused where a redirect led (a signed CDN URL that has expired): the URL asked for is
    // asked again, once per request, for a fresh redirect (which counts as one).
    bool expired() const {
        const bool refused = status_ == 401 || status_ == 403 || status_ == 404 || status_ == 410;
        return refused && !job_.asked_again && opened_ == nullptr && job_.at != to_string(remote_.origin);
    }
    attempt_result ask_again() {
        job_.asked_again = true;
        attempt_result r;
        r.kind = verdict::redirect;
        r.location = to_string(remote_.origin);
        return r;
    }

    attempt_result redirect() {
        char* target = nullptr;
        curl().easy_getinfo(easy_.get(), CURLINFO_REDIRECT_URL, &target);
        if (target == nullptr)
            return failed(verdict::fail, error(errc::invalid_response, "HTTP " + std::to_string(status_) + " without a Location"));
        attempt_result r;
        r.kind = verdict::redirect;
        r.location = target;
        return r;
    }

    attempt_result transient() {
        attempt_result r = failed(verdict::retry, error(errc::remote_error, "HTTP " + std::to_string(status_)));
        const http_options& o = remote_.client->options;
        std::uint64_t seconds = 0;
        const auto max_seconds = static_cast<std::uint64_t>(o.backoff_max.count() / 1000 + 1);
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
        if (!response_.retry_after.empty() && parse_retry_after(response_.retry_after, now.count(), max_seconds, seconds))
            r.wait = std::min<std::chrono::milliseconds>(std::chrono::seconds(seconds), o.backoff_max);
        return r;
    }

    // 416: at open, an empty file ("bytes */0"); later, a file that shrank.
    attempt_result unsatisfiable() {
        std::uint64_t complete = 0;
        if (!parse_unsatisfied_range(response_.content_range, complete))
            return failed(verdict::fail, error(errc::invalid_response, "HTTP 416 with Content-Range " + quote(response_.content_range)));
        if (opened_ != nullptr && complete == 0) {
            check_identity();
            opened_->pin.size = 0;
            return {};
        }
        if (opened_ == nullptr && complete != remote_.pin.size) {
            check_size(complete);
            return failed(verdict::fail, std::move(*failure_));
        }
        return failed(verdict::fail, error(errc::invalid_response, "HTTP 416 for Range: " + shown_ranges()));
    }

    attempt_result body_complete() {
        if (mode_ == body_mode::multipart && !parser_->finish())
            return failed(verdict::fail, error(errc::invalid_response, "malformed multipart/byteranges answer: " + parser_->error()));
        if (mode_ == body_mode::one_range && left_ != 0)
            return failed(verdict::retry, error(errc::network_error, "the answer ended " + std::to_string(left_) + " bytes early"));
        if (mode_ == body_mode::whole && opened_ != nullptr) {
            opened_->whole = true;
            opened_->pin.size = opened_->body.size();
            opened_->pin.etag = response_.etag;
            opened_->pin.last_modified = response_.last_modified;
        }
        attempt_result r;
        r.one_range_answer = mode_ == body_mode::one_range && asked_.size() > 1;
        return r;
    }

    remote_object& remote_;
    job& job_;
    const target_set* targets_;
    opening* opened_;
    easy_handle easy_;
    header_list headers_;
    std::vector<piece> asked_;
    response_headers response_;
    long status_ = 0;
    body_mode mode_ = body_mode::discard;
    std::optional<multipart_parser> parser_;
    std::uint64_t at_ = 0;    // object offset of the next body byte
    std::uint64_t left_ = 0;  // bytes the current range (or part) still has
    std::uint64_t discarded_ = 0;
    bool cut_short_ = false;  // the body of an answer not used was too long to read to its end
    std::optional<safetensors::error> failure_;
    clock::time_point last_activity_{};
    char error_text_[CURL_ERROR_SIZE] = {};
};

} // namespace safetensors::detail::http
