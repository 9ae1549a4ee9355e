// safetensors-hpp: what a slice selects: index expressions (torch/NumPy basic indexing),
// their Python spelling, and the tensor-parallel part of a dimension.
//
//   t.slice({all, range::to(hidden / 2)})     the same as t.slice(":, :1024")
//   parse_slice_spec("1:3, ..., -1")          the Python spelling, parsed (to_string writes it)
//   split_range(size, rank, world)            the positions one rank of world_size holds
//
// Applying an expression to a tensor is tensor_view::slice (view.hpp); this header only
// describes and parses it, so it depends on no file or view.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "detail/checked.hpp"
#include "error.hpp"

namespace safetensors {

namespace detail {
template <class I>
constexpr bool is_slice_integer = std::is_integral<I>::value && !std::is_same<std::remove_cv_t<I>, bool>::value;
class slice_spec_parser;

// One integer of an index expression, of any integer type, kept exactly as a sign and a 64-bit
// magnitude: a dimension's size is a uint64_t and a negative index counts from the end, so
// neither int64_t nor uint64_t alone could hold every value a caller may pass. Empty means an
// open end of a range (Python's None).
class slice_integer {
public:
    constexpr slice_integer(std::nullopt_t = std::nullopt) noexcept {}
    template <class I, std::enable_if_t<is_slice_integer<I>, int> = 0>
    constexpr slice_integer(I value) noexcept : set_(true) {
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
    template <class I, std::enable_if_t<is_slice_integer<I>, int> = 0>
    constexpr slice_integer(const std::optional<I>& value) noexcept
        : slice_integer(value ? slice_integer(*value) : slice_integer()) {}
    slice_integer(bool) = delete;  // x[True] is a mask in torch, not an integer
    // -magnitude or +magnitude; a zero magnitude is never negative.
    static constexpr slice_integer from_parts(bool negative, std::uint64_t magnitude) noexcept {
        slice_integer v(magnitude);
        v.negative_ = negative && magnitude != 0;
        return v;
    }

    constexpr bool has_value() const noexcept { return set_; }
    constexpr bool negative() const noexcept { return negative_; }
    constexpr std::uint64_t magnitude() const noexcept { return magnitude_; }

    friend constexpr bool operator==(const slice_integer& a, const slice_integer& b) noexcept {
        return a.set_ == b.set_ && a.negative_ == b.negative_ && a.magnitude_ == b.magnitude_;
    }
    friend constexpr bool operator!=(const slice_integer& a, const slice_integer& b) noexcept { return !(a == b); }

private:
    bool set_ = false;
    bool negative_ = false;
    std::uint64_t magnitude_ = 0;
};
} // namespace detail

// start:stop:step, each end open when not given. range(1, 3) is "1:3", range::from(2) is "2:",
// range::to(n) is ":n", range(std::nullopt, std::nullopt, 2) is "::2". The step must be at
// least 1 (checked when the range is applied to a tensor, where the error can name it).
class range {
public:
    constexpr range() noexcept = default;
    constexpr range(detail::slice_integer start, detail::slice_integer stop, detail::slice_integer step = std::nullopt) noexcept
        : start_(start), stop_(stop), step_(step) {}
    static constexpr range from(detail::slice_integer start) noexcept { return range(start, std::nullopt); }
    static constexpr range to(detail::slice_integer stop) noexcept { return range(std::nullopt, stop); }

    constexpr const detail::slice_integer& start() const noexcept { return start_; }
    constexpr const detail::slice_integer& stop() const noexcept { return stop_; }
    constexpr const detail::slice_integer& step() const noexcept { return step_; }

    friend constexpr bool operator==(const range& a, const range& b) noexcept {
        return a.start_ == b.start_ && a.stop_ == b.stop_ && a.step_ == b.step_;
    }
    friend constexpr bool operator!=(const range& a, const range& b) noexcept { return !(a == b); }

private:
    detail::slice_integer start_, stop_, step_;
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
class slice_item {
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

