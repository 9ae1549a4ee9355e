// example-convert-dtype: every BF16 and F16 tensor of a file as F32.
//
// The C++ version of
//
//     tensors = {k: (t.float() if t.dtype in (torch.bfloat16, torch.float16) else t)
//                for k, t in load_file(path).items()}
//     save_file(tensors, out, metadata)
//
// It converts each BF16/F16 tensor straight from the memory-mapped file into an owned F32
// tensor (safetensors::convert_tensor: vectorized where the CPU allows, bit-exact everywhere)
// and prints its name, shape, the sum of its elements (a double, in element order) and the
// sum of its F32 bit patterns (a checksum that sees every bit, NaN payloads and -0 included).
// Given OUT, it writes the file again with those tensors as F32 and every other tensor and the
// metadata unchanged.
//
// usage: example-convert-dtype FILE [OUT]
//   build/bin/example-convert-dtype tests/data/reference/valid/all_dtypes.safetensors /tmp/f32.safetensors
#include <safetensors/convert.hpp>
#include <safetensors/safetensors.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace st = safetensors;

namespace {

std::string shape_text(st::span<const std::uint64_t> shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2 && argc != 3) {
        std::fprintf(stderr, "error: usage: %s FILE [OUT]\n", argc > 0 ? argv[0] : "example-convert-dtype");
        return 1;
    }
    try {
        const st::file f = st::open(argv[1]);
        std::printf("conversion kernels: %s\n", std::string(st::to_string(st::best_convert_path())).c_str());

        std::vector<st::tensor> converted;  // owns the F32 copies until they are written
        converted.reserve(f.size());
        std::vector<st::tensor_ref> out;     // what to write: converted tensors or the views
        for (const st::tensor_view& view : f) {
            if (view.dtype() != st::dtype::BF16 && view.dtype() != st::dtype::F16) {
                out.emplace_back(view);
                continue;
            }
            converted.push_back(st::convert_tensor(view, st::dtype::F32));
            const st::tensor& t = converted.back();
            double sum = 0;
            std::uint64_t checksum = 0;
            for (float x : t.as<float>()) {
                sum += x;
                std::uint32_t bits;
                std::memcpy(&bits, &x, sizeof bits);
                checksum += bits;
            }
            std::printf("%s: %s %s -> F32, sum %.9g, checksum %016llx\n", st::detail::quote(view.name()).c_str(),
                        std::string(st::to_string(view.dtype())).c_str(), shape_text(view.shape()).c_str(), sum,
                        static_cast<unsigned long long>(checksum));
            out.emplace_back(t);
        }
        std::printf("%zu of %zu tensors converted\n", converted.size(), f.size());

        if (argc == 3) {
            st::save(argv[2], out, f.metadata());
            std::printf("wrote %s\n", st::detail::quote(argv[2]).c_str());
        }
        return 0;
    } catch (const st::error& e) {
        std::fprintf(stderr, "error: %s\n", e.message().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
    }
    return 1;
}
