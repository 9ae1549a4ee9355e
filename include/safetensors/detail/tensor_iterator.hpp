// safetensors-hpp: the iterator of file and sharded_file: position i of its owner, read through
// the owner's tensor_at(i). The iterator holds a copy of the owner (a handle to shared state),
// so it keeps the file or collection alive.
//
// Random access, since tensor_at(i) is O(1), but *it is a tensor_view made on the spot (a
// prvalue), not a reference. C++20 allows that for every iterator concept, so iterator_concept
// says random access and file and sharded_file model std::ranges::random_access_range. The
// C++17 iterator requirements do not: above input iterators, reference must be a real
// reference, so iterator_category says input. std::distance and std::next then step one by
// one; it - other, it + n and it[n] are O(1) in both.
#pragma once

#include <cstddef>
#include <iterator>
#include <optional>
#include <utility>

#if __has_include(<version>)
#include <version>
#endif
// The C++20 ranges, when the standard library has them: file.hpp and sharded.hpp then declare
// their types views and borrowed ranges, and check the concepts.
#if defined(__cpp_lib_ranges) && __cpp_lib_ranges >= 201911L
#include <ranges>
#define SAFETENSORS_DETAIL_RANGES 1
#else
#define SAFETENSORS_DETAIL_RANGES 0
#endif

namespace safetensors::detail {

template <class Owner>
class tensor_iterator {
public:
    using iterator_category = std::input_iterator_tag;
    using iterator_concept = std::random_access_iterator_tag;
    using value_type = decltype(std::declval<const Owner&>().tensor_at(0));
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = value_type;

    // A singular iterator (C++20 iterators are default constructible): compare or assign it only.
    tensor_iterator() = default;
    tensor_iterator(Owner owner, std::size_t index) : owner_(std::move(owner)), index_(index) {}

    value_type operator*() const { return owner_->tensor_at(index_); }
    value_type operator[](difference_type n) const { return owner_->tensor_at(moved(n)); }

    tensor_iterator& operator++() noexcept {
        ++index_;
        return *this;
    }
    tensor_iterator operator++(int) noexcept {
        tensor_iterator old = *this;
        ++index_;
        return old;
    }
    tensor_iterator& operator--() noexcept {
        --index_;
        return *this;
    }
    tensor_iterator operator--(int) noexcept {
        tensor_iterator old = *this;
        --index_;
        return old;
    }
    tensor_iterator& operator+=(difference_type n) noexcept {
        index_ = moved(n);
        return *this;
    }
    tensor_iterator& operator-=(difference_type n) noexcept {
        index_ = moved(-n);
        return *this;
    }
    friend tensor_iterator operator+(tensor_iterator it, difference_type n) noexcept { return it += n; }
    friend tensor_iterator operator+(difference_type n, tensor_iterator it) noexcept { return it += n; }
    friend tensor_iterator operator-(tensor_iterator it, difference_type n) noexcept { return it -= n; }
    // Iterators of one owner (or copies of it); positions fit in ptrdiff_t, like any array's.
    friend difference_type operator-(const tensor_iterator& a, const tensor_iterator& b) noexcept {
        return static_cast<difference_type>(a.index_) - static_cast<difference_type>(b.index_);
    }

    friend bool operator==(const tensor_iterator& a, const tensor_iterator& b) noexcept { return a.index_ == b.index_; }
    friend bool operator!=(const tensor_iterator& a, const tensor_iterator& b) noexcept { return a.index_ != b.index_; }
    friend bool operator<(const tensor_iterator& a, const tensor_iterator& b) noexcept { return a.index_ < b.index_; }
    friend bool operator>(const tensor_iterator& a, const tensor_iterator& b) noexcept { return a.index_ > b.index_; }
    friend bool operator<=(const tensor_iterator& a, const tensor_iterator& b) noexcept { return a.index_ <= b.index_; }
    friend bool operator>=(const tensor_iterator& a, const tensor_iterator& b) noexcept { return a.index_ >= b.index_; }

private:
    // index_ + n, in size_t's modular arithmetic, which is exact for any in-range result.
    std::size_t moved(difference_type n) const noexcept { return index_ + static_cast<std::size_t>(n); }

    // Empty in a singular iterator: the owners have no default constructor, so that a braced
    // {} argument never converts to a file.
    std::optional<Owner> owner_;
    std::size_t index_ = 0;
};

} // namespace safetensors::detail
