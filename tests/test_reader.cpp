// Pluggable readers (source.hpp): a source without addressable bytes, written the way a user
// writes one, opens every reference fixture like the mapped path does; what copies works
// through read_at / read_ranges, what hands out pointers throws not_addressable.
#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#if __has_include(<dlpack/dlpack.h>)
#include <safetensors/dlpack.hpp>
#endif

#include <safetensors/read_cache.hpp>

#include "support/bytes.hpp"
#include "support/errors.hpp"
#include "support/temp_dir.hpp"

// A named namespace, not an anonymous one: the unit tests are built as unity translation units.
namespace reader_tests {

using safetensors::errc;
using test_support::error_of;

// A reader over a byte vector that counts what it is asked for, and fails on request.
class counting_reader final : public safetensors::source {
public:
    explicit counting_reader(std::vector<std::byte> bytes, std::string description = "reader://test")
        : source(bytes.size(), std::move(description)), bytes_(std::move(bytes)) {}

    void reset() const {
        reads = 0;
        bytes_read = 0;
        batches = 0;
        ranges = 0;
    }

    mutable std::atomic<std::size_t> reads{0};       // do_read_at calls
    mutable std::atomic<std::uint64_t> bytes_read{0};
    mutable std::atomic<std::size_t> batches{0};     // do_read_ranges calls
    mutable std::atomic<std::size_t> ranges{0};      // ranges in them
    mutable std::atomic<bool> fail{false};           // every read throws while set

protected:
    void do_read_at(std::uint64_t offset, void* destination, std::size_t length) const override {
        if (fail) throw std::runtime_error("injected reader failure");
        ++reads;
        bytes_read += length;
        if (length != 0) std::memcpy(destination, bytes_.data() + offset, length);
    }
    void do_read_ranges(safetensors::span<const safetensors::byte_range> list) const override {
        ++batches;
        ranges += list.size();
        for (const auto& r : list) do_read_at(r.offset, r.destination, r.length);
    }

private:
    std::vector<std::byte> bytes_;
};

inline std::shared_ptr<counting_reader> reader_of(const std::string& path) {
    return std::make_shared<counting_reader>(test_support::read_all(path));
}

inline std::vector<std::string> valid_fixtures() {
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(test_support::data_path("reference/valid")))
        if (entry.path().extension() == ".safetensors") out.push_back(entry.path().generic_string());
    std::sort(out.begin(), out.end());
    return out;
}

inline std::vector<std::byte> copy_bytes(const safetensors::tensor_view& t) {
    const safetensors::tensor owned = safetensors::tensor::copy_of(t);
    return {owned.bytes().begin(), owned.bytes().end()};
}

// F32 values of t through convert(), or empty when the library does not convert its dtype.
template <class T>
std::vector<float> f32_or_empty(const T& t) {
    std::vector<float> out(static_cast<std::size_t>(t.element_count()));
    auto bytes = safetensors::span<std::byte>(reinterpret_cast<std::byte*>(out.data()), out.size() * sizeof(float));
    if (!safetensors::try_convert(t, safetensors::dtype::F32, bytes)) return {};
    return out;
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

} // namespace reader_tests

using namespace reader_tests;

TEST_CASE("reader: the library's sources are addressable, a reader is not") {
    CHECK(safetensors::open_source(test_support::data_path("reference/valid/slicing.safetensors"))->addressable());
    CHECK(safetensors::own_buffer(test_support::make_file("{}"))->addressable());
    auto r = std::make_shared<counting_reader>(test_support::make_file("{}"));
    CHECK_FALSE(r->addressable());
    CHECK(r->data() == nullptr);
}

