// Slicing: torch basic indexing against the reference manifest and a naive model, run merging,
// sub-byte dtypes, 64-bit bounds, the Python-spelling parser, shards, and page-touch behaviour.
#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "support/bytes.hpp"
#include "support/platform.hpp"
#include "support/errors.hpp"
#include "support/sha256.hpp"

using safetensors::all;
using safetensors::ellipsis;
using safetensors::errc;
using safetensors::slice_spec;
using safetensors::range;
using test_support::data_path;
using test_support::error_of;

namespace {

constexpr std::int64_t i64_min = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

safetensors::file slicing_file() { return safetensors::open(data_path("reference/valid/slicing.safetensors")); }

std::vector<std::uint64_t> shape_of(const safetensors::tensor_slice& s) { return {s.shape().begin(), s.shape().end()}; }

std::vector<unsigned char> copied(const safetensors::tensor_slice& s) {
    std::vector<unsigned char> out(static_cast<std::size_t>(s.byte_size()));
    s.copy_to(out.data(), out.size());
    return out;
}

// The bytes a slice selects, gathered run by run from the view: what copy_to must produce.
std::vector<unsigned char> gathered(const safetensors::tensor_slice& s) {
    std::vector<unsigned char> out;
    const auto* base = reinterpret_cast<const unsigned char*>(s.view().data());
    for (auto run : s.runs()) out.insert(out.end(), base + run.offset, base + run.offset + run.length);
    return out;
}

// A one-tensor file in memory: "t" with the given dtype, shape and data.
safetensors::file one_tensor(const std::string& dtype, const std::string& shape, const std::string& data) {
    std::string json = "{\"t\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[0," +
                       std::to_string(data.size()) + "]}}";
    return safetensors::file::from_bytes(test_support::make_file(json, data));
}

std::string iota_bytes(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 37 + 11);
    return s;
}

// ---- A naive model of torch basic indexing, for differential tests ---------------------------

struct model_item {
    enum kind_t { integer, slice, dots } kind = integer;
    std::int64_t value = 0;
    std::optional<std::int64_t> start, stop, step;
};

// The positions each dimension keeps (and whether it is kept), or the error code.
struct model_result {
    std::optional<errc> error;
    std::vector<std::vector<std::uint64_t>> positions;
    std::vector<bool> keep;
};

model_result model(const std::vector<std::uint64_t>& shape, const std::vector<model_item>& items) {
    model_result r;
    std::size_t dots = 0;
    for (const auto& it : items) dots += it.kind == model_item::dots;
    const std::size_t explicit_dims = items.size() - dots;
    if (dots > 1 || explicit_dims > shape.size()) {
        r.error = errc::invalid_slice;
        return r;
    }
    std::vector<model_item> expanded;
    for (const auto& it : items) {
        if (it.kind != model_item::dots) {
            expanded.push_back(it);
            continue;
        }
        for (std::size_t i = 0; i < shape.size() - explicit_dims; ++i) expanded.push_back({model_item::slice, 0, {}, {}, {}});
    }
    while (expanded.size() < shape.size()) expanded.push_back({model_item::slice, 0, {}, {}, {}});
    for (std::size_t d = 0; d < shape.size(); ++d) {
        const auto size = static_cast<std::int64_t>(shape[d]);
        const model_item& it = expanded[d];
        std::vector<std::uint64_t> p;
        if (it.kind == model_item::integer) {
            std::int64_t i = it.value < 0 ? it.value + size : it.value;
            if (i < 0 || i >= size) {
                r.error = errc::slice_out_of_range;
                return r;
            }
            p.push_back(static_cast<std::uint64_t>(i));
        } else {
            const std::int64_t step = it.step.value_or(1);
            if (step <= 0) {
                r.error = errc::invalid_slice;
                return r;
            }
            auto clamp = [&](std::optional<std::int64_t> b, std::int64_t open) {
                if (!b) return open;
                std::int64_t v = *b < 0 ? *b + size : *b;
                return std::min(std::max(v, std::int64_t{0}), size);
            };
            for (std::int64_t i = clamp(it.start, 0), stop = clamp(it.stop, size); i < stop; i += step)
                p.push_back(static_cast<std::uint64_t>(i));
        }
        r.positions.push_back(p);
        r.keep.push_back(it.kind != model_item::integer);
    }
    return r;
}

// The bytes of the selection, element by element (element_bytes per element).
std::vector<unsigned char> model_bytes(const model_result& m, const std::vector<std::uint64_t>& shape,
                                       const unsigned char* data, std::size_t element_bytes) {
    std::vector<unsigned char> out;
    const std::size_t rank = shape.size();
    for (const auto& p : m.positions)
        if (p.empty()) return out;
    std::vector<std::size_t> at(rank, 0);
    for (;;) {
        std::uint64_t linear = 0;
        for (std::size_t d = 0; d < rank; ++d) linear = linear * shape[d] + m.positions[d][at[d]];
        out.insert(out.end(), data + linear * element_bytes, data + (linear + 1) * element_bytes);
        std::size_t d = rank;
        while (d > 0 && ++at[d - 1] == m.positions[d - 1].size()) at[--d] = 0;
        if (d == 0) return out;
    }
}

slice_spec to_spec(const std::vector<model_item>& items) {
    slice_spec spec;
    for (const auto& it : items) {
        if (it.kind == model_item::integer) spec.push_back(it.value);
        else if (it.kind == model_item::dots) spec.push_back(ellipsis);
        else spec.push_back(range(it.start, it.stop, it.step));
    }
    return spec;
}

