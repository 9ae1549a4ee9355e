// Writing a 1 GiB file of 64 F32 tensors (16 MiB each) from memory, every run ending with the
// data on disk (fsync of the file and its folder):
//   BM_WriteLoopBaseline  open(O_TRUNC) + a plain write() loop of the same bytes + fsync: the
//                         least any writer can do
//   BM_Save               safetensors::save() (sync off) + fsync of the result: the same work
//                         as save() with sync on, with the fsync timed apart (counter fsync_s)
//   BM_SaveSync           safetensors::save() with sync on (its fsync inside, not separable)
//   BM_StreamWriter       stream_writer fed 1 MiB chunks, sync on
// All four write into the same folder: $SAFETENSORS_BENCH_DIR if set, else the system's
// temporary folder (it must be a real disk, not tmpfs, for fsync to mean anything). The time
// is wall-clock (UseManualTime); bytes_per_second counts the whole file.
//
//   BM_SerializeManyTensors/N  serialize() of N tiny tensors into memory: header building
//                              (sort, escape, numbers) per tensor.
#include <safetensors/safetensors.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <string>
#include <system_error>
#include <vector>

#if !defined(_WIN32)
#include <cerrno>
#include <fcntl.h>
#include <unistd.h>
#endif

namespace {

namespace fs = std::filesystem;
namespace st = safetensors;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t tensor_count = 64;
constexpr std::uint64_t rows = 4096, cols = 1024;          // F32 [4096, 1024] = 16 MiB
constexpr std::size_t tensor_bytes = rows * cols * 4;

// The tensors' bytes (1 GiB, filled once) and a private folder, removed at exit.
struct write_fixture {
    st::detail::aligned_bytes data = st::detail::allocate_aligned(tensor_count * tensor_bytes);
    std::vector<std::string> names;
    std::vector<st::tensor_ref> refs;
    fs::path dir;
    std::string header;  // the file's first 8 + N bytes, for the baseline

    write_fixture() {
        auto* words = reinterpret_cast<std::uint64_t*>(data.get());
        std::uint64_t x = 0x9E3779B97F4A7C15ull;
        for (std::size_t i = 0; i < tensor_count * tensor_bytes / 8; ++i) words[i] = (x += 0x632BE59BD9B4E019ull);
        for (std::size_t i = 0; i < tensor_count; ++i)
            names.push_back("model.layers." + std::to_string(i) + ".mlp.weight");
        for (std::size_t i = 0; i < tensor_count; ++i)
            refs.emplace_back(names[i], st::dtype::F32, st::shape_ref{rows, cols}, data.get() + i * tensor_bytes,
                              tensor_bytes);
        const char* env = std::getenv("SAFETENSORS_BENCH_DIR");
        const fs::path base = env && *env ? fs::path(env) : fs::temp_directory_path();
        dir = base / ("safetensors-bench-writer-" +
                      std::to_string(clock_type::now().time_since_epoch().count()));
        fs::create_directories(dir);
        // The layout comes from the library's planner; the baseline writes these bytes itself.
        header = st::detail::plan_for(refs, nullptr, st::write_options{}).head;
    }
    ~write_fixture() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    std::uint64_t file_size() const { return header.size() + tensor_count * tensor_bytes; }
};

write_fixture& fixture() {
    static write_fixture f;
    return f;
}

#if !defined(_WIN32)

void fsync_path(const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) throw std::runtime_error("fsync of " + path + " failed");
    ::close(fd);
}

void write_all(int fd, const void* data, std::size_t size) {
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error("write failed");
        }
        p += n;
        size -= static_cast<std::size_t>(n);
    }
}

double seconds(clock_type::time_point a, clock_type::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

void report(benchmark::State& state, double fsync_total) {
    const auto& f = fixture();
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(f.file_size()));
    state.counters["file_MiB"] = static_cast<double>(f.file_size()) / (1 << 20);
    if (fsync_total >= 0) state.counters["fsync_s"] = benchmark::Counter(fsync_total, benchmark::Counter::kAvgIterations);
}

