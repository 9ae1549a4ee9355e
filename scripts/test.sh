#!/usr/bin/env bash
# The project's test command (what CI runs). Installs missing Debian packages first
# (scripts/install-deps.sh; SKIP_DEPS=1 to skip), then runs the stages, each in its own folder
# under build/:
#   gcc      g++ C++17 -Werror: the tools, examples and benchmarks at -O0 (compiled to be
#            checked and run by the tests, not timed), the public API instantiated at -O2,
#            cuda.hpp compiled by nvcc where it exists; ctest (the tool, README blocks,
#            consumers, MPI on 4 ranks, heap peak, CUDA, the HTTP reader against nginx and a
#            fault server, the Python module's pytest suite; its pass count is printed). Not
#            the unit tests: the asan stage runs them (clang++), the windows and m32 stages
#            build and run them with g++.
#   asan     clang++ C++20, ASan+UBSan (any finding fatal): the unit tests, the HTTP tests, the
#            tools and the MPI example they run, the strict API check, every header on its own
#            (strict warnings); ctest without the consumer tests and the README program (both
#            in the gcc stage). The tool, as the tests run it, skips LeakSanitizer's exit scan;
#            the tool.* ctest runs check its leaks
#   windows  MinGW-w64 (POSIX threads) cross-build of the unit tests, run under Wine
#   m32      g++ -m32 -Werror: the public-API compile check and every header (strict warnings,
#            one translation unit); the unit tests at -O0, built and run only where the kernel
#            executes 32-bit binaries (probed first)
#   tsan     clang++ ThreadSanitizer: tests/test_threads.cpp and tests/cuda/test_cuda_staging.cpp,
#            any report fatal
#   fuzz     the libFuzzer targets in tests/fuzz, each for FUZZ_SMOKE_SECONDS (default 6)
#   python   the Python module alone: build/gcc-release configured as the gcc stage does it, only
#            the module built, then its pytest suite (the gcc stage already runs it; this is
#            the edit-test loop for python/ and tests/python)
#
#   scripts/test.sh                 every stage (about 9 minutes on the 2-core CI machine)
#   scripts/test.sh quick           g++ -O0 build of the unit tests and the tools they run,
#                                   then the unit tests (the edit-test loop)
#   scripts/test.sh asan tsan       chosen stages, by name or number (1 gcc, 2 asan,
#                                   3 windows, 4 m32, 5 tsan, 6 fuzz, 7 python)
# JOBS=N sets the build parallelism (default: the number of cores). ccache is used when
# installed (CCACHE_DISABLE=1 turns it off); it is never required. M32_PROBE_EXE=PROGRAM runs
# PROGRAM as the 32-bit probe instead (to check the skip path on a kernel that has IA-32).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

if [[ "${SKIP_DEPS:-0}" != 1 ]]; then
    scripts/install-deps.sh all
fi
summary=()
notes=()

stage() {
    local name="$1"
    shift
    echo
    echo "=== stage: $name"
    local start=$SECONDS
    "$@"
    local took=$((SECONDS - start))
    summary+=("$(printf '%-40s %4ds' "$name" "$took")")
    echo "=== stage: $name: ok (${took}s)"
}

# Options every CMake configure of the project gets: Ninja when installed, ccache when present.
cmake_common=()
command -v ninja >/dev/null 2>&1 && cmake_common+=(-G Ninja)
command -v ccache >/dev/null 2>&1 && cmake_common+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

# nvcc: on PATH, or in the toolkit's usual place. Where it exists, the CUDA tests are required.
nvcc_path="$(command -v nvcc || true)"
[[ -z "$nvcc_path" && -x /usr/local/cuda/bin/nvcc ]] && nvcc_path=/usr/local/cuda/bin/nvcc
cuda_options=()
if [[ -n "$nvcc_path" ]]; then
    cuda_options=(-DSAFETENSORS_REQUIRE_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc_path"
                  "-DCMAKE_CUDA_FLAGS_RELEASE=-O0 -DNDEBUG")
else
    cuda_options=(-DSAFETENSORS_CUDA=OFF)
fi

