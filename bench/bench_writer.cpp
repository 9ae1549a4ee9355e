// Writing a 1 GiB file of 64 F32 tensors (16 MiB each) from memory, every run ending with the
// data on disk (fsync of the file and of its folder), against a plain write() loop of the same
// bytes into the same folder. Two scenarios (the benchmark argument):
//   /0 "new file":  the target does not exist (removed before each timed run, not timed)
//   /1 "replace":   the target exists and is overwritten: save() renames a new file over it,
//                   the loop truncates it (O_TRUNC). Both free the old file's blocks.
// Every timed run starts after a sync() (not timed), so no run pays for the previous one's
// writeback or block discards.
// Benchmarks:
//   BM_SaveVsWriteLoop  save() (sync on) and the loop back to back in every iteration,
//                       alternating which goes first, so both see the same background load.
//                       Second argument 1: save() with write_options::keep_in_cache = false.
//                       Counters: save_s, loop_s (seconds per run), ratio = loop_s / save_s
//                       (>= 1: save() is as fast as the loop), loop_fsync_s (the loop's
//                       fsync time).
//   BM_WriteLoop        the loop alone; fsync_s = its fsync of file and folder
//   BM_Save             save() with sync off, then the same fsyncs from outside, timed apart:
//                       fsync_s (the library's own fsync cannot be timed from outside)
//   BM_StreamWriter     stream_writer fed 1 MiB chunks, sync on
// The folder is $SAFETENSORS_BENCH_DIR if set, else the system's temporary folder; it must be
// a real disk (not tmpfs) for fsync to mean anything. Times are wall clock (UseManualTime).
//
//   BM_SerializeManyTensors/N  serialize() of N tiny tensors into memory: the per-tensor cost
//                              of planning and building the header.
#include <safetensors/safetensors.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#if !defined(_WIN32)
#include <cerrno>
#include <fcntl.h>
#include <unistd.h>
#endif

namespace bench_writer {

namespace fs = std::filesystem;
namespace st = safetensors;

#if !defined(_WIN32)

using clock_type = std::chrono::steady_clock;

constexpr std::size_t tensor_count = 64;
constexpr std::uint64_t rows = 4096, cols = 1024;  // F32 [4096, 1024] = 16 MiB
constexpr std::size_t tensor_bytes = rows * cols * 4;

// The tensors' bytes (1 GiB, filled once), the file's header, and a private folder that is
// removed at exit.
struct write_fixture {
    st::detail::aligned_bytes data = st::detail::allocate_aligned(tensor_count * tensor_bytes);
    std::vector<std::string> names;
    std::vector<st::tensor_ref> refs;
    std::string header;  // the file's first 8 + N bytes, which the loop writes itself
    fs::path dir;

    write_fixture() {
        auto* words = reinterpret_cast<std::uint64_t*>(data.get());
        std::uint64_t x = 0x9E3779B97F4A7C15ull;
        for (std::size_t i = 0; i < tensor_count * tensor_bytes / 8; ++i) words[i] = (x += 0x632BE59BD9B4E019ull);
        for (std::size_t i = 0; i < tensor_count; ++i) names.push_back("model.layers." + std::to_string(i) + ".mlp.weight");
        for (std::size_t i = 0; i < tensor_count; ++i)
            refs.emplace_back(names[i], st::dtype::F32, st::shape_ref{rows, cols}, data.get() + i * tensor_bytes,
                              tensor_bytes);
        header = st::detail::plan_for(refs, nullptr, st::write_options{}).head;
        const char* env = std::getenv("SAFETENSORS_BENCH_DIR");
        const fs::path base = env && *env ? fs::path(env) : fs::temp_directory_path();
        dir = base / ("safetensors-bench-writer-" + std::to_string(clock_type::now().time_since_epoch().count()));
        fs::create_directories(dir);
    }
    ~write_fixture() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    std::uint64_t file_size() const { return header.size() + tensor_count * tensor_bytes; }
    std::string path(const char* name) const { return (dir / name).string(); }
};

write_fixture& fixture() {
    static write_fixture f;
    return f;
}

double seconds(clock_type::time_point a, clock_type::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

void fsync_path(const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    const int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) throw std::runtime_error("fsync of " + path + " failed");
}

void write_all(int fd, const void* data, std::size_t size) {
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error(std::string("write failed: ") + std::strerror(errno));
        }
        p += n;
        size -= static_cast<std::size_t>(n);
    }
}

// Scenario setup, not timed: "new file" removes the target and lets the disk settle (the
// freed blocks are discarded on some file systems); "replace" makes sure it exists. Each
// timed run starts from a quiet disk.
void prepare(const std::string& path, bool replace) {
    if (replace) {
        if (!fs::exists(path)) st::save(path, fixture().refs);
    } else {
        std::error_code ec;
        fs::remove(path, ec);
    }
    ::sync();
}

// The plain loop: open (truncating), write() the header and every tensor, fsync the file and
// the folder. Returns {total, fsync} seconds.
std::pair<double, double> write_loop(const std::string& path) {
    const auto& f = fixture();
    const auto t0 = clock_type::now();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) throw std::runtime_error("cannot create " + path);
    write_all(fd, f.header.data(), f.header.size());
    for (std::size_t i = 0; i < tensor_count; ++i) write_all(fd, f.data.get() + i * tensor_bytes, tensor_bytes);
    const auto t1 = clock_type::now();
    const int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) throw std::runtime_error("fsync failed");
    fsync_path(f.dir.string(), O_RDONLY | O_DIRECTORY);
    const auto t2 = clock_type::now();
    return {seconds(t0, t2), seconds(t1, t2)};
}