// Every property a successful slice must have, checked against the model's bytes.
void check_slice(const safetensors::tensor_slice& s, const model_result& m, const std::vector<unsigned char>& expected) {
    std::vector<std::uint64_t> shape;
    for (std::size_t d = 0; d < m.positions.size(); ++d)
        if (m.keep[d]) shape.push_back(m.positions[d].size());
    CHECK(shape_of(s) == shape);
    REQUIRE(s.byte_size() == expected.size());
    CHECK(copied(s) == expected);
    CHECK(gathered(s) == expected);
    // Runs: in increasing order, non-empty, never touching (adjacent runs are merged).
    auto runs = s.runs();
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < runs.size(); ++i) {
        CHECK(runs[i].length > 0);
        total += runs[i].length;
        if (i > 0) CHECK(runs[i - 1].offset + runs[i - 1].length < runs[i].offset);
    }
    CHECK(total == s.byte_size());
    CHECK(s.is_contiguous() == (runs.size() <= 1));
    // read_bytes in uneven chunks sees the same bytes.
    std::vector<unsigned char> chunked(expected.size());
    for (std::size_t at = 0; at < chunked.size(); at += 7)
        s.read_bytes(at, chunked.data() + at, std::min<std::size_t>(7, chunked.size() - at));
    CHECK(chunked == expected);
}

} // namespace

// ---- The reference manifest ----------------------------------------------------------------------

TEST_CASE("all 60 index expressions of the reference manifest: same shape and SHA-256, or the same error") {
    std::ifstream in(data_path("reference/valid/manifest.json"));
    REQUIRE(in);
    const auto slices = nlohmann::json::parse(in)["slicing.safetensors"]["slices"];

    // The same expressions spelled in C++, keyed by the manifest's names (generate.py SLICES).
    const std::map<std::string, slice_spec> cpp = {
        {"s_1_3", {range(1, 3)}},
        {"s_all_2_4", {all, range(2, 4)}},
        {"s_1_3_1_5_2_3", {range(1, 3), range(1, 5), range(2, 3)}},
        {"i_0", {0}},
        {"i_neg1", {-1}},
        {"s_all_neg2_end", {all, range::from(-2)}},
        {"s_step2", {range(std::nullopt, std::nullopt, 2)}},
        {"s_all_all_step2", {all, all, range(std::nullopt, std::nullopt, 2)}},
        {"ellipsis_1_2", {ellipsis, range(1, 2)}},
        {"s_5_end", {range::from(5)}},
        {"s_2_1", {range(2, 1)}},
        {"s_all3", {all, all, all}},
        {"i_1_i_2", {1, 2}},
        {"i_1_s_all_i_3", {1, all, 3}},
        {"s_0_100", {range(0, 100)}},
        {"i_4_oob", {4}},
        {"i_neg5_oob", {-5}},
        {"too_many", {all, all, all, all}},
        {"s_neg3_neg1", {range(-3, -1)}},
        {"s_1_3_s_neg4_neg1_s_0_5", {range(1, 3), range(-4, -1), range(0, 5)}},
    };

    auto f = slicing_file();
    int cases = 0, errors = 0;
    for (const auto& tensor_entry : slices.items()) {
        const std::string name = tensor_entry.key();  // not structured bindings: lambdas capture these
        const auto& expressions = tensor_entry.value();
        auto view = f.tensor(name);
        CHECK(expressions.size() == 20);
        for (const auto& entry : expressions.items()) {
            const std::string key = entry.key();
            const auto& expected = entry.value();
            INFO(name << " " << key);
            const std::string python = expected["spec"].get<std::string>();
            REQUIRE(cpp.count(key) == 1);
            const slice_spec& spelled = cpp.at(key);
            CHECK(safetensors::parse_slice_spec(python) == spelled);
            CHECK(safetensors::to_string(spelled) == python);
            ++cases;
            if (expected.contains("error")) {
                ++errors;
                const std::string text = expected["error"].get<std::string>();
                REQUIRE(text.rfind("IndexError: ", 0) == 0);
                const std::string message = "tensor " + safetensors::detail::quote(name) + ": " + text.substr(12);
                const errc code = key == "too_many" ? errc::invalid_slice : errc::slice_out_of_range;
                for (auto e : {error_of([&] { (void)view.slice(python); }), error_of([&] { (void)view.slice(spelled); })}) {
                    CHECK(e.code == code);
                    CHECK(e.message == message);
                }
                continue;
            }
            for (const auto& s : {view.slice(python), view.slice(spelled)}) {
                CHECK(shape_of(s) == expected["shape"].get<std::vector<std::uint64_t>>());
                const auto t = s.to_tensor();
                CHECK(t.name() == name);
                CHECK(test_support::sha256_hex(t.data(), static_cast<std::size_t>(t.byte_size())) ==
                      expected["sha256"].get<std::string>());
                const auto& values = expected["values"];
                REQUIRE(values.size() == t.element_count());
                for (std::size_t i = 0; i < values.size(); ++i) CHECK(t.element(i) == values[i].get<double>());
                CHECK(copied(s) == gathered(s));
            }
        }
    }
    CHECK(cases == 60);
    CHECK(errors == 9);
}

// ---- Runs ----------------------------------------------------------------------------------------

