// safetensors-hpp: cache_reads(), the optional cache of what a reader fetched, with a limit.
//
//   auto src = safetensors::cache_reads(std::make_shared<my_reader>(...), {256 << 20});
//   auto f = safetensors::file::from_source(src);
//
// Without it nothing fetched through a reader (a source that is not addressable, source.hpp)
// is kept: every copy reads again, which is right for a loader that reads each tensor once.
// With it, bytes are fetched in aligned blocks (block_size) and kept until the blocks held
// pass byte_limit, least recently used first out. A read's missing blocks are fetched in one
// source::read_ranges batch. A range longer than the limit is read straight through (it
// would only evict everything else). The blocks a read uses live until it has copied them,
// so a read may hold up to its own size, plus a block at each end, beyond the limit.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "detail/os.hpp"  // SAFETENSORS_DETAIL_NO_THREADS
#include "error.hpp"
#include "source.hpp"
#include "span.hpp"
#if !defined(SAFETENSORS_DETAIL_NO_THREADS)
#include <mutex>
#endif

namespace safetensors {

struct read_cache_options {
    std::uint64_t byte_limit = std::uint64_t{256} << 20;  // blocks kept, at most this many bytes
    std::size_t block_size = std::size_t{1} << 20;        // fetch unit, aligned to multiples of it
};

namespace detail {

#if defined(SAFETENSORS_DETAIL_NO_THREADS)
struct cache_mutex {  // no threads, nothing to exclude
    void lock() noexcept {}
    void unlock() noexcept {}
};
#else
using cache_mutex = std::mutex;
#endif

class cached_source final : public source {
public:
    cached_source(std::shared_ptr<const source> inner, const read_cache_options& options)
        : source(inner->size(), inner->description()), inner_(std::move(inner)), options_(options) {}

protected:
    void do_read_at(std::uint64_t offset, void* destination, std::size_t length) const override {
        read_as_batch(offset, destination, length);
    }

    void do_read_ranges(span<const byte_range> ranges) const override {
        std::vector<byte_range> direct;
        std::vector<std::uint64_t> wanted;  // block indices
        for (const byte_range& r : ranges) {
            if (r.length == 0) continue;
            if (r.length > options_.byte_limit) {
                direct.push_back(r);
                continue;
            }
            for (std::uint64_t b = r.offset / options_.block_size; b <= (r.offset + r.length - 1) / options_.block_size; ++b)
                wanted.push_back(b);
        }
        std::sort(wanted.begin(), wanted.end());
        wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
        std::unordered_map<std::uint64_t, block_ptr> held = fetch(wanted);
        if (!direct.empty()) inner_->read_ranges(direct);
        for (const byte_range& r : ranges)
            if (r.length != 0 && r.length <= options_.byte_limit) copy_out(r, held);
    }

private:
    using block_ptr = std::shared_ptr<const std::vector<std::byte>>;
    struct entry {
        block_ptr bytes;
        std::list<std::uint64_t>::iterator age;
    };

    // The blocks asked for: those cached, and the rest fetched in one batch and cached.
    std::unordered_map<std::uint64_t, block_ptr> fetch(const std::vector<std::uint64_t>& wanted) const {
        std::unordered_map<std::uint64_t, block_ptr> held;
        std::vector<std::uint64_t> missing;
        {
            const std::lock_guard<cache_mutex> lock(mutex_);
            for (std::uint64_t b : wanted) {
                const auto it = blocks_.find(b);
                if (it == blocks_.end()) {
                    missing.push_back(b);
                    continue;
                }
                ages_.splice(ages_.end(), ages_, it->second.age);  // most recently used last
                held.emplace(b, it->second.bytes);
            }
        }
        if (missing.empty()) return held;
        std::vector<std::shared_ptr<std::vector<std::byte>>> fresh;
        std::vector<byte_range> reads;
        for (std::uint64_t b : missing) {
            const std::uint64_t begin = b * options_.block_size;
            const auto length = to_size(std::min<std::uint64_t>(options_.block_size, size() - begin));
            fresh.push_back(std::make_shared<std::vector<std::byte>>(length));
            reads.push_back({begin, length, fresh.back()->data()});
        }
        inner_->read_ranges(reads);
        const std::lock_guard<cache_mutex> lock(mutex_);
        for (std::size_t i = 0; i < missing.size(); ++i) {
            held.emplace(missing[i], fresh[i]);
            keep(missing[i], fresh[i]);
        }
        return held;
    }

    // Caches a fetched block (another read may have cached it meanwhile), then evicts the
    // least recently used blocks past the limit. Called with the mutex held.
    void keep(std::uint64_t index, block_ptr bytes) const {
        if (blocks_.count(index) != 0) return;
        used_ += bytes->size();
        ages_.push_back(index);
        blocks_.emplace(index, entry{std::move(bytes), std::prev(ages_.end())});
        while (used_ > options_.byte_limit && !ages_.empty()) {
            const auto oldest = blocks_.find(ages_.front());
            used_ -= oldest->second.bytes->size();
            blocks_.erase(oldest);
            ages_.pop_front();
        }
    }

    void copy_out(const byte_range& r, const std::unordered_map<std::uint64_t, block_ptr>& held) const {
        auto* out = static_cast<std::byte*>(r.destination);
        for (std::uint64_t at = r.offset, end = r.offset + r.length; at < end;) {
            const std::uint64_t b = at / options_.block_size;
            const auto within = to_size(at - b * options_.block_size);
            const auto n = to_size(std::min<std::uint64_t>(end - at, options_.block_size - within));
            std::memcpy(out, held.at(b)->data() + within, n);
            out += n;
            at += n;
        }
    }

    std::shared_ptr<const source> inner_;
    read_cache_options options_;
    mutable cache_mutex mutex_;
    mutable std::list<std::uint64_t> ages_;  // block indices, least recently used first
    mutable std::unordered_map<std::uint64_t, entry> blocks_;
    mutable std::uint64_t used_ = 0;
};

} // namespace detail

// inner with a cache of its fetched bytes (see the top of this header); an addressable source
// is returned as it is, since its bytes are already in memory.
inline std::shared_ptr<const source> cache_reads(std::shared_ptr<const source> inner,
                                                 const read_cache_options& options = {}) {
    if (!inner) detail::throw_error(errc::invalid_argument, "cache_reads: null source");
    if (options.block_size == 0) detail::throw_error(errc::invalid_argument, "cache_reads: block_size is 0");
    if (inner->addressable()) return inner;
    return detail::share(new detail::cached_source(std::move(inner), options));
}

} // namespace safetensors
