// safetensors-hpp: copying many byte ranges of a source into memory with several threads.
// One thread cannot keep up with memory when the kernel copies out of the page cache
// (pread of a warm file runs at about half of memcpy speed), so load() splits the work
// into pieces that worker threads take in turn.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
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
    parallel_read_work(const piece_reader& r, const std::vector<read_job>& p, std::size_t workers)
        : read(r), pieces(p), errors(workers) {}

    const piece_reader& read;
    const std::vector<read_job>& pieces;
    std::vector<std::exception_ptr> errors;  // one slot per worker
    // A lock, taken once per 8 MiB piece, rather than std::atomic: <atomic> costs about 2.8 MB
    // of compiler memory in every file that reads files (compile cost).
    os::mutex mutex;  // guards next and failed
    std::size_t next = 0;
    bool failed = false;

    // The next piece nobody has taken, or pieces.size() when none is left or one failed.
    std::size_t take() noexcept {
        mutex.lock();
        const std::size_t i = failed ? pieces.size() : next;
        if (i < pieces.size()) ++next;
        mutex.unlock();
        return i;
    }
};

// Worker number `worker`: reads the next piece nobody has taken until none is left or one
// has failed.
inline void parallel_read_worker(parallel_read_work& work, std::size_t worker) noexcept {
    for (std::size_t i; (i = work.take()) < work.pieces.size();) {
        const read_job& p = work.pieces[i];
        try {
            work.read(p.offset, p.destination, p.length);
        } catch (...) {
            work.errors[worker] = std::current_exception();
            work.mutex.lock();
            work.failed = true;
            work.mutex.unlock();
        }
    }
}

// Runs every job through read, on `threads` threads (the caller's included). The first error
// stops the others and is rethrown here once all threads have finished.
inline void parallel_read_pieces(const piece_reader& read, const std::vector<read_job>& jobs, unsigned threads) {
    constexpr std::size_t piece = std::size_t{8} << 20;  // large enough to stream, small enough to balance
    std::vector<read_job> pieces;
    for (const auto& job : jobs)
        for (std::size_t done = 0; done < job.length; done += piece)
            pieces.push_back({job.offset + done, job.destination + done, std::min(piece, job.length - done)});
#if !defined(SAFETENSORS_DETAIL_NO_THREADS)
    if (threads > 1 && pieces.size() > 1) {
        const std::size_t workers_wanted = std::min<std::size_t>(threads, pieces.size());
        parallel_read_work work(read, pieces, workers_wanted);
        struct worker {
            parallel_read_work* work;
            std::size_t number;
            os::thread thread;
        };
        const auto run = [](void* self) {
            const worker& w = *static_cast<const worker*>(self);
            parallel_read_worker(*w.work, w.number);
        };
        std::vector<worker> workers(workers_wanted);  // destroyed (joined) before work
        for (std::size_t w = 1; w < workers_wanted; ++w) {
            workers[w].work = &work;
            workers[w].number = w;
            // No more threads to be had: the ones running (and this one) do all the work.
            if (!workers[w].thread.start(run, &workers[w])) break;
        }
        parallel_read_worker(work, 0);
        for (auto& w : workers) w.thread.join();
        for (const auto& e : work.errors)
            if (e) std::rethrow_exception(e);
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
