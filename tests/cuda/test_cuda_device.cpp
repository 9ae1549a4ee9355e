// The CUDA loader on a real device (test suite "gpu", skipped without one): every fixture file,
// subset, slice and split arrives byte for byte (copied back and compared with the host's
// bytes and the manifests' SHA-256), through every engine path (threads, tiny rings, direct
// I/O, block reads with 2D copies), and every error path cleans up after itself.
#include <safetensors/cuda.hpp>

#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <nlohmann/json.hpp>

#include "../support/sha256.hpp"

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

namespace st = safetensors;
namespace fs = std::filesystem;
using st::errc;

namespace {

// The fixtures: SAFETENSORS_TEST_DATA_DIR from the environment, else from the build, else
// tests/data below the working directory (bench/cuda/run.sh runs from the repository root).
std::string data_dir() {
    if (const char* env = std::getenv("SAFETENSORS_TEST_DATA_DIR")) return env;
#ifdef SAFETENSORS_TEST_DATA_DIR
    if (fs::exists(SAFETENSORS_TEST_DATA_DIR)) return SAFETENSORS_TEST_DATA_DIR;
#endif
    return "tests/data";
}

std::vector<std::string> fixture_files() {
    std::vector<std::string> out;
    const fs::path root = fs::path(data_dir()) / "reference";
    for (const char* dir : {"valid", "model/gpt2_tiny", "model/gpt2_tiny_sharded"})
        for (const auto& entry : fs::directory_iterator(root / dir))
            if (entry.path().extension() == ".safetensors") out.push_back(entry.path().string());
    std::sort(out.begin(), out.end());
    REQUIRE(out.size() >= 20);
    return out;
}

nlohmann::json manifest() {
    std::ifstream in(fs::path(data_dir()) / "reference" / "valid" / "manifest.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
}

std::vector<std::byte> to_host(const void* device, std::size_t n) {
    std::vector<std::byte> out(n);
    if (n) st::cuda::check(cudaMemcpy(out.data(), device, n, cudaMemcpyDeviceToHost), "cudaMemcpy");
    return out;
}

std::vector<std::byte> host_bytes(const st::tensor_view& v) {
    std::vector<std::byte> out(static_cast<std::size_t>(v.byte_size()));
    v.read_bytes(0, out.data(), out.size());
    return out;
}

std::vector<std::byte> host_bytes(const st::tensor_slice& s) {
    std::vector<std::byte> out(static_cast<std::size_t>(s.byte_size()));
    s.copy_to(out.data(), out.size());
    return out;
}

std::size_t free_device_memory() {
    std::size_t free = 0, total = 0;
    st::cuda::check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    return free;
}

void check_tensor(const st::device_tensor& d, const st::tensor_view& v, int device) {
    INFO("tensor " << std::string(v.name()));
    CHECK(d.name == v.name());
    CHECK(d.dtype == v.dtype());
    CHECK(st::span<const std::uint64_t>(d.shape) == v.shape());
    CHECK(d.device == device);
    CHECK(d.byte_size == v.byte_size());
    // A load whose tensors are all empty allocates nothing: no data, no owner.
    if (d.byte_size) CHECK(d.data != nullptr);
    if (d.data != nullptr) CHECK(d.owner != nullptr);
    if (d.byte_size) CHECK(reinterpret_cast<std::uintptr_t>(d.data) % 256 == 0);
    CHECK(to_host(d.data, d.byte_size) == host_bytes(v));
}

void check_map(const st::device_tensor_map& m, const st::file& f) {
    REQUIRE(m.size() == f.size());
    for (const auto& v : f) {
        auto it = m.find(v.name());
        REQUIRE(it != m.end());
        check_tensor(it->second, v, 0);
    }
}

// Engine settings that take every path: defaults, one thread, a ring of two 4 KiB slots
// (many chunks, constant slot reuse), and block reads with 2D copies for strided slices.
std::vector<st::cuda::loader_options> engine_settings() {
    st::cuda::loader_options one_thread;
    one_thread.threads = 1;
    st::cuda::loader_options tiny;
    tiny.staging_bytes = 8192;
    tiny.chunk_bytes = 4096;
    tiny.threads = 4;
    st::cuda::loader_options gaps = tiny;
    gaps.staging_bytes = 3 * 4096;
    gaps.read_gap = 1 << 16;
    st::cuda::loader_options blocking = tiny;  // a tiny ring: the readers wait for slots often
    blocking.blocking_wait = true;
    return {st::cuda::loader_options{}, one_thread, tiny, gaps, blocking};
}

// A safetensors file of the given tensors (name, dtype, shape; bytes are a pattern).
struct spec {
    std::string name;
    std::string dtype;
    std::vector<std::uint64_t> shape;
    std::size_t element_bytes;
};

std::string write_file(const std::string& file_name, const std::vector<spec>& tensors) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    std::uint64_t offset = 0;
    std::string data;
    std::uint32_t x = 12345;
    for (const spec& t : tensors) {
        std::uint64_t n = t.element_bytes;
        for (auto d : t.shape) n *= d;
        header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
        for (std::uint64_t i = 0; i < n; ++i) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            data.push_back(static_cast<char>(x));
        }
        offset += n;
    }
    const std::string json = header.dump();
    const fs::path path = fs::temp_directory_path() / file_name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    const std::uint64_t n = json.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
    out << json << data;
    REQUIRE(out.good());
    return path.string();
}

