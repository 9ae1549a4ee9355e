// safetensors-hpp: the validated table of a header: tensor_info (one tensor's name, dtype,
// shape and data offsets) and header_table (all of them, compact, with name lookup and the
// metadata). detail/header_parser.hpp builds one; header.hpp reads and parses a file's header.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "detail/checked.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "metadata.hpp"
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
class header_scanner;

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

// A table's names, back to back. The builders reserve the header's size once (no name is
// longer than the JSON that spells it), uninitialized, so an append is one inline copy:
// std::string::append is a call per name, and resizing a string first would zero-fill it.
// The names are copies even where the header stays mapped: a file truncated after it was
// opened would zero them or fault on them.
class name_pool {
public:
    name_pool() = default;
    name_pool(const name_pool& other) { append(other.data(), other.size_); }
    name_pool(name_pool&& other) noexcept { swap(other); }
    name_pool& operator=(name_pool other) noexcept {
        swap(other);
        return *this;
    }

    const char* data() const noexcept { return bytes_ ? bytes_ : ""; }
    std::size_t size() const noexcept { return size_; }

    void reserve(std::size_t capacity) {
        if (capacity > capacity_) move_to(capacity);
    }
    std::size_t capacity() const noexcept { return capacity_; }
    // For a writer that copies in place: the capacity past the names (capacity() - size()
    // bytes), then how much of it now holds a name.
    char* unused() noexcept { return bytes_ + size_; }
    void grow(std::size_t length) noexcept { size_ += length; }
    void append(const char* text, std::size_t length) {
        if (length > capacity_ - size_) move_to(std::max(size_ + length, 2 * capacity_));
        if (length != 0) std::memcpy(bytes_ + size_, text, length);
        size_ += length;
    }

    ~name_pool() { release(); }

private:
    // Plain operator new and sized delete, as the table's vectors use: a first open in a fresh
    // process pays for binding each library function it calls first (new[] and delete[] are two more).
    void move_to(std::size_t capacity) {
        auto* bytes = static_cast<char*>(::operator new(capacity));
        if (size_ != 0) std::memcpy(bytes, bytes_, size_);
        release();
        bytes_ = bytes;
        capacity_ = capacity;
    }
    void release() noexcept {
        if (bytes_ == nullptr) return;
#if defined(__cpp_sized_deallocation)
        ::operator delete(bytes_, capacity_);
#else
        ::operator delete(bytes_);
#endif
    }
    void swap(name_pool& other) noexcept {
        std::swap(bytes_, other.bytes_);
        std::swap(size_, other.size_);
        std::swap(capacity_, other.capacity_);
    }

    char* bytes_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};
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
    friend class detail::header_scanner;

    std::uint64_t header_size_ = 0;
    std::uint64_t data_size_ = 0;
    detail::name_pool names_;                 // all names, back to back
    std::vector<std::uint64_t> dims_;         // all shapes, back to back
    std::vector<detail::table_entry> entries_;  // file order
    std::vector<std::uint32_t> by_name_;      // indices into entries_, sorted by name
    std::optional<metadata_map> metadata_;
};

} // namespace safetensors
