// safetensors-hpp: a minimal read-only-friendly span, since the library targets C++17.
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

namespace safetensors {

// A pointer and a count. Converts from std::vector and from a span of non-const T.
template <class T>
class span {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using iterator = T*;

    constexpr span() noexcept = default;
    constexpr span(T* data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <class U, class = std::enable_if_t<std::is_convertible<U (*)[], T (*)[]>::value>>
    constexpr span(const span<U>& other) noexcept : data_(other.data()), size_(other.size()) {}
    template <class A, class U = T, class = std::enable_if_t<std::is_const<U>::value>>
    span(const std::vector<value_type, A>& v) noexcept : data_(v.data()), size_(v.size()) {}
    template <class A>
    span(std::vector<value_type, A>& v) noexcept : data_(v.data()), size_(v.size()) {}

    constexpr T* data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T& operator[](std::size_t i) const noexcept { return data_[i]; }
    constexpr T* begin() const noexcept { return data_; }
    constexpr T* end() const noexcept { return data_ + size_; }
    constexpr T& front() const noexcept { return data_[0]; }
    constexpr T& back() const noexcept { return data_[size_ - 1]; }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

template <class T, class U>
bool operator==(span<T> a, span<U> b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!(a[i] == b[i])) return false;
    return true;
}
template <class T, class U>
bool operator!=(span<T> a, span<U> b) {
    return !(a == b);
}

} // namespace safetensors