TEST_CASE("runs are in row-major order, merged where they touch, relative to the tensor") {
    auto x = slicing_file().tensor("x_f32");  // [4, 6, 5] F32: rows of 20 bytes, planes of 120
    using runs = std::vector<safetensors::byte_run>;
    CHECK(x.slice(":").runs() == runs{{0, 480}});
    CHECK(x.slice({}).runs() == runs{{0, 480}});
    CHECK(x.slice("1:3").runs() == runs{{120, 240}});
    CHECK(x.slice("1:3, :, :").runs() == runs{{120, 240}});
    CHECK(x.slice("1, 2").runs() == runs{{160, 20}});
    CHECK(x.slice(":, 2:4").runs() == runs{{40, 40}, {160, 40}, {280, 40}, {400, 40}});
    CHECK(x.slice("1:3, 2, :").runs() == runs{{160, 20}, {280, 20}});
    CHECK(x.slice("::2, 5").runs() == runs{{100, 20}, {340, 20}});
    // ::2 over 5 columns picks 0, 2, 4: column 4 of one row touches column 0 of the next.
    CHECK(x.slice("0, 0:2, ::2").runs() == runs{{0, 4}, {8, 4}, {16, 8}, {28, 4}, {36, 4}});
    CHECK(x.slice("-1, -1, -1").runs() == runs{{476, 4}});
    CHECK(x.slice("0:0").runs().empty());

    // A dimension of size 1 between selected ones does not split the run.
    auto g = one_tensor("U8", "[2,1,3]", iota_bytes(6));
    CHECK(g.tensor("t").slice(":, 0, :").runs() == runs{{0, 6}});
    CHECK(g.tensor("t").slice(":, 0, :").is_contiguous());
    CHECK(g.tensor("t").slice(":, :, 1:").runs() == runs{{1, 2}, {4, 2}});

    // for_each_run gives the same runs without building a vector.
    runs seen;
    x.slice(":, ::3, 1:4").for_each_run([&](std::uint64_t offset, std::uint64_t length) { seen.push_back({offset, length}); });
    CHECK(seen == x.slice(":, ::3, 1:4").runs());
    CHECK(seen.size() == 8);
}

TEST_CASE("zero-copy access to contiguous slices, copies of the others") {
    auto f = slicing_file();
    auto x = f.tensor("x_f32");
    auto rows = x.slice({range(1, 3)});
    REQUIRE(rows.is_contiguous());
    CHECK(rows.data() == x.data() + 120);
    CHECK(rows.bytes().size() == 240);
    CHECK(rows.view().name() == "x_f32");
    CHECK(rows.dtype() == safetensors::dtype::F32);
    CHECK(rows.rank() == 3);
    CHECK(rows.element_count() == 60);

    auto column = x.slice("..., 1:2");
    CHECK(!column.is_contiguous());
    auto e = error_of([&] { (void)column.data(); });
    CHECK(e.code == errc::invalid_argument);
    CHECK(e.message == "tensor \"x_f32\": slice of shape [4, 6, 1] is not one contiguous run (it reads runs of 4 bytes); "
                       "use copy_to() or to_tensor()");
    CHECK(error_of([&] { (void)column.bytes(); }).code == errc::invalid_argument);

    std::vector<unsigned char> small(95);
    e = error_of([&] { column.copy_to(small.data(), small.size()); });
    CHECK(e.code == errc::out_of_range);
    CHECK(e.message == "tensor \"x_f32\": slice needs 96 bytes, destination holds 95");
    e = error_of([&] { column.copy_to(safetensors::span<std::byte>(reinterpret_cast<std::byte*>(small.data()), small.size())); });
    CHECK(e.message == "tensor \"x_f32\": slice needs 96 bytes, destination holds 95");
    std::vector<std::byte> packed(96);
    column.copy_to(packed);  // a std::vector<std::byte> converts to the span
    CHECK(std::memcmp(packed.data(), copied(column).data(), 96) == 0);
    e = error_of([&] { column.read_bytes(90, small.data(), 10); });
    CHECK(e.code == errc::out_of_range);
    CHECK(e.message == "tensor \"x_f32\": bytes [90, 90+10) are outside the slice's 96 bytes");
    CHECK(error_of([&] { column.read_bytes(u64_max, small.data(), 2); }).code == errc::out_of_range);

    auto t = column.to_tensor("renamed");
    CHECK(t.name() == "renamed");
    CHECK(t.shape() == column.shape());
    CHECK(t.as<float>()[23] == 116.0f);

    // The slice shares ownership of the bytes: it outlives its file and view.
    std::optional<safetensors::tensor_slice> kept;
    {
        auto owned = safetensors::file::from_bytes(test_support::read_all(data_path("reference/valid/slicing.safetensors")));
        kept = owned.tensor("x_i16").slice("3, 5");
    }
    std::int16_t last[5];
    kept->copy_to(last, sizeof last);
    CHECK(last[0] == 115);
    CHECK(last[4] == 119);
}

// ---- Shapes at the edges -------------------------------------------------------------------------

