// safetensors-hpp: writing safetensors files, byte-identical to the reference writer.
//
//   save(path, tensors, metadata, options)   a file, replaced atomically (Python's save_file)
//   serialize(tensors, metadata, options)    the same bytes in memory (Python's save)
//   save(path, file) / serialize(file)       all tensors and metadata of an opened file
//   is_canonical(file)                       whether writing the file back reproduces it
//   stream_writer                            declare tensors first, then supply their bytes in
//                                            chunks: O(header + chunk) memory
//
// Layout (docs "Writer"): tensors ordered by dtype in descending enum order, then by name
// bytewise; compact header JSON with __metadata__ first (keys in insertion order); the header
// padded with spaces so the data section starts at a multiple of 8 (or write_options::alignment).
// Everything is validated before the first byte is written, and every error is a
// safetensors::error.
//
// Files are never written in place: the bytes go to a new temporary file in the target's
// folder (random name, created exclusively, mode 0666 & ~umask), which is flushed (fsync) and
// renamed over the target, and the folder is synced. Readers see the old file or the new one.
// On any failure (a write error, a full disk, a file-size limit, an exception thrown by the
// caller while streaming) the temporary file is removed and the target is left as it was.
// The new file gets fresh permissions (the umask's), not the old target's. If the target is a
// symbolic link, the rename replaces the link itself with a regular file; the file the link
// pointed to is not changed (resolve the link first to write through it).
//
// Special targets, found with stat() (which follows links): a character device or a FIFO
// (/dev/stdout, a named pipe) is written straight through in file order, with no temporary
// file, rename or fsync, as cp and Python's save_file do (a FIFO waits for its reader; a
// reader that goes away raises SIGPIPE, as for any write); so is a regular file reached through
// /dev or /proc (/dev/stdout redirected to a file), truncated first. A block device, a directory or a
// socket is refused (errc::not_regular_file). Every error names the path (error::path()), and
// an OS failure keeps its errno (error::system_code()).
#pragma once

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/atomic_file.hpp"
#include "detail/checked.hpp"
#include "detail/closest_name.hpp"
#include "detail/element_type.hpp"
#include "detail/json_escape.hpp"
#include "detail/utf8.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "file.hpp"
#include "header.hpp"
#include "metadata.hpp"
#include "source.hpp"
#include "span.hpp"
#include "tensor.hpp"
#include "view.hpp"

namespace safetensors {

struct write_options {
    // The data section starts at a multiple of this many bytes: the header is padded with
    // spaces (legal trailing JSON whitespace, which every reader accepts). 8 is the reference
    // layout; 4096 lets the data be mapped page-aligned. Must be a positive multiple of 8, so
    // every element stays aligned to its size.
    std::uint64_t alignment = 8;
    // Flush the file to stable storage before the rename, and the folder after it. Off, the
    // replacement is still atomic for other processes, but may not survive a power loss.
    bool sync = true;
    // Leave the written bytes in the OS page cache, as any write does. Off (Linux), the file
    // is written back while it is produced and dropped from the cache behind the writer, so a
    // file larger than memory neither fills the cache nor evicts other programs' data, and
    // large writes run at the disk's speed; reading the file right after then goes to disk.
    bool keep_in_cache = true;
};

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
//   - std::byte data, or a pointer and a size: raw bytes, not checked (how F4 and F6 are written).
// The byte count is checked against dtype and shape when writing, not here.
class tensor_ref {
public:
    tensor_ref(const tensor_view& view)
        : name_(view.name()), dtype_(view.dtype()), shape_(view.shape()), data_(view.data()),
          size_(view.byte_size()), source_(view.source().get()), source_offset_(view.source_offset()) {}
    tensor_ref(const tensor& t) : name_(t.name()), dtype_(t.dtype()), shape_(t.shape()), data_(t.data()), size_(t.byte_size()) {}
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
    // The bytes given (the writer checks them against dtype and shape).
    std::uint64_t byte_size() const noexcept { return size_; }
    const std::byte* data() const noexcept { return data_; }

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

namespace detail {

// What the planner needs of one tensor. has_data is false for streaming declarations.
struct tensor_spec {
    std::string_view name;
    safetensors::dtype dtype;
    span<const std::uint64_t> shape;
    bool has_data = false;
    std::uint64_t data_size = 0;
    const void* data = nullptr;
};

// The layout of one file: its first data_offset() bytes, and where each tensor goes.
struct write_plan {
    std::string head;                 // the 8-byte length, the header JSON and its padding
    std::vector<std::size_t> order;   // input indices in file order
    std::vector<std::size_t> by_name; // input indices sorted by name (bytewise)
    std::vector<std::uint64_t> begin; // by input index: offset in the data section
    std::vector<std::uint64_t> size;  // by input index: bytes
    std::uint64_t data_size = 0;