TEST_CASE("reader: every reference fixture opens with the header in two reads, and copies agree with the map") {
    const auto fixtures = valid_fixtures();
    REQUIRE(fixtures.size() >= 8);
    for (const auto& path : fixtures) {
        INFO(path);
        const auto mapped = safetensors::open(path);
        const auto src = reader_of(path);
        const auto f = safetensors::file::from_source(src);
        CHECK(src->reads == 2);  // the 8-byte length, then the JSON
        CHECK(src->bytes_read == mapped.header().data_offset());
        REQUIRE(f.keys() == mapped.keys());
        for (const auto& view : mapped) {
            const auto other = f.tensor(view.name());
            CHECK(other.dtype() == view.dtype());
            CHECK(other.shape() == view.shape());
            CHECK(other.data_offsets() == view.data_offsets());
            CHECK(copy_bytes(other) == copy_bytes(view));
            CHECK(same_bits(f32_or_empty(other), f32_or_empty(view)));
        }
        CHECK(safetensors::serialize(f) == safetensors::serialize(mapped));
        CHECK(safetensors::is_canonical(f) == safetensors::is_canonical(mapped));
        const auto loaded = safetensors::load(f), expected = safetensors::load(mapped);
        REQUIRE(loaded.size() == expected.size());
        for (const auto& [name, t] : expected) {
            const auto& got = loaded.at(name);
            CHECK(std::vector<std::byte>(got.bytes().begin(), got.bytes().end()) ==
                  std::vector<std::byte>(t.bytes().begin(), t.bytes().end()));
        }
    }
}

TEST_CASE("reader: what hands out pointers throws not_addressable, naming the tensor and the source") {
    const auto f = safetensors::file::from_source(
        reader_of(test_support::data_path("reference/valid/slicing.safetensors")));
    const auto t = f.tensor("x_f32");
    const auto expect = [](const char* what) {
        return std::string("tensor \"x_f32\": ") + what +
               " needs addressable bytes, but \"reader://test\" is read through a reader; use copy_to(), "
               "read_bytes() or tensor::copy_of()";
    };
    auto e = error_of([&] { (void)t.data(); });
    CHECK(e.code == errc::not_addressable);
    CHECK(e.message == expect("data()"));
    e = error_of([&] { (void)t.bytes(); });
    CHECK(e.code == errc::not_addressable);
    CHECK(e.message == expect("bytes()"));
    e = error_of([&] { (void)t.as<float>(); });
    CHECK(e.code == errc::not_addressable);
    CHECK(e.message == expect("as<T>()"));
    e = error_of([&] { (void)t.element(0); });
    CHECK(e.code == errc::not_addressable);
    CHECK(e.message == expect("element()"));
    // dtype before address: the wrong T is still a dtype_mismatch.
    CHECK(error_of([&] { (void)t.as<std::int16_t>(); }).code == errc::dtype_mismatch);
    CHECK(error_of([&] { (void)t.slice("0").data(); }).code == errc::not_addressable);
#if __has_include(<dlpack/dlpack.h>)
    CHECK(error_of([&] { (void)safetensors::to_dlpack(t); }).code == errc::not_addressable);
#endif
    CHECK(t.to_vector<float>() == safetensors::open(test_support::data_path("reference/valid/slicing.safetensors"))
                                      .tensor("x_f32")
                                      .to_vector<float>());
}

TEST_CASE("reader: a slice copy fetches only the runs it covers, in one read_ranges batch") {
    const std::string path = test_support::data_path("reference/valid/slicing.safetensors");
    const auto mapped = safetensors::open(path);
    const auto src = reader_of(path);
    const auto f = safetensors::file::from_source(src);
    for (const char* spec : {":, 1:3, 2:4", "1", "::2, :, 4", "2:3, 1:2", ":, :, :"}) {
        INFO(spec);
        for (const char* name : {"x_f32", "x_i16", "x_bf16"}) {
            const auto s = f.tensor(name).slice(spec);
            const auto m = mapped.tensor(name).slice(spec);
            const auto runs = s.runs();
            std::uint64_t covered = 0;
            for (const auto& run : runs) covered += run.length;
            std::vector<std::byte> got(static_cast<std::size_t>(s.byte_size())), want(got.size());
            src->reset();
            s.copy_to(got.data(), got.size());
            CHECK(src->bytes_read == covered);
            CHECK(src->batches == 1);
            CHECK(src->ranges == runs.size());
            m.copy_to(want.data(), want.size());
            CHECK(got == want);
            const auto owned = s.to_tensor();
            CHECK(std::vector<std::byte>(owned.bytes().begin(), owned.bytes().end()) == want);
            CHECK(same_bits(f32_or_empty(s), f32_or_empty(m)));
            if (got.size() > 3) {  // a part of the packed result
                std::vector<std::byte> part(got.size() - 3);
                s.read_bytes(2, part.data(), part.size() - 1);
                CHECK(std::memcmp(part.data(), want.data() + 2, part.size() - 1) == 0);
            }
        }
    }
}