// A file in the temporary directory, removed at exit.
struct temporary_file {
    std::string path;
    ~temporary_file() {
        std::error_code ignored;
        fs::remove(path, ignored);
    }
};

// About 48 MiB: BF16 matrices (column shards have 2-KiB runs), vectors, odd-sized tensors
// (so the 256-byte alignment leaves gaps) and tiny ones.
std::string big_file() {
    static const temporary_file file{[] {
        std::vector<spec> tensors;
        for (int i = 0; i < 12; ++i) {
            tensors.push_back({"layer" + std::to_string(i) + ".w", "BF16", {1024, 1536}, 2});
            tensors.push_back({"layer" + std::to_string(i) + ".b", "BF16", {1536}, 2});
            tensors.push_back({"layer" + std::to_string(i) + ".odd", "U8", {1000u + 7u * i}, 1});
            tensors.push_back({"layer" + std::to_string(i) + ".scale", "F32", {}, 4});
            tensors.push_back({"layer" + std::to_string(i) + ".up", "F32", {512, 1000}, 4});
        }
        return write_file("safetensors-cuda-test-big.safetensors", tensors);
    }()};
    return file.path;
}

} // namespace

TEST_SUITE_BEGIN("gpu");

TEST_CASE("every fixture file loads to device 0 byte for byte, with every engine setting") {
    const auto files = fixture_files();
    for (const auto& options : engine_settings()) {
        st::cuda::loader gpu(0, options);
        for (const auto& path : files) {
            INFO(path << " (threads " << options.threads << ", chunk " << options.chunk_bytes << ", "
                      << (options.blocking_wait ? "blocking" : "spinning") << " waits)");
            const st::file f = st::open(path);
            const st::device_tensor_map m = gpu.load(f);
            check_map(m, f);
            std::uint64_t total = 0;
            for (const auto& v : f) total += v.byte_size();
            CHECK(gpu.last_stats().bytes == total);
            CHECK(gpu.last_stats().read_bytes == total);  // buffered: only the tensors' bytes
            check_map(gpu.load_file(path), f);
        }
    }
    // Direct I/O (falls back to buffered reads where the file system refuses O_DIRECT).
    st::cuda::loader_options direct;
    direct.direct_io = true;
    direct.staging_bytes = 1 << 16;
    direct.chunk_bytes = 1 << 13;
    st::cuda::loader gpu(0, direct);
    for (const auto& path : files) {
        INFO(path << " (direct I/O)");
        check_map(gpu.load_file(path), st::open(path));
    }
    MESSAGE("direct I/O used: " << std::string(gpu.last_stats().direct_io ? "yes" : "no (file system refuses O_DIRECT)"));
}

