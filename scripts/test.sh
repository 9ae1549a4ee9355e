#!/usr/bin/env bash
# The project's test command (what CI runs). Installs missing Debian packages first
# (scripts/install-deps.sh; SKIP_DEPS=1 to skip), then runs the stages:
#   1. g++, C++17, Release (-O2), -Werror: tests, examples, benchmarks; ctest incl. consumers
#   2. clang++, C++20, ASan+UBSan (any finding fatal): tests and examples (no CUDA);
#      ctest without the consumer tests
#   3. MinGW-w64 compile-only check of the public API
#   4. 32-bit (g++ -m32, -O1, -Werror): the public-API compile check, then the unit tests
#      built and run (ctest -L unit; the tools they call are built 32-bit too)
#   5. clang++ ThreadSanitizer: tests/test_threads.cpp (8 threads on one open file, map and
#      read mode; concurrent saves), any report fatal
#   6. fuzz smoke: the libFuzzer targets in tests/fuzz, built with clang++, each run for
#      FUZZ_SMOKE_SECONDS (default 10) on the reference fixtures (tests/fuzz/run.sh)
# Each stage builds in its own folder under build/, with -j2 (JOBS=N to change); the summary
# at the end prints each stage's time (all six: 17 to 20 minutes on this 2-core VM).
# Arguments pick stages: scripts/test.sh 2 4 runs stages 2 and 4 only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="${JOBS:-2}"

if [[ "${SKIP_DEPS:-0}" != 1 ]]; then
    scripts/install-deps.sh all
fi
summary=()

stage() {
    local name="$1"
    shift
    echo
    echo "=== stage: $name"
    local start=$SECONDS
    "$@"
    local took=$((SECONDS - start))
    summary+=("$(printf '%-34s %4ds' "$name" "$took")")
    echo "=== stage: $name: ok (${took}s)"
}

gcc_release() {
    local dir=build/gcc-release
    cmake -S . -B "$dir" \
        -DCMAKE_CXX_COMPILER="${CXX_GCC:-g++}" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
        -DSAFETENSORS_BUILD_TESTS=ON -DSAFETENSORS_BUILD_EXAMPLES=ON \
        -DSAFETENSORS_BUILD_BENCHMARKS=ON -DSAFETENSORS_WERROR=ON -DSAFETENSORS_SANITIZE=
    cmake --build "$dir" -j "$jobs"
    (cd "$dir" && ctest --output-on-failure -j "$jobs")
}

clang_sanitize() {
    local dir=build/clang-asan-ubsan
    cmake -S . -B "$dir" \
        -DCMAKE_CXX_COMPILER="${CXX_CLANG:-clang++}" \
        -DCMAKE_CXX_STANDARD=20 -DCMAKE_CXX_EXTENSIONS=OFF \
        -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -gline-tables-only" \
        -DSAFETENSORS_BUILD_TESTS=ON -DSAFETENSORS_BUILD_EXAMPLES=ON \
        -DSAFETENSORS_BUILD_BENCHMARKS=OFF -DSAFETENSORS_WERROR=ON \
        -DSAFETENSORS_SANITIZE=address,undefined -DSAFETENSORS_CUDA=OFF
    cmake --build "$dir" -j "$jobs"
    (
        cd "$dir"
        export ASAN_OPTIONS="abort_on_error=1:halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:strict_init_order=1"
        export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
        ctest --output-on-failure -j "$jobs" -LE consumer
    )
}

m32_tests() {
    tests/compile/check.sh m32
    local dir=build/gcc-m32
    cmake -S . -B "$dir" \
        -DCMAKE_CXX_COMPILER="${CXX_M32:-g++}" -DCMAKE_CXX_FLAGS="-m32" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
        -DSAFETENSORS_BUILD_TESTS=ON -DSAFETENSORS_BUILD_EXAMPLES=ON \
        -DSAFETENSORS_BUILD_BENCHMARKS=OFF -DSAFETENSORS_WERROR=ON -DSAFETENSORS_SANITIZE= \
        -DSAFETENSORS_TEST_CONSUMERS=OFF -DSAFETENSORS_CUDA=OFF
    cmake --build "$dir" --target safetensors-tests -j "$jobs"
    (cd "$dir" && ctest --output-on-failure -j "$jobs" -L unit)
}

# One translation unit and doctest's main: much faster than a TSan build of every test file.
thread_sanitizer() {
    local dir=build/clang-tsan
    mkdir -p "$dir/tmp"
    "${CXX_CLANG:-clang++}" -std=c++17 -O1 -g -fsanitize=thread -fno-omit-frame-pointer \
        -Wall -Wextra -Wpedantic -Werror -pthread -Iinclude \
        -DSAFETENSORS_TEST_DATA_DIR="\"$root/tests/data\"" -DSAFETENSORS_TEST_TMP_DIR="\"$root/$dir/tmp\"" \
        tests/main.cpp tests/test_threads.cpp -o "$dir/test-threads"
    TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:second_deadlock_stack=1" "$dir/test-threads" --no-version
}

fuzz_smoke() {
    local seconds="${FUZZ_SMOKE_SECONDS:-10}" target
    for target in $(cd tests/fuzz && ls fuzz_*.cpp | sed 's/^fuzz_//; s/\.cpp$//'); do
        FUZZ_BUILD_DIR=build/fuzz FUZZ_BUILD_TARGET=fuzzers FUZZ_JOBS="$jobs" tests/fuzz/run.sh "$target" "$seconds" "build/fuzz-runs/smoke-$target"
    done
}

wanted=("$@")
[[ ${#wanted[@]} -eq 0 ]] && wanted=(1 2 3 4 5 6)
for n in "${wanted[@]}"; do
    case "$n" in
        1) stage "1 g++ C++17 Release -Werror" gcc_release ;;
        2) stage "2 clang++ C++20 ASan+UBSan" clang_sanitize ;;
        3) stage "3 MinGW-w64 compile-only" tests/compile/check.sh mingw ;;
        4) stage "4 32-bit (-m32) unit tests" m32_tests ;;
        5) stage "5 clang++ ThreadSanitizer" thread_sanitizer ;;
        6) stage "6 fuzz smoke (libFuzzer)" fuzz_smoke ;;
        *) echo "test.sh: no stage '$n' (stages: 1 2 3 4 5 6)" >&2; exit 2 ;;
    esac
done

echo
echo "=== stages passed: ${wanted[*]}"
printf '%s\n' "${summary[@]}"
echo "total                              $(printf '%4d' "$SECONDS")s"
