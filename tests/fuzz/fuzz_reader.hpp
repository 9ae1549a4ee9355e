// fuzz_reader: any bytes as a file held in memory. Whatever opens must answer every query
// consistently: lookups, bytes, elements, and slices and shards chosen from the input.
#pragma once

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_slice_check.hpp"
#include "fuzz_support.hpp"

namespace fuzz {

// An index expression for a tensor of the given rank: up to rank + 1 items, each an integer,
// a range (any part may be open, the step may be 0 or negative) or the ellipsis.
inline safetensors::slice_spec pick_spec(picker& p, safetensors::span<const std::uint64_t> shape) {
    using namespace safetensors;
    slice_spec spec;
    const std::size_t items = static_cast<std::size_t>(p.below(shape.size() + 2));
    for (std::size_t k = 0; k < items; ++k) {
        const std::uint64_t size = k < shape.size() ? shape[k] : 1;
        auto value = [&](bool may_be_open) -> detail::slice_integer {
            if (may_be_open && p.byte() % 3 == 0) return std::nullopt;
            return detail::slice_integer::from_parts(p.byte() % 4 == 0, p.interesting(size));
        };
        switch (p.byte() % 5) {
            case 0: spec.push_back(slice_item(value(false).magnitude())); break;
            case 1: {  // counting from the end, just inside and just past the start
                const std::uint64_t back = p.below((size < (1u << 20) ? size : (1u << 20)) + 2);
                spec.push_back(slice_item(-static_cast<std::int64_t>(back)));
                break;
            }
            case 2: spec.push_back(ellipsis); break;
            case 3: spec.push_back(all); break;
            default: spec.push_back(range(value(true), value(true), value(true))); break;
        }
    }
    return spec;
}

inline void check_view(const safetensors::file& f, const safetensors::tensor_view& view, picker& p) {
    using namespace safetensors;
    const std::string name(view.name());
    FUZZ_CHECK(f.contains(name));
    FUZZ_CHECK(f.tensor(name).data_offsets() == view.data_offsets());

    // Sizes agree with the shape; every byte is inside the source.
    std::uint64_t expected = 0;
    FUZZ_CHECK(checked_byte_size(view.dtype(), view.shape(), expected) == size_status::ok);
    FUZZ_CHECK(expected == view.byte_size());
    FUZZ_CHECK(view.source_offset() <= f.source()->size() && view.byte_size() <= f.source()->size() - view.source_offset());
    const span<const std::byte> bytes = view.bytes();
    unsigned sum = 0;
    for (std::byte b : bytes) sum += std::to_integer<unsigned>(b);  // ASan: every byte readable
    (void)sum;
    std::vector<std::byte> copy(bytes.size());
    view.read_bytes(0, copy.data(), copy.size());
    FUZZ_CHECK(std::equal(copy.begin(), copy.end(), bytes.begin(), bytes.end()));
    FUZZ_CHECK(tensor::copy_of(view).bytes() == bytes);

    // A few elements: first, last, and picked ones; C64 has no single value.
    const std::uint64_t n = view.element_count();
    const std::uint64_t indices[] = {0, n == 0 ? 0 : n - 1, p.below(n), p.interesting(n)};
    for (std::uint64_t i : indices) {
        try {
            (void)view.element(i);
            FUZZ_CHECK(i < n && view.dtype() != dtype::C64);
        } catch (const error& e) {
            FUZZ_CHECK(e.code() == (i >= n ? errc::out_of_range : errc::dtype_mismatch));
        }
    }

    // Slices picked from the input, and their Python spelling parsed back.
    for (int k = 0; k < 3; ++k) {
        const slice_spec spec = pick_spec(p, view.shape());
        check_slice(view, spec);
        if (!spec.empty()) FUZZ_CHECK(parse_slice_spec(to_string(spec)) == spec);
    }
    // A shard, maybe with an impossible dimension, rank or world size.
    const auto dim = static_cast<std::int64_t>(p.below(2 * view.rank() + 2)) - static_cast<std::int64_t>(view.rank()) - 1;
    const std::uint64_t world = p.interesting(8), rank = p.interesting(world);
    try {
        const tensor_slice s = view.split(dim, rank, world);
        FUZZ_CHECK(world != 0 && rank < world);
        FUZZ_CHECK(s.rank() == view.rank());
    } catch (const error& e) {
        FUZZ_CHECK(e.code() == errc::invalid_argument || e.code() == errc::unaligned_slice);
    }
}

// Tensors beyond this many are only looked up, so one input cannot run for minutes.
inline constexpr std::size_t reader_tensor_limit = 64;

inline int fuzz_reader_one(const std::uint8_t* data, std::size_t size) {
    using namespace safetensors;
    const result<file> opened = try_open_buffer(data, size);
    // from_bytes (an owned copy) must agree with the borrowed buffer.
    const result<file> owned = detail::capture([&] {
        return file::from_bytes(std::vector<std::byte>(reinterpret_cast<const std::byte*>(data),
                                                       reinterpret_cast<const std::byte*>(data) + size));
    });
    FUZZ_CHECK(opened.ok() == owned.ok());
    if (!opened) {
        FUZZ_CHECK(opened.error().code() != errc::ok && !opened.error().message().empty());
        FUZZ_CHECK(owned.error().code() == opened.error().code() && owned.error().message() == opened.error().message());
        return 0;
    }
    const file& f = *opened;
    FUZZ_CHECK(owned->size() == f.size());
    FUZZ_CHECK(f.header().data_offset() + f.header().data_size() == size);

    // Lookups: file order, sorted order, and find() agree.
    const auto keys = f.keys();
    auto sorted = f.sorted_keys();
    FUZZ_CHECK(std::is_sorted(sorted.begin(), sorted.end()));
    FUZZ_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
    std::vector<std::string_view> resorted = keys;
    std::sort(resorted.begin(), resorted.end());
    FUZZ_CHECK(resorted == sorted);
    std::uint64_t position = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        const tensor_view v = f.tensor_at(i);
        FUZZ_CHECK(v.name() == keys[i]);
        FUZZ_CHECK(v.data_offsets().first == position);  // file order is data order, no gaps
        position = v.data_offsets().second;
        FUZZ_CHECK(f.find(keys[i]).has_value());
    }
    FUZZ_CHECK(position == f.header().data_size());
    FUZZ_CHECK(!f.contains(std::string("\xff no such tensor")));
    if (const metadata_map* m = f.metadata())
        for (const auto& [key, value] : *m) FUZZ_CHECK(m->find(key) == std::string_view(value));

    picker p(data, size);
    std::size_t checked = 0;
    for (const tensor_view& view : f) {
        if (++checked > reader_tensor_limit) break;
        check_view(f, view, p);
    }
    return 0;
}

} // namespace fuzz
