// safetensors-hpp: views of one tensor of an opened file, without copying: tensor_view (the
// whole tensor) and tensor_slice (a part of it selected by an index expression, slice.hpp).
//
//   auto emb = f.tensor("embedding");                    // a tensor_view, nothing read yet
//   auto part = emb.slice({all, range::to(hidden / 2)});  // or emb.slice(":, :1024")
//   part.shape();  part.runs();  part.copy_to(buffer, capacity);  part.to_tensor();
//   auto mine = emb.split(0, rank, world);                // rows [begin, end) of this rank
//
// A slice is a plan, not a copy: the result's shape, and the byte runs of the source it is
// made of, in row-major order (detail/slice_plan.hpp; detail/slice_copy.hpp copies them). It
// holds a copy of its tensor_view (and so shares ownership of the file's bytes), so a sharded
// collection or a loader can hand slices around freely.
#pragma once

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
#include "detail/slice_copy.hpp"
#include "detail/slice_plan.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "header_table.hpp"
#include "slice.hpp"
#include "source.hpp"
#include "span.hpp"
#include "tensor.hpp"

namespace safetensors {

class tensor_slice;

namespace detail {

// What every view of one file shares: the bytes and the validated table.
struct file_state {
    std::shared_ptr<const source> src;
    header_table table;
};

[[noreturn]] inline void throw_not_addressable(std::string_view tensor, const char* what, const source& src) {
    throw_error(errc::not_addressable, "tensor " + quote(tensor) + ": " + what + " needs addressable bytes, but " +
                                           quote(src.description()) +
                                           " is read through a reader; use copy_to(), read_bytes() or tensor::copy_of()");
}

// Copies bytes [begin, end) of a slice's packed result to out, its runs (base is the tensor's
// offset in src) fetched through source::read_ranges in batches: the runs of a column split
// of a large matrix can number millions, so the batch, not the slice, bounds the memory.
inline void read_slice_runs(const source& src, std::uint64_t base, const slice_layout& layout, std::uint64_t begin,
                            std::uint64_t end, std::byte* out) {
    constexpr std::size_t batch = 4096;
    std::vector<byte_range> ranges;  // grows to the batch only when there are that many runs
    visit_runs(layout, begin, end, [&](std::uint64_t at, std::uint64_t n) {
        ranges.push_back({base + at, to_size(n), out});  // n <= end - begin, a size_t
        out += n;
        if (ranges.size() == batch) {
            src.read_ranges(ranges);
            ranges.clear();
        }
    });
    if (!ranges.empty()) src.read_ranges(ranges);
}

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

    // The raw little-endian bytes, straight from the map or buffer. errc::not_addressable
    // when the source is a reader (source::addressable() is false): copy them instead.
    const std::byte* data() const { return address("data()"); }
    span<const std::byte> bytes() const {
        return {address("bytes()"), detail::to_size(byte_size())};
    }

    // The elements as T, without copying; the span borrows from this view, so keep the view
    // (or its file) alive while using it. Throws dtype_mismatch when T does not read this
    // dtype (see detail::element_type_matches) and misaligned_data when the bytes are not
    // aligned for T (files written by other tools may not be; use copy_to then).
    template <class T>
    span<const T> as() const {
        check_type<T>();
        const std::byte* at = address("as<T>()");
        if (reinterpret_cast<std::uintptr_t>(at) % alignof(T) != 0)
            detail::throw_error(errc::misaligned_data,
                                "tensor " + detail::quote(name()) + ": data at file offset " +
                                    std::to_string(source_offset()) + " is not aligned to " +
                                    std::to_string(alignof(T)) + " bytes for " + detail::element_type_name<T>() +
                                    "; use copy_to() instead");
        return {reinterpret_cast<const T*>(at), detail::to_size(element_count())};
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
        return element_to_double(dtype(), address("element()"), index);
    }

    // The source the bytes live in, for readers that go through read_at (GPU staging,
    // pread backends); holding it keeps the bytes alive.
    const std::shared_ptr<const safetensors::source>& source() const noexcept { return state_->src; }
    // An owner token: while it lives, data() stays valid (for async copies and deleters).
    std::shared_ptr<const void> keep_alive() const noexcept { return state_; }

    tensor_info info() const noexcept { return state_->table[index_]; }

