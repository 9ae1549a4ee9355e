// safetensors-hpp: the host half of the CUDA upload engine (safetensors/cuda.hpp).
//
// Free of CUDA on purpose, so it builds and is tested anywhere: a plan says which source
// bytes go into which staging slot and which copies leave each slot; the pipeline fills a
// ring of staging slots with reader threads while the calling thread hands every filled slot
// to a copy backend (cudaMemcpyAsync in cuda.hpp, a host thread in the tests).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "checked.hpp"
#include "../error.hpp"

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#include <immintrin.h>
#endif

namespace safetensors::detail::staging {

// Bytes [src, src + length) of the source belong at [dst, dst + length) of the destination
// (an offset from the destination's base pointer).
struct piece {
    std::uint64_t src = 0;
    std::uint64_t dst = 0;
    std::uint64_t length = 0;
};

// Read source bytes [src, src + length) into the slot at slot_offset.
struct read_op {
    std::uint64_t src = 0;
    std::size_t slot_offset = 0;
    std::size_t length = 0;
};

// Copy from the slot to the destination: `rows` rows of `width` bytes, row r from
// slot_offset + r * slot_pitch to dst + r * dst_pitch (one row: a plain copy).
struct copy_op {
    std::size_t slot_offset = 0;
    std::uint64_t dst = 0;
    std::size_t width = 0;
    std::size_t rows = 1;
    std::size_t slot_pitch = 0;
    std::uint64_t dst_pitch = 0;
};

// What one slot carries: the reads that fill it, then the copies that empty it.
struct chunk {
    std::vector<read_op> reads;
    std::vector<copy_op> copies;
    std::uint64_t payload = 0;  // bytes of pieces it delivers (for progress)
};

struct plan {
    std::vector<chunk> chunks;
    std::uint64_t payload = 0;