    std::uint64_t data_offset() const noexcept { return head.size(); }
};

inline void append_number(std::string& out, std::uint64_t value) {
    char digits[20];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    out.append(digits, static_cast<std::size_t>(end - digits));
}

inline void check_alignment(const write_options& options) {
    if (options.alignment == 0 || options.alignment % 8 != 0)
        throw_error(errc::invalid_argument, "write_options::alignment must be a positive multiple of 8, got " +
                                                std::to_string(options.alignment));
}

inline void check_utf8(std::string_view text, errc code, const std::string& what) {
    const std::size_t bad = find_invalid_utf8(reinterpret_cast<const unsigned char*>(text.data()), text.size());
    if (bad != text.size())
        throw_error(code, what + " " + quote(text) + " is not valid UTF-8 (byte " + std::to_string(bad) + ")");
}

// Validates the tensors one by one (in input order, so the first bad one is reported), then
// names across tensors, then the metadata; then orders the tensors and builds the header.
template <class SpecOf>
write_plan make_plan(std::size_t count, SpecOf spec_of, const metadata_map* metadata, const write_options& options) {
    check_alignment(options);
    write_plan plan;
    plan.size.resize(count);
    plan.begin.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
        const tensor_spec t = spec_of(i);
        if (t.name == "__metadata__")
            throw_error(errc::reserved_name, "tensor name \"__metadata__\" is reserved for the header's metadata");
        check_utf8(t.name, errc::invalid_tensor, "tensor name");
        if (static_cast<std::size_t>(t.dtype) >= dtype_count)
            throw_error(errc::invalid_tensor, "tensor " + quote(t.name) + ": invalid dtype value " +
                                                  std::to_string(static_cast<unsigned>(t.dtype)));
        std::uint64_t bytes = 0;
        switch (checked_byte_size(t.dtype, t.shape, bytes)) {
            case size_status::ok: break;
            case size_status::overflow:
                throw_error(errc::shape_overflow, "tensor " + quote(t.name) + ": size in bits of shape " +
                                                      shape_to_string(t.shape) + " of dtype " +
                                                      std::string(to_string(t.dtype)) + " overflows 64 bits");
            case size_status::not_whole_bytes: {
                std::uint64_t elements = 0;
                checked_element_count(t.shape, elements);  // cannot overflow: the bit count did not
                throw_error(errc::misaligned_sub_byte,
                            "tensor " + quote(t.name) + ": shape " + shape_to_string(t.shape) + " of dtype " +
                                std::string(to_string(t.dtype)) + " is not a whole number of bytes (" +
                                std::to_string(elements * bit_size(t.dtype)) + " bits)");
            }
        }
        if (t.has_data && t.data_size != bytes)
            throw_error(errc::invalid_tensor, "tensor " + quote(t.name) + ": " + std::to_string(t.data_size) +
                                                  " bytes given, but dtype " + std::string(to_string(t.dtype)) +
                                                  " with shape " + shape_to_string(t.shape) + " needs " +
                                                  std::to_string(bytes));
        if (t.has_data && t.data == nullptr && bytes != 0)
            throw_error(errc::invalid_tensor, "tensor " + quote(t.name) + ": null data pointer for " +
                                                  std::to_string(bytes) + " bytes");
        plan.size[i] = bytes;
    }