    template <class I, std::enable_if_t<detail::is_slice_integer<I>, int> = 0>
    constexpr slice_item(I value) noexcept : kind_(kind::integer), integer_(value) {}
    slice_item(bool) = delete;  // x[True] is a mask in torch, not an integer
    constexpr slice_item(safetensors::range r) noexcept : kind_(kind::range), range_(r) {}
    constexpr slice_item(all_t) noexcept : kind_(kind::range) {}
    constexpr slice_item(ellipsis_t) noexcept : kind_(kind::ellipsis) {}

    constexpr kind type() const noexcept { return kind_; }
    constexpr const detail::slice_integer& integer() const noexcept { return integer_; }  // kind::integer
    constexpr const safetensors::range& as_range() const noexcept { return range_; }  // kind::range

    friend constexpr bool operator==(const slice_item& a, const slice_item& b) noexcept {
        return a.kind_ == b.kind_ && a.integer_ == b.integer_ && a.range_ == b.range_;
    }
    friend constexpr bool operator!=(const slice_item& a, const slice_item& b) noexcept { return !(a == b); }

private:
    friend class detail::slice_spec_parser;  // builds integers from parsed sign and magnitude
    explicit constexpr slice_item(const detail::slice_integer& integer) noexcept : kind_(kind::integer), integer_(integer) {}

    kind kind_;
    detail::slice_integer integer_;
    safetensors::range range_;
};

// A whole index expression: t.slice({1, all, range(0, 8)}).
using slice_spec = std::vector<slice_item>;

namespace detail {
// "-5", "7", or "" for an open end.
inline std::string integer_text(const detail::slice_integer& v) {
    return v.has_value() ? (v.negative() ? "-" : "") + std::to_string(v.magnitude()) : std::string();
}
} // namespace detail

// The Python spelling of an index expression ("1:3, :, ::2, ..., -1"); parse_slice_spec()
// reads it back.
inline std::string to_string(const slice_spec& spec) {
    const auto number = detail::integer_text;
    std::string out;
    for (const slice_item& index : spec) {
        if (!out.empty()) out += ", ";
        switch (index.type()) {
            case slice_item::kind::integer: out += number(index.integer()); break;
            case slice_item::kind::ellipsis: out += "..."; break;
            case slice_item::kind::range: {
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
class slice_spec_parser {
public:
    // tensor_name, when given, starts error messages (tensor_view::slice names its tensor).
    slice_spec_parser(std::string_view text, std::optional<std::string_view> tensor_name)
        : text_(text), tensor_name_(tensor_name) {}

    slice_spec parse() {
        slice_spec out;
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
    slice_item item() {
        if (text_.compare(pos_, 3, "...") == 0) {
            pos_ += 3;
            return ellipsis;
        }
        detail::slice_integer parts[3];
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
        return slice_item(parts[0]);
    }

    // [+-]?[0-9]+ at the current position, or an empty value when there is none.
    detail::slice_integer integer() {
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
        return detail::slice_integer::from_parts(negative, magnitude);
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
inline slice_spec parse_slice_spec(std::string_view python) {
    return detail::slice_spec_parser(python, std::nullopt).parse();
}

// ---- Tensor-parallel parts ---------------------------------------------------------------------

// Positions [begin, end) of one tensor-parallel part of a dimension.
struct split_bounds {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    constexpr std::uint64_t size() const noexcept { return end - begin; }
};

namespace detail {
inline split_bounds split_range(std::uint64_t size, std::uint64_t rank, std::uint64_t world_size,
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
// positions, exactly the part vLLM and Megatron-LM load (they require divisibility and pad
// vocabularies to get it). Otherwise the first size % world_size ranks get one position
// more, like DeepSpeed's get_shard_endpoints and numpy.array_split: parts differ by at most
// one, and when world_size > size the last ranks get empty parts. (torch.chunk differs: it
// gives ceil(size / world_size) per part and may return fewer parts.) Throws
// errc::invalid_argument for world_size 0 or rank >= world_size.
inline split_bounds split_range(std::uint64_t size, std::uint64_t rank, std::uint64_t world_size) {
    return detail::split_range(size, rank, world_size, "split_range: ");
}

} // namespace safetensors
