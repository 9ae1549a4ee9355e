// Reading whole files, against what the memory system does with no file involved:
//
//   BM_ReadAll/S        open a warm 1 GiB file of 64 BF16 tensors (a fresh open every
//                       iteration) and sum every byte, as uint64_t words, through the views;
//                       S picks how the bytes are reached (see `strategies` below)
//   BM_SumBaseline      the same sum over 1 GiB of anonymous memory already faulted in
//                       (target: BM_ReadAll >= 0.6x its speed)
//   BM_LoadOwned        load() of that file into owned tensors, open and allocation inside
//                       the loop (target: >= 0.5x BM_MemcpyBaseline)
//   BM_MemcpyBaseline   memcpy of 1 GiB between buffers already faulted in
//   BM_TensorLookup     file::find() by name in a 100,000-tensor file (target: < 1 us)
//
// The file is written once into a private temporary folder (SAFETENSORS_BENCH_DIR picks
// another) and read once before timing, so the page cache is warm: these time the library
// and the kernel's page-table work, not the disk.
#include <safetensors/safetensors.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace bench_read {

namespace fs = std::filesystem;
namespace st = safetensors;

constexpr std::size_t tensor_count = 64;
constexpr std::uint64_t rows = 4096, columns = 2048;  // BF16: 16 MiB per tensor
constexpr std::uint64_t tensor_bytes = rows * columns * 2;
constexpr std::uint64_t total_bytes = tensor_count * tensor_bytes;  // 1 GiB

// Sums size bytes (a multiple of 8) as little words. Kept out of line so that every
// benchmark runs the very same loop.
__attribute__((noinline)) std::uint64_t sum_words(const std::byte* data, std::size_t size) {
    std::uint64_t words[4] = {0, 0, 0, 0};
    const std::size_t count = size / 8;
    std::size_t i = 0;
    for (; i + 4 <= count; i += 4)
        for (std::size_t k = 0; k < 4; ++k) {
            std::uint64_t w;
            std::memcpy(&w, data + (i + k) * 8, 8);
            words[k] += w;
        }
    for (; i < count; ++i) {
        std::uint64_t w;
        std::memcpy(&w, data + i * 8, 8);
        words[0] += w;
    }
    return words[0] + words[1] + words[2] + words[3];
}

fs::path make_temp_dir(const char* what) {
    const char* chosen = std::getenv("SAFETENSORS_BENCH_DIR");
    fs::path base = chosen != nullptr && *chosen != '\0' ? fs::path(chosen) : fs::temp_directory_path();
    fs::path dir = base / (std::string("safetensors-bench-") + what + "-" +
                           std::to_string(fs::file_time_type::clock::now().time_since_epoch().count()));
    fs::create_directories(dir);
    return dir;
}

// The 1 GiB file, written with the library's streaming writer and read once so the page
// cache holds it. Tensor i is filled with the byte value i + 1.
class read_input {
public:
    read_input() : dir_(make_temp_dir("read")) {
        path_ = (dir_ / "weights.safetensors").string();
        std::vector<st::tensor_ref> specs;
        for (std::size_t i = 0; i < tensor_count; ++i)
            specs.push_back({"model.layers." + std::to_string(i) + ".mlp.up_proj.weight", st::dtype::BF16, {rows, columns}});
        st::stream_writer writer(path_, specs);
        std::vector<std::byte> chunk(static_cast<std::size_t>(tensor_bytes));
        for (std::size_t i = 0; i < tensor_count; ++i) {
            std::memset(chunk.data(), static_cast<int>(i + 1), chunk.size());
            writer.write(i, chunk.data(), chunk.size());
        }
        writer.commit();
        auto f = st::open(path_);
        std::uint64_t sum = 0;
        for (const auto& view : f) sum += sum_words(view.data(), static_cast<std::size_t>(view.byte_size()));
        expected_sum_ = sum;
    }
    ~read_input() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    const std::string& path() const { return path_; }
    std::uint64_t expected_sum() const { return expected_sum_; }

private:
    fs::path dir_;
    std::string path_;
    std::uint64_t expected_sum_ = 0;
};

const read_input& input() {
    static read_input in;
    return in;
}

// 1 GiB of anonymous memory with every page written once.
struct faulted_buffer {
    explicit faulted_buffer(std::size_t size) : bytes(new std::byte[size]), size(size) {
        std::memset(bytes.get(), 1, size);
    }
    std::unique_ptr<std::byte[]> bytes;
    std::size_t size;
};

struct strategy {
    const char* label;
    st::open_options options;
};

