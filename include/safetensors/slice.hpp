// safetensors-hpp: slices of tensor views (torch/NumPy basic indexing) and tensor-parallel shards.
//
//   auto emb = f.tensor("embedding");                    // a tensor_view, nothing read yet
//   auto part = emb.slice({all, range::to(hidden / 2)});  // or emb.slice(":, :1024")
//   part.shape();  part.runs();  part.copy_to(buffer, capacity);  part.to_tensor();
//   auto mine = emb.shard(0, rank, world);                // rows [begin, end) of this rank
//
// A slice is a plan, not a copy: the result's shape, and the byte runs of the source it is
// made of, in row-major order. It holds a copy of its tensor_view (and so shares ownership of
// the file's bytes), so a sharded collection or a loader can hand slices around freely.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "span.hpp"
#include "view.hpp"

namespace safetensors {

class tensor;  // tensor.hpp; tensor_slice::to_tensor() needs it complete where it is called

namespace detail {
template <class I>
constexpr bool is_index_integer = std::is_integral<I>::value && !std::is_same<std::remove_cv_t<I>, bool>::value;
class index_spec_parser;
} // namespace detail

// One integer of an index expression, of any integer type, kept exactly as a sign and a 64-bit
// magnitude: a dimension's size is a uint64_t and a negative index counts from the end, so
// neither int64_t nor uint64_t alone could hold every value a caller may pass. Empty means an
// open end of a range (Python's None).
class index_value {
public:
    constexpr index_value(std::nullopt_t = std::nullopt) noexcept {}
    template <class I, std::enable_if_t<detail::is_index_integer<I>, int> = 0>
    constexpr index_value(I value) noexcept : set_(true) {
        if constexpr (std::is_signed<I>::value) {
            // 0 - v computed in uint64_t is exact for every negative v, INT64_MIN included.
            if (value < 0) {
                negative_ = true;
                magnitude_ = std::uint64_t{0} - static_cast<std::uint64_t>(value);
                return;
            }
        }
        magnitude_ = static_cast<std::uint64_t>(value);
    }
    template <class I, std::enable_if_t<detail::is_index_integer<I>, int> = 0>
    constexpr index_value(const std::optional<I>& value) noexcept
        : index_value(value ? index_value(*value) : index_value()) {}
    index_value(bool) = delete;  // x[True] is a mask in torch, not an integer
    // -magnitude or +magnitude; a zero magnitude is never negative.
    static constexpr index_value from_parts(bool negative, std::uint64_t magnitude) noexcept {
        index_value v(magnitude);
        v.negative_ = negative && magnitude != 0;
        return v;
    }

    constexpr bool has_value() const noexcept { return set_; }
    constexpr bool negative() const noexcept { return negative_; }
    constexpr std::uint64_t magnitude() const noexcept { return magnitude_; }

    friend constexpr bool operator==(const index_value& a, const index_value& b) noexcept {
        return a.set_ == b.set_ && a.negative_ == b.negative_ && a.magnitude_ == b.magnitude_;
    }
    friend constexpr bool operator!=(const index_value& a, const index_value& b) noexcept { return !(a == b); }

private:
    bool set_ = false;
    bool negative_ = false;
    std::uint64_t magnitude_ = 0;
};

// start:stop:step, each end open when not given. range(1, 3) is "1:3", range::from(2) is "2:",
// range::to(n) is ":n", range(std::nullopt, std::nullopt, 2) is "::2". The step must be at
// least 1 (checked when the range is applied to a tensor, where the error can name it).
class range {
public:
    constexpr range() noexcept = default;
    constexpr range(index_value start, index_value stop, index_value step = std::nullopt) noexcept
        : start_(start), stop_(stop), step_(step) {}
    static constexpr range from(index_value start) noexcept { return range(start, std::nullopt); }
    static constexpr range to(index_value stop) noexcept { return range(std::nullopt, stop); }

    constexpr const index_value& start() const noexcept { return start_; }
    constexpr const index_value& stop() const noexcept { return stop_; }
    constexpr const index_value& step() const noexcept { return step_; }

