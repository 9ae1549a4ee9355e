// safetensors-hpp: what the OS layer (os.hpp) decides at preprocessing time, without any OS
// header: which implementation is compiled, whether std::thread exists, whether the x86 SIMD
// kernels may be used, and the types both implementations share. Cheap to include anywhere.
#pragma once

// The implementation os.hpp includes: os_win32.hpp (1) or os_posix.hpp (0).
#if defined(_WIN32)
#define SAFETENSORS_DETAIL_OS_WINDOWS 1
#else
#define SAFETENSORS_DETAIL_OS_WINDOWS 0
#endif

// MinGW's win32 thread model (GCC before 13) has no std::thread: reads run serially there.
#if defined(__MINGW32__) && !defined(_GLIBCXX_HAS_GTHREADS)
#define SAFETENSORS_DETAIL_NO_THREADS 1
#endif

// The vectorized x86 kernels (convert_x86.hpp) need 32-byte stack alignment for AVX code,
// which MinGW's GCC cannot keep (GCC bug 54412): 1 where that alignment can be relied on.
#if defined(_WIN32)
#define SAFETENSORS_DETAIL_AVX_STACK_OK 0
#else
#define SAFETENSORS_DETAIL_AVX_STACK_OK 1
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#if !defined(_WIN32)
// The format is little-endian and views hand out the file's bytes as-is; byte-swapping
// every access would defeat zero-copy, so big-endian hosts are refused outright.
#error "safetensors-hpp supports little-endian hosts only"
#endif
#endif

namespace safetensors::detail::os {

// Access-pattern hint for a mapped file (madvise); ignored where there is none.
enum class advice { normal, sequential, random, willneed };

// What save() does with its target (see check_target in os.hpp).
enum class target_kind {
    replace,    // a regular file, a link to one, or nothing yet: write a temporary file, rename it
    stream,     // a character device or a FIFO (/dev/stdout, a pipe): write straight through
    overwrite,  // a regular file reached through /dev or /proc (/dev/stdout redirected to a
                // file): truncated and written through, since renaming there would replace
                // the /dev/stdout link itself
};

// What a new thread runs (os::thread): run(arg).
struct thread_start {
    void (*run)(void*) = nullptr;
    void* arg = nullptr;
};

} // namespace safetensors::detail::os
