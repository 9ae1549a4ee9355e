// safetensors-http-load: the HTTP reader's side of bench/http_load.sh (issue 18), one
// measurement per run; the script serves the file with nginx, times curl beside it and counts
// requests and bytes in nginx's access log.
//
//   safetensors-http-load make PATH            write the benchmark file: 32 BF16 tensors of
//                                              [4096, 4096] (1 GiB of data) to PATH
//   safetensors-http-load load URL             open_url + load(): prints "SECONDS BYTES" (BYTES:
//                                              the file's size)
//   safetensors-http-load read URL             the reader alone: open_url_source, then read_at of
//                                              the whole file into memory written (faulted in)
//                                              before the clock starts: "SECONDS BYTES"
//   safetensors-http-load open URL             a header-only open: prints the header's size
//                                              (the data offset)
//   safetensors-http-load columns URL MARK     open, then a request for MARK (a 404 the script
//                                              finds in the log), then the 1/8 column part
//                                              (":, 0:512") of the first tensor via to_tensor():
//                                              prints the part's size in bytes
#include <safetensors/http.hpp>
#include <safetensors/safetensors.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr std::size_t tensors = 32;
constexpr std::uint64_t side = 4096;

void make(const std::string& path) {
    std::vector<std::uint16_t> values(side * side);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::uint16_t>((i * 2654435761u) >> 13);
    std::vector<safetensors::tensor_ref> refs;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < tensors; ++i) names.push_back("model.layers." + std::to_string(i) + ".weight");
    for (const std::string& name : names)  // the same bytes in every tensor: only sizes matter here
        refs.emplace_back(name, safetensors::dtype::BF16, std::vector<std::uint64_t>{side, side}, values.data(),
                          values.size() * sizeof(std::uint16_t));
    safetensors::save(path, refs);
}

int load(const std::string& url) {
    const auto start = std::chrono::steady_clock::now();
    const auto f = safetensors::open_url(url);
    const auto loaded = safetensors::load(f);
    const auto stop = std::chrono::steady_clock::now();
    std::printf("%.6f %llu\n", std::chrono::duration<double>(stop - start).count(),
                static_cast<unsigned long long>(f.source()->size()));
    return loaded.size() == tensors ? 0 : 1;
}

// What load() pays on top of the reader is fresh memory: a page fault per 4 KiB written.
int read(const std::string& url) {
    const auto source = safetensors::open_url_source(url);
    const auto size = static_cast<std::size_t>(source->size());
    std::unique_ptr<char[]> buffer(new char[size]);
    std::memset(buffer.get(), 1, size);
    const auto start = std::chrono::steady_clock::now();
    source->read_at(0, buffer.get(), size);
    const auto stop = std::chrono::steady_clock::now();
    std::printf("%.6f %llu\n", std::chrono::duration<double>(stop - start).count(), static_cast<unsigned long long>(size));
    return 0;
}

int columns(const std::string& url, const std::string& mark) {
    const auto f = safetensors::open_url(url);
    try {
        (void)safetensors::open_url_source(mark);  // 404: the line that splits the log
    } catch (const safetensors::error& e) {
        if (e.code() != safetensors::errc::file_not_found) throw;
    }
    const auto part = f.tensor("model.layers.0.weight").slice(":, 0:512").to_tensor();
    std::printf("%llu\n", static_cast<unsigned long long>(part.byte_size()));
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const std::string what = argc > 1 ? argv[1] : "";
    if (!((argc == 3 && (what == "make" || what == "load" || what == "read" || what == "open")) || (argc == 4 && what == "columns"))) {
        std::fprintf(stderr, "usage: safetensors-http-load make PATH | load URL | read URL | open URL | columns URL MARK_URL\n");
        return 2;
    }
    try {
        if (what == "make") make(argv[2]);
        else if (what == "load") return load(argv[2]);
        else if (what == "read") return read(argv[2]);
        else if (what == "columns") return columns(argv[2], argv[3]);
        else std::printf("%llu\n", static_cast<unsigned long long>(safetensors::open_url(argv[2]).header().data_offset()));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