TEST_CASE("zero-size dimensions and empty selections") {
    auto f = safetensors::open(data_path("reference/valid/all_dtypes.safetensors"));
    auto empty = f.tensor("empty_f32_0x3");
    for (const char* spec : {":", "...", "0:0", ":, 1:", "5:"}) {
        INFO(spec);
        auto s = empty.slice(spec);
        CHECK(s.byte_size() == 0);
        CHECK(s.runs().empty());
        CHECK(s.is_contiguous());
        CHECK(s.bytes().size() == 0);
        s.copy_to(nullptr, 0);
        s.read_bytes(0, nullptr, 0);
        CHECK(s.to_tensor().byte_size() == 0);
    }
    CHECK(shape_of(empty.slice("..., 1")) == std::vector<std::uint64_t>{0});
    CHECK(shape_of(empty.slice(":, 5:")) == std::vector<std::uint64_t>{0, 0});
    auto e = error_of([&] { (void)empty.slice("0"); });
    CHECK(e.code == errc::slice_out_of_range);
    CHECK(e.message == "tensor \"empty_f32_0x3\": index 0 is out of bounds for dimension 0 with size 0");
    CHECK(error_of([&] { (void)empty.slice(":, 3"); }).message ==
          "tensor \"empty_f32_0x3\": index 3 is out of bounds for dimension 1 with size 3");

    auto x = slicing_file().tensor("x_f32");
    CHECK(shape_of(x.slice("..., 5:")) == std::vector<std::uint64_t>{4, 6, 0});
    CHECK(x.slice("..., 5:").byte_size() == 0);
    CHECK(shape_of(x.slice("2:1, 0")) == std::vector<std::uint64_t>{0, 5});

    // Sizes beyond INT64_MAX are legal when another dimension is 0; bounds stay exact.
    auto huge = one_tensor("U8", "[0,18446744073709551615]", "").tensor("t");
    CHECK(shape_of(huge.slice({all, range(0, u64_max)})) == std::vector<std::uint64_t>{0, u64_max});
    CHECK(shape_of(huge.slice({all, u64_max - 1})) == std::vector<std::uint64_t>{0});
    CHECK(shape_of(huge.slice(":, -18446744073709551615")) == std::vector<std::uint64_t>{0});
    CHECK(shape_of(huge.slice(":, 9223372036854775808:")) == std::vector<std::uint64_t>{0, 9223372036854775807u});
    CHECK(error_of([&] { (void)huge.slice({all, u64_max}); }).message ==
          "tensor \"t\": index 18446744073709551615 is out of bounds for dimension 1 with size 18446744073709551615");
}

TEST_CASE("scalars take no index but an ellipsis") {
    auto f = safetensors::open(data_path("reference/valid/all_dtypes.safetensors"));
    auto scalar = f.tensor("scalar_i64");
    for (const auto& s : {scalar.slice(slice_spec{}), scalar.slice("..."), scalar.slice({ellipsis})}) {
        CHECK(s.rank() == 0);
        CHECK(s.element_count() == 1);
        CHECK(s.runs() == std::vector<safetensors::byte_run>{{0, 8}});
        CHECK(s.data() == scalar.data());
        CHECK(s.to_tensor().element(0) == scalar.element(0));
    }
    for (const char* spec : {"0", ":", "..., 0"}) {
        auto e = error_of([&] { (void)scalar.slice(spec); });
        CHECK(e.code == errc::invalid_slice);
        CHECK(e.message == "tensor \"scalar_i64\": too many indices for tensor of dimension 0");
    }
}

TEST_CASE("1-byte and 8-byte elements, and every dtype of the reference file") {
    const std::string data = iota_bytes(15 * 8);
    auto u8 = one_tensor("U8", "[3,5]", data.substr(0, 15)).tensor("t");
    auto s = u8.slice(":, ::2");
    CHECK(s.runs() == std::vector<safetensors::byte_run>{{0, 1}, {2, 1}, {4, 2}, {7, 1}, {9, 2}, {12, 1}, {14, 1}});
    std::vector<unsigned char> expected;
    for (int i : {0, 2, 4, 5, 7, 9, 10, 12, 14}) expected.push_back(static_cast<unsigned char>(data[i]));
    CHECK(copied(s) == expected);

    auto i64 = one_tensor("I64", "[3,5]", data).tensor("t");
    CHECK(i64.slice(":, ::2").runs() ==
          std::vector<safetensors::byte_run>{{0, 8}, {16, 8}, {32, 16}, {56, 8}, {72, 16}, {96, 8}, {112, 8}});
    CHECK(i64.slice("-1, 1::3").runs() == std::vector<safetensors::byte_run>{{88, 8}, {112, 8}});

    // Every dtype (but the sub-byte ones, tested below) slices by whole elements.
    auto f = safetensors::open(data_path("reference/valid/all_dtypes.safetensors"));
    int sliced = 0;
    for (const auto& view : f) {
        if (safetensors::is_sub_byte(view.dtype()) || view.rank() == 0) continue;
        INFO(view.name());
        const std::vector<std::uint64_t> shape(view.shape().begin(), view.shape().end());
        const std::size_t element_bytes = safetensors::bit_size(view.dtype()) / 8;
        const model_item dots{model_item::dots, 0, {}, {}, {}};
        const std::vector<std::vector<model_item>> specs = {
            {dots, {model_item::slice, 0, {}, {}, 2}},   // ..., ::2
            {{model_item::integer, -1, {}, {}, {}}},     // -1
            {{model_item::slice, 0, 1, {}, {}}, dots},  // 1:, ...
        };
        for (const auto& items : specs) {
            const auto m = model(shape, items);
            if (m.error) continue;  // "-1" of an empty dimension
            check_slice(view.slice(to_spec(items)), m,
                        model_bytes(m, shape, reinterpret_cast<const unsigned char*>(view.data()), element_bytes));
            ++sliced;
        }
    }
    CHECK(sliced > 60);
}