    std::size_t read_count() const noexcept {
        std::size_t n = 0;
        for (const auto& c : chunks) n += c.reads.size();
        return n;
    }
    std::uint64_t read_bytes() const noexcept {
        std::uint64_t n = 0;
        for (const auto& c : chunks)
            for (const auto& r : c.reads) n += r.length;
        return n;
    }
    std::size_t copy_count() const noexcept {
        std::size_t n = 0;
        for (const auto& c : chunks) n += c.copies.size();
        return n;
    }
};

// How much of its slot chunk `index` may fill. The first three are 1/8, 1/4 and 1/2 of a
// slot: the copy engine idles until the first chunk is read, and reading a whole slot takes
// a millisecond or more, so a small first chunk starts the transfers early.
inline std::size_t chunk_limit(std::size_t index, std::size_t slot_bytes, std::size_t unit) {
    if (index >= 3) return slot_bytes;
    std::size_t limit = (slot_bytes >> (3 - index)) / unit * unit;
    return std::max(limit, unit);
}

// The plan for buffered reads: each slot holds an image of one range of the destination.
// Every piece is read straight to its place in that image, and one copy moves the whole
// image, so adjacent tensors and runs of tiny tensors cost one transfer per slot, however
// many tensors it holds. Pieces must be sorted by dst and must not overlap there; gaps
// between them smaller than a slot are copied too (with unspecified bytes): they are the
// destination's padding.
inline plan gather_plan(std::vector<piece> pieces, std::size_t slot_bytes) {
    pieces.erase(std::remove_if(pieces.begin(), pieces.end(), [](const piece& p) { return p.length == 0; }),
                 pieces.end());
    for (std::size_t i = 1; i < pieces.size(); ++i)
        if (pieces[i].dst < pieces[i - 1].dst + pieces[i - 1].length)
            throw_error(errc::invalid_argument, "staging plan: destination ranges overlap or are not sorted");
    plan out;
    std::size_t i = 0;       // current piece
    std::uint64_t done = 0;  // bytes of it already planned
    while (i < pieces.size()) {
        chunk c;
        const std::uint64_t start = pieces[i].dst + done;
        const std::uint64_t limit = start + chunk_limit(out.chunks.size(), slot_bytes, 1);
        std::uint64_t end = start;
        while (i < pieces.size() && pieces[i].dst + done < limit) {
            const piece& p = pieces[i];
            const std::uint64_t at = p.dst + done;
            const std::uint64_t take = std::min(p.length - done, limit - at);
            const auto slot_offset = detail::to_size(at - start);
            const std::uint64_t src = p.src + done;
            read_op* last = c.reads.empty() ? nullptr : &c.reads.back();
            if (last && last->src + last->length == src && last->slot_offset + last->length == slot_offset)
                last->length += static_cast<std::size_t>(take);  // contiguous in the file and the slot
            else
                c.reads.push_back({src, slot_offset, static_cast<std::size_t>(take)});
            c.payload += take;
            end = at + take;
            done += take;
            if (done == p.length) {
                ++i;
                done = 0;
            }
        }
        c.copies.push_back({0, start, detail::to_size(end - start)});
        out.payload += c.payload;
        out.chunks.push_back(std::move(c));
    }
    return out;
}

// Appends a copy to a chunk's list, merged into the previous one when that makes one longer
// plain copy (contiguous in the slot and the destination) or one more row of a 2D copy (same
// width, same pitches): a column shard read as whole blocks becomes one 2D copy per slot
// instead of one copy per row.
inline void add_copy(std::vector<copy_op>& copies, copy_op next) {
    if (!copies.empty()) {
        copy_op& last = copies.back();
        if (last.rows == 1 && last.slot_offset + last.width == next.slot_offset && last.dst + last.width == next.dst) {
            last.width += next.width;
            return;
        }
        // cudaMemcpy2D takes pitches below 2^31 (cudaDeviceProp::memPitch) and at least width.
        constexpr std::uint64_t max_pitch = (std::uint64_t{1} << 31) - 1;
        if (next.width == last.width && next.slot_offset > last.slot_offset && next.dst > last.dst) {
            const std::size_t slot_pitch = next.slot_offset - last.slot_offset;
            const std::uint64_t dst_pitch = next.dst - last.dst;
            if (last.rows == 1 && slot_pitch >= last.width && dst_pitch >= last.width && slot_pitch <= max_pitch &&
                dst_pitch <= max_pitch) {
                last.rows = 2;
                last.slot_pitch = slot_pitch;
                last.dst_pitch = dst_pitch;
                return;
            }
            if (last.rows > 1 && next.slot_offset == last.slot_offset + last.rows * last.slot_pitch &&
                next.dst == last.dst + last.rows * last.dst_pitch) {
                ++last.rows;
                return;
            }
        }
    }
    copies.push_back(next);
}

// The plan that reads whole file ranges: each slot holds an image of a part of the file, and
// the copies pick each piece out of it (merged by add_copy into long or 2D copies). Reads are
// whole `align`-byte blocks at `align`-aligned slot offsets, and pieces less than max_gap
// bytes apart are read together, gap included. Two uses:
//   O_DIRECT reads: align 4096 (the O_DIRECT rules; the last block may run past the end of
//     the file), max_gap 0;
//   strided slices with tiny runs: align 1, max_gap > 0: one read per slot instead of one
//     pread per run (a column shard's rows), at the price of reading the gaps.
// Pieces must be sorted by src.
inline plan block_plan(std::vector<piece> pieces, std::size_t slot_bytes, std::size_t align,
                       std::uint64_t max_gap = 0) {
    pieces.erase(std::remove_if(pieces.begin(), pieces.end(), [](const piece& p) { return p.length == 0; }),
                 pieces.end());
    for (std::size_t i = 1; i < pieces.size(); ++i)
        if (pieces[i].src < pieces[i - 1].src)
            throw_error(errc::invalid_argument, "staging plan: source ranges are not sorted");
    const auto floor = [align](std::uint64_t v) { return v / align * align; };
    const auto ceil = [align](std::uint64_t v) { return (v + align - 1) / align * align; };
    plan out;
    chunk c;
    const auto close = [&] {
        if (c.reads.empty()) return;
        out.payload += c.payload;
        out.chunks.push_back(std::move(c));
        c = chunk{};
    };
    for (const piece& p : pieces) {
        std::uint64_t s = p.src;
        const std::uint64_t e = p.src + p.length;
        while (s < e) {
            const std::size_t limit = chunk_limit(out.chunks.size(), slot_bytes, align);
            read_op* last = c.reads.empty() ? nullptr : &c.reads.back();
            std::uint64_t part_end = 0;
            if (last && last->src + last->length + max_gap >= floor(s)) {
                // Touches the last read, or nearly: extend it, as far as the slot allows.
                const std::uint64_t room_end = last->src + (limit - last->slot_offset);
                const std::uint64_t new_end = std::min(ceil(e), room_end);
                if (new_end <= s) {
                    close();
                    continue;
                }
                if (new_end > last->src + last->length) last->length = detail::to_size(new_end - last->src);
                part_end = std::min(e, last->src + last->length);
            } else {
                const std::size_t used = last ? last->slot_offset + last->length : 0;
                if (limit - used < align) {
                    close();
                    continue;
                }
                const std::uint64_t begin = floor(s);
                const std::uint64_t length = std::min<std::uint64_t>(ceil(e) - begin, (limit - used) / align * align);
                c.reads.push_back({begin, used, static_cast<std::size_t>(length)});
                last = &c.reads.back();
                part_end = std::min(e, begin + length);
            }
            add_copy(c.copies, {detail::to_size(last->slot_offset + (s - last->src)), p.dst + (s - p.src),
                                detail::to_size(part_end - s)});
            c.payload += part_end - s;
            s = part_end;
        }
    }
    close();
    return out;
}

// Reads source bytes [offset, offset + length) into destination; throws on failure.
using reader = std::function<void(std::uint64_t offset, void* destination, std::size_t length)>;
// Called after each chunk is handed to the copy engine, and once more when everything has
// arrived; returning false cancels.
using progress_fn = std::function<bool(std::uint64_t done, std::uint64_t total)>;

// One step of a busy wait: tells the core it is spinning (x86 pause), so it spends less power
// and leaves more to a hyper-thread sibling.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
    _mm_pause();
#endif
}

