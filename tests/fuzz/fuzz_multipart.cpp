// libFuzzer entry point for fuzz_multipart; the body is in fuzz_multipart.hpp (shared with the
// regression tests in tests/test_fuzz_regressions.cpp).
#include "fuzz_multipart.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return fuzz::fuzz_multipart_one(data, size);
}
