// libFuzzer entry point for fuzz_slice_spec; the body is in fuzz_slice_spec.hpp (shared with the
// regression tests in tests/test_fuzz_regressions.cpp).
#include "fuzz_slice_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return fuzz::fuzz_slice_spec_one(data, size);
}
