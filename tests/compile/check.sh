#!/usr/bin/env bash
# Compile-only checks for other targets: no linking, nothing run.
#   tests/compile/check.sh mingw   x86_64-w64-mingw32-g++ on windows.cpp
#   tests/compile/check.sh m32     g++ -m32 on m32.cpp (needs g++-multilib)
# NLOHMANN_INCLUDE_DIR: the folder that holds nlohmann/json.hpp (default /usr/include).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# The strict warnings of the host's api-check (tests/CMakeLists.txt): headers must be clean
# for consumers who use them.
flags=(-std=c++17 -fsyntax-only -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow
       -Wold-style-cast -Wuseless-cast -Werror -I"$root/include")
nlohmann_dir="${NLOHMANN_INCLUDE_DIR:-/usr/include}"
if [[ ! -f "$nlohmann_dir/nlohmann/json.hpp" ]]; then
    echo "check.sh: nlohmann/json.hpp not found under $nlohmann_dir (set NLOHMANN_INCLUDE_DIR)" >&2
    exit 1
fi

case "${1:-}" in
    mingw)
        cxx="${MINGW_CXX:-x86_64-w64-mingw32-g++}"
        # Give MinGW nlohmann's headers alone, not the host's /usr/include.
        tmp="$(mktemp -d)"
        trap 'rm -rf "$tmp"' EXIT
        ln -s "$nlohmann_dir/nlohmann" "$tmp/nlohmann"
        set -x
        "$cxx" "${flags[@]}" -isystem "$tmp" "$here/windows.cpp"
        ;;
    m32)
        cxx="${CXX_M32:-g++}"
        extra=()
        [[ "$nlohmann_dir" != /usr/include ]] && extra=(-isystem "$nlohmann_dir")
        set -x
        "$cxx" -m32 "${flags[@]}" "${extra[@]}" "$here/m32.cpp"
        ;;
    *)
        echo "usage: $0 mingw|m32" >&2
        exit 2
        ;;
esac
