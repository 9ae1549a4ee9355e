// The headers as a consumer includes them (add_subdirectory, -I: not as system headers),
// compiled with the strict warnings consumers use (tests/CMakeLists.txt,
// safetensors-api-check, and tests/compile/check.sh for the 32-bit and MinGW compilers): -Wconversion -Wsign-conversion -Wshadow -Wold-style-cast, and
// -Wuseless-cast on g++, all errors. Every public header is included, and the templates a
// program instantiates are instantiated here: api_usage.hpp's, the writer's, slices', and the
// C++20 ranges. Compiled, never run.
#include <safetensors/safetensors.hpp>
#if __has_include(<dlpack/dlpack.h>)
#include <safetensors/dlpack.hpp>
#endif
#if __has_include(<cuda_runtime.h>)
#include <safetensors/cuda.hpp>
#endif

#include "api_usage.hpp"

#include <algorithm>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#if SAFETENSORS_DETAIL_RANGES
#include <ranges>
// The C++20 guarantees: random access (tensor_at(i) is O(1)) and a size.
static_assert(std::ranges::random_access_range<safetensors::file> && std::ranges::sized_range<safetensors::file>);
static_assert(std::ranges::random_access_range<safetensors::sharded_file> &&
              std::ranges::sized_range<safetensors::sharded_file>);
#endif

namespace {

double use_writer(const safetensors::file& f, const std::string& out) {
    namespace st = safetensors;
    const std::vector<float> values(4, 1.f);
    const std::vector<std::uint16_t> halves(4);
    const std::vector<long long> longs(2);
    const std::vector<std::byte> raw(4);
    std::vector<st::tensor_ref> refs;
    for (int i = 0; i < 2; ++i) refs.emplace_back("t" + std::to_string(i), st::dtype::F32, std::vector<std::uint64_t>{4}, values);
    refs.emplace_back("h", st::dtype::F16, std::vector<std::uint64_t>{4}, halves);
    refs.emplace_back("l", std::vector<std::uint64_t>{2}, longs);
    refs.emplace_back("r", st::dtype::F4, std::vector<std::uint64_t>{8}, st::span<const std::byte>(raw));
    st::metadata_map meta{{"format", "pt"}};
    meta.set("k", "v");
    st::save(out, refs, meta);
    st::save(out, f);
    const std::vector<std::byte> bytes = st::serialize(refs, meta, st::write_options{4096, false, true});
    st::stream_writer w(out, {{"s", st::dtype::U8, {2}}});
    const std::uint8_t two[2] = {1, 2};
    w.write("s", two, 2);
    w.commit();
    const st::sharded_write_result written = st::save_sharded(out + ".d", refs);
    std::ostringstream text;
    text << st::dtype::BF16 << f.tensor("x").shape();
    const auto slice = f.tensor("x").slice({st::range::from(1), st::range(std::nullopt, std::nullopt, 2)});
    std::vector<std::byte> packed(16);
    slice.copy_to(packed.data(), packed.size());
    const st::tensor part = slice.to_tensor();
    double total = static_cast<double>(bytes.size() + written.shard_files.size() + text.str().size() + packed.size()) +
                   static_cast<double>(part.byte_size());
    const auto r = st::try_open(out);
    if (!r) total += static_cast<double>(r.error().system_code().value()) + static_cast<double>(r.error().path().size());
#if SAFETENSORS_DETAIL_RANGES
    total += static_cast<double>(std::ranges::count_if(f, [](const st::tensor_view& t) { return t.rank() == 2; }));
#if !(defined(__clang__) && __clang_major__ < 16)  // clang 14/15 cannot compile libstdc++'s views
    for (const st::tensor_view& t : f | std::views::filter([](const st::tensor_view& v) { return v.rank() == 1; }))
        total += static_cast<double>(t.byte_size());
#endif
#endif
    return total;
}

} // namespace

double safetensors_strict_check(const std::string& path) {
    const safetensors::file f = safetensors::open(path);
    return safetensors_compile_check::use_api(path) + use_writer(f, path + ".out");
}
