// safetensors-hpp: tensor, a tensor that owns its bytes (load.hpp fills them from a file).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "detail/element_type.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "source.hpp"
#include "span.hpp"

namespace safetensors {

class tensor_view;

namespace detail {
struct tensor_loader;
}

// A tensor that owns its bytes (64-byte aligned). Movable, not copyable: copies of
// weights should be deliberate (use clone()).
class tensor {
public:
    tensor() = default;

    // Zero-filled tensor of the given dtype and shape. Throws shape_overflow or
    // misaligned_sub_byte for impossible shapes.
    tensor(std::string name, safetensors::dtype type, std::vector<std::uint64_t> shape)
        : name_(std::move(name)), dtype_(type), shape_(std::move(shape)) {
        allocate();
        if (size_ != 0) std::memset(bytes_.get(), 0, detail::to_size(size_));
    }

    // Copies size bytes from data; size must be exactly what dtype and shape need.
    tensor(std::string name, safetensors::dtype type, std::vector<std::uint64_t> shape, const void* data,
           std::size_t size)
        : name_(std::move(name)), dtype_(type), shape_(std::move(shape)) {
        allocate();
        if (size != size_)
            detail::throw_error(errc::invalid_tensor, "tensor " + detail::quote(name_) + ": " + std::to_string(size) +
                                                          " bytes given, dtype " + std::string(to_string(dtype_)) +
                                                          " and its shape need " + std::to_string(size_));
        if (size != 0) std::memcpy(bytes_.get(), data, size);
    }

    // Reads a view's bytes into a new owned tensor (through read_at, so a file truncated
    // under a mapping gives an error, not a SIGBUS). Defined in view.hpp, after tensor_view:
    // whoever holds a view to pass has it.
    static tensor copy_of(const tensor_view& view);

    tensor clone() const {
        tensor t;
        t.name_ = name_;
        t.dtype_ = dtype_;
        t.shape_ = shape_;
        t.allocate();
        if (size_ != 0) std::memcpy(t.bytes_.get(), bytes_.get(), static_cast<std::size_t>(size_));
        return t;
    }

    const std::string& name() const noexcept { return name_; }
    safetensors::dtype dtype() const noexcept { return dtype_; }
    span<const std::uint64_t> shape() const noexcept { return shape_; }
    std::size_t rank() const noexcept { return shape_.size(); }
    std::uint64_t element_count() const noexcept { return detail::checked_shape_elements(shape_); }
    std::uint64_t byte_size() const noexcept { return size_; }
    std::byte* data() noexcept { return bytes_.get(); }
    const std::byte* data() const noexcept { return bytes_.get(); }
    span<const std::byte> bytes() const noexcept { return {bytes_.get(), static_cast<std::size_t>(size_)}; }
    span<std::byte> bytes() noexcept { return {bytes_.get(), detail::to_size(size_)}; }

    // Typed access, with the same dtype rules as tensor_view::as (always aligned here).
    template <class T>
    span<T> as() {
        check_type<T>();
        return {reinterpret_cast<T*>(bytes_.get()), detail::to_size(element_count())};
    }
    template <class T>
    span<const T> as() const {
        check_type<T>();
        return {reinterpret_cast<const T*>(bytes_.get()), detail::to_size(element_count())};
    }
    double element(std::uint64_t index) const {
        if (index >= element_count())
            detail::throw_error(errc::out_of_range, "tensor " + detail::quote(name_) + ": element " +
                                                        std::to_string(index) + " is out of range");
        return element_to_double(dtype_, bytes_.get(), index);
    }

private:
    friend struct detail::tensor_loader;

    // A tensor of this name, dtype and shape, its bytes allocated but not yet written
    // (copy_of and load() fill them in bulk).
    static tensor uninitialized(std::string name, safetensors::dtype type, span<const std::uint64_t> shape) {
        tensor t;
        t.name_ = std::move(name);
        t.dtype_ = type;
        t.shape_.assign(shape.begin(), shape.end());
        t.allocate();
        return t;
    }

    void allocate() {
        size_ = byte_size_of(dtype_, shape_);
        if (!detail::fits_size_t(size_))
            detail::throw_error(errc::file_too_large, "tensor " + detail::quote(name_) + " of " + std::to_string(size_) +
                                                          " bytes does not fit in memory");
        bytes_ = detail::allocate_aligned(detail::to_size(size_));
    }
    static std::uint64_t byte_size_of(safetensors::dtype type, const std::vector<std::uint64_t>& shape) {
        return safetensors::byte_size(type, span<const std::uint64_t>(shape));
    }
    template <class T>
    void check_type() const {
        detail::check_readable_as<T>(dtype_, name_);
    }

    std::string name_;
    safetensors::dtype dtype_ = safetensors::dtype::F32;
    std::vector<std::uint64_t> shape_;
    std::uint64_t size_ = 0;
    detail::aligned_bytes bytes_ = detail::allocate_aligned(0);
};

// Name -> owned tensor, sorted bytewise like Python's dict from load_file().
using tensor_map = std::map<std::string, tensor, std::less<>>;

namespace detail {
// How load() (load.hpp) makes its tensors.
struct tensor_loader {
    static tensor uninitialized(std::string name, safetensors::dtype type, span<const std::uint64_t> shape) {
        return tensor::uninitialized(std::move(name), type, shape);
    }
};
} // namespace detail

} // namespace safetensors
