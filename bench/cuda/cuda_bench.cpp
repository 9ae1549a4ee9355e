// safetensors-cuda-bench: file-to-GPU throughput of safetensors::cuda::loader (issue 5).
//
//   safetensors-cuda-bench make FILE [--mib N]     write the benchmark file: BF16 tensors, N MiB
//                                                  (default 2048), fsync'ed
//   safetensors-cuda-bench run FILE OUTDIR [--dd-gbps X] [--budget-s S]
//
// `run` measures, on device 0, and prints every figure as it goes:
//   1. the limit: pinned-host-to-device cudaMemcpyAsync bandwidth (and pageable, for context);
//   2. warm page cache: loader.load_file() timed from the open to the last copy complete,
//      best and median of several, against 0.9 x pinned; the one-shot cuda::load_file()
//      (loader setup included); the bytes on the device are checked against the file;
//   3. a sweep of engine settings (reader threads x chunk x ring size), as a table;
//   4. tensor-parallel shard loads (8 ranks): row, column and mixed shards;
//   5. the optional paths: cudaHostRegister of the mapped file, pageable cudaMemcpy from
//      the mapping (what naive loaders do), and raw host read rates (pread vs mapping);
//   6. memory: peak RSS during a 2 GiB load against a 1/8 subset, and the pinned ring size;
//   7. cold page cache (posix_fadvise DONTNEED, else /proc/sys/vm/drop_caches; residency
//      checked with mincore): buffered and O_DIRECT loads against the raw O_DIRECT read rate
//      (this program's dd-like read, and dd's own figure when run.sh passes --dd-gbps).
// Then it writes OUTDIR/results.md and OUTDIR/results.json. A failing section is reported
// and the others still run; sections are skipped once the time budget (default 200 s) is spent.
#include <safetensors/cuda.hpp>
#include <safetensors/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace st = safetensors;
namespace cu = safetensors::cuda;
using json = nlohmann::ordered_json;

namespace {

constexpr std::size_t MiB = std::size_t{1} << 20;
constexpr double GB = 1e9;

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string fmt(const char* format, double v) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, format, v);
    return buffer;
}

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

// ---- The benchmark file ------------------------------------------------------------------------

// Layer i: "layers.i.weight" BF16 [4096, 4096] (32 MiB), then a norm and a bias of [4096],
// like a transformer checkpoint (the small ones exercise batching of tiny tensors).
void make_file(const std::string& path, std::size_t mib) {
    const std::uint64_t dim = 4096, weight = dim * dim * 2, small = dim * 2;
    const std::size_t layers = std::max<std::size_t>(1, mib * MiB / (weight + 2 * small));
    json header = json::object();
    std::uint64_t offset = 0;
    for (std::size_t i = 0; i < layers; ++i) {
        const std::string p = "layers." + std::to_string(i) + ".";
        header[p + "weight"] = {{"dtype", "BF16"}, {"shape", {dim, dim}}, {"data_offsets", {offset, offset + weight}}};
        offset += weight;
        header[p + "norm"] = {{"dtype", "BF16"}, {"shape", {dim}}, {"data_offsets", {offset, offset + small}}};
        offset += small;
        header[p + "bias"] = {{"dtype", "BF16"}, {"shape", {dim}}, {"data_offsets", {offset, offset + small}}};
        offset += small;
    }
    std::string text = header.dump();
    text.resize((text.size() + 7) / 8 * 8, ' ');
    // One pseudo-random pattern, read from a different place for every tensor, so a tensor
    // that lands in the wrong place on the device shows.
    std::vector<char> noise(weight + 64 * MiB);
    std::uint64_t x = 88172645463325252ull;
    for (std::size_t i = 0; i + 8 <= noise.size(); i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::memcpy(&noise[i], &x, 8);
    }
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot create " + path + ": " + std::strerror(errno));
    const auto put = [&](const void* data, std::size_t n) {
        const char* p = static_cast<const char*>(data);
        while (n > 0) {
            const ssize_t w = ::write(fd, p, n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) fail("cannot write " + path + ": " + std::strerror(errno));
            p += w;
            n -= static_cast<std::size_t>(w);
        }
    };
    unsigned char prefix[8];
    for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>((text.size() >> (8 * i)) & 0xff);
    put(prefix, 8);
    put(text.data(), text.size());
    for (std::size_t i = 0; i < layers; ++i) {
        const std::size_t shift = (i * 1048583) % (64 * MiB);
        put(noise.data() + shift, weight);
        put(noise.data() + shift / 3, 2 * small);
    }
    if (::fsync(fd) != 0) fail("fsync " + path + ": " + std::strerror(errno));
    ::close(fd);
    std::printf("wrote %s: %zu layers, %.3f GiB\n", path.c_str(), layers,
                static_cast<double>(8 + text.size() + offset) / (1 << 30));
}

// ---- Page cache control ------------------------------------------------------------------------

std::uint64_t file_size(const std::string& path) {
    struct stat s {};
    if (::stat(path.c_str(), &s) != 0) fail("stat " + path);
    return static_cast<std::uint64_t>(s.st_size);
}

// Fraction of the file's pages in the page cache (mincore over a mapping that is never touched).
double residency(const std::string& path) {
    const std::uint64_t size = file_size(path);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open " + path);
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) fail("mmap " + path);
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> v((size + page - 1) / page);
    const int rc = ::mincore(p, size, v.data());
    ::munmap(p, size);
    if (rc != 0) fail("mincore " + path);
    std::size_t in = 0;
    for (unsigned char c : v) in += c & 1;
    return static_cast<double>(in) / static_cast<double>(v.size());
}

// Empties the page cache of the file; returns the residency left and how.
std::pair<double, std::string> drop_cache(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open " + path);
    ::fdatasync(fd);  // dirty pages are not dropped
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    double left = residency(path);
    if (left < 0.01) return {left, "posix_fadvise(DONTNEED)"};
    ::sync();
    std::FILE* f = std::fopen("/proc/sys/vm/drop_caches", "w");
    if (f) {
        std::fputs("3\n", f);
        std::fclose(f);
    }
    left = residency(path);
    return {left, f ? "drop_caches" : "posix_fadvise(DONTNEED), drop_caches not writable"};
}

