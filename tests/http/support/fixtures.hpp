// HTTP test support: files the HTTP tests generate (served under /gen/), and tensors' bytes.
#pragma once

#include <safetensors/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "servers.hpp"

namespace http_test {

inline std::vector<std::byte> bytes_of(const safetensors::tensor_view& t) {
    const auto owned = safetensors::tensor::copy_of(t);
    return {owned.bytes().begin(), owned.bytes().end()};
}

// The local path of a file the servers serve at relative.
inline std::string local_path(const std::string& relative) { return www_dir() + "/" + relative; }

// A [4096, 4096] BF16 matrix (32 MiB) written once with the library's writer, as a path
// relative to www_dir().
inline const std::string& matrix_relative() {
    static const std::string relative = [] {
        std::vector<std::uint16_t> values(std::size_t{4096} * 4096);
        for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::uint16_t>((i * 2654435761u) >> 13);
        safetensors::save(gen_dir() + "/matrix.safetensors", {{"w", safetensors::dtype::BF16, {4096, 4096}, values}});
        return std::string("gen/matrix.safetensors");
    }();
    return relative;
}

} // namespace http_test
