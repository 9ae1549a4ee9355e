// example-load-all: every tensor of a file, the two usual ways.
//
// The C++ version of Python's
//
//     with safe_open(path, framework="pt") as f:
//         tensors = {k: f.get_tensor(k) for k in f.keys()}
//
// 1. safetensors::open() maps the file and validates the header; each tensor_view points
//    straight into the mapping (zero-copy), and shares ownership of it, so views stay
//    valid after the file object is gone.
// 2. safetensors::load() (Python's load_file) copies every tensor into owned, 64-byte
//    aligned memory and returns a name-sorted std::map.
//
// usage: example-load-all FILE
#include <safetensors/safetensors.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace st = safetensors;

namespace {

// Names come from an untrusted file: quote() escapes control characters before printing.
std::string printable(std::string_view name) { return st::detail::quote(name); }

// "[2, 3]"; a scalar's shape is "[]".
std::string shape_text(st::span<const std::uint64_t> shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "error: usage: %s FILE\n", argc > 0 ? argv[0] : "example-load-all");
        return 1;
    }
    try {
        const std::string path = argv[1];

        // 1. Zero-copy: {k: f.get_tensor(k) for k in f.keys()}. keys() is in file order
        //    (by data offset); sorted_keys() gives Python's sorted order.
        st::file f = st::open(path);
        std::map<std::string, st::tensor_view, std::less<>> views;
        for (std::string_view key : f.keys()) views.emplace(std::string(key), f.tensor(key));

        std::printf("%s: %zu tensors (zero-copy views, file order)\n", printable(path).c_str(), f.size());
        for (const st::tensor_view& view : f)  // iterating a file yields its views in file order
            std::printf("  %s: %s %s, %llu bytes\n", printable(view.name()).c_str(),
                        std::string(st::to_string(view.dtype())).c_str(), shape_text(view.shape()).c_str(),
                        static_cast<unsigned long long>(view.byte_size()));

        // 2. Owned copies: tensors = load_file(path). Sorted by name, like Python's dict.
        st::tensor_map tensors = st::load(path);
        std::printf("\nload(): %zu owned tensors (sorted by name)\n", tensors.size());
        for (const auto& [name, t] : tensors) {
            std::printf("  %s: %s %s", printable(name).c_str(), std::string(st::to_string(t.dtype())).c_str(),
                        shape_text(t.shape()).c_str());
            // element(i) reads any dtype but C64 as a double (sub-byte and 8-bit floats too).
            if (t.element_count() > 0 && !st::is_complex(t.dtype())) std::printf(", first element %g", t.element(0));
            std::printf("\n");
        }

        // Both ways see the same bytes.
        for (const auto& [name, t] : tensors) {
            const st::tensor_view& view = views.at(name);
            if (view.byte_size() != t.byte_size() ||
                (t.byte_size() != 0 && std::memcmp(view.data(), t.data(), static_cast<std::size_t>(t.byte_size())) != 0))
                throw st::error(st::errc::io_error, "views and loaded copies differ for " + printable(name));
        }
        std::printf("\nviews and owned copies agree on all %zu tensors\n", tensors.size());
        return 0;
    } catch (const st::error& e) {
        std::fprintf(stderr, "error: %s\n", e.message().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
    }
    return 1;
}