    // By name: input already in name order (a tensor_map, say) skips the sort. string_view compares bytewise (char_traits<char> compares as unsigned char).
    std::vector<std::string_view> names(count);
    for (std::size_t i = 0; i < count; ++i) names[i] = spec_of(i).name;
    plan.by_name.resize(count);
    std::iota(plan.by_name.begin(), plan.by_name.end(), std::size_t{0});
    const auto by_name = [&](std::size_t a, std::size_t b) { return names[a] < names[b]; };
    if (!std::is_sorted(plan.by_name.begin(), plan.by_name.end(), by_name))
        std::sort(plan.by_name.begin(), plan.by_name.end(), by_name);
    for (std::size_t k = 1; k < count; ++k)
        if (names[plan.by_name[k - 1]] == names[plan.by_name[k]])
            throw_error(errc::duplicate_name, "duplicate tensor name " + quote(names[plan.by_name[k]]));

    if (metadata != nullptr)
        for (const auto& [key, value] : *metadata) {
            check_utf8(key, errc::invalid_metadata, "metadata key");
            check_utf8(value, errc::invalid_metadata, "metadata value for key " + quote(key) + ":");
        }

    // The reference's order: dtype descending, then name. A stable counting sort of the
    // name-sorted indices by dtype, O(n).
    std::size_t starts[dtype_count + 1] = {};
    for (std::size_t i = 0; i < count; ++i) ++starts[dtype_count - static_cast<std::size_t>(spec_of(i).dtype)];
    for (std::size_t d = 1; d <= dtype_count; ++d) starts[d] += starts[d - 1];
    plan.order.resize(count);
    for (std::size_t i : plan.by_name)
        plan.order[starts[dtype_count - 1 - static_cast<std::size_t>(spec_of(i).dtype)]++] = i;
    std::uint64_t position = 0;
    for (std::size_t i : plan.order) {
        plan.begin[i] = position;
        if (!checked_add(position, plan.size[i], position))
            throw_error(errc::file_too_large, "the data section would be larger than 2^64 bytes");
    }
    plan.data_size = position;

    // The header, checked against the readers' limit as it grows, so an oversized one fails
    // before it takes much memory.
    const auto too_large = [] {
        throw_error(errc::header_too_large, "header too large: more than " + std::to_string(max_header_size) +
                                                " bytes of JSON, the limit readers enforce");
    };
    std::string& h = plan.head;
    std::size_t estimate = 16;  // about 64 bytes per tensor besides its name and dimensions
    for (std::size_t i = 0; i < count; ++i) estimate += names[i].size() + 64 + 8 * spec_of(i).shape.size();
    h.reserve(std::min<std::size_t>(estimate, static_cast<std::size_t>(max_header_size) + 16));
    h.assign(8, '\0');
    h += '{';
    if (metadata != nullptr) {
        h += "\"__metadata__\":{";
        bool first = true;
        for (const auto& [key, value] : *metadata) {
            if (!first) h += ',';
            first = false;
            append_json_string(h, key);
            h += ':';
            append_json_string(h, value);
            if (h.size() - 8 > max_header_size) too_large();
        }
        h += '}';
    }
    for (std::size_t i : plan.order) {
        const tensor_spec t = spec_of(i);
        if (h.size() > 9) h += ',';
        append_json_string(h, t.name);
        h += ":{\"dtype\":\"";
        h += to_string(t.dtype);
        h += "\",\"shape\":[";
        for (std::size_t d = 0; d < t.shape.size(); ++d) {
            if (d != 0) h += ',';
            append_number(h, t.shape[d]);
        }
        h += "],\"data_offsets\":[";
        append_number(h, plan.begin[i]);
        h += ',';
        append_number(h, plan.begin[i] + plan.size[i]);
        h += "]}";
        if (h.size() - 8 > max_header_size) too_large();
    }
    h += '}';
    // Spaces until 8 + N is a multiple of the alignment (N is then a multiple of 8 too).
    const std::uint64_t json_size = h.size() - 8;
    const std::uint64_t padding = (options.alignment - (8 + json_size) % options.alignment) % options.alignment;
    if (json_size > max_header_size || padding > max_header_size - json_size) too_large();
    h.append(static_cast<std::size_t>(padding), ' ');
    const std::uint64_t n = json_size + padding;
    for (int b = 0; b < 8; ++b) h[static_cast<std::size_t>(b)] = static_cast<char>((n >> (8 * b)) & 0xff);
    return plan;
}

inline write_plan plan_for(span<const tensor_ref> refs, const metadata_map* metadata, const write_options& options) {
    return make_plan(
        refs.size(),
        [&](std::size_t i) {
            const tensor_ref& r = refs[i];
            return tensor_spec{r.name(), r.dtype(), r.shape(), true, r.byte_size(), r.data()};
        },
        metadata, options);
}

// Sequential-ish output with a small staging buffer: small pieces (the header, small tensors,
// small chunks) are gathered into one write; large ones go straight from the caller's memory
// to write(), without a copy. Staged bytes must continue the staged run, else it is flushed.
class staging_buffer {
public:
    static constexpr std::size_t capacity = std::size_t{1} << 20;
    static constexpr std::size_t direct_threshold = std::size_t{256} << 10;

