// example-dlpack-export: every tensor of a file as a DLPack DLManagedTensor, without copying.
//
// For each tensor it calls safetensors::to_dlpack(view) and prints the DLTensor's fields (data
// pointer and whether it is the view's own, device, dtype code/bits/lanes, ndim, shape,
// strides, byte_offset); dtypes DLPack 0.6 cannot describe (BOOL, F8, F6, F4) print the
// library's refusal instead. The file object is closed before the exports are released, to
// show that each export keeps the mapping alive by itself; each deleter then frees it.
//
// Needs <dlpack/dlpack.h> (Debian: libdlpack-dev); CMake builds it only where the header is found.
//
// usage: example-dlpack-export [FILE]   (default: tests/data/reference/valid/all_dtypes.safetensors)
#include <safetensors/dlpack.hpp>
#include <safetensors/safetensors.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace st = safetensors;

namespace {

const char* code_name(std::uint8_t code) {
    switch (code) {
        case kDLInt: return "kDLInt";
        case kDLUInt: return "kDLUInt";
        case kDLFloat: return "kDLFloat";
        case kDLBfloat: return "kDLBfloat";
        case kDLComplex: return "kDLComplex";
        default: return "?";
    }
}

std::string list(const std::int64_t* values, int n) {
    if (values == nullptr) return "null";
    std::string out = "[";
    for (int i = 0; i < n; ++i) out += (i ? ", " : "") + std::to_string(values[i]);
    return out + "]";
}

} // namespace

int main(int argc, char** argv) {
    if (argc > 2) {
        std::fprintf(stderr, "error: usage: %s [FILE]\n", argv[0]);
        return 1;
    }
    try {
        const std::string path = argc == 2 ? argv[1] : "tests/data/reference/valid/all_dtypes.safetensors";
        std::vector<st::dlpack_ptr> exports;  // each one owns a DLManagedTensor until reset
        std::vector<std::string> names;
        std::vector<std::uint64_t> sizes;
        {
            const st::file f = st::open(path);
            for (const st::tensor_view& view : f) {
                const std::string name = st::detail::quote(view.name());
                try {
                    st::dlpack_ptr m(st::to_dlpack(view));
                    const DLTensor& t = m->dl_tensor;
                    std::printf("%s: data %p (%s), device %d:%d, dtype %s/%u/%u, ndim %d, shape %s, strides %s, "
                                "byte_offset %llu\n",
                                name.c_str(), t.data, t.data == view.data() ? "the view's bytes" : "a copy?",
                                static_cast<int>(t.device.device_type), t.device.device_id, code_name(t.dtype.code),
                                static_cast<unsigned>(t.dtype.bits), static_cast<unsigned>(t.dtype.lanes), t.ndim,
                                list(t.shape, t.ndim).c_str(), list(t.strides, t.ndim).c_str(),
                                static_cast<unsigned long long>(t.byte_offset));
                    exports.push_back(std::move(m));
                    names.push_back(name);
                    sizes.push_back(view.byte_size());
                } catch (const st::error& e) {
                    std::printf("%s: not exported: %s\n", name.c_str(), e.message().c_str());
                }
            }
        }  // the file is closed here; the exports still hold the mapping
        std::printf("\n%zu tensors exported; the file object is gone, the exports keep the bytes alive\n",
                    exports.size());
        for (std::size_t i = 0; i < exports.size(); ++i) {
            if (sizes[i] == 0) continue;
            const auto* first = static_cast<const unsigned char*>(exports[i]->dl_tensor.data);
            std::printf("first byte of %s still readable: 0x%02x\n", names[i].c_str(), static_cast<unsigned>(*first));
            break;
        }
        exports.clear();  // each deleter runs; the last one unmaps the file
        std::printf("all deleters called\n");
        return 0;
    } catch (const st::error& e) {
        std::fprintf(stderr, "error: %s\n", e.message().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
    }
    return 1;
}
