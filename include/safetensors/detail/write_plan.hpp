// safetensors-hpp: the write plan of one file: validate the tensors and metadata, order the
// tensors as the reference writer does (dtype descending, then name bytewise), lay out the
// data section, and build the head (the 8-byte length, the compact header JSON, its padding).
// Every writer plans through make_plan, so they agree byte for byte and refuse the same inputs
// with the same errors, all before the first byte is written.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../dtype.hpp"
#include "../error.hpp"
#include "../header_table.hpp"
#include "../metadata.hpp"
#include "../span.hpp"
#include "../write_options.hpp"
#include "checked.hpp"
#include "merge_sort.hpp"
#include "json_escape.hpp"
#include "utf8.hpp"

namespace safetensors::detail {

// What the planner needs of one tensor. has_data is false for streaming declarations.
struct tensor_spec {
    std::string_view name;
    safetensors::dtype dtype;
    span<const std::uint64_t> shape;
    bool has_data = false;
    std::uint64_t data_size = 0;
    const void* data = nullptr;
};

// The layout of one file: its first data_offset() bytes, and where each tensor goes.
struct write_plan {
    std::string head;                 // the 8-byte length, the header JSON and its padding
    std::vector<std::size_t> order;   // input indices in file order
    std::vector<std::size_t> by_name; // input indices sorted by name (bytewise)
    std::vector<std::uint64_t> begin; // by input index: offset in the data section
    std::vector<std::uint64_t> size;  // by input index: bytes
    std::uint64_t data_size = 0;

    std::uint64_t data_offset() const noexcept { return head.size(); }
};

// A loop rather than std::to_chars: <charconv> cost about 1.8 MB of compiler memory in every
// file that includes the writer (compile cost).
inline void append_number(std::string& out, std::uint64_t value) {
    char digits[20];
    std::size_t first = sizeof digits;
    do {
        digits[--first] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0);
    out.append(digits + first, sizeof digits - first);
}

inline void check_alignment(const write_options& options) {
    if (options.alignment == 0 || options.alignment % 8 != 0)
        throw_error(errc::invalid_argument, "write_options::alignment must be a positive multiple of 8, got " +
                                                std::to_string(options.alignment));
}

inline void check_utf8(std::string_view text, errc code, const std::string& what) {
    const std::size_t bad = find_invalid_utf8(reinterpret_cast<const unsigned char*>(text.data()), text.size());
    if (bad != text.size())
        throw_error(code, what + " " + quote(text) + " is not valid UTF-8 (byte " + std::to_string(bad) + ")");
}

// Validates one tensor on its own (name, dtype, shape, the bytes given) and returns its size.
inline std::uint64_t checked_tensor_size(const tensor_spec& t) {
    if (t.name == "__metadata__")
        throw_error(errc::reserved_name, "tensor name \"__metadata__\" is reserved for the header's metadata");
    check_utf8(t.name, errc::invalid_tensor, "tensor name");
    if (static_cast<std::size_t>(t.dtype) >= dtype_count)
        throw_error(errc::invalid_tensor, "tensor " + quote(t.name) + ": invalid dtype value " +
                                              std::to_string(static_cast<unsigned>(t.dtype)));
    std::uint64_t bytes = 0;
    switch (checked_byte_size(t.dtype, t.shape, bytes)) {
        case size_status::ok: break;
        case size_status::overflow:
            throw_error(errc::shape_overflow, "tensor " + quote(t.name) + ": size in bits of shape " +
                                                  shape_to_string(t.shape) + " of dtype " +
                                                  std::string(to_string(t.dtype)) + " overflows 64 bits");
        case size_status::not_whole_bytes: {
            std::uint64_t elements = 0;
            checked_element_count(t.shape, elements);  // cannot overflow: the bit count did not
            throw_error(errc::misaligned_sub_byte,
                        "tensor " + quote(t.name) + ": shape " + shape_to_string(t.shape) + " of dtype " +
                            std::string(to_string(t.dtype)) + " is not a whole number of bytes (" +
                            std::to_string(elements * bit_size(t.dtype)) + " bits)");
        }
    }
    if (t.has_data && t.data_size != bytes)
        throw_error(errc::invalid_tensor, "tensor " + quote(t.name) + ": " + std::to_string(t.data_size) +
                                              " bytes given, but dtype " + std::string(to_string(t.dtype)) +
                                              " with shape " + shape_to_string(t.shape) + " needs " +
                                              std::to_string(bytes));
    if (t.has_data && t.data == nullptr && bytes != 0)
        throw_error(errc::invalid_tensor, "tensor " + quote(t.name) + ": null data pointer for " +
                                              std::to_string(bytes) + " bytes");
    return bytes;
}

// Indices into names sorted by name; throws duplicate_name. Input already in name order (a
// tensor_map, say) skips the sort. string_view compares bytewise (char_traits<char> compares
// as unsigned char), as the reference does.
inline std::vector<std::size_t> sorted_by_name(const std::vector<std::string_view>& names) {
    std::vector<std::size_t> by_name(names.size());
    for (std::size_t i = 0; i < by_name.size(); ++i) by_name[i] = i;
    const auto less = [&](std::size_t a, std::size_t b) { return names[a] < names[b]; };
    merge_sort(by_name.data(), by_name.data() + by_name.size(), less);
    for (std::size_t k = 1; k < by_name.size(); ++k)
        if (names[by_name[k - 1]] == names[by_name[k]])
            throw_error(errc::duplicate_name, "duplicate tensor name " + quote(names[by_name[k]]));
    return by_name;
}

inline void check_metadata(const metadata_map* metadata) {
    if (metadata == nullptr) return;
    for (const auto& [key, value] : *metadata) {
        check_utf8(key, errc::invalid_metadata, "metadata key");
        check_utf8(value, errc::invalid_metadata, "metadata value for key " + quote(key) + ":");
    }
}

// The reference's order: dtype descending, then name. A stable counting sort of the
// name-sorted indices by dtype, O(n).
template <class SpecOf>
std::vector<std::size_t> file_order(const std::vector<std::size_t>& by_name, SpecOf& spec_of) {
    const std::size_t count = by_name.size();
    std::size_t starts[dtype_count + 1] = {};
    for (std::size_t i = 0; i < count; ++i) ++starts[dtype_count - static_cast<std::size_t>(spec_of(i).dtype)];
    for (std::size_t d = 1; d <= dtype_count; ++d) starts[d] += starts[d - 1];
    std::vector<std::size_t> order(count);
    for (std::size_t i : by_name) order[starts[dtype_count - 1 - static_cast<std::size_t>(spec_of(i).dtype)]++] = i;
    return order;
}

// Each tensor's offset in the data section, back to back in file order, and the section's size.
inline void lay_out(write_plan& plan) {
    std::uint64_t position = 0;
    for (std::size_t i : plan.order) {
        plan.begin[i] = position;
        if (!checked_add(position, plan.size[i], position))
            throw_error(errc::file_too_large, "the data section would be larger than 2^64 bytes");
    }
    plan.data_size = position;
}

[[noreturn]] inline void throw_header_too_large() {
    throw_error(errc::header_too_large, "header too large: more than " + std::to_string(max_header_size) +
                                            " bytes of JSON, the limit readers enforce");
}

// "__metadata__":{"key":"value",...}, keys in insertion order. head holds the 8 length bytes.
inline void append_metadata_json(std::string& head, const metadata_map& metadata) {
    head += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
        if (!first) head += ',';
        first = false;
        append_json_string(head, key);
        head += ':';
        append_json_string(head, value);
        if (head.size() - 8 > max_header_size) throw_header_too_large();
    }
    head += '}';
}