    friend constexpr bool operator==(const range& a, const range& b) noexcept {
        return a.start_ == b.start_ && a.stop_ == b.stop_ && a.step_ == b.step_;
    }
    friend constexpr bool operator!=(const range& a, const range& b) noexcept { return !(a == b); }

private:
    index_value start_, stop_, step_;
};

// ":" (a whole dimension) and "..." (as many whole dimensions as needed, at most once).
struct all_t {
    explicit constexpr all_t(int) noexcept {}
};
struct ellipsis_t {
    explicit constexpr ellipsis_t(int) noexcept {}
};
inline constexpr all_t all{0};
inline constexpr ellipsis_t ellipsis{0};

// One entry of an index expression: an integer (selects one position and drops the
// dimension), a range (keeps it), or the ellipsis.
class slice_index {
public:
// g++ -Wshadow says the scoped enumerator kind::ellipsis shadows safetensors::ellipsis, which it
// cannot (it is only ever named as kind::ellipsis).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
    enum class kind { integer, range, ellipsis };
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

    template <class I, std::enable_if_t<detail::is_index_integer<I>, int> = 0>
    constexpr slice_index(I value) noexcept : kind_(kind::integer), integer_(value) {}
    slice_index(bool) = delete;  // x[True] is a mask in torch, not an integer
    constexpr slice_index(safetensors::range r) noexcept : kind_(kind::range), range_(r) {}
    constexpr slice_index(all_t) noexcept : kind_(kind::range) {}
    constexpr slice_index(ellipsis_t) noexcept : kind_(kind::ellipsis) {}

    constexpr kind type() const noexcept { return kind_; }
    constexpr const index_value& integer() const noexcept { return integer_; }  // kind::integer
    constexpr const safetensors::range& as_range() const noexcept { return range_; }  // kind::range

    friend constexpr bool operator==(const slice_index& a, const slice_index& b) noexcept {
        return a.kind_ == b.kind_ && a.integer_ == b.integer_ && a.range_ == b.range_;
    }
    friend constexpr bool operator!=(const slice_index& a, const slice_index& b) noexcept { return !(a == b); }

private:
    friend class detail::index_spec_parser;  // builds integers from parsed sign and magnitude
    explicit constexpr slice_index(const index_value& integer) noexcept : kind_(kind::integer), integer_(integer) {}

    kind kind_;
    index_value integer_;
    safetensors::range range_;
};

// index_spec (declared in view.hpp) is std::vector<slice_index>: t.slice({1, all, range(0, 8)}).

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

namespace detail {
// "-5", "7", or "" for an open end.
inline std::string index_text(const index_value& v) {
    return v.has_value() ? (v.negative() ? "-" : "") + std::to_string(v.magnitude()) : std::string();
}
} // namespace detail

// The Python spelling of an index expression ("1:3, :, ::2, ..., -1"); parse_index_spec()
// reads it back.
inline std::string to_string(const index_spec& spec) {
    const auto number = detail::index_text;
    std::string out;
    for (const slice_index& index : spec) {
        if (!out.empty()) out += ", ";
        switch (index.type()) {
            case slice_index::kind::integer: out += number(index.integer()); break;
            case slice_index::kind::ellipsis: out += "..."; break;
            case slice_index::kind::range: {
                const range& r = index.as_range();
                out += number(r.start()) + ":" + number(r.stop());
                if (r.step().has_value()) out += ":" + number(r.step());
                break;
            }
        }
    }
    return out;
}

namespace detail {

// Reads the Python spelling of an index expression: comma-separated items, each an integer,
// start:stop[:step] with any part left out, or "..."; spaces around items and ':' are
// allowed, and so is one trailing comma ("1," is Python's one-element tuple). Integers are
// decimal with an optional sign and must fit in 64 bits (as a magnitude). None (new axis),
// lists, booleans and tensors (advanced indexing) are not basic indexing and are refused.
class index_spec_parser {
public:
    // tensor_name, when given, starts error messages (tensor_view::slice names its tensor).
    index_spec_parser(std::string_view text, std::optional<std::string_view> tensor_name)
        : text_(text), tensor_name_(tensor_name) {}