    // Where to copy size (< direct_threshold) bytes that belong at offset.
    template <class Emit>
    std::byte* reserve(std::uint64_t offset, std::size_t size, Emit&& emit) {
        if (used_ != 0 && (offset != start_ + used_ || size > capacity - used_)) flush(emit);
        if (used_ == 0) {
            start_ = offset;
            if (!bytes_) bytes_ = allocate_aligned(capacity);
        }
        std::byte* at = bytes_.get() + used_;
        used_ += size;
        return at;
    }

    template <class Emit>
    void put(std::uint64_t offset, const void* data, std::size_t size, Emit&& emit) {
        if (size == 0) return;
        if (size >= direct_threshold) {
            flush(emit);
            emit(offset, data, size);
            return;
        }
        std::memcpy(reserve(offset, size, emit), data, size);
    }

    template <class Emit>
    void flush(Emit&& emit) {
        if (used_ == 0) return;
        const std::size_t n = used_;
        used_ = 0;
        emit(start_, bytes_.get(), n);
    }

private:
    aligned_bytes bytes_;
    std::uint64_t start_ = 0;
    std::size_t used_ = 0;
};

// Writes one tensor_ref's bytes at offset: large ones straight from their memory, small ones
// through the staging buffer (views copy via read_at, see tensor_ref::read_bytes).
template <class Emit>
void put_tensor(staging_buffer& staging, std::uint64_t offset, const tensor_ref& ref, Emit&& emit) {
    const std::uint64_t size = ref.byte_size();
    if (size == 0) return;
    if (size >= staging_buffer::direct_threshold) {
        if (!fits_size_t(size))
            throw_error(errc::file_too_large, "tensor " + quote(ref.name()) + " does not fit in the address space");
        staging.flush(emit);
        emit(offset, ref.data(), static_cast<std::size_t>(size));
        return;
    }
    ref.read_bytes(0, staging.reserve(offset, static_cast<std::size_t>(size), emit), static_cast<std::size_t>(size));
}

} // namespace detail

// ---- Whole files -------------------------------------------------------------------------------

// The file's bytes in memory (Python's safetensors.torch.save). Throws safetensors::error.
inline std::vector<std::byte> serialize(const tensor_list& tensors, metadata_ref metadata = {},
                                        const write_options& options = {}) {
    const span<const tensor_ref> refs = tensors.refs();
    const detail::write_plan plan = detail::plan_for(refs, metadata.get(), options);
    std::uint64_t total = 0;
    if (!detail::checked_add(plan.data_offset(), plan.data_size, total) || !detail::fits_size_t(total))
        detail::throw_error(errc::file_too_large, "a file of " + std::to_string(plan.data_offset()) + " + " +
                                                      std::to_string(plan.data_size) + " bytes does not fit in memory");
    std::vector<std::byte> out(detail::to_size(total));
    std::memcpy(out.data(), plan.head.data(), plan.head.size());
    for (std::size_t i : plan.order)
        refs[i].read_bytes(0, out.data() + plan.head.size() + plan.begin[i], static_cast<std::size_t>(plan.size[i]));
    return out;
}

// Writes path (UTF-8) atomically: see the top of this header. Python's save_file, e.g.
//   save("model.safetensors", {{"embedding", dtype::F32, {2, 2}, zeros}}, {{"format", "pt"}});
inline void save(const std::string& path, const tensor_list& tensors, metadata_ref metadata = {},
                 const write_options& options = {}) {
    detail::about_path(path, [&] {
        const span<const tensor_ref> refs = tensors.refs();
        const detail::write_plan plan = detail::plan_for(refs, metadata.get(), options);
        // Removes the temporary file if anything below throws.
        detail::atomic_file out(path, options.sync, !options.keep_in_cache);
        detail::staging_buffer staging;
        auto emit = [&out](std::uint64_t offset, const void* data, std::size_t size) { out.write_at(offset, data, size); };
        staging.put(0, plan.head.data(), plan.head.size(), emit);
        for (std::size_t i : plan.order) detail::put_tensor(staging, plan.data_offset() + plan.begin[i], refs[i], emit);
        staging.flush(emit);
        out.commit(options.sync);
    });
}

namespace detail {
inline std::vector<tensor_ref> refs_of(const file& f) {
    std::vector<tensor_ref> refs;
    refs.reserve(f.size());
    for (const tensor_view& view : f) refs.emplace_back(view);
    return refs;
}
} // namespace detail

// Every tensor and the metadata of an opened file. For a canonical file (is_canonical) the
// result is the file itself, byte for byte; any other valid file comes out canonical.
inline std::vector<std::byte> serialize(const file& f, const write_options& options = {}) {
    return serialize(detail::refs_of(f), f.metadata(), options);
}
// Rewriting a file onto its own path is safe: the new bytes go to a temporary file (on
// Windows the rename fails while the old file is open and mapped).
inline void save(const std::string& path, const file& f, const write_options& options = {}) {
    save(path, detail::refs_of(f), f.metadata(), options);
}

// True when the file is laid out exactly as this writer (and the reference writer, given at
// most one metadata key) writes its tensors and metadata with these options: tensor order,
// compact JSON and escapes, padding. Writing such a file back reproduces it byte for byte.
// Reads only the header.
inline bool is_canonical(const file& f, const write_options& options = {}) {
    detail::write_plan plan;
    const header_table& table = f.header();
    try {
        plan = detail::make_plan(
            table.size(),
            [&](std::size_t i) {
                const tensor_info t = table[i];
                return detail::tensor_spec{t.name, t.dtype, t.shape, false, 0, nullptr};
            },
            f.metadata(), options);
    } catch (const error&) {
        return false;  // e.g. invalid options: no file is canonical for them
    }
    if (plan.head.size() != table.data_offset() || plan.data_size != table.data_size()) return false;
    std::string head(plan.head.size(), '\0');
    f.source()->read_at(0, &head[0], head.size());
    return head == plan.head;
}

// ---- Streaming ---------------------------------------------------------------------------------

// A tensor declared to a stream_writer before its bytes exist.
struct tensor_decl {
    std::string name;
    safetensors::dtype dtype = safetensors::dtype::F32;
    std::vector<std::uint64_t> shape;
};

// Writes a file whose tensors are declared up front and whose bytes arrive later, in chunks
// of any size, so files larger than memory can be written: memory use is the header plus a
// 1 MiB staging buffer. The writer plans the layout at construction (every validation error
// is thrown there, before any output) and says, through tensor(i), which tensor it wants at
// each position of the file.
//
// To a path (seekable): the tensors' bytes may arrive in any order, even interleaved; each
// goes to its planned offset in the temporary file. commit() checks that every tensor is
// complete, then flushes and renames. If the writer is destroyed (an exception unwinding past
// it, say) or abort()ed before commit(), the temporary file is removed and the target is left
// as it was.
//
// To a sink (a pipe, a socket, a hash): bytes must arrive in file order: all of tensor(0),
// then tensor(1), ...; next() names the tensor wanted now. The header goes to the sink at
// construction.
//
// Errors: a write of more bytes than a tensor has left, or out of order on a sink, or a
// commit() with a tensor incomplete, throws stream_error and writes nothing (the writer stays
// usable). An I/O error or an exception from the sink aborts the writer; later calls throw
// stream_error.
class stream_writer {
public:
    using sink_function = std::function<void(const std::byte* data, std::size_t size)>;

private:
    // Heap-allocated, so the string_views and spans handed out stay valid when the writer moves.
    struct state {
        state(std::vector<tensor_decl> tensors, const metadata_map* metadata, const write_options& options)
            : decls(std::move(tensors)), sync(options.sync) {
            plan = detail::make_plan(
                decls.size(),
                [this](std::size_t i) {
                    const tensor_decl& d = decls[i];
                    return detail::tensor_spec{d.name, d.dtype, d.shape, false, 0, nullptr};
                },
                metadata, options);
            written.assign(decls.size(), 0);
            position.resize(decls.size());
            for (std::size_t k = 0; k < plan.order.size(); ++k) position[plan.order[k]] = k;
            advance();
        }

