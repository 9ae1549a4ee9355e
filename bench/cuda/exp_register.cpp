// Experiment: DMA straight from the page cache, the way around the loader's CPU copy. How
// fast does cudaHostRegister pin a mapped, warm file when several threads register disjoint
// ranges at once, and what rate does a pipeline reach that registers ranges on worker threads
// while the calling thread copies each registered range to the device? (Run once on an H100:
// results-register-h100.txt; the answer, in README.md, is that the driver serializes the
// registration and the pipeline is slower than the loader.)
//
//   exp-register FILE          (built by build.sh; FILE from `safetensors-cuda-bench make`)
#include <safetensors/cuda.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cu = safetensors::cuda;

namespace {

constexpr std::size_t MiB = std::size_t{1} << 20;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct mapped {
    int fd = -1;
    char* p = nullptr;
    std::size_t size = 0;
    explicit mapped(const char* path) {
        fd = ::open(path, O_RDONLY | O_CLOEXEC);
        struct stat s {};
        ::fstat(fd, &s);
        size = static_cast<std::size_t>(s.st_size);
        p = static_cast<char*>(::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0));
    }
    ~mapped() {
        ::munmap(p, size);
        ::close(fd);
    }
};

void warm(const char* path) {
    mapped m(path);
    std::vector<char> b(16 * MiB);
    for (std::size_t at = 0; at < m.size; at += b.size())
        if (::pread(m.fd, b.data(), b.size(), static_cast<off_t>(at)) < 0) break;
}

unsigned register_flags() {
    int ro = 0;
    cudaDeviceGetAttribute(&ro, cudaDevAttrHostRegisterReadOnlySupported, 0);
    return ro ? cudaHostRegisterReadOnly : cudaHostRegisterDefault;
}

// T threads each register (then unregister) one of T equal ranges.
void parallel_register(const char* path, unsigned threads, bool populate_first) {
    const double t0 = now();
    mapped m(path);
    const std::size_t page = 4096;
    const std::size_t per = (m.size / threads + page - 1) / page * page;
    std::vector<std::thread> pool;
    std::atomic<int> failures{0};
    double t_pop = t0;
    if (populate_first) {
#ifdef MADV_POPULATE_READ
        for (unsigned t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                const std::size_t at = t * per;
                if (at >= m.size) return;
                if (::madvise(m.p + at, std::min(per, m.size - at), MADV_POPULATE_READ) != 0) ++failures;
            });
        for (auto& th : pool) th.join();
        pool.clear();
#endif
        t_pop = now();
    }
    const double t1 = now();
    for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            const std::size_t at = t * per;
            if (at >= m.size) return;
            if (cudaHostRegister(m.p + at, std::min(per, m.size - at), register_flags()) != cudaSuccess) ++failures;
        });
    for (auto& th : pool) th.join();
    pool.clear();
    const double t2 = now();
    for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            const std::size_t at = t * per;
            if (at >= m.size) return;
            (void)cudaHostUnregister(m.p + at);
        });
    for (auto& th : pool) th.join();
    const double t3 = now();
    std::printf("register %2u threads%s: populate %.1f ms, register %.1f ms (%.1f GB/s), unregister %.1f ms%s\n", threads,
                populate_first ? " +populate" : "", (t_pop - t0) * 1e3, (t2 - t1) * 1e3,
                static_cast<double>(m.size) / (t2 - t1) / 1e9, (t3 - t2) * 1e3, failures ? "  FAILURES" : "");
    std::fflush(stdout);
}

// Workers register chunk after chunk; the calling thread copies each registered chunk to the
// device and records an event; workers unregister a chunk once its event completed.
void pipeline(const char* path, std::size_t chunk, unsigned workers, void* device) {
    const double t0 = now();
    mapped m(path);
    const std::size_t n = (m.size + chunk - 1) / chunk;
    auto stream = cu::make_stream();
    std::vector<cu::unique_event> events;
    for (std::size_t i = 0; i < n; ++i) events.push_back(cu::make_event());
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::size_t> ready;
    std::size_t next = 0;
    std::vector<char> issued(n, 0);
    std::atomic<int> failures{0};
    const unsigned flags = register_flags();
    std::vector<std::thread> pool;
    for (unsigned w = 0; w < workers; ++w)
        pool.emplace_back([&] {
            for (;;) {
                std::size_t i;
                {
                    std::lock_guard<std::mutex> l(mu);
                    if (next >= n) return;
                    i = next++;
                }
                const std::size_t at = i * chunk, len = std::min(chunk, m.size - at);
                if (cudaHostRegister(m.p + at, len, flags) != cudaSuccess) ++failures;
                std::lock_guard<std::mutex> l(mu);
                ready.push_back(i);
                cv.notify_all();
            }
        });
    for (std::size_t done = 0; done < n; ++done) {
        std::size_t i;
        {
            std::unique_lock<std::mutex> l(mu);
            cv.wait(l, [&] { return !ready.empty(); });
            i = ready.front();
            ready.pop_front();
        }
        const std::size_t at = i * chunk, len = std::min(chunk, m.size - at);
        cudaMemcpyAsync(static_cast<char*>(device) + at, m.p + at, len, cudaMemcpyHostToDevice, stream.get());
        cudaEventRecord(events[i].get(), stream.get());
    }
    cudaStreamSynchronize(stream.get());
    const double t1 = now();
    for (auto& th : pool) th.join();
    const double t2 = now();
    for (std::size_t i = 0; i < n; ++i) (void)cudaHostUnregister(m.p + i * chunk);
    const double t3 = now();
    std::printf("pipeline chunk %3zu MiB, %2u workers: last copy at %.1f ms (%.1f GB/s), unregister %.1f ms, all %.1f GB/s%s\n",
                chunk / MiB, workers, (t1 - t0) * 1e3, static_cast<double>(m.size) / (t1 - t0) / 1e9, (t3 - t2) * 1e3,
                static_cast<double>(m.size) / (t3 - t0) / 1e9, failures ? "  FAILURES" : "");
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    const char* path = argv[1];
    cudaFree(nullptr);
    warm(path);
    for (unsigned t : {1u, 2u, 4u, 8u, 16u}) parallel_register(path, t, false);
    for (unsigned t : {4u, 8u, 16u}) parallel_register(path, t, true);
    std::size_t size = 0;
    {
        mapped m(path);
        size = m.size;
    }
    auto device = cu::make_device_memory(0, size);
    for (std::size_t chunk : {16 * MiB, 64 * MiB, 256 * MiB})
        for (unsigned w : {2u, 4u, 8u, 16u})
            for (int rep = 0; rep < 2; ++rep) pipeline(path, chunk, w, device.get());
    return 0;
}