gcc_configure() {
    cmake -S . -B build/gcc-release "${cmake_common[@]}" "${cuda_options[@]}" \
        -DCMAKE_CXX_COMPILER="${CXX_GCC:-g++}" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DSAFETENSORS_TEST_FLAGS=-O0 \
        -DSAFETENSORS_PROGRAM_FLAGS=-O0 \
        -DSAFETENSORS_BUILD_TESTS=ON -DSAFETENSORS_UNIT_TESTS=OFF -DSAFETENSORS_BUILD_EXAMPLES=ON \
        -DSAFETENSORS_BUILD_BENCHMARKS=ON -DSAFETENSORS_WERROR=ON -DSAFETENSORS_SANITIZE= \
        -DSAFETENSORS_REQUIRE_DLPACK=ON -DSAFETENSORS_REQUIRE_MPI=ON -DSAFETENSORS_REQUIRE_HTTP=ON \
        -DSAFETENSORS_BUILD_PYTHON=ON -DSAFETENSORS_REQUIRE_PYTHON=ON -DSAFETENSORS_PYTHON_FLAGS=-O0
}

# The pytest suite's summary line ("N passed, M skipped in Ss") from ctest's log.
python_summary() {
    local log="$1/Testing/Temporary/LastTest.log" line
    line="$(grep -E '^[0-9]+ passed' "$log" 2>/dev/null | tail -n 1 || true)"
    [[ -n "$line" ]] && echo "python: pytest: $line" && notes+=("python (pytest): $line")
    return 0
}

gcc_release() {
    local dir=build/gcc-release
    gcc_configure
    cmake --build "$dir" -j "$jobs"
    (cd "$dir" && ctest --output-on-failure -j "$jobs")
    python_summary "$dir"
    if [[ -z "$nvcc_path" ]]; then
        notes+=("CUDA: nvcc not found, so the CUDA loader's tests were not built or run")
    fi
}

# The Python module alone (the gcc stage's build folder and options; only the module built).
python_module() {
    local dir=build/gcc-release
    gcc_configure
    cmake --build "$dir" --target safetensors_python -j "$jobs"
    (cd "$dir" && ctest --output-on-failure -L python)
    python_summary "$dir"
}

# The edit-test loop: -O0, no CUDA, no benchmarks; only the tools the unit tests run.
quick() {
    local dir=build/quick
    cmake -S . -B "$dir" "${cmake_common[@]}" -DSAFETENSORS_CUDA=OFF \
        -DCMAKE_CXX_COMPILER="${CXX_GCC:-g++}" \
        -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0" \
        -DSAFETENSORS_BUILD_TESTS=ON -DSAFETENSORS_BUILD_EXAMPLES=ON \
        -DSAFETENSORS_BUILD_BENCHMARKS=OFF -DSAFETENSORS_WERROR=ON -DSAFETENSORS_SANITIZE= \
        -DSAFETENSORS_TEST_CONSUMERS=OFF -DSAFETENSORS_REQUIRE_DLPACK=ON
    cmake --build "$dir" --target safetensors-tests -j "$jobs"
    (cd "$dir" && ctest --output-on-failure -j "$jobs" -L unit)
}

clang_sanitize() {
    local dir=build/clang-asan-ubsan
    cmake -S . -B "$dir" "${cmake_common[@]}" \
        -DCMAKE_CXX_COMPILER="${CXX_CLANG:-clang++}" \
        -DCMAKE_CXX_STANDARD=20 -DCMAKE_CXX_EXTENSIONS=OFF \
        -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -gline-tables-only" \
        -DSAFETENSORS_BUILD_TESTS=ON -DSAFETENSORS_BUILD_EXAMPLES=ON \
        -DSAFETENSORS_BUILD_BENCHMARKS=OFF -DSAFETENSORS_WERROR=ON \
        -DSAFETENSORS_SANITIZE=address,undefined -DSAFETENSORS_CUDA=OFF \
        -DSAFETENSORS_REQUIRE_DLPACK=ON -DSAFETENSORS_REQUIRE_MPI=ON -DSAFETENSORS_REQUIRE_HTTP=ON
    # What runs here (the unit tests, the HTTP tests, the tools they run, the MPI example), the strict API
    # check and every header on its own (clang++; the m32 stage does it with g++); the other
    # examples and the README program are built by the gcc stage.
    cmake --build "$dir" --target safetensors-tests safetensors-http-tests safetensors-inspect safetensors-rewrite \
        example-mpi-shards safetensors-api-check safetensors-header-check -j "$jobs"
    (
        cd "$dir"
        export ASAN_OPTIONS="abort_on_error=1:halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:strict_init_order=1"
        export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
        # The tool as the tests run it (about 1,000 times): without LeakSanitizer's exit scan
        # (30 ms each); ctest's tool.* tests run it with the options above.
        export SAFETENSORS_TEST_CHILD_ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}"
        ctest --output-on-failure -j "$jobs" -LE "consumer|readme"
    )
}