// Reads the whole file with 8 threads (buffered) so it is in the page cache.
// Skips the reading when every page is resident already: reading 2 GiB with 8 threads heats
// the CPUs just before the measurement that follows.
double warm_up(const std::string& path) {
    if (const double resident = residency(path); resident >= 0.999) return resident;
    const std::uint64_t size = file_size(path);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open " + path);
    std::atomic<std::uint64_t> next{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            std::vector<char> buffer(16 * MiB);
            for (std::uint64_t at; (at = next.fetch_add(buffer.size())) < size;)
                if (::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(at)) < 0) return;
        });
    for (auto& t : threads) t.join();
    ::close(fd);
    return residency(path);
}

// ---- Raw rates ---------------------------------------------------------------------------------

// What `dd if=FILE of=/dev/null iflag=direct bs=16M` does: one thread, 16 MiB O_DIRECT reads.
double raw_direct_read_gbps(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd < 0) fail(std::string("O_DIRECT open: ") + std::strerror(errno));
    void* buffer = nullptr;
    if (::posix_memalign(&buffer, 4096, 16 * MiB) != 0) fail("posix_memalign");
    const double t0 = now();
    std::uint64_t total = 0;
    for (;;) {
        const ssize_t got = ::pread(fd, buffer, 16 * MiB, static_cast<off_t>(total));
        if (got < 0) {
            std::free(buffer);
            ::close(fd);
            fail(std::string("O_DIRECT read: ") + std::strerror(errno));
        }
        if (got == 0) break;
        total += static_cast<std::uint64_t>(got);
    }
    const double t = now() - t0;
    std::free(buffer);
    ::close(fd);
    return static_cast<double>(total) / t / GB;
}

// Host side alone: `threads` threads copy the warm file into pinned buffers, by pread or by
// memcpy from a fresh mapping (which pays the page faults).
double host_read_gbps(const std::string& path, int threads, bool from_mapping) {
    const std::uint64_t size = file_size(path);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open " + path);
    std::vector<cu::unique_pinned> buffers;
    for (int t = 0; t < threads; ++t) buffers.push_back(cu::make_pinned(16 * MiB));
    const double t0 = now();
    const char* map = nullptr;
    if (from_mapping) {
        void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) fail("mmap");
        map = static_cast<const char*>(p);
    }
    std::atomic<std::uint64_t> next{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            char* out = static_cast<char*>(buffers[static_cast<std::size_t>(t)].get());
            for (std::uint64_t at; (at = next.fetch_add(16 * MiB)) < size;) {
                const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(16 * MiB, size - at));
                if (map)
                    std::memcpy(out, map + at, n);
                else if (::pread(fd, out, n, static_cast<off_t>(at)) < 0)
                    return;
            }
        });
    for (auto& t : pool) t.join();
    if (map) ::munmap(const_cast<char*>(map), size);
    const double t = now() - t0;
    ::close(fd);
    return static_cast<double>(size) / t / GB;
}

// Copies `total` bytes to dst as cudaMemcpyAsync calls of `piece` bytes, reading src cyclically
// (source_bytes long): best of 3 passes, timed with events on a fresh stream.
double timed_copies_gbps(void* dst, const char* src, std::size_t source_bytes, std::size_t total, std::size_t piece) {
    auto stream = cu::make_stream();
    auto start = cu::make_event(cudaEventDefault), stop = cu::make_event(cudaEventDefault);
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
        cu::check(cudaEventRecord(start.get(), stream.get()), "cudaEventRecord");
        for (std::size_t at = 0; at < total; at += piece)
            cu::check(cudaMemcpyAsync(static_cast<char*>(dst) + at, src + at % source_bytes, std::min(piece, total - at),
                                      cudaMemcpyHostToDevice, stream.get()),
                      "cudaMemcpyAsync");
        cu::check(cudaEventRecord(stop.get(), stream.get()), "cudaEventRecord");
        cu::check(cudaEventSynchronize(stop.get()), "cudaEventSynchronize");
        float ms = 0;
        cu::check(cudaEventElapsedTime(&ms, start.get(), stop.get()), "cudaEventElapsedTime");
        best = std::max(best, static_cast<double>(total) / (ms / 1e3) / GB);
    }
    return best;
}

// The host memory a copy to the device starts from.
enum class host_memory {
    pinned,           // cu::make_pinned: mapped, hinted for huge pages, cudaHostRegister'ed (the ring's kind)
    pinned_4k,        // posix_memalign + MADV_NOHUGEPAGE, cudaHostRegister'ed: small pages
    pinned_hostalloc, // cudaHostAlloc: the driver's own pinned allocation
    pageable,         // ordinary memory: the driver stages it
};

// Host memory to the device: `total` bytes as copies of `piece` bytes from a 256 MiB buffer,
// best of 3, timed with events.
double h2d_gbps(std::size_t total, std::size_t piece, host_memory kind) {
    const std::size_t source_bytes = 256 * MiB;
    cu::unique_pinned pinned_buffer;
    std::vector<char> pageable;
    void* raw = nullptr;  // pinned_4k (free + unregister) or pinned_hostalloc (cudaFreeHost)
    char* src = nullptr;
    switch (kind) {
    case host_memory::pinned:
        pinned_buffer = cu::make_pinned(source_bytes);
        src = static_cast<char*>(pinned_buffer.get());
        break;
    case host_memory::pinned_4k:
        if (::posix_memalign(&raw, 4096, source_bytes) != 0) fail("posix_memalign");
#ifdef MADV_NOHUGEPAGE
        ::madvise(raw, source_bytes, MADV_NOHUGEPAGE);
#endif
        if (const cudaError_t status = cudaHostRegister(raw, source_bytes, cudaHostRegisterPortable); status != cudaSuccess) {
            std::free(raw);
            cu::throw_cuda_error(status, "cudaHostRegister");
        }
        src = static_cast<char*>(raw);
        break;
    case host_memory::pinned_hostalloc:
        cu::check(cudaHostAlloc(&raw, source_bytes, cudaHostAllocPortable), "cudaHostAlloc");
        src = static_cast<char*>(raw);
        break;
    case host_memory::pageable:
        pageable.assign(source_bytes, 1);
        src = pageable.data();
        break;
    }
    std::memset(src, 1, source_bytes);
    double best = 0;
    try {
        auto dst = cu::make_device_memory(0, total);
        best = timed_copies_gbps(dst.get(), src, source_bytes, total, piece);
    } catch (...) {
        if (kind == host_memory::pinned_4k) (cudaHostUnregister(raw), std::free(raw));
        if (kind == host_memory::pinned_hostalloc) cudaFreeHost(raw);
        throw;
    }
    if (kind == host_memory::pinned_4k) (cudaHostUnregister(raw), std::free(raw));
    if (kind == host_memory::pinned_hostalloc) cudaFreeHost(raw);
    return best;
}

