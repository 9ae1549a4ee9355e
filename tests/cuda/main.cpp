// safetensors-cuda-tests: the doctest runner of the CUDA tests.
//
// Without a usable CUDA device (no GPU, no driver: cudaGetDeviceCount fails or finds none) it
// prints "SKIPPED: no CUDA device" and excludes the test suite "gpu", which doctest then
// counts as skipped; the host-side engine tests (test_cuda_staging.cpp) run everywhere. The
// exit status is doctest's, so 0 when nothing failed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <cstdio>

int main(int argc, char** argv) {
    doctest::Context context(argc, argv);
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess || count == 0) {
        std::printf("SKIPPED: no CUDA device (cudaGetDeviceCount: %s, %d devices); the test suite \"gpu\" is "
                    "skipped, the host-side engine tests run\n",
                    status == cudaSuccess ? "cudaSuccess" : cudaGetErrorName(status), count);
        (void)cudaGetLastError();
        context.addFilter("test-suite-exclude", "gpu");
    } else {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
            std::printf("CUDA devices: %d; device 0: %s (sm_%d%d, %.1f GiB)\n", count, prop.name, prop.major,
                        prop.minor, static_cast<double>(prop.totalGlobalMem) / (1 << 30));
    }
    std::fflush(stdout);
    return context.run();
}
