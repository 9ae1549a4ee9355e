// safetensors-first-open: the first open of a file in a fresh process, which pays what a loop
// of opens hides (page faults of new heap memory, allocator growth, cold code). One
// measurement per run; bench/first_open.sh runs it as many separate processes.
//
//   safetensors-first-open make PATH    write the benchmark shard (llama_shard.hpp) to PATH
//   safetensors-first-open open PATH    time safetensors::open(PATH) and its close, in microseconds
//   safetensors-first-open floor PATH   time the floor (open_floor.hpp) on PATH, in microseconds
#include <safetensors/safetensors.hpp>

#include "llama_shard.hpp"
#include "open_floor.hpp"

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: safetensors-first-open make|open|floor PATH\n");
        return 2;
    }
    const std::string what = argv[1], path = argv[2];
    try {
        if (what == "make") {
            bench::write_llama_shard(path);
            return 0;
        }
        std::size_t result = 0;
        const auto start = std::chrono::steady_clock::now();
        if (what == "open") {
            result = safetensors::open(path).size();  // closed at the end of the statement
        } else if (what == "floor") {
            result = static_cast<std::size_t>(bench::open_floor(path));
        } else {
            std::fprintf(stderr, "error: unknown mode %s\n", what.c_str());
            return 2;
        }
        const auto stop = std::chrono::steady_clock::now();
        std::printf("%.1f %zu\n", std::chrono::duration<double, std::micro>(stop - start).count(), result);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
