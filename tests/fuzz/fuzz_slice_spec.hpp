// fuzz_slice_spec: any text as a Python index expression. What parses must print back to the
// same expression; applied to small tensors of several ranks and dtypes, the spec and the
// text give the same result, which matches the element-by-element model.
#pragma once

#include <safetensors/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_slice_check.hpp"
#include "fuzz_support.hpp"

namespace fuzz {

// Small tensors to slice: ranks 0 to 4, an empty dimension, byte and sub-byte dtypes. Bytes
// are distinct (i * 37 + 11), so a misplaced run shows.
inline const safetensors::file& slice_targets() {
    using namespace safetensors;
    static const file f = [] {
        std::vector<std::byte> pattern(4096);
        for (std::size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<std::byte>(i * 37 + 11);
        auto ref = [&](const char* name, dtype type, std::initializer_list<std::uint64_t> dims) {
            const std::uint64_t bytes = byte_size(type, span<const std::uint64_t>(dims.begin(), dims.size()));
            return tensor_ref(name, type, shape_ref(dims), pattern.data(), bytes);  // the shape is copied
        };
        std::vector<tensor_ref> refs = {
            ref("scalar", dtype::F32, {}),          ref("vector", dtype::I16, {7}),
            ref("matrix", dtype::U8, {5, 6}),       ref("cube", dtype::F32, {3, 4, 5}),
            ref("four", dtype::BF16, {2, 3, 2, 3}), ref("empty", dtype::F64, {4, 0, 3}),
            ref("nibbles", dtype::F4, {4, 6}),      ref("sixes", dtype::F6_E2M3, {2, 8}),
        };
        return file::from_bytes(serialize(refs));
    }();
    return f;
}

inline int fuzz_slice_spec_one(const std::uint8_t* data, std::size_t size) {
    using namespace safetensors;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    slice_spec spec;
    try {
        spec = parse_slice_spec(text);
    } catch (const error& e) {
        FUZZ_CHECK(e.code() == errc::invalid_slice && !e.message().empty());
        // The tensor's own parser refuses it too, naming the tensor.
        try {
            (void)slice_targets().tensor("cube").slice(text);
            FUZZ_CHECK(false);
        } catch (const error& named) {
            FUZZ_CHECK(named.code() == errc::invalid_slice);
            FUZZ_CHECK(named.message().rfind("tensor \"cube\": ", 0) == 0);
        }
        return 0;
    }
    FUZZ_CHECK(!spec.empty());
    const std::string printed = to_string(spec);
    FUZZ_CHECK(parse_slice_spec(printed) == spec);
    FUZZ_CHECK(to_string(parse_slice_spec(printed)) == printed);

    for (const tensor_view& view : slice_targets()) {
        check_slice(view, spec);
        // The string overload reaches the same outcome.
        errc by_spec = errc::ok, by_text = errc::ok;
        std::vector<byte_run> runs_spec, runs_text;
        try {
            runs_spec = view.slice(spec).runs();
        } catch (const error& e) {
            by_spec = e.code();
        }
        try {
            runs_text = view.slice(text).runs();
        } catch (const error& e) {
            by_text = e.code();
        }
        FUZZ_CHECK(by_spec == by_text);
        FUZZ_CHECK(runs_spec == runs_text);
    }
    return 0;
}

} // namespace fuzz