    index_spec parse() {
        index_spec out;
        skip_spaces();
        if (at_end()) fail("it is empty (write \":\" or \"...\" for the whole tensor)");
        for (;;) {
            skip_spaces();
            if (at_end() || peek() == ',') fail("empty index at offset " + std::to_string(pos_));
            out.push_back(item());
            skip_spaces();
            if (at_end()) break;
            if (peek() != ',') unexpected();
            ++pos_;
            skip_spaces();
            if (at_end()) break;  // one trailing comma, as in Python
        }
        return out;
    }

private:
    slice_index item() {
        if (text_.compare(pos_, 3, "...") == 0) {
            pos_ += 3;
            return ellipsis;
        }
        index_value parts[3];
        std::size_t colons = 0;
        parts[0] = integer();
        for (skip_spaces(); !at_end() && peek() == ':'; skip_spaces()) {
            if (colons == 2) fail("too many ':' at offset " + std::to_string(pos_) + " (an index is start:stop:step at most)");
            ++pos_;
            skip_spaces();
            parts[++colons] = integer();
        }
        if (colons > 0) return range(parts[0], parts[1], parts[2]);
        if (!parts[0].has_value()) unexpected();
        return slice_index(parts[0]);
    }

    // [+-]?[0-9]+ at the current position, or an empty value when there is none.
    index_value integer() {
        const std::size_t begin = pos_;
        bool negative = false;
        if (!at_end() && (peek() == '+' || peek() == '-')) {
            negative = peek() == '-';
            ++pos_;
        }
        if (at_end() || !is_digit(peek())) {
            if (pos_ != begin) {
                pos_ = begin;
                unexpected();
            }
            return {};
        }
        std::uint64_t magnitude = 0;
        for (; !at_end() && is_digit(peek()); ++pos_) {
            if (!checked_mul(magnitude, 10, magnitude) ||
                !checked_add(magnitude, static_cast<std::uint64_t>(peek() - '0'), magnitude)) {
                while (!at_end() && is_digit(peek())) ++pos_;
                fail("integer " + std::string(text_.substr(begin, pos_ - begin)) + " at offset " +
                     std::to_string(begin) + " does not fit in 64 bits");
            }
        }
        return index_value::from_parts(negative, magnitude);
    }

    [[noreturn]] void unexpected() const {
        // Quote the whole offending token (up to the next delimiter) for a readable message.
        std::size_t end = pos_;
        while (end < text_.size() && text_[end] != ',' && text_[end] != ':' && !is_space(text_[end])) ++end;
        if (end == pos_) end = pos_ + 1;
        fail("unexpected " + quote(text_.substr(pos_, end - pos_)) + " at offset " + std::to_string(pos_) +
             " (expected an integer, ':', '...' or ',')");
    }

    [[noreturn]] void fail(const std::string& what) const {
        std::string prefix = tensor_name_ ? "tensor " + quote(*tensor_name_) + ": " : std::string();
        throw_error(errc::invalid_slice, prefix + "invalid index expression " + quote(text_) + ": " + what);
    }

    static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
    static bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }
    bool at_end() const noexcept { return pos_ >= text_.size(); }
    char peek() const noexcept { return text_[pos_]; }
    void skip_spaces() noexcept {
        while (!at_end() && is_space(peek())) ++pos_;
    }

    std::string_view text_;
    std::optional<std::string_view> tensor_name_;
    std::size_t pos_ = 0;
};

} // namespace detail

// Parses the Python spelling of an index expression ("1:3, :, ::2, ..., -1"); throws
// errc::invalid_slice with the offending text and its offset when it is malformed.
inline index_spec parse_index_spec(std::string_view python) {
    return detail::index_spec_parser(python, std::nullopt).parse();
}

