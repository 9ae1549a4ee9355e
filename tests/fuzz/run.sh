#!/usr/bin/env bash
# Builds (if needed) and runs one libFuzzer target on its seeds with the dictionary.
#   tests/fuzz/run.sh TARGET SECONDS [OUTDIR]
#     TARGET   reader | slice_spec | roundtrip | index | header_scan | multipart  (the fuzz_<TARGET> executable)
#     SECONDS  -max_total_time
#     OUTDIR   where the run keeps its files (default build/fuzz-runs/TARGET):
#                corpus/   scratch corpus: a copy of the seeds plus what the run finds
#                crashes/  crash-*, leak-*, timeout-*, oom-* inputs (-artifact_prefix)
#                fuzz.log  libFuzzer's full output
#                summary.txt  the lines printed at the end
# Environment: FUZZ_BUILD_DIR (default build/fuzz; configured with clang++ on first use),
# FUZZ_MAX_LEN (default 65536 for file targets, 4096 for slice_spec and multipart), FUZZ_JOBS (build -j, 2),
# FUZZ_ARGS (extra libFuzzer arguments, e.g. "-use_value_profile=1"), FUZZ_BUILD_TARGET (what to
# build first; scripts/test.sh sets "fuzzers" to build all targets in one parallel build),
# FUZZ_BUILD_ONLY=1 (build, run nothing), FUZZ_SKIP_BUILD=1 (the targets are built already,
# so several runs may go in parallel).
# Exit status: 0 when the run ended without a finding, 1 when libFuzzer found one, 2 on usage.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if [[ $# -lt 2 || $# -gt 3 || ! "$2" =~ ^[0-9]+$ ]]; then
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
target="$1"
seconds="$2"
out="$(mkdir -p "${3:-build/fuzz-runs/$target}" && cd "${3:-build/fuzz-runs/$target}" && pwd)"
build="${FUZZ_BUILD_DIR:-build/fuzz}"
data=tests/data/reference

# Seeds per target: every reference fixture unless the target reads something else.
# A new target whose inputs are not safetensors files adds one line here (and its own
# dictionary, when the format's tokens are not safetensors.dict's).
max_len="${FUZZ_MAX_LEN:-65536}"
dict=tests/fuzz/safetensors.dict
case "$target" in
    slice_spec) seeds=(tests/fuzz/corpus/slice_spec/*); max_len="${FUZZ_MAX_LEN:-4096}" ;;
    index) seeds=(tests/fuzz/corpus/index/*) ;;
    multipart) seeds=(tests/fuzz/corpus/multipart/*); max_len="${FUZZ_MAX_LEN:-4096}"; dict=tests/fuzz/multipart.dict ;;
    *) seeds=("$data"/valid/*.safetensors "$data"/malformed/*.safetensors
              $(find "$data/model" -name '*.safetensors' | sort)) ;;
esac
if [[ ! -f "tests/fuzz/fuzz_$target.cpp" ]]; then
    echo "run.sh: no target '$target' (targets: $(cd tests/fuzz && ls fuzz_*.cpp | sed 's/^fuzz_//; s/\.cpp$//' | xargs))" >&2
    exit 2
fi

# Build: configure once, then an incremental build of this target only.
if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="${CXX_CLANG:-clang++}" \
        -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
        -DSAFETENSORS_BUILD_FUZZERS=ON -DSAFETENSORS_BUILD_TESTS=OFF -DSAFETENSORS_BUILD_EXAMPLES=OFF \
        -DSAFETENSORS_BUILD_BENCHMARKS=OFF -DSAFETENSORS_INSTALL=OFF -DSAFETENSORS_WERROR=ON \
        -DSAFETENSORS_CUDA=OFF >"$out/configure.log" 2>&1 || { cat "$out/configure.log" >&2; exit 1; }
fi
if [[ "${FUZZ_SKIP_BUILD:-0}" != 1 ]]; then
    cmake --build "$build" --target "${FUZZ_BUILD_TARGET:-fuzz_$target}" -j "${FUZZ_JOBS:-2}" >"$out/build.log" 2>&1 ||
        { cat "$out/build.log" >&2; exit 1; }
fi
[[ "${FUZZ_BUILD_ONLY:-0}" == 1 ]] && exit 0
exe="$build/bin/fuzz_$target"

# The scratch corpus: seeds copied in (named after their path, so reruns do not duplicate
# them), then grown by the run. The checked-in seeds are never written to.
mkdir -p "$out/corpus" "$out/crashes"
for seed in "${seeds[@]}"; do
    cp -f "$seed" "$out/corpus/seed-$(echo "${seed#tests/}" | tr '/' '_')"
done

echo "fuzz_$target: ${seconds}s, corpus $out/corpus ($(ls "$out/corpus" | wc -l) inputs), log $out/fuzz.log"
status=0
# shellcheck disable=SC2086  # FUZZ_ARGS is a list of options
"$exe" "$out/corpus" -dict="$dict" -max_total_time="$seconds" -max_len="$max_len" \
    -timeout=25 -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$out/crashes/" \
    ${FUZZ_ARGS:-} >"$out/fuzz.log" 2>&1 || status=$?

# The figures to quote: libFuzzer's last status line and its final stats.
last="$(grep -E '^#[0-9]+' "$out/fuzz.log" | tail -n 1 || true)"
field() { sed -n "s/.* $1: \{0,1\}\([^ ]*\).*/\1/p" <<<"$last"; }
final_stat() { sed -n "s/^stat::$1: *//p" "$out/fuzz.log" | tail -n 1; }
crashes="$(ls "$out/crashes" | wc -l)"
{
    echo "target:      fuzz_$target"
    echo "seconds:     $seconds"
    echo "execs:       $(final_stat number_of_executed_units)"
    echo "execs/s:     $(final_stat average_exec_per_sec)"
    echo "cov:         $(field cov)"
    echo "ft:          $(field ft)"
    echo "corpus:      $(field corp)"
    echo "peak rss:    $(final_stat peak_rss_mb) MB"
    echo "findings:    $crashes$( ((crashes)) && echo " ($out/crashes)")"
    echo "exit status: $status"
    echo "last line:   $last"
} | tee "$out/summary.txt"
if ((status != 0 || crashes != 0)); then
    echo "--- end of $out/fuzz.log:" >&2
    tail -n 40 "$out/fuzz.log" >&2
    exit 1
fi
