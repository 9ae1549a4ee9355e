// safetensors-hpp: copying many byte ranges of a source into memory with several threads.
// One thread cannot keep up with memory when the kernel copies out of the page cache
// (pread of a warm file runs at about half of memcpy speed), so load() splits the work
// into pieces that worker threads take in turn.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <utility>
#include <vector>

#include "os.hpp"  // os::thread; SAFETENSORS_DETAIL_NO_THREADS
#if !defined(SAFETENSORS_DETAIL_NO_THREADS)
#include <thread>
#endif

namespace safetensors::detail {

struct read_job {
    std::uint64_t offset;   // in the source
    std::byte* destination;
    std::size_t length;
};

// Threads worth starting for total_bytes: below 64 MiB a thread costs more than it saves.
inline unsigned read_threads_for(std::uint64_t total_bytes, unsigned requested) {
#if defined(SAFETENSORS_DETAIL_NO_THREADS)
    (void)total_bytes;
    (void)requested;
    return 1;
#else
    constexpr std::uint64_t per_thread_minimum = std::uint64_t{64} << 20;
    unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
    unsigned wanted = requested != 0 ? requested : std::min(hardware, 8u);
    std::uint64_t useful = std::max<std::uint64_t>(1, total_bytes / per_thread_minimum);
    return static_cast<unsigned>(std::min<std::uint64_t>(wanted, useful));
#endif
}

// How parallel_read reads one piece: a plain function and its context, so that the worker
// threads are compiled once per file, not once per caller.
struct piece_reader {
    void (*read)(const void* context, std::uint64_t offset, std::byte* destination, std::size_t length);
    const void* context;
    void operator()(std::uint64_t offset, std::byte* destination, std::size_t length) const {
        read(context, offset, destination, length);
    }
};

// What the worker threads of one parallel_read_pieces share.
struct parallel_read_work {
    parallel_read_work(const piece_reader& r, const std::vector<read_job>& p) : read(r), pieces(p) {}

    const piece_reader& read;
    const std::vector<read_job>& pieces;
    // A lock, taken once per 8 MiB piece, rather than std::atomic: <atomic> costs about 2.8 MB
    // of compiler memory in every file that reads files (compile cost).
    os::mutex mutex;           // guards the rest
    std::size_t next = 0;      // the next piece nobody has taken
    std::exception_ptr error;  // the first failure: no piece is taken after it

    // The next piece to read, or pieces.size() when none is left or one has failed.
    std::size_t take() noexcept {
        mutex.lock();
        const std::size_t i = error ? pieces.size() : next;
        if (i < pieces.size()) ++next;
        mutex.unlock();
        return i;
    }
    void fail(std::exception_ptr e) noexcept {
        mutex.lock();
        if (!error) error = std::move(e);
        mutex.unlock();
    }
};

// A worker: reads the pieces nobody has taken until none is left or one has failed.
inline void parallel_read_worker(void* shared) noexcept {
    parallel_read_work& work = *static_cast<parallel_read_work*>(shared);
    for (std::size_t i; (i = work.take()) < work.pieces.size();) {
        const read_job& p = work.pieces[i];
        try {
            work.read(p.offset, p.destination, p.length);
        } catch (...) {
            work.fail(std::current_exception());
        }
    }
}

// Runs every job through read, on `threads` threads (the caller's included). The first error
// stops the others and is rethrown here once all threads have finished.
inline void parallel_read_pieces(const piece_reader& read, const std::vector<read_job>& jobs, unsigned threads) {
    constexpr std::size_t piece = std::size_t{8} << 20;  // large enough to stream, small enough to balance
    std::size_t count = 0;
    for (const auto& job : jobs) count += job.length / piece + (job.length % piece != 0 ? 1 : 0);
    std::vector<read_job> pieces(count);
    std::size_t k = 0;
    for (const auto& job : jobs)
        for (std::size_t done = 0; done < job.length; done += piece)
            pieces[k++] = {job.offset + done, job.destination + done, std::min(piece, job.length - done)};
#if !defined(SAFETENSORS_DETAIL_NO_THREADS)
    if (threads > 1 && pieces.size() > 1) {
        parallel_read_work work(read, pieces);
        {
            // Joined when they go, before work does. The caller's thread is the first worker.
            std::vector<os::thread> helpers(std::min<std::size_t>(threads, pieces.size()) - 1);
            for (auto& helper : helpers)
                if (!helper.start(parallel_read_worker, &work)) break;  // no more threads to be had
            parallel_read_worker(&work);
        }
        if (work.error) std::rethrow_exception(work.error);
        return;
    }
#else
    (void)threads;
#endif
    for (const auto& p : pieces) read(p.offset, p.destination, p.length);
}

// The same with any callable read(offset, destination, length).
template <class Read>
void parallel_read(const Read& read, const std::vector<read_job>& jobs, unsigned threads) {
    const auto call = [](const void* context, std::uint64_t offset, std::byte* destination, std::size_t length) {
        (*static_cast<const Read*>(context))(offset, destination, length);
    };
    parallel_read_pieces(piece_reader{call, &read}, jobs, threads);
}

} // namespace safetensors::detail
