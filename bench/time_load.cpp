// safetensors-time-load: the C++ side of bench/compare_torch.py. Times, in this process,
// each way of getting at a file's tensors and prints one JSON object of median seconds:
//
//   open        safetensors::open(path): header parsed and validated, data mapped, not read
//   open_touch  open, then sum every byte through the views (every page read once)
//   load        safetensors::load(path): every tensor copied into owned memory
//
// usage: safetensors-time-load PATH [REPEATS]
#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

std::uint64_t sum_words(const std::byte* data, std::size_t size) {
    std::uint64_t sum = 0;
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, data + i, 8);
        sum += w;
    }
    for (; i < size; ++i) sum += std::to_integer<std::uint64_t>(data[i]);
    return sum;
}

template <class F>
double median_seconds(int repeats, F&& run) {
    std::vector<double> times;
    for (int i = 0; i < repeats; ++i) {
        auto start = std::chrono::steady_clock::now();
        run();
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

volatile std::uint64_t sink;  // keeps the sums alive

}  // namespace

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s PATH [REPEATS]\n", argv[0]);
        return 2;
    }
    const std::string path = argv[1];
    const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;

    std::uint64_t bytes = 0;
    for (const auto& view : safetensors::open(path)) bytes += view.byte_size();

    const double open = median_seconds(repeats, [&] { sink = safetensors::open(path).size(); });
    const double open_touch = median_seconds(repeats, [&] {
        std::uint64_t sum = 0;
        for (const auto& view : safetensors::open(path)) sum += sum_words(view.data(), static_cast<std::size_t>(view.byte_size()));
        sink = sum;
    });
    const double load = median_seconds(repeats, [&] { sink = safetensors::load(path).size(); });

    std::printf("{\"bytes\": %llu, \"repeats\": %d, \"open\": %.6f, \"open_touch\": %.6f, \"load\": %.6f}\n",
                static_cast<unsigned long long>(bytes), repeats, open, open_touch, load);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "safetensors-time-load: %s\n", e.what());
    return 1;
}
