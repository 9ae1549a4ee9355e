// Test support: hand-built safetensors byte images, and temporary files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace test_support {

// 8-byte little-endian length of json, then json, then data.
inline std::vector<std::byte> make_file(const std::string& json, const std::string& data = "") {
    std::vector<std::byte> out(8 + json.size() + data.size());
    std::uint64_t n = json.size();
    for (int i = 0; i < 8; ++i) out[i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
    for (std::size_t i = 0; i < json.size(); ++i) out[8 + i] = static_cast<std::byte>(json[i]);
    for (std::size_t i = 0; i < data.size(); ++i) out[8 + json.size() + i] = static_cast<std::byte>(data[i]);
    return out;
}

inline std::vector<std::byte> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> out(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
    return out;
}

inline void write_all(const std::string& path, const std::vector<std::byte>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
}

inline std::string data_path(const std::string& relative) { return std::string(SAFETENSORS_TEST_DATA_DIR) + "/" + relative; }

// One of the exhaustive dtype tables of the reference fixtures.
inline std::string dtype_table_path(const std::string& name) { return data_path("reference/dtype_tables/" + name); }

inline std::vector<std::byte> bytes_of(const std::string& text) {
    std::vector<std::byte> out(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) out[i] = static_cast<std::byte>(text[i]);
    return out;
}

inline std::string text_of(const std::vector<std::byte>& bytes) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

inline std::string read_text(const std::string& path) { return text_of(read_all(path)); }

} // namespace test_support
