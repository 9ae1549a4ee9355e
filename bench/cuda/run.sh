#!/usr/bin/env bash
# Issues 5 and 21 on the GPU machine, in one run (the binaries come from bench/cuda/build.sh,
# carried in gpu-build/):
#
#   bash bench/cuda/run.sh OUTDIR
#
#   1. the machine: nvidia-smi, PCIe link, CPU, memory, the disk the benchmark file lives on
#   2. the CUDA tests (fixtures, slices, shards and error paths on the GPU)
#   3. the examples, on a fixture model
#   4. the benchmark: writes a 2 GiB BF16 file, measures dd's O_DIRECT read rate, then runs
#      safetensors-cuda-bench (pinned limit, warm, sweep, tensor parallel, cold, memory)
#   5. the Python module (issue 21), built there for its python3 (the one with a CUDA torch;
#      bench/python/build_module.sh), its GPU tests (tests/python/test_cuda.py), the GPU
#      benchmark (bench/python/bench_cuda.py: load_file to cuda:0 against pinned bandwidth and
#      the reference package), then the whole pytest suite with that machine's torch and numpy
#
# PARTS (default "cpp python") picks the parts: PARTS=python runs steps 1 and 5 only.
# A failing step is reported and the later steps still run; the whole script keeps within
# TOTAL_S seconds (default 300, of which the C++ benchmark leaves about 120 to the Python part;
# BENCH_MIB sets the file size, default 2048, and BENCH_DIR where it goes, default /var/tmp).
# Everything goes to stdout and OUTDIR/run.log; OUTDIR also gets tests.txt, results.md,
# results.json, results-python.md and results-python.json. If the carried binaries do not
# start there (other system libraries), they are rebuilt there with nvcc first (about a minute).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="${1:?usage: bash bench/cuda/run.sh OUTDIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
bin="${GPU_BUILD:-$root/gpu-build}"
total="${TOTAL_S:-300}"
# The benchmark file goes to a fresh folder under BENCH_DIR (a disk, not tmpfs, for the cold runs).
bench_dir="$(mktemp -d "${BENCH_DIR:-/var/tmp}/safetensors-cuda-bench.XXXXXX")" || exit 1
trap 'rm -rf "$bench_dir"' EXIT
bench_file="$bench_dir/bench.safetensors"
bench_mib="${BENCH_MIB:-2048}"
parts="${PARTS:-cpp python}"
export SAFETENSORS_TEST_DATA_DIR="$root/tests/data"

failed=()

# step NAME TIMEOUT_S COMMAND...: runs it, reports ok or FAILED, never stops the script (its
# status is the command's, for a caller that skips what depends on it).
step() {
    local name="$1" limit="$2"
    shift 2
    echo
    echo "=== $name"
    local t0=$SECONDS rc=0
    timeout --kill-after=10 "$limit" "$@" || rc=$?
    if [[ $rc -eq 0 ]]; then
        echo "=== $name: ok ($((SECONDS - t0)) s)"
    else
        local why="exit $rc"
        [[ $rc -eq 124 ]] && why="timed out after $limit s"
        echo "=== $name: FAILED ($why, $((SECONDS - t0)) s)"
        failed+=("$name")
    fi
    return $rc
}

machine() {
    nvidia-smi
    nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max,memory.total --format=csv
    echo "kernel: $(uname -r), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    lscpu | grep -E '^(Thread|Core|Socket|NUMA node|L3|Model name)' || true
    echo "transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)," \
         "defrag: $(cat /sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null)"
    free -g
    df -hT "$bench_dir" "$out"
}
export -f machine
export bench_dir out

