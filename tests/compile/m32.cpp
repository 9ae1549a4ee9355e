// Compile-only check for a 32-bit host (g++ -m32): see tests/compile/check.sh.
#include "strict.cpp"

static_assert(sizeof(void*) == 4, "a 32-bit target expected");
static_assert(sizeof(std::size_t) == 4, "size_t narrower than the format's 64-bit offsets");

int main(int argc, char** argv) {
    return argc > 1 ? static_cast<int>(safetensors_strict_check(argv[1])) : 0;
}
