// Compile-only check for Windows (MinGW-w64): see tests/compile/check.sh.
#include "api_usage.hpp"

#if !defined(_WIN32)
#error "windows.cpp is meant to be compiled for a Windows target"
#endif

static_assert(sizeof(wchar_t) == 2, "Windows target expected");
static_assert(sizeof(long) == 4, "LLP64 expected: long is 32 bits on Windows");

int main(int argc, char** argv) {
    return argc > 1 ? static_cast<int>(safetensors_compile_check::use_api(argv[1])) : 0;
}
