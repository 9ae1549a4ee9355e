// Iterating a file and a sharded collection: random-access iterators over tensor_views made on
// the spot. Under C++17 they are input iterators (iterator_category) with O(1) arithmetic;
// under C++20 (the sanitizer build), file and sharded_file are random-access, sized, borrowed
// views, so std::ranges algorithms and adaptors take them, temporaries included.
#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#if __has_include(<version>)
#include <version>
#endif
#if defined(__cpp_lib_ranges) && __cpp_lib_ranges >= 201911L
#include <ranges>
#define RANGES_TEST_CXX20 1
#else
#define RANGES_TEST_CXX20 0
#endif

#include "support/bytes.hpp"

namespace ranges_test {

const std::string all_dtypes = test_support::data_path("reference/valid/all_dtypes.safetensors");  // 29 tensors
const std::string sharded = test_support::data_path("reference/model/gpt2_tiny_sharded");       // 28 in 5 shards

bool is_f32(const safetensors::tensor_view& t) { return t.dtype() == safetensors::dtype::F32; }
bool is_bias(const safetensors::tensor_view& t) {
    const std::string_view n = t.name();
    return n.size() >= 4 && n.substr(n.size() - 4) == "bias";
}

using file_iterator = safetensors::file::iterator;
using sharded_iterator = safetensors::sharded_file::iterator;

// C++17 sees input iterators: *it is a prvalue, and forward iterators need a real reference.
static_assert(std::is_same<std::iterator_traits<file_iterator>::iterator_category, std::input_iterator_tag>::value);
static_assert(std::is_same<file_iterator::iterator_concept, std::random_access_iterator_tag>::value);
static_assert(std::is_same<std::iterator_traits<file_iterator>::reference, safetensors::tensor_view>::value);
static_assert(std::is_same<std::iterator_traits<file_iterator>::difference_type, std::ptrdiff_t>::value);
static_assert(std::is_default_constructible<file_iterator>::value && std::is_default_constructible<sharded_iterator>::value);
// The owners' default constructors stay private.
static_assert(!std::is_default_constructible<safetensors::file>::value);
static_assert(!std::is_default_constructible<safetensors::sharded_file>::value);

} // namespace ranges_test

TEST_CASE("iterators: random-access arithmetic and comparisons") {
    using namespace ranges_test;
    const safetensors::file f = safetensors::open(all_dtypes);
    REQUIRE(f.size() == 29);
    const file_iterator begin = f.begin(), end = f.end();
    CHECK(end - begin == 29);
    CHECK(begin - end == -29);
    CHECK(std::distance(begin, end) == 29);
    CHECK(begin[2].name() == f.tensor_at(2).name());
    CHECK((*(begin + 2)).name() == f.tensor_at(2).name());
    CHECK((*(2 + begin)).name() == f.tensor_at(2).name());
    CHECK((*(end - 1)).name() == "mask_bool_2x5");
    CHECK((end - 1)[-28].name() == "rand_uint64_4x2");

    file_iterator it = begin;
    it += 5;
    CHECK(it - begin == 5);
    it -= 2;
    CHECK(it - begin == 3);
    CHECK((*it++).name() == f.tensor_at(3).name());
    CHECK(it - begin == 4);
    CHECK((*it--).name() == f.tensor_at(4).name());
    CHECK((*--it).name() == f.tensor_at(2).name());
    CHECK((*++it).name() == f.tensor_at(3).name());
    CHECK(std::next(begin, 3) == it);

    CHECK(begin < it);
    CHECK(begin <= it);
    CHECK(it > begin);
    CHECK(it >= begin);
    CHECK(it <= it);
    CHECK(it >= it);
    CHECK_FALSE(it < it);
    CHECK(it != begin);
    CHECK(begin + 3 == it);
    // Default-constructed iterators are equal to each other.
    CHECK(file_iterator() == file_iterator());
    CHECK(sharded_iterator() == sharded_iterator());
}

TEST_CASE("iterators: standard algorithms, and an iterator keeps its file alive") {
    using namespace ranges_test;
    const safetensors::file f = safetensors::open(all_dtypes);
    CHECK(std::count_if(f.begin(), f.end(), is_f32) == 5);
    const auto scalar = std::find_if(f.begin(), f.end(), [](const safetensors::tensor_view& t) { return t.rank() == 0; });
    REQUIRE(scalar != f.end());
    CHECK((*scalar).name() == "scalar_i64");
    CHECK(scalar - f.begin() == 2);
    std::vector<std::string> names;
    std::transform(f.begin(), f.end(), std::back_inserter(names), [](const safetensors::tensor_view& t) { return std::string(t.name()); });
    CHECK(names.size() == 29);
    CHECK(names.front() == "rand_uint64_4x2");

    // The iterator holds a copy of the file; the temporary it came from is gone.
    const file_iterator it = safetensors::open(all_dtypes).begin() + 8;
    CHECK((*it).name() == "scalar_f32");
}

