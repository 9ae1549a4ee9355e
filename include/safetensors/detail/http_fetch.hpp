// safetensors-hpp: runs the requests of one read of the HTTP reader (http.hpp) on a curl
// multi handle: up to parallel_requests in flight, each stopped when no byte has come for
// stall_timeout; failed attempts retried with exponential backoff from what has arrived;
// redirects checked hop by hop; a server that answers a multi-range request with one range
// switches the remote file to single-range requests, coalesced with the gap rule.
#pragma once

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "curl_handles.hpp"
#include "http_plan.hpp"
#include "http_remote.hpp"
#include "http_transfer.hpp"
#include "http_url.hpp"

namespace safetensors::detail::http {

// Before following a redirect: only http and https, never from https to http.
inline void check_redirect(const remote_object& remote, const std::string& from, const std::string& to) {
    const std::string shown_to = quote(redacted(to));
    url target, source;
    std::string why;
    if (!parse_url(to, target, why))
        remote.fail(errc::unsafe_redirect, "redirect to " + shown_to + " refused: " + why);
    if (parse_url(from, source, why) && source.scheme == "https" && target.scheme == "http")
        remote.fail(errc::unsafe_redirect, "redirect from https to http (" + shown_to + ") refused");
}

class fetcher {
public:
    // targets: the read's destinations; opened: the open's capture (one of the two is null).
    // report: where progress goes (http_options::progress when null; see http_source.hpp for
    // a read split over threads).
    using progress_report = std::function<void(std::uint64_t received, std::uint64_t total)>;
    fetcher(remote_object& remote, const target_set* targets, opening* opened, const progress_report* report = nullptr)
        : remote_(remote), options_(remote.client->options), targets_(targets), opened_(opened),
          report_(report != nullptr ? *report : options_.progress) {}

    // Runs the requests (each a list of pieces) to the end; throws the first failure.
    void run(const std::vector<std::vector<piece>>& requests) {
        session_lease s(remote_.client->sessions);
        session_ = &*s;
        for (const auto& pieces : requests) {
            for (const piece& p : pieces) total_ += p.size();
            pending_.emplace_back(new job(pieces, remote_.current_url()));
        }
        try {
            loop();
            report_progress(true);
        } catch (...) {
            stop_all();
            throw;
        }
    }

private:
    struct flight {
        std::unique_ptr<job> owner;
        std::unique_ptr<transfer> attempt;
    };

    void loop() {
        while (!pending_.empty() || !flying_.empty()) {
            start_ready();
            int running = 0;
            const CURLMcode m = curl().multi_perform(session_->multi(), &running);
            if (m != CURLM_OK) remote_.fail(errc::network_error, std::string("libcurl: ") + curl().multi_strerror(m));
            collect_done();
            stop_stalled();
            report_progress(false);
            if (!pending_.empty() || !flying_.empty())
                curl().multi_poll(session_->multi(), nullptr, 0, static_cast<int>(wait_time().count()), nullptr);
        }
    }

    void start_ready() {
        const auto now = clock::now();
        for (auto it = pending_.begin(); it != pending_.end() && flying_.size() < options_.parallel_requests;) {
            if ((*it)->not_before > now) {
                ++it;
                continue;
            }
            flight f{std::move(*it), nullptr};
            it = pending_.erase(it);
            f.attempt.reset(new transfer(remote_, *f.owner, targets_, opened_, session_->take_easy()));
            f.attempt->configure();
            if (curl().multi_add_handle(session_->multi(), f.attempt->easy()) != CURLM_OK)
                remote_.fail(errc::network_error, "libcurl refused a request");
            flying_.push_back(std::move(f));
        }
    }

    // How long to wait for sockets: short while anything is in flight (stalls are checked
    // between waits), else until the next retry is due.
    std::chrono::milliseconds wait_time() const {
        constexpr std::chrono::milliseconds tick{50};
        if (!flying_.empty() || pending_.empty()) return tick;
        auto next = pending_.front()->not_before;
        for (const auto& j : pending_) next = std::min(next, j->not_before);
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - clock::now());
        return std::max(std::chrono::milliseconds(0), std::min(left, std::chrono::milliseconds(1000)));
    }

    void collect_done() {
        int left = 0;
        while (CURLMsg* message = curl().multi_info_read(session_->multi(), &left)) {
            if (message->msg != CURLMSG_DONE) continue;
            const CURLcode code = message->data.result;
            finish(position_of(message->easy_handle), code, false);
        }
    }

    void stop_stalled() {
        const auto now = clock::now();
        for (std::size_t i = 0; i < flying_.size();) {
            if (now - flying_[i].attempt->last_activity() > options_.stall_timeout)
                finish(i, CURLE_OK, true);  // removes flying_[i]
            else
                ++i;
        }
    }

    std::size_t position_of(CURL* easy) const {
        for (std::size_t i = 0; i < flying_.size(); ++i)
            if (flying_[i].attempt->easy() == easy) return i;
        remote_.fail(errc::network_error, "libcurl reported an unknown transfer");
    }

