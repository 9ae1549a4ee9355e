// BM_Open/N: safetensors::open() of a file whose header lists N tensors, against
// BM_SaxBaseline/N: a no-op nlohmann SAX pass over the same header bytes in memory, the
// least any nlohmann-based parser can do. Both report the header size as bytes processed,
// so bytes_per_second compares directly (bench/report.py prints the ratio).
#include <safetensors/safetensors.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#if defined(__unix__)
#include <sys/resource.h>
#endif

namespace bench_open {

namespace fs = std::filesystem;

constexpr std::uint64_t tensor_bytes = 4 * 4 * 4;  // F32, shape [4,4]

// One generated file: its path, its JSON header (padding included) and the tensor count.
struct bench_file {
    std::string path;
    std::string header;
    std::int64_t tensors = 0;
    std::uint64_t file_size = 0;
};

// The header of N tensors named model.layers.{i}.mlp.gate_proj.weight, F32 [4,4], in
// bytewise name order with consecutive data_offsets, padded with spaces to a multiple of 8.
std::string make_header(std::int64_t n) {
    std::vector<std::string> names;
    names.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i)
        names.push_back("model.layers." + std::to_string(i) + ".mlp.gate_proj.weight");
    std::sort(names.begin(), names.end());  // std::string compares bytewise

    std::string header = "{";
    std::uint64_t offset = 0;
    for (const auto& name : names) {
        if (header.size() > 1) header += ',';
        header += '"' + name + "\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[" +
                  std::to_string(offset) + ',' + std::to_string(offset + tensor_bytes) + "]}";
        offset += tensor_bytes;
    }
    header += '}';
    header.append((8 - header.size() % 8) % 8, ' ');
    return header;
}

// Files are made once per size, outside any timing, in a private temporary folder that is
// removed when the program exits.
class bench_files {
public:
    ~bench_files() {
        std::error_code ec;
        if (!dir_.empty()) fs::remove_all(dir_, ec);
    }

    const bench_file& get(std::int64_t n) {
        auto it = files_.find(n);
        if (it != files_.end()) return it->second;

        if (dir_.empty()) {
            dir_ = fs::temp_directory_path() /
                   ("safetensors-bench-" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) +
                    "-" + std::to_string(fs::file_time_type::clock::now().time_since_epoch().count()));
            fs::create_directories(dir_);
        }
        bench_file f;
        f.header = make_header(n);
        f.tensors = n;
        f.path = (dir_ / ("tensors_" + std::to_string(n) + ".safetensors")).string();

        std::ofstream out(f.path, std::ios::binary | std::ios::trunc);
        unsigned char length[8];
        std::uint64_t len = f.header.size();
        for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(len >> (8 * i));
        out.write(reinterpret_cast<const char*>(length), 8);
        out.write(f.header.data(), static_cast<std::streamsize>(f.header.size()));
        const std::vector<char> zeros(static_cast<std::size_t>(tensor_bytes) * 4096, 0);
        std::uint64_t left = static_cast<std::uint64_t>(n) * tensor_bytes;
        while (left > 0) {
            auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(left, zeros.size()));
            out.write(zeros.data(), static_cast<std::streamsize>(chunk));
            left -= chunk;
        }
        out.close();
        if (!out) throw std::runtime_error("cannot write " + f.path);
        f.file_size = 8 + len + static_cast<std::uint64_t>(n) * tensor_bytes;
        return files_.emplace(n, std::move(f)).first->second;
    }

private:
    fs::path dir_;
    std::map<std::int64_t, bench_file> files_;
};

bench_file const& file_for(std::int64_t n) {
    static bench_files files;
    return files.get(n);
}

void set_common_counters(benchmark::State& state, const bench_file& f) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(f.header.size()));
    state.counters["tensors"] = static_cast<double>(f.tensors);
    state.counters["header_bytes"] = static_cast<double>(f.header.size());
    state.counters["tensors_per_second"] =
        benchmark::Counter(static_cast<double>(f.tensors), benchmark::Counter::kIsIterationInvariantRate);
}

// Minor page faults of this process so far (0 where getrusage is missing).
long page_faults() {
#if defined(__unix__)
    rusage usage{};
    if (::getrusage(RUSAGE_SELF, &usage) == 0) return usage.ru_minflt;
#endif
    return 0;
}

void BM_Open(benchmark::State& state) {
    const bench_file& f = file_for(state.range(0));
    const long faults_before = page_faults();
    for (auto _ : state) {
        auto file = safetensors::open(f.path);
        benchmark::DoNotOptimize(file.size());
    }
    // Faults per open show whether the table memory was reused or fetched fresh from the
    // kernel (on this VM, fresh memory is what makes BM_Open slow and erratic).
    state.counters["faults_per_open"] = benchmark::Counter(static_cast<double>(page_faults() - faults_before),
                                                           benchmark::Counter::kAvgIterations);
    // Checked once, outside the timed loop: the benchmark measures a successful open.
    if (safetensors::open(f.path).size() != static_cast<std::size_t>(f.tensors))
        state.SkipWithError("open() returned the wrong tensor count");
    set_common_counters(state, f);
}

// Accepts every event and keeps nothing: the cost of tokenizing the header and nothing else.
struct null_sax {
    using json = nlohmann::json;
    bool null() { return true; }
    bool boolean(bool) { return true; }
    bool number_integer(json::number_integer_t) { return true; }
    bool number_unsigned(json::number_unsigned_t) { return true; }
    bool number_float(json::number_float_t, const json::string_t&) { return true; }
    bool string(json::string_t&) { return true; }
    bool binary(json::binary_t&) { return true; }
    bool start_object(std::size_t) { return true; }
    bool key(json::string_t&) { return true; }
    bool end_object() { return true; }
    bool start_array(std::size_t) { return true; }
    bool end_array() { return true; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
};

void BM_SaxBaseline(benchmark::State& state) {
    const bench_file& f = file_for(state.range(0));
    const std::string& header = f.header;
    for (auto _ : state) {
        null_sax handler;
        bool ok = nlohmann::json::sax_parse(header.begin(), header.end(), &handler);
        benchmark::DoNotOptimize(ok);
    }
    null_sax handler;
    if (!nlohmann::json::sax_parse(header.begin(), header.end(), &handler))
        state.SkipWithError("the generated header is not valid JSON");
    set_common_counters(state, f);
}


BENCHMARK(BM_Open)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SaxBaseline)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);

} // namespace bench_open
