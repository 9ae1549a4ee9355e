// safetensors-hpp: owning handles for the CUDA runtime's resources, and its errors as
// safetensors::error.
//
//   safetensors::cuda::device_scope on(1);                   // device 1 current until scope end
//   auto stream = safetensors::cuda::make_stream();          // cudaStreamDestroy at scope end
//   auto staging = safetensors::cuda::make_pinned(bytes);    // page-locked, page aligned
//   auto weights = safetensors::cuda::make_device_memory(1, bytes);
//   safetensors::cuda::check(cudaMemcpy(...), "cudaMemcpy"); // errc::cuda_error on failure
//
// The loader (safetensors/cuda.hpp, which includes this header) is built from these; they are
// public so that callers can own the streams and memory they hand to it. Optional, like
// cuda.hpp: it includes cuda_runtime.h and is not in the umbrella header; no kernels, so any
// C++17 compiler builds it given CUDA's include path and libcudart (CMake: safetensors::cuda).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <type_traits>

#include "detail/os.hpp"
#include "error.hpp"
#include "source.hpp"

namespace safetensors::cuda {

// ---- Errors -------------------------------------------------------------------------------------

// Throws safetensors::error(errc::cuda_error): "<what>: cudaErrorX: <CUDA's text>".
[[noreturn]] inline void throw_cuda_error(cudaError_t status, const std::string& what) {
    // The runtime also records the error for cudaGetLastError(); clear it so that an unrelated
    // later check does not report it again (a sticky error, a broken context, stays anyway).
    (void)cudaGetLastError();
    safetensors::detail::throw_error(errc::cuda_error,
                                     what + ": " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
}

inline void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) throw_cuda_error(status, what);
}

// ---- RAII for every CUDA resource ---------------------------------------------------------------

// Makes `device` current on this thread for a scope, then restores the previous one (CUDA's
// current device is per thread, and a library must not leave it changed).
class device_scope {
public:
    explicit device_scope(int device) {
        check(cudaGetDevice(&previous_), "cudaGetDevice");
        if (device == previous_) return;
        const cudaError_t status = cudaSetDevice(device);
        if (status != cudaSuccess) throw_cuda_error(status, "cudaSetDevice(" + std::to_string(device) + ")");
        changed_ = true;
    }
    ~device_scope() {
        if (changed_) (void)cudaSetDevice(previous_);
    }
    device_scope(const device_scope&) = delete;
    device_scope& operator=(const device_scope&) = delete;

private:
    int previous_ = 0;
    bool changed_ = false;
};

struct stream_deleter {
    void operator()(cudaStream_t s) const noexcept { (void)cudaStreamDestroy(s); }
};
struct event_deleter {
    // Destroying an event whose work is still pending is allowed: CUDA frees it when done.
    void operator()(cudaEvent_t e) const noexcept { (void)cudaEventDestroy(e); }
};
struct pinned_deleter {
    std::size_t mapped_length = 0;  // non-zero: the bytes came from detail::allocate_aligned's mmap
    void operator()(void* p) const noexcept {
        (void)cudaHostUnregister(p);
        release(p, mapped_length);
    }
    static void release(void* p, std::size_t mapped_length) noexcept {
        if (mapped_length != 0)
            safetensors::detail::aligned_delete{mapped_length}(static_cast<std::byte*>(p));
        else
            ::operator delete(p, std::align_val_t{pinned_alignment});
    }
    static constexpr std::size_t pinned_alignment = 4096;
};
struct device_deleter {
    int device = 0;
    void operator()(void* p) const noexcept {
        int previous = 0;
        const bool switch_device = cudaGetDevice(&previous) == cudaSuccess && previous != device;
        if (switch_device) (void)cudaSetDevice(device);
        (void)cudaFree(p);
        if (switch_device) (void)cudaSetDevice(previous);
    }
};

using unique_stream = std::unique_ptr<std::remove_pointer_t<cudaStream_t>, stream_deleter>;
using unique_event = std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, event_deleter>;
using unique_pinned = std::unique_ptr<void, pinned_deleter>;
using unique_device_memory = std::unique_ptr<void, device_deleter>;

// On the current device. Non-blocking: no implicit synchronization with the legacy stream 0.
inline unique_stream make_stream(unsigned flags = cudaStreamNonBlocking) {
    cudaStream_t s = nullptr;
    check(cudaStreamCreateWithFlags(&s, flags), "cudaStreamCreateWithFlags");
    return unique_stream(s);
}
inline unique_event make_event(unsigned flags = cudaEventDisableTiming) {
    cudaEvent_t e = nullptr;
    check(cudaEventCreateWithFlags(&e, flags), "cudaEventCreateWithFlags");
    return unique_event(e);
}
// Page-locked host memory, page aligned, usable for DMA by every device (portable). Ordinary
// memory registered with cudaHostRegister rather than cudaHostAlloc's driver mapping: the
// kernel must be able to DMA into it too, for O_DIRECT reads, and it cannot pin pages of a
// driver mapping (such reads fail with EFAULT). Large buffers are mapped and hinted for
// transparent huge pages (detail::allocate_aligned): fewer pages to pin, and to translate
// for the CPU's copies into the ring.
inline unique_pinned make_pinned(std::size_t bytes) {
    const std::size_t size = bytes == 0 ? 1 : bytes;
    void* p = nullptr;
    std::size_t mapped = 0;
    if (safetensors::detail::os::has_huge_pages && size >= safetensors::detail::huge_alloc_threshold) {
        safetensors::detail::aligned_bytes b = safetensors::detail::allocate_aligned(size);  // pages: page aligned
        mapped = b.get_deleter().mapped_length;
        p = b.release();
    }
    if (p == nullptr) p = ::operator new(size, std::align_val_t{pinned_deleter::pinned_alignment});
    const cudaError_t status = cudaHostRegister(p, size, cudaHostRegisterPortable);
    if (status != cudaSuccess) {
        pinned_deleter::release(p, mapped);
        throw_cuda_error(status, "cudaHostRegister(" + std::to_string(bytes) + " bytes)");
    }
    return unique_pinned(p, pinned_deleter{mapped});
}
// Device memory on `device` (256-byte aligned, as cudaMalloc always is).
inline unique_device_memory make_device_memory(int device, std::size_t bytes) {
    device_scope scope(device);
    void* p = nullptr;
    const cudaError_t status = cudaMalloc(&p, bytes);
    if (status != cudaSuccess)
        throw_cuda_error(status, "cudaMalloc(" + std::to_string(bytes) + " bytes) on device " + std::to_string(device));
    return unique_device_memory(p, device_deleter{device});
}

} // namespace safetensors::cuda
