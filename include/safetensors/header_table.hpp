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
#include <type_traits>
#include <vector>

#include "detail/checked.hpp"
#include "detail/inlining.hpp"
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

// A table's names (back to back), dimensions and entries: trivially copyable values in one
// uninitialized block each, appended inline. The builders reserve them from the header's size
// (no name is longer than the JSON that spells it), so appending is one store:
// std::vector::push_back is a call where the compiler will not inline it into the scanner's
// loop, resizing a vector zero-fills it, and std::string::append is a call per name. The
// names are copies even where the header stays mapped: a file truncated after it was opened
// would zero them or fault on them.
template <class T>
class pod_buffer {
    static_assert(std::is_trivially_copyable<T>::value, "pod_buffer holds plain values");

public:
    pod_buffer() = default;
    pod_buffer(const pod_buffer& other) { append(other.items_, other.size_); }
    pod_buffer(pod_buffer&& other) noexcept { swap(other); }
    pod_buffer& operator=(pod_buffer other) noexcept {
        swap(other);
        return *this;
    }
    ~pod_buffer() { release(); }

    // Null while nothing was reserved.
    T* data() noexcept { return items_; }
    const T* data() const noexcept { return items_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t capacity() const noexcept { return capacity_; }
    const T& operator[](std::size_t i) const noexcept { return items_[i]; }
    T* begin() noexcept { return items_; }
    T* end() noexcept { return items_ + size_; }
    const T* begin() const noexcept { return items_; }
    const T* end() const noexcept { return items_ + size_; }

    void reserve(std::size_t capacity) {
        if (capacity > capacity_) move_to(capacity);
    }
    // One compare and one store where the scanner appends, the growth out of line.
    SAFETENSORS_DETAIL_ALWAYS_INLINE void push_back(T value) {
        if (size_ == capacity_) grow_by_one();
        items_[size_++] = value;
    }
    void append(const T* values, std::size_t count) {
        if (count > capacity_ - size_) move_to(std::max(size_ + count, 2 * capacity_));
        if (count != 0) std::memcpy(items_ + size_, values, count * sizeof(T));
        size_ += count;
    }
    // Drops the values from count on (count <= size()).
    void truncate(std::size_t count) noexcept { size_ = count; }
    // For a writer that copies in place: the capacity past the values (capacity() - size()),
    // then how many of it now hold values.
    T* unused() noexcept { return items_ + size_; }
    void grow(std::size_t count) noexcept { size_ += count; }

private:
    SAFETENSORS_DETAIL_COLD void grow_by_one() { move_to(capacity_ == 0 ? 8 : 2 * capacity_); }
    // Plain operator new and sized delete: a first open in a fresh process pays for binding
    // each library function it calls first (new[] and delete[] are two more).
    void move_to(std::size_t capacity) {
        if (capacity > SIZE_MAX / sizeof(T)) throw std::bad_alloc();
        auto* items = static_cast<T*>(::operator new(capacity * sizeof(T)));
        if (size_ != 0) std::memcpy(static_cast<void*>(items), items_, size_ * sizeof(T));
        release();
        items_ = items;
        capacity_ = capacity;
    }
    void release() noexcept {
        if (items_ == nullptr) return;
#if defined(__cpp_sized_deallocation)
        ::operator delete(items_, capacity_ * sizeof(T));
#else
        ::operator delete(items_);
#endif
    }
    void swap(pod_buffer& other) noexcept {
        std::swap(items_, other.items_);
        std::swap(size_, other.size_);
        std::swap(capacity_, other.capacity_);
    }

    T* items_ = nullptr;
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
    detail::pod_buffer<char> names_;                 // all names, back to back
    detail::pod_buffer<std::uint64_t> dims_;         // the shapes (tensors of one shape may share theirs)
    detail::pod_buffer<detail::table_entry> entries_;  // file order
    std::vector<std::uint32_t> by_name_;      // indices into entries_, sorted by name
    std::optional<metadata_map> metadata_;
};

} // namespace safetensors
