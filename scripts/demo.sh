#!/usr/bin/env bash
# The main job: install what is missing, build the safetensors tool (Release) and run
# `safetensors inspect` on a sample file from the repository. Other files:
# scripts/demo.sh PATH.safetensors ...
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/install-deps.sh build

dir=build/demo
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release \
    -DSAFETENSORS_BUILD_EXAMPLES=ON -DSAFETENSORS_BUILD_TESTS=OFF \
    -DSAFETENSORS_BUILD_BENCHMARKS=OFF -DSAFETENSORS_WERROR=OFF
cmake --build "$dir" --target safetensors-cli -j "${JOBS:-2}"

if [[ $# -eq 0 ]]; then
    set -- tests/data/reference/valid/lora_metadata.safetensors
fi
echo
echo "\$ $dir/bin/safetensors inspect $*"
"$dir/bin/safetensors" inspect "$@"