TEST_CASE("iterators: a sharded collection, opening shards as it reaches them") {
    using namespace ranges_test;
    const safetensors::sharded_file model = safetensors::open_sharded(sharded);
    REQUIRE(model.size() == 28);
    CHECK(model.end() - model.begin() == 28);
    CHECK(std::distance(model.begin(), model.end()) == 28);
    CHECK(model.begin()[27].name() == "transformer.wte.weight");
    CHECK((*(model.begin() + 24)).name() == "transformer.ln_f.bias");
    CHECK(std::count_if(model.begin(), model.end(), is_bias) == 13);
}

#if RANGES_TEST_CXX20

namespace ranges_test {

static_assert(SAFETENSORS_DETAIL_RANGES == 1, "the headers found no ranges where this test does");
static_assert(std::random_access_iterator<file_iterator> && std::random_access_iterator<sharded_iterator>);
static_assert(std::sized_sentinel_for<file_iterator, file_iterator>);
template <class R>
constexpr bool random_access_sized = std::ranges::random_access_range<R> && std::ranges::sized_range<R> &&
                                     std::ranges::common_range<R> && std::ranges::borrowed_range<R>;
static_assert(random_access_sized<safetensors::file> && random_access_sized<const safetensors::file>);
static_assert(random_access_sized<safetensors::sharded_file>);
// Views where the library has P2325 (__cpp_lib_ranges 202106), which stopped asking views for
// a public default constructor.
#if __cpp_lib_ranges >= 202106L
static_assert(std::ranges::view<safetensors::file> && std::ranges::view<safetensors::sharded_file>);
#endif
static_assert(std::is_same_v<std::ranges::range_value_t<safetensors::file>, safetensors::tensor_view>);
static_assert(std::is_same_v<std::ranges::range_reference_t<safetensors::sharded_file>, safetensors::tensor_view>);

} // namespace ranges_test

TEST_CASE("C++20: std::ranges algorithms over a file and a collection") {
    using namespace ranges_test;
    const safetensors::file f = safetensors::open(all_dtypes);
    CHECK(std::ranges::size(f) == 29);
    CHECK(std::ranges::distance(f) == 29);
    CHECK(std::ranges::count_if(f, is_f32) == 5);
    CHECK(std::ranges::count_if(safetensors::open_sharded(sharded), is_bias) == 13);
    // A borrowed range: the iterator found in a temporary file is usable, not std::ranges::dangling.
    const auto found = std::ranges::find_if(safetensors::open(all_dtypes), [](const auto& t) { return t.rank() == 4; });
    CHECK((*found).name() == "one_elem_f16_1x1x1x1");
    CHECK(std::ranges::next(f.begin(), 3, f.end())[0].name() == f.tensor_at(3).name());
}

// Clang before 16 cannot compile libstdc++'s range adaptors at all (llvm/llvm-project#44178).
#if defined(__clang__) && __clang_major__ < 16 && defined(__GLIBCXX__)
#define RANGES_TEST_ADAPTORS 0
#else
#define RANGES_TEST_ADAPTORS 1
#endif

TEST_CASE("C++20: views::filter over a file, a temporary file and a collection" *
          doctest::skip(!RANGES_TEST_ADAPTORS) *
          doctest::description("needs range adaptors: clang before 16 cannot compile libstdc++'s")) {
#if RANGES_TEST_ADAPTORS
    using namespace ranges_test;
    const safetensors::file f = safetensors::open(all_dtypes);
    std::vector<std::string> names;
    for (const safetensors::tensor_view& t : f | std::views::filter(is_f32)) names.emplace_back(t.name());
    CHECK(names == std::vector<std::string>{"big_f32_64x64", "empty_f32_0x3", "rand_float32_3x4x5", "scalar_f32",
                                            "special_float32"});
    // A view of a temporary holds its own copy of the file, so it does not dangle.
    auto scalars = safetensors::open(all_dtypes) | std::views::filter([](const auto& t) { return t.rank() == 0; });
    CHECK(std::ranges::distance(scalars) == 2);
    CHECK((*scalars.begin()).name() == "scalar_i64");
    auto biases = safetensors::open_sharded(sharded) | std::views::filter(is_bias) | std::views::take(2);
    CHECK(std::ranges::distance(biases) == 2);
#endif
}

#endif