TEST_CASE("random index expressions agree with a naive model of torch indexing") {
    std::mt19937_64 rng(20240611);
    auto pick = [&](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); };
    const std::vector<std::pair<std::string, std::size_t>> dtypes = {{"U8", 1}, {"BF16", 2}, {"F32", 4}, {"C64", 8}, {"F64", 8}};
    int slices = 0, errors = 0;
    for (int round = 0; round < 150; ++round) {
        const auto& chosen = dtypes[static_cast<std::size_t>(pick(0, 4))];
        const std::string dtype = chosen.first;
        const std::size_t element_bytes = chosen.second;
        std::vector<std::uint64_t> shape(static_cast<std::size_t>(pick(0, 4)));
        std::string shape_text = "[";
        std::size_t count = 1;
        for (auto& d : shape) {
            d = static_cast<std::uint64_t>(pick(0, 5));
            count *= d;
            shape_text += (shape_text.size() > 1 ? "," : "") + std::to_string(d);
        }
        const std::string data = iota_bytes(count * element_bytes);
        auto f = one_tensor(dtype, shape_text + "]", data);
        auto view = f.tensor("t");
        for (int k = 0; k < 40; ++k) {
            std::vector<model_item> items(static_cast<std::size_t>(pick(0, static_cast<std::int64_t>(shape.size()) + 1)));
            for (auto& it : items) {
                switch (pick(0, 9)) {
                    case 0: it.kind = model_item::dots; break;
                    case 1: case 2: it.kind = model_item::integer; it.value = pick(-6, 5); break;
                    default:
                        it.kind = model_item::slice;
                        if (pick(0, 2)) it.start = pick(-7, 7);
                        if (pick(0, 2)) it.stop = pick(-7, 7);
                        if (pick(0, 2)) it.step = pick(0, 3) == 0 ? pick(-2, 0) : pick(1, 4);
                }
            }
            const slice_spec spec = to_spec(items);
            INFO(dtype << " " << shape_text << "] [" << safetensors::to_string(spec) << "]");
            const auto m = model(shape, items);
            if (m.error) {
                ++errors;
                CHECK(error_of([&] { (void)view.slice(spec); }).code == *m.error);
                continue;
            }
            const auto s = view.slice(spec);
            check_slice(s, m, model_bytes(m, shape, reinterpret_cast<const unsigned char*>(view.data()), element_bytes));
            // The Python spelling round-trips (an empty spec has none: "" is refused).
            if (!spec.empty()) CHECK(view.slice(safetensors::to_string(spec)).runs() == s.runs());
            ++slices;
        }
    }
    CHECK(slices > 3000);
    CHECK(errors > 500);
}

// ---- Sub-byte dtypes -----------------------------------------------------------------------------

TEST_CASE("sub-byte dtypes slice where every run starts and ends on a byte") {
    // f4.safetensors: "q", F4 [2, 4], bytes 12 34 f0 0f (two elements per byte, low nibble first).
    auto q = safetensors::open(data_path("reference/valid/f4.safetensors")).tensor("q");
    using bytes = std::vector<unsigned char>;
    CHECK(copied(q.slice("1")) == bytes{0xf0, 0x0f});
    CHECK(copied(q.slice(":, 0:2")) == bytes{0x12, 0xf0});
    CHECK(copied(q.slice(":, 2:")) == bytes{0x34, 0x0f});
    CHECK(q.slice(":, 2:").runs() == std::vector<safetensors::byte_run>{{1, 1}, {3, 1}});
    CHECK(q.slice(":, 2:").to_tensor().element(1) == q.element(3));
    CHECK(q.slice("...").is_contiguous());
    CHECK(q.slice(":, 1:1").byte_size() == 0);  // nothing selected: nothing to misalign

    auto e = error_of([&] { (void)q.slice(":, 1:3"); });
    CHECK(e.code == errc::unaligned_slice);
    CHECK(e.message == "tensor \"q\": dtype F4: the slice starts at index 1 of dimension 1, bit 4 of a byte");
    e = error_of([&] { (void)q.slice(":, ::2"); });
    CHECK(e.code == errc::unaligned_slice);
    CHECK(e.message == "tensor \"q\": dtype F4: the slice's runs of 1 element along dimension 1 are 4 bits, not whole bytes");
    CHECK(error_of([&] { (void)q.slice("0, 0:3"); }).message ==
          "tensor \"q\": dtype F4: the slice's runs of 3 elements along dimension 1 are 12 bits, not whole bytes");

    // F4 [2, 3]: rows of 12 bits, so two whole-byte runs cannot be 12 bits apart.
    auto odd = one_tensor("F4", "[2,3]", "\x21\x43\x65").tensor("t");
    CHECK(copied(odd.slice("0, 0:2")) == bytes{0x21});
    e = error_of([&] { (void)odd.slice(":, 0:2"); });
    CHECK(e.code == errc::unaligned_slice);
    CHECK(e.message == "tensor \"t\": dtype F4: the slice's step of 3 elements along dimension 0 is 12 bits, not whole bytes");
    CHECK(error_of([&] { (void)odd.slice("1"); }).code == errc::unaligned_slice);

    // F6: four elements fill three bytes.
    auto f6 = one_tensor("F6_E2M3", "[2,8]", iota_bytes(12)).tensor("t");
    const std::string raw = iota_bytes(12);
    CHECK(copied(f6.slice("1")) == bytes(raw.begin() + 6, raw.end()));
    CHECK(copied(f6.slice(":, 4:")) == bytes{static_cast<unsigned char>(raw[3]), static_cast<unsigned char>(raw[4]),
                                              static_cast<unsigned char>(raw[5]), static_cast<unsigned char>(raw[9]),
                                              static_cast<unsigned char>(raw[10]), static_cast<unsigned char>(raw[11])});
    CHECK(error_of([&] { (void)f6.slice(":, 0:2"); }).message ==
          "tensor \"t\": dtype F6_E2M3: the slice's runs of 2 elements along dimension 1 are 12 bits, not whole bytes");
}