TEST_CASE("the one-shot load_file, and subsets by name") {
    const std::string path = data_dir() + "/reference/model/gpt2_tiny/model.safetensors";
    const st::file f = st::open(path);
    check_map(st::cuda::load_file(path, 0), f);

    st::cuda::loader gpu(0);
    const auto names = f.keys();
    const std::vector<std::string> some{std::string(names[3]), std::string(names[0]), std::string(names.back())};
    for (const auto& m : {gpu.load(f, some), gpu.load_file(path, some)}) {
        REQUIRE(m.size() == 3);
        for (const auto& name : some) check_tensor(m.at(name), f.tensor(name), 0);
    }
    CHECK(gpu.load(f, std::vector<std::string>{}).empty());
    try {
        (void)gpu.load(f, {"no.such.tensor"});
        FAIL("no error");
    } catch (const st::error& e) {
        CHECK(e.code() == errc::tensor_not_found);
    }
    try {
        (void)gpu.load(f, {some[0], some[0]});
        FAIL("no error");
    } catch (const st::error& e) {
        CHECK(e.code() == errc::invalid_argument);
    }
}

TEST_CASE("load_into: one arena from the caller's allocator (the Python module hands torch's)") {
    const std::string path = data_dir() + "/reference/model/gpt2_tiny/model.safetensors";
    const st::file f = st::open(path);
    st::cuda::loader gpu(0);
    int calls = 0;
    std::uint64_t asked = 0;
    std::byte* arena = nullptr;
    {
        const st::device_tensor_map m = gpu.load_into(f, [&](std::uint64_t bytes) {
            ++calls;
            asked = bytes;
            void* p = nullptr;
            st::cuda::check(cudaMalloc(&p, static_cast<std::size_t>(bytes)), "cudaMalloc");
            arena = static_cast<std::byte*>(p);
            return std::shared_ptr<void>(p, [](void* q) { (void)cudaFree(q); });
        });
        CHECK(calls == 1);
        check_map(m, f);
        for (const auto& entry : m) {
            const auto* at = static_cast<const std::byte*>(entry.second.data);
            if (entry.second.byte_size) CHECK((at >= arena && at + entry.second.byte_size <= arena + asked));
        }
    }
    // The allocator's failure reaches the caller, and the loader still works afterwards.
    try {
        (void)gpu.load_into(f, [](std::uint64_t) -> std::shared_ptr<void> { throw std::runtime_error("no arena"); });
        FAIL("no error");
    } catch (const std::exception& e) {
        CHECK(std::string(e.what()) == "no arena");
    }
    try {
        (void)gpu.load_into(f, [](std::uint64_t) { return std::shared_ptr<void>(); });
        FAIL("no error");
    } catch (const st::error& e) {
        CHECK(e.code() == errc::invalid_argument);
    }
    check_map(gpu.load(f), f);
}

TEST_CASE("upload one tensor to caller memory on a caller stream") {
    const st::file f = st::open(data_dir() + "/reference/valid/all_dtypes.safetensors");
    auto stream = st::cuda::make_stream();
    for (const auto& options : engine_settings()) {
        st::cuda::loader gpu(0, options);
        for (const auto& v : f) {
            INFO(std::string(v.name()));
            auto dst = st::cuda::make_device_memory(0, static_cast<std::size_t>(v.byte_size()) + 1);
            st::cuda::pending_upload up = gpu.upload(v, dst.get(), stream.get());
            up.wait();
            CHECK(up.ready());
            CHECK(to_host(dst.get(), static_cast<std::size_t>(v.byte_size())) == host_bytes(v));
        }
    }
    st::cuda::loader gpu(0);
    try {
        (void)gpu.upload(f.tensor("big_f32_64x64"), nullptr, stream.get());
        FAIL("no error");
    } catch (const st::error& e) {
        CHECK(e.code() == errc::invalid_argument);
    }
}