        auto emitter() {
            return [this](std::uint64_t offset, const void* data, std::size_t size) {
                if (file)
                    file->write_at(offset, data, size);
                else
                    sink(static_cast<const std::byte*>(data), size);
            };
        }
        // Runs f; if it throws, the output is abandoned (temporary file removed) for good.
        template <class F>
        void guarded(F&& f) {
            try {
                f();
            } catch (...) {
                failed = true;
                if (file) file->discard();
                throw;
            }
        }
        void put(std::uint64_t offset, const void* data, std::size_t size) {
            guarded([&] { staging.put(offset, data, size, emitter()); });
        }
        void advance() noexcept {
            while (next < plan.order.size() && written[next] == plan.size[plan.order[next]]) ++next;
        }

        std::vector<tensor_decl> decls;  // as declared (input order)
        detail::write_plan plan;
        std::vector<std::uint64_t> written;  // by file-order index
        std::vector<std::size_t> position;   // input index -> file-order index
        std::size_t next = 0;
        bool sync = true;
        bool failed = false;
        bool done = false;
        std::unique_ptr<detail::atomic_file> file;
        sink_function sink;
        detail::staging_buffer staging;
    };

public:

    stream_writer(const std::string& path, std::vector<tensor_decl> tensors, metadata_ref metadata = {},
                  const write_options& options = {})
        : state_(detail::about_path(path, [&] { return std::make_unique<state>(std::move(tensors), metadata.get(), options); })) {
        detail::about_path(path, [&] {
            state_->file = std::make_unique<detail::atomic_file>(path, options.sync, !options.keep_in_cache);
            state_->put(0, state_->plan.head.data(), state_->plan.head.size());
        });
    }
    stream_writer(sink_function sink, std::vector<tensor_decl> tensors, metadata_ref metadata = {},
                  const write_options& options = {})
        : state_(std::make_unique<state>(std::move(tensors), metadata.get(), options)) {
        if (!sink) detail::throw_error(errc::invalid_argument, "stream_writer: empty sink function");
        state_->sink = std::move(sink);
        state_->put(0, state_->plan.head.data(), state_->plan.head.size());
    }

