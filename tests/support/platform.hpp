// Test support: tests that cannot mean anything on Windows (fork, uid switching, FIFOs, device
// nodes, mount namespaces, POSIX-only calls) carry a decorator that skips them there and says
// why; tests/main.cpp lists every skipped test case with its reason at the end of the run.
//
//   TEST_CASE("name" * POSIX_ONLY("uses fork and setrlimit")) {
//   #if !defined(_WIN32)
//       ... the POSIX body ...
//   #endif
//   }
#pragma once

#include <doctest/doctest.h>

namespace test_support {

#if defined(_WIN32)
inline constexpr bool on_windows = true;
#else
inline constexpr bool on_windows = false;
#endif

} // namespace test_support

#define POSIX_ONLY(reason) doctest::skip(test_support::on_windows) * doctest::description("POSIX only: " reason)
