#!/usr/bin/env bash
# First open in a fresh process (issue 22): runs safetensors-first-open as separate processes,
# interleaved (open, floor, open, floor, ...), on the benchmark shard, and prints the medians
# and their ratio. The target: the library's first open at most 2x the floor's.
#   bench/first_open.sh [BUILD_DIR] [RUNS]     (default build/bench, 101 runs of each)
# 101, not 31: twelve back-to-back runs of each on the 2-core VM gave ratios of 1.57-2.11x with
# 31 and 1.55-1.79x with 101 (bench/README.md, tenth round); 101 runs take about 3 s.
set -euo pipefail
build="${1:-build/bench}"
runs="${2:-101}"
exe="$build/bin/safetensors-first-open"
[[ -x "$exe" ]] || { echo "first_open.sh: $exe not found; build the target safetensors-first-open" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
shard="$tmp/model-00001-of-00004.safetensors"
"$exe" make "$shard"
cat "$shard" >/dev/null  # the header in the page cache, as for any file opened twice
open_times=() floor_times=()
for ((i = 0; i < runs; i++)); do
    open_times+=("$("$exe" open "$shard" | cut -d' ' -f1)")
    floor_times+=("$("$exe" floor "$shard" | cut -d' ' -f1)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
open_median="$(median "${open_times[@]}")"
floor_median="$(median "${floor_times[@]}")"
echo "first open in a fresh process, median of $runs interleaved runs each:"
echo "  safetensors::open  ${open_median} us"
echo "  floor              ${floor_median} us"
awk -v o="$open_median" -v f="$floor_median" 'BEGIN { printf "  ratio              %.2fx (target <= 2.0x)\n", o / f }'