void set_common(benchmark::State& state) {
    const auto& f = fixture();
    state.SetLabel(state.range(0) ? "replace" : "new file");
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(f.file_size()));
    state.counters["file_MiB"] = static_cast<double>(f.file_size()) / (1 << 20);
}

void BM_SaveVsWriteLoop(benchmark::State& state) {
    const auto& f = fixture();
    const bool replace = state.range(0) != 0;
    const std::string save_path = f.path("paired_save.safetensors");
    const std::string loop_path = f.path("paired_loop.safetensors");
    st::write_options options;
    options.keep_in_cache = state.range(1) == 0;
    double save_total = 0, loop_total = 0, loop_fsync = 0;
    bool save_first = true;
    for (auto _ : state) {
        prepare(save_path, replace);
        prepare(loop_path, replace);
        double save_s = 0;
        std::pair<double, double> loop{};
        auto run_save = [&] {
            const auto t0 = clock_type::now();
            st::save(save_path, f.refs, {}, options);
            save_s = seconds(t0, clock_type::now());
        };
        // sync() before each timed run (not timed): the previous run's freed blocks are
        // discarded on some file systems (ext4 -o discard), which would slow the next run.
        if (save_first) {
            ::sync();
            run_save();
            ::sync();
            loop = write_loop(loop_path);
        } else {
            ::sync();
            loop = write_loop(loop_path);
            ::sync();
            run_save();
        }
        save_first = !save_first;
        save_total += save_s;
        loop_total += loop.first;
        loop_fsync += loop.second;
        state.SetIterationTime(save_s + loop.first);
    }
    set_common(state);
    if (!options.keep_in_cache) state.SetLabel(std::string(replace ? "replace" : "new file") + ", keep_in_cache=false");
    state.counters["save_s"] = benchmark::Counter(save_total, benchmark::Counter::kAvgIterations);
    state.counters["loop_s"] = benchmark::Counter(loop_total, benchmark::Counter::kAvgIterations);
    state.counters["loop_fsync_s"] = benchmark::Counter(loop_fsync, benchmark::Counter::kAvgIterations);
    state.counters["ratio"] = save_total > 0 ? loop_total / save_total : 0;
    // bytes_per_second covers both writers here: each iteration writes the file twice.
    state.SetBytesProcessed(2 * static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(f.file_size()));
}

void BM_WriteLoop(benchmark::State& state) {
    const auto& f = fixture();
    const std::string path = f.path("loop.safetensors");
    double fsync_total = 0;
    for (auto _ : state) {
        prepare(path, state.range(0) != 0);
        const auto [total, fsync_s] = write_loop(path);
        fsync_total += fsync_s;
        state.SetIterationTime(total);
    }
    set_common(state);
    state.counters["fsync_s"] = benchmark::Counter(fsync_total, benchmark::Counter::kAvgIterations);
}

void BM_Save(benchmark::State& state) {
    const auto& f = fixture();
    const std::string path = f.path("save.safetensors");
    double fsync_total = 0;
    for (auto _ : state) {
        prepare(path, state.range(0) != 0);
        const auto t0 = clock_type::now();
        st::save(path, f.refs, {}, st::write_options{8, false});
        const auto t1 = clock_type::now();
        fsync_path(path, O_RDONLY);
        fsync_path(f.dir.string(), O_RDONLY | O_DIRECTORY);
        const auto t2 = clock_type::now();
        fsync_total += seconds(t1, t2);
        state.SetIterationTime(seconds(t0, t2));
    }
    set_common(state);
    state.counters["fsync_s"] = benchmark::Counter(fsync_total, benchmark::Counter::kAvgIterations);
}

void BM_StreamWriter(benchmark::State& state) {
    const auto& f = fixture();
    const std::string path = f.path("stream.safetensors");
    std::vector<st::tensor_ref> decls;
    for (std::size_t i = 0; i < tensor_count; ++i) decls.push_back({f.names[i], st::dtype::F32, {rows, cols}});
    constexpr std::size_t chunk = std::size_t{1} << 20;
    for (auto _ : state) {
        prepare(path, state.range(0) != 0);
        const auto t0 = clock_type::now();
        st::stream_writer w(path, decls);
        for (std::size_t k = 0; k < w.size(); ++k) {
            // Names are "model.layers.<i>.mlp.weight"; the writer wants them sorted by name.
            const std::string_view name = w.tensor(k).name;
            const std::size_t input = std::stoul(std::string(name.substr(13, name.find('.', 13) - 13)));
            const std::byte* bytes = f.data.get() + input * tensor_bytes;
            for (std::size_t done = 0; done < tensor_bytes; done += chunk) w.write(k, bytes + done, chunk);
        }
        w.commit();
        state.SetIterationTime(seconds(t0, clock_type::now()));
    }
    set_common(state);
}

BENCHMARK(BM_SaveVsWriteLoop)->Args({0, 0})->Args({1, 0})->Args({0, 1})->Args({1, 1})->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(6);
BENCHMARK(BM_WriteLoop)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_Save)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_StreamWriter)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

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


} // namespace bench_writer
