// safetensors-hpp: how the HTTP reader (http.hpp) turns the ranges of one read into requests,
// and where the bytes of a response go. No network code.
//
// A read's ranges (byte_range: object offset, length, destination) become targets, sorted by
// offset. Nearby targets merge into pieces (object byte ranges to fetch); a piece longer than
// a chunk is cut in chunks; small pieces are grouped into multi-range requests. Whatever
// arrives, in whatever order, is copied to every target it overlaps (deliver), and each request
// counts how much of each of its pieces it has received from the start, so a retry or a
// fallback asks for the rest only (remaining).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "../source.hpp"
#include "../span.hpp"

namespace safetensors::detail::http {

// Object bytes [begin, end).
struct piece {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    std::uint64_t size() const noexcept { return end - begin; }
};

inline bool operator==(const piece& a, const piece& b) noexcept { return a.begin == b.begin && a.end == b.end; }

// One request's size limit: large reads go in chunks this long, several in flight.
constexpr std::uint64_t chunk_bytes = std::uint64_t{8} << 20;
// In a multi-range request, ranges this close are asked for as one: a part's own headers cost
// about as much as the bytes between.
constexpr std::uint64_t part_overhead_gap = 128;

// The destinations of one read, sorted by offset.
class target_set {
public:
    explicit target_set(span<const byte_range> ranges) {
        for (const byte_range& r : ranges)
            if (r.length != 0) targets_.push_back(r);
        std::sort(targets_.begin(), targets_.end(),
                  [](const byte_range& a, const byte_range& b) { return a.offset < b.offset; });
        std::uint64_t reach = 0;
        for (const byte_range& r : targets_) {
            reach = std::max(reach, r.offset + r.length);
            reach_.push_back(reach);
        }
    }

    bool empty() const noexcept { return targets_.empty(); }

    // Copies object bytes [offset, offset + n) into every target they overlap.
    void deliver(std::uint64_t offset, const char* data, std::size_t n) const {
        const std::uint64_t end = offset + n;
        // Every target before the first whose reach passes offset ends at or before it.
        auto i = static_cast<std::size_t>(std::upper_bound(reach_.begin(), reach_.end(), offset) - reach_.begin());
        for (; i < targets_.size() && targets_[i].offset < end; ++i) {
            const byte_range& t = targets_[i];
            const std::uint64_t from = std::max(offset, t.offset);
            const std::uint64_t to = std::min(end, t.offset + t.length);
            if (from >= to) continue;
            std::memcpy(static_cast<std::byte*>(t.destination) + (from - t.offset), data + (from - offset),
                        to_size(to - from));
        }
    }

    // The object ranges to fetch: targets merged when the gap between them is at most gap.
    std::vector<piece> pieces(std::uint64_t gap) const {
        std::vector<piece> out;
        for (const byte_range& r : targets_) {
            const std::uint64_t end = r.offset + r.length;
            if (!out.empty() && r.offset <= out.back().end + gap)
                out.back().end = std::max(out.back().end, end);
            else
                out.push_back({r.offset, end});
        }
        return out;
    }

private:
    std::vector<byte_range> targets_;
    std::vector<std::uint64_t> reach_;  // the furthest end among targets_[0..i]
};

// Pieces longer than limit cut into pieces of at most limit bytes.
inline std::vector<piece> cut(const std::vector<piece>& pieces, std::uint64_t limit) {
    std::vector<piece> out;
    for (const piece& p : pieces)
        for (std::uint64_t at = p.begin; at < p.end; at += std::min(limit, p.end - at))
            out.push_back({at, at + std::min(limit, p.end - at)});
    return out;
}

// Consecutive pieces grouped into requests of at most max_ranges pieces and max_bytes bytes
// (a piece alone may reach max_bytes). max_ranges 1: one piece per request.
inline std::vector<std::vector<piece>> group(const std::vector<piece>& pieces, std::size_t max_ranges,
                                             std::uint64_t max_bytes) {
    std::vector<std::vector<piece>> out;
    std::uint64_t bytes = 0;
    for (const piece& p : pieces) {
        if (out.empty() || out.back().size() >= max_ranges || bytes + p.size() > max_bytes) {
            out.emplace_back();
            bytes = 0;
        }
        out.back().push_back(p);
        bytes += p.size();
    }
    return out;
}

// The requests for a read's pieces: multi-range ones while the server answers them, else
// single ranges with gaps up to coalesce_gap fetched through.
inline std::vector<std::vector<piece>> plan(const std::vector<piece>& pieces, bool multi_range, std::size_t max_ranges,
                                            std::uint64_t coalesce_gap) {
    if (multi_range && max_ranges > 1) return group(cut(pieces, chunk_bytes), max_ranges, chunk_bytes);
    std::vector<piece> merged;
    for (const piece& p : pieces) {
        if (!merged.empty() && p.begin <= merged.back().end + coalesce_gap)
            merged.back().end = std::max(merged.back().end, p.end);
        else
            merged.push_back(p);
    }
    return group(cut(merged, chunk_bytes), 1, chunk_bytes);
}

// How much of each piece of one request has arrived, from its start.
class coverage {
public:
    explicit coverage(std::vector<piece> pieces) : pieces_(std::move(pieces)), received_(pieces_.size(), 0) {}

    const std::vector<piece>& pieces() const noexcept { return pieces_; }

    // Object bytes [offset, offset + n) arrived: a piece they continue grows (bytes that leave
    // a hole before them are copied but not counted, and asked for again).
    void arrived(std::uint64_t offset, std::uint64_t n) {
        const std::uint64_t end = offset + n;
        auto i = static_cast<std::size_t>(
            std::upper_bound(pieces_.begin(), pieces_.end(), offset,
                             [](std::uint64_t at, const piece& p) { return at < p.end; }) -
            pieces_.begin());
        for (; i < pieces_.size() && pieces_[i].begin < end; ++i) {
            const piece& p = pieces_[i];
            if (offset > p.begin + received_[i]) continue;
            received_[i] = std::max(received_[i], std::min(end, p.end) - p.begin);
        }
    }

    // Bytes counted so far, over all pieces.
    std::uint64_t received() const noexcept {
        std::uint64_t sum = 0;
        for (std::uint64_t r : received_) sum += r;
        return sum;
    }

    // What is still missing, as pieces.
    std::vector<piece> remaining() const {
        std::vector<piece> out;
        for (std::size_t i = 0; i < pieces_.size(); ++i)
            if (received_[i] < pieces_[i].size()) out.push_back({pieces_[i].begin + received_[i], pieces_[i].end});
        return out;
    }

private:
    std::vector<piece> pieces_;
    std::vector<std::uint64_t> received_;
};

} // namespace safetensors::detail::http