// Where a pipeline run spent its time, summed over threads: readers reading, readers waiting
// for a slot (its copies still in flight: the copy side is the bottleneck), and the calling
// thread waiting for a filled slot (the readers are).
struct timings {
    double read_seconds = 0;
    double slot_wait_seconds = 0;
    double issue_wait_seconds = 0;
};

// The staging ring: slot_count slots of slot_bytes over memory the caller owns (pinned, for
// CUDA). Which slots are free and which still have copies in flight (oldest first, the order
// the copy engine finishes them) outlives one pipeline run: an asynchronous upload returns
// while its last copies still read from the ring, and the next run waits for them.
class ring {
public:
    ring(std::byte* memory, std::size_t slot_bytes, std::size_t slot_count)
        : memory_(memory), slot_bytes_(slot_bytes), slot_count_(slot_count) {
        release_all();
    }
    std::byte* slot(std::size_t index) const noexcept { return memory_ + index * slot_bytes_; }
    std::size_t slot_bytes() const noexcept { return slot_bytes_; }
    std::size_t slot_count() const noexcept { return slot_count_; }
    const std::deque<std::size_t>& in_flight() const noexcept { return in_flight_; }

    // Once the copy backend is idle: every slot is free.
    void release_all() {
        in_flight_.clear();
        free_.clear();
        for (std::size_t i = slot_count_; i-- > 0;) free_.push_back(i);
    }

private:
    template <class Backend>
    friend class pipeline;

    std::byte* memory_;
    std::size_t slot_bytes_;
    std::size_t slot_count_;
    std::vector<std::size_t> free_;
    std::deque<std::size_t> in_flight_;
};