# Windows: the unit tests cross-built with MinGW-w64's POSIX-thread compiler (the win32-thread
# one has no std::thread) and run under Wine. -Og: 40% less compile than -O1 (-O0 objects made
# the static link take over a minute). tests/windows/deps.cmake hands CMake the
# header-only dependencies without the host's /usr/include.
windows() {
    local dir=build/windows cxx="${MINGW_CXX:-x86_64-w64-mingw32-g++-posix}"
    local wine="${WINE:-/usr/lib/wine/wine64}"
    local deps="$root/$dir/deps"
    mkdir -p "$deps/include"
    for header in nlohmann doctest dlpack; do
        [[ -e "/usr/include/$header" ]] || { echo "windows: /usr/include/$header is missing" >&2; return 1; }
        ln -sfn "/usr/include/$header" "$deps/include/$header"
    done
    cmake -S . -B "$dir" "${cmake_common[@]}" \
        -DCMAKE_SYSTEM_NAME=Windows -DCMAKE_CXX_COMPILER="$cxx" \
        -DCMAKE_PROJECT_INCLUDE="$root/tests/windows/deps.cmake" -DSAFETENSORS_WINDOWS_DEPS="$deps/include" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-Og -DNDEBUG" \
        -DCMAKE_EXE_LINKER_FLAGS="-static" \
        -DSAFETENSORS_BUILD_TESTS=ON -DSAFETENSORS_BUILD_EXAMPLES=OFF \
        -DSAFETENSORS_BUILD_BENCHMARKS=OFF -DSAFETENSORS_WERROR=ON -DSAFETENSORS_SANITIZE= \
        -DSAFETENSORS_TEST_CONSUMERS=OFF -DSAFETENSORS_CUDA=OFF -DSAFETENSORS_INSTALL=OFF \
        -DSAFETENSORS_REQUIRE_DLPACK=ON
    cmake --build "$dir" --target safetensors-tests safetensors-api-check -j "$jobs"
    mkdir -p "$dir/wine"
    # One run of the whole suite (each Wine start costs seconds); doctest prints its summary
    # and the test cases skipped on Windows with their reasons.
    local status=0
    WINEPREFIX="$root/$dir/wine" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" \
        timeout 600 "$wine" "$dir/bin/safetensors-tests.exe" --no-version || status=$?
    WINEPREFIX="$root/$dir/wine" timeout 60 "${WINESERVER:-/usr/lib/wine/wineserver64}" -k 2>/dev/null || true
    return "$status"
}

# 32-bit: the kernel may lack IA-32 emulation (CONFIG_IA32_EMULATION=n, or ia32_emulation=0):
# then it refuses every 32-bit binary with ENOEXEC ("Exec format error"). That, and only that,
# skips the run; the build still counts, and any other failure fails the stage.
m32_tests() {
    tests/compile/check.sh m32
    local dir=build/gcc-m32
    cmake -S . -B "$dir" "${cmake_common[@]}" \
        -DCMAKE_CXX_COMPILER="${CXX_M32:-g++}" -DCMAKE_CXX_FLAGS="-m32" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O0 -DNDEBUG" \
        -DSAFETENSORS_BUILD_TESTS=ON -DSAFETENSORS_BUILD_EXAMPLES=OFF \
        -DSAFETENSORS_BUILD_BENCHMARKS=OFF -DSAFETENSORS_WERROR=ON -DSAFETENSORS_SANITIZE= \
        -DSAFETENSORS_TEST_CONSUMERS=OFF -DSAFETENSORS_CUDA=OFF -DSAFETENSORS_HEADER_CHECK_ONE_TU=ON
    # Every header with g++ -m32 and the strict warnings, in one translation unit (the asan stage
    # compiles each header on its own with clang++).
    cmake --build "$dir" --target safetensors-header-check -j "$jobs"
    # The unit tests only where they can run: their 32-bit build checks nothing the API check
    # (tests/compile/check.sh m32) and the headers above do not. -O0: a third of -O1's time.
    # Without the safetensors tool (EXAMPLES=OFF): its tests run in the asan stage (tool.* and the
    # HTTP tests in the gcc stage too), and a 32-bit build of it (CLI11, <regex>) would cost more
    # than the rest of this stage.
    local reason
    if reason="$(m32_probe "$dir")"; then
        cmake --build "$dir" --target safetensors-tests -j "$jobs"
        (cd "$dir" && ctest --output-on-failure -j "$jobs" -L unit)
    else
        [[ -n "$reason" ]] || return 1
        echo "m32: the 32-bit unit tests were neither built nor run: $reason"
        notes+=("m32: unit tests skipped: $reason")
    fi
}

