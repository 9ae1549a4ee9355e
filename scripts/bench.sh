#!/usr/bin/env bash
# Builds safetensors-bench (Release), runs it with 5 repetitions and refreshes the tables in
# bench/README.md from the medians. Extra arguments go to the benchmark binary, e.g.
#   scripts/bench.sh --benchmark_filter='BM_Open|BM_SaxBaseline'
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

dir=build/bench
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release \
    -DSAFETENSORS_BUILD_BENCHMARKS=ON -DSAFETENSORS_BUILD_TESTS=OFF \
    -DSAFETENSORS_BUILD_EXAMPLES=OFF -DSAFETENSORS_WERROR=OFF
cmake --build "$dir" --target safetensors-bench -j "${JOBS:-2}"

"$dir/bin/safetensors-bench" \
    --benchmark_repetitions="${REPETITIONS:-5}" \
    --benchmark_report_aggregates_only=true \
    --benchmark_out="$dir/results.json" --benchmark_out_format=json \
    "$@"
python3 bench/report.py "$dir/results.json" --readme bench/README.md
