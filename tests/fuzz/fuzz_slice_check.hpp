// Checks one tensor_view::slice() against a naive model: Python's basic-indexing rules applied
// element by element. The library plans byte runs and merges them; the model walks every
// selected element, so the two share no arithmetic.
#pragma once

#include <safetensors/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "fuzz_support.hpp"

namespace fuzz {

// The model's view of one dimension: the positions it selects, and whether it stays.
struct model_dim {
    std::uint64_t start = 0, count = 0, step = 1;
    bool keep = true;
};

// Python's rules, or the error code torch would raise (nullopt error: valid).
struct model_result {
    std::optional<safetensors::errc> error;
    std::vector<model_dim> dims;
};

inline std::uint64_t model_bound(const safetensors::detail::slice_integer& v, std::uint64_t open, std::uint64_t size) {
    if (!v.has_value()) return open;
    if (v.negative()) return v.magnitude() > size ? 0 : size - v.magnitude();
    return v.magnitude() > size ? size : v.magnitude();
}

inline model_result model_resolve(safetensors::span<const std::uint64_t> shape, const safetensors::slice_spec& spec) {
    using safetensors::slice_item;
    model_result out;
    std::size_t ellipses = 0;
    for (const auto& index : spec) ellipses += index.type() == slice_item::kind::ellipsis ? 1 : 0;
    if (ellipses > 1 || spec.size() - ellipses > shape.size()) {
        out.error = safetensors::errc::invalid_slice;
        return out;
    }
    for (const auto& index : spec) {
        if (index.type() == slice_item::kind::ellipsis) {
            const std::size_t fill = shape.size() - (spec.size() - 1);
            for (std::size_t k = 0; k < fill; ++k) out.dims.push_back({0, shape[out.dims.size()], 1, true});
            continue;
        }
        const std::uint64_t size = shape[out.dims.size()];
        if (index.type() == slice_item::kind::integer) {
            const auto& i = index.integer();
            const bool inside = i.negative() ? i.magnitude() <= size : i.magnitude() < size;
            if (!inside) {
                out.error = safetensors::errc::slice_out_of_range;
                return out;
            }
            out.dims.push_back({i.negative() ? size - i.magnitude() : i.magnitude(), 1, 1, false});
            continue;
        }
        const auto& r = index.as_range();
        std::uint64_t step = 1;
        if (r.step().has_value()) {
            if (r.step().negative() || r.step().magnitude() == 0) {
                out.error = safetensors::errc::invalid_slice;
                return out;
            }
            step = r.step().magnitude();
        }
        const std::uint64_t start = model_bound(r.start(), 0, size), stop = model_bound(r.stop(), size, size);
        // Short ranges are walked position by position; long ones (a dimension of 2^60 next
        // to a 0) by the closed form, which the walk checks on every short one.
        std::uint64_t count = 0;
        if (stop > start && stop - start <= 4096) {
            for (std::uint64_t p = start; p < stop; p += step) {
                ++count;
                if (step > stop - p) break;  // p + step would pass stop (or overflow)
            }
        } else if (stop > start) {
            count = (stop - start - 1) / step + 1;
        }
        out.dims.push_back({start, count, step, true});
    }
    while (out.dims.size() < shape.size()) out.dims.push_back({0, shape[out.dims.size()], 1, true});
    return out;
}

// Bits [bit, bit + n) of a little-endian bit stream (element k of a packed tensor starts at
// bit k * bit_size, least significant bit first: F4's low nibble, F6's 24-bit groups).
inline std::uint64_t bits_at(const std::byte* data, std::uint64_t bit, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t k = 0; k < n; ++k) {
        const std::uint64_t b = bit + k;
        v |= static_cast<std::uint64_t>((std::to_integer<unsigned>(data[b / 8]) >> (b % 8)) & 1u) << k;
    }
    return v;
}

// Shapes with more selected elements than this are checked for consistency but not walked.
inline constexpr std::uint64_t model_walk_limit = 1u << 16;

// Slices view with spec, then checks the result (or the error) against the model.
inline void check_slice(const safetensors::tensor_view& view, const safetensors::slice_spec& spec) {
    using namespace safetensors;
    const model_result model = model_resolve(view.shape(), spec);
    std::optional<tensor_slice> got;
    errc code = errc::ok;
    try {
        got = view.slice(spec);
    } catch (const error& e) {
        code = e.code();
        FUZZ_CHECK(!e.message().empty());
    }
    if (model.error) {
        FUZZ_CHECK(code == *model.error);
        return;
    }
    if (!got) {  // the model knows no byte alignment: only sub-byte dtypes may refuse here
        FUZZ_CHECK(code == errc::unaligned_slice && is_sub_byte(view.dtype()));
        return;
    }
    const tensor_slice& s = *got;
    std::vector<std::uint64_t> shape;
    std::uint64_t count = 1;
    for (const auto& d : model.dims) {
        count *= d.count;
        if (d.keep) shape.push_back(d.count);
    }
    FUZZ_CHECK(s.shape() == span<const std::uint64_t>(shape));
    FUZZ_CHECK(s.element_count() == count);
    const std::size_t bits = bit_size(view.dtype());
    FUZZ_CHECK(s.byte_size() * 8 == count * bits);

    // The runs: inside the tensor, summing to the slice's size.
    std::uint64_t total = 0;
    s.for_each_run([&](std::uint64_t offset, std::uint64_t length) {
        FUZZ_CHECK(length != 0);
        FUZZ_CHECK(offset <= view.byte_size() && length <= view.byte_size() - offset);
        total += length;
    });
    FUZZ_CHECK(total == s.byte_size());
    if (s.is_contiguous() && s.byte_size() != 0) FUZZ_CHECK(s.bytes().size() == s.byte_size());

    const auto size = static_cast<std::size_t>(s.byte_size());
    std::vector<std::byte> copied(size), read(size);
    s.copy_to(copied.data(), copied.size());
    s.read_bytes(0, read.data(), read.size());
    FUZZ_CHECK(copied == read);
    if (size > 2) {  // a piece from the middle matches the same bytes of the whole
        std::vector<std::byte> part(size / 2);
        s.read_bytes(size / 4, part.data(), part.size());
        FUZZ_CHECK(std::equal(part.begin(), part.end(), read.begin() + static_cast<std::ptrdiff_t>(size / 4)));
    }
    if (count > model_walk_limit) return;

    // Element by element, in row-major order over the model's selections.
    const std::size_t rank = model.dims.size();
    std::vector<std::uint64_t> stride(rank);
    std::uint64_t inner = 1;
    for (std::size_t d = rank; d-- > 0;) {
        stride[d] = inner;
        inner *= view.shape()[d];
    }
    std::vector<std::uint64_t> at(rank, 0);
    for (std::uint64_t k = 0; k < count; ++k) {
        std::uint64_t element = 0;
        for (std::size_t d = 0; d < rank; ++d) element += (model.dims[d].start + at[d] * model.dims[d].step) * stride[d];
        FUZZ_CHECK(bits_at(view.data(), element * bits, bits) == bits_at(copied.data(), k * bits, bits));
        for (std::size_t d = rank; d-- > 0;) {
            if (++at[d] < model.dims[d].count) break;
            at[d] = 0;
        }
    }
}

} // namespace fuzz
