// safetensors-hpp: the parsed, validated header: the tensor table and the metadata.
//
// read_header() applies the reference implementation's rules in its order (see README,
// "Validation"); a header_table that exists is valid for the data size it was checked
// against. Memory is compact (names and dimensions in two pools), since a 100 MB header
// can describe millions of tensors.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "detail/checked.hpp"
#include "detail/inlining.hpp"
#include "header_table.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "metadata.hpp"
#include "source.hpp"
#include "span.hpp"

#include "detail/header_parser.hpp"

namespace safetensors {

// Parses and validates header JSON (the N bytes after the length) for a data section of
// data_size bytes. Throws safetensors::error (2xx codes) on any violation.
inline header_table parse_header(std::string_view json, std::uint64_t data_size) {
    return detail::header_builder::build(json, data_size);
}

// Reads the length prefix and header of src, then parses and validates the header.
SAFETENSORS_DETAIL_HOT inline header_table read_header(const source& src) {
    const std::uint64_t file_size = src.size();
    if (file_size < 8)
        detail::throw_error(errc::header_too_small, "header too small: " + detail::quote(src.description()) +
                                                        " has " + std::to_string(file_size) +
                                                        " bytes, fewer than the 8-byte length prefix");
    unsigned char prefix[8];
    // An addressable source's header is parsed in place below, so its length is taken from
    // there too: a mapped file's prefix read through the descriptor would cost a system call.
    if (src.addressable())
        std::memcpy(prefix, src.data(), 8);
    else
        src.read_at(0, prefix, 8);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
    // An absurd length whose bytes are text: a README, an HTML error page, a Git LFS pointer.
    const bool text = std::all_of(prefix, prefix + 8, [](unsigned char c) { return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r' || c == '\t'; });
    if (text && (n > max_header_size || n > file_size - 8))
        detail::throw_error(n > max_header_size ? errc::header_too_large : errc::invalid_header_length,
                            "not a safetensors file (it starts with " +
                                detail::quote(std::string_view(reinterpret_cast<const char*>(prefix), 8)) +
                                ", not an 8-byte header length)");
    if (n > max_header_size)
        detail::throw_error(errc::header_too_large, "header too large: length prefix says " + std::to_string(n) +
                                                        " bytes, the limit is " + std::to_string(max_header_size));
    if (n > file_size - 8)
        detail::throw_error(errc::invalid_header_length,
                            "invalid header length: " + std::to_string(n) + " bytes of header after the 8-byte prefix, but " +
                                detail::quote(src.description()) + " has only " + std::to_string(file_size - 8));
    const std::uint64_t data_size = file_size - 8 - n;
    // Addressable sources (mappings, buffers) are parsed in place, as the reference parses
    // its mmap: copying a 10 MB header into fresh heap memory costs more page faults than
    // the parse itself. The parser copies what it keeps, so nothing points into the header.
    if (src.addressable())
        return parse_header(std::string_view(reinterpret_cast<const char*>(src.data()) + 8, detail::to_size(n)),
                            data_size);
    // Uninitialized on purpose: read_at overwrites every byte (zero-filling 100 MB would not).
    std::unique_ptr<char[]> json(new char[n == 0 ? 1 : detail::to_size(n)]);
    src.read_at(8, json.get(), detail::to_size(n));
    return parse_header(std::string_view(json.get(), detail::to_size(n)), data_size);
}

} // namespace safetensors
