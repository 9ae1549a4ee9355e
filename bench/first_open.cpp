// safetensors-first-open: the first open of a file in a fresh process, which pays what a loop
// of opens hides (page faults of new heap memory, allocator growth, cold code). One
// measurement per run; bench/first_open.sh runs it as many separate processes.
//
//   safetensors-first-open make PATH    write the benchmark shard (llama_shard.hpp) to PATH
//   safetensors-first-open open PATH    time safetensors::open(PATH) and its close, in microseconds
//   safetensors-first-open floor PATH   time the floor (open_floor.hpp) on PATH, in microseconds
//   safetensors-first-open phases PATH  the library's open in three parts (source, header, close):
//                                       microseconds, then minor page faults, of each (POSIX only)
#include <safetensors/safetensors.hpp>

#include "llama_shard.hpp"
#include "open_floor.hpp"

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

#include <sys/resource.h>

namespace {

using clock_type = std::chrono::steady_clock;

long minor_faults() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
}

double micros(clock_type::time_point from, clock_type::time_point to) {
    return std::chrono::duration<double, std::micro>(to - from).count();
}

// What safetensors::open does, in its parts: where a fresh process pays its page faults.
int phases(const std::string& path) {
    const long f0 = minor_faults();
    const auto t0 = clock_type::now();
    auto src = safetensors::open_source(path);
    const auto t1 = clock_type::now();
    const long f1 = minor_faults();
    std::size_t tensors = 0;
    clock_type::time_point t2;
    long f2 = 0;
    {
        const safetensors::header_table table = safetensors::read_header(*src);
        t2 = clock_type::now();
        f2 = minor_faults();
        tensors = table.size();
    }
    src.reset();
    const auto t3 = clock_type::now();
    const long f3 = minor_faults();
    std::printf("%.1f %.1f %.1f %.1f %ld %ld %ld %zu\n", micros(t0, t1), micros(t1, t2), micros(t2, t3), micros(t0, t3),
                f1 - f0, f2 - f1, f3 - f2, tensors);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: safetensors-first-open make|open|floor|phases PATH\n");
        return 2;
    }
    const std::string what = argv[1], path = argv[2];
    try {
        if (what == "make") {
            bench::write_llama_shard(path);
            return 0;
        }
        if (what == "phases") return phases(path);
        std::size_t result = 0;
        const auto start = clock_type::now();
        if (what == "open") {
            result = safetensors::open(path).size();  // closed at the end of the statement
        } else if (what == "floor") {
            result = static_cast<std::size_t>(bench::open_floor(path));
        } else {
            std::fprintf(stderr, "error: unknown mode %s\n", what.c_str());
            return 2;
        }
        const auto stop = clock_type::now();
        std::printf("%.1f %zu\n", micros(start, stop), result);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
