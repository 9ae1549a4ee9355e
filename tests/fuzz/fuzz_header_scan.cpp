// libFuzzer entry point for fuzz_header_scan, the differential target of the header reader:
// the body is in fuzz_header_scan.hpp (shared with tests/test_header_scan.cpp).
#include "fuzz_header_scan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return fuzz::fuzz_header_scan_one(data, size);
}