    // The attempt at flying_[i] is over: take it out of the multi handle, then act on it.
    void finish(std::size_t i, CURLcode code, bool stalled) {
        flight f = std::move(flying_[i]);
        flying_.erase(flying_.begin() + static_cast<std::ptrdiff_t>(i));
        curl().multi_remove_handle(session_->multi(), f.attempt->easy());
        attempt_result r = f.attempt->finish(code, stalled);
        session_->give_back(f.attempt->release());
        f.attempt.reset();
        switch (r.kind) {
            case verdict::complete: return completed(std::move(f.owner), r);
            case verdict::retry: return retry(std::move(f.owner), r);
            case verdict::redirect: return follow(std::move(f.owner), r.location);
            case verdict::fail: throw *r.failure;
        }
    }

    void completed(std::unique_ptr<job> j, const attempt_result& r) {
        if (opened_ != nullptr) return;
        std::vector<piece> rest = j->got.remaining();
        if (r.one_range_answer) {  // even when that range covered them all (merged): it was luck
            remote_.multi_range = false;
            return replan(std::move(rest));
        }
        if (rest.empty()) return;
        attempt_result missing;
        missing.failure = remote_.make_error(errc::invalid_response, "the answer lacks " + std::to_string(rest.size()) +
                                                                         " of the ranges asked for");
        missing.kind = verdict::retry;
        retry(std::move(j), missing);
    }

    // The server answers multi-range requests with one range: what is left, and every
    // multi-range request not yet sent, as coalesced single-range requests.
    void replan(std::vector<piece> rest) {
        for (auto it = pending_.begin(); it != pending_.end();) {
            if ((*it)->got.pieces().size() < 2) {
                ++it;
                continue;
            }
            for (const piece& p : (*it)->got.remaining()) rest.push_back(p);
            it = pending_.erase(it);
        }
        std::sort(rest.begin(), rest.end(), [](const piece& a, const piece& b) { return a.begin < b.begin; });
        for (const auto& pieces : plan(rest, false, 1, options_.coalesce_gap))
            pending_.emplace_back(new job(pieces, remote_.current_url()));
    }

    void retry(std::unique_ptr<job> j, const attempt_result& r) {
        if (++j->failures >= options_.max_attempts) {
            const safetensors::error& e = *r.failure;
            throw safetensors::error(e.code(), e.message() + " (" + std::to_string(j->failures) +
                                                   (j->failures == 1 ? " attempt)" : " attempts)"), e.path());
        }
        if (opened_ != nullptr) {  // the open starts over (a commit named on the way is kept)
            opened_->body.clear();
            opened_->pin = pinned();
            opened_->whole = false;
        }
        auto wait = options_.backoff_initial;
        for (unsigned n = 1; n < j->failures && wait < options_.backoff_max; ++n) wait *= 2;
        wait = std::max(std::min(wait, options_.backoff_max), r.wait);
        std::unique_ptr<job> next(new job(opened_ != nullptr ? j->got.pieces() : j->got.remaining(), j->at));
        next->failures = j->failures;
        next->redirects = j->redirects;
        next->asked_again = j->asked_again;
        next->not_before = clock::now() + wait;
        pending_.push_back(std::move(next));
    }

    void follow(std::unique_ptr<job> j, const std::string& location) {
        if (++j->redirects > options_.max_redirects)
            remote_.fail(errc::unsafe_redirect, "more than " + std::to_string(options_.max_redirects) +
                                                    " redirects (http_options::max_redirects)");
        check_redirect(remote_, j->at, location);
        j->at = location;
        remote_.moved_to(location);
        j->not_before = clock::time_point{};
        pending_.push_front(std::move(j));
    }

    // http_options::progress, for reads (not the open): what has arrived of what was asked
    // for. Coalesced requests also fetch the gaps between ranges, hence the clamp.
    void report_progress(bool done) {
        if (!report_ || opened_ != nullptr) return;
        const auto now = clock::now();
        if (!done && now - last_report_ < std::chrono::milliseconds(100)) return;
        last_report_ = now;
        std::uint64_t missing = 0;
        auto add = [&missing](const coverage& got) {
            for (const piece& p : got.pieces()) missing += p.size();
            missing -= got.received();
        };
        for (const auto& j : pending_) add(j->got);
        for (const flight& f : flying_) add(f.owner->got);
        report_(total_ - std::min(missing, total_), total_);
    }

    // After a failure: every transfer out of the multi handle, its easy handle kept.
    void stop_all() noexcept {
        for (flight& f : flying_) {
            curl().multi_remove_handle(session_->multi(), f.attempt->easy());
            try {
                session_->give_back(f.attempt->release());
            } catch (...) {  // the handle is freed instead
            }
        }
        flying_.clear();
    }

    remote_object& remote_;
    const http_options& options_;
    const target_set* targets_;
    opening* opened_;
    session* session_ = nullptr;
    std::deque<std::unique_ptr<job>> pending_;
    std::vector<flight> flying_;
    const progress_report& report_;
    std::uint64_t total_ = 0;          // bytes the read asks for
    clock::time_point last_report_{};  // of progress
};

} // namespace safetensors::detail::http