// Runs a plan: reader threads take chunks in order, wait for a free slot (the oldest slot in
// flight, once the backend says its copies are done), read into it, and queue it; the
// calling thread issues the copies of each queued slot as soon as it is filled, in whatever
// order they fill, reports progress, and cancels when asked. Any failure stops the readers,
// waits for the copies in flight (the slots and the destination must not be released under
// a running DMA), and rethrows on the calling thread.
//
// Backend (CUDA in cuda.hpp, a host thread in the tests) provides
//   void issue(const chunk&, const std::byte* slot_memory, std::size_t slot);  // enqueue, mark the slot busy
//   void wait(std::size_t slot);   // block until the slot's last copies are done
//   void drain() noexcept;         // block until every issued copy is done (error paths)
template <class Backend>
class pipeline {
public:
    // Starts the reader threads at once, so reading overlaps whatever the caller does before
    // run() (the device allocation). One chunk or one thread: run() reads inline instead.
    pipeline(const plan& work, ring& slots, reader read, Backend& backend, unsigned threads)
        : plan_(work), ring_(slots), read_(std::move(read)), backend_(backend) {
        const std::size_t count = std::min<std::size_t>(threads, plan_.chunks.size());
        if (count <= 1) return;
        try {
            for (std::size_t i = 0; i < count; ++i) workers_.emplace_back([this] { read_chunks(); });
        } catch (...) {
            shutdown();
            throw;
        }
    }
    pipeline(const pipeline&) = delete;
    pipeline& operator=(const pipeline&) = delete;
    ~pipeline() { shutdown(); }

    // Valid once run() has returned.
    const staging::timings& timings() const noexcept { return timings_; }

    // Issues every chunk's copies. On return the last copies may still be in flight (their
    // slots are marked so); wait for the backend's stream to know they are done.
    void run(const progress_fn& progress) {
        try {
            if (workers_.empty())
                run_inline(progress);
            else
                run_parallel(progress);
        } catch (...) {
            shutdown();
            throw;
        }
        completed_ = true;
        shutdown();
    }

private:
    static constexpr std::size_t none = static_cast<std::size_t>(-1);
    using clock = std::chrono::steady_clock;
    static double since(clock::time_point start) {
        return std::chrono::duration<double>(clock::now() - start).count();
    }

