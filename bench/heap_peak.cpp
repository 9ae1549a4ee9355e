// safetensors-heap-peak: the most heap memory alive at once while opening a file whose
// header lists 100,000 tensors, as a multiple of the header's size (the mapping is not
// heap and is not counted). Every operator new and delete of this program goes through
// the counting versions below. Exits 1 when the peak exceeds the bound (default 4x), so
// ctest runs it as a check:  safetensors-heap-peak [tensors] [bound]
#include <safetensors/safetensors.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <system_error>

namespace {

std::atomic<std::size_t> live{0}, peak{0};

// Each block starts with its size (in a header as wide as the largest alignment used
// here) so delete knows what it frees.
constexpr std::size_t header_bytes = 64;

void* counted_new(std::size_t size, std::size_t alignment) {
    if (alignment < header_bytes) alignment = header_bytes;
    void* block = std::aligned_alloc(alignment, (size + alignment + alignment - 1) / alignment * alignment);
    if (block == nullptr) throw std::bad_alloc();
    auto* user = static_cast<unsigned char*>(block) + alignment;
    reinterpret_cast<std::size_t*>(user)[-1] = size;
    reinterpret_cast<std::size_t*>(user)[-2] = alignment;
    std::size_t now = live.fetch_add(size) + size;
    for (std::size_t seen = peak.load(); now > seen && !peak.compare_exchange_weak(seen, now);) {
    }
    return user;
}

void counted_delete(void* p) noexcept {
    if (p == nullptr) return;
    auto* user = static_cast<unsigned char*>(p);
    std::size_t size = reinterpret_cast<std::size_t*>(user)[-1];
    std::size_t alignment = reinterpret_cast<std::size_t*>(user)[-2];
    live.fetch_sub(size);
    std::free(user - alignment);
}

}  // namespace

void* operator new(std::size_t size) { return counted_new(size, 16); }
void* operator new[](std::size_t size) { return counted_new(size, 16); }
void* operator new(std::size_t size, std::align_val_t a) { return counted_new(size, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t size, std::align_val_t a) { return counted_new(size, static_cast<std::size_t>(a)); }
void operator delete(void* p) noexcept { counted_delete(p); }
void operator delete[](void* p) noexcept { counted_delete(p); }
void operator delete(void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_delete(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_delete(p); }

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    const std::uint64_t tensors = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
    const double bound = argc > 2 ? std::strtod(argv[2], nullptr) : 4.0;

    // The same file as BM_Open: names like model.layers.{i}.mlp.gate_proj.weight, F32 [4,4].
    const fs::path path = fs::temp_directory_path() / ("safetensors-heap-peak-" + std::to_string(tensors) + ".safetensors");
    std::uint64_t header_size = 0;
    {
        std::vector<safetensors::tensor_ref> decls;
        for (std::uint64_t i = 0; i < tensors; ++i)
            decls.push_back({"model.layers." + std::to_string(i) + ".mlp.gate_proj.weight", safetensors::dtype::F32, {4, 4}});
        safetensors::stream_writer writer(path.string(), std::move(decls));
        const std::byte zeros[64] = {};
        for (std::uint64_t i = 0; i < tensors; ++i) writer.write(static_cast<std::size_t>(i), zeros, sizeof zeros);
        writer.commit();
    }

    const std::size_t before = live.load();
    peak = before;
    std::size_t opened_tensors = 0;
    {
        auto f = safetensors::open(path.string());
        opened_tensors = f.size();
        header_size = f.header().header_size();
    }
    const std::size_t peak_bytes = peak.load() - before;
    std::error_code ec;
    fs::remove(path, ec);

    const double ratio = static_cast<double>(peak_bytes) / static_cast<double>(header_size);
    std::printf("tensors %zu, header %llu bytes, peak live heap during open %zu bytes = %.2fx the header (bound %.2fx)\n",
                opened_tensors, static_cast<unsigned long long>(header_size), peak_bytes, ratio, bound);
    if (opened_tensors != tensors) {
        std::printf("FAILED: opened %zu tensors, expected %llu\n", opened_tensors, static_cast<unsigned long long>(tensors));
        return 1;
    }
    if (ratio > bound) {
        std::printf("FAILED: peak above the bound\n");
        return 1;
    }
    return 0;
}
