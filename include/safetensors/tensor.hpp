// safetensors-hpp: tensor, an owned tensor, and load(), the Python load_file().
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

#include "dtype.hpp"
#include "error.hpp"
#include "file.hpp"
#include "source.hpp"
#include "span.hpp"
#include "view.hpp"

namespace safetensors {

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
        if (size_ != 0) std::memset(bytes_.get(), 0, static_cast<std::size_t>(size_));
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
    // under a mapping gives an error, not a SIGBUS).
    static tensor copy_of(const tensor_view& view) {
        tensor t;
        t.name_ = std::string(view.name());
        t.dtype_ = view.dtype();
        t.shape_.assign(view.shape().begin(), view.shape().end());
        t.allocate();
        view.source()->read_at(view.source_offset(), t.bytes_.get(), static_cast<std::size_t>(t.size_));
        return t;
    }

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
    std::uint64_t element_count() const noexcept {
        std::uint64_t n = 1;
        for (auto d : shape_) n *= d;
        return n;
    }
    std::uint64_t byte_size() const noexcept { return size_; }
    std::byte* data() noexcept { return bytes_.get(); }
    const std::byte* data() const noexcept { return bytes_.get(); }
    span<const std::byte> bytes() const noexcept { return {bytes_.get(), static_cast<std::size_t>(size_)}; }
    span<std::byte> bytes() noexcept { return {bytes_.get(), static_cast<std::size_t>(size_)}; }

    // Typed access, with the same dtype rules as tensor_view::as (always aligned here).
    template <class T>
    span<T> as() {
        check_type<T>();
        return {reinterpret_cast<T*>(bytes_.get()), static_cast<std::size_t>(element_count())};
    }
    template <class T>
    span<const T> as() const {
        check_type<T>();
        return {reinterpret_cast<const T*>(bytes_.get()), static_cast<std::size_t>(element_count())};
    }
    double element(std::uint64_t index) const {
        if (index >= element_count())
            detail::throw_error(errc::out_of_range, "tensor " + detail::quote(name_) + ": element " +
                                                        std::to_string(index) + " is out of range");
        return element_to_double(dtype_, bytes_.get(), index);
    }

private:
    void allocate() {
        size_ = byte_size_of(dtype_, shape_);
        if (!detail::fits_size_t(size_))
            detail::throw_error(errc::file_too_large, "tensor " + detail::quote(name_) + " of " + std::to_string(size_) +
                                                          " bytes does not fit in memory");
        bytes_ = detail::allocate_aligned(static_cast<std::size_t>(size_));
    }
    static std::uint64_t byte_size_of(safetensors::dtype type, const std::vector<std::uint64_t>& shape) {
        return safetensors::byte_size(type, span<const std::uint64_t>(shape));
    }
    template <class T>
    void check_type() const {
        if (!detail::element_type_matches<T>(dtype_))
            detail::throw_error(errc::dtype_mismatch, "tensor " + detail::quote(name_) + " has dtype " +
                                                          std::string(to_string(dtype_)) + ", which cannot be read as " +
                                                          detail::element_type_name<T>());
    }

    std::string name_;
    safetensors::dtype dtype_ = safetensors::dtype::F32;
    std::vector<std::uint64_t> shape_;
    std::uint64_t size_ = 0;
    detail::aligned_bytes bytes_ = detail::allocate_aligned(0);
};

// Name -> owned tensor, sorted bytewise like Python's dict from load_file().
using tensor_map = std::map<std::string, tensor, std::less<>>;

// Every tensor of a file (or of an already opened one) in owned memory.
inline tensor_map load(const file& f) {
    tensor_map out;
    for (auto view : f) out.emplace(std::string(view.name()), tensor::copy_of(view));
    return out;
}
inline tensor_map load(const std::string& path, const open_options& options = {}) {
    return load(file::open(path, options));
}

} // namespace safetensors