// Ways to reach the bytes of a mapped file. The lazy default faults pages in on first
// touch; populate maps them all at open (MAP_POPULATE); read copies the file to the heap.
const strategy strategies[] = {
    {"map (default)", {}},
    {"map + sequential", {st::open_mode::map, st::access_advice::sequential, false}},
    {"map + willneed", {st::open_mode::map, st::access_advice::willneed, false}},
    {"map + populate", {st::open_mode::map, st::access_advice::normal, true}},
    {"read", {st::open_mode::read, st::access_advice::normal, false}},
};

void BM_ReadAll(benchmark::State& state) {
    const read_input& in = input();
    const strategy& how = strategies[state.range(0)];
    std::uint64_t sum = 0;
    for (auto _ : state) {
        auto f = st::open(in.path(), how.options);
        sum = 0;
        for (const auto& view : f) sum += sum_words(view.data(), static_cast<std::size_t>(view.byte_size()));
        benchmark::DoNotOptimize(sum);
    }
    if (sum != in.expected_sum()) state.SkipWithError("wrong sum");
    state.SetLabel(how.label);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(total_bytes));
}

void BM_SumBaseline(benchmark::State& state) {
    faulted_buffer buffer(static_cast<std::size_t>(total_bytes));
    for (auto _ : state) benchmark::DoNotOptimize(sum_words(buffer.bytes.get(), buffer.size));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(total_bytes));
}

void BM_LoadOwned(benchmark::State& state) {
    const read_input& in = input();
    // One untimed load first, in every repetition: the timed loads then measure a process
    // that loads repeatedly. Without it, a repetition that follows other benchmarks (random
    // interleaving) starts with 1 GiB that this VM has handed back to its host since the last
    // load (free page reporting), which costs 0.5 to 2 s to fault in again: that measures the
    // host, not load(). The allocation itself stays inside the timed loop.
    benchmark::DoNotOptimize(st::load(in.path()).size());
    std::size_t count = 0;
    for (auto _ : state) {
        auto tensors = st::load(in.path());
        count = tensors.size();
        benchmark::DoNotOptimize(tensors.begin()->second.data());
    }
    if (count != tensor_count) state.SkipWithError("wrong tensor count");
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(total_bytes));
}

void BM_MemcpyBaseline(benchmark::State& state) {
    faulted_buffer from(static_cast<std::size_t>(total_bytes)), to(static_cast<std::size_t>(total_bytes));
    for (auto _ : state) {
        std::memcpy(to.bytes.get(), from.bytes.get(), to.size);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(total_bytes));
}

// 100,000 tensors named like a 1,000-layer model's; lookups cycle through names spread
// over the whole table so they are not served from one cache line.
class lookup_input {
public:
    lookup_input() : dir_(make_temp_dir("lookup")) {
        std::vector<st::tensor_ref> specs;
        for (std::size_t i = 0; i < 100000; ++i)
            specs.push_back({"model.layers." + std::to_string(i / 100) + ".block." + std::to_string(i % 100) + ".weight",
                             st::dtype::F32, {4, 4}});
        const std::string path = (dir_ / "lookup.safetensors").string();
        st::stream_writer writer(path, specs);
        const std::byte zeros[64] = {};
        for (std::size_t i = 0; i < specs.size(); ++i) writer.write(i, zeros, sizeof zeros);
        writer.commit();
        file_ = std::make_unique<st::file>(st::open(path));
        for (std::size_t i = 0; i < 1024; ++i) names_.emplace_back(specs[(i * 7919) % specs.size()].name());
    }
    ~lookup_input() {
        file_.reset();
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    const st::file& file() const { return *file_; }
    const std::vector<std::string>& names() const { return names_; }

private:
    fs::path dir_;
    std::unique_ptr<st::file> file_;
    std::vector<std::string> names_;
};

void BM_TensorLookup(benchmark::State& state) {
    static lookup_input in;
    const auto& names = in.names();
    std::size_t i = 0, found = 0;
    for (auto _ : state) {
        auto view = in.file().find(names[i]);
        found += view.has_value();
        benchmark::DoNotOptimize(view);
        i = (i + 1) % names.size();
    }
    if (found != static_cast<std::size_t>(state.iterations())) state.SkipWithError("a lookup failed");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["tensors"] = 100000;
}


BENCHMARK(BM_ReadAll)->DenseRange(0, static_cast<int>(std::size(strategies)) - 1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SumBaseline)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LoadOwned)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MemcpyBaseline)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TensorLookup)->Unit(benchmark::kNanosecond);

} // namespace bench_read