void BM_WriteLoopBaseline(benchmark::State& state) {
    auto& f = fixture();
    const std::string path = (f.dir / "baseline.safetensors").string();
    double fsync_total = 0;
    for (auto _ : state) {
        const auto t0 = clock_type::now();
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) {
            state.SkipWithError("cannot create the baseline file");
            return;
        }
        write_all(fd, f.header.data(), f.header.size());
        for (std::size_t i = 0; i < tensor_count; ++i) write_all(fd, f.data.get() + i * tensor_bytes, tensor_bytes);
        const auto t1 = clock_type::now();
        if (::fsync(fd) != 0) state.SkipWithError("fsync failed");
        ::close(fd);
        fsync_path(f.dir.string(), O_RDONLY | O_DIRECTORY);
        const auto t2 = clock_type::now();
        fsync_total += seconds(t1, t2);
        state.SetIterationTime(seconds(t0, t2));
    }
    report(state, fsync_total);
}

void BM_Save(benchmark::State& state) {
    auto& f = fixture();
    const std::string path = (f.dir / "save.safetensors").string();
    double fsync_total = 0;
    for (auto _ : state) {
        const auto t0 = clock_type::now();
        st::save(path, f.refs, {}, st::write_options{8, false});
        const auto t1 = clock_type::now();
        fsync_path(path, O_RDONLY);
        fsync_path(f.dir.string(), O_RDONLY | O_DIRECTORY);
        const auto t2 = clock_type::now();
        fsync_total += seconds(t1, t2);
        state.SetIterationTime(seconds(t0, t2));
    }
    report(state, fsync_total);
}

void BM_SaveSync(benchmark::State& state) {
    auto& f = fixture();
    const std::string path = (f.dir / "save_sync.safetensors").string();
    for (auto _ : state) {
        const auto t0 = clock_type::now();
        st::save(path, f.refs);
        state.SetIterationTime(seconds(t0, clock_type::now()));
    }
    report(state, -1);
}

void BM_StreamWriter(benchmark::State& state) {
    auto& f = fixture();
    const std::string path = (f.dir / "stream.safetensors").string();
    std::vector<st::tensor_decl> decls;
    for (std::size_t i = 0; i < tensor_count; ++i) decls.push_back({f.names[i], st::dtype::F32, {rows, cols}});
    constexpr std::size_t chunk = std::size_t{1} << 20;
    for (auto _ : state) {
        const auto t0 = clock_type::now();
        st::stream_writer w(path, decls);
        for (std::size_t k = 0; k < w.size(); ++k) {
            // Names are "model.layers.<i>.mlp.weight": the writer's order is by name.
            const std::string_view name = w.tensor(k).name;
            const std::size_t input = std::stoul(std::string(name.substr(13, name.find('.', 13) - 13)));
            const std::byte* bytes = f.data.get() + input * tensor_bytes;
            for (std::size_t done = 0; done < tensor_bytes; done += chunk) w.write(k, bytes + done, chunk);
        }
        w.commit();
        state.SetIterationTime(seconds(t0, clock_type::now()));
    }
    report(state, -1);
}

// Each runs 3 repetitions of 3 iterations; compare the medians.
BENCHMARK(BM_WriteLoopBaseline)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3)->Repetitions(3);
BENCHMARK(BM_Save)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3)->Repetitions(3);
BENCHMARK(BM_SaveSync)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3)->Repetitions(3);
BENCHMARK(BM_StreamWriter)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3)->Repetitions(3);

#endif  // !_WIN32

void BM_SerializeManyTensors(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<std::string> names;
    for (std::size_t i = 0; i < n; ++i) names.push_back("model.layers." + std::to_string(i) + ".self_attn.q_proj.weight");
    const float value = 1.0f;
    std::vector<st::tensor_ref> refs;
    for (std::size_t i = 0; i < n; ++i)
        refs.emplace_back(names[i], i % 2 ? st::dtype::F32 : st::dtype::I32, st::shape_ref{1}, &value, 4);
    std::size_t size = 0;
    for (auto _ : state) {
        auto bytes = st::serialize(refs);
        size = bytes.size();
        benchmark::DoNotOptimize(bytes.data());
    }
    state.counters["tensors_per_second"] =
        benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(size));
}
BENCHMARK(BM_SerializeManyTensors)->Arg(1000)->Arg(100000)->Unit(benchmark::kMillisecond);

} // namespace
