#!/usr/bin/env bash
# Compile cost of the public headers (issue 16, deliverable 6): the CPU time (user+sys) of
# `$CXX -std=c++17 -fsyntax-only` on a file that includes only safetensors/safetensors.hpp,
# only safetensors/file.hpp, and only nlohmann/json.hpp, each REPS times, interleaved
# (json umbrella file json umbrella file ...) so a slow spell of a shared machine hits all
# three alike. Prints the medians and the two ratios to json.hpp, and exits 1 when a ratio is
# over its target (umbrella 2.0x, file.hpp 1.5x).
#   scripts/compile-cost.sh            5 repetitions with g++
#   scripts/compile-cost.sh -n 9       9 repetitions (or REPS=9)
#   CXX=clang++ scripts/compile-cost.sh
# CXXFLAGS adds flags to every compile (e.g. CXXFLAGS=-m32). UMBRELLA_MAX and FILE_MAX
# override the targets.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reps="${REPS:-5}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        -n) reps="$2"; shift 2 ;;
        -n*) reps="${1#-n}"; shift ;;
        -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "compile-cost.sh: unknown argument $1 (use -n REPS)" >&2; exit 2 ;;
    esac
done
[[ "$reps" =~ ^[1-9][0-9]*$ ]] || { echo "compile-cost.sh: REPS must be a positive integer" >&2; exit 2; }
cxx="${CXX:-g++}"
umbrella_max="${UMBRELLA_MAX:-2.0}"
file_max="${FILE_MAX:-1.5}"
read -r -a extra <<<"${CXXFLAGS:-}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
names=(json umbrella file)
headers=(nlohmann/json.hpp safetensors/safetensors.hpp safetensors/file.hpp)
for i in 0 1 2; do
    printf '#include <%s>\n' "${headers[$i]}" >"$tmp/${names[$i]}.cpp"
done

# CPU seconds (user+sys) of one compile; a failed compile stops the script.
cpu_time() {
    local TIMEFORMAT='%U %S' out
    if ! out="$( { time "$cxx" -std=c++17 -fsyntax-only "${extra[@]}" -I"$root/include" "$1" \
                   >"$tmp/log" 2>&1; } 2>&1 )"; then
        cat "$tmp/log" >&2
        echo "compile-cost.sh: $cxx failed on $1" >&2
        exit 2
    fi
    awk '{ printf "%.3f\n", $1 + $2 }' <<<"$out"
}

declare -A samples
for ((r = 0; r < reps; r++)); do
    for name in "${names[@]}"; do
        samples[$name]+="$(cpu_time "$tmp/$name.cpp") "
    done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
json="$(median "${samples[json]}")"
umbrella="$(median "${samples[umbrella]}")"
file="$(median "${samples[file]}")"

echo "compile cost: $cxx -std=c++17 -fsyntax-only${extra[*]:+ ${extra[*]}}, CPU seconds (user+sys), median of $reps, interleaved"
for name in "${names[@]}"; do
    printf '  %-9s median %6.3f s   samples: %s\n' "$name" "$(median "${samples[$name]}")" "${samples[$name]}"
done
status=0
report() {  # label, median, target
    local ratio verdict
    ratio="$(awk -v a="$2" -v b="$json" 'BEGIN { printf "%.2f", a / b }')"
    if awk -v r="$ratio" -v t="$3" 'BEGIN { exit !(r <= t) }'; then verdict=ok; else verdict=OVER; status=1; fi
    printf '  %-28s %5sx nlohmann/json.hpp (target <= %sx): %s\n' "$1" "$ratio" "$3" "$verdict"
}
report "safetensors/safetensors.hpp" "$umbrella" "$umbrella_max"
report "safetensors/file.hpp" "$file" "$file_max"
exit "$status"
