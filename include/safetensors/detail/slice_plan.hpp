// safetensors-hpp: the plan of a slice: which positions of each dimension an index expression
// selects (torch's rules and messages), and the byte runs of the tensor they make up.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../dtype.hpp"
#include "../error.hpp"
#include "../slice.hpp"
#include "../span.hpp"
#include "checked.hpp"

namespace safetensors::detail {

inline std::string tensor_prefix(std::string_view name) { return "tensor " + quote(name) + ": "; }
inline std::string elements_text(std::uint64_t n) { return std::to_string(n) + (n == 1 ? " element" : " elements"); }

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
inline std::uint64_t clamp_bound(const detail::slice_integer& bound, std::uint64_t open, std::uint64_t size) noexcept {
    if (!bound.has_value()) return open;
    if (bound.negative()) return bound.magnitude() >= size ? 0 : size - bound.magnitude();
    return std::min(bound.magnitude(), size);
}

// One selection per dimension of shape, with torch's rules and error messages.
inline std::vector<dim_selection> resolve(std::string_view name, span<const std::uint64_t> shape,
                                          const slice_spec& spec) {
    const std::size_t rank = shape.size();
    std::size_t ellipses = 0;
    for (const slice_item& index : spec) ellipses += index.type() == slice_item::kind::ellipsis;
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
    for (const slice_item& index : spec) {
        if (index.type() == slice_item::kind::ellipsis) {
            for (std::size_t n = rank - explicit_dims; n > 0; --n) whole();
            continue;
        }
        const std::size_t dim = out.size();
        const std::uint64_t size = shape[dim];
        if (index.type() == slice_item::kind::integer) {
            const detail::slice_integer& i = index.integer();
            if (i.negative() ? i.magnitude() > size : i.magnitude() >= size)
                throw_error(errc::slice_out_of_range, tensor_prefix(name) + "index " + integer_text(i) +
                                                          " is out of bounds for dimension " + std::to_string(dim) +
                                                          " with size " + std::to_string(size));
            out.push_back({i.negative() ? size - i.magnitude() : i.magnitude(), 1, 1, false});
            continue;
        }
        const range& r = index.as_range();
        std::uint64_t step = 1;
        if (r.step().has_value()) {
            if (r.step().negative() || r.step().magnitude() == 0)
                throw_error(errc::invalid_slice, tensor_prefix(name) + "step " + integer_text(r.step()) + " for dimension " +
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

struct slice_loop {
    std::size_t count;
    std::size_t stride;
};

// Where a slice's bytes are: runs of run_length bytes, the first at offset first of the
// tensor, repeated by the loops (outer first); no loops means one run (or none).
struct slice_layout {
    std::vector<std::uint64_t> shape;  // the result's shape
    std::uint64_t element_count = 0;
    std::uint64_t byte_size = 0;
    std::size_t first = 0;
    std::size_t run_length = 0;
    std::vector<slice_loop> loops;
};

// The layout in bits, before the byte check: sub-byte dtypes share the arithmetic.
struct bit_layout {
    std::uint64_t first = 0;
    std::uint64_t run = 0;
    std::size_t run_dim = 0;
    std::vector<std::pair<std::size_t, std::uint64_t>> loops;  // dimension, stride in bits
};

// Element strides in bits. Every selected size is >= 1 when this is called, so each product
// is at most the tensor's size in bits, which fits (checked at open).
inline bit_layout lay_out_bits(span<const std::uint64_t> shape, const std::vector<dim_selection>& dims,
                               std::uint64_t bits) {
    const std::size_t rank = dims.size();
    std::vector<std::uint64_t> stride(rank);
    std::uint64_t inner = bits;
    for (std::size_t d = rank; d-- > 0;) {
        stride[d] = inner;
        inner *= shape[d];
    }
    bit_layout out;
    for (std::size_t d = 0; d < rank; ++d) out.first += dims[d].start * stride[d];

    // Grow one run outwards over the inner dimensions it covers whole, in steps of 1.
    // Dimensions with one position only move the start. What is left are the loops.
    out.run = bits;
    out.run_dim = rank == 0 ? 0 : rank - 1;
    std::size_t outer = rank;
    for (; outer > 0; --outer) {
        const dim_selection& s = dims[outer - 1];
        if (s.count == 1) continue;
        if (s.step != 1 || out.run != stride[outer - 1]) break;
        out.run *= s.count;
        out.run_dim = outer - 1;
    }
    for (std::size_t d = 0; d < outer; ++d)
        if (dims[d].count > 1) out.loops.push_back({d, dims[d].step * stride[d]});
    return out;
}

// Sub-byte data can only be copied in whole bytes. Checking the run length, the start and
// each loop's stride is exact: every run starts at first + a sum of strides, and runs that
// touch end and start on the same bit.
inline void check_whole_bytes(std::string_view name, safetensors::dtype type, span<const std::uint64_t> shape,
                              const std::vector<dim_selection>& dims, const bit_layout& at) {
    const std::uint64_t bits = bit_size(type);
    const std::string what = tensor_prefix(name) + "dtype " + std::string(to_string(type)) + ": ";
    if (at.run % 8 != 0)
        throw_error(errc::unaligned_slice, what + "the slice's runs of " + elements_text(at.run / bits) +
                                               " along dimension " + std::to_string(at.run_dim) + " are " +
                                               std::to_string(at.run) + " bits, not whole bytes");
    if (at.first % 8 != 0) {
        std::uint64_t stride = bits;  // of dimension d, in bits
        for (std::size_t d = dims.size(); d-- > 0; stride *= shape[d])
            if (dims[d].start * stride % 8 != 0)
                throw_error(errc::unaligned_slice, what + "the slice starts at index " + std::to_string(dims[d].start) +
                                                       " of dimension " + std::to_string(d) + ", bit " +
                                                       std::to_string(at.first % 8) + " of a byte");
    }
    for (const auto& [d, s] : at.loops)
        if (s % 8 != 0)
            throw_error(errc::unaligned_slice, what + "the slice's step of " + elements_text(s / bits) +
                                                   " along dimension " + std::to_string(d) + " is " +
                                                   std::to_string(s) + " bits, not whole bytes");
}

// The layout of spec applied to a tensor; throws the errors of resolve() and check_whole_bytes().
inline slice_layout plan_slice(std::string_view name, safetensors::dtype type, span<const std::uint64_t> shape,
                               const slice_spec& spec) {
    const std::vector<dim_selection> dims = resolve(name, shape, spec);
    slice_layout out;
    out.element_count = 1;
    for (const auto& d : dims) {
        out.element_count *= d.count;  // each count <= its size, whose products the header checked
        if (d.keep) out.shape.push_back(d.count);
    }
    if (out.element_count == 0) return out;  // nothing selected: no runs, nothing to align

    const bit_layout bits = lay_out_bits(shape, dims, bit_size(type));
    if (bit_size(type) % 8 != 0) check_whole_bytes(name, type, shape, dims, bits);

    // In bytes from here on; all of it is within the tensor, which is addressable.
    out.first = to_size(bits.first / 8);
    out.run_length = to_size(bits.run / 8);
    out.byte_size = out.run_length;
    for (const auto& [d, s] : bits.loops) {
        out.loops.push_back({to_size(dims[d].count), to_size(s / 8)});
        out.byte_size *= dims[d].count;
    }
    return out;
}

} // namespace safetensors::detail
