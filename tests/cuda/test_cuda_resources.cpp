// The CUDA resource handles (cuda_resources.hpp): errors everywhere, the handles themselves on
// a real device (test suite "gpu", skipped without one).
#include <safetensors/cuda_resources.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

namespace st = safetensors;
using st::errc;

TEST_CASE("check: success passes, a failure is errc::cuda_error with CUDA's name and text") {
    CHECK_NOTHROW(st::cuda::check(cudaSuccess, "cudaMemcpy"));
    try {
        st::cuda::check(cudaErrorInvalidValue, "cudaMemcpy");
        FAIL("no error");
    } catch (const st::error& e) {
        CHECK(e.code() == errc::cuda_error);
        CHECK(e.message() == std::string("cudaMemcpy: cudaErrorInvalidValue: ") +
                                 cudaGetErrorString(cudaErrorInvalidValue));
    }
}

TEST_SUITE_BEGIN("gpu");

TEST_CASE("the handles: device_scope, stream, event, pinned and device memory round-trip bytes") {
    int before = -1;
    st::cuda::check(cudaGetDevice(&before), "cudaGetDevice");
    {
        st::cuda::device_scope scope(0);
        int now = -1;
        st::cuda::check(cudaGetDevice(&now), "cudaGetDevice");
        CHECK(now == 0);
    }
    int after = -1;
    st::cuda::check(cudaGetDevice(&after), "cudaGetDevice");
    CHECK(after == before);

    // Below and above the size where pinned memory comes from mapped (huge) pages.
    for (std::size_t bytes : {std::size_t{1000}, std::size_t{8} << 20}) {
        st::cuda::unique_pinned host = st::cuda::make_pinned(bytes);
        st::cuda::unique_device_memory device = st::cuda::make_device_memory(0, bytes);
        cudaPointerAttributes attributes{};
        st::cuda::check(cudaPointerGetAttributes(&attributes, host.get()), "cudaPointerGetAttributes");
        CHECK(attributes.type == cudaMemoryTypeHost);
        st::cuda::check(cudaPointerGetAttributes(&attributes, device.get()), "cudaPointerGetAttributes");
        CHECK(attributes.type == cudaMemoryTypeDevice);

        std::vector<unsigned char> expected(bytes);
        for (std::size_t i = 0; i < bytes; ++i) expected[i] = static_cast<unsigned char>(i * 7 + 1);
        std::memcpy(host.get(), expected.data(), bytes);
        st::cuda::unique_stream stream = st::cuda::make_stream();
        st::cuda::unique_event done = st::cuda::make_event();
        st::cuda::check(cudaMemcpyAsync(device.get(), host.get(), bytes, cudaMemcpyHostToDevice, stream.get()),
                        "cudaMemcpyAsync");
        st::cuda::check(cudaEventRecord(done.get(), stream.get()), "cudaEventRecord");
        st::cuda::check(cudaEventSynchronize(done.get()), "cudaEventSynchronize");
        std::vector<unsigned char> back(bytes);
        st::cuda::check(cudaMemcpy(back.data(), device.get(), bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
        CHECK(back == expected);
    }
}

TEST_SUITE_END();