TEST_CASE("reader: save and serialize of a reader's file write the mapped file's bytes, large tensors too") {
    // A tensor larger than the writer's direct-write threshold (256 KiB), and a small one.
    std::vector<float> big(300000), small(5);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i) * 0.5f;
    for (std::size_t i = 0; i < small.size(); ++i) small[i] = static_cast<float>(i);
    const auto bytes = safetensors::serialize({{"big", {300000}, big}, {"small", {5}, small}}, {{"k", "v"}});
    const auto src = std::make_shared<counting_reader>(bytes);
    const auto f = safetensors::file::from_source(src);
    src->reset();
    CHECK(safetensors::serialize(f) == bytes);
    CHECK(src->batches == 1);  // the tensors in one batch
    CHECK(src->ranges == 2);
    CHECK(src->reads == 2);  // nothing else: the head is written from the plan
    test_support::temp_dir dir;
    const std::string out = dir.str() + "/copy.safetensors";
    safetensors::save(out, f);
    CHECK(test_support::read_all(out) == bytes);
    // The views as tensor_refs, renamed through a list: still read through the source.
    std::vector<safetensors::tensor_ref> refs;
    for (const auto& view : f) refs.emplace_back(view);
    CHECK(refs[0].data() == nullptr);
    CHECK(refs[0].has_bytes());
    CHECK(safetensors::serialize(refs, f.metadata()) == bytes);
    src->reset();
    const auto loaded = safetensors::load(f);
    CHECK(src->batches == 1);  // load() hands a reader all its tensors at once
    CHECK(src->ranges == 2);
    CHECK(loaded.at("big").bytes().size() == big.size() * sizeof(float));
    CHECK(std::memcmp(loaded.at("big").bytes().data(), big.data(), big.size() * sizeof(float)) == 0);
    CHECK(safetensors::to_f32(f.tensor("big")) == big);
}

TEST_CASE("reader: the reader's own errors reach the caller unchanged") {
    const auto src = reader_of(test_support::data_path("reference/valid/slicing.safetensors"));
    const auto f = safetensors::file::from_source(src);
    const auto t = f.tensor("x_f32");
    src->fail = true;
    std::vector<float> out(static_cast<std::size_t>(t.element_count()));
    CHECK_THROWS_WITH_AS(t.copy_to(out.data(), out.size()), "injected reader failure", std::runtime_error);
    CHECK_THROWS_WITH_AS(t.slice(":, 1").to_tensor(), "injected reader failure", std::runtime_error);
    CHECK_THROWS_WITH_AS(safetensors::load(f), "injected reader failure", std::runtime_error);
    CHECK_THROWS_WITH_AS(safetensors::to_f32(t), "injected reader failure", std::runtime_error);
    CHECK_THROWS_WITH_AS(safetensors::serialize(f), "injected reader failure", std::runtime_error);
    CHECK_THROWS_WITH_AS(safetensors::file::from_source(src), "injected reader failure", std::runtime_error);
    src->fail = false;
    // Ranges are checked before any is read.
    std::byte b[4];
    const std::vector<safetensors::byte_range> list = {{0, 4, b}, {src->size(), 1, b}};
    src->reset();
    CHECK(error_of([&] { src->read_ranges(list); }).code == errc::short_read);
    CHECK(src->reads == 0);
}

