// safetensors command: a small pool of threads for per-tensor work (diff, stats), with the
// progress line drawn from the calling thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace cli {

// Runs job(i) for every i in [0, count) on up to `workers` threads (fewer where no more can
// start) until done or stop is set; rethrows the first exception a job threw. With a tick,
// this thread only watches and calls tick() every 100 ms and at the end: the progress line is
// drawn from one thread.
template <class Job>
void run_jobs(std::size_t count, std::size_t workers, std::atomic<bool>& stop, const Job& job,
              const std::function<void()>& tick) {
    std::atomic<std::size_t> next{0};
    std::vector<std::exception_ptr> errors(workers);
    std::mutex mutex;
    std::condition_variable finished;
    std::size_t running = 0;  // workers started and not finished, under mutex
    const auto worker = [&](std::size_t w) {
        try {
            while (!stop.load()) {
                const std::size_t i = next.fetch_add(1);
                if (i >= count) break;
                job(i);
            }
        } catch (...) {
            errors[w] = std::current_exception();
            stop = true;
        }
        const std::lock_guard<std::mutex> lock(mutex);
        --running;
        finished.notify_all();
    };
    const auto begin_worker = [&] {
        const std::lock_guard<std::mutex> lock(mutex);
        ++running;
    };
    std::vector<std::thread> threads;
    for (std::size_t w = tick ? 0 : 1; w < workers; ++w) {
        begin_worker();
        try {
            threads.emplace_back(worker, w);
        } catch (const std::system_error&) {
            const std::lock_guard<std::mutex> lock(mutex);
            --running;
            break;
        }
    }
    if (!tick || threads.empty()) {  // this thread is worker 0
        begin_worker();
        worker(0);
    }
    if (tick) {
        std::unique_lock<std::mutex> lock(mutex);
        while (!finished.wait_for(lock, std::chrono::milliseconds(100), [&] { return running == 0; })) tick();
        tick();
    }
    for (std::thread& t : threads) t.join();
    for (const std::exception_ptr& e : errors)
        if (e) std::rethrow_exception(e);
}

} // namespace cli
