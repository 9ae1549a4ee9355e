// libFuzzer entry point for fuzz_roundtrip; the body is in fuzz_roundtrip.hpp (shared with the
// regression tests in tests/test_fuzz_regressions.cpp).
#include "fuzz_roundtrip.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return fuzz::fuzz_roundtrip_one(data, size);
}
