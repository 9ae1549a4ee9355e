// example-partial-load: read part of a tensor without reading the rest.
//
// The C++ version of the safetensors README's
//
//     with safe_open(path, framework="pt") as f:
//         tensor_slice = f.get_slice("embedding")
//         vocab_size, hidden_dim = tensor_slice.get_shape()
//         tensor = tensor_slice[:, :hidden_dim]
//
// A slice is only a plan (its shape and the byte runs of the file it covers); nothing is read
// until copy_to() or to_tensor(), and then only the pages under those runs are touched.
//
// usage: example-partial-load [FILE [NAME]]
//   FILE defaults to tests/data/reference/model/gpt2_tiny/model.safetensors (run it from the
//   repository root) and NAME to its embedding, transformer.wte.weight; NAME must be 2-D.
#include <safetensors/safetensors.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

namespace st = safetensors;

namespace {

const char default_path[] = "tests/data/reference/model/gpt2_tiny/model.safetensors";
const char default_name[] = "transformer.wte.weight";

std::string shape_text(st::span<const std::uint64_t> shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

void describe(const char* label, const st::tensor_slice& s) {
    std::printf("%-22s shape %-10s %6llu bytes in %zu run(s)%s\n", label, shape_text(s.shape()).c_str(),
                static_cast<unsigned long long>(s.byte_size()), s.runs().size(),
                s.is_contiguous() ? ", zero-copy" : "");
}

} // namespace

int main(int argc, char** argv) {
    if (argc > 3) {
        std::fprintf(stderr, "error: usage: %s [FILE [NAME]]\n", argv[0]);
        return 1;
    }
    try {
        const std::string path = argc > 1 ? argv[1] : default_path;
        const std::string name = argc > 2 ? argv[2] : default_name;

        // tensor_slice = f.get_slice("embedding"): a view, nothing is read yet.
        st::file f = st::open(path);
        st::tensor_view embedding = f.tensor(name);
        if (embedding.rank() != 2)
            throw st::error(st::errc::invalid_argument, "tensor " + st::detail::quote(name) + " has shape " +
                                                            shape_text(embedding.shape()) + ", expected 2 dimensions");

        // vocab_size, hidden_dim = tensor_slice.get_shape()
        const std::uint64_t vocab = embedding.shape()[0], hidden = embedding.shape()[1];
        std::printf("%s: %s %s\n", st::detail::quote(name).c_str(), std::string(st::to_string(embedding.dtype())).c_str(),
                    shape_text(embedding.shape()).c_str());

        // tensor = tensor_slice[:, :hidden_dim]  (all of it: one run, so no copy is needed)
        st::tensor_slice whole = embedding.slice({st::all, st::range::to(hidden)});
        describe("[:, :hidden]", whole);

        // What partial loading is for: the first rows (a contiguous run), and half of every
        // row (one run per row), in C++ or in the Python spelling.
        st::tensor_slice rows = embedding.slice({st::range::to(8)});
        st::tensor_slice left = embedding.slice({st::all, st::range::to(hidden / 2)});
        st::tensor_slice corner = embedding.slice(":4, " + std::to_string(hidden / 2) + ":");
        describe("[:8]", rows);
        describe("[:, :hidden/2]", left);
        describe("[:4, hidden/2:]", corner);

        // Owned, packed copies; each element matches the tensor it came from.
        st::tensor part = left.to_tensor();
        const std::uint64_t half = hidden / 2;
        for (std::uint64_t i = 0; i < vocab; ++i)
            for (std::uint64_t j = 0; j < half; ++j)
                if (!st::is_complex(part.dtype()) && part.element(i * half + j) != embedding.element(i * hidden + j))
                    throw st::error(st::errc::io_error, "slice and tensor differ at [" + std::to_string(i) + ", " +
                                                            std::to_string(j) + "]");
        std::printf("\n[:, :hidden/2] copied (%llu bytes) and checked against the full tensor",
                    static_cast<unsigned long long>(part.byte_size()));
        if (part.element_count() > 0 && !st::is_complex(part.dtype())) std::printf("; first element %g", part.element(0));
        std::printf("\n");
        return 0;
    } catch (const st::error& e) {
        std::fprintf(stderr, "error: %s\n", e.message().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
    }
    return 1;
}