namespace detail {

inline std::string tensor_prefix(std::string_view name) { return "tensor " + quote(name) + ": "; }

// What one dimension of the tensor contributes: count positions start, start + step, ...;
// an integer selects one position and drops the dimension (keep is false).
struct dim_selection {
    std::uint64_t start = 0;
    std::uint64_t count = 0;
    std::uint64_t step = 1;
    bool keep = true;
};

// Python's slice.indices() for step >= 1: a negative bound counts from the end, then it is
// clamped to [0, size]. Computed on sign and magnitude, so no bound can overflow.
inline std::uint64_t clamp_bound(const index_value& bound, std::uint64_t open, std::uint64_t size) noexcept {
    if (!bound.has_value()) return open;
    if (bound.negative()) return bound.magnitude() >= size ? 0 : size - bound.magnitude();
    return std::min(bound.magnitude(), size);
}

// One selection per dimension of shape, with torch's rules and error messages.
inline std::vector<dim_selection> resolve(std::string_view name, span<const std::uint64_t> shape,
                                          const index_spec& spec) {
    const std::size_t rank = shape.size();
    std::size_t ellipses = 0;
    for (const slice_index& index : spec) ellipses += index.type() == slice_index::kind::ellipsis;
    const std::size_t explicit_dims = spec.size() - ellipses;
    if (ellipses > 1)
        throw_error(errc::invalid_slice, tensor_prefix(name) + "an index can only have a single ellipsis ('...'), got " +
                                             std::to_string(ellipses));
    if (explicit_dims > rank)
        throw_error(errc::invalid_slice,
                    tensor_prefix(name) + "too many indices for tensor of dimension " + std::to_string(rank));

    std::vector<dim_selection> out;
    out.reserve(rank);
    const auto whole = [&] { out.push_back({0, shape[out.size()], 1, true}); };
    for (const slice_index& index : spec) {
        if (index.type() == slice_index::kind::ellipsis) {
            for (std::size_t n = rank - explicit_dims; n > 0; --n) whole();
            continue;
        }
        const std::size_t dim = out.size();
        const std::uint64_t size = shape[dim];
        if (index.type() == slice_index::kind::integer) {
            const index_value& i = index.integer();
            if (i.negative() ? i.magnitude() > size : i.magnitude() >= size)
                throw_error(errc::index_out_of_range, tensor_prefix(name) + "index " + index_text(i) +
                                                          " is out of bounds for dimension " + std::to_string(dim) +
                                                          " with size " + std::to_string(size));
            out.push_back({i.negative() ? size - i.magnitude() : i.magnitude(), 1, 1, false});
            continue;
        }
        const range& r = index.as_range();
        std::uint64_t step = 1;
        if (r.step().has_value()) {
            if (r.step().negative() || r.step().magnitude() == 0)
                throw_error(errc::invalid_slice, tensor_prefix(name) + "step " + index_text(r.step()) + " for dimension " +
                                                     std::to_string(dim) + " must be greater than zero");
            step = r.step().magnitude();
        }
        const std::uint64_t start = clamp_bound(r.start(), 0, size);
        const std::uint64_t stop = clamp_bound(r.stop(), size, size);
        // ceil((stop - start) / step), written so that no step (up to 2^64 - 1) overflows.
        const std::uint64_t count = stop > start ? (stop - start - 1) / step + 1 : 0;
        out.push_back({start, count, step, true});
    }
    while (out.size() < rank) whole();  // fewer indices than dimensions: the rest are whole
    return out;
}

// One level of the copy loop: count runs, stride bytes apart. Outer levels come first.
struct slice_loop {
    std::size_t count;
    std::size_t stride;
};

// Steps through the runs of a slice like an odometer, innermost level fastest; offset() is
// where the current run starts (relative to the tensor). An offset rather than a pointer,
// because stepping a level past its last run briefly points beyond the tensor.
class run_odometer {
public:
    run_odometer(const std::vector<slice_loop>& loops, std::size_t first)
        : loops_(loops), counter_(loops.size(), 0), offset_(first) {}