// ---- 64-bit bounds -------------------------------------------------------------------------------

TEST_CASE("bounds, indices and steps at the limits of 64 bits, on outer and inner dimensions") {
    auto x = slicing_file().tensor("x_f32");
    using shape = std::vector<std::uint64_t>;
    auto e = error_of([&] { (void)x.slice({i64_min}); });
    CHECK(e.code == errc::slice_out_of_range);
    CHECK(e.message == "tensor \"x_f32\": index -9223372036854775808 is out of bounds for dimension 0 with size 4");
    CHECK(error_of([&] { (void)x.slice({0, i64_max}); }).message ==
          "tensor \"x_f32\": index 9223372036854775807 is out of bounds for dimension 1 with size 6");
    CHECK(error_of([&] { (void)x.slice({all, all, u64_max}); }).message ==
          "tensor \"x_f32\": index 18446744073709551615 is out of bounds for dimension 2 with size 5");
    CHECK(error_of([&] { (void)x.slice("..., -6"); }).message ==
          "tensor \"x_f32\": index -6 is out of bounds for dimension 2 with size 5");
    CHECK(error_of([&] { (void)x.slice("1, 6"); }).message ==
          "tensor \"x_f32\": index 6 is out of bounds for dimension 1 with size 6");

    CHECK(shape_of(x.slice({range(i64_min, i64_max)})) == shape{4, 6, 5});
    CHECK(shape_of(x.slice({range(i64_max, i64_min)})) == shape{0, 6, 5});
    CHECK(shape_of(x.slice({all, range(-100, 100), range(2, i64_max)})) == shape{4, 6, 3});
    CHECK(shape_of(x.slice({all, all, range(i64_min, -4)})) == shape{4, 6, 1});
    CHECK(shape_of(x.slice({range(0, 4, i64_max)})) == shape{1, 6, 5});
    CHECK(shape_of(x.slice({all, range(1, u64_max, u64_max)})) == shape{4, 1, 5});
    CHECK(shape_of(x.slice({range(std::optional<int>(), std::optional<unsigned>(3u))})) == shape{3, 6, 5});
    CHECK(shape_of(x.slice("-9223372036854775808:9223372036854775807, :, 2:18446744073709551615")) == shape{4, 6, 3});
    CHECK(shape_of(x.slice(":, -18446744073709551615:")) == shape{4, 6, 5});

    e = error_of([&] { (void)x.slice({all, range(std::nullopt, std::nullopt, i64_min)}); });
    CHECK(e.code == errc::invalid_slice);
    CHECK(e.message == "tensor \"x_f32\": step -9223372036854775808 for dimension 1 must be greater than zero");
    CHECK(error_of([&] { (void)x.slice("::0"); }).message ==
          "tensor \"x_f32\": step 0 for dimension 0 must be greater than zero");
    CHECK(error_of([&] { (void)x.slice(":, :, ::-1"); }).message ==
          "tensor \"x_f32\": step -1 for dimension 2 must be greater than zero");
    CHECK(error_of([&] { (void)x.slice("-18446744073709551615"); }).message ==
          "tensor \"x_f32\": index -18446744073709551615 is out of bounds for dimension 0 with size 4");
    e = error_of([&] { (void)x.slice("..., ..."); });
    CHECK(e.code == errc::invalid_slice);
    CHECK(e.message == "tensor \"x_f32\": an index can only have a single ellipsis ('...'), got 2");
}

// ---- The Python spelling -------------------------------------------------------------------------

TEST_CASE("parse_slice_spec reads the Python spelling") {
    using safetensors::parse_slice_spec;
    CHECK(parse_slice_spec(" 1 : 3 , ... , -1 ") == slice_spec{range(1, 3), ellipsis, -1});
    CHECK(parse_slice_spec("1:3, :, ::2, ..., -1") ==
          slice_spec{range(1, 3), all, range(std::nullopt, std::nullopt, 2), ellipsis, -1});
    CHECK(parse_slice_spec("1,") == slice_spec{1});
    CHECK(parse_slice_spec("::") == slice_spec{all});
    CHECK(parse_slice_spec("+2, -0, 007") == slice_spec{2, 0, 7});
    CHECK(parse_slice_spec("\t:-1:3") == slice_spec{range(std::nullopt, -1, 3)});
    CHECK(parse_slice_spec("-9223372036854775808, 18446744073709551615") == slice_spec{i64_min, u64_max});
    CHECK(safetensors::to_string(parse_slice_spec(" 1 :3: , 2: ,:")) == "1:3, 2:, :");
    // t.slice({0, 2}) is two integers, not a string_view(nullptr, 2).
    CHECK(shape_of(slicing_file().tensor("x_i16").slice({0, 2})) == std::vector<std::uint64_t>{5});
}

