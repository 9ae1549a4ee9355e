// Replays tests/data/fuzz-regressions/<target>/* through the fuzz targets' own bodies
// (tests/fuzz/fuzz_<target>.hpp): every input a fuzzer ever crashed on stays fixed. A broken
// invariant aborts the run (FUZZ_CHECK), exactly as it did under the fuzzer.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz/fuzz_multipart.hpp"
#include "fuzz/fuzz_reader.hpp"
#include "fuzz/fuzz_roundtrip.hpp"
#include "fuzz/fuzz_slice_spec.hpp"
#include "support/bytes.hpp"

namespace {

// Runs body on every file of the target's folder; returns how many there were.
template <class Body>
std::size_t replay(const std::string& target, Body body) {
    namespace fs = std::filesystem;
    std::vector<fs::path> inputs;
    for (const auto& entry : fs::directory_iterator(test_support::data_path("fuzz-regressions/" + target)))
        if (entry.is_regular_file()) inputs.push_back(entry.path());
    std::sort(inputs.begin(), inputs.end());
    for (const auto& path : inputs) {
        CAPTURE(path.string());
        const auto bytes = test_support::read_all(path.string());
        CHECK(body(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()) == 0);
    }
    return inputs.size();
}

} // namespace

TEST_CASE("fuzz regressions: reader") { CHECK(replay("reader", fuzz::fuzz_reader_one) >= 1); }
TEST_CASE("fuzz regressions: slice_spec") { CHECK(replay("slice_spec", fuzz::fuzz_slice_spec_one) >= 1); }
TEST_CASE("fuzz regressions: roundtrip") { CHECK(replay("roundtrip", fuzz::fuzz_roundtrip_one) >= 1); }
TEST_CASE("fuzz regressions: multipart") { CHECK(replay("multipart", fuzz::fuzz_multipart_one) >= 1); }
