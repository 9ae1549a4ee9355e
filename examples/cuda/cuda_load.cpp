// example-cuda-load: Python's
//
//     with safe_open("model.safetensors", framework="pt", device=0) as f:
//         tensors = {k: f.get_tensor(k) for k in f.keys()}
//
// in C++: every tensor of a file in GPU memory, then one tensor on demand.
//
// 1. safetensors::cuda::loader owns a pinned staging ring for one device; load_file() reads
//    the file with several threads into the ring while the GPU copies out of it, puts every
//    tensor in one device allocation (256-byte aligned each) and returns name -> device_tensor.
//    The tensors share that allocation: it is freed when the last of them is gone.
// 2. upload() is f.get_tensor(k): one tensor (or slice) into memory you own, on your stream.
//
// usage: example-cuda-load FILE [DEVICE]
#include <safetensors/cuda.hpp>
#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace st = safetensors;

namespace {

std::string shape_text(const std::vector<std::uint64_t>& shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "error: usage: %s FILE [DEVICE]\n", argc > 0 ? argv[0] : "example-cuda-load");
        return 1;
    }
    const std::string path = argv[1];
    const int device = argc == 3 ? std::atoi(argv[2]) : 0;
    try {
        // 1. The whole file. Keep the loader to load more files: its ring is allocated once.
        st::cuda::loader gpu(device);
        int shown = -1;
        const auto start = std::chrono::steady_clock::now();
        const st::device_tensor_map tensors = gpu.load_file(path, [&](std::uint64_t done, std::uint64_t total) {
            const int percent = total ? static_cast<int>(100 * done / total) : 100;
            if (percent / 25 != shown / 25) std::fprintf(stderr, "loading: %3d %%\n", shown = percent);
            return true;  // false would cancel: errc::cancelled, nothing left allocated
        });
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        std::size_t listed = 0;
        for (const auto& [name, t] : tensors) {
            if (++listed > 10) break;
            std::printf("%-40s %-5s %-16s %10llu bytes at %p on cuda:%d\n", st::detail::quote(name).c_str(),
                        std::string(st::to_string(t.dtype)).c_str(), shape_text(t.shape).c_str(),
                        static_cast<unsigned long long>(t.byte_size), t.data, t.device);
        }
        if (tensors.size() > 10) std::printf("... and %zu more\n", tensors.size() - 10);
        const st::cuda::load_stats s = gpu.last_stats();
        std::printf("%zu tensors, %.3f GB in %.1f ms: %.2f GB/s (%zu reads, %zu copies)\n", tensors.size(),
                    static_cast<double>(s.bytes) / 1e9, seconds * 1e3,
                    seconds > 0 ? static_cast<double>(s.bytes) / seconds / 1e9 : 0.0, s.reads, s.copies);
        // Which side held the load back: readers waiting for slots means the copies (PCIe) did.
        std::printf("readers: %.1f ms reading, %.1f ms waiting for slots; %.1f ms waiting for reads\n",
                    s.read_seconds * 1e3, s.slot_wait_seconds * 1e3, s.issue_wait_seconds * 1e3);

        // 2. One tensor on demand, into caller-owned memory on a caller stream.
        const st::file f = st::open(path);
        if (f.empty()) return 0;
        const st::tensor_view v = f.tensor_at(f.size() - 1);
        st::cuda::device_scope on(device);
        auto memory = st::cuda::make_device_memory(device, static_cast<std::size_t>(v.byte_size()) + 1);
        auto stream = st::cuda::make_stream();
        gpu.upload(v, memory.get(), stream.get()).wait();
        std::vector<unsigned char> back(static_cast<std::size_t>(std::min<std::uint64_t>(v.byte_size(), 16)));
        std::vector<unsigned char> file_bytes(back.size());
        st::cuda::check(cudaMemcpy(back.data(), memory.get(), back.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
        v.read_bytes(0, file_bytes.data(), file_bytes.size());
        const bool same = back == file_bytes;
        std::printf("upload(%s): %llu bytes, first bytes %s the file's\n", st::detail::quote(v.name()).c_str(),
                    static_cast<unsigned long long>(v.byte_size()), same ? "match" : "DO NOT match");
        return same ? 0 : 1;
    } catch (const st::error& e) {
        std::fprintf(stderr, "error: %s\n", e.message().c_str());
        return 1;
    }
}
