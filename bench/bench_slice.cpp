// Slice copies against memcpy of the same number of bytes from the same warm mapping:
//
//   BM_SliceContiguous      rows [2048, 6144) of an F16 [8192, 16384] tensor (256 MiB): one
//                           128 MiB run, so copy_to is a single memcpy   (target >= 0.9x)
//   BM_SliceMemcpyBaseline  memcpy of those 128 MiB
//   BM_SliceShard           split(-1, 3, 8) of the same tensor: 1/8 of the columns, [8192, 2048],
//                           32 MiB in 8192 runs of 4 KiB                   (target >= 0.5x)
//   BM_SliceShardMemcpyBaseline  memcpy of 32 MiB
//   BM_SliceOneByteRuns     "::2" of a U8 [16 Mi] tensor: the worst case, 8 Mi runs of 1 byte
//
// Each reports bytes_per_second of bytes copied. The input
// file is generated once, in a private temporary folder removed at exit; it is opened (mapped)
// once and every page is touched before timing, so the numbers are memory-to-memory copies,
// not disk reads. The slice plan is made inside the timed loop, as a loader would.
#include <safetensors/safetensors.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace bench_slice {

namespace fs = std::filesystem;
namespace st = safetensors;

constexpr std::uint64_t rows = 8192, columns = 16384;  // F16: 256 MiB
constexpr std::uint64_t weight_bytes = rows * columns * 2;
constexpr std::uint64_t byte_count = std::uint64_t{1} << 24;  // U8 [16 Mi]

class slice_input {
public:
    slice_input() {
        dir_ = fs::temp_directory_path() /
               ("safetensors-bench-slice-" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "-" +
                std::to_string(fs::file_time_type::clock::now().time_since_epoch().count()));
        fs::create_directories(dir_);
        const std::string path = (dir_ / "slice.safetensors").string();
        write(path);
        file_ = st::open(path);
        // Fault in every page of the mapping once, outside any timing.
        std::uint64_t sum = 0;
        const std::byte* data = file_->tensor("w").data();
        for (std::uint64_t i = 0; i < weight_bytes + byte_count; i += 4096) sum += std::to_integer<unsigned>(data[i]);
        benchmark::DoNotOptimize(sum);
    }
    ~slice_input() {
        file_.reset();
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    st::tensor_view weight() const { return file_->tensor("w"); }
    st::tensor_view bytes() const { return file_->tensor("b"); }

private:
    static void write(const std::string& path) {
        std::string header = "{\"w\":{\"dtype\":\"F16\",\"shape\":[" + std::to_string(rows) + "," +
                             std::to_string(columns) + "],\"data_offsets\":[0," + std::to_string(weight_bytes) +
                             "]},\"b\":{\"dtype\":\"U8\",\"shape\":[" + std::to_string(byte_count) +
                             "],\"data_offsets\":[" + std::to_string(weight_bytes) + "," +
                             std::to_string(weight_bytes + byte_count) + "]}}";
        header.append((8 - header.size() % 8) % 8, ' ');
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        unsigned char length[8];
        for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(std::uint64_t{header.size()} >> (8 * i));
        out.write(reinterpret_cast<const char*>(length), 8);
        out.write(header.data(), static_cast<std::streamsize>(header.size()));
        std::vector<char> chunk(std::size_t{1} << 20);
        for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>(i * 131 + 7);
        for (std::uint64_t left = weight_bytes + byte_count; left > 0; left -= chunk.size())
            out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        out.close();
        if (!out) throw std::runtime_error("cannot write " + path);
    }

    fs::path dir_;
    std::optional<st::file> file_;
};

const slice_input& input() {
    static const slice_input in;
    return in;
}

// A destination faulted in once (the vector zero-fills it) and reused by every iteration.
std::vector<std::byte>& destination(std::size_t size) {
    static std::vector<std::byte> buffer;
    if (buffer.size() < size) buffer.assign(size, std::byte{0});
    return buffer;
}

void finish(benchmark::State& state, std::uint64_t bytes) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes));
}

st::tensor_slice contiguous_slice() { return input().weight().slice({st::range(2048, 6144)}); }
st::tensor_slice shard_slice() { return input().weight().split(-1, 3, 8); }

void BM_SliceContiguous(benchmark::State& state) {
    const std::uint64_t size = contiguous_slice().byte_size();
    auto& dst = destination(size);
    for (auto _ : state) {
        st::tensor_slice s = contiguous_slice();
        s.copy_to(dst.data(), dst.size());
        benchmark::ClobberMemory();
    }
    if (!contiguous_slice().is_contiguous()) state.SkipWithError("the slice should be one run");
    finish(state, size);
}

void BM_SliceMemcpyBaseline(benchmark::State& state) {
    const st::tensor_slice s = contiguous_slice();
    auto& dst = destination(s.byte_size());
    const std::byte* src = s.data();
    for (auto _ : state) {
        std::memcpy(dst.data(), src, static_cast<std::size_t>(s.byte_size()));
        benchmark::ClobberMemory();
    }
    finish(state, s.byte_size());
}

void BM_SliceShard(benchmark::State& state) {
    const st::tensor_slice probe = shard_slice();
    auto& dst = destination(probe.byte_size());
    for (auto _ : state) {
        st::tensor_slice s = shard_slice();
        s.copy_to(dst.data(), dst.size());
        benchmark::ClobberMemory();
    }
    if (probe.runs().size() != rows || probe.runs().front().length != 4096)
        state.SkipWithError("the shard should be 8192 runs of 4 KiB");
    finish(state, probe.byte_size());
}

void BM_SliceShardMemcpyBaseline(benchmark::State& state) {
    const std::uint64_t size = shard_slice().byte_size();
    auto& dst = destination(size);
    const std::byte* src = input().weight().data();
    for (auto _ : state) {
        std::memcpy(dst.data(), src, static_cast<std::size_t>(size));
        benchmark::ClobberMemory();
    }
    finish(state, size);
}

void BM_SliceOneByteRuns(benchmark::State& state) {
    const st::tensor_slice probe = input().bytes().slice("::2");
    auto& dst = destination(probe.byte_size());
    for (auto _ : state) {
        st::tensor_slice s = input().bytes().slice("::2");
        s.copy_to(dst.data(), dst.size());
        benchmark::ClobberMemory();
    }
    finish(state, probe.byte_size());
}


BENCHMARK(BM_SliceContiguous)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SliceMemcpyBaseline)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SliceShard)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SliceShardMemcpyBaseline)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SliceOneByteRuns)->Unit(benchmark::kMillisecond);

} // namespace bench_slice