// What the copy engine reaches while `threads` host threads do the loader's host work (pread
// the warm file into 4 MiB buffers, over and over): pinned memory to the device in 4 MiB copies
// from a 64 MiB buffer (the ring's shape), best of 3 passes over `total` bytes, timed with
// events. Also returns the host threads' read rate meanwhile.
std::pair<double, double> h2d_while_reading(const std::string& path, std::size_t total, unsigned threads) {
    const std::uint64_t size = file_size(path);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open " + path);
    cu::unique_pinned ring = cu::make_pinned(64 * MiB);
    std::memset(ring.get(), 1, 64 * MiB);
    auto dst = cu::make_device_memory(0, total);
    std::atomic<bool> done{false};
    std::atomic<std::uint64_t> read_bytes{0};
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            std::vector<char> buffer(4 * MiB);
            std::uint64_t at = (size / threads) * t / (4 * MiB) * (4 * MiB);
            while (!done.load(std::memory_order_relaxed)) {
                if (at + buffer.size() > size) at = 0;
                if (::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(at)) <= 0) break;
                read_bytes.fetch_add(buffer.size(), std::memory_order_relaxed);
                at += buffer.size();
            }
        });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the readers are running
    const double t0 = now();
    const std::uint64_t r0 = read_bytes.load();
    const double best = timed_copies_gbps(dst.get(), static_cast<const char*>(ring.get()), 64 * MiB, total, 4 * MiB);
    const double host_rate = static_cast<double>(read_bytes.load() - r0) / (now() - t0) / GB;
    done = true;
    for (auto& t : pool) t.join();
    ::close(fd);
    return {best, host_rate};
}

// kB of anonymous memory in huge pages, process-wide (/proc/self/smaps_rollup); -1 if unknown.
long anon_huge_kib() {
    std::ifstream in("/proc/self/smaps_rollup");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("AnonHugePages:", 0) == 0) return std::strtol(line.c_str() + 14, nullptr, 10);
    return -1;
}

// ---- Loader measurements -----------------------------------------------------------------------

struct timing {
    double best = 0, median = 0;  // seconds
    cu::load_stats stats;
};

// loader.load_file(path), timed from the call (the open) to its return (the last copy done:
// load_file synchronizes); the device memory is freed after the clock stops.
timing time_loads(cu::loader& gpu, const std::string& path, int reps) {
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        const double t0 = now();
        st::device_tensor_map m = gpu.load_file(path);
        t.push_back(now() - t0);
    }
    std::sort(t.begin(), t.end());
    return {t.front(), t[t.size() / 2], gpu.last_stats()};
}

// Copies every tensor back and compares it with the file, 64 MiB at a time.
bool verify(const st::device_tensor_map& m, const std::string& path) {
    const st::file f = st::open(path);
    std::vector<std::byte> host(64 * MiB), device(64 * MiB);
    for (const auto& v : f) {
        const st::device_tensor& d = m.at(std::string(v.name()));
        for (std::uint64_t at = 0; at < v.byte_size(); at += host.size()) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(host.size(), v.byte_size() - at));
            v.read_bytes(at, host.data(), n);
            cu::check(cudaMemcpy(device.data(), static_cast<const char*>(d.data) + at, n, cudaMemcpyDeviceToHost),
                      "cudaMemcpy");
            if (std::memcmp(host.data(), device.data(), n) != 0) return false;
        }
    }
    return true;
}

std::size_t rss_kib(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field, 0) == 0) return std::strtoull(line.c_str() + std::strlen(field), nullptr, 10);
    return 0;
}

// Peak RSS while f() runs: "5" in /proc/self/clear_refs resets the peak (VmHWM) to the
// current RSS. 0 where the kernel does not offer that.
std::size_t peak_rss_kib_during(const std::function<void()>& f) {
    bool reset = false;
    if (std::FILE* c = std::fopen("/proc/self/clear_refs", "w")) {
        reset = std::fputs("5", c) >= 0;
        reset = std::fclose(c) == 0 && reset;
    }
    f();
    return reset ? rss_kib("VmHWM:") : 0;
}

// ---- Report ------------------------------------------------------------------------------------

struct report {
    json j = json::object();
    std::string md;

    void line(const std::string& text) {
        std::printf("%s\n", text.c_str());
        std::fflush(stdout);
    }
    void section(const std::string& title) {
        line("\n== " + title);
        md += "\n## " + title + "\n\n";
    }
    // One figure: printed, a row of the current markdown table, and a JSON value.
    void figure(const std::string& label, const std::string& value, const std::string& note = "") {
        line("  " + label + ": " + value + (note.empty() ? "" : "  (" + note + ")"));
        md += "| " + label + " | " + value + " | " + note + " |\n";
    }
    void table_head() { md += "| measure | value | note |\n|---|---|---|\n"; }
    void error(const std::string& where, const std::string& what) {
        line("  ERROR in " + where + ": " + what);
        md += "\n**ERROR in " + where + ":** " + what + "\n";
        j["errors"].push_back(where + ": " + what);
    }
};

int run_all(const std::string& path, const std::string& outdir, double dd_gbps, double budget);

} // namespace

int main(int argc, char** argv) {
    if (argc >= 3 && std::string(argv[1]) == "make") {
        std::size_t mib = 2048;
        for (int i = 3; i + 1 < argc; i += 2)
            if (std::string(argv[i]) == "--mib") mib = std::strtoull(argv[i + 1], nullptr, 10);
        try {
            make_file(argv[2], mib);
            return 0;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "error: %s\n", e.what());
            return 1;
        }
    }
    if (argc < 4 || std::string(argv[1]) != "run") {
        std::fprintf(stderr, "usage: %s make FILE [--mib N]\n       %s run FILE OUTDIR [--dd-gbps X] [--budget-s S]\n",
                     argv[0], argv[0]);
        return 2;
    }
    const std::string path = argv[2], outdir = argv[3];
    double dd_gbps = 0, budget = 200;
    for (int i = 4; i + 1 < argc; i += 2) {
        if (std::string(argv[i]) == "--dd-gbps") dd_gbps = std::strtod(argv[i + 1], nullptr);
        if (std::string(argv[i]) == "--budget-s") budget = std::strtod(argv[i + 1], nullptr);
    }
    try {
        return run_all(path, outdir, dd_gbps, budget);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}