    std::size_t offset() const noexcept { return offset_; }

    // Moves to the run-th run (counting from the first).
    void seek(std::uint64_t run) noexcept {
        for (std::size_t d = loops_.size(); d-- > 0;) {
            counter_[d] = detail::to_size(run % loops_[d].count);
            run /= loops_[d].count;
            offset_ += counter_[d] * loops_[d].stride;
        }
    }

    // Advances levels [0, depth); false (and back at the start) after their last run.
    bool next(std::size_t depth) noexcept {
        for (std::size_t d = depth; d-- > 0;) {
            offset_ += loops_[d].stride;
            if (++counter_[d] < loops_[d].count) return true;
            offset_ -= loops_[d].stride * loops_[d].count;
            counter_[d] = 0;
        }
        return false;
    }

private:
    const std::vector<slice_loop>& loops_;
    std::vector<std::size_t> counter_;
    std::size_t offset_;
};

// The copy loop: the innermost level as a plain loop, the outer ones by odometer. With N
// nonzero the run length is a compile-time constant and each memcpy becomes one load and
// store, which is what makes 1- to 16-byte runs (a strided last dimension) cheap.
template <std::size_t N>
void copy_runs(std::byte* dst, const std::byte* tensor, std::size_t first, std::size_t length,
               const std::vector<slice_loop>& loops) noexcept {
    const std::size_t n = N != 0 ? N : length;
    const slice_loop inner = loops.back();
    run_odometer rows(loops, first);
    do {
        const std::byte* src = tensor + rows.offset();
        for (std::size_t i = 0; i < inner.count; ++i) std::memcpy(dst + i * n, src + i * inner.stride, n);
        dst += inner.count * n;
    } while (rows.next(loops.size() - 1));
}

inline std::string elements_text(std::uint64_t n) { return std::to_string(n) + (n == 1 ? " element" : " elements"); }

} // namespace detail

// The result of tensor_view::slice() or shard(): its shape and the source bytes it selects.
// Cheap to copy; shares ownership of the file's bytes like the view it came from.
class tensor_slice {
public:
    // The tensor this slice selects from.
    const tensor_view& view() const noexcept { return view_; }
    safetensors::dtype dtype() const noexcept { return view_.dtype(); }
    span<const std::uint64_t> shape() const noexcept { return shape_; }
    std::size_t rank() const noexcept { return shape_.size(); }
    std::uint64_t element_count() const noexcept { return element_count_; }
    std::uint64_t byte_size() const noexcept { return byte_size_; }

    // True when the selected bytes are one run of the source (or there are none); then
    // data() and bytes() give them without copying.
    bool is_contiguous() const noexcept { return loops_.empty(); }
    // Zero-copy access to a contiguous slice (errc::invalid_argument otherwise). Borrows from
    // the mapping like tensor_view::data(): keep the slice or its view alive while using it.
    const std::byte* data() const {
        if (!is_contiguous())
            detail::throw_error(errc::invalid_argument,
                                detail::tensor_prefix(view_.name()) + "slice of shape " + detail::shape_to_string(shape_) +
                                    " is not one contiguous run (it reads runs of " + std::to_string(run_length_) +
                                    " bytes); use copy_to() or to_tensor()");
        return view_.data() + first_;
    }
    span<const std::byte> bytes() const { return {data(), static_cast<std::size_t>(byte_size_)}; }

    // Calls f(offset, length) for each run of source bytes, in row-major order, with
    // adjacent runs merged; offsets are relative to the tensor's first byte. Allocates
    // nothing per run, so it also suits slices of millions of tiny runs.
    template <class F>
    void for_each_run(F&& f) const {
        visit(0, byte_size_, f);
    }
    std::vector<byte_run> runs() const {
        std::vector<byte_run> out;
        for_each_run([&out](std::uint64_t offset, std::uint64_t length) { out.push_back({offset, length}); });
        return out;
    }