// "name":{"dtype":"F32","shape":[2,3],"data_offsets":[begin,end]}
inline void append_tensor_json(std::string& head, const tensor_spec& t, std::uint64_t begin, std::uint64_t end) {
    append_json_string(head, t.name);
    head += ":{\"dtype\":\"";
    head += to_string(t.dtype);
    head += "\",\"shape\":[";
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
        if (d != 0) head += ',';
        append_number(head, t.shape[d]);
    }
    head += "],\"data_offsets\":[";
    append_number(head, begin);
    head += ',';
    append_number(head, end);
    head += "]}";
}

// Pads the JSON with spaces until 8 + N is a multiple of the alignment (N is then a multiple
// of 8 too), then stores N little-endian in the first 8 bytes.
inline void finish_head(std::string& head, std::uint64_t alignment) {
    const std::uint64_t json_size = head.size() - 8;
    const std::uint64_t padding = (alignment - (8 + json_size) % alignment) % alignment;
    if (json_size > max_header_size || padding > max_header_size - json_size) throw_header_too_large();
    head.append(static_cast<std::size_t>(padding), ' ');
    const std::uint64_t n = json_size + padding;
    for (int b = 0; b < 8; ++b) head[static_cast<std::size_t>(b)] = static_cast<char>((n >> (8 * b)) & 0xff);
}

// The head of a planned file (order and offsets set), checked against the readers' limit as it
// grows, so an oversized one fails before it takes much memory.
template <class SpecOf>
void build_head(write_plan& plan, const std::vector<std::string_view>& names, SpecOf& spec_of,
                const metadata_map* metadata, std::uint64_t alignment) {
    std::string& h = plan.head;
    std::size_t estimate = 16;  // about 64 bytes per tensor besides its name and dimensions
    for (std::size_t i = 0; i < names.size(); ++i) estimate += names[i].size() + 64 + 8 * spec_of(i).shape.size();
    h.reserve(std::min<std::size_t>(estimate, static_cast<std::size_t>(max_header_size) + 16));
    h.assign(8, '\0');
    h += '{';
    if (metadata != nullptr) append_metadata_json(h, *metadata);
    for (std::size_t i : plan.order) {
        if (h.size() > 9) h += ',';
        append_tensor_json(h, spec_of(i), plan.begin[i], plan.begin[i] + plan.size[i]);
        if (h.size() - 8 > max_header_size) throw_header_too_large();
    }
    h += '}';
    finish_head(h, alignment);
}

// Plans count tensors, spec_of(i) describing input i. Validates the tensors one by one (in
// input order, so the first bad one is reported), then names across tensors, then the
// metadata; then orders the tensors, lays them out and builds the head.
template <class SpecOf>
write_plan make_plan(std::size_t count, SpecOf spec_of, const metadata_map* metadata, const write_options& options) {
    check_alignment(options);
    write_plan plan;
    plan.size.resize(count);
    plan.begin.resize(count);
    for (std::size_t i = 0; i < count; ++i) plan.size[i] = checked_tensor_size(spec_of(i));
    std::vector<std::string_view> names(count);
    for (std::size_t i = 0; i < count; ++i) names[i] = spec_of(i).name;
    plan.by_name = sorted_by_name(names);
    check_metadata(metadata);
    plan.order = file_order(plan.by_name, spec_of);
    lay_out(plan);
    build_head(plan, names, spec_of, metadata, options.alignment);
    return plan;
}

} // namespace safetensors::detail