TEST_CASE("reader: cache_reads keeps fetched blocks up to its limit, least recently used out first") {
    const std::string path = test_support::data_path("reference/valid/slicing.safetensors");
    const auto mapped = safetensors::open(path);
    // An addressable source needs no cache.
    CHECK(safetensors::cache_reads(mapped.source()) == mapped.source());
    CHECK(error_of([] { (void)safetensors::cache_reads(nullptr); }).code == errc::invalid_argument);
    const auto src = reader_of(path);
    safetensors::read_cache_options options;
    options.block_size = 64;
    options.byte_limit = 4 * 64;
    const auto cached = safetensors::cache_reads(src, options);
    CHECK_FALSE(cached->addressable());
    CHECK(cached->description() == "reader://test");
    const auto f = safetensors::file::from_source(cached);
    const auto first = src->bytes_read.load();
    CHECK(first % 64 == 0);  // whole blocks (the file is a multiple of 64 bytes, or its tail)
    for (const char* name : {"x_f32", "x_i16", "x_bf16"}) {
        INFO(name);
        const auto t = f.tensor(name);
        CHECK(copy_bytes(t) == copy_bytes(mapped.tensor(name)));  // larger than the limit: read through
        const auto s = t.slice("0, 0");  // 5 elements: one or two blocks
        std::vector<std::byte> a(static_cast<std::size_t>(s.byte_size())), b(a.size()), want(a.size());
        s.copy_to(a.data(), a.size());
        const auto after_first = src->reads.load();
        s.copy_to(b.data(), b.size());
        CHECK(src->reads == after_first);  // served from the cache
        mapped.tensor(name).slice("0, 0").copy_to(want.data(), want.size());
        CHECK(a == want);
        CHECK(b == want);
    }
    // A fresh cache, a tiny limit: every block is evicted by the next.
    options.byte_limit = 64;
    const auto tiny = safetensors::file::from_source(safetensors::cache_reads(reader_of(path), options));
    const auto s1 = tiny.tensor("x_f32").slice("0, 0"), s2 = tiny.tensor("x_f32").slice("3, 5");
    std::vector<std::byte> x(static_cast<std::size_t>(s1.byte_size())), y(x.size());
    s1.copy_to(x.data(), x.size());
    s2.copy_to(y.data(), y.size());
    s1.copy_to(y.data(), y.size());
    CHECK(x == y);
}

TEST_CASE("reader: a sharded checkpoint whose shards come through readers") {
    std::vector<float> a = {1, 2, 3}, b = {4, 5};
    const auto first = safetensors::serialize({{"a", {3}, a}});
    const auto second = safetensors::serialize({{"b", {2}, b}});
    const auto index = safetensors::parse_index(
        R"({"metadata": {"total_size": 20}, "weight_map": {"a": "model-00001-of-00002.safetensors",)"
        R"( "b": "model-00002-of-00002.safetensors"}})");
    std::vector<std::string> asked;
    const auto sharded = safetensors::sharded_file::from_index(index, [&](const std::string& name) {
        asked.push_back(name);
        return std::make_shared<counting_reader>(name == "model-00001-of-00002.safetensors" ? first : second,
                                                 "reader://" + name);
    });
    CHECK(asked.empty());  // shards open when first needed
    CHECK(sharded.tensor("b").to_vector<float>() == b);
    CHECK(asked == std::vector<std::string>{"model-00002-of-00002.safetensors"});
    CHECK(sharded.tensor("a").to_vector<float>() == a);
    CHECK_FALSE(sharded.tensor("a").source()->addressable());
    sharded.validate();
    CHECK(asked.size() == 2);

    const auto broken = safetensors::sharded_file::from_index(index, [&](const std::string& name) {
        if (name == "model-00002-of-00002.safetensors")
            safetensors::detail::throw_error(errc::file_not_found, "no object " + name);
        return std::make_shared<counting_reader>(first);
    });
    CHECK(broken.tensor("a").to_vector<float>() == a);
    const auto e = error_of([&] { (void)broken.tensor("b"); });
    CHECK(e.code == errc::missing_shard);
    CHECK(e.message == "missing shard \"model-00002-of-00002.safetensors\" of index: no object "
                       "model-00002-of-00002.safetensors");
    CHECK(error_of([&] { (void)safetensors::sharded_file::from_index(index, safetensors::sharded_file::shard_opener{}); }).code == errc::invalid_argument);

    // An index is an index however it came, and its name (a URL) is what messages call it.
    CHECK(sharded.is_index());
    CHECK(sharded.index_path().empty());
    CHECK(sharded.shard_path(0) == "model-00001-of-00002.safetensors");
    const auto named = safetensors::sharded_file::from_index(
        index,
        [&](const std::string& name) -> std::shared_ptr<const safetensors::source> {
            safetensors::detail::throw_error(errc::file_not_found, "no object " + name);
        },
        "https://example.com/m/model.safetensors.index.json");
    CHECK(named.is_index());
    CHECK(named.index_path() == "https://example.com/m/model.safetensors.index.json");
    CHECK(error_of([&] { (void)named.tensor("a"); }).message ==
          "missing shard \"model-00001-of-00002.safetensors\" of index \"https://example.com/m/model.safetensors.index.json\": "
          "no object model-00001-of-00002.safetensors");
}
