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

#include "detail/checked.hpp"
#include "detail/element_type.hpp"
#include "detail/parallel_read.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "file.hpp"
#include "source.hpp"
#include "span.hpp"
#include "view.hpp"

namespace safetensors {

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
    // under a mapping gives an error, not a SIGBUS).
    static tensor copy_of(const tensor_view& view) {
        tensor t = shaped_like(view);
        view.source()->read_at(view.source_offset(), t.bytes_.get(), detail::to_size(t.size_));
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

    // A tensor with the view's name, dtype and shape, its bytes allocated but not yet
    // written (load() fills them in bulk).
    static tensor shaped_like(const tensor_view& view) {
        tensor t;
        t.name_ = std::string(view.name());
        t.dtype_ = view.dtype();
        t.shape_.assign(view.shape().begin(), view.shape().end());
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
struct tensor_loader {
    static tensor shaped_like(const tensor_view& view) { return tensor::shaped_like(view); }
};
} // namespace detail

struct load_options {
    // Threads copying bytes into the tensors: 0 picks one per hardware thread (at most 8).
    // Small files are read on the calling thread whatever this says (a thread per 64 MiB).
    unsigned threads = 0;
};

// Every tensor of a file (or of an already opened one) in owned memory. The bytes are read
// through the source's read_at (pread for files), so a file truncated meanwhile gives an
// error, never a SIGBUS; large files are read by several threads at once.
inline tensor_map load(const file& f, const load_options& options = {}) {
    tensor_map out;
    std::vector<detail::read_job> jobs;
    jobs.reserve(f.size());
    std::uint64_t total = 0;
    for (auto view : f) {
        tensor t = detail::tensor_loader::shaped_like(view);
        if (t.byte_size() != 0)
            jobs.push_back({view.source_offset(), t.data(), detail::to_size(t.byte_size())});
        total += t.byte_size();
        out.emplace(std::string(view.name()), std::move(t));
    }
    const auto& src = *f.source();
    auto read = [&src](std::uint64_t offset, std::byte* destination, std::size_t length) {
        src.read_at(offset, destination, length);
    };
    if (!jobs.empty()) detail::parallel_read(read, jobs, detail::read_threads_for(total, options.threads));
    return out;
}
inline tensor_map load(const std::string& path, const open_options& options = {}, const load_options& how = {}) {
    return load(file::open(path, options), how);
}

} // namespace safetensors