    // torch/NumPy basic indexing, without copying: slice({all, range(0, n)}) or slice(":, 0:n").
    // split() takes part rank of world_size along dimension dim (negative counts from the
    // end) for tensor parallelism, split as split_range() (slice.hpp) documents.
    tensor_slice slice(const slice_spec& spec) const;
    template <class String, class = std::enable_if_t<std::is_convertible<const String&, std::string_view>::value>>
    tensor_slice slice(const String& python) const;  // a template, so that slice({0, 2}) is not a string
    tensor_slice split(std::int64_t dim, std::uint64_t rank, std::uint64_t world_size) const;

private:
    friend class file;
    tensor_view(std::shared_ptr<const detail::file_state> state, std::size_t index)
        : state_(std::move(state)), index_(index) {}

    template <class T>
    void check_type() const {
        detail::check_readable_as<T>(dtype(), name());
    }
    // The first byte in memory, for the members that hand out pointers (what names the one
    // asking, for the error over a reader).
    const std::byte* address(const char* what) const {
        const safetensors::source& src = *state_->src;
        if (!src.addressable()) detail::throw_not_addressable(name(), what, src);
        return src.data() + source_offset();
    }

    std::shared_ptr<const detail::file_state> state_;
    std::size_t index_;
};

// One run of source bytes: [offset, offset + length), relative to the tensor's first byte
// (add tensor_view::source_offset() for a position in the file).
struct byte_run {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    friend constexpr bool operator==(const byte_run& a, const byte_run& b) noexcept {
        return a.offset == b.offset && a.length == b.length;
    }
    friend constexpr bool operator!=(const byte_run& a, const byte_run& b) noexcept { return !(a == b); }
};

// The result of tensor_view::slice() or split(): its shape and the source bytes it selects.
// Cheap to copy; shares ownership of the file's bytes like the view it came from.
class tensor_slice {
public:
    // The tensor this slice selects from.
    const tensor_view& view() const noexcept { return view_; }
    safetensors::dtype dtype() const noexcept { return view_.dtype(); }
    span<const std::uint64_t> shape() const noexcept { return layout_.shape; }
    std::size_t rank() const noexcept { return layout_.shape.size(); }
    std::uint64_t element_count() const noexcept { return layout_.element_count; }
    std::uint64_t byte_size() const noexcept { return layout_.byte_size; }

    // True when the selected bytes are one run of the source (or there are none); then
    // data() and bytes() give them without copying.
    bool is_contiguous() const noexcept { return layout_.loops.empty(); }
    // Zero-copy access to a contiguous slice (errc::invalid_argument otherwise; over a reader,
    // errc::not_addressable). Borrows from the mapping like tensor_view::data(): keep the
    // slice or its view alive while using it.
    const std::byte* data() const {
        if (!is_contiguous())
            detail::throw_error(errc::invalid_argument,
                                detail::tensor_prefix(view_.name()) + "slice of shape " + detail::shape_to_string(shape()) +
                                    " is not one contiguous run (it reads runs of " + std::to_string(layout_.run_length) +
                                    " bytes); use copy_to() or to_tensor()");
        return view_.data() + layout_.first;
    }
    span<const std::byte> bytes() const { return {data(), static_cast<std::size_t>(layout_.byte_size)}; }

    // Calls f(offset, length) for each run of source bytes, in row-major order, with
    // adjacent runs merged; offsets are relative to the tensor's first byte. Allocates
    // nothing per run, so it also suits slices of millions of tiny runs.
    template <class F>
    void for_each_run(F&& f) const {
        detail::visit_runs(layout_, 0, layout_.byte_size, f);
    }
    std::vector<byte_run> runs() const {
        std::vector<byte_run> out;
        for_each_run([&out](std::uint64_t offset, std::uint64_t length) { out.push_back({offset, length}); });
        return out;
    }

