#!/usr/bin/env bash
# Builds the Python module (python/, standalone) for the interpreter at hand, with the CUDA
# path, where neither Debian's packages nor a network are: on the GPU machine, whose python3
# (the one with a CUDA torch) brings pybind11 as a pip package but has no nlohmann/json.
#
#   bash bench/python/build_module.sh BUILD_DIR [THIRD_PARTY_DIR]
#
# PYTHON (default python3) is the interpreter. THIRD_PARTY_DIR holds nlohmann/json.hpp
# (bench/cuda/build.sh copies it to gpu-build/third_party); a CMake package for it is written
# into BUILD_DIR/prefix so that find_package(nlohmann_json) takes it before anything else.
# Then PYTHONPATH=BUILD_DIR/python imports safetensors_hpp. Fails unless the module was built
# with the CUDA path (the CUDA toolkit must be found).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:?usage: bash bench/python/build_module.sh BUILD_DIR [THIRD_PARTY_DIR]}"
third="${2:-}"
py="$(command -v "${PYTHON:-python3}")"
mkdir -p "$build"
build="$(cd "$build" && pwd)"

include="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
[[ -f "$include/Python.h" ]] || { echo "build_module.sh: $py has no Python.h in $include (its -dev package)" >&2; exit 1; }

args=(-DCMAKE_BUILD_TYPE=Release "-DPython_EXECUTABLE=$py" -DSAFETENSORS_REQUIRE_PYTHON=ON)
if pybind11_dir="$("$py" -m pybind11 --cmakedir 2>/dev/null)"; then
    args+=("-Dpybind11_DIR=$pybind11_dir")
fi
if [[ -n "$third" ]]; then
    third="$(cd "$third" && pwd)"
    [[ -f "$third/nlohmann/json.hpp" ]] || { echo "build_module.sh: no nlohmann/json.hpp in $third" >&2; exit 1; }
    version="$(awk '/define NLOHMANN_JSON_VERSION_(MAJOR|MINOR|PATCH)/ { v = v (v == "" ? "" : ".") $3 } END { print v }' \
        "$third/nlohmann/detail/abi_macros.hpp" 2>/dev/null || true)"
    [[ -n "$version" ]] || version=3.11.0
    package="$build/prefix/lib/cmake/nlohmann_json"
    mkdir -p "$package"
    cat >"$package/nlohmann_jsonConfig.cmake" <<EOF
# Written by bench/python/build_module.sh: the headers in $third.
if(NOT TARGET nlohmann_json::nlohmann_json)
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  set_target_properties(nlohmann_json::nlohmann_json PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "$third")
endif()
EOF
    cat >"$package/nlohmann_jsonConfigVersion.cmake" <<EOF
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
EOF
    args+=("-DCMAKE_PREFIX_PATH=$build/prefix")
fi
if command -v ninja >/dev/null; then args+=(-G Ninja); fi

cmake -S "$root/python" -B "$build" "${args[@]}"
cmake --build "$build" -j "$(nproc)"
PYTHONPATH="$build/python" "$py" -c '
import sys, safetensors_hpp, torch
print("safetensors_hpp %s from %s, CUDA path: %s; torch %s, CUDA available: %s"
      % (safetensors_hpp.__version__, safetensors_hpp.__file__, safetensors_hpp._core.has_cuda, torch.__version__,
         torch.cuda.is_available()))
sys.exit(0 if safetensors_hpp._core.has_cuda else 1)'
