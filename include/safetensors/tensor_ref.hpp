// safetensors-hpp: what a write takes: tensor_ref (one tensor: name, dtype, shape and, except
// for a stream_writer declaration, its bytes) with its shape_ref, tensor_list (the tensors of
// one save or serialize) and metadata_ref (the header's __metadata__).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/element_type.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "metadata.hpp"
#include "source.hpp"
#include "span.hpp"
#include "tensor.hpp"
#include "view.hpp"

namespace safetensors {

// A tensor's shape, as the writer takes it: a braced list such as {2, 3}, a vector or a span.
// Always copied, so a shape built in a loop cannot dangle. {} is a scalar.
class shape_ref {
public:
    shape_ref() noexcept = default;
    shape_ref(span<const std::uint64_t> dims) : dims_(dims.begin(), dims.end()) {}
    template <class A>
    shape_ref(const std::vector<std::uint64_t, A>& dims) : dims_(dims.begin(), dims.end()) {}
    shape_ref(std::vector<std::uint64_t>&& dims) noexcept : dims_(std::move(dims)) {}
    shape_ref(std::initializer_list<std::uint64_t> dims) : dims_(dims) {}

    span<const std::uint64_t> get() const noexcept { return dims_; }

private:
    std::vector<std::uint64_t> dims_;
};

// One tensor to write: its name and shape (copied: a tensor_ref built from a temporary string
// or vector stays valid) and its bytes (borrowed, like a span: the data must outlive the
// write). Made from a tensor_view, an owned tensor, or a name, dtype, shape and data:
//   - a vector or span of typed values, checked against the dtype with the rule as<T>()
//     reads by (float for F32, std::uint16_t for F16/BF16 bits, std::uint8_t for U8, BOOL and
//     F8, bool for BOOL ...): errc::dtype_mismatch otherwise;
//   - the same without a dtype, which is then deduced from the element type (float -> F32,
//     std::int64_t and long long -> I64, bool -> BOOL ...);
//   - std::byte data, or a pointer and a size: raw bytes, not checked (how F4 and F6 are written);
//   - nothing: a declaration, for a stream_writer, whose bytes come later.
// The byte count is checked against dtype and shape when writing, not here.
class tensor_ref {
public:
    tensor_ref(const tensor_view& view)
        : name_(view.name()), dtype_(view.dtype()), shape_(view.shape()),
          data_(view.source()->addressable() ? view.source()->data() + view.source_offset() : nullptr),
          size_(view.byte_size()), source_(view.source().get()), source_offset_(view.source_offset()) {}
    tensor_ref(const tensor& t) : name_(t.name()), dtype_(t.dtype()), shape_(t.shape()), data_(t.data()), size_(t.byte_size()) {}
    // A declaration: no bytes (byte_size() 0, data() null). stream_writer takes only the name,
    // dtype and shape of its tensors and plans their sizes from dtype and shape; save() and
    // serialize() check the 0 bytes like any others, so they accept a declaration of an empty
    // tensor and refuse one with elements ("0 bytes given, but ... needs N").
    tensor_ref(std::string_view name, safetensors::dtype type, shape_ref shape)
        : tensor_ref(name, type, std::move(shape), nullptr, 0) {}
    tensor_ref(std::string_view name, safetensors::dtype type, shape_ref shape, const void* data, std::uint64_t size)
        : name_(name), dtype_(type), shape_(std::move(shape)), data_(static_cast<const std::byte*>(data)), size_(size) {}
    tensor_ref(std::string_view name, safetensors::dtype type, shape_ref shape, span<const std::byte> bytes)
        : tensor_ref(name, type, std::move(shape), bytes.data(), bytes.size()) {}
    template <class T, class A>
    tensor_ref(std::string_view name, safetensors::dtype type, shape_ref shape, const std::vector<T, A>& values)
        : tensor_ref(name, type, std::move(shape), values.data(), values.size() * sizeof(T)) {
        detail::check_writable_as<T>(dtype_, name_);
    }
    template <class T>
    tensor_ref(std::string_view name, safetensors::dtype type, shape_ref shape, span<T> values)
        : tensor_ref(name, type, std::move(shape), values.data(), values.size() * sizeof(T)) {
        detail::check_writable_as<T>(dtype_, name_);
    }
    // The dtype deduced from the element type.
    template <class T, class A>
    tensor_ref(std::string_view name, shape_ref shape, const std::vector<T, A>& values)
        : tensor_ref(name, detail::deduced_dtype<T>(), std::move(shape), values) {}
    template <class T>
    tensor_ref(std::string_view name, shape_ref shape, span<T> values)
        : tensor_ref(name, detail::deduced_dtype<T>(), std::move(shape), values) {}
    // std::vector<bool> packs bits and has no data(): copy it to a std::vector<std::uint8_t>.
    template <class A>
    tensor_ref(std::string_view, safetensors::dtype, shape_ref, const std::vector<bool, A>&) = delete;
    template <class A>
    tensor_ref(std::string_view, shape_ref, const std::vector<bool, A>&) = delete;