    // Copies the selected bytes, packed in row-major order, to destination (capacity bytes;
    // errc::out_of_range when that is too small). Reads the source with memcpy from its
    // mapping: it touches only the pages the runs cover and runs at memory speed, where
    // read_at would cost a pread per run (a syscall per 4 KiB row of a column split). Like
    // tensor_view::data(), it relies on the mapped file not shrinking; read_bytes() is the
    // checked path for files that may change under the reader. Over a reader (a source that
    // is not addressable) it fetches the runs through source::read_ranges.
    void copy_to(void* destination, std::size_t capacity) const {
        if (capacity < layout_.byte_size)
            detail::throw_error(errc::out_of_range, detail::tensor_prefix(view_.name()) + "slice needs " +
                                                        std::to_string(layout_.byte_size) + " bytes, destination holds " +
                                                        std::to_string(capacity));
        if (layout_.byte_size == 0) return;
        if (destination == nullptr) detail::throw_error(errc::invalid_argument, "copy_to: null destination");
        const safetensors::source& src = *view_.source();
        if (!src.addressable())  // a reader: fetch only the runs, batched
            return detail::read_slice_runs(src, view_.source_offset(), layout_, 0, layout_.byte_size,
                                           static_cast<std::byte*>(destination));
        detail::copy_slice(static_cast<std::byte*>(destination), src.data() + view_.source_offset(), layout_);
    }
    // The same into a span of bytes (its size is the capacity).
    void copy_to(span<std::byte> destination) const { copy_to(destination.data(), destination.size()); }

    // Copies bytes [offset, offset + length) of the packed result to destination through
    // source::read_ranges (the merged runs, in batches): a file truncated after open gives
    // errc::short_read instead of a SIGBUS, and a reader can stream a huge slice in chunks.
    void read_bytes(std::uint64_t offset, void* destination, std::size_t length) const {
        std::uint64_t end = 0;
        if (!detail::checked_add(offset, length, end) || end > layout_.byte_size)
            detail::throw_error(errc::out_of_range, detail::tensor_prefix(view_.name()) + "bytes [" + std::to_string(offset) +
                                                        ", " + std::to_string(offset) + "+" + std::to_string(length) +
                                                        ") are outside the slice's " + std::to_string(layout_.byte_size) + " bytes");
        detail::read_slice_runs(*view_.source(), view_.source_offset(), layout_, offset, end,
                                static_cast<std::byte*>(destination));
    }

    // An owned, contiguous copy, named like the source tensor unless a name is given.
    tensor to_tensor(std::string name) const {
        std::vector<std::uint64_t> shape(layout_.shape);
        if (is_contiguous() && view_.source()->addressable())  // one copy straight from the source
            return tensor(std::move(name), dtype(), std::move(shape), data(), detail::to_size(layout_.byte_size));
        tensor out(std::move(name), dtype(), std::move(shape));  // zero-filled: tensor has no uninitialized form
        copy_to(out.data(), detail::to_size(out.byte_size()));
        return out;
    }
    tensor to_tensor() const { return to_tensor(std::string(view_.name())); }

private:
    friend class tensor_view;

    tensor_slice(tensor_view view, const slice_spec& spec)
        : view_(std::move(view)), layout_(detail::plan_slice(view_.name(), view_.dtype(), view_.shape(), spec)) {}

    tensor_view view_;
    detail::slice_layout layout_;
};

// ---- tensor_view members that make slices (tensor_slice is complete here) ----------------------

inline tensor_slice tensor_view::slice(const slice_spec& spec) const { return tensor_slice(*this, spec); }

template <class String, class>
tensor_slice tensor_view::slice(const String& python) const {
    return slice(detail::slice_spec_parser(std::string_view(python), name()).parse());
}

inline tensor_slice tensor_view::split(std::int64_t dim, std::uint64_t rank, std::uint64_t world_size) const {
    const detail::slice_integer d(dim);
    const std::size_t dims = shape().size();
    if (d.negative() ? d.magnitude() > dims : d.magnitude() >= dims)
        detail::throw_error(errc::invalid_argument, detail::tensor_prefix(name()) + "dimension " + std::to_string(dim) +
                                                        " is out of range for tensor of dimension " + std::to_string(dims));
    const auto axis = detail::to_size(d.negative() ? dims - d.magnitude() : d.magnitude());
    const split_bounds part = detail::split_range(shape()[axis], rank, world_size, detail::tensor_prefix(name()));
    slice_spec spec(axis, all);
    spec.push_back(range(part.begin, part.end));
    return slice(spec);
}

// ---- tensor members that read a view (declared in tensor.hpp, which comes first) ---------------

inline tensor tensor::copy_of(const tensor_view& view) {
    tensor t = uninitialized(std::string(view.name()), view.dtype(), view.shape());
    view.source()->read_at(view.source_offset(), t.data(), detail::to_size(t.byte_size()));
    return t;
}

} // namespace safetensors
