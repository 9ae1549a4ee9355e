// safetensors-hpp: the copy engine of slices: walks a slice_layout's runs (slice_plan.hpp),
// copying them packed or handing them to a visitor, merged where they touch.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "checked.hpp"
#include "slice_plan.hpp"

namespace safetensors::detail {

// Steps through the runs of a slice like an odometer, innermost level fastest; offset() is
// where the current run starts (relative to the tensor). An offset rather than a pointer,
// because stepping a level past its last run briefly points beyond the tensor.
class run_odometer {
public:
    run_odometer(const std::vector<slice_loop>& loops, std::size_t first)
        : loops_(loops), counter_(loops.size(), 0), offset_(first) {}

    std::size_t offset() const noexcept { return offset_; }

    // Moves to the run-th run (counting from the first).
    void seek(std::uint64_t run) noexcept {
        for (std::size_t d = loops_.size(); d-- > 0;) {
            counter_[d] = detail::to_size(run % loops_[d].count);
            run /= loops_[d].count;
            offset_ += counter_[d] * loops_[d].stride;
        }
    }

    // Advances levels [0, depth); false (and back at the start) after their last run.
    bool next(std::size_t depth) noexcept {
        for (std::size_t d = depth; d-- > 0;) {
            offset_ += loops_[d].stride;
            if (++counter_[d] < loops_[d].count) return true;
            offset_ -= loops_[d].stride * loops_[d].count;
            counter_[d] = 0;
        }
        return false;
    }

private:
    const std::vector<slice_loop>& loops_;
    std::vector<std::size_t> counter_;
    std::size_t offset_;
};

// The copy loop: the innermost level as a plain loop, the outer ones by odometer. With N
// nonzero the run length is a compile-time constant and each memcpy becomes one load and
// store, which is what makes 1- to 16-byte runs (a strided last dimension) cheap.
template <std::size_t N>
void copy_runs(std::byte* dst, const std::byte* tensor, std::size_t first, std::size_t length,
               const std::vector<slice_loop>& loops) noexcept {
    const std::size_t n = N != 0 ? N : length;
    const slice_loop inner = loops.back();
    run_odometer rows(loops, first);
    do {
        const std::byte* src = tensor + rows.offset();
        for (std::size_t i = 0; i < inner.count; ++i) std::memcpy(dst + i * n, src + i * inner.stride, n);
        dst += inner.count * n;
    } while (rows.next(loops.size() - 1));
}

// Copies a slice's runs packed in row-major order from tensor to dst (byte_size bytes).
inline void copy_slice(std::byte* dst, const std::byte* tensor, const slice_layout& at) noexcept {
    if (at.loops.empty()) {
        std::memcpy(dst, tensor + at.first, at.run_length);
        return;
    }
    switch (at.run_length) {
        case 1: return copy_runs<1>(dst, tensor, at.first, at.run_length, at.loops);
        case 2: return copy_runs<2>(dst, tensor, at.first, at.run_length, at.loops);
        case 4: return copy_runs<4>(dst, tensor, at.first, at.run_length, at.loops);
        case 8: return copy_runs<8>(dst, tensor, at.first, at.run_length, at.loops);
        case 16: return copy_runs<16>(dst, tensor, at.first, at.run_length, at.loops);
        default: return copy_runs<0>(dst, tensor, at.first, at.run_length, at.loops);
    }
}

// Calls f(offset, length) for the source runs behind bytes [begin, end) of the packed
// result, clipped to that range, merging runs that touch.
template <class F>
void visit_runs(const slice_layout& at, std::uint64_t begin, std::uint64_t end, F&& f) {
    if (begin >= end) return;
    run_odometer runs(at.loops, at.first);
    runs.seek(begin / at.run_length);
    std::uint64_t within = begin % at.run_length;
    std::uint64_t pending_offset = 0, pending_length = 0;
    for (std::uint64_t done = begin;;) {
        const std::uint64_t offset = runs.offset() + within;
        const std::uint64_t n = std::min<std::uint64_t>(at.run_length - within, end - done);
        if (pending_length != 0 && pending_offset + pending_length == offset) {
            pending_length += n;
        } else {
            if (pending_length != 0) f(pending_offset, pending_length);
            pending_offset = offset;
            pending_length = n;
        }
        done += n;
        within = 0;
        if (done == end || !runs.next(at.loops.size())) break;
    }
    f(pending_offset, pending_length);
}

} // namespace safetensors::detail