TEST_CASE("every slice of the slicing fixture matches the host result and the manifest") {
    const st::file f = st::open(data_dir() + "/reference/valid/slicing.safetensors");
    const auto slices = manifest()["slicing.safetensors"]["slices"];
    auto stream = st::cuda::make_stream();
    int checked = 0;
    for (const auto& options : engine_settings()) {
        st::cuda::loader gpu(0, options);
        for (const auto& by_tensor : slices.items())
            for (const auto& by_label : by_tensor.value().items()) {
                // Named copies: doctest's INFO captures them, and C++17 lambdas cannot capture
                // structured bindings.
                const std::string tensor = by_tensor.key();
                const nlohmann::json& expected = by_label.value();
                if (expected.contains("error")) continue;  // the host slicing tests cover errors
                INFO(tensor << "[" << expected["spec"].get<std::string>() << "]");
                const st::tensor_slice s = f.tensor(tensor).slice(expected["spec"].get<std::string>());
                CHECK(std::vector<std::uint64_t>(s.shape().begin(), s.shape().end()) ==
                      expected["shape"].get<std::vector<std::uint64_t>>());
                auto dst = st::cuda::make_device_memory(0, static_cast<std::size_t>(s.byte_size()) + 1);
                gpu.upload(s, dst.get(), stream.get()).wait();
                const auto got = to_host(dst.get(), static_cast<std::size_t>(s.byte_size()));
                CHECK(got == host_bytes(s));
                CHECK(test_support::sha256_hex(got.data(), got.size()) == expected["sha256"].get<std::string>());
                ++checked;
            }
    }
    CHECK(checked >= 4 * 45);
}

TEST_CASE("tensor-parallel parts: upload, load_parts and load_file_parts match the host parts") {
    const std::string path = data_dir() + "/reference/valid/slicing.safetensors";
    const st::file f = st::open(path);
    auto stream = st::cuda::make_stream();
    auto settings = engine_settings();
    settings.back().direct_io = true;  // load_file_parts with O_DIRECT blocks
    for (const auto& options : settings) {
        st::cuda::loader gpu(0, options);
        for (std::uint64_t world = 1; world <= 5; ++world)
            for (std::uint64_t rank = 0; rank < world; ++rank) {
                INFO("rank " << rank << " of " << world << ", threads " << options.threads);
                for (const char* name : {"x_f32", "x_i16", "x_bf16"})
                    for (std::int64_t dim = -1; dim < 3; ++dim) {
                        const st::tensor_slice s = f.tensor(name).split(dim, rank, world);
                        auto dst = st::cuda::make_device_memory(0, static_cast<std::size_t>(s.byte_size()) + 1);
                        gpu.upload(s, dst.get(), stream.get()).wait();
                        CHECK(to_host(dst.get(), static_cast<std::size_t>(s.byte_size())) == host_bytes(s));
                    }
                const std::vector<st::cuda::split_request> requests{{"x_f32", 0}, {"x_i16", 1}, {"x_bf16", 2}, {"v", {}}};
                for (const auto& m : {gpu.load_parts(f, requests, rank, world),
                                      gpu.load_file_parts(path, requests, rank, world)}) {
                    REQUIRE(m.size() == 4);
                    for (const auto& r : requests) {
                        const st::device_tensor& d = m.at(r.name);
                        const st::tensor_view v = f.tensor(r.name);
                        if (!r.dim) {
                            check_tensor(d, v, 0);
                            continue;
                        }
                        const st::tensor_slice s = v.split(*r.dim, rank, world);
                        CHECK(st::span<const std::uint64_t>(d.shape) == s.shape());
                        CHECK(d.byte_size == s.byte_size());
                        CHECK(to_host(d.data, d.byte_size) == host_bytes(s));
                    }
                }
            }
    }
}

