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
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "detail/checked.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "metadata.hpp"
#include "source.hpp"
#include "span.hpp"

namespace safetensors {

// The reference refuses larger headers; so do we (exactly this many bytes is allowed).
inline constexpr std::uint64_t max_header_size = 100'000'000;
// The reference's JSON parser refuses 128 or more levels of nesting.
inline constexpr std::size_t max_json_depth = 127;

// One tensor as the header describes it. The name and shape point into the table.
struct tensor_info {
    std::string_view name;
    safetensors::dtype dtype;
    span<const std::uint64_t> shape;
    std::uint64_t begin;  // data_offsets, relative to the start of the data section
    std::uint64_t end;

    std::uint64_t byte_size() const noexcept { return end - begin; }
};

namespace detail {
class header_builder;

// 32 bytes per tensor: the rank and the dtype share a word (a 100 MB header holds at most
// 50 million dimensions, well under 2^27).
struct table_entry {
    static constexpr std::uint32_t rank_bits = 27;
    static constexpr std::uint64_t max_rank = (std::uint32_t{1} << rank_bits) - 1;
    static_assert(dtype_count <= (std::size_t{1} << (32 - rank_bits)), "dtype no longer fits beside the rank");

    std::uint64_t begin;
    std::uint64_t end;
    std::uint32_t name_offset;
    std::uint32_t name_size;
    std::uint32_t dims_offset;
    std::uint32_t rank_and_dtype;

    std::uint32_t rank() const noexcept { return rank_and_dtype & static_cast<std::uint32_t>(max_rank); }
    safetensors::dtype dtype() const noexcept { return static_cast<safetensors::dtype>(rank_and_dtype >> rank_bits); }
    void set_rank_and_dtype(std::uint32_t rank, safetensors::dtype type) noexcept {
        rank_and_dtype = rank | (static_cast<std::uint32_t>(type) << rank_bits);
    }
};
static_assert(sizeof(table_entry) == 32, "table_entry grew");
} // namespace detail

class header_table {
public:
    // Bytes of JSON (N, the 8-byte length's value), where the data section starts (8 + N),
    // and its length.
    std::uint64_t header_size() const noexcept { return header_size_; }
    std::uint64_t data_offset() const noexcept { return 8 + header_size_; }
    std::uint64_t data_size() const noexcept { return data_size_; }

    // Tensors in file order (ascending data offsets).
    std::size_t size() const noexcept { return entries_.size(); }
    bool empty() const noexcept { return entries_.empty(); }
    tensor_info operator[](std::size_t index) const noexcept {
        const auto& e = entries_[index];
        return {std::string_view(names_.data() + e.name_offset, e.name_size), e.dtype(),
                span<const std::uint64_t>(dims_.data() + e.dims_offset, e.rank()), e.begin, e.end};
    }
    std::string_view name(std::size_t index) const noexcept {
        const auto& e = entries_[index];
        return {names_.data() + e.name_offset, e.name_size};
    }

    // Index (file order) of the tensor called name, O(log n) bytewise binary search.
    std::optional<std::size_t> find(std::string_view name) const noexcept {
        auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                   [this](std::uint32_t i, std::string_view n) { return this->name(i) < n; });
        if (it == by_name_.end() || this->name(*it) != name) return std::nullopt;
        return *it;
    }

    // File-order indices sorted by name (bytewise).
    span<const std::uint32_t> sorted_indices() const noexcept { return by_name_; }

    // Null when the header has no __metadata__ (or it is null); empty when it is {}.
    const metadata_map* metadata() const noexcept { return metadata_ ? &*metadata_ : nullptr; }

private:
    friend class detail::header_builder;

    std::uint64_t header_size_ = 0;
    std::uint64_t data_size_ = 0;
    std::string names_;                       // all names, back to back
    std::vector<std::uint64_t> dims_;         // all shapes, back to back
    std::vector<detail::table_entry> entries_;  // file order
    std::vector<std::uint32_t> by_name_;      // indices into entries_, sorted by name
    std::optional<metadata_map> metadata_;
};

} // namespace safetensors

#include "detail/header_parser.hpp"

namespace safetensors {

// Parses and validates header JSON (the N bytes after the length) for a data section of
// data_size bytes. Throws safetensors::error (2xx codes) on any violation.
inline header_table parse_header(std::string_view json, std::uint64_t data_size) {
    return detail::header_builder::build(json, data_size);
}

// Reads the length prefix and header of src, then parses and validates the header.
inline header_table read_header(const source& src) {
    const std::uint64_t file_size = src.size();
    if (file_size < 8)
        detail::throw_error(errc::header_too_small, "header too small: " + detail::quote(src.description()) +
                                                        " has " + std::to_string(file_size) +
                                                        " bytes, fewer than the 8-byte length prefix");
    unsigned char prefix[8];
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
    if (src.data() != nullptr)
        return parse_header(std::string_view(reinterpret_cast<const char*>(src.data()) + 8, detail::to_size(n)),
                            data_size);
    // Uninitialized on purpose: read_at overwrites every byte (zero-filling 100 MB would not).
    std::unique_ptr<char[]> json(new char[n == 0 ? 1 : detail::to_size(n)]);
    src.read_at(8, json.get(), detail::to_size(n));
    return parse_header(std::string_view(json.get(), detail::to_size(n)), data_size);
}

} // namespace safetensors