    void run_inline(const progress_fn& progress) {
        std::uint64_t done = 0;
        for (std::size_t index = 0; index < plan_.chunks.size(); ++index) {
            std::size_t slot = none;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                slot = acquire(lock);
            }
            try {
                const clock::time_point reading = clock::now();
                fill(plan_.chunks[index], slot);
                timings_.read_seconds += since(reading);
                backend_.issue(plan_.chunks[index], ring_.slot(slot), slot);
            } catch (...) {
                std::lock_guard<std::mutex> lock(mutex_);
                ring_.free_.push_back(slot);
                throw;
            }
            {
                std::lock_guard<std::mutex> lock(mutex_);
                ring_.in_flight_.push_back(slot);
            }
            done += plan_.chunks[index].payload;
            report(progress, done);
        }
    }

    void run_parallel(const progress_fn& progress) {
        std::uint64_t done = 0;
        std::unique_lock<std::mutex> lock(mutex_);
        for (std::size_t issued = 0; issued < plan_.chunks.size(); ++issued) {
            const clock::time_point waiting = clock::now();
            if (ready_.empty() && !error_) {
                // Spin up to 2 ms before sleeping: while a load runs a slot is filled about
                // every 0.1 ms, and waking a sleeping thread (on a virtual machine, a halted
                // CPU) would add tens of microseconds to each hand-over.
                lock.unlock();
                const clock::time_point give_up = waiting + std::chrono::milliseconds(2);
                while (filled_.load(std::memory_order_acquire) == issued && !failed_.load(std::memory_order_acquire) &&
                       clock::now() < give_up)
                    for (int i = 0; i < 64; ++i) cpu_relax();
                lock.lock();
            }
            ready_cv_.wait(lock, [this] { return !ready_.empty() || error_; });
            timings_.issue_wait_seconds += since(waiting);
            if (error_) std::rethrow_exception(error_);
            const auto [index, slot] = ready_.front();
            ready_.pop_front();
            lock.unlock();
            try {
                backend_.issue(plan_.chunks[index], ring_.slot(slot), slot);
            } catch (...) {
                lock.lock();
                ring_.free_.push_back(slot);
                throw;
            }
            lock.lock();
            ring_.in_flight_.push_back(slot);
            work_cv_.notify_one();  // a reader may be waiting for a slot
            done += plan_.chunks[index].payload;
            lock.unlock();
            report(progress, done);
            lock.lock();
        }
    }

    void report(const progress_fn& progress, std::uint64_t done) const {
        if (progress && !progress(done, plan_.payload))
            throw_error(errc::cancelled, "cancelled by the progress callback after " + std::to_string(done) + " of " +
                                             std::to_string(plan_.payload) + " bytes");
    }

    // A free slot, or the oldest one in flight once its copies are done. Called with the lock
    // held; returns none when stopped.
    std::size_t acquire(std::unique_lock<std::mutex>& lock) {
        for (;;) {
            if (stop_) return none;
            if (!ring_.free_.empty()) {
                const std::size_t slot = ring_.free_.back();
                ring_.free_.pop_back();
                return slot;
            }
            if (!ring_.in_flight_.empty()) {
                const std::size_t slot = ring_.in_flight_.front();
                ring_.in_flight_.pop_front();
                lock.unlock();
                try {
                    backend_.wait(slot);
                } catch (...) {
                    lock.lock();
                    ring_.free_.push_back(slot);
                    throw;
                }
                lock.lock();
                if (stop_) {
                    ring_.free_.push_back(slot);
                    return none;
                }
                return slot;
            }
            work_cv_.wait(lock);
        }
    }

    void fill(const chunk& c, std::size_t slot) const {
        std::byte* memory = ring_.slot(slot);
        for (const read_op& r : c.reads) read_(r.src, memory + r.slot_offset, r.length);
    }

    void read_chunks() {
        for (;;) {
            std::size_t index = none, slot = none;
            clock::time_point reading;
            double slot_wait = 0;
            try {
                const clock::time_point waiting = clock::now();
                {
                    std::unique_lock<std::mutex> lock(mutex_);
                    if (stop_ || next_ >= plan_.chunks.size()) return;
                    index = next_++;
                    slot = acquire(lock);
                    if (slot == none) return;
                }
                reading = clock::now();
                slot_wait = std::chrono::duration<double>(reading - waiting).count();
                fill(plan_.chunks[index], slot);
            } catch (...) {
                std::lock_guard<std::mutex> lock(mutex_);
                if (slot != none) ring_.free_.push_back(slot);
                if (!error_) error_ = std::current_exception();
                failed_.store(true, std::memory_order_release);
                stop_ = true;
                ready_cv_.notify_all();
                work_cv_.notify_all();
                return;
            }
            const double read = since(reading);
            std::lock_guard<std::mutex> lock(mutex_);
            timings_.slot_wait_seconds += slot_wait;
            timings_.read_seconds += read;
            if (stop_) {
                ring_.free_.push_back(slot);
                return;
            }
            ready_.emplace_back(index, slot);
            filled_.fetch_add(1, std::memory_order_release);
            ready_cv_.notify_one();
        }
    }

    // Stops and joins the readers. Unless every chunk was issued, waits for the copies in
    // flight and frees every slot, so the ring is whole again for the next run.
    void shutdown() noexcept {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
        }
        work_cv_.notify_all();
        for (auto& t : workers_)
            if (t.joinable()) t.join();
        workers_.clear();
        if (!completed_ && !drained_) {
            backend_.drain();
            ring_.release_all();
            drained_ = true;
        }
    }

    const plan& plan_;
    ring& ring_;
    reader read_;
    Backend& backend_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable work_cv_;   // readers: a slot may be available, or stop
    std::condition_variable ready_cv_;  // caller: a slot was filled, or a reader failed
    std::deque<std::pair<std::size_t, std::size_t>> ready_;  // (chunk, slot), filled
    std::size_t next_ = 0;                                    // next chunk to read
    staging::timings timings_;
    bool stop_ = false;
    bool completed_ = false;
    bool drained_ = false;
    std::exception_ptr error_;
    // Mirrors for the caller's spin (read without the lock): chunks queued in ready_ so far,
    // and whether error_ is set.
    std::atomic<std::size_t> filled_{0};
    std::atomic<bool> failed_{false};
};

} // namespace safetensors::detail::staging
