// libsafetensors_dlpack: a tiny C ABI over safetensors::to_dlpack, for Python's ctypes (see
// to_torch.py beside this file). Not built by CMake (examples/ globs only its top folder):
//
//   g++ -std=c++17 -O2 -shared -fPIC -Iinclude examples/dlpack/safetensors_dlpack.cpp -o build/libsafetensors_dlpack.so
//
// Needs <dlpack/dlpack.h> (Debian: libdlpack-dev) and nlohmann/json.
#include <safetensors/dlpack.hpp>
#include <safetensors/safetensors.hpp>

#include <cstddef>
#include <cstdio>
#include <exception>

extern "C" {

// Tensor `name` of the file at `path`, zero-copy (the export keeps the file mapped until its
// deleter runs). On failure: null, with the library's message in error (error_size bytes).
__attribute__((visibility("default"))) DLManagedTensor* safetensors_dlpack_export(const char* path, const char* name,
                                                                                  char* error, std::size_t error_size) {
    try {
        return safetensors::to_dlpack(safetensors::open(path).tensor(name));
    } catch (const safetensors::error& e) {
        if (error != nullptr && error_size != 0) std::snprintf(error, error_size, "%s", e.message().c_str());
    } catch (const std::exception& e) {
        if (error != nullptr && error_size != 0) std::snprintf(error, error_size, "%s", e.what());
    }
    return nullptr;
}

// Releases an export nobody consumed (a consumer calls the deleter itself).
__attribute__((visibility("default"))) void safetensors_dlpack_free(DLManagedTensor* t) {
    if (t != nullptr && t->deleter != nullptr) t->deleter(t);
}

} // extern "C"