    std::string_view name() const noexcept { return name_; }
    safetensors::dtype dtype() const noexcept { return dtype_; }
    span<const std::uint64_t> shape() const noexcept { return shape_.get(); }
    // The bytes given (the writer checks them against dtype and shape); 0 for a declaration.
    std::uint64_t byte_size() const noexcept { return size_; }
    // The bytes in memory; null for a declaration and for a view of a reader (a source that
    // is not addressable), whose bytes read_bytes() fetches.
    const std::byte* data() const noexcept { return data_; }
    // True when the bytes are there to write: in memory or behind a view's source.
    bool has_bytes() const noexcept { return data_ != nullptr || source_ != nullptr; }
    // A view's source and where its bytes start there (null and 0 for other refs).
    const safetensors::source* source() const noexcept { return source_; }
    std::uint64_t source_offset() const noexcept { return source_offset_; }

    // Copies bytes [offset, offset + length) to destination. A view reads through its source,
    // so a mapped file truncated under us gives an error instead of a SIGBUS.
    void read_bytes(std::uint64_t offset, void* destination, std::size_t length) const {
        if (length == 0) return;
        if (source_ != nullptr)
            source_->read_at(source_offset_ + offset, destination, length);
        else
            std::memcpy(destination, data_ + offset, length);
    }

private:
    std::string name_;
    safetensors::dtype dtype_;
    shape_ref shape_;
    const std::byte* data_;
    std::uint64_t size_;
    const safetensors::source* source_ = nullptr;  // set for views
    std::uint64_t source_offset_ = 0;
};

// The tensors of one write, in any order (the writer sorts them). Converts from a braced list
// of tensor_refs (or of views and tensors), a span or vector of tensor_refs, a vector of views,
// and a tensor_map (Python's dict: the map's keys are the names written).
class tensor_list {
public:
    tensor_list(std::initializer_list<tensor_ref> refs) noexcept : refs_(refs.begin(), refs.size()) {}
    tensor_list(span<const tensor_ref> refs) noexcept : refs_(refs) {}
    tensor_list(const std::vector<tensor_ref>& refs) noexcept : refs_(refs.data(), refs.size()) {}
    tensor_list(const std::vector<tensor_view>& views) : owned_(views.begin(), views.end()), owns_(true) {}
    tensor_list(const tensor_map& tensors) : owns_(true) {
        owned_.reserve(tensors.size());
        for (const auto& [name, t] : tensors) owned_.emplace_back(name, t.dtype(), t.shape(), t.data(), t.byte_size());
    }

    span<const tensor_ref> refs() const noexcept { return owns_ ? span<const tensor_ref>(owned_) : refs_; }

private:
    span<const tensor_ref> refs_;
    std::vector<tensor_ref> owned_;
    bool owns_ = false;
};

// The header's __metadata__: none (the default, nullptr, std::nullopt: no key is written) or a
// map, possibly empty (written as "__metadata__":{}). Borrows a metadata_map (file::metadata()
// fits directly) or copies a braced list such as {{"format", "pt"}}.
class metadata_ref {
public:
    metadata_ref() noexcept = default;
    metadata_ref(std::nullptr_t) noexcept {}
    metadata_ref(std::nullopt_t) noexcept {}
    metadata_ref(const metadata_map& map) noexcept : map_(&map) {}
    metadata_ref(const metadata_map* map) noexcept : map_(map) {}
    metadata_ref(const std::optional<metadata_map>& map) noexcept : map_(map ? &*map : nullptr) {}
    // Throws duplicate_metadata_key if a key repeats (metadata_map's own list constructor
    // would silently keep the first).
    metadata_ref(std::initializer_list<metadata_map::value_type> items) : owned_(std::in_place) {
        for (const auto& item : items)
            if (!owned_->insert(item.first, item.second))
                detail::throw_error(errc::duplicate_metadata_key, "duplicate metadata key " + detail::quote(item.first));
    }

    const metadata_map* get() const noexcept { return owned_ ? &*owned_ : map_; }

private:
    const metadata_map* map_ = nullptr;
    std::optional<metadata_map> owned_;
};

} // namespace safetensors
