// safetensors-hpp: copying many byte ranges of a source into memory with several threads.
// One thread cannot keep up with memory when the kernel copies out of the page cache
// (pread of a warm file runs at about half of memcpy speed), so load() splits the work
// into pieces that worker threads take in turn.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <system_error>
#include <vector>

#include "os_config.hpp"  // SAFETENSORS_DETAIL_NO_THREADS
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
// threads (and std::thread's machinery) are compiled once per file, not once per caller.
struct piece_reader {
    void (*read)(const void* context, std::uint64_t offset, std::byte* destination, std::size_t length);
    const void* context;
    void operator()(std::uint64_t offset, std::byte* destination, std::size_t length) const {
        read(context, offset, destination, length);
    }
};

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
        std::atomic<std::size_t> next{0};
        std::atomic<bool> failed{false};
        std::vector<std::exception_ptr> errors(workers_wanted);  // one slot per worker: no lock
        auto work = [&](std::size_t worker) {
            for (std::size_t i; !failed.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < pieces.size();) {
                try {
                    read(pieces[i].offset, pieces[i].destination, pieces[i].length);
                } catch (...) {
                    errors[worker] = std::current_exception();
                    failed = true;
                }
            }
        };
        std::vector<std::thread> workers;
        workers.reserve(workers_wanted - 1);
        try {
            for (std::size_t w = 1; w < workers_wanted; ++w) workers.emplace_back(work, w);
        } catch (const std::system_error&) {
            // No more threads to be had: the ones running (and this one) do all the work.
        }
        work(0);
        for (auto& w : workers) w.join();
        for (const auto& e : errors)
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