    // Copies the selected bytes, packed in row-major order, to destination (capacity bytes;
    // errc::out_of_range when that is too small). Reads the source with memcpy from its
    // mapping: it touches only the pages the runs cover and runs at memory speed, where
    // read_at would cost a pread per run (a syscall per 4 KiB row of a column shard). Like
    // tensor_view::data(), it relies on the mapped file not shrinking; read_bytes() is the
    // checked path for files that may change under the reader.
    void copy_to(void* destination, std::size_t capacity) const {
        if (capacity < byte_size_)
            detail::throw_error(errc::out_of_range, detail::tensor_prefix(view_.name()) + "slice needs " +
                                                        std::to_string(byte_size_) + " bytes, destination holds " +
                                                        std::to_string(capacity));
        if (byte_size_ == 0) return;
        if (destination == nullptr) detail::throw_error(errc::invalid_argument, "copy_to: null destination");
        auto* dst = static_cast<std::byte*>(destination);
        if (loops_.empty()) {
            std::memcpy(dst, view_.data() + first_, run_length_);
            return;
        }
        switch (run_length_) {
            case 1: return detail::copy_runs<1>(dst, view_.data(), first_, run_length_, loops_);
            case 2: return detail::copy_runs<2>(dst, view_.data(), first_, run_length_, loops_);
            case 4: return detail::copy_runs<4>(dst, view_.data(), first_, run_length_, loops_);
            case 8: return detail::copy_runs<8>(dst, view_.data(), first_, run_length_, loops_);
            case 16: return detail::copy_runs<16>(dst, view_.data(), first_, run_length_, loops_);
            default: return detail::copy_runs<0>(dst, view_.data(), first_, run_length_, loops_);
        }
    }
    // The same into a span of bytes (its size is the capacity).
    void copy_to(span<std::byte> destination) const { copy_to(destination.data(), destination.size()); }

    // Copies bytes [offset, offset + length) of the packed result to destination through
    // source::read_at, one call per merged run: a file truncated after open gives
    // errc::short_read instead of a SIGBUS, and a reader can stream a huge slice in chunks.
    void read_bytes(std::uint64_t offset, void* destination, std::size_t length) const {
        std::uint64_t end = 0;
        if (!detail::checked_add(offset, length, end) || end > byte_size_)
            detail::throw_error(errc::out_of_range, detail::tensor_prefix(view_.name()) + "bytes [" + std::to_string(offset) +
                                                        ", " + std::to_string(offset) + "+" + std::to_string(length) +
                                                        ") are outside the slice's " + std::to_string(byte_size_) + " bytes");
        auto* out = static_cast<std::byte*>(destination);
        const source& src = *view_.source();
        const std::uint64_t base = view_.source_offset();
        visit(offset, end, [&](std::uint64_t at, std::uint64_t n) {
            src.read_at(base + at, out, detail::to_size(n));  // n <= length
            out += n;
        });
    }

    // An owned, contiguous copy, named like the source tensor unless a name is given. A
    // template only so that this header need not include tensor.hpp (which includes
    // view.hpp, which includes this header); whoever uses the result has tensor.hpp.
    template <class Tensor = tensor>
    Tensor to_tensor(std::string name) const {
        std::vector<std::uint64_t> shape(shape_.begin(), shape_.end());
        if (is_contiguous())  // one copy straight from the source
            return Tensor(std::move(name), dtype(), std::move(shape), data(), static_cast<std::size_t>(byte_size_));
        Tensor out(std::move(name), dtype(), std::move(shape));  // zero-filled: tensor has no uninitialized form
        copy_to(out.data(), static_cast<std::size_t>(out.byte_size()));
        return out;
    }
    template <class Tensor = tensor>
    Tensor to_tensor() const {
        return to_tensor<Tensor>(std::string(view_.name()));
    }

private:
    friend class tensor_view;

