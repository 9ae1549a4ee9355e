// Shared by the fuzz targets and by tests/test_fuzz_regressions.cpp: a picker that draws
// small decisions from the input's bytes, and FUZZ_CHECK, which aborts on a broken invariant.
//
// Each target's body is an inline function in fuzz_<name>.hpp, so the doctest suite replays
// saved crash inputs through exactly the code the fuzzer ran.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace fuzz {

// A broken invariant is a bug in the library, whatever the input: report where and abort,
// which libFuzzer records as a crash (and doctest as a failed run).
[[noreturn]] inline void check_failed(const char* what, const char* file, int line) {
    std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", what, file, line);
    std::fflush(stderr);
    std::abort();
}

#define FUZZ_CHECK(condition) \
    ((condition) ? (void)0 : ::fuzz::check_failed(#condition, __FILE__, __LINE__))

// Draws numbers from the input's bytes, back to front (the front is the file's header, which
// the mutations should drive; the back is tensor data, which nothing else reads). Returns 0
// once the bytes are used up, so every input gives a deterministic run.
class picker {
public:
    picker(const std::uint8_t* data, std::size_t size) noexcept : data_(data), left_(size) {}

    std::uint8_t byte() noexcept { return left_ == 0 ? 0 : data_[--left_]; }
    std::uint64_t u64() noexcept {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | byte();
        return v;
    }
    // A number in [0, n) (0 when n is 0).
    std::uint64_t below(std::uint64_t n) noexcept {
        if (n == 0) return 0;
        return (n <= 256 ? byte() : u64()) % n;
    }
    // Mostly small, sometimes huge or at a boundary: what index arithmetic trips on.
    std::uint64_t interesting(std::uint64_t around) noexcept {
        switch (byte() % 8) {
            case 0: return 0;
            case 1: return around;
            case 2: return around + 1;
            case 3: return around == 0 ? 0 : around - 1;
            case 4: return std::uint64_t{1} << (byte() % 64);
            case 5: return ~std::uint64_t{0} - byte() % 4;
            default: return below(around + 2);
        }
    }
    bool flip() noexcept { return (byte() & 1) != 0; }

private:
    const std::uint8_t* data_;
    std::size_t left_;
};

} // namespace fuzz