TEST_CASE("malformed index expressions give exact errors") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"", "invalid index expression \"\": it is empty (write \":\" or \"...\" for the whole tensor)"},
        {"  ", "invalid index expression \"  \": it is empty (write \":\" or \"...\" for the whole tensor)"},
        {"1,,2", "invalid index expression \"1,,2\": empty index at offset 2"},
        {",1", "invalid index expression \",1\": empty index at offset 0"},
        {"1, ,", "invalid index expression \"1, ,\": empty index at offset 3"},
        {"1:2:3:4", "invalid index expression \"1:2:3:4\": too many ':' at offset 5 (an index is start:stop:step at most)"},
        {"1:x", "invalid index expression \"1:x\": unexpected \"x\" at offset 2 (expected an integer, ':', '...' or ',')"},
        {"None", "invalid index expression \"None\": unexpected \"None\" at offset 0 (expected an integer, ':', '...' or ',')"},
        {"1 2", "invalid index expression \"1 2\": unexpected \"2\" at offset 2 (expected an integer, ':', '...' or ',')"},
        {"1.5", "invalid index expression \"1.5\": unexpected \".5\" at offset 1 (expected an integer, ':', '...' or ',')"},
        {"--1", "invalid index expression \"--1\": unexpected \"--1\" at offset 0 (expected an integer, ':', '...' or ',')"},
        {"- 1", "invalid index expression \"- 1\": unexpected \"-\" at offset 0 (expected an integer, ':', '...' or ',')"},
        {"[0]", "invalid index expression \"[0]\": unexpected \"[0]\" at offset 0 (expected an integer, ':', '...' or ',')"},
        {"..", "invalid index expression \"..\": unexpected \"..\" at offset 0 (expected an integer, ':', '...' or ',')"},
        {"....", "invalid index expression \"....\": unexpected \".\" at offset 3 (expected an integer, ':', '...' or ',')"},
        {"1:...", "invalid index expression \"1:...\": unexpected \"...\" at offset 2 (expected an integer, ':', '...' or ',')"},
        {"0:\x1b[2J", "invalid index expression \"0:\\x1b[2J\": unexpected \"\\x1b[2J\" at offset 2 (expected an integer, "
                      "':', '...' or ',')"},
        {"18446744073709551616",
         "invalid index expression \"18446744073709551616\": integer 18446744073709551616 at offset 0 does not fit in 64 bits"},
        {"1:-99999999999999999999",
         "invalid index expression \"1:-99999999999999999999\": integer -99999999999999999999 at offset 2 does not fit in 64 bits"},
    };
    auto x = slicing_file().tensor("x_f32");
    for (const auto& c : cases) {
        const std::string& spec = c.first;
        const std::string& message = c.second;
        INFO(spec);
        auto e = error_of([&] { (void)safetensors::parse_slice_spec(spec); });
        CHECK(e.code == errc::invalid_slice);
        CHECK(e.message == message);
        // Through a view the message names the tensor too.
        e = error_of([&] { (void)x.slice(spec); });
        CHECK(e.code == errc::invalid_slice);
        CHECK(e.message == "tensor \"x_f32\": " + message);
    }
}

// ---- Shards --------------------------------------------------------------------------------------

TEST_CASE("split_range: contiguous, in rank order, the first size % world ranks one larger") {
    using safetensors::split_range;
    auto bounds = [](std::uint64_t size, std::uint64_t world) {
        std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
        for (std::uint64_t r = 0; r < world; ++r) out.emplace_back(split_range(size, r, world).begin, split_range(size, r, world).end);
        return out;
    };
    using pairs = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
    CHECK(bounds(8, 4) == pairs{{0, 2}, {2, 4}, {4, 6}, {6, 8}});
    CHECK(bounds(10, 4) == pairs{{0, 3}, {3, 6}, {6, 8}, {8, 10}});
    CHECK(bounds(2, 4) == pairs{{0, 1}, {1, 2}, {2, 2}, {2, 2}});
    CHECK(bounds(0, 3) == pairs{{0, 0}, {0, 0}, {0, 0}});
    CHECK(bounds(5, 1) == pairs{{0, 5}});
    CHECK(split_range(10, 1, 4).size() == 3);
    CHECK(split_range(u64_max, 2, 3).end == u64_max);
    CHECK(split_range(u64_max, 0, u64_max).size() == 1);

    for (std::uint64_t size = 0; size < 40; ++size)
        for (std::uint64_t world = 1; world < 12; ++world) {
            std::uint64_t next = 0;
            for (std::uint64_t r = 0; r < world; ++r) {
                auto b = split_range(size, r, world);
                CHECK(b.begin == next);
                CHECK(b.size() == size / world + (r < size % world ? 1 : 0));
                next = b.end;
            }
            CHECK(next == size);
        }

    auto e = error_of([] { (void)split_range(8, 0, 0); });
    CHECK(e.code == errc::invalid_argument);
    CHECK(e.message == "split_range: world size must be at least 1, got 0");
    e = error_of([] { (void)split_range(8, 4, 4); });
    CHECK(e.code == errc::invalid_argument);
    CHECK(e.message == "split_range: rank 4 is out of range for world size 4");
}

