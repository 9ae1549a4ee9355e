#!/usr/bin/env bash
# Builds safetensors-bench (Release), runs it with 20 repetitions, interleaved in random order
# so that a slow spell of this noisy VM does not land on one side of a pair, and refreshes the tables in
# bench/README.md from the medians, and the chart bench/ratios.png (needs matplotlib).
# Extra arguments go to the benchmark binary, e.g.
#   scripts/bench.sh --benchmark_filter='BM_Open|BM_SaxBaseline'
# TORCH=1 also runs bench/compare_torch.py (needs torch) and refreshes its table.
# INTERLEAVE=0 runs each benchmark's repetitions back to back instead
# (`--benchmark_enable_random_interleaving=false`). A plain `safetensors-bench` run also does
# 20 interleaved repetitions: those are its defaults (bench/bench_main.cpp).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

dir=build/bench
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release \
    -DSAFETENSORS_BUILD_BENCHMARKS=ON -DSAFETENSORS_BUILD_TESTS=OFF \
    -DSAFETENSORS_BUILD_EXAMPLES=OFF -DSAFETENSORS_WERROR=OFF
cmake --build "$dir" --target safetensors-bench safetensors-time-load -j "${JOBS:-2}"

"$dir/bin/safetensors-bench" \
    --benchmark_repetitions="${REPETITIONS:-20}" \
    --benchmark_enable_random_interleaving="$([[ "${INTERLEAVE:-1}" == 0 ]] && echo false || echo true)" \
    --benchmark_report_aggregates_only=true \
    --benchmark_out="$dir/results.json" --benchmark_out_format=json \
    "$@"
# The writer's rows come from their own (long) run, kept in bench/results-writer.json.
extra=()
[[ -f bench/results-writer.json ]] && extra=(bench/results-writer.json)
python3 bench/report.py "$dir/results.json" "${extra[@]}" --readme bench/README.md

# Debian's python3 has matplotlib/torch from apt; a python3 earlier on PATH may not.
pick_python() {
    for candidate in python3 /usr/bin/python3; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import $1" >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}
if py="$(pick_python matplotlib)"; then
    "$py" bench/chart.py "$dir/results.json" "${extra[@]}" bench/ratios.png
else
    echo "bench.sh: matplotlib not found (apt install python3-matplotlib): chart not redrawn" >&2
fi
if [[ "${TORCH:-0}" == 1 ]]; then
    py="$(pick_python torch)" || { echo "bench.sh: torch not found (apt install python3-torch)" >&2; exit 1; }
    "$py" bench/compare_torch.py --tool "$dir/bin/safetensors-time-load" --readme bench/README.md
fi