# Prints nothing and succeeds when 32-bit programs run; prints the reason and fails when the
# kernel refuses them with ENOEXEC; fails without a reason on anything else.
m32_probe() {
    local dir="$1" probe="$1/m32-probe"
    printf 'int main() { return 0; }\n' >"$dir/m32-probe.cpp"
    "${CXX_M32:-g++}" -m32 "$dir/m32-probe.cpp" -o "$probe" || return 1
    local output status=0
    output="$("${M32_PROBE_EXE:-$probe}" 2>&1)" || status=$?
    ((status == 0)) && return 0
    if ((status == 126)) && [[ "$output" == *"Exec format error"* ]]; then
        echo "this kernel cannot execute 32-bit x86 binaries (execve: Exec format error)"
    else
        echo "m32: the 32-bit probe failed with status $status: $output" >&2
    fi
    return 1
}

# Two translation units and doctest's main: much faster than a TSan build of every test file.
# test_threads.cpp: threads sharing one file; test_cuda_staging.cpp: the CUDA loader's host half
# (its reader threads filling the staging ring), which needs no GPU.
thread_sanitizer() {
    local dir=build/clang-tsan
    mkdir -p "$dir/tmp"
    "${CXX_CLANG:-clang++}" -std=c++17 -O1 -g -fsanitize=thread -fno-omit-frame-pointer \
        -Wall -Wextra -Wpedantic -Werror -pthread -Iinclude \
        -DSAFETENSORS_TEST_DATA_DIR="\"$root/tests/data\"" -DSAFETENSORS_TEST_TMP_DIR="\"$root/$dir/tmp\"" \
        tests/main.cpp tests/test_threads.cpp tests/cuda/test_cuda_staging.cpp -o "$dir/test-threads"
    TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:second_deadlock_stack=1" "$dir/test-threads" --no-version
}

# Every target built in one parallel build, then run two at a time: a fuzzer is one process,
# so a pair keeps both cores busy and each target still gets its full seconds.
fuzz_smoke() {
    local seconds="${FUZZ_SMOKE_SECONDS:-6}" targets=() pids=() i target failed=0
    read -r -a targets <<<"$(cd tests/fuzz && ls fuzz_*.cpp | sed 's/^fuzz_//; s/\.cpp$//' | xargs)"
    export FUZZ_BUILD_DIR=build/fuzz
    mkdir -p build/fuzz-runs
    FUZZ_BUILD_ONLY=1 FUZZ_BUILD_TARGET=fuzzers FUZZ_JOBS="$jobs" tests/fuzz/run.sh "${targets[0]}" "$seconds"
    for ((i = 0; i < ${#targets[@]}; i += 2)); do
        pids=()
        for target in "${targets[@]:i:2}"; do
            FUZZ_SKIP_BUILD=1 tests/fuzz/run.sh "$target" "$seconds" "build/fuzz-runs/smoke-$target" \
                >"build/fuzz-runs/smoke-$target.out" 2>&1 &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    done
    for target in "${targets[@]}"; do cat "build/fuzz-runs/smoke-$target.out"; done
    return "$failed"
}

wanted=("$@")
[[ ${#wanted[@]} -eq 0 ]] && wanted=(gcc asan windows m32 tsan fuzz)
for n in "${wanted[@]}"; do
    case "$n" in
        quick) stage "quick: g++ -O0 unit tests" quick ;;
        1 | gcc) stage "gcc: g++ C++17 -Werror, ctest" gcc_release ;;
        2 | asan) stage "asan: clang++ C++20 ASan+UBSan" clang_sanitize ;;
        3 | windows) stage "windows: MinGW-w64 build, Wine run" windows ;;
        4 | m32) stage "m32: 32-bit (-m32) unit tests" m32_tests ;;
        5 | tsan) stage "tsan: clang++ ThreadSanitizer" thread_sanitizer ;;
        6 | fuzz) stage "fuzz: libFuzzer smoke" fuzz_smoke ;;
        7 | python) stage "python: the module and its pytest suite" python_module ;;
        *) echo "test.sh: no stage '$n' (stages: quick gcc asan windows m32 tsan fuzz python, or 1-7)" >&2; exit 2 ;;
    esac
done

echo
echo "=== stages passed: ${wanted[*]}"
printf '%s\n' "${summary[@]}"
echo "total                                    $(printf '%4d' "$SECONDS")s"
if ((${#notes[@]} > 0)); then
    printf 'note: %s\n' "${notes[@]}"
fi
