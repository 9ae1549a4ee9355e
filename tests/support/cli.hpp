// Test support for the tests that run the safetensors tool (test_inspect.cpp, test_cli_*.cpp):
// the error contract, output lines, and small files made from raw bytes. POSIX only (the tool
// runs through run_program.hpp).
#pragma once

#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "run_program.hpp"

namespace test_support {

// A run for a failure message: status, then the start of stdout and of stderr.
inline std::string shown(const run_result& r) {
    return "status " + std::to_string(r.status) + ", stdout: " + r.out.substr(0, 500) + ", stderr: " + r.err.substr(0, 500);
}

// The error contract: nothing on stdout, exactly one line "error: ..." on stderr, and the
// exit status (1 an error, 2 a usage error; diff: 2 any error).
inline void check_error_shape(const run_result& r, int status) {
    CHECK_MESSAGE(r.status == status, shown(r));
    CHECK(r.out.empty());
    REQUIRE(r.err.size() > 8);
    CHECK(r.err.rfind("error: ", 0) == 0);
    CHECK(r.err.back() == '\n');
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

inline std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    for (std::size_t start = 0; start < text.size();) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        out.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

// A command's --json output for one input as it appears inside the object of several: without
// its final newline, each line after the first indented by two spaces.
inline std::string nested_report(const std::string& json_output) {
    std::string out;
    for (std::size_t c = 0; c + 1 < json_output.size(); ++c)
        out += json_output[c] == '\n' ? std::string("\n  ") : std::string(1, json_output[c]);
    return out;
}

// A tensor as raw bytes, for files with any dtype and any bit pattern.
struct raw_tensor {
    std::string name;
    safetensors::dtype dtype;
    std::vector<std::uint64_t> shape;
    std::vector<std::uint8_t> bytes;
};

inline void save_raw(const std::string& path, const std::vector<raw_tensor>& tensors) {
    std::vector<safetensors::tensor_ref> refs;
    for (const raw_tensor& t : tensors) refs.emplace_back(t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size());
    safetensors::save(path, refs, {}, safetensors::write_options{8, false});
}

template <class T>
std::vector<std::uint8_t> raw_bytes_of(const std::vector<T>& values) {
    std::vector<std::uint8_t> out(values.size() * sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
    return out;
}

} // namespace test_support
