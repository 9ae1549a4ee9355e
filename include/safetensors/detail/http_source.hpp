// safetensors-hpp: the source over an HTTP(S) file (http.hpp): opened with one request for
// the start of the file, which pins its size and identity; reads served from those first bytes
// where they fall, every other byte fetched by the fetcher (http_fetch.hpp) when asked for.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../source.hpp"
#include "../span.hpp"
#include "os.hpp"
#include "parallel_read.hpp"
#include "http_fetch.hpp"
#include "http_plan.hpp"
#include "http_remote.hpp"
#include "http_transfer.hpp"
#include "http_url.hpp"

namespace safetensors::detail::http {

// The open asks for the first bytes: the 8-byte length and, for most files, the whole header,
// so that opening costs one request (a longer header costs a second, for the rest of it).
constexpr std::uint64_t head_bytes = std::uint64_t{32} << 10;

class url_source final : public source {
public:
    url_source(std::shared_ptr<remote_object> remote, std::vector<std::byte> head)
        : source(remote->pin.size, remote->shown), remote_(std::move(remote)), head_(std::move(head)) {}

    const remote_object& remote() const noexcept { return *remote_; }

protected:
    void do_read_at(std::uint64_t offset, void* destination, std::size_t length) const override {
        read_as_batch(offset, destination, length);
    }

    void do_read_ranges(span<const byte_range> ranges) const override {
        std::vector<byte_range> rest;
        for (const byte_range& r : ranges) {
            const std::uint64_t held = head_.size();
            if (r.offset < held) {
                const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(r.length, held - r.offset));
                std::memcpy(r.destination, head_.data() + r.offset, n);
                if (n < r.length) rest.push_back({held, r.length - n, static_cast<std::byte*>(r.destination) + n});
            } else if (r.length != 0) {
                rest.push_back(r);
            }
        }
        if (rest.empty()) return;
        const target_set targets(span<const byte_range>(rest.data(), rest.size()));
        const http_options& o = remote_->client->options;
        const bool multi = remote_->multi_range;
        const auto requests = plan(targets.pieces(multi ? part_overhead_gap : 0), multi, o.max_ranges_per_request, o.coalesce_gap);
        run_split(targets, requests);
    }

    // The requests of one read, in consecutive groups of about equal bytes, one group per thread
    // (read_threads_for: one thread below 64 MiB); the caller's thread runs the first group. The
    // first failure is rethrown once every group has ended.
    void run_split(const target_set& targets, const std::vector<std::vector<piece>>& requests) const {
        std::vector<std::uint64_t> bytes(requests.size(), 0);
        std::uint64_t total = 0;
        for (std::size_t i = 0; i < requests.size(); ++i) {
            for (const piece& p : requests[i]) bytes[i] += p.size();
            total += bytes[i];
        }
        const unsigned threads = std::min<unsigned>(read_threads_for(total, remote_->client->options.read_threads),
                                                    static_cast<unsigned>(std::min<std::size_t>(requests.size(), 64)));
        if (threads <= 1) return fetcher(*remote_, &targets, nullptr).run(requests);
        split_read work(*this, targets, threads, total);
        std::uint64_t done = 0;
        for (std::size_t i = 0; i < requests.size(); ++i) {  // group g holds bytes [g, g + 1) * total / threads
            const auto group = static_cast<std::size_t>(std::min<std::uint64_t>(threads - 1, done * threads / total));
            work.groups[group].requests.push_back(requests[i]);
            work.groups[group].total += bytes[i];
            done += bytes[i];
        }
        {
            std::vector<os::thread> helpers(threads - 1);
            std::vector<bool> started(threads, false);
            for (unsigned g = 1; g < threads; ++g) started[g] = helpers[g - 1].start(run_group, &work.groups[g]);
            run_group(&work.groups[0]);
            for (unsigned g = 1; g < threads; ++g)
                if (!started[g]) run_group(&work.groups[g]);  // no thread to be had: here, in turn
        }  // joined
        for (const auto& g : work.groups)
            if (g.error) std::rethrow_exception(g.error);
    }

    // One read split over threads: each group's requests, its outcome, and its progress summed
    // with the others' for http_options::progress (one call at a time).
    struct split_read;
    struct read_group {
        split_read* read = nullptr;
        unsigned index = 0;
        std::vector<std::vector<piece>> requests;
        std::uint64_t total = 0;
        std::exception_ptr error;
    };
    struct split_read {
        split_read(const url_source& s, const target_set& t, unsigned threads, std::uint64_t all)
            : source(s), targets(t), groups(threads), received(threads, 0), total(all) {
            for (unsigned g = 0; g < threads; ++g) groups[g] = read_group{this, g, {}, 0, nullptr};
        }
        const url_source& source;
        const target_set& targets;
        std::vector<read_group> groups;
        os::mutex mutex;  // guards received and the calls of progress
        std::vector<std::uint64_t> received;
        std::uint64_t total;
    };

    static void run_group(void* context) noexcept {
        read_group& g = *static_cast<read_group*>(context);
        split_read& read = *g.read;
        const http_options& o = read.source.remote_->client->options;
        fetcher::progress_report report;
        if (o.progress)
            report = [&read, &g, &o](std::uint64_t received, std::uint64_t) {
                read.mutex.lock();
                read.received[g.index] = received;
                std::uint64_t sum = 0;
                for (std::uint64_t r : read.received) sum += r;
                try {
                    o.progress(sum, read.total);
                } catch (...) {
                    read.mutex.unlock();
                    throw;
                }
                read.mutex.unlock();
            };
        try {
            if (!g.requests.empty()) fetcher(*read.source.remote_, &read.targets, nullptr, &report).run(g.requests);
        } catch (...) {
            g.error = std::current_exception();
        }
    }

private:
    std::shared_ptr<remote_object> remote_;
    std::vector<std::byte> head_;  // the file's first bytes (all of them when the server ignores Range)
};

inline void check_options(const http_options& o) {
    if (o.max_attempts == 0) throw_error(errc::invalid_argument, "http_options::max_attempts must be at least 1");
    if (o.parallel_requests == 0) throw_error(errc::invalid_argument, "http_options::parallel_requests must be at least 1");
    if (o.max_ranges_per_request == 0)
        throw_error(errc::invalid_argument, "http_options::max_ranges_per_request must be at least 1");
}

// Opens an http(s) URL: one request for the first head_bytes, which pins the size, ETag and
// Last-Modified (and notes X-Repo-Commit). shown: how messages name it.
inline std::shared_ptr<const url_source> open_remote(const std::shared_ptr<client>& c, const std::string& address,
                                                     const std::string& shown) {
    url target;
    std::string why;
    if (!parse_url(address, target, why))
        throw safetensors::error(errc::invalid_url, "invalid URL " + quote(shown) + ": " + why, shown);
    std::shared_ptr<remote_object> remote(new remote_object(c, target, shown));
    opening opened;
    fetcher(*remote, nullptr, &opened).run({{piece{0, head_bytes}}});
    remote->pin = opened.pin;
    remote->repo_commit = opened.repo_commit;
    if (opened.body.size() > opened.pin.size)
        remote->fail(errc::invalid_response, "more bytes than the file has");
    return std::shared_ptr<const url_source>(new url_source(std::move(remote), std::move(opened.body)));
}

} // namespace safetensors::detail::http