namespace {

int run_all(const std::string& path, const std::string& outdir, double dd_gbps, double budget) {
    const double started = now();
    const auto time_left = [&] { return budget - (now() - started); };
    report r;
    r.md = "# safetensors-hpp CUDA loader benchmark\n";
    json& j = r.j;
    const std::uint64_t size = file_size(path);
    const cu::loader_options defaults;
    const auto run = [&](const std::string& where, const std::function<void()>& f) {
        try {
            f();
        } catch (const std::exception& e) {
            r.error(where, e.what());
        }
    };

    double pinned_gbps = 0;
    run("setup", [&] {
        r.section("Machine");
        r.table_head();
        cudaDeviceProp prop{};
        cu::check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
        cu::check(cudaFree(nullptr), "cudaFree(0) (context creation)");  // not timed below
        int driver = 0, runtime = 0;
        cudaDriverGetVersion(&driver);
        cudaRuntimeGetVersion(&runtime);
        utsname u{};
        ::uname(&u);
        struct statfs fs {};
        ::statfs(path.c_str(), &fs);
        char fs_type[32];
        std::snprintf(fs_type, sizeof fs_type, "0x%lx", static_cast<unsigned long>(fs.f_type));
        r.figure("device 0", prop.name, "sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
                                            fmt("%.1f GiB", static_cast<double>(prop.totalGlobalMem) / (1 << 30)));
        r.figure("CUDA driver / runtime", std::to_string(driver) + " / " + std::to_string(runtime));
        r.figure("host", std::string(u.release) + ", " + std::to_string(std::thread::hardware_concurrency()) + " threads");
        r.figure("file", path, fmt("%.3f GiB", static_cast<double>(size) / (1 << 30)) + ", file system " + fs_type);
        j["device"] = {{"name", prop.name},
                       {"cc", std::to_string(prop.major) + "." + std::to_string(prop.minor)},
                       {"driver", driver},
                       {"runtime", runtime},
                       {"host_threads", std::thread::hardware_concurrency()},
                       {"kernel", u.release}};
        j["file"] = {{"path", path}, {"bytes", size}, {"fs_type", fs_type}};
    });

    run("pinned bandwidth", [&] {
        r.section("1. Host-to-device bandwidth (the limit)");
        r.table_head();
        const double big = h2d_gbps(static_cast<std::size_t>(size), 256 * MiB, host_memory::pinned);
        const double chunked = h2d_gbps(static_cast<std::size_t>(size), 8 * MiB, host_memory::pinned);
        const double small = h2d_gbps(static_cast<std::size_t>(size), 4 * MiB, host_memory::pinned);
        const double small_pages = h2d_gbps(static_cast<std::size_t>(size), 256 * MiB, host_memory::pinned_4k);
        const double host_alloc = h2d_gbps(static_cast<std::size_t>(size), 256 * MiB, host_memory::pinned_hostalloc);
        const double pageable = h2d_gbps(static_cast<std::size_t>(size), 256 * MiB, host_memory::pageable);
        // The limit is the best any pinned memory reaches, whichever kind the loader uses.
        pinned_gbps = std::max({big, chunked, small, small_pages, host_alloc});
        r.figure("pinned cudaMemcpyAsync, 256 MiB copies", fmt("%.2f GB/s", big), "make_pinned: registered, huge-page hint");
        r.figure("pinned cudaMemcpyAsync, 8 MiB copies", fmt("%.2f GB/s", chunked));
        r.figure("pinned cudaMemcpyAsync, 4 MiB copies", fmt("%.2f GB/s", small));
        r.figure("pinned, 4 KiB pages (MADV_NOHUGEPAGE), 256 MiB copies", fmt("%.2f GB/s", small_pages));
        r.figure("pinned, cudaHostAlloc, 256 MiB copies", fmt("%.2f GB/s", host_alloc));
        r.figure("pageable cudaMemcpyAsync, 256 MiB copies", fmt("%.2f GB/s", pageable), "context only");
        r.figure("the limit: best pinned figure", fmt("%.2f GB/s", pinned_gbps));
        // The same copy engine while the host does what the loader's readers do: how much of
        // the limit the host's memory system leaves to the DMA under that load.
        warm_up(path);
        json contended = json::array();
        for (unsigned threads : {8u, 12u}) {
            const auto [dma, host] = h2d_while_reading(path, static_cast<std::size_t>(size), threads);
            r.figure("pinned, 4 MiB copies, while " + std::to_string(threads) + " threads pread the warm file",
                     fmt("%.2f GB/s", dma), fmt("%.3f of the limit; ", pinned_gbps > 0 ? dma / pinned_gbps : 0) +
                                                fmt("the readers meanwhile: %.1f GB/s", host));
            contended.push_back({{"reader_threads", threads}, {"dma_gbps", dma}, {"host_read_gbps", host}});
        }
        j["pinned_h2d_while_reading"] = contended;
        j["pinned_h2d_gbps"] = pinned_gbps;
        j["pinned_h2d_gbps_256mib_copies"] = big;
        j["pinned_h2d_gbps_8mib_copies"] = chunked;
        j["pinned_h2d_gbps_4mib_copies"] = small;
        j["pinned_h2d_gbps_4k_pages"] = small_pages;
        j["pinned_h2d_gbps_cudahostalloc"] = host_alloc;
        j["pageable_h2d_gbps"] = pageable;
    });

    const auto describe = [](const cu::loader_options& o) {
        return std::to_string(o.threads) + " threads, " + std::to_string(o.chunk_bytes / MiB) + " MiB chunks, " +
               std::to_string(o.staging_bytes / MiB) + " MiB ring, " + (o.blocking_wait ? "blocking" : "spinning") +
               " waits";
    };
    const auto gbps_of = [](const timing& t, double seconds) { return static_cast<double>(t.stats.bytes) / seconds / GB; };

    std::vector<json> sweep;
    run("warm load", [&] {
        r.section("2. Warm page cache: file to GPU, default engine");
        r.table_head();
        const double resident = warm_up(path);
        const long huge_before = anon_huge_kib();
        const double t0 = now();
        cu::loader gpu(0, defaults);
        const double setup = now() - t0;
        const long huge_ring = huge_before >= 0 ? anon_huge_kib() - huge_before : -1;
        // Straight after the work before (the pinned-bandwidth runs, the loader's setup), then
        // the headline after a pause of 1 s: runs straight after heavy work were consistently a
        // few percent slower on these virtual machines (see bench/cuda/README.md).
        const timing straight = time_loads(gpu, path, 7);
        std::this_thread::sleep_for(std::chrono::seconds(1));
        const timing t = time_loads(gpu, path, 7);
        const double gbps = gbps_of(t, t.best);
        const double median = gbps_of(t, t.median);
        const double ratio = pinned_gbps > 0 ? gbps / pinned_gbps : 0;
        const double t1 = now();
        { st::device_tensor_map m = cu::load_file(path, 0); }
        const double one_shot = now() - t1;
        st::device_tensor_map m = gpu.load_file(path);
        const cu::load_stats last = gpu.last_stats();
        const bool ok = verify(m, path);
        m.clear();
        // Where the time of a load goes, besides the transfer: the open (header) and the arena.
        std::vector<double> opens, allocs;
        for (int i = 0; i < 5; ++i) {
            double a = now();
            { const st::file f = st::open(path); }
            opens.push_back(now() - a);
            a = now();
            { auto arena = cu::make_device_memory(0, static_cast<std::size_t>(t.stats.device_bytes)); allocs.push_back(now() - a); }
        }
        std::sort(opens.begin(), opens.end());
        std::sort(allocs.begin(), allocs.end());
        const auto& o = gpu.options();
        r.figure("page cache residency before", fmt("%.1f %%", 100 * resident));
        r.figure("engine (the defaults)", describe(o));
        r.figure("loader setup (pinned ring, stream, events)", fmt("%.1f ms", setup * 1e3), "once per loader");
        r.figure("pinned ring in huge pages", huge_ring >= 0 ? std::to_string(huge_ring / 1024) + " MiB" : "unknown",
                 "AnonHugePages growth over the loader's construction");
        r.figure("warm load, best of 7 (after a 1 s pause)", fmt("%.2f GB/s", gbps), fmt("%.1f ms", t.best * 1e3) + ", open to last copy");
        r.figure("warm load, median of 7", fmt("%.2f GB/s", median), fmt("%.1f ms", t.median * 1e3));
        r.figure("ratio to pinned bandwidth", fmt("%.3f", ratio), std::string("target >= 0.9: ") + (ratio >= 0.9 ? "PASS" : "FAIL"));
        r.figure("without the pause: best / median of 7",
                 fmt("%.2f GB/s", gbps_of(straight, straight.best)) + " / " + fmt("%.2f GB/s", gbps_of(straight, straight.median)),
                 fmt("%.3f x pinned (best)", pinned_gbps > 0 ? gbps_of(straight, straight.best) / pinned_gbps : 0));
        r.figure("one-shot cuda::load_file (loader setup included)",
                 fmt("%.2f GB/s", static_cast<double>(t.stats.bytes) / one_shot / GB), fmt("%.1f ms", one_shot * 1e3));
        r.figure("of which: open (header)", fmt("%.2f ms", opens[2] * 1e3), "median of 5");
        r.figure("of which: cudaMalloc of the arena", fmt("%.2f ms", allocs[2] * 1e3), "median of 5; overlaps the first reads");
        r.figure("bytes on the device equal the file", ok ? "yes" : "NO");
        r.figure("reads / copies / chunks", std::to_string(t.stats.reads) + " / " + std::to_string(t.stats.copies) + " / " +
                                              std::to_string(t.stats.chunks));
        r.figure("one load, summed over readers: reading / waiting for a slot",
                 fmt("%.1f ms", last.read_seconds * 1e3) + " / " + fmt("%.1f ms", last.slot_wait_seconds * 1e3),
                 fmt("load %.1f ms", last.seconds * 1e3) + fmt(", issuing thread waited %.1f ms for filled slots", last.issue_wait_seconds * 1e3));
        j["warm"] = {{"gbps_best", gbps},           {"gbps_median", median},    {"seconds_best", t.best},
                     {"ratio_to_pinned", ratio},    {"target_ratio", 0.9},      {"pass", ratio >= 0.9},
                     {"loader_setup_ms", setup * 1e3}, {"one_shot_gbps", static_cast<double>(t.stats.bytes) / one_shot / GB},
                     {"verified", ok},              {"reads", t.stats.reads},    {"copies", t.stats.copies},
                     {"open_ms", opens[2] * 1e3},   {"arena_malloc_ms", allocs[2] * 1e3},
                     {"chunks", t.stats.chunks},    {"threads", o.threads},      {"chunk_mib", o.chunk_bytes / MiB},
                     {"ring_mib", o.staging_bytes / MiB}, {"blocking_wait", o.blocking_wait},
                     {"ring_huge_kib", huge_ring},
                     {"without_pause_gbps_best", gbps_of(straight, straight.best)},
                     {"without_pause_gbps_median", gbps_of(straight, straight.median)},
                     {"last_load", {{"seconds", last.seconds}, {"read_seconds", last.read_seconds},
                                    {"slot_wait_seconds", last.slot_wait_seconds},
                                    {"issue_wait_seconds", last.issue_wait_seconds}}}};
    });

    // Loaders alive side by side, one load each in turn: the defaults, a second loader with the
    // same options, and the other wait mode. Interleaving takes the process's history (what
    // ran just before) out of the comparison.
    run("interleaved", [&] {
        r.section("2b. Warm, interleaved: loaders side by side, one load each in turn (7 rounds)");
        r.md += "| loader | best GB/s | median GB/s | x pinned (best) | read ms | slot wait ms | issue wait ms |\n"
                "|---|---|---|---|---|---|---|\n";
        warm_up(path);
        cu::loader_options other_wait = defaults, more_threads = defaults;
        other_wait.blocking_wait = !defaults.blocking_wait;
        more_threads.threads = defaults.threads + 4;
        std::vector<std::pair<std::string, std::unique_ptr<cu::loader>>> loaders;
        loaders.emplace_back("defaults", std::make_unique<cu::loader>(0, defaults));
        loaders.emplace_back("defaults, second loader", std::make_unique<cu::loader>(0, defaults));
        loaders.emplace_back(std::string("defaults, ") + (other_wait.blocking_wait ? "blocking" : "spinning") + " waits",
                             std::make_unique<cu::loader>(0, other_wait));
        loaders.emplace_back("defaults, " + std::to_string(more_threads.threads) + " threads",
                             std::make_unique<cu::loader>(0, more_threads));
        std::vector<std::vector<double>> times(loaders.size());
        std::vector<cu::load_stats> stats(loaders.size());
        for (int round = 0; round < 7; ++round)
            for (std::size_t i = 0; i < loaders.size(); ++i) {
                const double t0 = now();
                { st::device_tensor_map m = loaders[i].second->load_file(path); }
                times[i].push_back(now() - t0);
                stats[i] = loaders[i].second->last_stats();
            }
        json rows = json::array();
        for (std::size_t i = 0; i < loaders.size(); ++i) {
            std::sort(times[i].begin(), times[i].end());
            const double b = static_cast<double>(stats[i].bytes) / times[i].front() / GB;
            const double med = static_cast<double>(stats[i].bytes) / times[i][times[i].size() / 2] / GB;
            const double x = pinned_gbps > 0 ? b / pinned_gbps : 0;
            char row[200];
            std::snprintf(row, sizeof row, "  %-40s best %6.2f GB/s  median %6.2f GB/s  x%.3f", loaders[i].first.c_str(), b, med, x);
            r.line(row);
            r.md += "| " + loaders[i].first + " | " + fmt("%.2f", b) + " | " + fmt("%.2f", med) + " | " + fmt("%.3f", x) + " | " +
                    fmt("%.1f", stats[i].read_seconds * 1e3) + " | " + fmt("%.1f", stats[i].slot_wait_seconds * 1e3) + " | " +
                    fmt("%.1f", stats[i].issue_wait_seconds * 1e3) + " |\n";
            rows.push_back({{"loader", loaders[i].first}, {"gbps_best", b}, {"gbps_median", med}, {"ratio_to_pinned", x}});
        }
        j["interleaved"] = rows;
    });

    run("sweep", [&] {
        // Every combination, in a shuffled (fixed) order so that no setting always follows another.
        const char* grid = std::getenv("SAFETENSORS_BENCH_SWEEP");
        const bool short_grid = grid && std::string(grid) == "short";
        std::vector<cu::loader_options> settings;
        for (std::size_t ring : short_grid ? std::vector<std::size_t>{64} : std::vector<std::size_t>{32, 64, 128})
            for (std::size_t chunk : {2, 4})
                for (unsigned threads : short_grid ? std::vector<unsigned>{8, 12} : std::vector<unsigned>{8, 12, 16})
                    for (bool blocking : {false, true}) {
                        cu::loader_options o;
                        o.threads = threads;
                        o.chunk_bytes = chunk * MiB;
                        o.staging_bytes = ring * MiB;
                        o.blocking_wait = blocking;
                        settings.push_back(o);
                    }
        std::mt19937 shuffle_rng(42);
        std::shuffle(settings.begin(), settings.end(), shuffle_rng);
        r.section("3. Engine settings sweep (warm, best of 5 loads each, " + std::to_string(settings.size()) +
                  " settings run in a shuffled order, listed best first)");
        warm_up(path);
        for (const cu::loader_options& o : settings) {
            if (time_left() < 90) {
                r.line("  (sweep cut short: time budget)");
                break;
            }
            run("sweep " + describe(o), [&] {
                const double t0 = now();
                cu::loader gpu(0, o);
                const double setup = now() - t0;
                const timing t = time_loads(gpu, path, 5);
                const double gbps = gbps_of(t, t.best);
                sweep.push_back({{"threads", o.threads},
                                 {"chunk_mib", gpu.options().chunk_bytes / MiB},
                                 {"ring_mib", gpu.options().staging_bytes / MiB},
                                 {"blocking_wait", o.blocking_wait},
                                 {"setup_ms", setup * 1e3},
                                 {"gbps", gbps},
                                 {"ratio_to_pinned", pinned_gbps > 0 ? gbps / pinned_gbps : 0},
                                 {"read_ms", t.stats.read_seconds * 1e3},
                                 {"slot_wait_ms", t.stats.slot_wait_seconds * 1e3},
                                 {"issue_wait_ms", t.stats.issue_wait_seconds * 1e3}});
                r.line("  " + describe(gpu.options()) + fmt(": %.2f GB/s", gbps));
            });
        }
        std::vector<json> sorted = sweep;
        std::stable_sort(sorted.begin(), sorted.end(),
                         [](const json& a, const json& b) { return a["gbps"].get<double>() > b["gbps"].get<double>(); });
        r.md += "| threads | chunk MiB | ring MiB | waits | setup ms | GB/s | x pinned | read ms | slot wait ms | issue wait ms |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n";
        for (const json& row : sorted)
            r.md += "| " + row["threads"].dump() + " | " + row["chunk_mib"].dump() + " | " + row["ring_mib"].dump() + " | " +
                    (row["blocking_wait"].get<bool>() ? "blocking" : "spinning") + " | " +
                    fmt("%.1f", row["setup_ms"].get<double>()) + " | " + fmt("%.2f", row["gbps"].get<double>()) + " | " +
                    fmt("%.3f", row["ratio_to_pinned"].get<double>()) + " | " + fmt("%.1f", row["read_ms"].get<double>()) +
                    " | " + fmt("%.1f", row["slot_wait_ms"].get<double>()) + " | " +
                    fmt("%.1f", row["issue_wait_ms"].get<double>()) + " |\n";
    });
    j["sweep"] = sweep;
    if (!sweep.empty()) {
        const auto best = *std::max_element(sweep.begin(), sweep.end(), [](const json& a, const json& b) {
            return a["gbps"].get<double>() < b["gbps"].get<double>();
        });
        r.line("  best: " + best.dump());
        r.md += "\nBest: " + best.dump() + "\n";
        j["sweep_best"] = best;
    }

    // The same measurement as section 2, repeated after the sweep: shows whether the headline
    // figure depends on when in the process it is taken.
    run("warm load again", [&] {
        r.section("3b. Warm page cache, default engine again, after the sweep");
        r.table_head();
        warm_up(path);
        cu::loader gpu(0, defaults);
        std::this_thread::sleep_for(std::chrono::seconds(1));
        const timing t = time_loads(gpu, path, 7);
        const double gbps = gbps_of(t, t.best);
        const double ratio = pinned_gbps > 0 ? gbps / pinned_gbps : 0;
        r.figure("warm load again, best of 7 (after a 1 s pause)", fmt("%.2f GB/s", gbps), fmt("%.1f ms", t.best * 1e3));
        r.figure("warm load again, median of 7", fmt("%.2f GB/s", gbps_of(t, t.median)), fmt("%.1f ms", t.median * 1e3));
        r.figure("ratio to pinned bandwidth, again", fmt("%.3f", ratio),
                 std::string("target >= 0.9: ") + (ratio >= 0.9 ? "PASS" : "FAIL"));
        j["warm_again"] = {{"gbps_best", gbps}, {"ratio_to_pinned", ratio}, {"seconds_best", t.best}, {"seconds_median", t.median}};
    });

    run("tensor parallel", [&] {
        if (time_left() < 55) return r.line("  (tensor parallel skipped: time budget)");
        r.section("4. Tensor-parallel shard loads (warm, world size 8, every rank on device 0)");
        r.md += "| shards | read_gap | shard GB | read GB | reads | copies | s for 8 ranks | shard GB/s |\n"
                "|---|---|---|---|---|---|---|---|\n";
        const st::file f = st::open(path);
        struct variant {
            const char* name;
            int mode;  // 0 rows, 1 columns, 2 alternating (Megatron: column- then row-parallel)
            std::size_t gap;
        };
        std::vector<json> rows;
        for (const variant& v : {variant{"rows (dim 0)", 0, 0}, variant{"columns (dim 1)", 1, 0},
                                 variant{"columns (dim 1)", 1, 64 * 1024}, variant{"alternating", 2, 0},
                                 variant{"alternating", 2, 64 * 1024}}) run(std::string("tensor parallel, ") + v.name, [&] {
            std::vector<cu::split_request> requests;
            int i = 0;
            for (const auto& t : f) {
                const std::string name(t.name());
                if (t.rank() == 2)
                    requests.push_back({name, v.mode == 2 ? (i++ % 2) : v.mode});
                else
                    requests.push_back({name, std::nullopt});  // norms and biases: replicated
            }
            cu::loader_options o;
            o.read_gap = v.gap;
            cu::loader gpu(0, o);
            std::uint64_t bytes = 0, read = 0;
            std::size_t reads = 0, copies = 0;
            bool ok = true;
            const double t0 = now();
            for (std::uint64_t rank = 0; rank < 8; ++rank) {
                st::device_tensor_map m = gpu.load_file_parts(path, requests, rank, 8);
                const cu::load_stats s = gpu.last_stats();
                bytes += s.bytes;
                read += s.read_bytes;
                reads += s.reads;
                copies += s.copies;
                if (rank == 3) {  // spot check: the first matrix's shard against the host's
                    const auto& d = m.at(requests[0].name);
                    const st::tensor_slice sl = f.tensor(requests[0].name).split(*requests[0].dim, rank, 8);
                    std::vector<std::byte> host(static_cast<std::size_t>(sl.byte_size())), dev(host.size());
                    sl.copy_to(host.data(), host.size());
                    cu::check(cudaMemcpy(dev.data(), d.data, dev.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
                    ok = ok && host == dev;
                }
            }
            const double t = now() - t0;
            const double gbps = static_cast<double>(bytes) / t / GB;
            char line[200];
            std::snprintf(line, sizeof line, "  %-16s gap %6zu: %.2f GB shards, %.2f GB read, %zu reads, %zu copies, %.1f ms, %.2f GB/s%s",
                          v.name, v.gap, static_cast<double>(bytes) / GB, static_cast<double>(read) / GB, reads, copies,
                          t * 1e3, gbps, ok ? "" : "  MISMATCH");
            r.line(line);
            r.md += std::string("| ") + v.name + " | " + std::to_string(v.gap) + " | " + fmt("%.3f", static_cast<double>(bytes) / GB) +
                    " | " + fmt("%.3f", static_cast<double>(read) / GB) + " | " + std::to_string(reads) + " | " +
                    std::to_string(copies) + " | " + fmt("%.3f", t) + " | " + fmt("%.2f", gbps) + (ok ? "" : " MISMATCH") + " |\n";
            rows.push_back({{"shards", v.name}, {"read_gap", v.gap}, {"shard_bytes", bytes}, {"read_bytes", read},
                            {"reads", reads}, {"copies", copies}, {"seconds", t}, {"gbps", gbps}, {"verified", ok}});
        });
        j["tensor_parallel"] = rows;
    });

    run("optional paths", [&] {
        if (time_left() < 40) return r.line("  (optional paths skipped: time budget)");
        r.section("5. Other paths, for comparison (warm)");
        r.table_head();
        warm_up(path);
        json o = json::object();
        // cudaHostRegister of the mapped file, then one DMA straight from the page cache.
        run("cudaHostRegister of the mapping", [&] {
            int read_only = 0;
            cudaDeviceGetAttribute(&read_only, cudaDevAttrHostRegisterReadOnlySupported, 0);
            const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            auto dst = cu::make_device_memory(0, static_cast<std::size_t>(size));
            const double t0 = now();
            void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
            if (fd < 0 || p == MAP_FAILED) fail("cannot map " + path);
            const double t1 = now();
            const cudaError_t reg = cudaHostRegister(p, size, read_only ? cudaHostRegisterReadOnly : cudaHostRegisterDefault);
            const double t2 = now();
            if (reg == cudaSuccess) {
                cu::check(cudaMemcpy(dst.get(), p, size, cudaMemcpyHostToDevice), "cudaMemcpy");
                const double t3 = now();
                cudaHostUnregister(p);
                const double t4 = now();
                r.figure("cudaHostRegister(mapping) + one DMA", fmt("%.2f GB/s", static_cast<double>(size) / (t4 - t0) / GB),
                         "mmap " + fmt("%.1f", (t1 - t0) * 1e3) + " ms, register " + fmt("%.1f", (t2 - t1) * 1e3) +
                             " ms, copy " + fmt("%.1f", (t3 - t2) * 1e3) + " ms, unregister " + fmt("%.1f", (t4 - t3) * 1e3) + " ms");
                o["host_register"] = {{"gbps", static_cast<double>(size) / (t4 - t0) / GB}, {"register_ms", (t2 - t1) * 1e3},
                                      {"copy_ms", (t3 - t2) * 1e3}, {"unregister_ms", (t4 - t3) * 1e3}};
            } else {
                (void)cudaGetLastError();
                r.figure("cudaHostRegister(mapping)", std::string("failed: ") + cudaGetErrorName(reg));
            }
            ::munmap(p, size);
            ::close(fd);
        });
        // What naive loaders do: cudaMemcpy from a fresh mapping (pageable, staged by the driver).
        run("pageable copy from the mapping", [&] {
            const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            auto dst = cu::make_device_memory(0, static_cast<std::size_t>(size));
            const double t5 = now();
            void* q = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
            if (fd < 0 || q == MAP_FAILED) fail("cannot map " + path);
            cu::check(cudaMemcpy(dst.get(), q, size, cudaMemcpyHostToDevice), "cudaMemcpy");
            const double t6 = now();
            ::munmap(q, size);
            ::close(fd);
            r.figure("pageable cudaMemcpy from a fresh mapping", fmt("%.2f GB/s", static_cast<double>(size) / (t6 - t5) / GB),
                     "naive loader");
            o["pageable_from_mapping_gbps"] = static_cast<double>(size) / (t6 - t5) / GB;
        });
        for (int threads : {1, 8, 16}) run("host read rates", [&] {
            const double pread_rate = host_read_gbps(path, threads, false);
            const double map_rate = host_read_gbps(path, threads, true);
            r.figure("host only, " + std::to_string(threads) + " threads: pread to pinned", fmt("%.2f GB/s", pread_rate));
            r.figure("host only, " + std::to_string(threads) + " threads: memcpy from fresh mapping", fmt("%.2f GB/s", map_rate),
                     "page faults included");
            o["host_pread_gbps_" + std::to_string(threads)] = pread_rate;
            o["host_mapping_gbps_" + std::to_string(threads)] = map_rate;
        });
        j["other_paths"] = o;
    });

    run("memory", [&] {
        r.section("6. Memory");
        r.table_head();
        warm_up(path);
        cu::loader gpu(0, defaults);
        const st::file f = st::open(path);
        std::vector<std::string> eighth;
        std::size_t i = 0;
        for (const auto& t : f)
            if (i++ % 8 == 0) eighth.push_back(std::string(t.name()));
        const std::size_t before = rss_kib("VmRSS:");
        const std::size_t full = peak_rss_kib_during([&] { st::device_tensor_map m = gpu.load_file(path); });
        const std::size_t part = peak_rss_kib_during([&] { st::device_tensor_map m = gpu.load_file(path, eighth); });
        rusage u{};
        ::getrusage(RUSAGE_SELF, &u);
        r.figure("pinned staging ring", std::to_string(gpu.options().staging_bytes / MiB) + " MiB",
                 "fixed per loader, whatever the file size");
        r.figure("RSS before the loads", std::to_string(before / 1024) + " MiB", "includes the pinned ring");
        const auto mib = [](std::size_t kib) { return kib ? std::to_string(kib / 1024) + " MiB" : std::string("n/a"); };
        r.figure("peak RSS during a full load", mib(full), fmt("%.2f GiB file", static_cast<double>(size) / (1 << 30)));
        r.figure("peak RSS during a 1/8 subset load", mib(part), "equal to the full load's: no growth with size");
        r.figure("getrusage maxrss (whole run)", std::to_string(static_cast<long>(u.ru_maxrss) / 1024) + " MiB",
                 "includes the benchmark's own 256 MiB buffers");
        j["memory"] = {{"pinned_ring_bytes", gpu.options().staging_bytes},
                       {"rss_before_kib", before},
                       {"peak_rss_full_load_kib", full},
                       {"peak_rss_eighth_load_kib", part},
                       {"maxrss_kib", u.ru_maxrss},
                       {"staging_grows_with_file", full == 0 ? json() : json(full > part + 64 * 1024)}};
    });

    run("cold", [&] {
        if (time_left() < 20) return r.line("  (cold runs skipped: time budget)");
        r.section("7. Cold page cache");
        r.table_head();
        json c = json::object();
        // One measurement from an empty page cache; a failure is recorded and the next runs.
        // f returns GB/s and a note (for loads: whether O_DIRECT was in effect).
        const auto cold = [&](const std::string& label, const std::function<std::pair<double, std::string>()>& f) {
            try {
                const auto [left, how] = drop_cache(path);
                const auto [gbps, note] = f();
                r.figure(label, fmt("%.2f GB/s", gbps), fmt("%.1f %% resident before, ", 100 * left) + how + note);
                c[label] = {{"gbps", gbps}, {"resident_before", left}};
                return gbps;
            } catch (const std::exception& e) {
                r.figure(label, std::string("failed: ") + e.what());
                c[label] = {{"error", e.what()}};
                return 0.0;
            }
        };
        if (dd_gbps > 0) r.figure("dd iflag=direct bs=16M (run.sh, earlier)", fmt("%.2f GB/s", dd_gbps), "context: the disk's rate varies");
        const auto load = [&](const cu::loader_options& o) {
            return [&path, o] {
                cu::loader gpu(0, o);
                const double t0 = now();
                st::device_tensor_map m = gpu.load_file(path);
                const double gbps = static_cast<double>(gpu.last_stats().bytes) / (now() - t0) / GB;
                return std::make_pair(gbps, std::string(gpu.last_stats().direct_io ? ", O_DIRECT" : ", buffered"));
            };
        };
        // The raw rate and the loader in turn, three times: the disk's rate drifts, so each
        // load is compared with raw reads taken right around it.
        cu::loader_options direct = defaults;
        direct.direct_io = true;
        double raw = 0, best = 0;
        for (int round = 1; round <= 3; ++round) {
            const std::string n = " (" + std::to_string(round) + ")";
            raw = std::max(raw, cold("raw O_DIRECT read, 1 thread, 16 MiB (dd-like)" + n,
                                     [&] { return std::make_pair(raw_direct_read_gbps(path), std::string()); }));
            best = std::max(best, cold("loader, O_DIRECT, defaults" + n, load(direct)));
        }
        const double reference = raw;
        best = std::max(best, cold("loader, buffered, defaults", load(defaults)));
        for (unsigned threads : {16u}) {
            if (time_left() < 10) break;
            cu::loader_options o = direct;
            o.threads = threads;
            o.chunk_bytes = 16 * MiB;
            o.staging_bytes = 256 * MiB;
            best = std::max(best, cold("loader, O_DIRECT, " + std::to_string(threads) + " threads, 16 MiB chunks", load(o)));
        }
        if (time_left() > 10) {
            cu::loader_options o = defaults;
            o.threads = 16;
            best = std::max(best, cold("loader, buffered, 16 threads", load(o)));
        }
        const double ratio = reference > 0 ? best / reference : 0;
        r.figure("best cold load / best raw direct read", fmt("%.3f", ratio), std::string("target >= 0.9: ") + (ratio >= 0.9 ? "PASS" : "FAIL"));
        c["raw_direct_gbps"] = raw;
        c["dd_gbps"] = dd_gbps;
        c["best_gbps"] = best;
        c["ratio_to_raw"] = ratio;
        c["pass"] = ratio >= 0.9;
        j["cold"] = c;
        warm_up(path);
    });

    j["seconds"] = now() - started;
    r.line(fmt("\ntotal %.1f s", now() - started));
    std::ofstream(outdir + "/results.md") << r.md;
    std::ofstream(outdir + "/results.json") << j.dump(2) << "\n";
    r.line("wrote " + outdir + "/results.md and " + outdir + "/results.json");
    return j.contains("errors") ? 1 : 0;
}

} // namespace