TEST_CASE("tensor_view::shard: shards of any dimension reassemble the tensor") {
    auto f = slicing_file();
    auto x = f.tensor("x_f32");
    const auto* full = reinterpret_cast<const unsigned char*>(x.data());
    for (std::int64_t dim : {0, 1, 2, -1, -3}) {
        for (std::uint64_t world : {1, 2, 3, 4, 7}) {
            INFO("dim " << dim << " world " << world);
            const std::size_t axis = static_cast<std::size_t>(dim < 0 ? dim + 3 : dim);
            std::uint64_t outer = 1, inner = 4;  // bytes of one position of the axis
            for (std::size_t d = 0; d < axis; ++d) outer *= x.shape()[d];
            for (std::size_t d = axis + 1; d < 3; ++d) inner *= x.shape()[d];
            const std::uint64_t row = x.shape()[axis] * inner;
            std::vector<unsigned char> rebuilt(480, 0);
            for (std::uint64_t rank = 0; rank < world; ++rank) {
                const auto part = safetensors::split_range(x.shape()[axis], rank, world);
                const auto s = x.split(dim, rank, world);
                CHECK(s.shape()[axis] == part.size());
                const auto bytes = copied(s);
                const std::uint64_t block = part.size() * inner;
                for (std::uint64_t o = 0; o < outer; ++o)
                    std::copy(bytes.begin() + static_cast<std::ptrdiff_t>(o * block),
                              bytes.begin() + static_cast<std::ptrdiff_t>((o + 1) * block),
                              rebuilt.begin() + static_cast<std::ptrdiff_t>(o * row + part.begin * inner));
            }
            CHECK(std::equal(rebuilt.begin(), rebuilt.end(), full));
        }
    }
    CHECK(x.split(0, 1, 2).is_contiguous());
    CHECK(x.split(-1, 0, 5).runs().size() == 24);

    auto e = error_of([&] { (void)x.split(3, 0, 2); });
    CHECK(e.code == errc::invalid_argument);
    CHECK(e.message == "tensor \"x_f32\": dimension 3 is out of range for tensor of dimension 3");
    CHECK(error_of([&] { (void)x.split(-4, 0, 2); }).message ==
          "tensor \"x_f32\": dimension -4 is out of range for tensor of dimension 3");
    CHECK(error_of([&] { (void)x.split(i64_min, 0, 2); }).code == errc::invalid_argument);
    CHECK(error_of([&] { (void)x.split(0, 2, 2); }).message ==
          "tensor \"x_f32\": rank 2 is out of range for world size 2");
    CHECK(error_of([&] { (void)x.split(0, 0, 0); }).message ==
          "tensor \"x_f32\": world size must be at least 1, got 0");
    auto scalar = safetensors::open(data_path("reference/valid/all_dtypes.safetensors")).tensor("scalar_f32");
    CHECK(error_of([&] { (void)scalar.split(0, 0, 1); }).message ==
          "tensor \"scalar_f32\": dimension 0 is out of range for tensor of dimension 0");
}

// ---- Page touches --------------------------------------------------------------------------------

TEST_CASE("reading a slice touches only the pages its runs cover" * POSIX_ONLY("guards pages with mmap and mprotect")) {
#if !defined(_WIN32)
    // A U8 [16, page] tensor whose rows are exactly the pages after the header's page, in a
    // caller's buffer. Every page no run covers (the header's too) is made PROT_NONE: any
    // read outside the runs would crash the test.
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t rows = 16, total = page * (rows + 1);
    std::string json = "{\"x\":{\"dtype\":\"U8\",\"shape\":[16," + std::to_string(page) + "],\"data_offsets\":[0," +
                       std::to_string(rows * page) + "]}}";
    json.append(page - 8 - json.size(), ' ');
    const auto image = test_support::make_file(json, iota_bytes(rows * page));
    REQUIRE(image.size() == total);
    void* map = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(map != MAP_FAILED);
    auto* base = static_cast<unsigned char*>(map);
    std::memcpy(base, image.data(), total);
    const auto* tensor_bytes = reinterpret_cast<const unsigned char*>(image.data()) + page;

    auto x = safetensors::file::from_buffer(map, total).tensor("x");
    for (const char* spec : {"3:5", "::4, 100:200", "-1, -10:", "5, :", "1:16:7, ::512", "2, 0"}) {
        INFO(spec);
        const auto s = x.slice(spec);
        std::vector<bool> covered(rows + 1, false);
        std::vector<unsigned char> expected;
        for (auto run : s.runs()) {
            for (std::uint64_t p = (page + run.offset) / page; p <= (page + run.offset + run.length - 1) / page; ++p)
                covered[static_cast<std::size_t>(p)] = true;
            expected.insert(expected.end(), tensor_bytes + run.offset, tensor_bytes + run.offset + run.length);
        }
        std::size_t protected_pages = 0;
        for (std::size_t p = 0; p <= rows; ++p)
            if (!covered[p]) {
                REQUIRE(::mprotect(base + p * page, page, PROT_NONE) == 0);
                ++protected_pages;
            }
        CHECK(protected_pages >= 12);

        CHECK(copied(s) == expected);
        std::vector<unsigned char> read(expected.size());
        s.read_bytes(0, read.data(), read.size());
        CHECK(read == expected);
        const auto t = s.to_tensor();
        CHECK(std::equal(expected.begin(), expected.end(), reinterpret_cast<const unsigned char*>(t.data())));

        REQUIRE(::mprotect(base, total, PROT_READ | PROT_WRITE) == 0);
    }
    ::munmap(map, total);
#endif
}
