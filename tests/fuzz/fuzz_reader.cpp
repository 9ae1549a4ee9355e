// libFuzzer entry point for fuzz_reader; the body is in fuzz_reader.hpp (shared with the
// regression tests in tests/test_fuzz_regressions.cpp).
#include "fuzz_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return fuzz::fuzz_reader_one(data, size);
}
