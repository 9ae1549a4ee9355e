// BM_OpenShard: safetensors::open() of one shard of a real checkpoint, laid out like a Llama
// shard (280 BF16 tensors named model.layers.N.*, {"format": "pt"} metadata, a 32 KB header,
// 1 GiB of data), a fresh open every iteration, the close included, against
// BM_OpenFloor: what any reader must do with the same file, in plain system calls: open,
// fstat, map the whole file, read the header's bytes through the mapping, unmap, close.
// Their ratio is how much the library adds where users open files most.
#include <safetensors/safetensors.hpp>

#include <benchmark/benchmark.h>

#include "llama_shard.hpp"

#include <filesystem>
#include <string>
#include <system_error>

#if defined(__unix__)
#include "open_floor.hpp"
#endif

namespace bench_open_shard {

namespace fs = std::filesystem;

// Written once (the header, then a hole for the data: opening never reads tensor bytes) in a
// private folder removed at exit.
class shard_file {
public:
    shard_file() {
        dir_ = fs::temp_directory_path() /
               ("safetensors-bench-shard-" + std::to_string(fs::file_time_type::clock::now().time_since_epoch().count()));
        fs::create_directories(dir_);
        path_ = (dir_ / "model-00001-of-00004.safetensors").string();
        bench::write_llama_shard(path_);
    }
    ~shard_file() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    const std::string& path() const noexcept { return path_; }

private:
    fs::path dir_;
    std::string path_;
};

const shard_file& the_shard() {
    static const shard_file shard;
    return shard;
}

void BM_OpenShard(benchmark::State& state) {
    const std::string& path = the_shard().path();
    for (auto _ : state) {
        auto file = safetensors::open(path);
        benchmark::DoNotOptimize(file.size());
    }
    if (safetensors::open(path).size() != 280) state.SkipWithError("open() returned the wrong tensor count");
}

#if defined(__unix__)
void BM_OpenFloor(benchmark::State& state) {
    const std::string& path = the_shard().path();
    for (auto _ : state) benchmark::DoNotOptimize(bench::open_floor(path));
}
BENCHMARK(BM_OpenFloor)->Unit(benchmark::kMicrosecond);
#endif


BENCHMARK(BM_OpenShard)->Unit(benchmark::kMicrosecond);

} // namespace bench_open_shard
