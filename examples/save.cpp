// example-save: write a file, the C++ version of
//
//     import torch
//     from safetensors.torch import save_file
//
//     tensors = {"embedding": torch.zeros((2, 2))}
//     save_file(tensors, "model.safetensors")
//
// safetensors::save() takes the tensors as {name, dtype, shape, data} (data: a vector, a span,
// a pointer and size, an owned tensor or a view of another file) and an optional metadata map.
// The output is byte-identical to the Python call above. The file is replaced atomically:
// written to a temporary file beside it, flushed to disk, then renamed over the target.
//
// usage: example-save [PATH]     (default: model.safetensors)
#include <safetensors/safetensors.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace st = safetensors;

int main(int argc, char** argv) {
    const std::string path = argc > 1 ? argv[1] : "model.safetensors";
    try {
        const std::vector<float> zeros(2 * 2, 0.0f);  // torch.zeros((2, 2)) is float32
        st::save(path, {{"embedding", st::dtype::F32, {2, 2}, zeros}});
        // With metadata, as save_file(tensors, path, metadata={"format": "pt"}) would write:
        //   st::save(path, {{"embedding", st::dtype::F32, {2, 2}, zeros}}, {{"format", "pt"}});

        // Read it back.
        const st::file f = st::open(path);
        const st::tensor_view embedding = f.tensor("embedding");
        std::printf("wrote %s: %zu tensor, header %llu bytes, data %llu bytes\n", path.c_str(), f.size(),
                    static_cast<unsigned long long>(f.header().header_size()),
                    static_cast<unsigned long long>(f.header().data_size()));
        std::printf("embedding: %s [%llu, %llu], first value %g\n", std::string(st::to_string(embedding.dtype())).c_str(),
                    static_cast<unsigned long long>(embedding.shape()[0]),
                    static_cast<unsigned long long>(embedding.shape()[1]), embedding.element(0));
        return 0;
    } catch (const st::error& e) {
        std::fprintf(stderr, "error: %s\n", e.message().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
    }
    return 1;
}
