// Dtype conversion (convert.hpp) against memcpy of the same output bytes:
//
//   BM_ConvertBF16ToF32         256 MiB of BF16 (128 Mi elements) to 512 MiB of F32, on the
//                               automatic path                                  (target >= 0.5x)
//   BM_ConvertMemcpyBaseline    memcpy of 512 MiB between two buffers
//   BM_ConvertBF16ToF32Scalar   the same conversion forced onto the scalar path
//   BM_ConvertF16ToF32          256 MiB of F16 to 512 MiB of F32
//   BM_ConvertF32ToBF16         512 MiB of F32 to 256 MiB of BF16 (round to nearest even)
//
// Each reports bytes_per_second of F32 bytes (512 MiB per iteration), so every line compares
// directly with the baseline's. All buffers are allocated and written once, before timing, so
// every page is faulted in; each iteration converts memory to memory, single-threaded.
#include <safetensors/convert.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace bench_convert {

namespace st = safetensors;

constexpr std::size_t elements = std::size_t{128} << 20;  // 128 Mi: 256 MiB of 16-bit codes
constexpr std::size_t f32_bytes = elements * 4;            // 512 MiB

// Created on first use and kept for the whole run; the constructors write every byte.
struct buffers {
    std::vector<std::uint16_t> codes = make_codes();   // BF16 or F16 input, or BF16 output
    std::vector<float> floats = make_floats();         // F32 output, or F32 input
    std::vector<std::byte> copy = std::vector<std::byte>(f32_bytes, std::byte{1});  // memcpy target

    static std::vector<std::uint16_t> make_codes() {
        std::vector<std::uint16_t> v(elements);
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint16_t>(0x3c00u + (i * 7919u) % 0x3000u);
        return v;
    }
    static std::vector<float> make_floats() {
        std::vector<float> v(elements);
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 4099) * 0.37f - 700.0f;
        return v;
    }
};

buffers& data() {
    static buffers b;
    return b;
}

void finish(benchmark::State& state) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(f32_bytes));
}

void BM_ConvertBF16ToF32(benchmark::State& state) {
    buffers& b = data();
    for (auto _ : state) {
        st::bf16_to_f32(b.codes, b.floats);
        benchmark::ClobberMemory();
    }
    state.SetLabel(std::string(st::to_string(st::best_convert_path())));
    finish(state);
}

void BM_ConvertMemcpyBaseline(benchmark::State& state) {
    buffers& b = data();
    for (auto _ : state) {
        std::memcpy(b.copy.data(), b.floats.data(), f32_bytes);
        benchmark::ClobberMemory();
    }
    finish(state);
}

void BM_ConvertBF16ToF32Scalar(benchmark::State& state) {
    buffers& b = data();
    for (auto _ : state) {
        st::bf16_to_f32(b.codes, b.floats, st::convert_options{st::convert_path::scalar});
        benchmark::ClobberMemory();
    }
    finish(state);
}

void BM_ConvertF16ToF32(benchmark::State& state) {
    buffers& b = data();
    for (auto _ : state) {
        st::f16_to_f32(b.codes, b.floats);
        benchmark::ClobberMemory();
    }
    state.SetLabel(std::string(st::to_string(st::best_convert_path())));
    finish(state);
}

void BM_ConvertF32ToBF16(benchmark::State& state) {
    buffers& b = data();
    for (auto _ : state) {
        st::f32_to_bf16(b.floats, b.codes);
        benchmark::ClobberMemory();
    }
    state.SetLabel(std::string(st::to_string(st::best_convert_path())));
    finish(state);
}


BENCHMARK(BM_ConvertBF16ToF32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ConvertMemcpyBaseline)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ConvertBF16ToF32Scalar)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ConvertF16ToF32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ConvertF32ToBF16)->Unit(benchmark::kMillisecond);

} // namespace bench_convert