    tensor_slice(tensor_view view, const index_spec& spec) : view_(std::move(view)) {
        const span<const std::uint64_t> shape = view_.shape();
        const std::vector<detail::dim_selection> dims = detail::resolve(view_.name(), shape, spec);
        element_count_ = 1;
        for (const auto& d : dims) {
            element_count_ *= d.count;  // each count <= its size, whose products the header checked
            if (d.keep) shape_.push_back(d.count);
        }
        if (element_count_ == 0) return;  // nothing selected: no runs, nothing to align

        // Element strides in bits, so sub-byte dtypes share the arithmetic. Every size is >= 1
        // here, so each product is at most the tensor's size in bits, which fits (checked at open).
        const std::uint64_t bits = bit_size(dtype());
        const std::size_t rank = dims.size();
        std::vector<std::uint64_t> stride(rank);
        std::uint64_t inner = bits;
        for (std::size_t d = rank; d-- > 0;) {
            stride[d] = inner;
            inner *= shape[d];
        }

        std::uint64_t first_bits = 0;
        for (std::size_t d = 0; d < rank; ++d) first_bits += dims[d].start * stride[d];

        // Grow one run outwards over the inner dimensions it covers whole, in steps of 1.
        // Dimensions with one position only move the start. What is left are the loops.
        std::uint64_t run_bits = bits;
        std::size_t run_dim = rank == 0 ? 0 : rank - 1;
        std::size_t outer = rank;
        for (; outer > 0; --outer) {
            const detail::dim_selection& s = dims[outer - 1];
            if (s.count == 1) continue;
            if (s.step != 1 || run_bits != stride[outer - 1]) break;
            run_bits *= s.count;
            run_dim = outer - 1;
        }
        std::vector<std::pair<std::size_t, std::uint64_t>> loops;  // dimension, stride in bits
        for (std::size_t d = 0; d < outer; ++d)
            if (dims[d].count > 1) loops.push_back({d, dims[d].step * stride[d]});

        if (bits % 8 != 0) {
            // Sub-byte data can only be copied in whole bytes. Checking the run length, the
            // start and each loop's stride is exact: every run starts at first + a sum of
            // strides, and runs that touch end and start on the same bit.
            const std::string what = detail::tensor_prefix(view_.name()) + "dtype " + std::string(to_string(dtype())) + ": ";
            if (run_bits % 8 != 0)
                detail::throw_error(errc::unaligned_slice, what + "the slice's runs of " + detail::elements_text(run_bits / bits) +
                                                               " along dimension " + std::to_string(run_dim) + " are " +
                                                               std::to_string(run_bits) + " bits, not whole bytes");
            if (first_bits % 8 != 0)
                for (std::size_t d = rank; d-- > 0;)
                    if (dims[d].start * stride[d] % 8 != 0)
                        detail::throw_error(errc::unaligned_slice,
                                            what + "the slice starts at index " + std::to_string(dims[d].start) +
                                                " of dimension " + std::to_string(d) + ", bit " +
                                                std::to_string(first_bits % 8) + " of a byte");
            for (const auto& [d, s] : loops)
                if (s % 8 != 0)
                    detail::throw_error(errc::unaligned_slice, what + "the slice's step of " + detail::elements_text(s / bits) +
                                                                   " along dimension " + std::to_string(d) + " is " +
                                                                   std::to_string(s) + " bits, not whole bytes");
        }

        // In bytes from here on; all of it is within the tensor, which is addressable.
        first_ = detail::to_size(first_bits / 8);
        run_length_ = detail::to_size(run_bits / 8);
        byte_size_ = run_length_;
        for (const auto& [d, s] : loops) {
            loops_.push_back({detail::to_size(dims[d].count), detail::to_size(s / 8)});
            byte_size_ *= dims[d].count;
        }
    }

