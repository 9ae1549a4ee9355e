// The differential check of the header reader (detail/header_scanner.hpp): the bytes of a
// safetensors file, their header read once the normal way (the fast scanner, falling back to
// nlohmann outside its subset) and once by nlohmann alone. Both must build the same table or
// throw the same error (code and message). Shared by fuzz_header_scan.cpp and
// tests/test_header_scan.cpp.
#pragma once

#include <safetensors/header.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace fuzz {

// A parsed header as text: every field the table holds, in table order.
inline std::string describe(const safetensors::header_table& t) {
    std::string out = std::to_string(t.header_size()) + " " + std::to_string(t.data_size()) + "\n";
    for (std::size_t i = 0; i < t.size(); ++i) {
        const safetensors::tensor_info info = t[i];
        out += std::string(info.name) + " " + std::string(safetensors::to_string(info.dtype)) + " [";
        for (std::uint64_t d : info.shape) out += std::to_string(d) + ",";
        out += "] " + std::to_string(info.begin) + " " + std::to_string(info.end) + "\n";
    }
    for (std::uint32_t i : t.sorted_indices()) out += std::to_string(i) + " ";
    if (const safetensors::metadata_map* m = t.metadata()) {
        out += "\nmetadata\n";
        for (const auto& [key, value] : *m) out += key + "=" + value + "\n";
    }
    return out;
}

// "ok\n<table>" or "error <code>: <message>".
inline std::string outcome(std::string_view text, std::uint64_t data_size, safetensors::detail::json_reader reader) {
    try {
        return "ok\n" + describe(safetensors::detail::header_builder::build(text, data_size, reader));
    } catch (const safetensors::error& e) {
        return "error " + std::to_string(static_cast<int>(e.code())) + ": " + e.message();
    }
}

// The header text of a file's bytes (the length prefix cut to what is there) and the data size.
inline std::string_view header_text(const std::uint8_t* data, std::size_t size, std::uint64_t& data_size) {
    if (size < 8) {
        data_size = 0;
        return std::string_view(reinterpret_cast<const char*>(data), size);
    }
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
    if (n > size - 8) n = size - 8;
    data_size = size - 8 - n;
    return std::string_view(reinterpret_cast<const char*>(data) + 8, static_cast<std::size_t>(n));
}

// Empty when both readers agree, else both outcomes.
inline std::string disagreement(const std::uint8_t* data, std::size_t size) {
    std::uint64_t data_size = 0;
    const std::string_view text = header_text(data, size, data_size);
    const std::string fast = outcome(text, data_size, safetensors::detail::json_reader::automatic);
    const std::string slow = outcome(text, data_size, safetensors::detail::json_reader::nlohmann);
    return fast == slow ? std::string() : "scanner:\n" + fast + "\nnlohmann:\n" + slow;
}

inline int fuzz_header_scan_one(const std::uint8_t* data, std::size_t size) {
    if (!disagreement(data, size).empty()) std::abort();
    return 0;
}

} // namespace fuzz