TEST_CASE("a 48 MiB file: whole, subsets and column shards through the default engine") {
    const std::string path = big_file();
    const st::file f = st::open(path);
    st::cuda::loader_options gaps;
    gaps.read_gap = 1 << 16;
    st::cuda::loader_options direct;
    direct.direct_io = true;
    for (const auto& options : {st::cuda::loader_options{}, gaps, direct}) {
        st::cuda::loader gpu(0, options);
        check_map(gpu.load_file(path), f);
        std::vector<st::cuda::split_request> requests;
        for (int i = 0; i < 12; ++i) {
            const std::string layer = "layer" + std::to_string(i);
            requests.push_back({layer + ".w", i % 2});  // rows and columns alternately, like Megatron
            requests.push_back({layer + ".up", 1});
            requests.push_back({layer + ".b", {}});
        }
        for (std::uint64_t rank = 0; rank < 4; ++rank) {
            const auto m = gpu.load_file_parts(path, requests, rank, 4);
            for (const auto& r : requests) {
                const st::tensor_view v = f.tensor(r.name);
                const auto expected = r.dim ? host_bytes(v.split(*r.dim, rank, 4)) : host_bytes(v);
                CHECK(to_host(m.at(r.name).data, m.at(r.name).byte_size) == expected);
            }
        }
    }
}

TEST_CASE("errors: bad device, out of device memory, cancel, a file that shrank; nothing leaks") {
    for (int device : {99, -1}) {
        try {
            st::cuda::loader gpu(device);
            FAIL("no error");
        } catch (const st::error& e) {
            CHECK(e.code() == errc::cuda_error);
            CHECK(e.message().find("cudaSetDevice(" + std::to_string(device) + ")") != std::string::npos);
            CHECK(e.message().find("cudaErrorInvalidDevice") != std::string::npos);
        }
    }
    try {
        (void)st::cuda::make_device_memory(0, std::size_t{1} << 60);
        FAIL("no error");
    } catch (const st::error& e) {
        CHECK(e.code() == errc::cuda_error);
        CHECK(e.message().find("cudaErrorMemoryAllocation") != std::string::npos);
    }

    const std::string path = big_file();
    st::cuda::loader gpu(0);
    (void)gpu.load_file(path);  // warm up: lazily created driver state is not a leak
    const std::size_t before = free_device_memory();
    const std::size_t slack = std::size_t{4} << 20;  // far below the 48 MiB arena

    SUBCASE("out of device memory") {
        // Fill the device but for less than the file needs, then load it.
        std::vector<st::cuda::unique_device_memory> hog;
        std::size_t ask = before;
        while (ask > (std::size_t{16} << 20)) {
            try {
                hog.push_back(st::cuda::make_device_memory(0, ask));
            } catch (const st::error&) {
                ask /= 2;
            }
        }
        try {
            (void)gpu.load_file(path);
            FAIL("no error");
        } catch (const st::error& e) {
            CHECK(e.code() == errc::cuda_error);
            CHECK(e.message().find("cudaMalloc") != std::string::npos);
            CHECK(e.message().find("cudaErrorMemoryAllocation") != std::string::npos);
        }
        hog.clear();
    }
    SUBCASE("cancelled at the first and at the last progress call") {
        for (bool at_end : {false, true}) {
            int calls = 0;
            try {
                (void)gpu.load_file(path, [&](std::uint64_t done, std::uint64_t total) {
                    ++calls;
                    return at_end ? done < total : false;
                });
                FAIL("not cancelled");
            } catch (const st::error& e) {
                CHECK(e.code() == errc::cancelled);
            }
            CHECK(calls >= 1);
        }
    }
    SUBCASE("the file shrinks after it was opened: the readers' error reaches the caller") {
        const std::string copy = (fs::temp_directory_path() / "safetensors-cuda-test-shrink.safetensors").string();
        fs::copy_file(path, copy, fs::copy_options::overwrite_existing);
        const st::file f = st::open(copy);
        fs::resize_file(copy, fs::file_size(copy) / 2);
        try {
            (void)gpu.load(f);
            FAIL("no error");
        } catch (const st::error& e) {
            CHECK(e.code() == errc::short_read);
        }
        fs::remove(copy);
    }
    const std::size_t after = free_device_memory();
    CHECK(after + slack >= before);
    // The loader still works after every failure.
    check_map(gpu.load_file(path), st::open(path));
}

TEST_SUITE_END();
