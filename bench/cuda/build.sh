#!/usr/bin/env bash
# Builds the CUDA tests, the CUDA benchmark and the CUDA examples for the GPU machine, into
# gpu-build/ (or OUTDIR), with nvcc compiling every source as CUDA (-x cu) for sm_90 (H100,
# H200), static cudart and static libstdc++: the GPU machine has the driver but no doctest,
# nlohmann/json or Google Benchmark, and none is needed (header-only, compiled in). The
# headers are copied to OUTDIR/third_party too, so run.sh can rebuild there if a binary made
# here does not start on that machine's system libraries.
#
# Then checks the same sources with g++ and clang++ as plain C++ (-Wall -Wextra -Wpedantic
# -Werror, CUDA's headers as system headers): cuda.hpp must build without nvcc too.
#
#   bash bench/cuda/build.sh [OUTDIR]
#   JOBS=N parallel compiles (default 2); CUDA_HOME (default /usr/local/cuda); CUDA_ARCH
#   (default sm_90); CHECK=0 skips the g++/clang++ checks (run.sh sets it when it rebuilds
#   on the GPU machine).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="${1:-gpu-build}"
cuda="${CUDA_HOME:-/usr/local/cuda}"
nvcc="$cuda/bin/nvcc"
[[ -x "$nvcc" ]] || nvcc="$(command -v nvcc)" || { echo "build.sh: nvcc not found (set CUDA_HOME)" >&2; exit 1; }
arch="${CUDA_ARCH:-sm_90}"
jobs="${JOBS:-2}"
mkdir -p "$out/obj" "$out/third_party"

# Header-only dependencies, copied once (kept if already there: the GPU machine has none).
third="$out/third_party"
copy_headers() {
    local name="$1" file="$2" dir="${3:-}"
    [[ -e "$third/$file" ]] && return 0
    for base in ${dir:+"$dir"} /usr/include /usr/local/include; do
        if [[ -e "$base/$file" ]]; then
            cp -r "$base/$name" "$third/"
            return 0
        fi
    done
    echo "build.sh: $file not found (set ${name^^}_INCLUDE_DIR)" >&2
    return 1
}
copy_headers doctest doctest/doctest.h "${DOCTEST_INCLUDE_DIR:-}"
copy_headers nlohmann nlohmann/json.hpp "${NLOHMANN_INCLUDE_DIR:-}"

common=(-std=c++17 -Iinclude -isystem "$third")
nvcc_flags=(-x cu -O2 -arch="$arch" -Werror=all-warnings -Xcompiler=-Wall,-Wextra,-Werror "${common[@]}")
link_flags=(-arch="$arch" -cudart static -Xcompiler=-static-libstdc++,-static-libgcc -lpthread -ldl -lrt)

# name: the sources of each program
declare -A programs=(
    [safetensors-cuda-tests]="tests/cuda/main.cpp tests/cuda/test_cuda_staging.cpp tests/cuda/test_cuda_device.cpp"
    [safetensors-cuda-bench]="bench/cuda/cuda_bench.cpp"
    [example-cuda-load]="examples/cuda/cuda_load.cpp"
    [example-cuda-tensor-parallel]="examples/cuda/cuda_tensor_parallel.cpp"
    [exp-register]="bench/cuda/exp_register.cpp"
)

# Runs commands (one string each) with at most $jobs at once; fails if any failed.
parallel() {
    local failed=0 cmd
    for cmd in "$@"; do
        while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do wait -n || failed=1; done
        echo "+ $cmd"
        bash -c "$cmd" &
    done
    while [[ $(jobs -rp | wc -l) -gt 0 ]]; do wait -n || failed=1; done
    return $failed
}

q() { printf '%q ' "$@"; }

# 1. nvcc: the objects older than their source or than the newest header.
newest_header=$(find include tests/support "$third" -type f -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
compiles=()
for program in "${!programs[@]}"; do
    for src in ${programs[$program]}; do
        obj="$out/obj/$(basename "${src%.*}").o"
        if [[ ! -e "$obj" || "$src" -nt "$obj" || "$newest_header" -nt "$obj" ]]; then
            compiles+=("$(q "$nvcc" "${nvcc_flags[@]}" -c "$src" -o "$obj")")
        fi
    done
done
parallel "${compiles[@]}"
links=()
for program in "${!programs[@]}"; do
    objs=()
    for src in ${programs[$program]}; do objs+=("$out/obj/$(basename "${src%.*}").o"); done
    links+=("$(q "$nvcc" "${objs[@]}" -o "$out/$program" "${link_flags[@]}")")
done
parallel "${links[@]}"

# 2. g++ and clang++: the same sources as plain C++, warnings as errors.
if [[ "${CHECK:-1}" != 0 ]]; then
    checks=()
    for cxx in "${CXX_GCC:-g++}" "${CXX_CLANG:-clang++}"; do
        command -v "$cxx" >/dev/null || { echo "build.sh: $cxx not found, check skipped" >&2; continue; }
        for program in "${!programs[@]}"; do
            for src in ${programs[$program]}; do
                checks+=("$(q "$cxx" "${common[@]}" -isystem "$cuda/include" -Wall -Wextra -Wpedantic -Werror -fsyntax-only "$src")")
            done
        done
    done
    parallel "${checks[@]}"
fi

echo "built into $out:"
ls -l "$out" | grep -v -e obj -e third_party