    stream_writer(stream_writer&&) noexcept = default;
    stream_writer& operator=(stream_writer&&) noexcept = default;  // the old writer is aborted
    ~stream_writer() = default;

    // Whether tensors may be written in any order (a file) or only in file order (a sink).
    // A path that names a character device or a FIFO is written in file order, like a sink.
    bool seekable() const noexcept { return state_->file != nullptr && !state_->file->streaming(); }

    // The tensors in file order: name, dtype, shape, and data_offsets (relative to the data
    // section, which starts at data_offset()).
    std::size_t size() const noexcept { return state_->plan.order.size(); }
    tensor_info tensor(std::size_t index) const {
        check_index(index);
        const std::size_t input = state_->plan.order[index];
        const tensor_decl& d = state_->decls[input];
        return {d.name, d.dtype, d.shape, state_->plan.begin[input], state_->plan.begin[input] + state_->plan.size[input]};
    }
    // File-order index of the tensor called name.
    std::optional<std::size_t> find(std::string_view name) const noexcept {
        const auto& by_name = state_->plan.by_name;
        auto it = std::lower_bound(by_name.begin(), by_name.end(), name,
                                   [this](std::size_t i, std::string_view n) { return state_->decls[i].name < n; });
        if (it == by_name.end() || state_->decls[*it].name != name) return std::nullopt;
        return state_->position[*it];
    }
    // The first tensor, in file order, that still lacks bytes; size() once all are complete.
    std::size_t next() const noexcept { return state_->next; }
    // Bytes of tensor index supplied so far.
    std::uint64_t written(std::size_t index) const {
        check_index(index);
        return state_->written[index];
    }

