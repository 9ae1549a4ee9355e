// safetensors-hpp: the iterator of file and sharded_file: position i of its owner, read through
// the owner's tensor_at(i). The iterator holds a copy of the owner (a handle to shared state),
// so it keeps the file or collection alive.
#pragma once

#include <cstddef>
#include <iterator>
#include <utility>

namespace safetensors::detail {

template <class Owner>
class tensor_iterator {
public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = decltype(std::declval<const Owner&>().tensor_at(0));
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = value_type;

    tensor_iterator(Owner owner, std::size_t index) : owner_(std::move(owner)), index_(index) {}

    value_type operator*() const { return owner_.tensor_at(index_); }
    tensor_iterator& operator++() noexcept {
        ++index_;
        return *this;
    }
    tensor_iterator operator++(int) noexcept {
        tensor_iterator old = *this;
        ++index_;
        return old;
    }
    friend bool operator==(const tensor_iterator& a, const tensor_iterator& b) noexcept { return a.index_ == b.index_; }
    friend bool operator!=(const tensor_iterator& a, const tensor_iterator& b) noexcept { return a.index_ != b.index_; }

private:
    Owner owner_;
    std::size_t index_;
};

} // namespace safetensors::detail
