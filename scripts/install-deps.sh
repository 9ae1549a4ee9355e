#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages this project needs, and only the missing ones.
#   scripts/install-deps.sh          everything scripts/test.sh needs
#   scripts/install-deps.sh build    just enough to build the library and its tools (demo)
#   scripts/install-deps.sh bench    the benchmarks, their chart and the torch comparison
# Runs apt-get as root, or through sudo; otherwise prints the command to run and fails.
set -euo pipefail

build_packages=(cmake make g++ nlohmann-json3-dev libcli11-dev)
test_packages=(
    "${build_packages[@]}"
    ninja-build                # faster builds than make (used when present)
    clang libclang-rt-14-dev   # stages asan, tsan, fuzz: clang++ with ASan/UBSan, TSan, libFuzzer
    doctest-dev                # unit tests
    libbenchmark-dev           # benchmarks
    g++-mingw-w64-x86-64-posix # stage windows: MinGW-w64 with std::thread (POSIX threads)
    wine64                     # stage windows: runs the Windows unit tests
    g++-multilib               # stage m32: 32-bit build and unit tests
    pkg-config                 # pkg-config consumer test
    universal-ctags            # the structure test: no function in include/ over 60 lines
    libdlpack-dev              # DLPack export tests (dlpack.hpp)
    libopenmpi-dev openmpi-bin # MPI tensor-parallel example and its test
    libcurl4-openssl-dev       # the HTTP(S) reader (http.hpp) and its tests
    nginx-light openssl python3 # the HTTP tests' servers: nginx, its throw-away CA, the fault server
    pybind11-dev python3-dev   # the Python module safetensors_hpp (python/)
    python3-pytest python3-torch python3-numpy # its pytest suite (tests/python)
)
# For the benchmark chart and the comparison with torch (not needed by the tests).
bench_packages=(python3-matplotlib python3-torch curl nginx-light libcurl4-openssl-dev)

case "${1:-all}" in
    build) wanted=("${build_packages[@]}") ;;
    all | test) wanted=("${test_packages[@]}") ;;
    bench) wanted=("${build_packages[@]}" libbenchmark-dev "${bench_packages[@]}") ;;
    *) echo "usage: $0 [build|all|bench]" >&2; exit 2 ;;
esac

if ! command -v dpkg >/dev/null 2>&1; then
    echo "install-deps.sh: no dpkg here; install by hand: ${wanted[*]}" >&2
    echo "(or the equivalents: CMake >= 3.16, a C++17 compiler, nlohmann_json >= 3.11, doctest, Google Benchmark)" >&2
    exit 1
fi

missing=()
for package in "${wanted[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps.sh: all ${#wanted[@]} packages present"
    exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "install-deps.sh: not root and no sudo; run as root:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