    std::uint64_t header_size() const noexcept { return state_->plan.head.size() - 8; }  // N
    std::uint64_t data_offset() const noexcept { return state_->plan.data_offset(); }
    std::uint64_t file_size() const noexcept { return state_->plan.data_offset() + state_->plan.data_size; }

    // Appends size bytes to the tensor at file-order index (or called name).
    void write(std::size_t index, const void* data, std::size_t size) {
        check_usable();
        check_index(index);
        state& s = *state_;
        const std::size_t input = s.plan.order[index];
        const std::uint64_t total = s.plan.size[input];
        const std::uint64_t done = s.written[index];
        const std::string_view name = s.decls[input].name;
        if (size > total - done)
            detail::throw_error(errc::stream_error, "tensor " + detail::quote(name) + ": " + std::to_string(size) +
                                                        " bytes given, but only " + std::to_string(total - done) +
                                                        " of its " + std::to_string(total) + " bytes remain");
        if (!seekable() && index != s.next && size != 0)
            detail::throw_error(errc::stream_error,
                                "tensor " + detail::quote(name) + " cannot be written yet: the output is not seekable, " +
                                    "so bytes must come in file order, and tensor " +
                                    detail::quote(s.decls[s.plan.order[s.next]].name) + " is next");
        if (size == 0) return;
        if (data == nullptr) detail::throw_error(errc::invalid_argument, "stream_writer::write: null data");
        s.put(s.plan.data_offset() + s.plan.begin[input] + done, data, size);
        s.written[index] = done + size;
        s.advance();
    }
    void write(std::size_t index, span<const std::byte> chunk) { write(index, chunk.data(), chunk.size()); }
    void write(std::string_view name, const void* data, std::size_t size) { write(index_of(name), data, size); }
    void write(std::string_view name, span<const std::byte> chunk) { write(index_of(name), chunk.data(), chunk.size()); }

    // Checks every tensor is complete, then writes out what is staged; for a path, flushes
    // (write_options::sync) and renames the temporary file over the target.
    void commit() {
        check_usable();
        state& s = *state_;
        if (s.next != size()) {
            const std::size_t input = s.plan.order[s.next];
            std::size_t incomplete = 0;
            for (std::size_t i = s.next; i < size(); ++i)
                if (s.written[i] != s.plan.size[s.plan.order[i]]) ++incomplete;
            detail::throw_error(errc::stream_error,
                                "cannot commit: tensor " + detail::quote(s.decls[input].name) + " has " +
                                    std::to_string(s.written[s.next]) + " of its " + std::to_string(s.plan.size[input]) +
                                    " bytes" +
                                    (incomplete > 1 ? " (" + std::to_string(incomplete) + " tensors are incomplete)" : ""));
        }
        s.guarded([&] {
            s.staging.flush(s.emitter());
            if (s.file) s.file->commit(s.sync);
        });
        s.done = true;
    }

    // Discards everything: the temporary file is removed, the target untouched. Idempotent.
    void abort() noexcept {
        if (!state_) return;
        if (state_->file) state_->file->discard();
        state_->failed = true;
    }
    bool committed() const noexcept { return state_ && state_->done; }

private:
    void check_index(std::size_t index) const {
        if (index >= size())
            detail::throw_error(errc::out_of_range, "tensor index " + std::to_string(index) + " is out of range (" +
                                                        std::to_string(size()) + " tensors)");
    }
    void check_usable() const {
        if (!state_) detail::throw_error(errc::stream_error, "stream_writer was moved from");
        if (state_->done) detail::throw_error(errc::stream_error, "stream_writer is already committed");
        if (state_->failed) detail::throw_error(errc::stream_error, "stream_writer was aborted by an earlier error");
    }
    std::size_t index_of(std::string_view name) const {
        auto index = find(name);
        if (!index) {
            const auto& by_name = state_->plan.by_name;
            const auto closest = detail::closest_name(name, by_name.size(),
                                                      [this, &by_name](std::size_t k) -> std::string_view {
                                                          return state_->decls[by_name[k]].name;
                                                      });
            detail::throw_error(errc::tensor_not_found,
                                "no tensor named " + detail::quote(name) + " was declared" + detail::did_you_mean(closest));
        }
        return *index;
    }

    std::unique_ptr<state> state_;
};

} // namespace safetensors
