// safetensors-hpp: tensor_view, a zero-copy view of one tensor of an opened file.
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "detail/element_type.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "header.hpp"
#include "source.hpp"
#include "span.hpp"

namespace safetensors {

// Slicing (slice.hpp, included at the end of this header).
class slice_index;
class tensor_slice;
using index_spec = std::vector<slice_index>;

namespace detail {

// What every view of one file shares: the bytes and the validated table.
struct file_state {
    std::shared_ptr<const source> src;
    header_table table;
};

} // namespace detail

// A tensor of an opened file: its name, dtype, shape and bytes, without copying. Cheap to
// copy; shares ownership of the file's bytes, so it stays valid after the file object is
// gone. All members are const and safe to call from several threads.
class tensor_view {
public:
    std::string_view name() const noexcept { return info().name; }
    safetensors::dtype dtype() const noexcept { return info().dtype; }
    span<const std::uint64_t> shape() const noexcept { return info().shape; }
    std::size_t rank() const noexcept { return info().shape.size(); }
    // Validated at open, so this cannot overflow.
    std::uint64_t element_count() const noexcept { return detail::checked_shape_elements(shape()); }
    std::uint64_t byte_size() const noexcept { return info().byte_size(); }
    // data_offsets as in the header: relative to the start of the data section.
    std::pair<std::uint64_t, std::uint64_t> data_offsets() const noexcept { return {info().begin, info().end}; }
    // Where the bytes start in the source (8 + N + begin).
    std::uint64_t source_offset() const noexcept { return state_->table.data_offset() + info().begin; }

    // The raw little-endian bytes, straight from the map or buffer.
    const std::byte* data() const noexcept { return state_->src->data() + source_offset(); }
    span<const std::byte> bytes() const noexcept {
        return {data(), detail::to_size(byte_size())};
    }

    // The elements as T, without copying; the span borrows from this view, so keep the view
    // (or its file) alive while using it. Throws dtype_mismatch when T does not read this
    // dtype (see detail::element_type_matches) and misaligned_data when the bytes are not
    // aligned for T (files written by other tools may not be; use copy_to then).
    template <class T>
    span<const T> as() const {
        check_type<T>();
        if (reinterpret_cast<std::uintptr_t>(data()) % alignof(T) != 0)
            detail::throw_error(errc::misaligned_data,
                                "tensor " + detail::quote(name()) + ": data at file offset " +
                                    std::to_string(source_offset()) + " is not aligned to " +
                                    std::to_string(alignof(T)) + " bytes for " + detail::element_type_name<T>() +
                                    "; use copy_to() instead");
        return {reinterpret_cast<const T*>(data()), detail::to_size(element_count())};
    }

    // Copies the elements into destination (capacity elements), whatever the alignment.
    template <class T>
    void copy_to(T* destination, std::size_t capacity) const {
        check_type<T>();
        if (capacity < element_count())
            detail::throw_error(errc::out_of_range, "tensor " + detail::quote(name()) + " has " +
                                                        std::to_string(element_count()) + " elements, destination holds " +
                                                        std::to_string(capacity));
        state_->src->read_at(source_offset(), destination, detail::to_size(byte_size()));
    }
    // The same into a span (its size is the capacity): view.copy_to(span<float>(buffer, n)).
    template <class T>
    void copy_to(span<T> destination) const {
        static_assert(!std::is_const<T>::value, "copy_to needs a writable destination");
        copy_to(destination.data(), destination.size());
    }
    // The raw bytes, whatever the dtype; errc::out_of_range when destination is smaller.
    void copy_to(span<std::byte> destination) const {
        if (destination.size() < byte_size())
            detail::throw_error(errc::out_of_range, "tensor " + detail::quote(name()) + " has " +
                                                        std::to_string(byte_size()) + " bytes, destination holds " +
                                                        std::to_string(destination.size()));
        state_->src->read_at(source_offset(), destination.data(), detail::to_size(byte_size()));
    }
    template <class T>
    std::vector<T> to_vector() const {
        check_type<T>();
        std::vector<T> out(detail::to_size(element_count()));
        copy_to(out.data(), out.size());
        return out;
    }

    // Copies the raw bytes [offset, offset + length) of this tensor to destination.
    void read_bytes(std::uint64_t offset, void* destination, std::size_t length) const {
        std::uint64_t end = 0;
        if (!detail::checked_add(offset, length, end) || end > byte_size())
            detail::throw_error(errc::out_of_range, "tensor " + detail::quote(name()) + ": bytes [" +
                                                        std::to_string(offset) + ", " + std::to_string(offset) + "+" +
                                                        std::to_string(length) + ") are outside its " +
                                                        std::to_string(byte_size()) + " bytes");
        state_->src->read_at(source_offset() + offset, destination, length);
    }

    // The index-th element converted to double (any dtype but C64; sub-byte dtypes unpacked
    // as documented in dtype.hpp). Throws out_of_range past the end.
    double element(std::uint64_t index) const {
        if (index >= element_count())
            detail::throw_error(errc::out_of_range, "tensor " + detail::quote(name()) + ": element " +
                                                        std::to_string(index) + " is out of range (" +
                                                        std::to_string(element_count()) + " elements)");
        return element_to_double(dtype(), data(), index);
    }

    // The source the bytes live in, for readers that go through read_at (GPU staging,
    // pread backends); holding it keeps the bytes alive.
    const std::shared_ptr<const safetensors::source>& source() const noexcept { return state_->src; }
    // An owner token: while it lives, data() stays valid (for async copies and deleters).
    std::shared_ptr<const void> keep_alive() const noexcept { return state_; }

    tensor_info info() const noexcept { return state_->table[index_]; }

    // torch/NumPy basic indexing, without copying: slice({all, range(0, n)}) or slice(":, 0:n").
    // Shards along dimension dim (negative counts from the end) for tensor parallelism:
    // part rank of world_size, split as shard_range() documents. See slice.hpp.
    tensor_slice slice(const index_spec& spec) const;
    template <class String, class = std::enable_if_t<std::is_convertible<const String&, std::string_view>::value>>
    tensor_slice slice(const String& python) const;  // a template, so that slice({0, 2}) is not a string
    tensor_slice shard(std::int64_t dim, std::uint64_t rank, std::uint64_t world_size) const;

private:
    friend class file;
    tensor_view(std::shared_ptr<const detail::file_state> state, std::size_t index)
        : state_(std::move(state)), index_(index) {}

    template <class T>
    void check_type() const {
        detail::check_readable_as<T>(dtype(), name());
    }

    std::shared_ptr<const detail::file_state> state_;
    std::size_t index_;
};

} // namespace safetensors

#include "slice.hpp"