cpp_part() {
    # The carried binaries must start here; else rebuild them with nvcc (no g++/clang++ checks).
    local probe
    probe="$("$bin/safetensors-cuda-bench" 2>&1)"  # prints its usage when it starts at all
    if [[ "$probe" != *usage* ]]; then
        echo "carried binaries do not start here:"
        echo "$probe" | head -5
        step "rebuild with nvcc" 150 env CHECK=0 JOBS="$(nproc)" DOCTEST_INCLUDE_DIR="$bin/third_party" \
            NLOHMANN_INCLUDE_DIR="$bin/third_party" bash bench/cuda/build.sh /tmp/gpu-build-local
        bin=/tmp/gpu-build-local
    fi

    step "tests" 120 bash -c "set -o pipefail; '$bin/safetensors-cuda-tests' --duration=true 2>&1 | tee '$out/tests.txt'"

    model="$root/tests/data/reference/model/gpt2_tiny/model.safetensors"
    step "example: load to GPU 0" 30 "$bin/example-cuda-load" "$model" 0
    step "example: tensor parallel, 4 ranks" 30 "$bin/example-cuda-tensor-parallel" "$model" 4

    step "benchmark file ($bench_mib MiB of BF16)" 120 "$bin/safetensors-cuda-bench" make "$bench_file" --mib "$bench_mib"

    # dd's own figure for the raw direct read rate (O_DIRECT bypasses the page cache).
    dd_gbps=0
    echo
    echo "=== dd iflag=direct bs=16M"
    if dd_line=$(timeout 60 dd if="$bench_file" of=/dev/null iflag=direct bs=16M 2>&1 | tail -1); then
        echo "$dd_line"
        dd_gbps=$(echo "$dd_line" | awk '{ for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^s,?$/) s = $i; if (s > 0) printf "%.3f", $1 / s / 1e9; else print 0 }')
        echo "=== dd: $dd_gbps GB/s"
    else
        echo "$dd_line"
        echo "=== dd: FAILED"
        failed+=("dd")
    fi

    step "example: load the 2 GiB file to GPU 0" 60 "$bin/example-cuda-load" "$bench_file" 0

    # What is left of TOTAL_S, less about two minutes for the Python part when it follows.
    local reserve=0
    [[ " $parts " == *" python "* ]] && reserve=120
    budget=$((total - SECONDS - 25 - reserve))
    if [[ $budget -lt 60 ]]; then budget=60; fi
    step "benchmark" $((budget + 40)) "$bin/safetensors-cuda-bench" run "$bench_file" "$out" --dd-gbps "$dd_gbps" --budget-s "$budget"
}

# Step 5: the Python module, built there (the interpreter's headers and torch are that machine's).
python_part() {
    local py="${PYTHON:-python3}" build=/tmp/safetensors-python
    step "python: build the module" 300 env PYTHON="$py" bash bench/python/build_module.sh "$build" "$bin/third_party" ||
        return 0
    local env=(env "PYTHONPATH=$build/python" PYTHONUNBUFFERED=1)
    step "python: GPU tests" 120 "${env[@]}" "$py" -m pytest -q -p no:cacheprovider tests/python/test_cuda.py
    step "python: GPU benchmark" 240 "${env[@]}" "$py" bench/python/bench_cuda.py --out "$out" --dir "$bench_dir"
    step "python: the whole pytest suite, this machine's torch and numpy" 180 "${env[@]}" "$py" -m pytest -q \
        -p no:cacheprovider tests/python
}

main() {
    step "machine" 30 bash -c machine
    [[ " $parts " == *" cpp "* ]] && cpp_part
    [[ " $parts " == *" python "* ]] && python_part

    echo
    echo "=== summary after $SECONDS s"
    if [[ -f "$out/results.md" ]]; then cat "$out/results.md"; fi
    if [[ -f "$out/results-python.md" ]]; then cat "$out/results-python.md"; fi
    if [[ ${#failed[@]} -eq 0 ]]; then
        echo "all steps ok"
    else
        echo "FAILED steps: ${failed[*]}"
        return 1
    fi
}

main 2>&1 | tee "$out/run.log"
exit "${PIPESTATUS[0]}"