    // Calls f(offset, length) for the source runs behind bytes [begin, end) of the packed
    // result, clipped to that range, merging runs that touch.
    template <class F>
    void visit(std::uint64_t begin, std::uint64_t end, F&& f) const {
        if (begin >= end) return;
        detail::run_odometer runs(loops_, first_);
        runs.seek(begin / run_length_);
        std::uint64_t within = begin % run_length_;
        std::uint64_t pending_offset = 0, pending_length = 0;
        for (std::uint64_t done = begin;;) {
            const std::uint64_t at = runs.offset() + within;
            const std::uint64_t n = std::min<std::uint64_t>(run_length_ - within, end - done);
            if (pending_length != 0 && pending_offset + pending_length == at) {
                pending_length += n;
            } else {
                if (pending_length != 0) f(pending_offset, pending_length);
                pending_offset = at;
                pending_length = n;
            }
            done += n;
            within = 0;
            if (done == end || !runs.next(loops_.size())) break;
        }
        f(pending_offset, pending_length);
    }

    tensor_view view_;
    std::vector<std::uint64_t> shape_;
    std::uint64_t element_count_ = 0;
    std::uint64_t byte_size_ = 0;
    std::size_t first_ = 0;       // where the first run starts, relative to the tensor
    std::size_t run_length_ = 0;  // bytes of every run before merging
    std::vector<detail::slice_loop> loops_;  // empty: one run (or none)
};

// ---- Tensor-parallel shards -------------------------------------------------------------------

// Positions [begin, end) of one shard of a dimension.
struct shard_bounds {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    constexpr std::uint64_t size() const noexcept { return end - begin; }
};

namespace detail {
inline shard_bounds shard_range(std::uint64_t size, std::uint64_t rank, std::uint64_t world_size,
                                const std::string& prefix) {
    if (world_size == 0)
        throw_error(errc::invalid_argument, prefix + "world size must be at least 1, got 0");
    if (rank >= world_size)
        throw_error(errc::invalid_argument, prefix + "rank " + std::to_string(rank) + " is out of range for world size " +
                                                std::to_string(world_size));
    const std::uint64_t base = size / world_size, extra = size % world_size;
    const std::uint64_t begin = rank * base + std::min(rank, extra);  // <= size: no overflow
    return {begin, begin + base + (rank < extra ? 1 : 0)};
}
} // namespace detail

// Splits a dimension of `size` positions into world_size contiguous parts, in rank order,
// and returns part `rank`. When size divides evenly every part has size / world_size
// positions, exactly the shard vLLM and Megatron-LM load (they require divisibility and pad
// vocabularies to get it). Otherwise the first size % world_size ranks get one position
// more, like DeepSpeed's get_shard_endpoints and numpy.array_split: parts differ by at most
// one, and when world_size > size the last ranks get empty parts. (torch.chunk differs: it
// gives ceil(size / world_size) per part and may return fewer parts.) Throws
// errc::invalid_argument for world_size 0 or rank >= world_size.
inline shard_bounds shard_range(std::uint64_t size, std::uint64_t rank, std::uint64_t world_size) {
    return detail::shard_range(size, rank, world_size, "shard_range: ");
}

// ---- tensor_view members (declared in view.hpp) -----------------------------------------------

inline tensor_slice tensor_view::slice(const index_spec& spec) const { return tensor_slice(*this, spec); }

template <class String, class>
tensor_slice tensor_view::slice(const String& python) const {
    return slice(detail::index_spec_parser(std::string_view(python), name()).parse());
}

inline tensor_slice tensor_view::shard(std::int64_t dim, std::uint64_t rank, std::uint64_t world_size) const {
    const index_value d(dim);
    const std::size_t dims = shape().size();
    if (d.negative() ? d.magnitude() > dims : d.magnitude() >= dims)
        detail::throw_error(errc::invalid_argument, detail::tensor_prefix(name()) + "dimension " + std::to_string(dim) +
                                                        " is out of range for tensor of dimension " + std::to_string(dims));
    const auto axis = detail::to_size(d.negative() ? dims - d.magnitude() : d.magnitude());
    const shard_bounds part = detail::shard_range(shape()[axis], rank, world_size, detail::tensor_prefix(name()));
    index_spec spec(axis, all);
    spec.push_back(range(part.begin, part.end));
    return slice(spec);
}

} // namespace safetensors
